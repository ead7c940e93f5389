"""(b) The publish-and-track path driven by PyGithub itself, read back through PyGithub and git."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import REPO, ForgeUnderTest, Pusher, git
from git import Repo as GitRepo
from github import Auth, Github, GithubException


def _push_team_branch(forge: ForgeUnderTest, tmp_path: Path, branch: str, team: str) -> str:
    """What the app's publish step does: commit a new team with GitPython and push it (file transport)."""
    work = GitRepo.clone_from(str(forge.repo_path(REPO)), tmp_path / f"clone-{team}")
    with work.config_writer() as cfg:
        cfg.set_value("user", "name", "devops-crew-bot")
        cfg.set_value("user", "email", "bot@example.com")
    work.git.checkout("-b", branch)
    team_dir = Path(work.working_tree_dir or "") / "teams" / team
    team_dir.mkdir(parents=True)
    (team_dir / "team.yaml").write_text(f"name: {team}\nowner: alice\n")
    (team_dir / "README.md").write_text(f"# {team}\n")
    work.index.add([f"teams/{team}/team.yaml", f"teams/{team}/README.md"])
    commit = work.index.commit(f"Add team {team}")
    work.remote("origin").push(f"{commit.hexsha}:refs/heads/staging/{team}").raise_if_error()
    return commit.hexsha


def test_publish_track_merge_close_and_clean_up(forge: ForgeUnderTest, gh: Github, tmp_path: Path) -> None:
    me = gh.get_user()
    assert me.login == "devops-crew-bot"
    repo = gh.get_repo(REPO)
    assert (repo.full_name, repo.default_branch, repo.description) == (REPO, "main", "All the teams")
    assert repo.clone_url == f"{forge.web_url}/{REPO}.git"
    main_before = repo.get_branch("main").commit.sha
    codeowners = repo.get_contents("CODEOWNERS", ref="main")
    assert codeowners.decoded_content.decode().startswith("* @acme/platform")

    # push a real commit, then create the branch ref through the API
    sha = _push_team_branch(forge, tmp_path, "auto/d3-charts", "d3_charts")
    ref = repo.create_git_ref("refs/heads/auto/d3-charts", sha)
    assert (ref.ref, ref.object.sha, ref.object.type) == ("refs/heads/auto/d3-charts", sha, "commit")
    assert repo.get_git_ref("heads/auto/d3-charts").object.sha == sha
    assert repo.get_branch("auto/d3-charts").commit.sha == sha

    pr = repo.create_pull(base="main", head="auto/d3-charts", title="Add team d3_charts", body="Generated.")
    assert (pr.state, pr.merged, pr.mergeable, pr.head.sha, pr.base.ref) == ("open", False, True, sha, "main")
    assert (pr.commits, pr.changed_files, pr.additions, pr.deletions) == (1, 2, 3, 0)
    assert pr.head.label == "acme:auto/d3-charts"
    pr.add_to_labels("new-team", "automated")
    comment = pr.create_issue_comment("Opened by devops-crew for gap-d3.")
    pr.create_review_request(reviewers=["alice"], team_reviewers=["platform"])

    again = repo.get_pull(pr.number)
    assert sorted(lb.name for lb in again.labels) == ["automated", "new-team"]
    assert [u.login for u in again.requested_reviewers] == ["alice"]
    assert [t.slug for t in again.requested_teams] == ["platform"]
    assert again.comments == 1
    assert [c.body for c in again.get_issue_comments()] == ["Opened by devops-crew for gap-d3."]
    assert comment.user.login == "devops-crew-bot"
    users, teams = again.get_review_requests()
    assert ([u.login for u in users], [t.slug for t in teams]) == (["alice"], ["platform"])
    files = {f.filename: f for f in again.get_files()}
    assert set(files) == {"teams/d3_charts/team.yaml", "teams/d3_charts/README.md"}
    assert files["teams/d3_charts/team.yaml"].status == "added"
    assert "+name: d3_charts" in (files["teams/d3_charts/team.yaml"].patch or "")
    assert [p.number for p in repo.get_pulls(state="open", head="acme:auto/d3-charts", base="main")] == [pr.number]
    assert repo.get_contents("teams/d3_charts/team.yaml", ref="auto/d3-charts").decoded_content == (
        b"name: d3_charts\nowner: alice\n"
    )

    # a second pull request, closed without merging
    other_sha = _push_team_branch(forge, tmp_path, "auto/other", "other_team")
    repo.create_git_ref("refs/heads/auto/other", other_sha)
    other = repo.create_pull(base="main", head="auto/other", title="Add team other_team", body="")
    other.edit(state="closed")
    assert repo.get_pull(other.number).state == "closed"
    assert repo.get_pull(other.number).merged is False
    assert [p.number for p in repo.get_pulls(state="closed")] == [other.number]

    # merge the first one: a real merge commit in the bare repository
    status = again.merge(commit_message="Adds d3_charts", merge_method="merge", sha=sha)
    assert status.merged is True
    merged = repo.get_pull(pr.number)
    assert merged.merged and merged.state == "closed"
    assert merged.merge_commit_sha == status.sha
    assert merged.merged_at is not None and merged.merged_by.login == "devops-crew-bot"
    bare = forge.repo_path(REPO)
    assert git("--git-dir", str(bare), "rev-parse", "refs/heads/main") == status.sha
    parents = git("--git-dir", str(bare), "rev-list", "--parents", "-n", "1", status.sha).split()[1:]
    assert parents == [main_before, sha]
    message = git("--git-dir", str(bare), "log", "-1", "--format=%B", status.sha)
    assert message.startswith("Merge pull request #1 from acme/auto/d3-charts\n\nAdds d3_charts")
    assert git("--git-dir", str(bare), "show", f"{status.sha}:teams/d3_charts/team.yaml").startswith("name:")
    assert repo.get_branch("main").commit.sha == status.sha
    assert repo.get_commit(status.sha).parents[1].sha == sha

    # clean up: delete both branches through the API
    repo.get_git_ref("heads/auto/d3-charts").delete()
    repo.get_git_ref("heads/auto/other").delete()
    assert git("--git-dir", str(bare), "for-each-ref", "refs/heads/auto/") == ""
    with pytest.raises(GithubException) as missing:
        repo.get_git_ref("heads/auto/d3-charts")
    assert missing.value.status == 404
    branches = [b.name for b in repo.get_branches()]
    assert "auto/d3-charts" not in branches and "main" in branches
    assert repo.get_pull(pr.number).merged  # merged pulls stay merged after their branch goes


