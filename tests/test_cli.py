"""The `devops-crew` command as a user runs it: a real process, real state directory, real repos."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

EXE = Path(sys.executable).with_name("devops-crew")


def run(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("DEVOPS_CREW_", "DATABASE_URL"))}
    environment.update({"DEVOPS_CREW_HOME": str(home), "DEVOPS_CREW_COOLDOWN_SECONDS": "0", **env})
    return subprocess.run(
        [str(EXE), *args], capture_output=True, text=True, env=environment, timeout=300, cwd=home.parent
    )


def test_help_does_not_import_crewai_or_the_database_layer() -> None:
    code = (
        "import sys\nfrom devops_automation.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('crewai', 'sqlalchemy', 'git', 'cookiecutter', 'github') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("command", ["serve", "discord"])
def test_the_long_running_commands_offer_only_the_options_they_honour(command: str) -> None:
    """serve and discord print no answer to shape as JSON and always run the engine themselves: --json and
    --local are usage errors there, not options accepted and ignored."""
    from devops_automation.cli import build_parser

    parser = build_parser()
    assert parser.parse_args([command, "-q", "--allow-broad-token"]).quiet is True
    for option in ("--json", "--local"):
        with pytest.raises(SystemExit) as usage:
            parser.parse_args([command, option])
        assert usage.value.code == 2
    assert parser.parse_args(["status", "--json", "--local"]).json is True  # the client commands keep both


@pytest.mark.slow
def test_demo_runs_the_three_outcomes_and_is_stable_on_rerun(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = run(home, "demo", "--json")
    assert first.returncode == 0, first.stderr
    payload = json.loads(first.stdout)
    states = [r["state"] for r in payload["requests"]]
    assert states == ["published", "reuse_existing", "refused"]
    published, reused, refused = payload["requests"]
    assert published["pull_request"]["number"] == 1 and published["branch"].startswith("auto/team-")
    assert reused["matched_team"] == "customer_support"
    assert refused["decision"]["rule"] == "reserved-name" and refused["decision"]["remedy"]
    assert "offline drafter" in payload["drafter"]
    assert "rendering" in first.stderr and "validating" in first.stderr  # progress is shown
    second = json.loads(run(home, "demo", "--json").stdout)
    assert [r["id"] for r in second["requests"]] == [r["id"] for r in payload["requests"]]
    assert all(r["duplicate"] for r in second["requests"])
    status = json.loads(run(home, "status", "--json").stdout)
    assert set(status["requests"][0]) == set(published) - {"duplicate"}
    verify = run(home, "audit", "--verify")
    assert verify.returncode == 0 and "hash chain verified" in verify.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["request", ""], "DESCRIPTION: must have at least 1 character"),
        (["request", "x" * 51_200], "at most 10000 characters"),
        (["request", "needs things", "--name", "../../.github/workflows/x"], "--name: must be 3-40 characters"),
        (["request", "needs things", "--skill", "ok", "--skill", "$(rm -rf /)"], "--skill #2:"),
        (["request", "needs things", "--gap-id", "../x"], "--gap-id: must be 1-64 characters"),
        (["request", "evil \u202e gnp.exe"], "bidirectional-override characters (U+202E at 5)"),
        (["request", "ok", "--justification", "a\u2066b"], "--justification: must not contain bidirectional"),
        (["status", "req-doesnotexist"], "no request 'req-doesnotexist'"),
        (["status", "--limit", "100000000000000000000"], "limit must be between 1 and 1000"),
        (["approve", "req-doesnotexist"], "no request"),
        (["status", "../../etc/passwd"], "no request"),
    ],
)
def test_bad_input_gets_one_line_and_stores_nothing(tmp_path: Path, args: list[str], message: str) -> None:
    home = tmp_path / "home"
    result = run(home, *args)
    assert "pattern" not in result.stderr and "^" not in result.stderr  # words, never a regex
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("devops-crew: error:") and message in lines[0]
    db = home / "state.db"
    if db.exists():
        with create_engine(f"sqlite:///{db}").connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM requests")).scalar() == 0


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DEVOPS_CREW_LLM_PRICES": "notjson"}, "DEVOPS_CREW_LLM_PRICES: not a valid value (expected JSON)"),
        ({"DEVOPS_CREW_RATE_LIMIT": "-1"}, "greater than or equal to 0"),
        ({"DATABASE_URL": "foo://bar"}, "DATABASE_URL foo://bar is not a database URL"),
        ({"DATABASE_URL": "postgresql://who:hunter2@127.0.0.1:1/x"}, "cannot reach the database at"),
    ],
)
def test_bad_settings_get_one_line_exit_2(tmp_path: Path, env: dict[str, str], message: str) -> None:
    result = run(tmp_path / "home", "status", **env)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert message in lines[0] and "hunter2" not in lines[0] and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DEVOPS_CREW_WEB_USERS": "[1]"}, "DEVOPS_CREW_WEB_USERS: value: Input should be an object"),
        ({"DEVOPS_CREW_WEB_USERS": '{"a": {"roles": ["boss"]}}'}, "DEVOPS_CREW_WEB_USERS: a: unknown role"),
        ({"DEVOPS_CREW_A2A_TOKENS": "billing_ops"}, "DEVOPS_CREW_A2A_TOKENS: entry 1 is not team:token"),
        ({"DEVOPS_CREW_A2A_TOKENS": "billing_ops:short"}, "shorter than 16 characters"),
        (
            {"DEVOPS_CREW_WEB_USERS": '{"alice": {"password_hash": "nothash"}}'},
            "DEVOPS_CREW_WEB_USERS: alice: password_hash is not an argon2 hash",
        ),
        # One token for a web admin and an A2A caller: the caller would act as the admin on the JSON API.
        (
            {
                "DEVOPS_CREW_WEB_USERS": '{"admin": {"roles": ["admin"], "token": "shared-token-0123456789"}}',
                "DEVOPS_CREW_A2A_TOKENS": "billing_ops:shared-token-0123456789",
            },
            "one token is given to two callers (web admin and a2a billing_ops)",
        ),
        ({"DEVOPS_CREW_A2A_TOKENS": "a:same-token-0123456789,b:same-token-0123456789"}, "(a2a a and a2a b)"),
    ],
)
def test_serve_refuses_unusable_credentials_in_one_line(tmp_path: Path, env: dict[str, str], message: str) -> None:
    result = run(tmp_path / "home", "serve", "--port", "0", DEVOPS_CREW_FORGE="fake", **env)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert message in lines[0]
    assert "0123456789" not in result.stderr  # the tokens themselves are never printed


def test_a_reader_that_goes_away_ends_the_command_quietly(tmp_path: Path) -> None:
    """``devops-crew status --json | head -c0``: stdout's reader is gone before anything is written. The
    command exits with the shell's 141 (128 + SIGPIPE) and prints no traceback."""
    home = tmp_path / "home"
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("DEVOPS_CREW_", "DATABASE_URL"))}
    environment["DEVOPS_CREW_HOME"] = str(home)
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the command starts
    try:
        done = subprocess.run(
            [str(EXE), "status", "--json"],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            env=environment,
            timeout=120,
        )
    finally:
        os.close(write)
    assert done.returncode == 141, done.stderr
    assert done.stderr == ""


