"""One error tree for the whole product, modelled on httpx's ``HTTPError`` family.

::

    DevopsCrewError                    the base: every error the product raises on purpose
    ├── NotFound                       no such request (CLI exit 2, HTTP 404)
    ├── ActionRefused                  the request's state does not allow the action (exit 2, HTTP 409)
    │   └── PermissionDenied           the actor may not do it: role, four eyes, channel (exit 2, HTTP 403)
    ├── ConfigurationError             a setting or the environment is unusable (exit 2, HTTP 500)
    │   └── BroadTokenError            the forge token may do more than the crew needs
    ├── InvalidInput                   untrusted input failed validation (exit 2, HTTP 422)
    ├── NotAuthenticated               no or unknown credentials (exit 2, HTTP 401)
    ├── Unavailable                    the server is shutting down or full; retry later (exit 1, HTTP 503)
    ├── PolicyViolation                the policy gate said no; names its rule (exit 3, HTTP 422)
    └── StepFailure                    an outside system failed a step: the request ends `failed`,
        ├── ForgeError                 resumable (exit 1, HTTP 502)
        ├── GitError
        ├── RenderError
        │   └── RenderInvalid
        └── LLMError

Only :class:`StepFailure` and :class:`PolicyViolation` end a step as ``failed`` (see
:data:`STEP_FAILURES`); anything else raised inside a step is a bug and surfaces as one. Library
exceptions (PyGithub's, GitPython's, requests') are mapped into this tree by the one adapter that uses the
library, so nothing above the adapters ever catches a third-party exception.
"""

from __future__ import annotations

from pydantic import ValidationError

from .models import PATTERN_TEXT, LLMUsage, Outcome, PolicyDecision, RiskLevel


class DevopsCrewError(Exception):
    """The base of every error the product raises on purpose."""


class NotFound(DevopsCrewError):
    """The named request (or other resource) does not exist."""


class ActionRefused(DevopsCrewError):
    """A human command that does not apply to the request in its current state."""


class PermissionDenied(ActionRefused):
    """The actor may not perform the action (missing role, four eyes, wrong channel).

    ``action`` is the :class:`~devops_automation.authz.Action` value refused, ``rule`` a short name of the
    rule that refused it (``role``, ``four-eyes``, ``reason-required``, ``channel``)."""

    def __init__(self, message: str, *, action: str = "", rule: str = "role") -> None:
        super().__init__(message)
        self.action, self.rule = action, rule


class ConfigurationError(DevopsCrewError):
    """A setting or the environment cannot work (bad variable, missing package, unusable token)."""


class BroadTokenError(ConfigurationError):
    """The forge token can administer the repository or push to its unprotected base branch."""


