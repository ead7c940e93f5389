"""The state store on SQLite and on PostgreSQL: migrations, requests, concurrency, the ledger."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from devops_automation.models import CapabilityGap, InvalidTransition, RequestState
from devops_automation.store import HEAD_REVISION, Store, open_store


def test_migrations_bring_the_schema_to_head(store: Store, db_url: str) -> None:
    assert store.current_revision() == HEAD_REVISION
    again = open_store(db_url)  # opening twice is a no-op, not an error
    assert again.current_revision() == HEAD_REVISION
    again.close()


def test_request_roundtrip_and_duplicate_gap(store: Store) -> None:
    gap = CapabilityGap(description="Nobody can handle refunds", required_skills=["refunds"])
    first, created = store.create_request(gap)
    assert created
    second, created_again = store.create_request(
        CapabilityGap(description="nobody can handle REFUNDS", required_skills=["Refunds"])
    )
    assert not created_again and second.id == first.id
    loaded = store.get_request(first.id)
    assert loaded is not None and loaded.gap == gap and loaded.state is RequestState.received


def test_transitions_are_checked_against_the_stored_state(store: Store) -> None:
    request, _ = store.create_request(CapabilityGap(description="x y z"))
    store.save_request(request, RequestState.analysed)
    stale = store.get_request(request.id)
    assert stale is not None
    with pytest.raises(InvalidTransition):
        store.save_request(stale, RequestState.published)
    assert store.get_request(request.id).state is RequestState.analysed  # type: ignore[union-attr]


def test_concurrent_creates_for_one_gap_make_one_request(store: Store) -> None:
    gap = CapabilityGap(description="racing gap", required_skills=["racing"])
    ids: list[str] = []
    barrier = threading.Barrier(6)

    def worker() -> None:
        barrier.wait()
        ids.append(store.create_request(gap)[0].id)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ids) == 6 and len(set(ids)) == 1
    assert len(store.list_requests()) == 1


def test_rate_slots_are_taken_atomically(store: Store) -> None:
    from devops_automation.policy import PolicyViolation, check_rate

    barrier = threading.Barrier(5)
    outcomes: list[str] = []
    winners: list[str] = []

    def worker(i: int) -> None:
        barrier.wait()
        try:
            store.consume_slot(
                f"req-{i}",
                f"team_{i}",
                overridden=False,
                check=lambda ledger: check_rate(ledger, limit=2, cooldown_seconds=0),
            )
            outcomes.append("ok")
            winners.append(f"req-{i}")
        except PolicyViolation:
            outcomes.append("refused")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["ok", "ok", "refused", "refused", "refused"]
    assert len(store.ledger()) == 2
    store.consume_slot(winners[0], "team_x", overridden=False)  # the same request never takes two slots
    assert len(store.ledger()) == 2


def test_overridden_slots_count_for_later_requests(store: Store) -> None:
    """An override lifts the limit for its own request only: its slot is in the ledger every later
    request is checked against."""
    store.consume_slot("req-a", "a_team", overridden=True)
    assert len(store.ledger()) == 1


def test_audit_log_refuses_update_and_delete(store: Store) -> None:
    store.append_audit(
        request_id=None, action="x", phase="recorded", target="t", detail="{}", hasher=lambda row: "h" * 64
    )
    for statement in ("UPDATE audit_log SET target = 'evil'", "DELETE FROM audit_log"):
        with pytest.raises(Exception, match="append-only"), store.engine.begin() as conn:
            conn.execute(text(statement))
    assert [r.target for r in store.iter_audit()] == ["t"]


def test_timestamps_come_back_timezone_aware(store: Store) -> None:
    request, _ = store.create_request(CapabilityGap(description="timezones"))
    loaded = store.get_request(request.id)
    assert loaded is not None and loaded.created_at.tzinfo is not None
    assert abs((loaded.created_at - datetime.now(UTC)).total_seconds()) < 60


def test_one_new_team_name_per_open_request_even_when_racing(store: Store) -> None:
    from devops_automation.models import RequestState
    from devops_automation.store import NameTaken

    ids = [store.create_request(CapabilityGap(description=f"racing team {i}"))[0].id for i in range(4)]
    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def worker(request_id: str) -> None:
        barrier.wait()
        try:
            store.consume_slot(request_id, "refund_desk", overridden=False)
            outcomes.append("claimed")
        except NameTaken:
            outcomes.append("taken")

    threads = [threading.Thread(target=worker, args=(i,)) for i in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["claimed", "taken", "taken", "taken"]
    winner = next(i for i in ids if i in {r for r in _ledger_ids(store)})
    request = store.get_request(winner)
    request.error = "gave up"
    store.save_request(store.save_request(request, RequestState.analysed), RequestState.failed)
    store.release_slot(winner)  # what a human's reject does
    store.consume_slot(next(i for i in ids if i != winner), "refund_desk", overridden=False)


def _ledger_ids(store: Store) -> list[str]:
    from devops_automation import tables

    with store.engine.connect() as conn:
        return [
            r[0] for r in conn.execute(tables.rate_ledger.select().with_only_columns(tables.rate_ledger.c.request_id))
        ]


def test_migration_0004_backfills_the_team_column_of_existing_requests(db_url: str) -> None:
    """A store written before 0004 keeps its requests findable by team after the upgrade."""
    from pathlib import Path

    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine

    import devops_automation.store as store_module

    engine = create_engine(db_url)
    config = Config()
    config.set_main_option("script_location", str(Path(store_module.__file__).parent / "migrations"))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0003")
    from devops_automation.models import TeamCreationRequest
    from tests.helpers import new_gap

    now = datetime.now(UTC)
    with engine.begin() as conn:
        for n in range(3):
            request = TeamCreationRequest(id=f"req-old{n}", gap=new_gap(n))
            payload = request.model_dump(mode="json")
            if n:
                payload["spec"] = {"name": f"old_team_{n}"}  # only the name matters to the backfill
            conn.execute(
                text(
                    "INSERT INTO requests (id, gap_id, state, payload, created_at, updated_at) "
                    "VALUES (:id, :gap, 'drafted', :payload, :at, :at)"
                ),
                {"id": request.id, "gap": request.gap.id, "payload": __import__("json").dumps(payload), "at": now},
            )
    engine.dispose()
    upgraded = open_store(db_url)
    try:
        assert upgraded.current_revision() == HEAD_REVISION
        with upgraded.engine.connect() as conn:
            teams = dict(conn.execute(text("SELECT id, team FROM requests")).all())
        assert teams == {"req-old0": None, "req-old1": "old_team_1", "req-old2": "old_team_2"}
    finally:
        upgraded.close()


def test_keyset_pages_cover_every_request_once_in_order(store: Store) -> None:
    from tests.helpers import new_gap

    made = [store.create_request(new_gap(n))[0].id for n in range(7)]
    seen: list[str] = []
    before = None
    while True:
        page = store.list_requests(limit=3, before=before)
        if not page:
            break
        seen += [r.id for r in page]
        before = (page[-1].created_at, page[-1].id)
    assert seen == list(reversed(made))


def test_a_request_and_its_received_audit_row_commit_together(store: Store) -> None:
    """engine.accept writes the request and its ``request.received`` row in one transaction: a failure
    between the two leaves neither, a duplicate gap writes no second row, and the chain stays intact."""
    from devops_automation.audit import Auditor, verify_chain

    auditor = Auditor(store)
    gap = CapabilityGap(id="gap-atomic", description="atomic intake", requesting_team="billing")

    def fails_after_the_row(conn: object, request: object) -> None:
        auditor.request_received(gap)(conn, request)  # type: ignore[arg-type]
        raise RuntimeError("the disk went away")

    with pytest.raises(RuntimeError):
        store.create_request(gap, received=fails_after_the_row)
    assert store.get_request_by_gap("gap-atomic") is None
    assert list(store.iter_audit()) == []

    request, created = store.create_request(gap, received=auditor.request_received(gap))
    again, created_again = store.create_request(gap, received=auditor.request_received(gap))
    assert created and not created_again and again.id == request.id
    rows = list(store.iter_audit())
    assert [(r.action, r.phase, r.target, r.request_id) for r in rows] == [
        ("request.received", "recorded", "gap-atomic", request.id)
    ]
    assert '"requesting_team": "billing"' in rows[0].detail
    assert verify_chain(rows, store.audit_head()) == []
