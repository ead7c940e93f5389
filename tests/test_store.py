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


def test_overridden_slots_do_not_count(store: Store) -> None:
    store.consume_slot("req-a", "a_team", overridden=True)
    assert store.ledger() == []


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