def test_squash_and_rebase_merges(forge: ForgeUnderTest, gh: Github, push: Pusher) -> None:
    repo = gh.get_repo(REPO)
    bare = forge.repo_path(REPO)
    push("auto/squash", {"s1.txt": "1\n"})
    sha = push("auto/squash", {"s2.txt": "2\n"}, base="auto/squash", message="second")
    squash = repo.create_pull(base="main", head="auto/squash", title="Squash me")
    result = squash.merge(merge_method="squash")
    parents = git("--git-dir", str(bare), "rev-list", "--parents", "-n", "1", result.sha).split()[1:]
    assert len(parents) == 1 and git("--git-dir", str(bare), "log", "-1", "--format=%s", result.sha) == (
        f"Squash me (#{squash.number})"
    )
    assert git("--git-dir", str(bare), "show", f"{result.sha}:s2.txt") == "2"
    assert sha != result.sha

    push("auto/rebase", {"r.txt": "r\n"}, base="main")
    push("auto/moved", {"m.txt": "m\n"})  # main moves on, so the rebase must really replay
    moved = repo.create_pull(base="main", head="auto/moved", title="Move main")
    moved.merge()
    rebase = repo.create_pull(base="main", head="auto/rebase", title="Rebase me")
    result = rebase.merge(merge_method="rebase")
    assert git("--git-dir", str(bare), "rev-parse", "main") == result.sha
    assert git("--git-dir", str(bare), "log", "-1", "--format=%s", result.sha) == "change"
    assert git("--git-dir", str(bare), "show", f"{result.sha}:m.txt") == "m"
    assert git("--git-dir", str(bare), "show", f"{result.sha}:r.txt") == "r"


def test_the_pytest_plugin_serves_a_forge(local_forge) -> None:
    """Installing the distribution registers ``local_forge`` (entry point pytest11)."""
    local_forge.create_repo("acme/plugin")
    gh = Github(base_url=local_forge.base_url, auth=Auth.Token(local_forge.token), retry=None)
    assert gh.get_repo("acme/plugin").full_name == "acme/plugin"
