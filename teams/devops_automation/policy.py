"""The policy gate, enforced in code between the pipeline's steps and again inside every writer.

Nothing a model or a user says can skip these checks: team names, the files a render may write,
the branch it may push, the rate limit with its cooldown and human override, and the cost ceiling.
Each refusal names its rule and says what to do about it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import PurePosixPath

from .errors import PolicyViolation
from .models import Outcome, PolicyDecision, RiskLevel, TeamSpec

__all__ = ["PolicyViolation"]

BRANCH_PREFIX = "auto/"
BRANCH_PATTERN = re.compile(
    r"^auto/(?:revert-)?team-([a-z][a-z0-9_]{1,38}[a-z0-9])-(\d{8}T\d{6}Z)(?:-([0-9a-f]{6}))?$"
)
PROTECTED_BRANCHES = frozenset({"main", "master", "trunk", "develop", "production", "release"})
RESERVED_NAMES = frozenset(
    {
        "main",
        "master",
        "head",
        "github",
        "gitlab",
        "ci",
        "cd",
        "workflows",
        "actions",
        "k8s",
        "teams",
        "devops_automation",
        "devops_crew",
        "admin",
        "root",
        "system",
        "default",
        "kube_system",
        "kube_public",
        "argocd",
        "platform",
        "security",
        "codeowners",
    }
)
# Files no render may contain, wherever they sit: CI definitions and repository controls.
_FORBIDDEN_PARTS = frozenset({".github", ".gitlab", ".circleci", ".buildkite", ".git", ".gitea", ".forgejo"})
_FORBIDDEN_FILES = frozenset(
    {
        ".gitlab-ci.yml",
        "jenkinsfile",
        ".travis.yml",
        "azure-pipelines.yml",
        "bitbucket-pipelines.yml",
        "codeowners",
        ".gitmodules",
        ".gitattributes",
        "cloudbuild.yaml",
        ".drone.yml",
    }
)


def check_team_name(name: str, existing: Iterable[str]) -> None:
    if not re.fullmatch(r"[a-z][a-z0-9_]{1,38}[a-z0-9]", name):
        raise PolicyViolation(
            "team-name",
            f"team name {name[:60]!r} is not a snake_case slug of 3-40 characters",
            "Propose a name like refund_handling.",
        )
    if name in RESERVED_NAMES or name.startswith(("kube_", "github_", "auto_")):
        raise PolicyViolation("reserved-name", f"team name {name!r} is reserved", "Propose another name for the team.")
    if name in set(existing):
        raise PolicyViolation(
            "existing-team",
            f"team {name} already exists (teams/{name}/); a proposal never takes or suffixes an existing name",
            f"Reuse {name} (`devops-crew reject ID --use-team {name}`), extend it through its owners, "
            "or propose a different name.",
        )


def allowed_roots(team_name: str) -> tuple[PurePosixPath, PurePosixPath]:
    return PurePosixPath("teams", team_name), PurePosixPath("k8s", "teams", team_name)


def check_path(path: str, team_name: str) -> PurePosixPath:
    """Refuse any repo-relative path outside the new team's two folders, or touching CI/controls."""
    if not path or "\\" in path or "\x00" in path or path.startswith("/") or re.match(r"^[A-Za-z]:", path):
        raise PolicyViolation("path-allow-list", f"path {path[:80]!r} is not a plain relative path")
    pure = PurePosixPath(path)
    if any(part in {"..", "."} for part in pure.parts) or str(pure) != path.rstrip("/"):
        raise PolicyViolation("path-allow-list", f"path {path[:80]!r} is not normalised")
    lowered = [p.lower() for p in pure.parts]
    if any(p in _FORBIDDEN_PARTS for p in lowered) or lowered[-1] in _FORBIDDEN_FILES:
        raise PolicyViolation(
            "protected-path",
            f"path {path!r} is a CI or repository-control file",
            "A new team may not change CI or repository settings.",
        )
    if not any(pure.is_relative_to(root) and pure != root for root in allowed_roots(team_name)):
        raise PolicyViolation(
            "path-allow-list", f"path {path!r} is outside teams/{team_name}/ and k8s/teams/{team_name}/"
        )
    return pure


def check_paths(paths: Iterable[str], team_name: str) -> list[str]:
    return [str(check_path(p, team_name)) for p in paths]


def branch_name(
    team_name: str, now: datetime | None = None, *, revert: bool = False, request_id: str | None = None
) -> str:
    """``auto/team-<name>-<UTC timestamp>[-<6 hex of the request id>]``, or ``auto/revert-team-…`` for a
    rollback. With ``request_id`` two requests for one name in the same second never share a branch."""
    stamp = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    suffix = "-" + hashlib.sha256(request_id.encode()).hexdigest()[:6] if request_id else ""
    branch = f"{BRANCH_PREFIX}{'revert-' if revert else ''}team-{team_name}-{stamp}{suffix}"
    check_branch(branch)
    return branch


