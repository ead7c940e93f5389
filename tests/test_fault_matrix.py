"""The fault matrix: every write of the publish step fails once, a reviewer acts meanwhile, then the
request is resumed (and tracked). Whatever the combination, the world and the request agree:

- at most one branch and one pull request for the request on the forge;
- the request ends published (with that pull request) or merged, never failed or stuck;
- nothing a human made is deleted or overwritten (their commit stays the branch's head);
- after ``track``, the state is what the forge says (merged, closed -> rejected, open -> published);
- ``audit --verify`` passes.

Faults are real where git allows it: the remote made unreachable (fetch), a pre-receive hook refusing the
push with a reason (push); the forge's calls fail through the fake forge's fault points (open PR, labels,
reviewers); a commit failure is injected into the checkout's commit (git offers no way to make it fail).

With render validation on, the scaffold step stages the publish's fetch and commit while the generated
team's tests run: its rows fail the fetch, the commit and the staged commit's push there, and the request
still ends published, or failed and resumable, with one branch and one pull request after a resume.

The notify step has its own rows: a channel answering 500, unreachable, an SMTP server that is down, and
one refusing every recipient. The request's state never depends on a channel; a transient failure is
retried with backoff and sent exactly once when the channel recovers (the next event too); a permanent one
is given up at once and recorded. (The gap review's faults — an unparsable report, a missing directory,
the lease held elsewhere — are in tests/test_gap_review.py.)
"""

from __future__ import annotations

import itertools
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from git import GitCommandError, Repo

from devops_automation.app import App, build_app
from devops_automation.audit import verify_chain
from devops_automation.engine import Hooks
from devops_automation.forge.fake import FakeForge
from devops_automation.models import LLMUsage, RequestState, TeamCreationRequest

from .conftest import make_settings
from .helpers import new_gap

FAULTS = ["fetch", "commit", "push", "open_pr", "labels", "reviewers"]
ACTIONS = ["nothing", "push_to_branch", "close_pr", "delete_branch", "merge_pr", "fast_forward_base"]
CASES = list(itertools.product(FAULTS, ACTIONS))
HOOK_REASON = "policy bot: pushes to auto/ are frozen during the incident"


@pytest.fixture(scope="module", autouse=True)
def _report_size() -> Iterator[None]:
    yield
    print(f"\nfault matrix: {len(CASES)} cases ({len(FAULTS)} faults x {len(ACTIONS)} reviewer actions)")