def test_a_new_state_directory_is_private_to_its_user(tmp_path: Path) -> None:
    """The state directory holds the store (gap text, the audit log, sessions) and the forge's tokens: the
    first command makes it 0700, whatever the umask lets files inside be."""
    home = tmp_path / "home"
    result = run(home, "status")
    assert result.returncode == 0, result.stderr
    assert (home.stat().st_mode & 0o777) == 0o700
    assert (home / "state.db").exists()


def test_an_empty_variable_counts_as_unset(tmp_path: Path) -> None:
    result = run(tmp_path / "home", "status", DEVOPS_CREW_RATE_LIMIT="", DATABASE_URL="", DEVOPS_CREW_FORGE="")
    assert result.returncode == 0 and "no requests yet" in result.stdout, result.stderr


def test_windows_line_endings_are_normalised_not_refused(tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = run(
        home, "request", "line one\r\nline two\rthree", "--skill", "go", "--json", DEVOPS_CREW_VALIDATE_RENDER="false"
    )
    assert result.returncode == 0, result.stderr
    request_id = json.loads(result.stdout)["request"]["id"]
    with create_engine(f"sqlite:///{home / 'state.db'}").connect() as conn:
        payload = conn.execute(text("SELECT payload FROM requests WHERE id = :i"), {"i": request_id}).scalar()
    description = (json.loads(payload) if isinstance(payload, str) else payload)["gap"]["description"]
    assert description == "line one\nline two\nthree"


@pytest.mark.slow
def test_a_protected_name_is_refused_with_the_rule(tmp_path: Path) -> None:
    result = run(tmp_path / "home", "request", "we need a main team", "--name", "main", "--json")
    assert result.returncode == 3
    summary = json.loads(result.stdout)["request"]
    assert summary["state"] == "refused" and summary["decision"]["rule"] == "reserved-name"


@pytest.mark.slow
def test_unicode_and_shell_metacharacters_are_only_data(tmp_path: Path) -> None:
    home = tmp_path / "home"
    hostile = (
        "Équipe 😀 needs `whoami` $(touch /tmp/pwned) ; rm -rf / && echo '\"quoted\"' {{ cookiecutter.team_name }}"
    )
    result = run(home, "request", hostile, "--skill", "kotlin", "--name", "kotlin_apps", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)["request"]
    assert summary["state"] == "published"
    assert not Path("/tmp/pwned").exists()
    from git import Repo

    tree = Repo(home / "forge" / "repos" / "local" / "teams.git").commit(summary["branch"]).tree
    pushed = [b for b in tree.traverse() if b.type == "blob" and "kotlin_apps" in b.path]
    as_data = hostile.replace("{", "(").replace("}", ")")  # braces would be CrewAI placeholders
    holders = [b.path for b in pushed if as_data in b.data_stream.read().decode("utf-8", "replace")]
    assert len(pushed) > 10 and holders
    assert all(path.endswith((".yaml", ".md")) for path in holders), holders
    assert not (home / "renders" / summary["id"]).exists()  # published: the render is not kept


@pytest.mark.slow
def test_audit_verify_fails_after_tampering(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert run(home, "request", "needs kotlin apps", "--skill", "kotlin", "--name", "kotlin_apps").returncode == 0
    engine = create_engine(f"sqlite:///{home / 'state.db'}")
    with engine.begin() as conn:
        conn.execute(text("DROP TRIGGER audit_log_no_update"))
        conn.execute(text("UPDATE audit_log SET target = 'origin refs/heads/main' WHERE action = 'git.push'"))
    result = run(home, "audit", "--verify", "--json")
    assert result.returncode == 1
    assert any("edited" in p for p in json.loads(result.stdout)["problems"])


def test_an_unreachable_forge_is_one_line_after_retries(tmp_path: Path) -> None:
    result = run(
        tmp_path / "home",
        "request",
        "needs kotlin apps",
        GITHUB_API_URL="http://127.0.0.1:9/api/v3",
        GITHUB_TOKEN="ghp_unreachable0000000000000000",
        TARGET_REPO="acme/teams",
        DEVOPS_CREW_RETRY_MAX_WAIT="0.05",
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("devops-crew: error: the forge failed:")
    assert "ghp_unreachable" not in result.stderr


def test_read_only_commands_need_no_forge(tmp_path: Path) -> None:
    unreachable = {"GITHUB_API_URL": "http://127.0.0.1:9/api/v3", "GITHUB_TOKEN": "ghp_x" * 8, "TARGET_REPO": "a/b"}
    assert run(tmp_path / "home", "status", **unreachable).returncode == 0
    assert run(tmp_path / "home", "audit", "--verify", **unreachable).returncode == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["forge", "serve", "--port", "99999"], "is not a TCP port"),
        (["status", "--limit", "-1"], "must be at least 1"),
        (["resume"], "either a request ID or --pending"),
    ],
)
def test_bad_arguments_are_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    result = run(tmp_path / "home", *args)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_forge_serve_on_another_port_links_to_that_port_and_says_how_to_keep_other_links_there(
    tmp_path: Path,
) -> None:
    """``forge serve --port P``: the forge's links (a repository's ``html_url``) are on P, not on the default
    3131; and it says that other commands build their links from DEVOPS_CREW_FORGE_PORT."""
    import socket
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    home = tmp_path / "home"
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("DEVOPS_CREW_", "DATABASE_URL", "GITHUB_"))}
    environment["DEVOPS_CREW_HOME"] = str(home)
    with subprocess.Popen(
        [str(EXE), "forge", "serve", "--port", str(port)],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    ) as server:
        try:
            assert server.stdout is not None
            import select

            assert select.select([server.stdout], [], [], 60)[0], "forge serve printed nothing in 60 s"
            assert f"127.0.0.1:{port}" in server.stdout.readline()
            token = (home / "forge" / "token").read_text().strip()
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/api/v3/repos/local/teams", headers={"Authorization": f"token {token}"}
            )
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
            with opener.open(request, timeout=30) as response:
                html_url = json.loads(response.read())["html_url"]
        finally:
            server.terminate()
            _, stderr = server.communicate(timeout=30)
    assert html_url == f"http://127.0.0.1:{port}/local/teams"
    assert f"export DEVOPS_CREW_FORGE_PORT={port}" in stderr


