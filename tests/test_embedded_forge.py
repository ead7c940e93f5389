"""The embedded forge as the crew sets it up: its target's main protected by default (and as configured),
reviewers with tokens of their own, pull request links that outlive the port, and the review page's link
back to the dashboard. Real forge, real git, real sockets on loopback."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
from pathlib import Path

import pytest
import requests
from git import Repo
from github import Auth, Github, GithubException

from devops_automation.app import build_app
from devops_automation.errors import ConfigurationError
from devops_automation.forge.local import embedded_server, embedded_token, reviewer_token

from .conftest import make_settings
from .helpers import bare, new_gap
from .notify_fixtures import free_port

TARGET = "local/teams"


def _settings(tmp_path: Path, **overrides: object):
    values: dict[str, object] = {"forge": "local", "validate_render": False, "forge_port": 0}
    values.update(overrides)
    return make_settings(tmp_path / "home", **values)


def _push_main(url: str, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """Clone over smart HTTP, commit on main and push it back (``extra``: e.g. ``--force``)."""
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "Someone",
        "GIT_AUTHOR_EMAIL": "someone@example.com",
        "GIT_COMMITTER_NAME": "Someone",
        "GIT_COMMITTER_EMAIL": "someone@example.com",
    }
    work = tmp_path / f"clone-{len(list(tmp_path.glob('clone-*')))}"
    subprocess.run(["git", "clone", "--quiet", url, str(work)], check=True, env=env, capture_output=True)
    (work / "direct.txt").write_text("straight onto main\n")
    subprocess.run(["git", "add", "-A"], cwd=work, check=True, env=env)
    amend = ["--amend"] if "--force" in extra else []
    subprocess.run(["git", "commit", "-qm", "direct", *amend], cwd=work, check=True, env=env)
    return subprocess.run(
        ["git", "push", "--porcelain", *extra, "origin", "HEAD:main"], cwd=work, env=env, capture_output=True, text=True
    )


def test_main_is_protected_by_default_even_from_the_crews_own_token(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    token = embedded_token(settings)
    forge = embedded_server(settings, token, None)
    api = forge.start()
    try:
        protection = requests.get(
            f"{api}/repos/{TARGET}/branches/main/protection", headers={"Authorization": f"token {token}"}, timeout=10
        ).json()
        assert protection["required_status_checks"]["contexts"] == ["ci"]
        assert protection["required_pull_request_reviews"]["required_approving_review_count"] == 1
        assert protection["required_pull_request_reviews"]["dismiss_stale_reviews"] is True
        assert protection["enforce_admins"]["enabled"] is True
        assert (
            protection["allow_force_pushes"]["enabled"] is False and protection["allow_deletions"]["enabled"] is False
        )
        authed = forge.clone_url(TARGET).replace("http://", f"http://x-access-token:{token}@")
        plain = _push_main(authed, tmp_path)
        assert plain.returncode != 0 and "Changes must be made through a pull request." in plain.stderr
        forced = _push_main(authed, tmp_path, "--force")
        assert forced.returncode != 0 and "Cannot force-push to this branch" in forced.stderr
        deleted = requests.delete(
            f"{api}/repos/{TARGET}/git/refs/heads/main", headers={"Authorization": f"token {token}"}, timeout=10
        )
        assert deleted.status_code == 422 and deleted.json()["message"] == "Cannot delete this protected branch"
    finally:
        forge.close()


def test_protection_follows_the_settings_each_time_the_forge_opens(tmp_path: Path) -> None:
    custom = _settings(
        tmp_path, forge_required_checks="ci, lint", forge_required_approvals=2, forge_enforce_admins=False
    )
    token = embedded_token(custom)
    forge = embedded_server(custom, token, None)
    api = forge.start()
    headers = {"Authorization": f"token {token}"}
    try:
        body = requests.get(f"{api}/repos/{TARGET}/branches/main/protection", headers=headers, timeout=10).json()
        assert body["required_status_checks"]["contexts"] == ["ci", "lint"]
        assert body["required_pull_request_reviews"]["required_approving_review_count"] == 2
        assert body["enforce_admins"]["enabled"] is False
        authed = forge.clone_url(TARGET).replace("http://", f"http://x-access-token:{token}@")
        assert _push_main(authed, tmp_path).returncode == 0  # admins may bypass when not enforced
    finally:
        forge.close()
    forge = embedded_server(_settings(tmp_path, forge_protect_base=False), token, None)
    api = forge.start()
    try:
        gone = requests.get(f"{api}/repos/{TARGET}/branches/main/protection", headers=headers, timeout=10)
        assert gone.status_code == 404 and gone.json()["message"] == "Branch not protected"
    finally:
        forge.close()


def test_named_reviewers_get_private_tokens_and_may_approve(tmp_path: Path) -> None:
    settings = _settings(tmp_path, forge_reviewers="rita, sam")
    with pytest.raises(ConfigurationError, match="not one of DEVOPS_CREW_FORGE_REVIEWERS"):
        reviewer_token(settings, "mallory")
    with pytest.raises(ConfigurationError, match="not a valid login"):
        reviewer_token(_settings(tmp_path, forge_reviewers="bad login"), "bad login")
    app = build_app(settings)
    try:
        request = app.engine.submit(new_gap(1)).request
        path = settings.home / "forge" / "tokens" / "rita"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.read_text() == reviewer_token(settings, "rita")
        server = app.forge.server
        as_rita = Github(base_url=server.base_url, auth=Auth.Token(reviewer_token(settings, "rita")))
        pull = as_rita.get_repo(TARGET).get_pull(request.pr_number)
        assert pull.create_review(event="APPROVE").state == "APPROVED"
        crew = app.forge.repo.get_pull(request.pr_number)  # the crew's own token: the author
        with pytest.raises(GithubException) as own:
            crew.create_review(event="APPROVE")
        assert own.value.status == 422
        with pytest.raises(GithubException) as unchecked:
            crew.merge(merge_method="merge")
        assert unchecked.value.data["message"] == 'Required status check "ci" is expected.'
        server.set_status(TARGET, pull.head.sha, "success")
        assert crew.merge(merge_method="merge").merged
    finally:
        app.close()


def test_pull_request_links_outlive_the_port_and_lead_to_the_dashboard(tmp_path: Path) -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]  # busy: the crew's in-process forge has to take another port
    settings = _settings(tmp_path, forge_port=port, public_url="https://crew.example")
    app = build_app(settings)
    try:
        request = app.engine.submit(new_gap(1)).request
        assert not app.forge.server.base_url.startswith(f"http://127.0.0.1:{port}/")
        assert request.pr_url == f"http://127.0.0.1:{port}/{TARGET}/pull/{request.pr_number}"
    finally:
        app.close()
        holder.close()
    later = embedded_server(settings, embedded_token(settings), None)  # `forge serve` on its usual port
    later.start(port=port)
    try:
        page = requests.get(request.pr_url, timeout=10)
        assert page.status_code == 200 and f"#{request.pr_number}" in page.text
        assert f'href="https://crew.example/requests/{request.id}"' in page.text
        assert requests.get(request.pr_url + ".diff", timeout=10).text.startswith("diff --git ")
    finally:
        later.close()


def test_an_approver_merging_from_the_dashboard_is_the_forges_reviewer(tmp_path: Path) -> None:
    from devops_automation.authz import Actor, Channel, Role
    from devops_automation.errors import ForgeError
    from devops_automation.service import CrewService

    alice = Actor(id="alice", channel=Channel.web, roles=frozenset({Role.requester, Role.viewer}))
    bob = Actor(id="bob", channel=Channel.web, roles=frozenset({Role.approver, Role.viewer}))
    carol = Actor(id="carol", channel=Channel.web, roles=frozenset({Role.approver, Role.viewer}))
    with CrewService(_settings(tmp_path, forge_reviewers="bob")) as service:
        rid = service.submit(alice, new_gap(1))["id"]
        assert service.get(bob, rid)["state"] == "published"
        with pytest.raises(ForgeError, match="At least 1 approving review is required"):
            service.merge(carol, rid)  # carol has no forge account: the forge sees no review
        service.app.forge.server.inject_fault("POST", r"/reviews$", 502, times=10)
        with pytest.raises(ForgeError, match="502"):
            service.merge(bob, rid)  # the forge fails the review: nothing merged, press again later
        assert service.get(bob, rid)["state"] == "published"
        service.app.forge.server.faults.clear()
        with pytest.raises(ForgeError, match='Required status check "ci" is expected'):
            service.merge(bob, rid)  # bob's review is recorded, but CI has not reported
        server = service.app.forge.server
        reviews = server.state  # the forge's own records: bob approved the crew's commit
        with reviews.transaction():
            repo = reviews.repo_by_name("local", "teams")
            number = service.get(bob, rid)["pull_request"]["number"]
            approvals = [(reviews.user_by_id(r.user_id).login, r.state) for r in reviews.reviews(repo.id, number)]
        assert approvals == [("bob", "APPROVED")]
        server.set_status(TARGET, service.get(bob, rid)["commit"], "success")
        assert service.merge(bob, rid)["state"] == "merged"
        actions = [r.action for r in service.app.store.iter_audit(rid)]
        assert actions.count("forge.review_recorded") == 2 and actions[-1] == "request.merged"


def test_stored_links_are_built_again_when_shown_from_the_forges_base_as_it_is_now(tmp_path: Path) -> None:
    """A pull request opened while the forge had one port is shown, later, with the port (or the public
    URL) the settings give now, in the service's views, the review and the notification feed."""
    from devops_automation.authz import Actor, Channel, Role
    from devops_automation.service import CrewService

    alice = Actor(id="alice", channel=Channel.web, roles=frozenset({Role.requester, Role.viewer}))
    first, second = free_port(), free_port()
    with CrewService(_settings(tmp_path, forge_port=first)) as service:
        view = service.submit(alice, new_gap(1))
        number = view["pull_request"]["number"]
        assert view["pull_request"]["url"] == f"http://127.0.0.1:{first}/{TARGET}/pull/{number}"
        stored = service.store.require_request(view["id"])
        assert stored.pr_forge == "local"
    later = _settings(tmp_path, forge_port=second)
    forge = embedded_server(later, embedded_token(later), None)  # `forge serve` on the port it has now
    forge.start(port=second)
    try:
        with CrewService(later) as service:
            url = service.get(alice, view["id"])["pull_request"]["url"]
            assert url == f"http://127.0.0.1:{second}/{TARGET}/pull/{number}"
            page = requests.get(url, timeout=10)
            assert page.status_code == 200 and f"#{number}" in page.text
            assert service.list(alice, limit=5)[0]["pull_request"]["url"] == url
            assert service.review(alice, view["id"])["pull_request"]["url"] == url
            opened = [e for e in service.feed(alice, request_id=view["id"]) if e["payload"].get("pr_number")]
            assert opened and all(e["payload"]["pr_url"] == url for e in opened)
    finally:
        forge.close()
    public = _settings(tmp_path, forge_port=second, forge_public_url="https://forge.example.org/")
    with CrewService(public) as service:
        shown = service.get(alice, view["id"])["pull_request"]["url"]
        assert shown == f"https://forge.example.org/{TARGET}/pull/{number}"
    github = _settings(tmp_path, forge="fake")
    with CrewService(github) as service:  # another forge: the stored link, as it was
        assert service.get(alice, view["id"])["pull_request"]["url"] == view["pull_request"]["url"]


