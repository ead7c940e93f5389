"""Routes, request and response values, errors and pagination for the forge's REST API.

A route is a path template in OpenAPI style (``/repos/{owner}/{repo}/pulls/{pull_number}``); a name ending
in ``+`` (``{ref+}``) may span slashes, as GitHub's ``{ref}``, ``{branch}`` and ``{path}`` do. Captured
values are percent-decoded, so ``heads%2Ffeature`` and ``heads/feature`` both arrive as ``heads/feature``.
Each route records its template without the ``+`` (``spec_path``), which the conformance tests use to
find the operation in GitHub's OpenAPI description.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlencode

from .payloads import DOCS, Urls, error
from .state import User


@dataclass
class ApiRequest:
    method: str
    path: str  # below the API prefix, still percent-encoded, without the query string
    params: dict[str, str]
    query: dict[str, list[str]]
    body: Any
    user: User
    urls: Urls
    headers: dict[str, str] = field(default_factory=dict)

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default


@dataclass
class ApiResponse:
    status: int
    body: Any = None  # None: no body (204)
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None  # a body in another media type (a diff, a patch, a file); headers name its type


MEDIA_RE = re.compile(r"application/vnd\.github(?:\.v3)?\.(diff|patch|raw|sha)\b")


def media_type(req: ApiRequest) -> str | None:
    """The custom media type the ``Accept`` header asks for (``diff``, ``patch``, ``raw``, ``sha``), or None
    for JSON: GitHub's ``application/vnd.github.diff`` and friends, also in the older ``.v3.`` spelling."""
    found = MEDIA_RE.search(req.headers.get("accept", ""))
    return found.group(1) if found else None


def text_response(kind: str, data: bytes) -> ApiResponse:
    """``data`` as GitHub sends a custom media type: ``Content-Type: application/vnd.github.<kind>``."""
    return ApiResponse(200, None, {"Content-Type": f"application/vnd.github.{kind}; charset=utf-8"}, raw=data)


class ApiError(Exception):
    """Abort a request with a GitHub-style error response."""

    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        super().__init__(body.get("message", str(status)))
        self.status = status
        self.body = body
        self.headers = headers or {}


def not_found(documentation_url: str = DOCS, message: str = "Not Found") -> ApiError:
    return ApiError(404, error(message, 404, documentation_url))


Handler = Callable[[ApiRequest], ApiResponse]


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    regex: re.Pattern[str]
    handler: Handler
    in_spec: bool = True  # False for paths GitHub serves but does not describe (legacy GET git/refs/{ref})

    @property
    def spec_path(self) -> str:
        return self.template.replace("+}", "}")


def _compile(template: str) -> re.Pattern[str]:
    pattern = ""
    for part in re.split(r"(\{[a-z_]+\+?\})", template):
        if part.startswith("{"):
            name = part.strip("{}+")
            pattern += f"(?P<{name}>.+)" if part.endswith("+}") else f"(?P<{name}>[^/]+)"
        else:
            pattern += re.escape(part)
    return re.compile(f"^{pattern}/?$")


class Router:
    """Ordered list of routes; the first match wins."""

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(self, method: str, template: str, handler: Handler, in_spec: bool = True) -> None:
        self.routes.append(Route(method, template, _compile(template), handler, in_spec))

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        for route in self.routes:
            if route.method != method:
                continue
            found = route.regex.match(path)
            if found:
                return route, {k: unquote(v) for k, v in found.groupdict().items()}
        return None


def paginate(req: ApiRequest, items: Sequence[Any], default_per_page: int = 30) -> tuple[list[Any], dict[str, str]]:
    """Slice ``items`` by ``page``/``per_page`` and build GitHub's ``Link`` header from the forge's own base."""
    try:
        per_page = max(1, min(100, int(req.arg("per_page") or default_per_page)))
        page = max(1, int(req.arg("page") or 1))
    except ValueError as exc:
        raise ApiError(400, error("Invalid page or per_page", 400)) from exc
    last = max(1, -(-len(items) // per_page))
    chunk = list(items[(page - 1) * per_page : page * per_page])

    def link(target: int) -> str:
        query = [(k, v) for k, values in req.query.items() if k != "page" for v in values]
        query.append(("page", str(target)))
        return f"{req.urls.api}{req.path}?{urlencode(query)}"

    rels = []
    if page > 1:
        rels.append(f'<{link(page - 1)}>; rel="prev"')
    if page < last:
        rels.append(f'<{link(page + 1)}>; rel="next"')
        rels.append(f'<{link(last)}>; rel="last"')
    if page > 1:
        rels.append(f'<{link(1)}>; rel="first"')
    return chunk, ({"Link": ", ".join(rels)} if rels else {})
