"""Costs against history and repository size (issue 12): seeds stores and repositories, prints the curves.

    .venv/bin/python bench/scale.py                       # small sizes: a few minutes on 2 cores
    .venv/bin/python bench/scale.py --sizes 1000,10000,100000,1000000 --repo-files 18000 \\
        --repo-branches 10000 --workers 1,4,8 --postgres postgresql+psycopg://postgres@127.0.0.1:5432/postgres

Sections (each prints what it ran, medians, and its floor where one applies):

- ``store``: for each size N, a store seeded with N requests and N audit rows (bulk inserts, a valid hash
  chain): ``status`` (the first page, service.list), ``gate`` (the in-flight-name query the gate runs),
  ``audit`` (50 rows), ``verify`` from a checkpoint (after 100 new rows), and ``verify --full`` in a child
  process (its time, the peak RSS during the walk from /proc VmHWM, and its rise over the walk). Floor
  for the queries: the same SQL through the bare DB-API cursor.
- ``publish``: a bare target repository with ``--repo-files`` files and ``--repo-branches`` auto/
  branches; the product's TargetRepo.publish_branch of a 3-file team, beside the floor (a GitPython
  clone with a work tree: checkout -B, copy, index.add, commit, push).
- ``workers``: W threads sharing one app (fake forge: a real bare repository; render validation off
  unless ``--validate``) drive ``--worker-gaps`` gaps each on SQLite and, with ``--postgres``, on a fresh
  PostgreSQL database: gaps per minute for each W.

Not here: analyse against 10/1,000/10,000 teams (the registry cache and matcher belong to issue 14).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

os.environ.setdefault("CREWAI_DISABLE_TELEMETRY", "true")
os.environ.setdefault("CREWAI_TRACING_ENABLED", "false")
os.environ.setdefault("CREWAI_DISABLE_VERSION_CHECK", "true")


def median_ms(run: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


# -- store ------------------------------------------------------------------------------------------
def seed_store(url: str, n: int) -> None:
    """N requests (states mixed, one team each) and N audit rows forming a valid chain, bulk inserted."""
    from sqlalchemy import insert

    from devops_automation import tables
    from devops_automation.audit import row_hash
    from devops_automation.models import CapabilityGap, TeamCreationRequest
    from devops_automation.store import GENESIS_HASH, AuditRow, open_store

    store = open_store(url)
    base = TeamCreationRequest(
        id="req-000000000000", gap=CapabilityGap(description="seeded gap for the scale bench", required_skills=["x"])
    ).model_dump(mode="json")
    start = datetime.now(UTC) - timedelta(seconds=n)
    batch: list[dict[str, Any]] = []
    with store.engine.begin() as conn:
        for i in range(n):
            ts = start + timedelta(seconds=i)
            rid, gid = f"req-s{i:011d}", f"gap-s{i}"
            payload = {**base, "id": rid, "gap": {**base["gap"], "id": gid}, "created_at": ts.isoformat()}
            state = ("merged", "published", "rejected")[i % 3]
            batch.append(
                {"id": rid, "gap_id": gid, "state": state, "payload": payload, "created_at": ts, "updated_at": ts}
                | {"team": f"seed_team_{i}"}
            )
            if len(batch) == 10_000:
                conn.execute(insert(tables.requests), batch)
                batch = []
        if batch:
            conn.execute(insert(tables.requests), batch)
        prev, rows = GENESIS_HASH, []
        for seq in range(1, n + 1):
            row = AuditRow(
                seq, start + timedelta(microseconds=seq), f"req-s{seq % 997:011d}", "git.push", "succeeded",
                f"origin auto/team-seed-{seq}", '{"seeded":true}', prev, "",
            )  # fmt: skip
            prev = row_hash(row)
            rows.append({**row.__dict__, "hash": prev})
            if len(rows) == 10_000:
                conn.execute(insert(tables.audit_log), rows)
                rows = []
        if rows:
            conn.execute(insert(tables.audit_log), rows)
        conn.execute(tables.audit_head.delete())
        if n:
            conn.execute(insert(tables.audit_head).values(id=1, seq=n, hash=prev))
    store.close()


FULL_VERIFY_CHILD = """
import sys, time
from pathlib import Path
from devops_automation.store import open_store
from devops_automation.audit import Auditor, verify_log

def kb(field):
    line = next(l for l in Path("/proc/self/status").read_text().splitlines() if l.startswith(field + ":"))
    return int(line.split()[1])