class InvalidInput(DevopsCrewError):
    """Untrusted input (a gap, a form field, a message) failed validation; the text says which field.
    ``problems`` is ``[(field, message)]`` when it came from a model, so an entry point can name its own
    spelling of each field (the CLI says ``--skill``, not ``required_skills``)."""

    def __init__(self, message: str, problems: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


class NotAuthenticated(DevopsCrewError):
    """A server call without valid credentials (bearer token, session). Says nothing of which part was
    wrong, so it cannot be used to probe user names or tokens."""


class Unavailable(DevopsCrewError):
    """The server takes no new work now (it is draining for a shutdown, or its queue is full);
    ``retry_after`` is a hint in seconds."""

    def __init__(self, message: str, *, retry_after: int = 5) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PolicyViolation(DevopsCrewError):
    """A write, push or name the policy refuses. ``rule`` names the rule that said no."""

    def __init__(self, rule: str, message: str, remedy: str = "") -> None:
        super().__init__(f"{message} (rule: {rule})" + (f". {remedy}" if remedy else ""))
        self.rule, self.message, self.remedy = rule, message, remedy

    def decision(self, risk: RiskLevel = RiskLevel.high) -> PolicyDecision:
        return PolicyDecision(
            outcome=Outcome.refused, rule=self.rule, message=self.message, remedy=self.remedy, risk_level=risk
        )


class StepFailure(DevopsCrewError):
    """An outside system (forge, git, template, LLM) failed a step. The request ends ``failed`` at that
    step and ``resume`` retries it. ``usage`` is what a failed LLM step cost (added to the request)."""

    usage: LLMUsage | None = None


class ForgeError(StepFailure):
    """The forge (GitHub, or the embedded one) refused or failed a call. ``status`` is its HTTP status
    (0 for a connection failure)."""

    def __init__(self, message: str, *, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class GitError(StepFailure):
    """A git command on the working clone failed; the message carries git's own stderr."""


class RenderError(StepFailure):
    """Cookiecutter could not render the team."""


class RenderInvalid(RenderError):
    """The rendered team failed validation; ``errors`` has one line per problem."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("the rendered team failed validation: " + "; ".join(errors))
        self.errors = errors


class LLMError(StepFailure):
    """A crew kickoff failed or returned nothing usable. ``usage`` is what it cost all the same."""

    def __init__(self, message: str, usage: LLMUsage | None = None) -> None:
        super().__init__(message)
        self.usage = usage or LLMUsage()


def validation_problems(exc: ValidationError, limit: int = 5) -> list[tuple[str, str]]:
    """``[(field, message)]`` for the first ``limit`` problems of a pydantic validation error, in words:
    a pattern is described (:data:`~devops_automation.models.PATTERN_TEXT`), never shown as a regex, and a
    length is counted in characters."""
    problems = []
    for err in exc.errors()[:limit]:
        where = ".".join(str(p) for p in err.get("loc", ())) or "value"
        message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        if err.get("type") == "string_pattern_mismatch":
            message = PATTERN_TEXT.get(str((err.get("ctx") or {}).get("pattern")), "has characters it may not have")
        elif err.get("type") in {"string_too_long", "string_too_short"}:
            message = message.replace("String should have", "must have")
        problems.append((where, message))
    return problems


def validation_fields(exc: ValidationError, limit: int = 5) -> str:
    """``field: message; ...`` for the first ``limit`` problems of a pydantic validation error."""
    return "; ".join(f"{where}: {message}" for where, message in validation_problems(exc, limit))


#: What ends a step as ``failed`` (resumable) instead of surfacing as a bug.
STEP_FAILURES: tuple[type[Exception], ...] = (StepFailure, PolicyViolation)

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_WAITING = 0, 1, 2, 3

#: Error class -> (CLI exit code, HTTP status). The most specific class listed wins (see :func:`exit_code`).
ERROR_TABLE: dict[type[DevopsCrewError], tuple[int, int]] = {
    NotFound: (EXIT_USAGE, 404),
    PermissionDenied: (EXIT_USAGE, 403),
    ActionRefused: (EXIT_USAGE, 409),
    ConfigurationError: (EXIT_USAGE, 500),
    InvalidInput: (EXIT_USAGE, 422),
    NotAuthenticated: (EXIT_USAGE, 401),
    Unavailable: (EXIT_FAILED, 503),
    PolicyViolation: (EXIT_WAITING, 422),
    StepFailure: (EXIT_FAILED, 502),
    DevopsCrewError: (EXIT_FAILED, 500),
}


def _entry(exc: DevopsCrewError) -> tuple[int, int]:
    for cls in type(exc).__mro__:
        if cls in ERROR_TABLE:
            return ERROR_TABLE[cls]  # type: ignore[index]
    return ERROR_TABLE[DevopsCrewError]


def exit_code(exc: DevopsCrewError) -> int:
    """The CLI exit code for ``exc`` (README: "Exit codes")."""
    return _entry(exc)[0]


def http_status(exc: DevopsCrewError) -> int:
    """The HTTP status an API answers ``exc`` with."""
    return _entry(exc)[1]
