"""Who may do what: the one authorisation layer every human decision passes.

Modelled on datasette's ``permission_allowed(actor, action, resource)``: :func:`permission_allowed`
answers with a :class:`Verdict` (never raises), :func:`require` raises
:class:`~devops_automation.errors.PermissionDenied`. The rules:

- each action needs a role (:data:`ACTION_ROLES`); ``admin`` holds every role;
- **four eyes**: the requester of a request never approves it, neither the cost ceiling nor an override
  (as GitHub does not let an author approve their own pull request), nor merges its pull request from the
  dashboard (``merge``, embedded forge only). ``DEVOPS_CREW_ALLOW_SELF_APPROVAL``
  lifts this for single-person setups; the approval then records ``self_approval: true``;
- an override needs a reason;
- the ``scheduler`` channel may only resume, track and review gaps, whatever roles it claims;
- a requester may reject (withdraw) their own request without the approver role.

Identity is per channel (``channel:id``): entry points authenticate their user and build the
:class:`Actor`; nothing here trusts a name a message carries.
"""

from __future__ import annotations

import re
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .errors import PermissionDenied
from .models import ActorRef, TeamCreationRequest


class Channel(StrEnum):
    cli = "cli"
    a2a = "a2a"
    web = "web"
    discord = "discord"
    scheduler = "scheduler"


class Role(StrEnum):
    viewer = "viewer"  # read requests
    requester = "requester"  # submit gaps
    approver = "approver"  # approve, override, reject, roll back
    operator = "operator"  # resume, track and review gaps
    auditor = "auditor"  # read and verify the audit log
    admin = "admin"  # every role


class Action(StrEnum):
    read = "read"
    submit = "submit"
    approve = "approve"
    override = "override"
    reject = "reject"
    resume = "resume"
    track = "track"
    rollback = "rollback"
    audit = "audit"
    merge = "merge"  # merge a published pull request from the dashboard (embedded forge only)
    review_gaps = "review_gaps"  # run the scheduled gap review (it submits what it finds)


ACTION_ROLES: dict[Action, Role] = {
    Action.read: Role.viewer,
    Action.submit: Role.requester,
    Action.approve: Role.approver,
    Action.override: Role.approver,
    Action.reject: Role.approver,
    Action.resume: Role.operator,
    Action.track: Role.operator,
    Action.rollback: Role.approver,
    Action.audit: Role.auditor,
    Action.merge: Role.approver,
    Action.review_gaps: Role.operator,
}
SCHEDULER_ACTIONS = frozenset({Action.resume, Action.track, Action.review_gaps})
FOUR_EYES_ACTIONS = frozenset({Action.approve, Action.override, Action.merge})
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u202a-\u202e\u2066-\u2069]")


class Actor(BaseModel):
    """Who is asking, as an entry point authenticated them. ``id`` is unique within ``channel``."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(min_length=1, max_length=200)
    channel: Channel
    display_name: str = Field("", max_length=200)
    roles: frozenset[Role] = frozenset()

    @field_validator("id", "display_name")
    @classmethod
    def _printable(cls, value: str) -> str:
        if _CONTROL.search(value):
            raise ValueError("must not contain control or bidirectional-override characters")
        return value

    @property
    def key(self) -> str:
        return f"{self.channel.value}:{self.id}"

    def ref(self) -> ActorRef:
        """The actor as a request stores it."""
        return ActorRef(id=self.id, channel=self.channel.value, display_name=self.display_name)

    def has(self, role: Role) -> bool:
        return Role.admin in self.roles or role in self.roles


def parse_roles(text: str) -> frozenset[Role]:
    """``"approver,operator"`` -> roles; ``"all"`` -> admin. Raises ValueError for an unknown role."""
    names = {part.strip().lower() for part in text.split(",") if part.strip()}
    if "all" in names:
        return frozenset({Role.admin})
    unknown = sorted(names - {r.value for r in Role})
    if unknown:
        raise ValueError(f"unknown role(s) {', '.join(unknown)}; known: all, {', '.join(r.value for r in Role)}")
    return frozenset(Role(n) for n in names)


class Verdict(BaseModel):
    """The answer of :func:`permission_allowed`. ``rule`` names the rule that decided."""

    allowed: bool
    rule: str = ""
    message: str = ""
    self_approval: bool = False


def _is_requester(actor: Actor, request: TeamCreationRequest | None) -> bool:
    return request is not None and request.requester is not None and request.requester.key == actor.key


def permission_allowed(
    actor: Actor,
    action: Action,
    request: TeamCreationRequest | None = None,
    *,
    reason: str = "",
    allow_self_approval: bool = False,
) -> Verdict:
    """May ``actor`` do ``action`` (on ``request``, with ``reason``)? Never raises."""
    if actor.channel is Channel.scheduler and action not in SCHEDULER_ACTIONS:
        message = f"the scheduler may only resume, track and review gaps, not {action}"
        return Verdict(allowed=False, rule="channel", message=message)
    if action is Action.reject and _is_requester(actor, request) and actor.has(Role.requester):
        return Verdict(allowed=True, rule="withdraw")
    role = ACTION_ROLES[action]
    if not actor.has(role):
        return Verdict(
            allowed=False, rule="role", message=f"{actor.key} may not {action}: it needs the {role.value} role"
        )
    if action is Action.override and not reason.strip():
        return Verdict(allowed=False, rule="reason-required", message="an override needs a reason")
    if action in FOUR_EYES_ACTIONS and request is not None and request.requester is None and not allow_self_approval:
        return Verdict(
            allowed=False,
            rule="four-eyes",
            message=f"{request.id} records no requester (it predates requesters), so four eyes cannot be checked: "
            "reject it and submit the gap again",
        )
    if action in FOUR_EYES_ACTIONS and _is_requester(actor, request):
        if not allow_self_approval:
            return Verdict(
                allowed=False,
                rule="four-eyes",
                message=f"{actor.key} requested {request.id if request else 'it'} and may not approve it: "
                "another approver must (four eyes)",
            )
        return Verdict(allowed=True, rule="self-approval", self_approval=True)
    return Verdict(allowed=True, rule="role")


def require(
    actor: Actor,
    action: Action,
    request: TeamCreationRequest | None = None,
    *,
    reason: str = "",
    allow_self_approval: bool = False,
) -> Verdict:
    """:func:`permission_allowed`, raising :class:`PermissionDenied` when it says no."""
    verdict = permission_allowed(actor, action, request, reason=reason, allow_self_approval=allow_self_approval)
    if not verdict.allowed:
        raise PermissionDenied(verdict.message, action=action.value, rule=verdict.rule)
    return verdict
