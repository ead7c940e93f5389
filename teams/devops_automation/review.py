"""What a reviewer sees of one request: the pull request's text, every file's change, the LLM use, the
audit trail, and which decisions the viewer may take (or why not). Also the one human merge the embedded
forge offers from the dashboard (:func:`merge_pull_request`).

Reached only through :meth:`CrewService.review <devops_automation.service.CrewService.review>` and
:meth:`CrewService.merge <devops_automation.service.CrewService.merge>`, which authorise the actor first.
Everything returned is plain data (str, numbers, bools, lists, dicts, None); turning it into HTML is the
dashboard's job.

Where the files come from (``files.source``):

- ``commit``: the request carries the crew's commit (published, merged, or rejected after publishing).
  The commit is in the target checkout (the crew made it there), and its diff against its one parent (the
  base branch when the crew committed) is exactly what the crew pushed. The forge's pull request gives
  the body, head and state; a head that moved since is reported (``pull_request.head_moved``).
- ``forge``: the checkout does not hold that commit any more (a fresh clone, a deleted branch): the
  forge's list of changed paths, without contents.
- ``preview``: a spec exists but nothing was pushed (waiting at the policy gate for the cost ceiling,
  refused, or approved and not rendered yet). The stored spec is rendered now into a temporary directory
  with the scaffold's cookiecutter render, **not validated**; every file is shown as added.
- ``none``: nothing drafted yet (or the gap reuses an existing team).
"""

from __future__ import annotations

import secrets
import tempfile
from pathlib import Path
from typing import Any

from . import pr_text
from .audit import Auditor, audit_context
from .authz import Action, Actor, permission_allowed
from .errors import ActionRefused, ForgeError, GitError, RenderError
from .forge.base import Forge, PullRequest
from .models import (
    OVERRIDABLE_BEFORE_GATE,
    RATE_RULES,
    REJECTABLE,
    ActorRef,
    RequestState,
    TeamCreationRequest,
)
from .store import Store
from .target import TargetRepo
from .team_cards import card_url

View = dict[str, Any]

#: A file's text is cut after this many characters (a rendered team's largest file is a few KB).
MAX_FILE_CHARS = 200_000
#: The whole review carries at most this many characters of file text; later files list without text.
MAX_TOTAL_CHARS = 2_000_000
#: Placeholder reason used to ask authz whether an override would be allowed once a reason is typed.
_REASON_GIVEN_IN_FORM = "(given in the form)"


# -- files ---------------------------------------------------------------------------------------
def _file(
    path: str,
    status: str,
    *,
    text: str | None = None,
    patch: str | None = None,
    old_path: str | None = None,
    binary: bool = False,
) -> View:
    """One changed file: ``{"path", "status" (added|modified|deleted|renamed|changed), "old_path",
    "text" (the whole new content of an added file), "patch" (unified hunks otherwise), "additions",
    "deletions", "binary", "truncated"}``."""
    truncated = False
    if text is not None and len(text) > MAX_FILE_CHARS:
        text, truncated = text[:MAX_FILE_CHARS], True
    if patch is not None and len(patch) > MAX_FILE_CHARS:
        patch, truncated = patch[:MAX_FILE_CHARS], True
    if text is not None:
        additions, deletions = len(text.splitlines()), 0
    elif patch is not None:
        lines = patch.splitlines()
        additions = sum(1 for line in lines if line.startswith("+"))
        deletions = sum(1 for line in lines if line.startswith("-"))
    else:
        additions = deletions = 0
    return {
        "path": path,
        "status": status,
        "old_path": old_path,
        "text": text,
        "patch": patch,
        "additions": additions,
        "deletions": deletions,
        "binary": binary,
        "truncated": truncated,
    }


def _decode(data: bytes) -> tuple[str | None, bool]:
    """(text, binary): None text for binary data."""
    if b"\0" in data[:8000]:
        return None, True
    return data.decode("utf-8", "replace"), False


