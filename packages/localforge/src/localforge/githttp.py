"""Git's smart HTTP protocol for the forge's repositories, through ``git http-backend`` as a CGI program.

This is what makes a repository's ``clone_url`` (``http://host:port/owner/repo.git``) real: ``git clone``,
``fetch`` and ``push`` work against it. Fetching is open, as for a public repository on GitHub; pushing
needs the forge's token as the password of HTTP Basic authentication (any user name, as with GitHub's
``x-access-token``), or as a bearer token.

A push to a repository with protected branches runs with :func:`push_guard_env`: git's ``proc-receive``
hook (:mod:`.pushhook`, installed by :func:`install_push_hook`) sees every update of a protected branch and
asks the forge whether to accept it, so protected branches refuse pushes as on GitHub (needs git 2.31 or later, for
``GIT_CONFIG_COUNT``).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .pushhook import URL_ENV

GIT_PATH_RE = re.compile(
    r"^/(?P<owner>[^/]+)/(?P<repo>[^/]+?)\.git(?P<rest>/(?:info/refs|git-upload-pack|git-receive-pack|HEAD"
    r"|objects/.*))$"
)


@dataclass(frozen=True)
class CgiResult:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def wants_push(rest: str, query: str) -> bool:
    return rest == "/git-receive-pack" or "service=git-receive-pack" in query


def install_push_hook(hooks_dir: Path) -> Path:
    """Write the ``proc-receive`` hook (a shell wrapper running :mod:`.pushhook` with this Python) into
    ``hooks_dir``, which is used only through :func:`push_guard_env`; returns ``hooks_dir``."""
    hooks_dir.mkdir(parents=True, exist_ok=True)
    script = Path(__file__).with_name("pushhook.py")
    hook = hooks_dir / "proc-receive"
    content = f"#!/bin/sh\nexec {shlex.quote(sys.executable)} -I {shlex.quote(str(script))}\n"
    if not hook.exists() or hook.read_text() != content:
        hook.write_text(content)
    hook.chmod(0o755)
    return hooks_dir


def push_guard_env(hooks_dir: Path, check_url: str, protected: list[str] | None = None) -> dict[str, str]:
    """Environment for ``git http-backend`` that routes branch updates through the hook.

    ``protected``: the repository's protected branch names; only updates of those refs are handed to the
    hook (one ``receive.procReceiveRefs`` entry each, which git matches as a ref prefix ending at the name or
    at a ``/``, so ``main`` also sends ``main/x`` through the hook, where the forge allows it). Every other
    branch is updated by git directly, without starting the hook's Python process: a push to an unprotected
    branch costs what it costs on a repository without protection. None routes every branch. The list is
    read when the push starts: a rule added while a push is under way applies from the next push on (as a
    first rule on a repository without protection always did)."""
    refs = [f"refs/heads/{name}" for name in protected] if protected is not None else ["refs/heads"]
    env = {"GIT_CONFIG_KEY_0": "core.hooksPath", "GIT_CONFIG_VALUE_0": str(hooks_dir), URL_ENV: check_url}
    for i, ref in enumerate(refs, start=1):
        env[f"GIT_CONFIG_KEY_{i}"] = "receive.procReceiveRefs"
        env[f"GIT_CONFIG_VALUE_{i}"] = ref
    env["GIT_CONFIG_COUNT"] = str(len(refs) + 1)
    return env


def run_backend(
    repo_path: Path,
    rest: str,
    method: str,
    query: str,
    content_type: str,
    body: bytes,
    request_headers: dict[str, str],
    remote_user: str | None,
    extra_env: dict[str, str] | None = None,
) -> CgiResult:
    """Run ``git http-backend`` for one request and parse its CGI answer."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_PROJECT_ROOT": str(repo_path.parent),
        "GIT_HTTP_EXPORT_ALL": "1",
        "PATH_INFO": f"/{repo_path.name}{rest}",
        "REQUEST_METHOD": method,
        "QUERY_STRING": query,
        "CONTENT_TYPE": content_type,
        "CONTENT_LENGTH": str(len(body)),
        "GATEWAY_INTERFACE": "CGI/1.1",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
    }
    if remote_user:
        env["REMOTE_USER"] = remote_user  # enables receive-pack for an authenticated user
    encoding = request_headers.get("content-encoding")
    if encoding:
        env["HTTP_CONTENT_ENCODING"] = encoding
    protocol = request_headers.get("git-protocol")
    if protocol:
        env["GIT_PROTOCOL"] = protocol
    env.update(extra_env or {})
    proc = subprocess.run(["git", "http-backend"], input=body, capture_output=True, env=env, check=False)
    head, _, payload = proc.stdout.partition(b"\r\n\r\n")
    if not _ and b"\n\n" in proc.stdout:
        head, _, payload = proc.stdout.partition(b"\n\n")
    status = 200 if proc.returncode == 0 else 500
    headers: list[tuple[str, str]] = []
    for line in head.decode("latin-1").splitlines():
        name, sep, value = line.partition(":")
        if not sep:
            continue
        if name.strip().lower() == "status":
            status = int(value.strip().split()[0])
        else:
            headers.append((name.strip(), value.strip()))
    return CgiResult(status, headers, payload)