def test_forge_serve_on_a_busy_port_is_one_line_and_leaves_the_other_server_alone(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        home = tmp_path / "home"
        (home / "forge").mkdir(parents=True)
        (home / "forge" / "endpoint.json").write_text(json.dumps({"api_url": "http://127.0.0.1:1/api/v3", "pid": 1}))
        result = run(home, "forge", "serve", "--port", str(port))
    assert result.returncode == 1 and "cannot serve on 127.0.0.1" in result.stderr and "Traceback" not in result.stderr
    assert (home / "forge" / "endpoint.json").exists()  # another server's advertisement is not ours to remove


@pytest.mark.slow
def test_the_cli_user_cannot_approve_their_own_request_unless_self_approval_is_allowed(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {"DEVOPS_CREW_COST_CEILING_USD": "5"}
    waiting = run(home, "request", "needs kotlin apps", "--skill", "kotlin", "--name", "kotlin_apps", "--json", **env)
    assert waiting.returncode == 3, waiting.stderr
    summary = json.loads(waiting.stdout)["request"]
    assert summary["state"] == "awaiting_approval" and summary["requester"]["channel"] == "cli"
    refused = run(home, "approve", summary["id"], **env)
    assert refused.returncode == 2 and "four eyes" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    override = run(home, "approve", summary["id"], "--override", **env)
    assert override.returncode == 2 and "needs a reason" in override.stderr
    viewer = run(home, "approve", summary["id"], **env, DEVOPS_CREW_CLI_ROLES="viewer")
    assert viewer.returncode == 2 and "approver role" in viewer.stderr
    approved = run(home, "approve", summary["id"], "--json", **env, DEVOPS_CREW_ALLOW_SELF_APPROVAL="true")
    assert approved.returncode == 0, approved.stderr
    assert json.loads(approved.stdout)["request"]["approvals"][0]["self_approval"] is True
    listed = json.loads(run(home, "audit", "--json", "--request", summary["id"], "--limit", "500").stdout)
    assert listed["schema"] == 1  # as every --json answer, and as GET /api/v1/audit
    rows = listed["rows"]
    decision = next(r["detail"] for r in rows if r["action"] == "policy.human_approval")
    assert decision["self_approval"] is True and decision["channel"] == "cli"


def test_a_schedule_on_the_scheduler_channel_may_only_resume_track_and_review(tmp_path: Path) -> None:
    home = tmp_path / "home"
    listed = run(home, "status", DEVOPS_CREW_CLI_CHANNEL="scheduler")
    assert listed.returncode == 2 and "scheduler may only resume, track and review gaps" in listed.stderr
    pending = run(home, "resume", "--pending", "--json", DEVOPS_CREW_CLI_CHANNEL="scheduler")
    assert pending.returncode == 0, pending.stderr
    assert json.loads(pending.stdout)["requests"] == []


@pytest.mark.slow
def test_the_cli_actor_comes_from_the_uid_not_from_logname(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {"DEVOPS_CREW_COST_CEILING_USD": "5"}
    waiting = run(home, "request", "needs kotlin apps", "--skill", "kotlin", "--name", "kotlin_apps", "--json", **env)
    request_id = json.loads(waiting.stdout)["request"]["id"]
    spoofed = run(home, "approve", request_id, **env, LOGNAME="somebody-else", USER="somebody-else")
    assert spoofed.returncode == 2 and "four eyes" in spoofed.stderr


def test_a_rejected_gap_submitted_again_says_who_rejected_it_and_how_to_resubmit(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {"DEVOPS_CREW_VALIDATE_RENDER": "false", "DEVOPS_CREW_COST_CEILING_USD": "5", "DEVOPS_CREW_FORGE": "fake"}
    first = run(home, "request", "We need rust services", "--skill", "rust", "--json", **env)
    request_id = json.loads(first.stdout)["request"]["id"]
    rejected = run(home, "reject", request_id, "--reason", "not this quarter", **env)
    assert rejected.returncode == 0, rejected.stderr
    again = run(home, "request", "We need rust services", "--skill", "rust", **env)
    assert again.returncode == 3
    # the same login requested and rejected it: a withdrawal (its requester took it back), said as such
    assert f"{request_id}: withdrawn by " in again.stdout and "its requester: not this quarter" in again.stdout
    assert "to submit it anew, give it a new --gap-id" in again.stdout


def test_audit_verify_resumes_from_its_checkpoint_and_full_walks_everything(tmp_path: Path) -> None:
    from devops_automation.audit import Auditor
    from devops_automation.store import open_store

    home = tmp_path / "home"
    home.mkdir()
    store = open_store(f"sqlite:///{home / 'state.db'}")
    auditor = Auditor(store)
    for i in range(5):
        auditor.event("policy.verdict", f"team-{i}", request_id="req-1")
    first = run(home, "audit", "--verify")
    assert first.returncode == 0 and "rows 1..5, hash chain verified (5 rows walked from row 1)" in first.stdout
    auditor.event("policy.verdict", "team-5", request_id="req-1")
    second = json.loads(run(home, "audit", "--verify", "--json").stdout)
    assert second["schema"] == 1 and second["ok"] and second["resumed_from"] == 5
    assert (second["first"], second["last"], second["checkpoint"]) == (6, 7, 7)
    full = run(home, "audit", "--verify", "--full")
    assert full.returncode == 0 and "rows 1..8, hash chain verified (8 rows walked from row 1)" in full.stdout
    store.close()


def test_hash_password_reads_stdin_when_asked_and_never_echoes_a_password_without_a_terminal(tmp_path: Path) -> None:
    """``--stdin`` hashes the line it is given (a hash the server verifies); without it and without a
    terminal (no controlling tty: a pipe, a container), the command refuses instead of reading the password
    from the pipe with getpass's echo warning."""
    from pwdlib import PasswordHash

    def hash_password(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(EXE), "hash-password", *args],
            input="correct horse battery\n",
            capture_output=True,
            text=True,
            timeout=60,
            start_new_session=True,  # no controlling terminal: /dev/tty cannot be opened
        )

    piped = hash_password("--stdin")
    assert piped.returncode == 0, piped.stderr
    assert PasswordHash.recommended().verify("correct horse battery", piped.stdout.strip())
    refused = hash_password()
    assert refused.returncode == 2 and refused.stdout == ""
    assert "pipe it in with --stdin" in refused.stderr and "Warning" not in refused.stderr