def _budget(files: list[View]) -> list[View]:
    """Drop the text of files past :data:`MAX_TOTAL_CHARS` (they are still listed, marked truncated)."""
    used = 0
    for item in files:
        size = len(item["text"] or "") + len(item["patch"] or "")
        if used + size > MAX_TOTAL_CHARS:
            item["text"] = item["patch"] = None
            item["truncated"] = True
        else:
            used += size
    return files


def commit_files(checkout: Path, sha: str) -> list[View] | None:
    """The files commit ``sha`` changes against its first parent, read from the git repository at
    ``checkout``; None when that repository does not hold the commit. Raises GitError for a repository
    git cannot read."""
    from git import BadName, InvalidGitRepositoryError, NoSuchPathError, Repo
    from git.exc import GitCommandError
    from gitdb.exc import BadObject

    try:
        repo = Repo(checkout)
    except (InvalidGitRepositoryError, NoSuchPathError):
        return None
    try:
        commit = repo.commit(sha)
        commit.tree  # noqa: B018 - a commit whose objects are missing fails here, not halfway
    except (BadName, BadObject, ValueError, GitCommandError):
        return None
    try:
        files = []
        if not commit.parents:  # a root commit: everything in it is added
            for blob in commit.tree.traverse():
                if blob.type == "blob":
                    text, binary = _decode(blob.data_stream.read())
                    files.append(_file(blob.path, "added", text=text, binary=binary))
            return _budget(sorted(files, key=lambda f: f["path"]))
        diffs = commit.parents[0].diff(commit, create_patch=True, M=True)
        for d in diffs:
            path = d.b_path or d.a_path or "?"
            if d.new_file:
                text, binary = _decode(d.b_blob.data_stream.read()) if d.b_blob else (None, False)
                files.append(_file(path, "added", text=text, binary=binary))
                continue
            raw = d.diff if isinstance(d.diff, bytes) else str(d.diff or "").encode()
            patch, binary = _decode(raw)
            binary = binary or raw.startswith(b"Binary files")
            status = "deleted" if d.deleted_file else "renamed" if d.renamed_file else "modified"
            files.append(
                _file(
                    path,
                    status,
                    patch=None if binary else patch,
                    old_path=d.a_path if d.renamed_file else None,
                    binary=binary,
                )
            )
    except (GitCommandError, ValueError, OSError) as exc:
        raise GitError(f"cannot read commit {sha[:12]} in {checkout}: {exc}") from exc
    return _budget(sorted(files, key=lambda f: f["path"]))


def preview_files(request: TeamCreationRequest, team_url: str | None = None) -> list[View]:
    """Render the request's stored spec into a temporary directory (not validated, nothing written
    anywhere else) and return every file as added; ``team_url``: the ``DEVOPS_CREW_TEAM_A2A_URL`` template the
    team's card is rendered with. Raises RenderError when the template cannot render it."""
    from .scaffold.render import render_team

    assert request.spec is not None
    with tempfile.TemporaryDirectory(prefix="devops-crew-preview-") as tmp:
        rendered = render_team(
            request.spec,
            request.gap,
            Path(tmp),
            owner=request.gap.requesting_team or "platform-team",
            a2a_url=card_url(request.spec.name, team_url) if team_url else None,
        )
        files = []
        for rel in rendered.files:
            text, binary = _decode((rendered.root / rel).read_bytes())
            files.append(_file(rel, "added", text=text, binary=binary))
    return _budget(files)


