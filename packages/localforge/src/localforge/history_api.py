"""The REST endpoints for a repository's history: commits (listed, of a pull request, compared), the
sub-resources of one commit, and diffs and patches in GitHub's own media types. Mixed into
:class:`.api.ForgeApi`.

GitHub behaviours kept on purpose:

- ``GET /commits`` lists from ``sha`` (a sha or branch; the default branch without it), newest first,
  paged with a ``Link`` header, optionally only the commits touching ``path``; an unknown ``sha`` is 404
  and an empty repository 409 ``Git Repository is empty.``;
- ``GET /pulls/{n}/commits`` lists the pull request's commits oldest first (at most 250, as GitHub);
- ``GET /compare/{base}...{head}`` compares from the merge base (three dots; two dots compare the two
  commits directly); ``ahead_by``/``behind_by``/``status`` follow;
- ``Accept: application/vnd.github.diff`` (or ``.patch``) on a pull request, a commit or a comparison
  answers the diff (``git diff``) or the patch (``git format-patch``, one mail per commit) as text;
- ``GET /commits/{ref}/check-suites``, ``/pulls``, ``/comments`` and ``/branches-where-head`` are the
  commit's sub-resources, never a ref named ``main/check-suites``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import ci_payloads as C
from . import payloads as P
from . import review_payloads as R
from .ci import CiStore
from .gitrepo import BareRepo
from .routing import ApiError, ApiRequest, ApiResponse, Router, media_type, not_found, paginate, text_response
from .state import ForgeState, Pull, Repo

D_LIST_COMMITS = "https://docs.github.com/rest/commits/commits#list-commits"
D_PULL_COMMITS = "https://docs.github.com/rest/pulls/pulls#list-commits-on-a-pull-request"
D_COMPARE = "https://docs.github.com/rest/commits/commits#compare-two-commits"
D_CHECK_SUITES = "https://docs.github.com/rest/checks/suites#list-check-suites-for-a-git-reference"
D_COMMIT_PULLS = "https://docs.github.com/rest/commits/commits#list-pull-requests-associated-with-a-commit"
D_COMMIT_COMMENTS = "https://docs.github.com/rest/commits/comments#list-commit-comments"
D_WHERE_HEAD = "https://docs.github.com/rest/commits/commits#list-branches-for-head-commit"

PULL_COMMITS_MAX = 250


class HistoryEndpoints:
    """Commits, comparisons and diffs; needs the host class's ``state``, ``ci``, ``git_for`` and helpers."""

    state: ForgeState
    ci: CiStore
    git_for: Callable[[Repo], BareRepo]

    if TYPE_CHECKING:

        def _repo(self, req: ApiRequest, doc: str = ...) -> tuple[Repo, BareRepo]: ...

        def _pull(self, req: ApiRequest, repo: Repo, git: BareRepo, doc: str = ...) -> Pull: ...

        def _repo_body(self, repo: Repo, git: BareRepo, req: ApiRequest, full: bool = False) -> dict[str, Any]: ...

        def _commit_body(self, repo: Repo, git: BareRepo, sha: str, req: ApiRequest) -> dict[str, Any]: ...

        def _refresh(self, repo: Repo, git: BareRepo, pr: Pull) -> Pull: ...

        def _pull_body(
            self,
            req: ApiRequest,
            repo: Repo,
            git: BareRepo,
            pr: Pull,
            full: bool,
            repo_body: dict[str, Any] | None = None,
        ) -> dict[str, Any]: ...

    def _register_history(self, router: Router) -> None:
        """Add the routes; call it before ``GET /commits/{ref}``, whose ``{ref+}`` would swallow them."""
        r = router.add
        r("GET", "/repos/{owner}/{repo}/commits", self.list_commits)
        r("GET", "/repos/{owner}/{repo}/commits/{ref+}/check-suites", self.list_check_suites)
        r("GET", "/repos/{owner}/{repo}/commits/{commit_sha+}/pulls", self.list_commit_pulls)
        r("GET", "/repos/{owner}/{repo}/commits/{commit_sha+}/comments", self.list_commit_comments)
        r("GET", "/repos/{owner}/{repo}/commits/{commit_sha+}/branches-where-head", self.branches_where_head)
        r("GET", "/repos/{owner}/{repo}/pulls/{pull_number}/commits", self.list_pull_commits)
        r("GET", "/repos/{owner}/{repo}/compare/{basehead+}", self.compare)

    # helpers --------------------------------------------------------------------------------------------

    def _commit_or_404(self, req: ApiRequest, git: BareRepo, ref: str, doc: str) -> str:
        sha = git.resolve_commitish(ref)
        if sha is None:
            raise ApiError(422, P.error(f"No commit found for SHA: {ref}", 422, doc))
        return sha

    def _commits_body(self, repo: Repo, git: BareRepo, shas: list[str], req: ApiRequest) -> list[dict[str, Any]]:
        return [self._commit_body(repo, git, sha, req) for sha in shas]

    def files_body(self, repo: Repo, git: BareRepo, base: str, head: str, req: ApiRequest) -> list[dict[str, Any]]:
        """``diff-entry`` of every file changed from ``base`` to ``head``."""
        return [P.diff_entry(repo, f, head, req.urls) for f in git.diff(base, head)]

    def full_commit_body(self, repo: Repo, git: BareRepo, sha: str, req: ApiRequest) -> dict[str, Any]:
        """``commit`` with ``stats`` and ``files`` against its first parent, as ``GET /commits/{ref}``."""
        body = self._commit_body(repo, git, sha, req)
        changes = git.diff(git.first_parent_base(sha), sha)
        additions = sum(f.additions for f in changes)
        deletions = sum(f.deletions for f in changes)
        body["stats"] = {"total": additions + deletions, "additions": additions, "deletions": deletions}
        body["files"] = [P.diff_entry(repo, f, sha, req.urls) for f in changes]
        return body

    def commit_media(self, git: BareRepo, sha: str, kind: str) -> ApiResponse | None:
        """The diff, patch or sha of one commit when the ``Accept`` header asked for it."""
        if kind == "diff":
            return text_response("diff", git.diff_text(git.first_parent_base(sha), sha))
        if kind == "patch":
            return text_response("patch", git.format_patch(None, sha))
        if kind == "sha":
            return text_response("sha", sha.encode())
        return None

    def pull_media(self, git: BareRepo, pr: Pull, kind: str | None) -> ApiResponse | None:
        """A pull request's three-dot diff, or its commits as a patch, when asked for."""
        if kind not in ("diff", "patch"):
            return None
        base = git.merge_base(pr.base_sha, pr.head_sha) or pr.base_sha
        if kind == "diff":
            return text_response("diff", git.diff_text(base, pr.head_sha))
        return text_response("patch", git.format_patch(base, pr.head_sha))

    # endpoints ------------------------------------------------------------------------------------------

    def list_commits(self, req: ApiRequest) -> ApiResponse:
        repo, git = self._repo(req, D_LIST_COMMITS)
        start = req.arg("sha") or repo.default_branch
        if not git.list_refs("refs/heads/"):
            raise ApiError(409, P.error("Git Repository is empty.", 409, D_LIST_COMMITS))
        sha = git.resolve_commitish(start)
        if sha is None:
            raise not_found(D_LIST_COMMITS, f"No commit found for SHA: {start}")
        page, headers = paginate(req, git.history(sha, req.arg("path") or None))
        return ApiResponse(200, self._commits_body(repo, git, list(page), req), headers)

    def list_pull_commits(self, req: ApiRequest) -> ApiResponse:
        repo, git = self._repo(req, D_PULL_COMMITS)
        pr = self._pull(req, repo, git, D_PULL_COMMITS)
        shas = git.commits_between(pr.base_sha, pr.head_sha)[:PULL_COMMITS_MAX]
        page, headers = paginate(req, shas)
        return ApiResponse(200, self._commits_body(repo, git, list(page), req), headers)

    def compare(self, req: ApiRequest) -> ApiResponse:
        repo, git = self._repo(req, D_COMPARE)
        basehead = req.params["basehead"]
        three = "..." in basehead
        base_ref, _, head_ref = basehead.partition("..." if three else "..")
        if not base_ref or not head_ref:
            raise not_found(D_COMPARE)
        base = git.resolve_commitish(base_ref)
        head = git.resolve_commitish(head_ref)
        if base is None or head is None:
            raise not_found(D_COMPARE)
        merge_base = git.merge_base(base, head)
        if merge_base is None:
            raise not_found(D_COMPARE, f"No common ancestor between {base_ref} and {head_ref}.")
        since = merge_base if three else base
        kind = media_type(req)
        if kind == "diff":
            return text_response("diff", git.diff_text(since, head))
        if kind == "patch":
            return text_response("patch", git.format_patch(merge_base, head))
        ahead = git.commits_between(merge_base, head)
        behind = git.commits_between(merge_base, base)
        page, headers = paginate(req, ahead, default_per_page=250)
        body = R.comparison(
            repo,
            basehead,
            self._commit_body(repo, git, base, req),
            self._commit_body(repo, git, merge_base, req),
            self._commits_body(repo, git, list(page), req),
            self.files_body(repo, git, since, head, req),
            len(ahead),
            len(behind),
            req.urls,
        )
        return ApiResponse(200, body, headers)

    def list_check_suites(self, req: ApiRequest) -> ApiResponse:
        repo, git = self._repo(req, D_CHECK_SUITES)
        sha = self._commit_or_404(req, git, req.params["ref"], D_CHECK_SUITES)
        newest: dict[str, Any] = {}
        for run in self.ci.check_runs(repo.id, sha):  # newest first: a re-run replaces its name's verdict
            newest.setdefault(run.name, run)
        runs = list(newest.values())
        if not runs:
            return ApiResponse(200, {"total_count": 0, "check_suites": []})
        if all(r.status == "completed" for r in runs):
            status = "completed"
            outcomes = {r.conclusion for r in runs}
            failing = outcomes & {"failure", "cancelled", "timed_out", "action_required", "stale"}
            conclusion = sorted(failing)[0] if failing else ("success" if "success" in outcomes else "neutral")
        else:
            status, conclusion = ("in_progress" if any(r.status == "in_progress" for r in runs) else "queued"), None
        branches = [name for name, tip in git.branches() if tip == sha]
        pulls = [
            C.pull_minimal(repo, pr, req.urls)
            for pr in self.state.pulls(repo.id)
            if pr.state == "open" and pr.head_sha == sha
        ]
        stamps = [t for r in runs for t in (r.started_at, r.completed_at) if t]
        suite = R.check_suite(
            repo,
            min(r.id for r in runs),
            git.commit(sha),
            branches[0] if branches else None,
            status,
            conclusion,
            len(runs),
            C.ci_app(repo.owner, repo.created_at, req.urls),
            self._repo_body(repo, git, req),
            pulls,
            min(stamps) if stamps else repo.created_at,
            max(stamps) if stamps else repo.created_at,
            req.urls,
        )
        return ApiResponse(200, {"total_count": 1, "check_suites": [suite]})

    def list_commit_pulls(self, req: ApiRequest) -> ApiResponse:
        repo, git = self._repo(req, D_COMMIT_PULLS)
        sha = self._commit_or_404(req, git, req.params["commit_sha"], D_COMMIT_PULLS)
        pulls = []
        for pr in self.state.pulls(repo.id):
            pr = self._refresh(repo, git, pr)
            if pr.merge_commit_sha == sha or sha in git.commits_between(pr.base_sha, pr.head_sha) or pr.head_sha == sha:
                pulls.append(pr)
        page, headers = paginate(req, pulls)
        repo_body = self._repo_body(repo, git, req)
        return ApiResponse(200, [self._pull_body(req, repo, git, p, False, repo_body) for p in page], headers)

    def list_commit_comments(self, req: ApiRequest) -> ApiResponse:
        _, git = self._repo(req, D_COMMIT_COMMENTS)
        self._commit_or_404(req, git, req.params["commit_sha"], D_COMMIT_COMMENTS)
        return ApiResponse(200, [])  # the forge keeps no commit comments

    def branches_where_head(self, req: ApiRequest) -> ApiResponse:
        repo, git = self._repo(req, D_WHERE_HEAD)
        sha = self._commit_or_404(req, git, req.params["commit_sha"], D_WHERE_HEAD)
        protected = self.ci.protections(repo.id)
        heads = sorted((n, s) for n, s in git.branches() if s == sha)
        return ApiResponse(200, [P.short_branch(repo, n, s, req.urls, n in protected) for n, s in heads])