@pytest.mark.parametrize(
    ("stored", "forge", "shown"),
    [
        ("http://127.0.0.1:40001/acme/teams/pull/7", "local", "https://f.example/acme/teams/pull/7"),
        ("http://127.0.0.1:40001/acme/teams/pull/7", None, "https://f.example/acme/teams/pull/7"),
        ("http://forge.old:3131/acme/teams/pull/7", "local", "https://f.example/acme/teams/pull/7"),
        ("http://forge.old:3131/acme/teams/pull/7", None, "http://forge.old:3131/acme/teams/pull/7"),
        ("https://github.com/acme/teams/pull/7", "github", "https://github.com/acme/teams/pull/7"),
        ("http://127.0.0.1:40001/acme/teams/issues/7", "local", "http://127.0.0.1:40001/acme/teams/issues/7"),
        ("javascript:alert(1)//acme/teams/pull/7", "local", "javascript:alert(1)//acme/teams/pull/7"),
        (None, "local", None),
    ],
)
def test_which_links_are_rebuilt(stored: str | None, forge: str | None, shown: str | None) -> None:
    from devops_automation.forge.links import PullLinks

    assert PullLinks("https://f.example").url(stored, forge) == shown
    assert PullLinks(None).url(stored, forge) == stored


def test_branch_head_reads_one_ref_exactly(tmp_path: Path) -> None:
    """GitHub's "get a reference": the commit of that branch, None for a branch that does not exist, even
    when other branches start with its name."""
    app = build_app(make_settings(tmp_path / "home"))
    try:
        repo = Repo(bare(app))
        main = repo.commit("main").hexsha
        repo.git.update_ref("refs/heads/main-and-more", main)
        assert app.forge.branch_head("main") == main
        assert app.forge.branch_head("mai") is None and app.forge.branch_head("nothing") is None
    finally:
        app.close()


def test_deleting_a_branch_that_is_not_there_says_so(tmp_path: Path) -> None:
    """PyGithub's reference is lazy: the delete itself is the request that finds the branch missing."""
    app = build_app(make_settings(tmp_path / "home"))
    try:
        repo = Repo(bare(app))
        repo.git.update_ref("refs/heads/auto/team-gone-20261201T000000Z", repo.commit("main").hexsha)
        assert app.forge.delete_branch("auto/team-gone-20261201T000000Z") is True
        assert app.forge.delete_branch("auto/team-gone-20261201T000000Z") is False
    finally:
        app.close()