# -- the pull request ----------------------------------------------------------------------------
def _pull_request_view(
    request: TeamCreationRequest, pr: PullRequest | None, source: str, body: str, url: str | None
) -> View:
    """``url``: the link as the SUMMARY shows it (``forge.links``). Returns
    ``{"number", "url", "title", "body" (Markdown), "labels", "source" (forge|composed|preview), "state",
    "merged", "draft", "head_sha", "head_moved"}``."""
    spec = request.spec
    title = pr.title if pr is not None else (pr_text.title(spec, request) if spec else "")
    return {
        "number": request.pr_number,
        "url": url,
        "title": title,
        "body": body,
        "labels": list(pr.labels) if pr is not None else pr_text.labels(request.decision),
        "source": source,
        "state": pr.state if pr is not None else None,
        "merged": pr.merged if pr is not None else False,
        "draft": pr.draft if pr is not None else None,
        "head_sha": pr.head_sha if pr is not None else None,
        "head_moved": bool(pr is not None and request.commit_sha and pr.head_sha != request.commit_sha),
    }


def _composed_body(request: TeamCreationRequest, files: list[str]) -> str:
    assert request.spec is not None
    return pr_text.body(request, request.spec, files, request.drafter or "unknown drafter")


# -- decisions -----------------------------------------------------------------------------------
def _choice(
    applies: bool,
    why_not: str,
    actor: Actor,
    action: Action,
    request: TeamCreationRequest,
    allow_self_approval: bool,
    reason: str = "",
) -> View:
    """``{"applies", "allowed", "reason", "rule"}``: ``applies`` says whether the request's state (and
    forge) allow the action at all; ``allowed`` whether this actor may, with authz's reason if not."""
    if not applies:
        return {"applies": False, "allowed": False, "reason": why_not, "rule": "state"}
    verdict = permission_allowed(actor, action, request, reason=reason, allow_self_approval=allow_self_approval)
    return {"applies": True, "allowed": verdict.allowed, "reason": verdict.message, "rule": verdict.rule}


def decisions(actor: Actor, request: TeamCreationRequest, *, allow_self_approval: bool, embedded: bool) -> View:
    """What ``actor`` may decide on ``request`` now: ``{"approve", "override", "reject", "merge"}``, each a
    :func:`_choice`. The state rules mirror the engine's (``Engine.approve``/``reject``) and the permission
    rules are :func:`~devops_automation.authz.permission_allowed`'s, so a button the page enables is one
    the service accepts (the service checks again on the POST)."""
    state, rid = request.state, request.id
    rule = request.decision.rule if request.decision else None
    rate_limited = state is RequestState.refused and rule in RATE_RULES
    published = state is RequestState.published and request.pr_number is not None
    merge_why = (
        "merging from here is for the embedded forge only; merge on the forge"
        if not embedded
        else f"{rid} is {state.value}; only a published request's pull request can be merged"
    )
    return {
        "approve": _choice(
            state is RequestState.awaiting_approval,
            f"{rid} is {state.value}, not awaiting approval",
            actor,
            Action.approve,
            request,
            allow_self_approval,
        ),
        "override": _choice(
            rate_limited or state in OVERRIDABLE_BEFORE_GATE,
            f"{rid} is {state.value}"
            + (f" by rule {rule}" if rule else "")
            + "; an override only lifts the rate limit and cooldown",
            actor,
            Action.override,
            request,
            allow_self_approval,
            _REASON_GIVEN_IN_FORM,
        ),
        "reject": _choice(
            state in REJECTABLE,
            f"{rid} is {state.value}; only waiting, refused or failed requests can be rejected",
            actor,
            Action.reject,
            request,
            allow_self_approval,
        ),
        "merge": _choice(embedded and published, merge_why, actor, Action.merge, request, allow_self_approval),
    }