def check_branch(branch: str) -> str:
    """Refuse every ref but ``auto/team-<name>-<UTC timestamp>`` (or its ``auto/revert-team-`` twin)."""
    bare = branch.removeprefix("refs/heads/")
    if bare in PROTECTED_BRANCHES or not bare.startswith(BRANCH_PREFIX):
        raise PolicyViolation("branch", f"refusing to push {branch[:80]!r}: only auto/ branches may be pushed")
    if not BRANCH_PATTERN.fullmatch(bare) or ".." in bare or "@{" in bare:
        raise PolicyViolation("branch", f"branch {branch[:80]!r} is not auto/team-<name>-<UTC timestamp>[-<id>]")
    return bare


def check_rate(
    ledger: list[datetime],
    *,
    limit: int,
    cooldown_seconds: int,
    now: datetime | None = None,
    request_id: str = "ID",
) -> None:
    """``ledger`` holds when each slot was used (overridden ones included). Raise when none is free now. A limit of 0
    means no new teams at all (each still may be overridden by a human). Remedies name ``request_id``."""
    now = now or datetime.now(UTC)
    override = (
        f"then `devops-crew resume {request_id}`; or have another human than the requester (four eyes) run "
        f"`devops-crew approve {request_id} --override --reason TEXT`"
    )
    if limit <= 0:
        raise PolicyViolation(
            "rate-limit", "no new teams may be proposed (DEVOPS_CREW_RATE_LIMIT=0)", f"Raise the limit, {override}."
        )
    recent = sorted(t for t in ledger if t > now - timedelta(hours=24))
    if len(recent) >= limit:
        free_at = recent[len(recent) - limit] + timedelta(hours=24)  # when fewer than `limit` remain
        raise PolicyViolation(
            "rate-limit",
            f"{len(recent)} teams were proposed in the last 24 h; the limit is {limit}",
            f"Retry after {free_at:%Y-%m-%d %H:%M} UTC, {override}.",
        )
    if ledger and cooldown_seconds:
        wait = max(ledger) + timedelta(seconds=cooldown_seconds) - now
        if wait > timedelta(0):
            raise PolicyViolation(
                "cooldown",
                f"the last team was proposed at {max(ledger):%Y-%m-%d %H:%M:%S} UTC; "
                f"the cooldown is {cooldown_seconds} s",
                f"Retry after {(now + wait):%Y-%m-%d %H:%M:%S} UTC, {override}.",
            )


def free_slots(
    ledger: list[datetime], *, limit: int, cooldown_seconds: int, pending: int = 0, now: datetime | None = None
) -> int:
    """How many new teams :func:`check_rate` would let through now, one after another: the limit less
    the slots used in the last 24 h and ``pending`` requests still on their way to the gate; at most one
    while a cooldown applies between slots, none while it runs."""
    now = now or datetime.now(UTC)
    recent = [t for t in ledger if t > now - timedelta(hours=24)]
    free = max(limit - len(recent) - pending, 0)
    if cooldown_seconds and free:
        if ledger and max(ledger) + timedelta(seconds=cooldown_seconds) > now:
            return 0
        return 0 if pending else 1
    return free


def no_slot_reason(
    ledger: list[datetime], *, limit: int, cooldown_seconds: int, pending: int = 0, now: datetime | None = None
) -> str:
    """Why :func:`free_slots` has no slot (or no more) now, in a few words naming the rule: the rate limit
    (slots used in the last 24 h plus ``pending`` requests on their way to the gate) or the cooldown."""
    now = now or datetime.now(UTC)
    if limit <= 0:
        return "rate limit: no new teams may be proposed (DEVOPS_CREW_RATE_LIMIT=0)"
    recent = [t for t in ledger if t > now - timedelta(hours=24)]
    if len(recent) + pending >= limit:
        return f"rate limit: {len(recent)} new team(s) in the last 24 h and {pending} on the way, of {limit}"
    if cooldown_seconds and ledger and max(ledger) + timedelta(seconds=cooldown_seconds) > now:
        left = max(ledger) + timedelta(seconds=cooldown_seconds) - now
        return f"cooldown: the next new team in {int(left.total_seconds()) + 1} s"
    if cooldown_seconds:
        return f"cooldown: one new team at a time, {cooldown_seconds} s apart ({pending} on the way)"
    return "rate limit: no slot free now"


def risk_level(spec: TeamSpec, ceiling: float) -> RiskLevel:
    if spec.monthly_cost_usd > ceiling:
        return RiskLevel.high
    if spec.monthly_cost_usd <= ceiling / 4 and len(spec.agents) <= 5 and spec.resources.replicas == 1:
        return RiskLevel.low
    return RiskLevel.medium


def cost_decision(
    spec: TeamSpec, ceiling: float, approved_by: str | None, *, request_id: str = "ID"
) -> PolicyDecision | None:
    """A waiting decision when the team costs more than the ceiling and no human approved it (the remedy
    names ``request_id``)."""
    if spec.monthly_cost_usd > ceiling and not approved_by:
        return PolicyDecision(
            outcome=Outcome.needs_approval,
            rule="cost-ceiling",
            message=f"estimated ${spec.monthly_cost_usd:,.2f}/month is above the ceiling of ${ceiling:,.2f}",
            remedy=f"A human may approve it with `devops-crew approve {request_id}`, "
            f"or reject it with `devops-crew reject {request_id} --reason TEXT`.",
            risk_level=RiskLevel.high,
        )
    return None