class Harness:
    """An app on the fake forge whose runs stop once a request is scaffolded (so a fault can be armed
    for the publish step alone)."""

    def __init__(self, tmp_path: Path) -> None:
        self.pause = threading.Event()

        def on_step(_step: str, _seconds: float, request: TeamCreationRequest, _spent: LLMUsage) -> None:
            if request.state is RequestState.scaffolded:
                self.pause.set()

        settings = make_settings(tmp_path / "home", forge="fake", validate_render=False)
        self.app: App = build_app(settings, hooks=Hooks(draining=self.pause, on_step=on_step))
        assert isinstance(self.app.forge, FakeForge)
        self.forge: FakeForge = self.app.forge
        self.bare = self.forge.bare
        self.human_commit: str | None = None

    def git(self, *args: str) -> str:
        return self.forge.git(*args)

    def crew_branches(self, team: str) -> dict[str, str]:
        return {h.name: h.commit.hexsha for h in Repo(self.bare).heads if h.name.startswith(f"auto/team-{team}-")}

    def pulls_for(self, team: str) -> list:  # type: ignore[type-arg]
        return [p for p in self.forge.pulls.values() if p.head.startswith(f"auto/team-{team}-")]

    # -- faults ---------------------------------------------------------------------------------
    def arm(self, fault: str, monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
        """Make the next publish fail at ``fault``; returns what clears it."""
        if fault == "fetch":
            away = self.bare.with_name("moved-away.git")
            self.bare.rename(away)
            return lambda: away.rename(self.bare)
        if fault == "push":
            hook = self.bare / "hooks" / "pre-receive"
            hook.write_text(f"#!/bin/sh\necho '{HOOK_REASON}' >&2\nexit 1\n")
            hook.chmod(0o755)
            return hook.unlink
        if fault == "commit":
            target = self.app.target
            original = target._commit

            def failing(*args: object, **kwargs: object) -> str:
                monkeypatch.setattr(target, "_commit", original)
                raise GitCommandError(["git", "commit"], 128, b"fatal: unable to write new index file")

            monkeypatch.setattr(target, "_commit", failing)
            return lambda: None
        self.forge.fail({"open_pr": "ensure_pull_request"}.get(fault, fault))
        return lambda: None

    # -- what a reviewer does meanwhile ---------------------------------------------------------
    def act(self, action: str, request: TeamCreationRequest) -> None:
        branch = request.branch or ""
        head = self.forge._sha(branch)
        pulls = self.pulls_for(request.spec.name if request.spec else "")
        if action == "push_to_branch" and head:
            tree = self.git("rev-parse", f"{head}^{{tree}}")
            self.human_commit = self.git("commit-tree", tree, "-p", head, "-m", "reviewer: fix the README wording")
            self.git("update-ref", f"refs/heads/{branch}", self.human_commit, head)
        elif action == "close_pr" and pulls:
            self.forge.close_pull_request(pulls[0].number)
        elif action == "delete_branch" and head:
            self.forge.delete_branch(branch)
        elif action == "merge_pr" and pulls and head:
            self.forge.merge_pull_request(pulls[0].number, head)
        elif action == "fast_forward_base" and head:
            self.git("update-ref", "refs/heads/main", head)


@pytest.mark.parametrize(("fault", "action"), CASES, ids=[f"{f}-then-{a}" for f, a in CASES])
def test_a_failed_write_and_a_reviewer_then_resume_agree_with_the_world(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault: str, action: str
) -> None:
    harness = Harness(tmp_path)
    engine = harness.app.engine
    try:
        request = engine.submit(new_gap(1)).request
        assert request.state is RequestState.scaffolded, request.error
        team = request.spec.name if request.spec else ""
        clear = harness.arm(fault, monkeypatch)
        harness.pause.clear()
        failed = engine.run(request.id)
        clear()
        assert failed.state is RequestState.failed and failed.resume_state is RequestState.scaffolded, failed.error
        if fault == "push":
            assert HOOK_REASON in (failed.error or ""), failed.error  # the remote's own reason is kept
        harness.act(action, failed)

        resumed = engine.run(request.id)
        assert resumed.state in {RequestState.published, RequestState.merged}, (resumed.state, resumed.error)
        branches = harness.crew_branches(team)
        pulls = harness.pulls_for(team)
        assert len(branches) <= 1 and len(pulls) <= 1, (branches, [p.head for p in pulls])
        if pulls:
            assert resumed.pr_number == pulls[0].number and resumed.branch == pulls[0].head
        if resumed.state is RequestState.merged:
            main = harness.git("rev-parse", "refs/heads/main")
            assert harness.app.target.on_base(resumed.commit_sha or "") and main
        if harness.human_commit is not None:  # nothing a human made is overwritten
            assert branches.get(resumed.branch or "") == harness.human_commit, branches

        tracked = harness.app.lifecycle.track()
        final = engine.get(request.id)
        if pulls and pulls[0].merged:
            assert final.state is RequestState.merged, tracked
        elif pulls and pulls[0].state == "closed":
            assert final.state is RequestState.rejected, tracked
        else:
            assert final.state in {RequestState.published, RequestState.merged}
        rows = list(harness.app.store.iter_audit())
        assert verify_chain(rows, harness.app.store.audit_head()) == []
    finally:
        harness.app.close()
        shutil.rmtree(tmp_path / "home", ignore_errors=True)


# -- the commit staged beside the team tests: a fault there is deferred to the publish, never lost ----------
STAGED_FAULTS = ["fetch", "commit", "push"]


class StagedHarness(Harness):
    """An app on the fake forge with render validation on, so the scaffold step stages the commit while
    the generated team's tests run; the fault is armed once analysis and the gate are done, so it hits the
    stage (and, when it lasts, the publish)."""

    def __init__(self, tmp_path: Path, arm: Callable[[Harness], Callable[[], None]]) -> None:
        self.clear: Callable[[], None] | None = None

        def on_step(_step: str, _seconds: float, request: TeamCreationRequest, _spent: LLMUsage) -> None:
            if request.state is RequestState.approved_by_policy and self.clear is None:
                self.clear = arm(self)

        settings = make_settings(tmp_path / "home", forge="fake", validate_render=True)
        self.app = build_app(settings, hooks=Hooks(on_step=on_step))
        assert isinstance(self.app.forge, FakeForge)
        self.forge = self.app.forge
        self.bare = self.forge.bare
        self.human_commit = None


@pytest.mark.parametrize("fault", STAGED_FAULTS)
def test_a_fault_while_the_commit_is_staged_ends_true(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    """A fetch or commit failure while the commit is staged is only audited (``publish.stage_deferred``):
    the publish step does the whole publish and meets the fault again if it lasts (failed, resumable at
    ``scaffolded``, git's or the remote's own words), or publishes when it is gone. A push of the staged
    commit that fails falls back to the whole publish, which fails the same way. Either way a resume ends
    with one branch and one pull request, and the audit chain verifies."""
    harness = StagedHarness(tmp_path, lambda h: h.arm(fault, monkeypatch))
    engine = harness.app.engine
    try:
        first = engine.submit(new_gap(1)).request
        assert harness.clear is not None, "the fault was never armed"
        deferred = [r for r in harness.app.store.iter_audit() if r.action == "publish.stage_deferred"]
        assert len(deferred) == (0 if fault == "push" else 1)
        if fault == "commit":  # a one-off failure: the publish built the commit itself
            assert first.state is RequestState.published, first.error
        else:
            assert first.state is RequestState.failed and first.resume_state is RequestState.scaffolded, first.error
            assert (HOOK_REASON if fault == "push" else "cannot fetch the target repository") in (first.error or "")
            if fault == "push":  # the staged push failed, then the whole publish's push
                pushes = [r for r in harness.app.store.iter_audit() if r.action == "git.push" and r.phase == "failed"]
                assert len(pushes) == 2
        harness.clear()
        final = engine.run(first.id) if first.state is RequestState.failed else first
        assert final.state is RequestState.published, final.error
        team = final.spec.name if final.spec else ""
        assert list(harness.crew_branches(team)) == [final.branch] and len(harness.pulls_for(team)) == 1
        assert verify_chain(list(harness.app.store.iter_audit()), harness.app.store.audit_head()) == []
    finally:
        harness.app.close()
        shutil.rmtree(tmp_path / "home", ignore_errors=True)


@pytest.mark.parametrize("times", [1, 2])
def test_a_forge_fault_reading_codeowners_beside_the_tests_ends_true(tmp_path: Path, times: int) -> None:
    """The CODEOWNERS read done while the team's tests run fails: it is audited as failed and the pull
    request reads them again. Once, the request is published; twice, it ends failed and resumable at
    ``scaffolded`` with the forge's words, and the resume publishes one branch and one pull request."""

    def arm(harness: Harness) -> Callable[[], None]:
        harness.forge.fail("codeowners", times)
        return lambda: None

    harness = StagedHarness(tmp_path, arm)
    try:
        first = harness.app.engine.submit(new_gap(1)).request
        reads = [r.phase for r in harness.app.store.iter_audit(first.id) if r.action == "forge.read_codeowners"]
        assert reads[:2] == ["initiated", "failed"], reads
        if times == 1:
            assert first.state is RequestState.published, first.error
        else:
            assert first.state is RequestState.failed and first.resume_state is RequestState.scaffolded, first.error
            assert "injected failure of codeowners" in (first.error or "")
            first = harness.app.engine.run(first.id)
            assert first.state is RequestState.published, first.error
        team = first.spec.name if first.spec else ""
        assert list(harness.crew_branches(team)) == [first.branch] and len(harness.pulls_for(team)) == 1
        assert harness.forge.calls.count("codeowners") == times + 1
        assert verify_chain(list(harness.app.store.iter_audit()), harness.app.store.audit_head()) == []
    finally:
        harness.app.close()
        shutil.rmtree(tmp_path / "home", ignore_errors=True)


# -- notifications: a failing channel never fails the request; each event goes out once ------------------
NOTIFY_FAULTS = ["webhook_500", "webhook_unreachable", "smtp_down", "smtp_refuses"]


@pytest.mark.parametrize("fault", NOTIFY_FAULTS)
def test_a_failing_channel_leaves_the_request_alone_and_sends_once_when_it_recovers(fault: str, tmp_path: Path) -> None:
    import time

    from devops_automation.authz import Actor, Channel, Role
    from devops_automation.service import CrewService

    from .notify_fixtures import free_port, smtp_server, webhook_server

    ops = Actor(id="oscar", channel=Channel.web, roles=frozenset({Role.admin}))
    port = free_port()
    if fault.startswith("webhook"):
        channel = {"notify_discord_webhook": f"http://127.0.0.1:{port}/api/webhooks/1/tok"}
    else:
        channel = {
            "smtp_host": "127.0.0.1",
            "smtp_port": port,
            "smtp_starttls": False,
            "notify_email_to": "r@example.org",
        }
    settings = make_settings(
        tmp_path / "home", forge="fake", validate_render=False, notify_backoff_seconds=0.2, **channel
    )
    service = CrewService(settings)

    def deliveries() -> list[dict]:  # type: ignore[type-arg]
        return [d for e in service.feed(ops) for d in e["deliveries"].values()]

    def recover() -> Iterator[list]:  # type: ignore[type-arg]
        if fault.startswith("webhook"):
            with webhook_server(port) as hook:
                yield hook.posts
        else:
            with smtp_server(port) as box:
                yield box.messages

    if fault == "webhook_500":
        with webhook_server(port) as hook:
            hook.status = 500
            view = service.submit(ops, new_gap(1))
    elif fault == "smtp_refuses":
        with smtp_server(port, refuse_recipients=True) as box:
            view = service.submit(ops, new_gap(1))
            assert box.messages == []
    else:
        view = service.submit(ops, new_gap(1))
    assert view["state"] == "published"  # the channel's failure is not the request's
    [delivery] = deliveries()
    if fault == "smtp_refuses":  # retrying cannot help: given up at once, recorded
        assert delivery["status"] == "dead" and "refused" in delivery["error"]
        return
    assert delivery["status"] == "pending" and delivery["attempts"] == 1 and delivery["error"]
    time.sleep(0.25)
    for received in recover():
        service.deliver_notifications(ops)
        service.deliver_notifications(ops)  # nothing twice
        # the next event goes out too
        service.app.forge.close_pull_request(view["pull_request"]["number"])
        service.track(ops)
        assert len(received) == 2
    assert {d["status"] for d in deliveries()} == {"sent"}
    assert verify_chain(service.store.iter_audit(), service.store.audit_head()) == []