# -- the review ----------------------------------------------------------------------------------
def build_review(
    request: TeamCreationRequest,
    summary: View,
    *,
    actor: Actor,
    ceiling_usd: float,
    allow_self_approval: bool,
    target: TargetRepo,
    forge: Forge,
    audit: list[View] | None,
    audit_note: str = "",
    team_url: str | None = None,
) -> View:
    """The review of ``request`` for ``actor``::

        {"request": SUMMARY, "gap": {...}, "spec": {...} | None,
         "cost": {"monthly_usd", "ceiling_usd", "above_ceiling"} | None,
         "pull_request": {...} | None,            # see _pull_request_view
         "files": {"source", "note", "commit", "items": [FILE, ...]},   # see _file
         "llm_usage": {"calls", "prompt_tokens", "completion_tokens", "cost_usd"},
         "audit": [AUDIT ROW, ...] | None, "audit_note": str,
         "decisions": {...},                     # see decisions()
         "notes": [str, ...]}                    # what could not be shown, in one line each

    Raises nothing for an unreachable forge or a template that no longer renders the spec: the review
    says so in ``notes``; raises GitError only for a checkout git cannot read."""
    notes: list[str] = []
    spec = request.spec
    pr: PullRequest | None = None
    pull: View | None = None
    shown_url = (summary.get("pull_request") or {}).get("url")  # the link as the forge's base is now
    files: View = {"source": "none", "note": "", "commit": None, "items": []}

    if request.commit_sha:
        items = commit_files(target.path, request.commit_sha)
        if items is None:
            try:
                with target.locked():  # fetch: the crew's branch may bring the commit back
                    pass
                items = commit_files(target.path, request.commit_sha)
            except GitError as exc:
                notes.append(f"the target checkout could not be refreshed: {exc}")
        if items is not None:
            files = {
                "source": "commit",
                "note": f"The files of commit {request.commit_sha[:12]} that the crew pushed on {request.branch}, "
                "read with git from the target checkout (diffed against the base branch it was made on).",
                "commit": request.commit_sha,
                "items": items,
            }
        if request.pr_number is not None:
            try:
                pr = forge.get_pull_request(request.pr_number)
            except ForgeError as exc:
                notes.append(f"the forge did not answer for pull request #{request.pr_number}: {exc}")
        if items is None:
            try:
                names = forge.changed_files(request.pr_number) if request.pr_number is not None else request.files
            except ForgeError as exc:
                notes.append(f"the forge did not list the pull request's files: {exc}")
                names = list(request.files)
            files = {
                "source": "forge",
                "note": f"The checkout no longer holds commit {request.commit_sha[:12]}: the paths the pull request "
                "changes, without their contents.",
                "commit": request.commit_sha,
                "items": [_file(name, "changed") for name in sorted(names)],
            }
        if pr is not None:
            pull = _pull_request_view(request, pr, "forge", pr.body, shown_url)
            if pull["head_moved"]:
                notes.append(
                    f"the pull request's branch moved to {pr.head_sha[:12]} after the crew pushed "
                    f"{request.commit_sha[:12]}: the files shown are the crew's commit, not the branch's head"
                )
        elif spec is not None:
            body = _composed_body(request, request.files)
            pull = _pull_request_view(request, None, "composed", body, shown_url)
            notes.append("the pull request body is composed again here (without the PR author agent's summary)")
    elif spec is not None:
        try:
            items = preview_files(request, team_url)
        except RenderError as exc:
            notes.append(f"the stored spec does not render: {exc}")
            items = []
        files = {
            "source": "preview",
            "note": "Preview: nothing has been pushed yet. The stored spec was rendered now into a temporary "
            "directory (not validated); every file is shown as added.",
            "commit": None,
            "items": items,
        }
        body = _composed_body(request, [f["path"] for f in items])
        pull = _pull_request_view(request, None, "preview", body, shown_url)
    elif request.state is RequestState.reuse_existing:
        files["note"] = f"No new team: the gap is covered by the existing team {request.matched_team}."
    else:
        files["note"] = "No team has been drafted yet."

    choices = decisions(
        actor, request, allow_self_approval=allow_self_approval, embedded=bool(getattr(forge, "embedded", False))
    )
    merge = choices["merge"]
    if merge["allowed"] and pr is not None:  # what merge_pull_request would refuse, said before the click
        why = _merge_refusal(request, pr)
        if why:
            merge.update(allowed=False, reason=why, rule="pull-request")
    return {
        "request": summary,
        "gap": request.gap.model_dump(mode="json"),
        "spec": spec.model_dump(mode="json") if spec else None,
        "cost": None
        if spec is None
        else {
            "monthly_usd": spec.monthly_cost_usd,
            "ceiling_usd": ceiling_usd,
            "above_ceiling": spec.monthly_cost_usd > ceiling_usd,
        },
        "pull_request": pull,
        "files": files,
        "llm_usage": request.llm_usage.model_dump(),
        "audit": audit,
        "audit_note": audit_note,
        "decisions": choices,
        "notes": notes,
    }


