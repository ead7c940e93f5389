"""Check the forge's responses against GitHub's own OpenAPI description (npm ``@octokit/openapi``).

Each :class:`~localforge.Exchange` the forge reports is replayed to ``openapi-core`` as
if it had been a request to ``https://api.github.com``: the route's template is filled with its path
parameters percent-encoded (a ``{ref}`` such as ``heads/feature`` goes as ``heads%2Ffeature``, or the
template would not match). A status the description does not list for that operation (401 on most
endpoints, 404 for an unknown repository on a POST, ...) and a route it does not describe are checked
against the component schema GitHub uses for such bodies (``basic-error``, ``validation-error``, ...).

Violations are compared with :data:`ALLOWED`, the short list of places where GitHub's description
disagrees with what GitHub sends; anything else fails the test.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote

from jsonschema.exceptions import ValidationError
from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_schema_validator import OAS30Validator
from werkzeug.datastructures import Headers, ImmutableMultiDict

from localforge import Exchange

OCTOKIT_VERSION = "23.0.2"  # pinned: GitHub's description changes; bump on purpose
CACHE_DIR = Path(os.environ.get("DEVOPS_CREW_OCTOKIT_DIR", Path.home() / ".cache" / "devops-crew" / "octokit"))
SPEC_FILE = CACHE_DIR / "node_modules" / "@octokit" / "openapi" / "generated" / "api.github.com.json"


@dataclass(frozen=True)
class Allowed:
    """One known disagreement between GitHub's schema and GitHub's responses."""

    json_path: str  # regex on the slash-joined path of the offending value, e.g. requested_teams/0
    message: str  # regex on the validator's message
    why: str


# Keep this list minimal: every entry hides a real difference from the schema.
ALLOWED: tuple[Allowed, ...] = (
    # Teams in a pull request's requested_teams come without "type" in GitHub's recorded responses (the
    # pull-request examples inside the same OpenAPI file fail here too), but team-simple/team require it.
    # The forge sends what GitHub sends.
    Allowed(
        r"(^|/)(requested_)?teams/\d+$", r"^'type' is a required property$", "GitHub omits team.type in requested_teams"
    ),
    # A label's description is null until someone writes one (labels created by adding them to an issue
    # never have one). pull-request and label say "nullable"; pull-request-simple's copy of the label
    # schema forgot it, so lists of pulls and the review-request answer trip over it.
    Allowed(
        r"(^|/)labels/\d+/description$",
        r"^None (for not nullable|is not of type 'string')$",
        "pull-request-simple's labels[].description lacks nullable",
    ),
    # A check run that has not completed has "conclusion": null. check-run marks conclusion nullable, but
    # its enum lacks null, and under OpenAPI 3.0 an enum must list null for null to pass: GitHub's own
    # example check-run-example-of-in-progress-conclusion in the same file fails the same way (asserted by
    # test_ci_and_protection.test_the_check_run_allowance_is_githubs_own_example).
    Allowed(r"(^|/)conclusion$", r"^None is not one of \[", "check-run.conclusion's enum lacks null"),
)

# Whole bodies the description cannot validate as written, checked against the right component instead.
SCHEMA_OVERRIDES: dict[tuple[str, str], str] = {
    # A directory's listing is an array, but the operation's oneOf carries a discriminator on "type",
    # which only works for objects: openapi-core resolves it to an object schema and rejects any array.
    ("GET", "/repos/{owner}/{repo}/contents/{path}"): "content-directory",
}


def ensure_spec() -> Path:
    """Install the pinned ``@octokit/openapi`` into the cache with npm unless it is already there."""
    package_json = SPEC_FILE.parent.parent / "package.json"
    if (
        SPEC_FILE.exists()
        and package_json.exists()
        and json.loads(package_json.read_text()).get("version") == OCTOKIT_VERSION
    ):
        return SPEC_FILE
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is not installed: it is needed to fetch @octokit/openapi for the forge tests")
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [
            npm,
            "install",
            "--no-save",
            "--no-audit",
            "--no-fund",
            "--prefix",
            str(CACHE_DIR),
            f"@octokit/openapi@{OCTOKIT_VERSION}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if proc.returncode != 0 or not SPEC_FILE.exists():
        raise RuntimeError(
            f"npm install @octokit/openapi@{OCTOKIT_VERSION} into {CACHE_DIR} failed "
            f"(exit {proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        )
    return SPEC_FILE


class _Request:
    """openapi-core's Request protocol for an exchange, addressed to GitHub's own server URL."""

    def __init__(self, method: str, path: str, query: str, headers: dict[str, str], body: bytes) -> None:
        self.host_url = "https://api.github.com"
        self.path = path
        self.method = method.lower()
        self.body = body or None
        self.content_type = headers.get("content-type", "application/json")
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(parse_qsl(query, keep_blank_values=True)),
            header=Headers(list(headers.items())),
            cookie=ImmutableMultiDict(),
        )


class _Response:
    def __init__(self, ex: Exchange) -> None:
        self.status_code = ex.status
        self.headers = Headers(list(ex.response_headers.items()))
        self.content_type = ex.response_headers.get("Content-Type", "").split(";")[0]
        self.data = ex.response_body or None


def _flatten(error: ValidationError) -> list[ValidationError]:
    """Leaf errors: a oneOf/anyOf failure is reported through the branch that came closest."""
    if error.context:
        best: dict[int, list[ValidationError]] = {}
        for sub in error.context:
            best.setdefault(sub.relative_schema_path[0] if sub.relative_schema_path else 0, []).append(sub)
        branch = min(best.values(), key=len)
        return [leaf for sub in branch for leaf in _flatten(sub)]
    return [error]


# Custom media types (``Accept: application/vnd.github.diff`` ...): the text bodies are checked for their
# media type and their first bytes. The description lists diff/patch for commits and comparisons but not for
# a pull request, which GitHub serves all the same (its diff_url and "Accept: application/vnd.github.diff"
# on GET /pulls/{n} are documented in the REST guide's media types); raw contents are listed as
# application/vnd.github.object only, though the raw media type is documented for the same operation.
MEDIA_UNLISTED: set[tuple[str, str]] = {
    ("GET", "/repos/{owner}/{repo}/pulls/{pull_number}", "diff"),
    ("GET", "/repos/{owner}/{repo}/pulls/{pull_number}", "patch"),
    ("GET", "/repos/{owner}/{repo}/contents/{path}", "raw"),
}
MEDIA_STARTS = {"diff": b"diff --git ", "patch": b"From "}


def _media_problems(ex: Exchange, spec: dict[str, Any], where: str) -> list[str]:
    """A body in a custom media type: asked for, listed for the operation (or in MEDIA_UNLISTED), and
    shaped as that type (a diff starts with ``diff --git``, a patch with ``From <sha>``)."""
    content_type = ex.response_headers.get("Content-Type", "").split(";")[0]
    kind = content_type.rsplit(".", 1)[-1]
    if f"application/vnd.github.{kind}" not in ex.request_headers.get("accept", "").replace(".v3.", "."):
        return [f"{where}: answered {content_type} without being asked for it"]
    operation = spec["paths"].get(ex.route or "", {}).get("get", {})
    listed = operation.get("responses", {}).get("200", {}).get("content", {})
    if content_type not in listed and ("GET", ex.route, kind) not in MEDIA_UNLISTED:
        return [f"{where}: {content_type} is not an answer of {ex.route}"]
    start = MEDIA_STARTS.get(kind)
    if start is not None and ex.response_body and not ex.response_body.startswith(start):
        return [f"{where}: a {kind} body starts {ex.response_body[:30]!r}"]
    return []


# URLs that legitimately point elsewhere: documentation, the git/ssh addresses that are never fetched, and
# the CI's own pages that a status (target_url) or a check run (details_url) links to, as the CI gave them.
_FOREIGN_URL_KEYS = {"documentation_url", "git_url", "ssh_url", "target_url", "details_url"}


def _foreign_urls(body: Any, root: str, path: str = "") -> list[tuple[str, str]]:
    """Every ``*url``/``href`` value not under ``root``: PyGithub refuses to follow those."""
    found: list[tuple[str, str]] = []
    if isinstance(body, dict):
        for key, value in body.items():
            where = f"{path}/{key}" if path else key
            if isinstance(value, str) and (key.endswith("url") or key == "href" or path.endswith("_links")):
                if key not in _FOREIGN_URL_KEYS and not value.startswith(root):
                    found.append((where, value))
            else:
                found.extend(_foreign_urls(value, root, where))
    elif isinstance(body, list):
        for index, item in enumerate(body):
            found.extend(_foreign_urls(item, root, f"{path}/{index}" if path else str(index)))
    return found


def _json_path(error: ValidationError) -> str:
    return "/".join(str(p) for p in error.absolute_path)


class SpecChecker:
    """Validate exchanges; :meth:`check` returns the violations that are not allow-listed."""

    # Routes the forge serves that GitHub's description has no entry for, and what their bodies are.
    NON_SPEC_SCHEMAS: dict[tuple[str, str], tuple[str, bool | None]] = {
        # GitHub still answers the legacy GET /git/refs/{ref}: one git-ref, or an array under a prefix.
        ("GET", "/repos/{owner}/{repo}/git/refs/{ref}"): ("git-ref", None),
        # The contents of the root directory: the {path} operation with an empty path.
        ("GET", "/repos/{owner}/{repo}/contents"): ("content-directory", False),
        # The legacy list of a commit's statuses (PyGithub's Commit.get_statuses): as commits/{ref}/statuses.
        ("GET", "/repos/{owner}/{repo}/statuses/{ref}"): ("status", True),
    }

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.openapi = OpenAPI.from_dict(spec, config=Config(spec_validator_cls=None))
        self.allowed_hits: list[str] = []

    def _component_errors(self, name: str, body: Any, many: bool | None = None) -> list[ValidationError]:
        schema = {"$ref": f"#/components/schemas/{name}", "components": self.spec["components"]}
        if many or (many is None and isinstance(body, list)):
            schema = {
                "type": "array",
                "items": {"$ref": f"#/components/schemas/{name}"},
                "components": self.spec["components"],
            }
        validator = OAS30Validator(schema, format_checker=OAS30Validator.FORMAT_CHECKER)
        return list(validator.iter_errors(body))

    def _documented(self, ex: Exchange) -> bool:
        assert ex.route is not None
        operation = self.spec["paths"].get(ex.route, {}).get(ex.method.lower())
        return operation is not None and str(ex.status) in operation["responses"]

    def check(self, ex: Exchange) -> list[str]:
        if not ex.api:
            return []
        where = f"{ex.method} {ex.path} -> {ex.status}"
        if ex.method == "HEAD":  # the same answer as GET; the server sends its headers only
            ex = dataclasses.replace(ex, method="GET")
        has_body = ex.status not in (204, 304)
        if not has_body and ex.response_body:
            return [f"{where}: a {ex.status} must have no body"]
        if ex.status == 200 and ex.response_headers.get("Content-Type", "").startswith("application/vnd.github."):
            return _media_problems(ex, self.spec, where)
        if has_body and "application/json" not in ex.response_headers.get("Content-Type", ""):
            return [f"{where}: not JSON ({ex.response_headers.get('Content-Type')})"]
        body = json.loads(ex.response_body) if ex.response_body else None
        foreign = [
            f"{where}: {path}: {url} is not on {ex.request_headers.get('host')}"
            for path, url in _foreign_urls(body, f"http://{ex.request_headers.get('host')}/")
        ]
        override = SCHEMA_OVERRIDES.get((ex.method, ex.route or ""))
        if override is not None and ex.status == 200 and isinstance(body, list):
            errors = self._component_errors(override, body, False)
        elif ex.route is not None and ex.route_in_spec and self._documented(ex):
            errors = self._openapi_errors(ex)
        elif ex.route is not None and (ex.method, ex.route) in self.NON_SPEC_SCHEMAS and ex.status < 300:
            name, many = self.NON_SPEC_SCHEMAS[(ex.method, ex.route)]
            errors = self._component_errors(name, body, many)
        elif ex.status >= 400:
            errors = self._component_errors("validation-error" if ex.status == 422 else "basic-error", body)
            if not isinstance(body, dict) or not isinstance(body.get("message"), str):
                return [f"{where}: error body without a message: {body!r}"]
        elif ex.status in (204, 304):
            errors = []
        else:
            return [f"{where}: no schema known for this route ({ex.route})"]
        problems = foreign
        for error in errors:
            for leaf in _flatten(error) if isinstance(error, ValidationError) else [error]:
                if isinstance(leaf, ValidationError):
                    path, message = _json_path(leaf), leaf.message
                    hit = next(
                        (a for a in ALLOWED if re.search(a.json_path, path) and re.search(a.message, message)), None
                    )
                    if hit is not None:
                        self.allowed_hits.append(f"{where}: {path}: {message} ({hit.why})")
                        continue
                    problems.append(f"{where}: {path or '<root>'}: {message}")
                else:
                    problems.append(f"{where}: {type(leaf).__name__}: {leaf}")
        return problems

    def _openapi_errors(self, ex: Exchange) -> list[Any]:
        assert ex.route is not None
        path = ex.route
        for name, value in ex.path_params.items():
            path = path.replace("{" + name + "}", quote(value, safe=""))
        request = _Request(ex.method, path, ex.query, ex.request_headers, ex.request_body)
        errors: list[Any] = []
        for err in self.openapi.response_validator.iter_errors(request, _Response(ex)):
            cause = err.__cause__
            schema_errors = getattr(cause, "schema_errors", None) or getattr(err, "schema_errors", None)
            if schema_errors:
                errors.extend(schema_errors)
            else:
                errors.append(err if cause is None else cause)
        return errors
