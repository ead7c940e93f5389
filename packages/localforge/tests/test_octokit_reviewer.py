"""(f) Octokit, a second client beside PyGithub, runs a reviewer's session (``tests/octokit/reviewer.mjs``):
every answer it gets is checked against GitHub's OpenAPI description by the ``forge`` fixture, and what it
saw is asserted here."""

from __future__ import annotations

import pytest
from conftest import REPO, TOKEN, ForgeUnderTest, Pusher
from octokit_client import run_script

REVIEWER = "alice-octokit-token"


def test_a_reviewer_with_octokit(forge: ForgeUnderTest, push: Pusher) -> None:
    forge.add_user("alice", token=REVIEWER)
    head = push("auto/team-x", {"teams/x/team.yaml": "name: x\n"}, message="Add team x")
    push("auto/risky", {"teams/risky/team.yaml": "name: risky\n"}, message="Add a risky team")
    try:
        seen = run_script(
            "reviewer.mjs",
            {
                "LF_API": forge.base_url,
                "LF_AUTHOR_TOKEN": TOKEN,
                "LF_REVIEWER_TOKEN": REVIEWER,
                "LF_OWNER": "acme",
                "LF_REPO": "teams",
                "LF_FEATURE": "auto/team-x",
                "LF_DRAFT": "auto/risky",
            },
        )
    except RuntimeError as exc:  # npm or node missing: the environment is broken, say so loudly
        pytest.fail(str(exc))
    assert seen["repos"] == [REPO] and seen["org_repos"] == [REPO]
    assert sorted(seen["open_pulls"]) == [[1, True], [2, False]]
    assert seen["mergeable_state"] == "blocked"
    assert seen["diff"].startswith("diff --git a/teams/x/team.yaml b/teams/x/team.yaml") and "+name: x" in seen["diff"]
    assert seen["patch"].startswith(f"From {head} ") and "Subject: [PATCH] Add team x" in seen["patch"]
    assert seen["files"] == ["teams/x/team.yaml"]
    assert seen["self_approval"] == {
        "status": 422,
        "message": "Unprocessable Entity",
        "errors": ["Can not approve your own pull request"],
    }
    assert seen["labels"] == ["reviewed"]
    assert (seen["requested"], seen["requested_after"]) == (["bob"], [])
    assert seen["draft_merge"]["status"] == 405 and seen["draft_merge"]["message"] == "Pull Request is still a draft"
    assert seen["unreviewed_merge"]["message"] == (
        "At least 1 approving review is required by reviewers with write access."
    )
    assert seen["review"] == "APPROVED" and seen["reviews"] == [["alice", "APPROVED"]]
    assert seen["unchecked_merge"]["message"] == 'Required status check "ci" is expected.'
    merged, merge_sha = seen["merged"]
    assert merged and seen["commits"][0] == merge_sha and head in seen["commits"]
    assert len(seen["commits"]) == 3  # merge, the team, the seed: paginated two at a time through Link
    assert seen["compare"] == ["diverged", 1, 2]
    assert seen["pull_commits"] == [head] and seen["commit_files"] == ["teams/x/team.yaml"]
    assert seen["check_suites"] == 0
    assert "auto/team-x" not in seen["branches"] and "auto/risky" in seen["branches"]