# -- merge (embedded forge) ----------------------------------------------------------------------
def _merge_refusal(request: TeamCreationRequest, pr: PullRequest) -> str | None:
    """Why the pull request may not be merged from here, if it may not (None for one already merged)."""
    number = pr.number
    if pr.merged:
        return None
    if pr.state != "open":
        return f"pull request #{number} is closed; `devops-crew track` records it"
    if pr.head_sha != request.commit_sha:
        return (
            f"pull request #{number}'s branch moved to {pr.head_sha[:10]} after the crew pushed "
            f"{str(request.commit_sha)[:10]}; review and merge it on the forge"
        )
    if pr.draft:
        return f"pull request #{number} is a draft (high risk); mark it ready for review on the forge first"
    return None


def merge_pull_request(
    store: Store, auditor: Auditor, forge: Forge, request_id: str, *, by: ActorRef
) -> TeamCreationRequest:
    """Merge a published request's pull request on the embedded forge and record it as ``track`` does
    (``request.merged`` audit row, state ``merged``, ``merge_commit_sha``). The caller has authorised
    ``by`` (approver, four eyes). Refused (ActionRefused) unless the request is published, its pull
    request open and not a draft, and its head still exactly the crew's commit (the rule auto-merge
    follows in :mod:`devops_automation.engine.lifecycle`: nothing a human pushed is merged unseen).
    A pull request already merged on the forge is only recorded. Before merging, ``by``'s approval is
    recorded as the forge's review where the forge lets the crew act for them
    (:meth:`~devops_automation.forge.base.Forge.approve_pull_request`: the embedded forge's named
    reviewers), so a protected base sees the approval it requires. Raises NotFound, ActionRefused,
    ForgeError (the forge refused the review or the merge: nothing is recorded, try again)."""
    with store.request_lock(request_id), audit_context(run="run-" + secrets.token_hex(4)):
        request = store.require_request(request_id)
        if request.state is not RequestState.published or request.pr_number is None:
            raise ActionRefused(f"{request.id} is {request.state.value}; only a published request can be merged")
        number = request.pr_number
        pr = forge.get_pull_request(number)
        if not pr.merged:
            refusal = _merge_refusal(request, pr)
            if refusal:
                raise ActionRefused(refusal)
            note = f"Approved in devops-crew by {by.id} ({by.channel}), who merges it."
            if forge.approve_pull_request(number, pr.head_sha, by.id, note):  # the protected base's review
                auditor.event("forge.review_recorded", f"#{number}", request_id=request.id, sha=pr.head_sha, by=by.id)
            with auditor.action(
                "forge.merge_pull_request", f"#{number}", request_id=request.id, sha=pr.head_sha, by=by.id
            ) as call:
                merged_sha = forge.merge_pull_request(number, pr.head_sha)
                call.result.update(merged=True, sha=merged_sha)
            pr = forge.get_pull_request(number)
        request.merge_commit_sha = pr.merge_commit_sha
        auditor.event(
            "request.merged",
            f"#{number}",
            request_id=request.id,
            sha=pr.merge_commit_sha,
            by=by.id,
            channel=by.channel,
        )
        return store.save_request(request, RequestState.merged)
