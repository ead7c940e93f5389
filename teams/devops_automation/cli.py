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

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_WAITING = 0, 1, 2, 3  # the same as devops_automation.errors


class CliError(Exception):
    """A one-line error for the user; exits with ``code``."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


def _progress_printer(quiet: bool) -> Callable[[Any], None]:
    start = time.monotonic()

    def emit(event: Any) -> None:
        if not quiet:
            elapsed = time.monotonic() - start
            print(f"[{elapsed:6.2f}s] {event.request_id}: {event.message}", file=sys.stderr, flush=True)

    return emit


def _settings(args: argparse.Namespace) -> Any:
    from .settings import Settings

    overrides = {"allow_broad_token": True} if getattr(args, "allow_broad_token", False) else {}
    return Settings(**overrides)


def _service(args: argparse.Namespace) -> Any:
    """The service: the running server's (DEVOPS_CREW_SERVER_URL) or this process's own engine."""
    settings = _settings(args)
    if settings.server_url and not getattr(args, "local", False):
        from .remote import RemoteService

        return RemoteService(settings)
    from .service import CrewService

    return CrewService(settings)


def _actor(service: Any) -> Any:
    """The CLI's actor: the local login name, with DEVOPS_CREW_CLI_ROLES (every role by default), on the
    channel DEVOPS_CREW_CLI_CHANNEL (``cli``; ``scheduler`` for a CronJob)."""
    from .authz import Actor, Channel, parse_roles

    try:
        roles = parse_roles(service.settings.cli_roles)
    except ValueError as exc:
        raise CliError(f"DEVOPS_CREW_CLI_ROLES: {exc}") from exc
    login = _login()
    channel = Channel(service.settings.cli_channel)
    return Actor(id=login, channel=channel, display_name=login, roles=roles)


def _login() -> str:
    """The real user's login name, from the process's uid (not from LOGNAME/USER, which anyone can
    set to pass as another approver); ``uid-N`` when the uid has no passwd entry (a CronJob's)."""
    import os
    import pwd

    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return f"uid-{os.getuid()}"


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


def _one(args: argparse.Namespace, summary: dict[str, Any], note: str = "") -> int:
    from .report import SCHEMA_VERSION, describe

    _emit(args, {"schema": SCHEMA_VERSION, "request": summary}, describe(summary) + note)
    return _exit_code(summary["state"])


def _many(args: argparse.Namespace, summaries: list[dict[str, Any]], empty: str) -> None:
    from .report import SCHEMA_VERSION, describe

    lines = [describe(s) for s in summaries] or [empty]
    _emit(args, {"schema": SCHEMA_VERSION, "requests": summaries}, "\n".join(lines))


#: A gap's fields as `request` spells them on the command line.
GAP_FLAGS = {
    "description": "DESCRIPTION",
    "required_skills": "--skill",
    "urgency": "--urgency",
    "requesting_team": "--requesting-team",
    "business_justification": "--justification",
    "proposed_name": "--name",
    "id": "--gap-id",
}


def _flag_problems(problems: list[tuple[str, str]]) -> str:
    """``[(field, message)]`` of a gap in the CLI's words: ``--skill 2: must be …``."""
    parts = []
    for where, message in problems:
        field, _, index = where.partition(".")
        flag = GAP_FLAGS.get(field, field)
        if flag == "--skill" and index.isdigit():
            flag = f"--skill #{int(index) + 1}"
        message = message.replace("List should have at most", "give at most").replace(" items", " skills")
        parts.append(f"{flag}: {message}")
    return "invalid input: " + "; ".join(parts)


def cmd_request(args: argparse.Namespace) -> int:
    gap = {
        "id": args.gap_id,
        "description": args.description,
        "required_skills": args.skill or [],
        "urgency": args.urgency,
        "requesting_team": args.requesting_team,
        "business_justification": args.justification,
        "proposed_name": args.name,
    }
    from .errors import InvalidInput

    with _service(args) as service:
        try:
            if args.dry_run:
                return _dry_run(args, service.dry_run(_actor(service), gap, progress=_progress_printer(args.quiet)))
            summary = service.submit(_actor(service), gap, progress=_progress_printer(args.quiet))
        except InvalidInput as exc:
            if not exc.problems:
                raise
            raise CliError(_flag_problems(exc.problems)) from None
    note = " (this gap already had a request)" if summary["duplicate"] else ""
    if summary["duplicate"] and summary["state"] == "rejected":
        note += "\n    to submit it anew, give it a new --gap-id (or word it differently)"
    return _one(args, summary, note)


DRY_RUN_OUTCOMES = {
    "scaffolded": "would push the diff below and open a pull request",
    "awaiting_approval": "would wait for a human approval, then push the diff below",
    "reuse_existing": "would reuse an existing team (nothing to push)",
    "refused": "would be refused by policy (nothing to push)",
    "invalid": "the render fails validation (nothing would be pushed)",
}


def _dry_run(args: argparse.Namespace, view: dict[str, Any]) -> int:
    from .report import SCHEMA_VERSION, describe

    summary, outcome = view["request"], view["outcome"]
    lines = [f"DRY RUN (nothing stored, pushed or counted): {DRY_RUN_OUTCOMES.get(outcome, outcome)}"]
    if summary["team"]:
        risk = (summary["decision"] or {}).get("risk_level", "-")
        cost = summary["monthly_cost_usd"]
        lines.append(
            f"    team {summary['team']} ({summary['department']}), ${cost:,.2f}/month, risk {risk}, "
            f"{summary['files']} files, drafted by {summary['drafter']}"
        )
    if outcome in {"refused", "awaiting_approval", "reuse_existing"}:
        lines.append("    " + describe({**summary, "id": "(dry run)"}).splitlines()[0])
    lines += [f"    invalid: {e}" for e in view["invalid"]]
    if view["diff"]:
        lines += ["", view["diff"].rstrip("\n")]
    _emit(args, {"schema": SCHEMA_VERSION, **view}, "\n".join(lines))
    if outcome in {"scaffolded", "reuse_existing"}:
        return EXIT_OK
    return EXIT_FAILED if outcome == "invalid" else EXIT_WAITING


def cmd_status(args: argparse.Namespace) -> int:
    with _service(args) as service:
        actor = _actor(service)
        if args.id:
            _one(args, service.get(actor, args.id))
            return EXIT_OK
        summaries = service.list(actor, limit=args.limit)
    _many(args, summaries, "no requests yet; try `devops-crew demo`")
    return EXIT_OK


def cmd_resume(args: argparse.Namespace) -> int:
    if bool(args.id) == bool(args.pending):
        raise CliError("give either a request ID or --pending")
    progress = _progress_printer(args.quiet)
    with _service(args) as service:
        actor = _actor(service)
        if args.id:
            return _one(args, service.resume(actor, args.id, progress=progress))
        summaries = service.resume_pending(actor, progress=progress)
    _many(args, summaries, "nothing pending")
    return EXIT_FAILED if any(s["state"] == "failed" for s in summaries) else EXIT_OK


def cmd_approve(args: argparse.Namespace) -> int:
    progress = _progress_printer(args.quiet)
    with _service(args) as service:
        actor = _actor(service)
        if args.override:
            if not (args.reason or "").strip():
                raise CliError("an override needs a reason: --override --reason TEXT")
            summary = service.override(actor, args.id, reason=args.reason, progress=progress)
        else:
            summary = service.approve(
                actor, args.id, reason=args.reason or "", reconsider=args.reconsider, progress=progress
            )
    return _one(args, summary)


def cmd_reject(args: argparse.Namespace) -> int:
    with _service(args) as service:
        summary = service.reject(_actor(service), args.id, reason=args.reason or "", use_team=args.use_team)
    _one(args, summary)
    return EXIT_OK


def cmd_audit(args: argparse.Namespace) -> int:
    from .report import SCHEMA_VERSION

    with _service(args) as service:
        actor = _actor(service)
        if args.verify:
            result = service.verify_audit(actor, full=args.full)
            resumed = result["resumed_from"]
            where = f"from the checkpoint at row {resumed}" if resumed else "from row 1"
            text = (
                "\n".join(result["problems"])
                if result["problems"]
                else f"audit log intact: rows 1..{result['last']}, hash chain verified "
                f"({result['rows']} row{'' if result['rows'] == 1 else 's'} walked {where})"
            )
            _emit(args, {"schema": SCHEMA_VERSION, **result}, text)
            return EXIT_OK if result["ok"] else EXIT_FAILED
        rows = service.audit(actor, request_id=args.request, limit=args.limit)
    text = "\n".join(
        f"{r['seq']:>5} {r['ts'][:19].replace('T', ' ')} {r['request_id'] or '-':<16} {r['action']:<26} "
        f"{r['phase']:<9} {r['target']}"
        for r in rows
    )
    _emit(args, {"schema": SCHEMA_VERSION, "rows": rows}, text or "audit log is empty")
    return EXIT_OK


def cmd_track(args: argparse.Namespace) -> int:
    with _service(args) as service:
        results = service.track(_actor(service), progress=_progress_printer(args.quiet))
    lines = [
        f"{r['request_id']}: #{r['pr_number']} {r['before']} -> {r['after']} {r['note']}".rstrip() for r in results
    ]
    _emit(args, {"schema": 1, "tracked": results}, "\n".join(lines) or "no published requests to track")
    return EXIT_OK


def cmd_review_gaps(args: argparse.Namespace) -> int:
    with _service(args) as service:
        view = service.review_gaps(_actor(service), drive=not args.no_run, progress=_progress_printer(args.quiet))
    if "skipped" in view:
        _emit(args, {"schema": 1, **view}, f"skipped: {view['skipped']}")
        return EXIT_OK
    lines = []
    for source in view["sources"]:
        lines.append(f"source {source['name']}: {source['tasks']} tasks, {source['reports']} gap reports")
        lines += [f"    skipped {p['where']}: {p['problem']}" for p in source["problems"]]
    for c in view["candidates"]:
        lines.append(f"  [{c['outcome']}] {c['label']} ({c['urgency']}, {c['tasks_waiting']} waiting) {c['detail']}")
    outcomes = ", ".join(f"{n} {k}" for k, n in sorted(view["outcomes"].items())) or "nothing to review"
    lines.append(f"{len(view['candidates'])} candidates: {outcomes}; {view['free_slots']} new-team slot(s) were free")
    for run in view.get("runs", []):
        from .report import describe

        lines.append(describe(run))
    _emit(args, {"schema": 1, **view}, "\n".join(lines))
    problems = any(s["problems"] for s in view["sources"])
    return EXIT_FAILED if problems and not view["candidates"] else EXIT_OK


def cmd_task_add(args: argparse.Namespace) -> int:
    from .errors import InvalidInput

    task = {"summary": args.summary, "skills": args.skill or [], "urgency": args.urgency, "source": args.source}
    with _service(args) as service:
        try:
            row = service.add_task(_actor(service), task)
        except InvalidInput as exc:
            flags = {"summary": "SUMMARY", "skills": "--skill", "urgency": "--urgency", "source": "--source"}
            if not exc.problems:
                raise
            raise CliError("; ".join(f"{flags.get(f, f)}: {m}" for f, m in exc.problems)) from None
    _emit(args, {"schema": 1, "task": row}, f"{row['id']}: recorded ({', '.join(row['skills'])})")
    return EXIT_OK


def cmd_task_list(args: argparse.Namespace) -> int:
    with _service(args) as service:
        rows = service.list_tasks(_actor(service), limit=args.limit)
    lines = [f"{r['id']} [{r['urgency']}] {r['source']}: {r['summary']} ({', '.join(r['skills'])})" for r in rows]
    _emit(args, {"schema": 1, "tasks": rows}, "\n".join(lines) or "no unassigned tasks")
    return EXIT_OK


def cmd_team_card(args: argparse.Namespace) -> int:
    with _service(args) as service:
        view = service.team_card(_actor(service), args.name, live=args.live)
    card = view["card"]
    lines = [f"{view['team']}: A2A at {view['url']}", f"    {card['description'][:200]}"]
    lines += [f"    skill {s['id']}: {s['name']}" for s in card.get("skills", [])]
    if args.live:
        lines.append(
            "    served card: matches team.yaml"
            if not view["differences"]
            else "    served card differs from team.yaml:\n" + "\n".join(f"      {d}" for d in view["differences"])
        )
    _emit(args, {"schema": 1, **view}, "\n".join(lines))
    return EXIT_OK


def cmd_rollback(args: argparse.Namespace) -> int:
    from .report import SCHEMA_VERSION

    with _service(args) as service:
        summary = service.rollback(_actor(service), args.id, progress=_progress_printer(args.quiet))
    rollback = summary["rollback"] or {}
    pr = rollback.get("pull_request") or {}
    _emit(
        args,
        {"schema": SCHEMA_VERSION, "request": summary},
        f"{summary['id']}: revert pull request #{pr.get('number')} on {rollback.get('branch')}\n    {pr.get('url')}",
    )
    return EXIT_OK


def cmd_forge_serve(args: argparse.Namespace) -> int:
    from .service import serve_embedded_forge
    from .settings import Settings

    settings = Settings()
    port = settings.forge_port if args.port is None else args.port
    moved = port != settings.forge_port
    # The forge's own pages link to its public URL: on the port it serves on, unless one is configured.
    settings = settings.model_copy(update={"forge_port": port})

    def ready(api_url: str) -> None:
        print(f"local forge serving {settings.target_repo} at {api_url.removesuffix('/api/v3')}", flush=True)
        print(f"  API base URL: {api_url}  (token in {settings.home / 'forge' / 'token'})", flush=True)
        if moved and port and not settings.forge_public_url:
            # Other commands find this forge (it advertises itself) but build their links from the variable.
            print(
                f"  note: other devops-crew commands link pull requests to port DEVOPS_CREW_FORGE_PORT; "
                f"export DEVOPS_CREW_FORGE_PORT={port} for them (instead of --port) to keep their links on this one",
                file=sys.stderr,
                flush=True,
            )

    def stop(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)  # a service manager's stop cleans up like Ctrl-C
    try:
        with contextlib.suppress(KeyboardInterrupt):
            serve_embedded_forge(settings, port, ready)
    except BrokenPipeError:
        raise  # stdout's reader went away: main() ends it quietly; not a port that cannot be served
    except OSError as exc:
        raise CliError(f"cannot serve on 127.0.0.1:{port}: {exc.strerror or exc}", EXIT_FAILED) from exc
    return EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    from .server.run import serve

    settings = _settings(args)
    host = args.host or settings.server_host
    port = settings.server_port if args.port is None else args.port

    def ready(url: str) -> None:
        print(
            f"devops-crew serving at {url}  (A2A card: {url}/.well-known/agent-card.json, dashboard: {url}/)",
            file=sys.stderr,
            flush=True,
        )

    try:
        serve(settings, host=host, port=port, ready=ready)
    except OSError as exc:
        raise CliError(f"cannot serve on {host}:{port}: {exc.strerror or exc}", EXIT_FAILED) from exc
    return EXIT_OK


def cmd_hash_password(args: argparse.Namespace) -> int:
    import getpass
    import warnings

    from .server.auth import hash_password

    if args.stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        # Without a terminal getpass would warn and read the password with echo on: refuse instead.
        with warnings.catch_warnings():
            warnings.simplefilter("error", getpass.GetPassWarning)
            try:
                password = getpass.getpass("password: ")
            except getpass.GetPassWarning:
                raise CliError(
                    "no terminal to read the password from without echoing it: pipe it in with --stdin"
                ) from None
    if len(password) < 8:
        raise CliError("a password needs at least 8 characters")
    print(hash_password(password))
    return EXIT_OK


def cmd_discord(args: argparse.Namespace) -> int:
    from .discord_bot import run_bot

    def ready(name: str) -> None:
        print(f"devops-crew Discord bot connected as {name}", file=sys.stderr, flush=True)

    run_bot(_settings(args), ready=ready)
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    args.local = True  # the demo always runs on this machine's embedded defaults
    with _service(args) as service:
        return run_demo(args, service, _actor(service), _progress_printer(args.quiet), _emit)


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
    # The long-running commands (serve, discord) take only these: they print no answer to shape as JSON,
    # and they are the engine's own process (never a client of a server).
    daemon = argparse.ArgumentParser(add_help=False)
    daemon.add_argument("-q", "--quiet", action="store_true", help="no progress lines on stderr")
    daemon.add_argument(
        "--allow-broad-token",
        action="store_true",
        help="run even if the GitHub token can administer the repo or push to its base branch",
    )
    common = argparse.ArgumentParser(add_help=False, parents=[daemon])
    common.add_argument("--json", action="store_true", help="machine-readable output (README: JSON output)")
    common.add_argument(
        "--local",
        action="store_true",
        help="run the engine in this process even when DEVOPS_CREW_SERVER_URL names a running server",
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
    req.add_argument(
        "--dry-run",
        action="store_true",
        help="analyse, draft, gate and validate, print the diff that would be pushed; store and push nothing",
    )
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
    audit.add_argument(
        "--verify", action="store_true", help="check the hash chain (from the last verified checkpoint)"
    )
    audit.add_argument("--full", action="store_true", help="with --verify: walk from the first row, not the checkpoint")
    audit.add_argument("--request", metavar="ID", help="only this request's rows")
    audit.add_argument("--limit", type=_positive, default=50, help="the newest N rows (default: 50)")
    audit.set_defaults(func=cmd_audit)

    approve = sub.add_parser("approve", parents=[common], help="a human approves a waiting or rate-limited request")
    approve.add_argument("id")
    approve.add_argument(
        "--override", action="store_true", help="emergency override of rate limit and cooldown (needs --reason)"
    )
    approve.add_argument(
        "--reconsider",
        action="store_true",
        help="reopen a request refused as previously-rejected (a team reviewers rejected before)",
    )
    approve.add_argument("--reason", metavar="TEXT", help="why (required with --override; recorded and audited)")
    approve.set_defaults(func=cmd_approve)

    reject = sub.add_parser(
        "reject", parents=[common], help="a human rejects a waiting, refused or failed request (or withdraws their own)"
    )
    reject.add_argument("id")
    reject.add_argument(
        "--reason", help="why: required, unless you withdraw your own request or send the gap to --use-team"
    )
    reject.add_argument("--use-team", metavar="TEAM", help="no new team: send the gap to this registered team (triage)")
    reject.set_defaults(func=cmd_reject)
    track = sub.add_parser("track", parents=[common], help="refresh published requests from their pull requests")
    track.set_defaults(func=cmd_track)

    review = sub.add_parser(
        "review-gaps", parents=[common], help="review gap reports and unassigned tasks; submit what is missing"
    )
    review.add_argument("--no-run", action="store_true", help="record the new requests without running them")
    review.set_defaults(func=cmd_review_gaps)

    task = sub.add_parser("task", help="unassigned tasks other crews could not place")
    task_sub = task.add_subparsers(dest="task_command", required=True, metavar="COMMAND")
    task_add = task_sub.add_parser("add", parents=[common], help="record a task no team can take")
    task_add.add_argument("summary")
    task_add.add_argument("--skill", action="append", metavar="SKILL", help="a required skill (repeatable)")
    task_add.add_argument("--urgency", choices=["low", "medium", "high", "critical"], default="medium")
    task_add.add_argument("--source", metavar="CREW", help="the crew that could not place it (default: you)")
    task_add.set_defaults(func=cmd_task_add)
    task_list = task_sub.add_parser("list", parents=[common], help="unassigned tasks no review has placed")
    task_list.add_argument("--limit", type=_positive, default=100)
    task_list.set_defaults(func=cmd_task_list)

    team = sub.add_parser("team", help="the registry's teams")
    team_sub = team.add_subparsers(dest="team_command", required=True, metavar="COMMAND")
    team_card = team_sub.add_parser(
        "card", parents=[common], help="a registered team's A2A agent card (where other crews delegate to it)"
    )
    team_card.add_argument("name")
    team_card.add_argument("--live", action="store_true", help="also read the card the deployed team serves")
    team_card.set_defaults(func=cmd_team_card)

    rollback = sub.add_parser("rollback", parents=[common], help="open a revert pull request for a merged team")
    rollback.add_argument("id")
    rollback.set_defaults(func=cmd_rollback)

    serve = sub.add_parser(
        "serve", parents=[daemon], help="serve A2A, the JSON API, the dashboard, /healthz, /readyz and /metrics"
    )
    serve.add_argument("--host", help="address to bind (default DEVOPS_CREW_SERVER_HOST, 127.0.0.1)")
    serve.add_argument("--port", type=_port, help="port (default DEVOPS_CREW_SERVER_PORT, 8080; 0 picks one)")
    serve.set_defaults(func=cmd_serve)
    hashpw = sub.add_parser("hash-password", help="print an argon2 hash for DEVOPS_CREW_WEB_USERS")
    hashpw.add_argument("--stdin", action="store_true", help="read the password from standard input")
    hashpw.set_defaults(func=cmd_hash_password)

    discord = sub.add_parser(
        "discord", parents=[daemon], help="run the Discord bot (DISCORD_TOKEN): !team and /team commands"
    )
    discord.set_defaults(func=cmd_discord)

    forge = sub.add_parser("forge", help="the embedded local forge")
    forge_sub = forge.add_subparsers(dest="forge_command", required=True, metavar="COMMAND")
    forge_serve = forge_sub.add_parser("serve", help="serve the embedded forge until interrupted")
    forge_serve.add_argument(
        "--port", type=_port, default=None, help="port on 127.0.0.1 (default DEVOPS_CREW_FORGE_PORT, 3131; 0 picks one)"
    )
    forge_serve.set_defaults(func=cmd_forge_serve)
    return parser


def _settings_message(exc: Exception) -> str:
    """``error parsing value for field "llm_prices" ...`` -> the variable's name and what is wrong."""
    import re

    from .settings import Settings

    match = re.search(r'field "(\w+)"', str(exc))
    field = Settings.model_fields.get(match.group(1)) if match else None
    alias = getattr(getattr(field, "validation_alias", None), "choices", [None])[0] if field else None
    name = alias or (match.group(1) if match else "a setting")
    return f"{name}: not a valid value ({'expected JSON' if 'dict' in str(field and field.annotation) else exc})"


#: The exit status when the reader of stdout went away (a shell's 128 + SIGPIPE).
EXIT_BROKEN_PIPE = 141


def _stdout_reader_gone() -> bool:
    """Whether stdout is a pipe whose reading end is closed (``poll`` reports an error on it)."""
    import select

    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (OSError, ValueError, AttributeError):  # no fd (a test's StringIO), or no poll here
        return False


def main(argv: Sequence[str] | None = None) -> int:
    from .quiet import silence_crewai

    silence_crewai()
    args = build_parser().parse_args(argv)
    if getattr(args, "quiet", False):
        from .quiet import quiet_library_logs

        quiet_library_logs()
    try:
        code = int(args.func(args))
        sys.stdout.flush()  # a reader that went away (`| head`) is found here, not at interpreter exit
        return code
    except BrokenPipeError:
        if not _stdout_reader_gone():
            raise  # another pipe (a git process's stdin, a socket): a failure of its own, shown as one
        # The reader closed the pipe: the output is not wanted, the work is done. The shell's convention
        # (128 + SIGPIPE) instead of a traceback; stdout goes to /dev/null so the exit's flush stays quiet.
        import os

        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
        os.close(null)
        return EXIT_BROKEN_PIPE
    except CliError as exc:
        print(f"devops-crew: error: {exc}", file=sys.stderr)
        return exc.code
    except Exception as exc:
        from pydantic import ValidationError
        from pydantic_settings import SettingsError

        from .errors import DevopsCrewError, PolicyViolation, StepFailure, exit_code

        if isinstance(exc, SettingsError):  # a variable that is not even parseable (e.g. not JSON)
            print(f"devops-crew: error: {_settings_message(exc)}", file=sys.stderr)
            return EXIT_USAGE
        if isinstance(exc, ValidationError):  # a setting from the environment
            from .service import invalid_input_message

            print(f"devops-crew: error: {invalid_input_message(exc)}", file=sys.stderr)
            return EXIT_USAGE
        if not isinstance(exc, DevopsCrewError):
            raise  # a bug: let it show as one
        message = " ".join(str(exc).split())[:500]
        if isinstance(exc, PolicyViolation):
            message = f"refused by policy: {message}"
        elif isinstance(exc, StepFailure) and "forge" in type(exc).__name__.lower():
            message = f"the forge failed: {message}"
        print(f"devops-crew: error: {message}", file=sys.stderr)
        return exit_code(exc)


if __name__ == "__main__":
    sys.exit(main())