store = open_store(sys.argv[1])
store.audit_head()
Path("/proc/self/clear_refs").write_text("5")  # reset the RSS high-water mark to the RSS now
base = kb("VmRSS")
start = time.perf_counter()
result = verify_log(store, Auditor(store), full=True)
elapsed = time.perf_counter() - start
print(elapsed, base, kb("VmHWM"), result.walked, len(result.problems))
"""


def bench_store(label: str, url: str, n: int, repeat: int) -> None:
    from sqlalchemy import text

    from devops_automation.audit import Auditor
    from devops_automation.authz import Actor, Channel, Role
    from devops_automation.models import IN_FLIGHT
    from devops_automation.service import CrewService
    from devops_automation.settings import Settings

    started = time.perf_counter()
    seed_store(url, n)
    seeded = time.perf_counter() - started
    home = Path(tempfile.mkdtemp(prefix="devops-crew-scale-svc-"))
    service = CrewService(Settings(_env_file=None, home=home, database_url=url))
    actor = Actor(id="bench", channel=Channel.cli, roles=frozenset({Role.admin}))
    store = service.store
    store.list_requests(limit=1)  # connect outside the timing
    status = median_ms(lambda: service.list(actor, limit=20), repeat)
    gate = median_ms(lambda: store.list_requests(limit=2, states=set(IN_FLIGHT), team=f"seed_team_{n // 2}"), repeat)
    audit = median_ms(lambda: service.audit(actor, limit=50), repeat)
    # The floor: the same SQL through the bare driver (no SQLAlchemy, no pydantic, no views).
    states = ",".join(f"'{s.value}'" for s in IN_FLIGHT)
    floor_sql = {
        "status": "SELECT payload FROM requests ORDER BY created_at DESC, id DESC LIMIT 20",
        "gate": f"SELECT payload FROM requests WHERE state IN ({states}) AND team = 'seed_team_{n // 2}' "  # noqa: S608
        "ORDER BY created_at DESC, id DESC LIMIT 2",
        "audit": "SELECT * FROM audit_log ORDER BY seq DESC LIMIT 50",
    }
    floors = {}
    with store.engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        for name, sql in floor_sql.items():

            def run(sql: str = sql) -> None:
                cursor = raw.cursor()
                cursor.execute(sql)
                cursor.fetchall()
                cursor.close()

            floors[name] = median_ms(run, repeat)
    auditor = Auditor(store)
    first = service.verify_audit(actor)  # makes the checkpoint (a full walk: timed below, in a child)
    assert first["ok"], first["problems"]
    resumed = []
    for _ in range(max(3, repeat // 3)):
        for i in range(100):
            auditor.event("bench.row", f"row {i}")
        start = time.perf_counter()
        result = service.verify_audit(actor)
        resumed.append((time.perf_counter() - start) * 1000)
        assert result["ok"] and result["resumed_from"], result
    done = subprocess.run(
        [sys.executable, "-c", FULL_VERIFY_CHILD, url], capture_output=True, text=True, check=True
    ).stdout.split()
    full_s, base_kb, peak_kb, walked = float(done[0]), int(done[1]), int(done[2]), int(done[3])
    with store.engine.connect() as conn:
        # every row but the checkpoint row the child recorded after its walk
        assert conn.execute(text("SELECT count(*) FROM audit_log")).scalar() == walked + 1
    service.close()
    shutil.rmtree(home, ignore_errors=True)
    print(
        f"store[{label}] {n:>9,} requests + audit rows (seeded in {seeded:.0f} s): "
        f"status {status:.1f} ms (floor {floors['status']:.1f}), gate {gate:.1f} ms (floor {floors['gate']:.1f}), "
        f"audit 50 rows {audit:.1f} ms (floor {floors['audit']:.1f}), "
        f"verify from checkpoint {statistics.median(resumed):.1f} ms (+100 rows), "
        f"verify --full {full_s:.2f} s over {walked:,} rows, peak RSS during it {peak_kb / 1024:.0f} MB "
        f"({(peak_kb - base_kb) / 1024:.0f} MB above the process before the walk; target < 100 MB)"
    )


# -- publish ----------------------------------------------------------------------------------------
def make_big_repo(bare: Path, files: int, branches: int) -> str:
    """A bare repository whose main holds ``files`` files (10 per team folder) and ``branches`` auto/
    branches; returns main's sha."""
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    subprocess.run(["git", "init", "-q", "--bare", "--initial-branch=main", str(bare)], check=True, env=env)
    chunks = [b"commit refs/heads/main\ncommitter seed <seed@example.invalid> 1700000000 +0000\ndata 4\nseed"]
    for i in range(files):
        body = f"team file {i}\n".encode()
        path = f"teams/seed{i // 10:05d}/file_{i % 10}.txt" if i % 10 else f"teams/seed{i // 10:05d}/team.yaml"
        chunks.append(b"M 100644 inline " + path.encode() + b"\ndata " + str(len(body)).encode() + b"\n" + body)
    chunks.append(b"")
    subprocess.run(["git", "-C", str(bare), "fast-import", "--quiet"], input=b"\n".join(chunks), check=True, env=env)
    main = subprocess.run(
        ["git", "-C", str(bare), "rev-parse", "main"], capture_output=True, text=True, check=True, env=env
    ).stdout.strip()
    refs = "".join(f"create refs/heads/auto/team-other{i:05d}-20260101T000000Z {main}\n" for i in range(branches))
    subprocess.run(["git", "-C", str(bare), "update-ref", "--stdin"], input=refs.encode(), check=True, env=env)
    subprocess.run(["git", "-C", str(bare), "pack-refs", "--all"], check=True, env=env)
    return main


