"""The publish path (issue 12): one narrow fetch, commits built from git objects with no checkout, the
policy re-checked at the write, and requests that do not queue on one work tree."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from devops_automation.audit import Auditor
from devops_automation.forge.fake import FakeForge
from devops_automation.policy import PolicyViolation, branch_name
from devops_automation.settings import Settings
from devops_automation.store import open_store
from devops_automation.target import TargetRepo, commit_message

from .helpers import changed_paths, make_settings, remote_branches

ID = {"NAME": "Hu Man", "EMAIL": "h@example.com"}


def _files(name: str) -> list[str]:
    return [f"teams/{name}/team.yaml", f"teams/{name}/src/{name}/main.py", f"k8s/teams/{name}/deployment.yaml"]


def _render(root: Path, name: str) -> Path:
    for rel in _files(name):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(f"# {rel}\n")
    return root


@pytest.fixture
def world(tmp_path: Path) -> tuple[TargetRepo, FakeForge, Settings]:
    settings = make_settings(tmp_path / "home", forge="fake")
    settings.home.mkdir(parents=True, exist_ok=True)
    forge = FakeForge(tmp_path / "remote.git")
    store = open_store(settings.effective_database_url)
    target = TargetRepo(settings, Auditor(store), forge.git_remote(), forge.git_env())
    yield target, forge, settings
    store.close()


def _publish(target: TargetRepo, root: Path, name: str, n: int = 0) -> tuple[str, str]:
    branch = branch_name(name, datetime(2026, 12, 1, tzinfo=UTC), request_id=f"req-{name}{n}")
    published = target.publish_branch(
        request_id=f"req-{name}{n}",
        team_name=name,
        branch=branch,
        rendered_root=_render(root / name, name),
        files=_files(name),
        message=commit_message(name, f"gap-{name}", f"req-{name}{n}"),
        gap_id=f"gap-{name}",
    )
    return branch, published.commit


def _git(path: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(path), *args], capture_output=True, text=True, check=True).stdout


def test_publish_builds_the_commit_without_a_checkout_and_fetches_only_what_it_needs(
    world: tuple[TargetRepo, FakeForge, Settings], tmp_path: Path
) -> None:
    target, forge, _ = world
    main = forge.git("rev-parse", "refs/heads/main")
    for i in range(30):  # other people's branches: never fetched by a publish
        forge.git("update-ref", f"refs/heads/auto/team-other{i}-20260101T000000Z", main)
    branch, commit = _publish(target, tmp_path / "render", "billing")
    assert remote_branches(forge.bare)[branch] == commit
    assert sorted(changed_paths(forge.bare, branch)) == sorted(_files("billing"))
    assert _git(forge.bare, "log", "-1", "--format=%an <%ae>|%P", branch).strip() == (
        f"{target.bot.name} <{target.bot.email}>|{main}"
    )
    local = _git(target.path, "for-each-ref", "--format=%(refname)").split()
    assert not [r for r in local if "other" in r]  # the 30 other branches were not fetched
    assert not (target.path / "teams" / "billing").exists()  # no work tree was written
    assert not (target.path / ".git" / "index").exists() or "billing" not in _git(target.path, "ls-files")
    fetches = [r for r in target.auditor.store.iter_audit() if r.action == "git.fetch" and r.phase == "initiated"]
    assert len(fetches) <= 1  # the clone, then at most one fetch per publish
    again = target.publish_branch(  # a rerun adopts the pushed commit: nothing is written again
        request_id="req-billing0",
        team_name="billing",
        branch=branch,
        rendered_root=tmp_path / "render" / "billing",
        files=_files("billing"),
        message="unused",
        gap_id="gap-billing",
    )
    assert again.commit == commit


def test_a_built_but_unpushed_commit_is_never_trusted_over_the_render_in_hand(
    world: tuple[TargetRepo, FakeForge, Settings], tmp_path: Path
) -> None:
    """A local branch left by a publish whose push failed (or by a commit staged beside a validation that
    then failed) may hold an earlier render: the next publish builds its commit from the files it is given."""
    target, forge, _ = world
    hook = forge.bare / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'not today' >&2\nexit 1\n")
    hook.chmod(0o755)
    from devops_automation.errors import GitError

    with pytest.raises(GitError, match="not today"):
        _publish(target, tmp_path / "render", "payroll")
    (stale,) = _git(target.path, "for-each-ref", "--format=%(objectname)", "refs/heads/auto/").split()
    hook.unlink()
    branch = branch_name("payroll", datetime(2026, 12, 1, tzinfo=UTC), request_id="req-payroll0")
    root = _render(tmp_path / "render" / "payroll", "payroll")
    (root / "teams/payroll/team.yaml").write_text("# the render that passed validation\n")
    published = target.publish_branch(
        request_id="req-payroll0",
        team_name="payroll",
        branch=branch,
        rendered_root=root,
        files=_files("payroll"),
        message=commit_message("payroll", "gap-payroll", "req-payroll0"),
        gap_id="gap-payroll",
    )
    assert published.commit != stale and remote_branches(forge.bare)[branch] == published.commit
    shown = _git(forge.bare, "show", f"{published.commit}:teams/payroll/team.yaml")
    assert shown == "# the render that passed validation\n"


def test_a_staged_commit_is_pushed_as_staged_and_a_push_never_forces(
    world: tuple[TargetRepo, FakeForge, Settings], tmp_path: Path
) -> None:
    """stage_branch builds and points the local branch without pushing; push_staged pushes that very commit,
    and refuses (GitError, nothing overwritten) when someone created the branch on the remote meanwhile."""
    from devops_automation.errors import GitError
    from devops_automation.target import Staged

    target, forge, _ = world
    kwargs = {
        "team_name": "payroll",
        "files": _files("payroll"),
        "rendered_root": _render(tmp_path / "render" / "payroll", "payroll"),
        "gap_id": "gap-payroll",
    }
    branch = branch_name("payroll", datetime(2026, 12, 1, tzinfo=UTC), request_id="req-payroll0")
    staged = target.stage_branch(
        request_id="req-payroll0", branch=branch, message="m\n\nTracking-Id: req-payroll0\n", **kwargs
    )
    assert isinstance(staged, Staged) and branch not in remote_branches(forge.bare)
    assert _git(target.path, "rev-parse", f"refs/heads/{branch}").strip() == staged.commit
    assert target.push_staged(staged, "req-payroll0").commit == staged.commit
    assert remote_branches(forge.bare)[branch] == staged.commit

    other = branch_name("payroll", datetime(2026, 12, 2, tzinfo=UTC), request_id="req-payroll1")
    late = target.stage_branch(
        request_id="req-payroll1", branch=other, message="m\n\nTracking-Id: req-payroll1\n", **kwargs
    )
    assert isinstance(late, Staged)
    base = _git(forge.bare, "rev-parse", "main").strip()
    _git(forge.bare, "update-ref", f"refs/heads/{other}", base)  # someone else's branch appears meanwhile
    with pytest.raises(GitError, match="push of"):
        target.push_staged(late, "req-payroll1")
    assert remote_branches(forge.bare)[other] == base


@pytest.mark.parametrize(
    ("attack", "message"),
    [
        ("ln -s ../outside teams", "teams is a symbolic link in the target repository"),  # never a system dir
        ("mkdir -p k8s && printf x > k8s/teams", "k8s/teams is not a directory in the target repository"),
    ],
)
def test_the_base_tree_cannot_carry_the_write_elsewhere(
    world: tuple[TargetRepo, FakeForge, Settings], tmp_path: Path, attack: str, message: str
) -> None:
    target, forge, _ = world
    work = tmp_path / "attacker"
    subprocess.run(["git", "clone", "-q", str(forge.bare), str(work)], check=True)
    subprocess.run(["sh", "-c", f"rm -rf teams k8s/teams; {attack}"], cwd=work, check=True)
    subprocess.run(["git", "-c", "user.name=m", "-c", "user.email=m@x", "commit", "-qam", "x"], cwd=work, check=False)
    subprocess.run(["git", "add", "-A"], cwd=work, check=True)
    subprocess.run(["git", "-c", "user.name=m", "-c", "user.email=m@x", "commit", "-qm", "evil"], cwd=work, check=True)
    subprocess.run(["git", "push", "-q", "origin", "HEAD:main"], cwd=work, check=True)
    with pytest.raises(PolicyViolation, match=message):
        _publish(target, tmp_path / "render", "billing")
    assert set(remote_branches(forge.bare)) == {"main"}


def test_a_rendered_symlink_is_refused_at_the_write(
    world: tuple[TargetRepo, FakeForge, Settings], tmp_path: Path
) -> None:
    target, forge, _ = world
    # Never a system file: a symlink's far end is whatever the test makes here.
    outside = tmp_path / "outside.txt"
    outside.write_text("secret outside the render\n")
    root = _render(tmp_path / "render" / "billing", "billing")
    (root / "teams/billing/team.yaml").unlink()
    (root / "teams/billing/team.yaml").symlink_to(outside)
    with pytest.raises(PolicyViolation, match="is not a regular file"):
        target.publish_branch(
            request_id="req-billing0",
            team_name="billing",
            branch=branch_name("billing", datetime(2026, 12, 1, tzinfo=UTC), request_id="req-billing0"),
            rendered_root=root,
            files=_files("billing"),
            message=commit_message("billing", "gap-billing", "req-billing0"),
            gap_id="gap-billing",
        )
    assert outside.read_text() == "secret outside the render\n"  # nothing wrote through the link
    assert set(remote_branches(forge.bare)) == {"main"}


def test_paths_outside_the_team_are_refused_before_anything_is_written(
    world: tuple[TargetRepo, FakeForge, Settings], tmp_path: Path
) -> None:
    target, forge, _ = world
    root = _render(tmp_path / "render" / "billing", "billing")
    (root / ".github/workflows").mkdir(parents=True)
    (root / ".github/workflows/x.yaml").write_text("on: push")
    with pytest.raises(PolicyViolation):
        target.publish_branch(
            request_id="req-billing0",
            team_name="billing",
            branch=branch_name("billing"),
            rendered_root=root,
            files=[*_files("billing"), ".github/workflows/x.yaml"],
            message="m",
        )
    assert set(remote_branches(forge.bare)) == {"main"}


def test_concurrent_publishes_all_land_and_do_not_hold_the_checkout_lock_while_building(
    world: tuple[TargetRepo, FakeForge, Settings], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target, forge, _ = world
    target.team_files()  # the clone
    building = threading.Barrier(4, timeout=60)
    original = target._commit

    def commit_together(*args: object, **kwargs: object) -> str:
        building.wait()  # all four build at once: none of them holds the checkout lock now
        return original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(target, "_commit", commit_together)
    results: dict[str, tuple[str, str]] = {}
    errors: list[BaseException] = []

    def one(name: str) -> None:
        try:
            results[name] = _publish(target, tmp_path / "render", name)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(f"team{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    remote = remote_branches(forge.bare)
    for name, (branch, commit) in results.items():
        assert remote[branch] == commit and sorted(changed_paths(forge.bare, branch)) == sorted(_files(name))


def test_the_registry_is_read_without_a_fetch_until_the_base_branch_moves(
    world: tuple[TargetRepo, FakeForge, Settings], tmp_path: Path
) -> None:
    target, forge, _ = world
    main = forge.git("rev-parse", "refs/heads/main")
    for i in range(20):  # other people's branches: a registry read never fetches them
        forge.git("update-ref", f"refs/heads/auto/team-other{i}-20260101T000000Z", main)
    target.team_files()  # the clone

    def fetches() -> list[object]:
        rows = target.auditor.store.iter_audit()
        return [r.target for r in rows if r.action == "git.fetch" and r.phase == "initiated"]

    first, files_before = target.team_files_unless(lambda revision: False)
    assert files_before is not None and all(path.startswith("teams/") for path in files_before)
    again, cached = target.team_files_unless(lambda revision: revision == first)
    assert (again, cached) == (first, None)  # the caller has this revision: nothing parsed again
    assert fetches() == []  # the base branch did not move: ls-remote only, no fetch
    reads = [r for r in target.auditor.store.iter_audit() if r.action == "git.ls_remote" and r.phase == "succeeded"]
    assert len(reads) == 2 and json.loads(reads[-1].detail)["refs"] == {"refs/heads/main": main}

    def bare(*args: str, stdin: str = "") -> str:
        env = {"GIT_INDEX_FILE": str(tmp_path / "index"), "PATH": os.environ["PATH"], "GIT_CONFIG_GLOBAL": os.devnull}
        env |= {f"GIT_{who}_{what}": value for who in ("AUTHOR", "COMMITTER") for what, value in ID.items()}
        done = subprocess.run(
            ["git", *args], cwd=forge.bare, input=stdin, env=env, capture_output=True, text=True, check=True
        )
        return done.stdout.strip()

    blob = bare("hash-object", "-w", "--stdin", stdin="name: added\n")  # someone merges a new team
    bare("read-tree", main)
    bare("update-index", "--add", "--cacheinfo", f"100644,{blob},teams/added/team.yaml")
    moved = bare("commit-tree", bare("write-tree"), "-p", main, "-m", "merge added")
    bare("update-ref", "refs/heads/main", moved)
    third, files = target.team_files_unless(lambda revision: revision == first)
    assert third != first and files is not None and files["teams/added/team.yaml"] == "name: added\n"
    assert len(fetches()) == 1  # the base branch moved: fetched, that branch alone
    assert target.team_files_of(first) == files_before  # an older revision reads as it was, with no fetch
    assert target.team_files_of(third) == files and len(fetches()) == 1
    local = _git(target.path, "for-each-ref", "--format=%(refname)").split()
    assert not [r for r in local if "other" in r]


def test_the_registry_head_comes_from_the_forge_and_git_answers_when_the_forge_cannot(
    world: tuple[TargetRepo, FakeForge, Settings],
) -> None:
    """With a ``read_head`` (the engine passes the forge's API read), no ``ls-remote`` runs; when the forge
    fails (ForgeError), git is asked instead and the registry is read all the same."""
    from devops_automation.errors import ForgeError

    target, forge, settings = world

    def ls_remotes() -> int:
        return sum(1 for r in target.auditor.store.iter_audit() if r.action == "git.ls_remote")

    revision, files = target.team_files_unless(lambda r: False, lambda: forge.branch_head(settings.base_branch))
    assert files is not None and ls_remotes() == 0

    def down() -> str | None:
        raise ForgeError("the forge's API is down", status=503)

    again, cached = target.team_files_unless(lambda r: r == revision, down)
    assert (again, cached) == (revision, None) and ls_remotes() == 2  # initiated and succeeded


def test_a_stale_stage_is_not_pushed_and_the_staged_commit_is_what_is_pushed(
    world: tuple[TargetRepo, FakeForge, Settings], tmp_path: Path
) -> None:
    """Past its freshness bound, a staged commit is pushed only if the base branch and the team's ``auto/``
    branches are as the stage saw them (StaleStage otherwise, nothing pushed); and what is pushed is the
    staged commit itself, even if the local branch was moved meanwhile."""
    from devops_automation.target import Staged, StaleStage

    target, forge, _ = world
    root = _render(tmp_path / "render" / "payroll", "payroll")

    def stage(n: int) -> Staged:
        branch = branch_name("payroll", datetime(2026, 12, n, tzinfo=UTC), request_id=f"req-payroll{n}")
        staged = target.stage_branch(
            request_id=f"req-payroll{n}",
            team_name="payroll",
            branch=branch,
            rendered_root=root,
            files=_files("payroll"),
            message=f"m\n\nTracking-Id: req-payroll{n}\n",
        )
        assert isinstance(staged, Staged)
        return staged

    main = forge.git("rev-parse", "refs/heads/main")
    first = stage(1)
    forge.git("update-ref", "refs/heads/auto/team-payroll-20261201T000000Z-abcdef", main)  # another publish
    with pytest.raises(StaleStage):
        target.push_staged(first, "req-payroll1", fresh_for=0)
    assert first.branch not in remote_branches(forge.bare)

    second = stage(2)  # sees that branch now
    moved = forge.git("commit-tree", forge.git("rev-parse", "main^{tree}"), "-p", main, "-m", "someone merged")
    forge.git("update-ref", "refs/heads/main", moved)
    with pytest.raises(StaleStage):
        target.push_staged(second, "req-payroll2", fresh_for=0)

    third = stage(3)
    _git(target.path, "update-ref", f"refs/heads/{third.branch}", main)  # the local branch moved meanwhile
    assert target.push_staged(third, "req-payroll3", fresh_for=0).commit == third.commit
    assert remote_branches(forge.bare)[third.branch] == third.commit
