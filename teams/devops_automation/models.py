"""The data that crosses module boundaries: gaps, team specs, requests and policy decisions.

Everything a user, another crew or a language model hands us is parsed into these models first, so a
bad value is refused here with a message naming the field, before any step acts on it.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from .skills import SKILL_CHARS, SKILL_CHARS_TEXT, base_key, display_skill

MAX_DESCRIPTION_CHARS = 10_000
MAX_AGENTS = 12
TEAM_NAME_PATTERN = r"^[a-z][a-z0-9_]{1,38}[a-z0-9]$"
SLUG_PATTERN = r"^[a-z][a-z0-9_]{0,38}[a-z0-9]$"
GAP_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
SKILL_PATTERN = r"^[a-z0-9][a-z0-9.+#/_ -]{0,59}$"
#: What each pattern means, in words: error messages say this, never the regular expression.
PATTERN_TEXT = {
    TEAM_NAME_PATTERN: "must be 3-40 characters of a-z, 0-9 and _, starting with a letter and not ending with _",
    SLUG_PATTERN: "must be 2-40 characters of a-z, 0-9 and _, starting with a letter and not ending with _",
    GAP_ID_PATTERN: "must be 1-64 characters of A-Z, a-z, 0-9, '.', '_' and '-', starting with a letter or digit",
    SKILL_PATTERN: "must be 1-60 characters of a-z, 0-9, space and . + # / _ -",
}


class Department(StrEnum):
    engineering = "engineering"
    support = "support"
    finance = "finance"
    sales = "sales"
    marketing = "marketing"
    operations = "operations"
    data = "data"
    security = "security"
    legal = "legal"
    people = "people"
    product = "product"


class Urgency(StrEnum):
    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"


def normalize_skill(value: str) -> str:
    """Lower-case, NFKC-normalised, single-spaced skill label (``"D3.js "`` -> ``"d3.js"``)."""
    text = unicodedata.normalize("NFKC", value).strip().lower()
    return re.sub(r"\s+", " ", text)


def _skill(value: str) -> str:
    """A skill as a person typed it (``FP&A``, ``C#``, ``Node.js``), NFKC and single-spaced; matching uses
    :func:`devops_automation.skills.base_key`, file and Python names :func:`~devops_automation.skills.skill_slug`."""
    value = display_skill(value)
    if not SKILL_CHARS.fullmatch(value):
        raise ValueError(f"skill {value[:40]!r} {SKILL_CHARS_TEXT}")
    return value


Skill = Annotated[str, AfterValidator(_skill)]
TeamName = Annotated[str, Field(pattern=TEAM_NAME_PATTERN, description="snake_case, 3-40 chars")]
Slug = Annotated[str, Field(pattern=SLUG_PATTERN)]


#: The bidirectional embedding, override and isolate controls ("Trojan Source", CVE-2021-42574): text that
#: reads one way on screen and another in the file. Refused in every text a request carries.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _newlines(value: object) -> object:
    """Windows (CRLF) and old Mac (CR) line endings, as browsers and Windows clients send them, become LF."""
    return value.replace("\r\n", "\n").replace("\r", "\n") if isinstance(value, str) else value


#: Unicode category Cc is exactly C0 (U+0000-U+001F), DEL and C1 (U+0080-U+009F): one regex finds any of
#: them or a bidi control, so clean text (nearly all of it) is checked without a Python loop.
_REFUSED_CHARS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f" + "".join(sorted(BIDI_CONTROLS)) + "]")


def _no_control_chars(value: str) -> str:
    if _REFUSED_CHARS.search(value) is None:
        return value
    for position, ch in enumerate(value):
        if ch in BIDI_CONTROLS:
            raise ValueError(f"must not contain bidirectional-override characters (U+{ord(ch):04X} at {position})")
        if unicodedata.category(ch) == "Cc" and ch not in "\n\t":
            raise ValueError(f"must not contain control characters (U+{ord(ch):04X} at {position})")
    return value


Text = Annotated[str, BeforeValidator(_newlines), AfterValidator(_no_control_chars)]


def without_placeholders(text: str) -> str:
    """``text`` with ``{`` and ``}`` turned into parentheses: in a CrewAI agent or task, ``{word}`` is a
    placeholder filled (or failed) at kickoff, so untrusted text must not carry one into a team."""
    return text.replace("{", "(").replace("}", ")")


class CapabilityGap(BaseModel):
    """Something no team in the fleet can do yet. All of it is untrusted text."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    id: str | None = Field(None, pattern=GAP_ID_PATTERN)
    description: Text = Field(min_length=1, max_length=MAX_DESCRIPTION_CHARS)
    required_skills: list[Skill] = Field(default_factory=list, max_length=20)
    urgency: Urgency = Urgency.medium
    requesting_team: Text | None = Field(None, max_length=100)
    business_justification: Text | None = Field(None, max_length=MAX_DESCRIPTION_CHARS)
    affected_tasks: list[Annotated[str, Field(max_length=200)]] = Field(default_factory=list, max_length=100)
    proposed_name: TeamName | None = None

    @field_validator("description")
    @classmethod
    def _has_words(cls, value: str) -> str:
        if not re.search(r"\w", value):
            raise ValueError("must contain at least one word")
        return value

    @field_validator("required_skills")
    @classmethod
    def _dedupe(cls, value: list[str]) -> list[str]:
        """The first spelling of each skill (``React.js`` and ``react`` are one skill)."""
        first: dict[str, str] = {}
        for skill in value:
            first.setdefault(base_key(skill), skill)
        return list(first.values())

    @model_validator(mode="after")
    def _derive_id(self) -> CapabilityGap:
        if self.id is None:
            self.id = "gap-" + self.fingerprint()[:12]
        return self

    def fingerprint(self) -> str:
        """Stable hash of what the gap asks for: the same need, worded the same, is the same gap."""
        words = " ".join(re.findall(r"\w+", self.description.lower()))
        skills = ",".join(sorted(base_key(s) for s in self.required_skills))
        material = words + "|" + skills + "|" + (self.proposed_name or "")
        return hashlib.sha256(material.encode()).hexdigest()


def skills_key(skills: Iterable[str]) -> str | None:
    """One key for a set of skills however they are cased, spaced or ordered (SHA-256 hex of the sorted,
    lower-cased set), or None for no skills. Two gaps with the same key ask for the same skills: the
    ``previously-rejected`` rule and the gap review's sightings compare them by it."""
    names = sorted({" ".join(s.lower().split()) for s in skills if s.strip()})
    if not names:
        return None
    return hashlib.sha256("|".join(names).encode()).hexdigest()


class AgentSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    role: Slug
    goal: Text = Field(min_length=1, max_length=500)
    backstory: Text = Field(min_length=1, max_length=2000)
    skills: list[Skill] = Field(default_factory=list, max_length=20)
    is_manager: bool = False


class TaskSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: Slug
    description: Text = Field(min_length=1, max_length=2000)
    expected_output: Text = Field(min_length=1, max_length=1000)
    agent: Slug


class Resources(BaseModel):
    """What one replica of the team's pod asks of the cluster."""

    model_config = ConfigDict(extra="forbid")

    cpu_millicores: int = Field(250, ge=50, le=4000)
    memory_mib: int = Field(512, ge=64, le=16384)
    replicas: int = Field(1, ge=1, le=5)


class TeamSpec(BaseModel):
    """A proposed team: what the scaffold renders and the pull request proposes."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: TeamName
    description: Text = Field(min_length=1, max_length=2000)
    department: Department
    agents: list[AgentSpec]
    tasks: list[TaskSpec] = Field(min_length=1, max_length=40)
    llm_model: str = Field("openai/gpt-4o-mini", pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,99}$")
    resources: Resources = Field(default_factory=Resources)
    monthly_cost_usd: float = Field(ge=0, le=1_000_000)

    @field_validator("department", mode="before")
    @classmethod
    def _known_department(cls, value: object) -> object:
        if isinstance(value, str) and value.strip().lower() not in {d.value for d in Department}:
            known = ", ".join(d.value for d in Department)
            raise ValueError(f"unknown department {value[:40]!r}; known departments: {known}")
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("agents")
    @classmethod
    def _agent_count_and_manager(cls, agents: list[AgentSpec]) -> list[AgentSpec]:
        if not agents:
            raise ValueError("a team needs at least one agent (and exactly one manager)")
        if len(agents) > MAX_AGENTS:
            raise ValueError(f"a team has at most {MAX_AGENTS} agents; this one has {len(agents)}")
        managers = [a.role for a in agents if a.is_manager]
        if len(managers) != 1:
            found = ", ".join(managers) if managers else "none"
            raise ValueError(f"a team needs exactly one manager (is_manager: true); found {found}")
        roles = [a.role for a in agents]
        duplicates = sorted({r for r in roles if roles.count(r) > 1})
        if duplicates:
            raise ValueError(f"agent roles must be unique; repeated: {', '.join(duplicates)}")
        return agents

    @model_validator(mode="after")
    def _tasks_reference_agents(self) -> TeamSpec:
        roles = {a.role for a in self.agents}
        for task in self.tasks:
            if task.agent not in roles:
                raise ValueError(f"task {task.name!r} is assigned to unknown agent {task.agent!r}")
        names = [t.name for t in self.tasks]
        if len(set(names)) != len(names):
            raise ValueError("task names must be unique")
        return self

    @property
    def manager(self) -> AgentSpec:
        return next(a for a in self.agents if a.is_manager)

    @property
    def k8s_name(self) -> str:
        return self.name.replace("_", "-")

    @property
    def skills(self) -> list[str]:
        return list(dict.fromkeys(s for a in self.agents for s in a.skills))


class RequestState(StrEnum):
    received = "received"
    analysed = "analysed"
    reuse_existing = "reuse_existing"
    drafted = "drafted"
    awaiting_approval = "awaiting_approval"
    refused = "refused"
    approved_by_policy = "approved_by_policy"
    scaffolded = "scaffolded"
    published = "published"
    merged = "merged"
    rolled_back = "rolled_back"  # merged, then its revert pull request merged (``rollback``)
    rejected = "rejected"
    failed = "failed"


TERMINAL_STATES = frozenset(
    {RequestState.reuse_existing, RequestState.merged, RequestState.rolled_back, RequestState.rejected}
)

# Which state may follow which. `failed` and `refused` are resumable: running the request again
# retries from the last good step, so they lead back into the path.
TRANSITIONS: dict[RequestState, frozenset[RequestState]] = {
    RequestState.received: frozenset({RequestState.analysed}),
    RequestState.analysed: frozenset({RequestState.reuse_existing, RequestState.drafted}),
    RequestState.drafted: frozenset(
        {RequestState.approved_by_policy, RequestState.refused, RequestState.awaiting_approval}
    ),
    RequestState.awaiting_approval: frozenset(
        {RequestState.approved_by_policy, RequestState.awaiting_approval, RequestState.refused, RequestState.rejected}
        | {RequestState.reuse_existing}  # a human's triage: `reject --use-team TEAM`
    ),
    RequestState.refused: frozenset(
        {RequestState.approved_by_policy, RequestState.refused, RequestState.awaiting_approval, RequestState.rejected}
        | {RequestState.reuse_existing}  # e.g. refused by existing-team: a human names the team to use
    ),
    RequestState.approved_by_policy: frozenset({RequestState.scaffolded}),
    RequestState.scaffolded: frozenset({RequestState.published}),
    RequestState.published: frozenset({RequestState.merged, RequestState.rejected}),
    RequestState.merged: frozenset({RequestState.rolled_back}),  # its revert pull request merged
    RequestState.failed: frozenset(set(RequestState) - {RequestState.failed}),
}
for _state in RequestState:
    if _state not in TERMINAL_STATES and _state is not RequestState.failed:  # merged: only rolled_back
        TRANSITIONS[_state] = TRANSITIONS.get(_state, frozenset()) | {RequestState.failed}


# The state sets the engine and the service act on, beside the transitions they rely on.
#: Rules whose refusal time lifts (the scheduler retries them; an override lifts them).
RATE_RULES = frozenset({"rate-limit", "cooldown"})
#: A human may reject a request in these states (it gives its rate-limit slot back).
REJECTABLE = frozenset({RequestState.awaiting_approval, RequestState.refused, RequestState.failed})
#: A request in these states holds its proposed team name: no other request may propose it.
IN_FLIGHT = frozenset(
    {RequestState.awaiting_approval, RequestState.approved_by_policy, RequestState.scaffolded, RequestState.published}
)
#: An override given before the gate ran is kept for when it runs.
OVERRIDABLE_BEFORE_GATE = frozenset({RequestState.received, RequestState.analysed, RequestState.drafted})
#: Between steps: a crash or a shutdown can leave a request here; a server start continues it.
IN_PROGRESS = frozenset(
    {
        RequestState.received,
        RequestState.analysed,
        RequestState.drafted,
        RequestState.approved_by_policy,
        RequestState.scaffolded,
    }
)
#: What a scheduled ``resume --pending`` retries (refused ones only for a rate rule).
UNFINISHED = frozenset(
    {
        RequestState.received,
        RequestState.analysed,
        RequestState.drafted,
        RequestState.approved_by_policy,
        RequestState.scaffolded,
        RequestState.failed,
        RequestState.refused,
    }
)


class InvalidTransition(RuntimeError):
    """A bug: code tried a transition the state machine does not have."""


def check_transition(current: RequestState, new: RequestState) -> None:
    if new not in TRANSITIONS.get(current, frozenset()):
        raise InvalidTransition(f"a request cannot move from {current.value} to {new.value}")


class Outcome(StrEnum):
    approved = "approved"
    refused = "refused"
    needs_approval = "needs_approval"


class RiskLevel(StrEnum):
    low = "low"
    medium = "medium"
    high = "high"


class PolicyDecision(BaseModel):
    """What the policy gate said about a request, and why."""

    outcome: Outcome
    rule: str | None = None
    message: str = ""
    remedy: str = ""
    risk_level: RiskLevel = RiskLevel.low

    @property
    def allowed(self) -> bool:
        return self.outcome is Outcome.approved


class PullRequestRef(BaseModel):
    number: int
    url: str
    branch: str
    created: bool = True
    warnings: list[str] = Field(default_factory=list)


class LLMUsage(BaseModel):
    """What the language model cost a request so far."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    #: Some tokens were estimated: the server reported no usage (or only a total) for some call, or a call
    #: got no answer (a timeout). Estimates are never zero for work the server was asked to do.
    estimated: bool = False

    def __add__(self, other: LLMUsage) -> LLMUsage:
        return LLMUsage(
            calls=self.calls + other.calls,
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            cost_usd=round(self.cost_usd + other.cost_usd, 6),
            estimated=self.estimated or other.estimated,
        )


class PRText(BaseModel):
    """The human part of a pull request: the fixed sections (gap, team, cost, files, checklist)
    are always added by code around it."""

    title: Text = Field(min_length=1, max_length=200)
    summary: Text = Field("", max_length=4000)
    #: Who wrote the summary, for its heading: the agent, or code and why (a model's text that failed).
    summary_by: str = Field("the PR author agent", max_length=300)


class ActorRef(BaseModel):
    """Who did something, as stored on a request: the actor's id and channel (see :mod:`.authz`)."""

    id: str = Field(min_length=1, max_length=200)
    channel: str = Field(min_length=1, max_length=20)
    display_name: str = Field("", max_length=200)

    @classmethod
    def of(cls, by: ActorRef | str) -> ActorRef:
        """``by`` itself, or a bare id read as a CLI user (engine tests pass plain names)."""
        return by if isinstance(by, ActorRef) else cls(id=by, channel="cli")

    @property
    def key(self) -> str:
        """``channel:id``: one identity per channel (a Discord user and a CLI login are different actors)."""
        return f"{self.channel}:{self.id}"


class ApprovalKind(StrEnum):
    cost = "cost"  # the monthly cost is above the ceiling, and a human accepts it
    override = "override"  # a human lifts the rate limit and cooldown for this one request
    reconsider = "reconsider"  # a human lifts `previously-rejected`: the earlier rejection does not apply
    new_team = "new_team"  # triage (rule possible-reuse): a human confirms no existing team covers the gap


#: The policy rule of a request the matcher could not decide: it waits for a human's triage.
POSSIBLE_REUSE = "possible-reuse"


class MatchCandidate(BaseModel):
    """One registered team the matcher weighed for a gap, as stored on the request."""

    team: str
    score: float
    explanation: str = ""


class MatchSummary(BaseModel):
    """The matcher's decision on a request (``verdict``: reuse, new or triage), with its explanation and
    the closest candidates, best first (:mod:`devops_automation.matcher`)."""

    verdict: str = Field(pattern=r"^(reuse|new|triage)$")
    explanation: str = Field("", max_length=4000)
    candidates: list[MatchCandidate] = Field(default_factory=list, max_length=10)
    #: Who read the candidates first: ``matcher`` (the thresholds), or ``llm`` (the analyst's choice).
    decided_by: str = "matcher"


class Approval(BaseModel):
    """One human approval of a request (GitHub's review model: who, what, when, why)."""

    by: ActorRef
    kind: ApprovalKind
    reason: str = Field("", max_length=2000)
    at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    self_approval: bool = False


class TeamCreationRequest(BaseModel):
    """One gap's journey through the pipeline, as the store keeps it."""

    id: str
    gap: CapabilityGap
    requester: ActorRef | None = None
    approvals: list[Approval] = Field(default_factory=list)
    state: RequestState = RequestState.received
    spec: TeamSpec | None = None
    drafter: str | None = None
    matched_team: str | None = None
    match_score: float | None = None
    match: MatchSummary | None = None
    triage_decided_by: str | None = None  # who confirmed a new team when the matcher could not decide
    decision: PolicyDecision | None = None
    branch: str | None = None
    files: list[str] = Field(default_factory=list)
    commit_sha: str | None = None
    pr_number: int | None = None
    pr_url: str | None = None  # as the forge answered; shown through forge.links.PullLinks
    pr_forge: str | None = None  # the forge kind that opened pr/rollback_pr (``local``: links rebuilt when shown)
    error: str | None = None
    resume_state: RequestState | None = None
    merge_commit_sha: str | None = None
    rollback_branch: str | None = None
    rollback_pr_number: int | None = None
    rollback_pr_url: str | None = None
    llm_usage: LLMUsage = Field(default_factory=LLMUsage)
    revisions: int = 0
    override_approved_by: str | None = None
    cost_approved_by: str | None = None
    rejected_by: ActorRef | None = None  # the human who rejected it (None: its pull request was closed)
    rejection_reason: str | None = None
    #: The requester rejected their own request: a change of mind, not a reviewer's verdict, so it is not
    #: remembered by the ``previously-rejected`` rule (nor by the gap review's "rejected before").
    withdrawn: bool = False
    reconsidered_by: str | None = None  # a human lifted `previously-rejected` for this request
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    updated_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


class RegistryEntry(BaseModel):
    """A team as the registry knows it: the ``team.yaml`` at the root of every team folder."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    name: TeamName
    description: str = Field(min_length=1, max_length=2000)
    department: Department
    skills: list[Skill] = Field(default_factory=list)
    agents: list[str] = Field(default_factory=list)
    owner: str = Field("platform-team", max_length=100)
    monthly_cost_usd: float = Field(0.0, ge=0)
    #: What the team does *not* do, in words (``["trademark filings"]``): the matcher counts a gap that
    #: reads like one of these against the team.
    out_of_scope: list[Annotated[str, Field(max_length=200)]] = Field(default_factory=list, max_length=30)

    @classmethod
    def from_spec(cls, spec: TeamSpec, owner: str) -> RegistryEntry:
        return cls(
            name=spec.name,
            description=spec.description,
            department=spec.department,
            skills=spec.skills,
            agents=[a.role for a in spec.agents],
            owner=owner,
            monthly_cost_usd=spec.monthly_cost_usd,
        )