def bench_publish(files: int, branches: int, runs: int) -> None:
    from git import Actor, Repo

    from devops_automation.audit import Auditor
    from devops_automation.policy import branch_name
    from devops_automation.settings import Settings
    from devops_automation.store import open_store
    from devops_automation.target import TargetRepo, commit_message

    root = Path(tempfile.mkdtemp(prefix="devops-crew-scale-repo-"))
    try:
        started = time.perf_counter()
        bare = root / "target.git"
        make_big_repo(bare, files, branches)
        settings = Settings(_env_file=None, home=root / "home")
        settings.home.mkdir()
        store = open_store(settings.effective_database_url)
        target = TargetRepo(settings, Auditor(store), str(bare))
        target.team_files()  # the clone, outside the timing
        floor_repo = Repo.clone_from(str(bare), root / "floor")  # with a work tree: the floor's checkout
        floor_repo.index  # noqa: B018 - read once, outside the timing
        bot = Actor("floor", "floor@example.invalid")
        made = time.perf_counter() - started
        print(f"publish: repository of {files:,} files and {branches:,} branches made in {made:.0f} s")
        product, floor = [], []
        for i in range(runs):
            name = f"scale_team_{i}"
            render = root / "render" / name
            rels = [f"teams/{name}/team.yaml", f"teams/{name}/README.md", f"k8s/teams/{name}/deployment.yaml"]
            for rel in rels:
                (render / rel).parent.mkdir(parents=True, exist_ok=True)
                (render / rel).write_text(f"# {rel}\n")
            branch = branch_name(name, request_id=f"req-scale{i}")
            start = time.perf_counter()
            target.publish_branch(
                request_id=f"req-scale{i}",
                team_name=name,
                branch=branch,
                rendered_root=render,
                files=rels,
                message=commit_message(name, f"gap-scale{i}", f"req-scale{i}"),
                gap_id=f"gap-scale{i}",
            )
            product.append(time.perf_counter() - start)
            start = time.perf_counter()
            floor_repo.git.checkout("-q", "-B", f"floor/{name}", "origin/main")
            work = Path(str(floor_repo.working_tree_dir))
            for rel in rels:
                (work / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(render / rel, work / rel)
            floor_repo.index.add(rels)
            floor_repo.index.commit(f"floor {name}", author=bot, committer=bot)
            floor_repo.git.push("-q", "origin", f"floor/{name}:floor/{name}")
            floor.append(time.perf_counter() - start)
        store.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(
        f"publish: {runs} publishes of a 3-file team: product median {statistics.median(product) * 1000:.0f} ms "
        f"(target <= 300 ms), floor (GitPython checkout -B + index.add + commit + push) "
        f"{statistics.median(floor) * 1000:.0f} ms"
    )


# -- workers ----------------------------------------------------------------------------------------
def bench_workers(label: str, database_url: str | None, workers: int, gaps_each: int, validate: bool) -> float:
    from devops_automation.app import build_app
    from devops_automation.models import CapabilityGap
    from devops_automation.settings import Settings

    home = Path(tempfile.mkdtemp(prefix="devops-crew-scale-workers-"))
    try:
        settings = Settings(
            _env_file=None,
            home=home,
            forge="fake",
            validate_render=validate,
            cooldown_seconds=0,
            rate_limit_per_day=100_000,
            database_url=database_url,
        )
        app = build_app(settings)

        def gap(tag: str) -> CapabilityGap:
            return CapabilityGap(
                description=f"Scale gap {tag}: tasks need kafka expertise",
                required_skills=["kafka", f"skill {tag}"],
                proposed_name=f"w_team_{tag}",
            )

        warm = app.engine.submit(gap("warm")).request  # the first run loads what every later run reuses
        assert warm.state.value == "published", warm.error
        errors: list[str] = []

        def worker(w: int) -> None:
            for i in range(gaps_each):
                request = app.engine.submit(gap(f"{w}_{i}")).request
                if request.state.value != "published":
                    errors.append(f"{request.state.value}: {request.error}")

        threads = [threading.Thread(target=worker, args=(w,)) for w in range(workers)]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - start
        app.close()
        if errors:
            raise SystemExit(f"workers[{label}]: {len(errors)} gaps failed, first: {errors[0]}")
    finally:
        shutil.rmtree(home, ignore_errors=True)
    per_minute = workers * gaps_each / elapsed * 60
    print(f"workers[{label}] {workers} warm worker(s) x {gaps_each} gaps: {per_minute:.0f} gaps/min")
    return per_minute


class PostgresDatabases:
    """Fresh databases on the server at ``admin_url``, dropped afterwards."""

    def __init__(self, admin_url: str) -> None:
        from sqlalchemy import create_engine

        self.admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        self.base = admin_url.rsplit("/", 1)[0]
        self.names: list[str] = []

    def new(self) -> str:
        from sqlalchemy import text

        name = f"devops_crew_scale_{uuid.uuid4().hex[:10]}"
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        self.names.append(name)
        return f"{self.base}/{name}"

    def close(self) -> None:
        from sqlalchemy import text

        with self.admin.connect() as conn:
            for name in self.names:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000", help="requests and audit rows per store, comma-separated")
    parser.add_argument("--repeat", type=int, default=15, help="timed runs per query (median)")
    parser.add_argument("--repo-files", type=int, default=18_000)
    parser.add_argument("--repo-branches", type=int, default=10_000)
    parser.add_argument("--publishes", type=int, default=7)
    parser.add_argument("--workers", default="1,4,8")
    parser.add_argument("--worker-gaps", type=int, default=6, help="gaps per worker")
    parser.add_argument("--validate", action="store_true", help="workers validate renders (team tests, hadolint)")
    parser.add_argument("--postgres", metavar="ADMIN_URL", help="also run store and workers on PostgreSQL")
    parser.add_argument("--only", choices=["store", "publish", "workers"], action="append")
    args = parser.parse_args()
    sections = set(args.only or ["store", "publish", "workers"])
    sizes = [int(s) for s in args.sizes.split(",") if s]
    print(
        f"scale: sections {sorted(sections)}, sizes {sizes}, repo {args.repo_files:,} files / "
        f"{args.repo_branches:,} branches, workers {args.workers} x {args.worker_gaps} gaps, "
        f"postgres {'yes' if args.postgres else 'no'}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    pg = PostgresDatabases(args.postgres) if args.postgres else None
    try:
        if "store" in sections:
            for n in sizes:
                home = Path(tempfile.mkdtemp(prefix="devops-crew-scale-"))
                try:
                    bench_store("sqlite", f"sqlite:///{home / 'state.db'}", n, args.repeat)
                finally:
                    shutil.rmtree(home, ignore_errors=True)
                if pg is not None:
                    bench_store("postgresql", pg.new(), n, args.repeat)
        if "publish" in sections:
            bench_publish(args.repo_files, args.repo_branches, args.publishes)
        if "workers" in sections:
            counts = [int(w) for w in args.workers.split(",") if w]
            for w in counts:
                bench_workers("sqlite", None, w, args.worker_gaps, args.validate)
            if pg is not None:
                for w in counts:
                    bench_workers("postgresql", pg.new(), w, args.worker_gaps, args.validate)
    finally:
        if pg is not None:
            pg.close()
    print(f"scale: peak RSS of this process {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
