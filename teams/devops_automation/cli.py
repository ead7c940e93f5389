"""The ``devops-crew`` command. Imports stay inside the commands so ``--help`` is instant."""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_WAITING = 0, 1, 2, 3


class CliError(Exception):
    """A one-line error for the user; exits with ``code``."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


def _progress_printer(quiet: bool) -> Callable[[str, str], None]:
    start = time.monotonic()

    def emit(request_id: str, message: str) -> None:
        if not quiet:
            print(f"[{time.monotonic() - start:6.2f}s] {request_id}: {message}", file=sys.stderr, flush=True)

    return emit


def _app(args: argparse.Namespace) -> Any:
    from .app import build_app
    from .settings import Settings

    overrides = {"allow_broad_token": True} if getattr(args, "allow_broad_token", False) else {}
    return build_app(Settings(**overrides), _progress_printer(args.quiet))


def _store() -> Any:
    """The state store alone, for read-only commands: they work without a forge or GitHub."""
    from .settings import Settings
    from .store import open_store

    settings = Settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    return open_store(settings.effective_database_url)


def _emit(args: argparse.Namespace, payload: Any, text: str) -> None:
    if args.json:
        print(json.dumps(payload, indent=2, sort_keys=True))
    else:
        print(text)


def _exit_code(state: str) -> int:
    if state in {"published", "reuse_existing", "merged"}:
        return EXIT_OK
    if state == "failed":
        return EXIT_FAILED
    return EXIT_WAITING


def cmd_request(args: argparse.Namespace) -> int:
    from .models import CapabilityGap
    from .report import SCHEMA_VERSION, describe, request_summary

    gap = CapabilityGap(
        id=args.gap_id,
        description=args.description,
        required_skills=args.skill or [],
        urgency=args.urgency,
        requesting_team=args.requesting_team,
        business_justification=args.justification,
        proposed_name=args.name,
    )
    app = _app(args)
    try:
        submission = app.pipeline.submit(gap)
    finally:
        app.close()
    request = submission.request
    note = " (this gap already had a request)" if submission.duplicate else ""
    _emit(
        args,
        {"schema": SCHEMA_VERSION, "request": request_summary(request, duplicate=submission.duplicate)},
        describe(request) + note,
    )
    return _exit_code(request.state.value)


def cmd_status(args: argparse.Namespace) -> int:
    from .pipeline import RequestNotFound
    from .report import SCHEMA_VERSION, describe, request_summary

    store = _store()
    try:
        if args.id:
            request = store.get_request(args.id)
            if request is None:
                raise RequestNotFound(f"no request {args.id!r}; `devops-crew status` lists them")
            _emit(args, {"schema": SCHEMA_VERSION, "request": request_summary(request)}, describe(request))
            return EXIT_OK
        requests = store.list_requests(limit=args.limit)
    finally:
        store.close()
    lines = [describe(r) for r in requests] or ["no requests yet; try `devops-crew demo`"]
    _emit(args, {"schema": SCHEMA_VERSION, "requests": [request_summary(r) for r in requests]}, "\n".join(lines))
    return EXIT_OK


def cmd_resume(args: argparse.Namespace) -> int:
    from .report import SCHEMA_VERSION, describe, request_summary

    if bool(args.id) == bool(args.pending):
        raise CliError("give either a request ID or --pending")
    app = _app(args)
    try:
        if args.id:
            request = app.pipeline.run(args.id)
            _emit(args, {"schema": SCHEMA_VERSION, "request": request_summary(request)}, describe(request))
            return _exit_code(request.state.value)
        requests = [app.pipeline.run(r.id) for r in app.pipeline.pending()]
    finally:
        app.close()
    lines = [describe(r) for r in requests] or ["nothing pending"]
    _emit(args, {"schema": SCHEMA_VERSION, "requests": [request_summary(r) for r in requests]}, "\n".join(lines))
    return EXIT_FAILED if any(r.state.value == "failed" for r in requests) else EXIT_OK


def _human(args: argparse.Namespace) -> str:
    import getpass

    return args.by or getpass.getuser()


def cmd_approve(args: argparse.Namespace) -> int:
    from .report import SCHEMA_VERSION, describe, request_summary

    app = _app(args)
    try:
        request = app.pipeline.approve(args.id, by=_human(args), override=args.override)
    finally:
        app.close()
    _emit(args, {"schema": SCHEMA_VERSION, "request": request_summary(request)}, describe(request))
    return _exit_code(request.state.value)


def cmd_reject(args: argparse.Namespace) -> int:
    from .report import SCHEMA_VERSION, describe, request_summary

    app = _app(args)
    try:
        request = app.pipeline.reject(args.id, by=_human(args), reason=args.reason or "")
    finally:
        app.close()
    _emit(args, {"schema": SCHEMA_VERSION, "request": request_summary(request)}, describe(request))
    return EXIT_OK


def cmd_audit(args: argparse.Namespace) -> int:
    from .audit import verify_chain

    store = _store()
    try:
        rows = list(store.iter_audit())
        head = store.audit_head()
    finally:
        store.close()
    if args.verify:
        problems = verify_chain(rows, head)
        _emit(
            args,
            {"rows": len(rows), "ok": not problems, "problems": problems},
            "\n".join(problems) if problems else f"audit log intact: {len(rows)} rows, hash chain verified",
        )
        return EXIT_FAILED if problems else EXIT_OK
    shown = [r for r in rows if args.request is None or r.request_id == args.request][-args.limit :]
    payload = [
        {
            "seq": r.seq,
            "ts": r.ts.isoformat(),
            "request_id": r.request_id,
            "action": r.action,
            "phase": r.phase,
            "target": r.target,
            "detail": json.loads(r.detail),
            "hash": r.hash,
        }
        for r in shown
    ]
    text = "\n".join(
        f"{r.seq:>5} {r.ts:%Y-%m-%d %H:%M:%S} {r.request_id or '-':<16} {r.action:<26} {r.phase:<9} {r.target}"
        for r in shown
    )
    _emit(args, {"rows": payload}, text or "audit log is empty")
    return EXIT_OK


def cmd_track(args: argparse.Namespace) -> int:
    app = _app(args)
    try:
        results = app.lifecycle.track()
    finally:
        app.close()
    lines = [f"{r.request_id}: #{r.pr_number} {r.before} -> {r.after} {r.note}".rstrip() for r in results]
    _emit(
        args,
        {"schema": 1, "tracked": [r.model_dump() for r in results]},
        "\n".join(lines) or "no published requests to track",
    )
    return EXIT_OK


def cmd_rollback(args: argparse.Namespace) -> int:
    from .report import SCHEMA_VERSION, request_summary

    app = _app(args)
    try:
        request = app.lifecycle.rollback(args.id, by=_human(args))
    finally:
        app.close()
    _emit(
        args,
        {"schema": SCHEMA_VERSION, "request": request_summary(request)},
        f"{request.id}: revert pull request #{request.rollback_pr_number} on {request.rollback_branch}\n"
        f"    {request.rollback_pr_url}",
    )
    return EXIT_OK


def cmd_forge_serve(args: argparse.Namespace) -> int:
    from .forge.connection import serve_local_forge
    from .settings import Settings

    settings = Settings()
    if settings.github_token is not None:
        raise CliError("GITHUB_TOKEN is set, so devops-crew talks to GitHub; the local forge is for the embedded mode")
    settings.home.mkdir(parents=True, exist_ok=True)

    def ready(api_url: str) -> None:
        print(f"local forge serving {settings.target_repo} at {api_url.removesuffix('/api/v3')}", flush=True)
        print(f"  API base URL: {api_url}  (token in {settings.home / 'forge' / 'token'})", flush=True)

    def stop(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)  # a service manager's stop cleans up like Ctrl-C
    try:
        with contextlib.suppress(KeyboardInterrupt):
            serve_local_forge(settings, args.port, ready)
    except OSError as exc:
        raise CliError(f"cannot serve on 127.0.0.1:{args.port}: {exc.strerror or exc}", EXIT_FAILED) from exc
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(args, _app(args), _emit)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a TCP port (0-65535)")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="devops-crew",
        description="Turn capability gaps into reviewed pull requests that add new teams.",
        epilog="State lives in $DEVOPS_CREW_HOME (default ./.devops-crew). See README for configuration.",
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="machine-readable output (README: JSON output)")
    common.add_argument("-q", "--quiet", action="store_true", help="no progress lines on stderr")
    common.add_argument(
        "--allow-broad-token",
        action="store_true",
        help="run even if the GitHub token can administer the repo or push to its base branch",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", parents=[common], help="run three sample gaps on the embedded defaults")
    demo.set_defaults(func=cmd_demo)

    req = sub.add_parser("request", parents=[common], help="submit a capability gap")
    req.add_argument("description", help="what nobody in the fleet can do yet")
    req.add_argument("--skill", action="append", metavar="SKILL", help="a required skill (repeatable)")
    req.add_argument("--urgency", choices=["low", "medium", "high", "critical"], default="medium")
    req.add_argument("--requesting-team", metavar="TEAM")
    req.add_argument("--justification", metavar="TEXT", help="business justification")
    req.add_argument("--name", metavar="NAME", help="proposed team name (snake_case)")
    req.add_argument("--gap-id", metavar="ID", help="the gap's id in the system that found it")
    req.set_defaults(func=cmd_request)

    status = sub.add_parser("status", parents=[common], help="show one request or the latest ones")
    status.add_argument("id", nargs="?")
    status.add_argument("--limit", type=_positive, default=20)
    status.set_defaults(func=cmd_status)

    resume = sub.add_parser("resume", parents=[common], help="run a request again from its last good step")
    resume.add_argument("id", nargs="?")
    resume.add_argument(
        "--pending",
        action="store_true",
        help="every unfinished request: failed, rate-limited, or stopped mid-way (for a schedule)",
    )
    resume.set_defaults(func=cmd_resume)

    audit = sub.add_parser("audit", parents=[common], help="show the audit log, or --verify its hash chain")
    audit.add_argument("--verify", action="store_true")
    audit.add_argument("--request", metavar="ID")
    audit.add_argument("--limit", type=_positive, default=50)
    audit.set_defaults(func=cmd_audit)

    approve = sub.add_parser("approve", parents=[common], help="a human approves a waiting or rate-limited request")
    approve.add_argument("id")
    approve.add_argument("--override", action="store_true", help="emergency override of rate limit and cooldown")
    approve.add_argument("--by", metavar="NAME", help="who approves (default: your user name)")
    approve.set_defaults(func=cmd_approve)

    reject = sub.add_parser("reject", parents=[common], help="a human rejects a waiting request")
    reject.add_argument("id")
    reject.add_argument("--reason")
    reject.add_argument("--by", metavar="NAME")
    reject.set_defaults(func=cmd_reject)
    track = sub.add_parser("track", parents=[common], help="refresh published requests from their pull requests")
    track.set_defaults(func=cmd_track)

    rollback = sub.add_parser("rollback", parents=[common], help="open a revert pull request for a merged team")
    rollback.add_argument("id")
    rollback.add_argument("--by", metavar="NAME")
    rollback.set_defaults(func=cmd_rollback)

    forge = sub.add_parser("forge", help="the embedded local forge")
    forge_sub = forge.add_subparsers(dest="forge_command", required=True, metavar="COMMAND")
    serve = forge_sub.add_parser("serve", help="serve the embedded forge until interrupted")
    serve.add_argument("--port", type=_port, default=3131, help="port on 127.0.0.1 (default 3131; 0 picks one)")
    serve.set_defaults(func=cmd_forge_serve)
    return parser


def _validation_message(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        parts = []
        for err in errors():
            field = ".".join(str(p) for p in err.get("loc", ())) or "input"
            parts.append(f"{field}: {err.get('msg', 'invalid')}")
        return "invalid input: " + "; ".join(parts)
    return str(exc)


def main(argv: Sequence[str] | None = None) -> int:
    from .quiet import silence_crewai

    silence_crewai()
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except CliError as exc:
        print(f"devops-crew: error: {exc}", file=sys.stderr)
        return exc.code
    except Exception as exc:
        from github import GithubException
        from pydantic import ValidationError
        from requests import RequestException

        from .app import ConfigurationError
        from .forge.github import ForgeError
        from .pipeline import ActionRefused, RequestNotFound
        from .policy import PolicyViolation
        from .target import TargetRepoError

        if isinstance(exc, ValidationError):
            print(f"devops-crew: error: {_validation_message(exc)}", file=sys.stderr)
            return EXIT_USAGE
        if isinstance(exc, ForgeError | GithubException | RequestException):
            print(f"devops-crew: error: the forge failed: {str(exc).splitlines()[0][:300]}", file=sys.stderr)
            return EXIT_FAILED
        if isinstance(exc, PolicyViolation):
            print(f"devops-crew: error: refused by policy: {exc}", file=sys.stderr)
            return EXIT_WAITING
        if isinstance(exc, RequestNotFound | ActionRefused | ConfigurationError | TargetRepoError):
            print(f"devops-crew: error: {exc}", file=sys.stderr)
            return EXIT_USAGE if not isinstance(exc, TargetRepoError) else EXIT_FAILED
        raise


if __name__ == "__main__":
    sys.exit(main())
