"""The audit log: before/after rows, hash chain verification, and no secrets in it."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from devops_automation.audit import REDACTED, Auditor, redact, verify_chain
from devops_automation.store import Store


def _drop_guards(store: Store) -> None:
    """What an attacker with database access would do first."""
    with store.engine.begin() as conn:
        if store.dialect == "postgresql":
            conn.execute(text("DROP TRIGGER audit_log_no_update ON audit_log"))
        else:
            conn.execute(text("DROP TRIGGER audit_log_no_update"))
            conn.execute(text("DROP TRIGGER audit_log_no_delete"))


def _filled(store: Store) -> Auditor:
    auditor = Auditor(store, ["s3cr3t-token-value"])
    for i in range(4):
        with auditor.action("git.push", f"origin auto/team-x-{i}", request_id="req-1"):
            pass
    return auditor


def test_action_records_initiated_then_outcome(store: Store) -> None:
    auditor = Auditor(store)
    with auditor.action("git.push", "origin auto/x", request_id="req-1", commit="abc") as call:
        call.result["pushed"] = True
    with pytest.raises(RuntimeError), auditor.action("forge.open_pull_request", "auto/x", request_id="req-1"):
        raise RuntimeError("forge exploded")
    rows = list(store.iter_audit())
    assert [(r.action, r.phase) for r in rows] == [
        ("git.push", "initiated"),
        ("git.push", "succeeded"),
        ("forge.open_pull_request", "initiated"),
        ("forge.open_pull_request", "failed"),
    ]
    assert json.loads(rows[1].detail) == {"pushed": True}
    assert "forge exploded" in json.loads(rows[3].detail)["error"]
    assert verify_chain(rows) == []


def test_verify_detects_an_edited_row(store: Store) -> None:
    _filled(store)
    _drop_guards(store)
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET target = 'origin main' WHERE seq = 3"))
    problems = verify_chain(store.iter_audit())
    assert problems == ["row 3: contents do not match its hash (edited)"]


def test_verify_detects_a_deleted_row(store: Store) -> None:
    _filled(store)
    _drop_guards(store)
    with store.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE seq = 2"))
    problems = verify_chain(store.iter_audit())
    assert any("missing (deleted)" in p for p in problems)
    assert any("chain broken" in p for p in problems)


def test_verify_detects_a_rehashed_edit(store: Store) -> None:
    """Recomputing the edited row's own hash is not enough: the next row no longer follows it."""
    from devops_automation.audit import row_hash

    _filled(store)
    _drop_guards(store)
    rows = list(store.iter_audit())
    forged = rows[2].__class__(**{**rows[2].__dict__, "target": "origin main"})
    forged = forged.__class__(**{**forged.__dict__, "hash": row_hash(forged)})
    with store.engine.begin() as conn:
        conn.execute(
            text("UPDATE audit_log SET target = :t, hash = :h WHERE seq = 3"), {"t": forged.target, "h": forged.hash}
        )
    assert verify_chain(store.iter_audit()) == ["row 4: does not follow the previous row (chain broken)"]


def test_secrets_never_reach_the_log(store: Store) -> None:
    auditor = Auditor(store, ["s3cr3t-token-value"])
    with (
        pytest.raises(RuntimeError),
        auditor.action(
            "git.push",
            "https://x-access-token:s3cr3t-token-value@github.com/o/r.git",
            header="Authorization: Bearer s3cr3t-token-value",
            password="hunter2-long",
        ),
    ):
        raise RuntimeError("fatal: could not push to https://bot:ghp_abcdefghijklmnopqrstuvwxyz0123@github.com")
    dump = "\n".join(r.target + r.detail for r in store.iter_audit())
    for secret in ("s3cr3t-token-value", "ghp_abcdefghijklmnopqrstuvwxyz0123", "hunter2-long"):
        assert secret not in dump
    assert REDACTED in dump and "github.com" in dump


def test_redact_keeps_ordinary_text() -> None:
    text_in = "pushed auto/team-refunds-20261127T120000Z to origin (token scope ok)"
    assert redact(text_in) == text_in


def test_verify_detects_rows_cut_off_the_end(store: Store) -> None:
    _filled(store)
    _drop_guards(store)
    assert verify_chain(store.iter_audit(), store.audit_head()) == []
    with store.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE seq > 5"))
    assert verify_chain(store.iter_audit()) == []  # the chain alone cannot see it...
    problems = verify_chain(store.iter_audit(), store.audit_head())  # ...the recorded head can
    assert problems == ["the log ends at row 5, but row 8 was written: rows were removed from the end"]


# -- verification checkpoints (issue 12) ------------------------------------------------------------
KEY = b"audit-key-for-tests-0123456789"


def _rehash_from(store: Store, seq: int, target: str) -> None:
    """Edit row ``seq`` and rehash it and every row after it, head included: a consistent forgery of the
    chain by someone who can write the database (but does not hold the audit key)."""
    from devops_automation.audit import row_hash

    rows = list(store.iter_audit())
    prev = rows[seq - 2].hash if seq > 1 else "0" * 64
    with store.engine.begin() as conn:
        for row in rows[seq - 1 :]:
            values = {**row.__dict__, "prev_hash": prev}
            if row.seq == seq:
                values["target"] = target
            forged = row.__class__(**{**values, "hash": ""})
            forged = row.__class__(**{**values, "hash": row_hash(forged)})
            conn.execute(
                text("UPDATE audit_log SET target = :t, prev_hash = :p, hash = :h WHERE seq = :s"),
                {"t": forged.target, "p": forged.prev_hash, "h": forged.hash, "s": row.seq},
            )
            prev = forged.hash
        conn.execute(text("UPDATE audit_head SET seq = :s, hash = :h"), {"s": rows[-1].seq, "h": prev})


def test_verify_resumes_from_the_checkpoint_it_recorded(store: Store) -> None:
    from devops_automation.audit import verify_log

    auditor = _filled(store)
    first = verify_log(store, auditor)
    assert first.problems == [] and first.walked == 8 and first.resumed_from is None
    assert first.checkpoint is not None and first.checkpoint.verified_seq == 8 and first.checkpoint.row_seq == 9
    checkpoint_row = store.audit_row(9)
    assert checkpoint_row is not None and checkpoint_row.action == "audit.checkpoint"
    assert json.loads(checkpoint_row.detail)["hash"] == store.audit_row(8).hash
    with auditor.action("git.push", "origin auto/team-x-9", request_id="req-2"):
        pass
    second = verify_log(store, auditor)
    assert second.problems == [] and second.resumed_from == 8
    assert (second.first, second.last, second.walked) == (9, 11, 3)  # the checkpoint row and the two new ones
    full = verify_log(store, auditor, full=True)
    assert full.problems == [] and full.walked == 12 and full.resumed_from is None


def test_an_edit_below_the_checkpoint_is_found_by_a_full_walk(store: Store) -> None:
    from devops_automation.audit import verify_log

    auditor = _filled(store)
    verify_log(store, auditor)
    _drop_guards(store)
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET target = 'origin main' WHERE seq = 3"))
    assert verify_log(store, auditor).problems == []  # the resumed walk starts above it, by design
    assert verify_log(store, auditor, full=True).problems == ["row 3: contents do not match its hash (edited)"]


def test_editing_the_checkpointed_row_breaks_the_resume(store: Store) -> None:
    from devops_automation.audit import verify_log

    auditor = _filled(store)
    verify_log(store, auditor)
    _drop_guards(store)
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET target = 'origin main' WHERE seq = 8"))
    result = verify_log(store, auditor)
    assert result.resumed_from is None and result.checkpoint is None  # nothing new is vouched for
    assert result.problems[0].startswith("row 8: does not match the verification checkpoint")
    assert "row 8: contents do not match its hash (edited)" in result.problems


def test_a_rehashed_chain_cannot_hide_below_a_checkpoint(store: Store) -> None:
    """Rewriting row 3 and rehashing everything after it keeps the chain consistent, but the checkpoint
    row recorded the old hash of row 8: a full walk sees the rewrite, and so does the resume."""
    from devops_automation.audit import verify_log

    auditor = _filled(store)
    verify_log(store, auditor, key=KEY)
    _drop_guards(store)
    _rehash_from(store, 3, "origin main")
    assert verify_chain(store.iter_audit(), store.audit_head()) == []  # the bare chain is fooled
    resumed = verify_log(store, auditor, key=KEY)
    assert any("does not match the verification checkpoint" in p for p in resumed.problems)
    full = verify_log(store, auditor, key=KEY, full=True)
    assert "row 9: the checkpoint it records (row 8) no longer matches that row (rewritten)" in full.problems


def test_a_forged_checkpoint_is_refused_with_the_key(store: Store) -> None:
    """Someone who can write the database appends a checkpoint row claiming the whole (edited) log is
    verified and points the checkpoint at it: without the audit key its HMAC cannot be made."""
    from devops_automation.audit import verify_log

    auditor = _filled(store)
    verify_log(store, auditor, key=KEY)
    _drop_guards(store)
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET target = 'origin main' WHERE seq = 3"))
    forger = Auditor(store)
    head = store.audit_head()
    assert head is not None
    forged = forger.checkpoint(head, b"not-the-audit-key-0000000000")
    result = verify_log(store, auditor, key=KEY)
    assert result.resumed_from is None  # not trusted: walked from row 1, where the edit is
    assert f"the verification checkpoint at row {forged.row_seq} has a wrong HMAC (forged)" in result.problems
    assert "row 3: contents do not match its hash (edited)" in result.problems
    with store.engine.begin() as conn:  # and with the HMAC simply removed
        conn.execute(text("UPDATE audit_checkpoint SET mac = NULL"))
    assert any("is not signed with the audit key" in p for p in verify_log(store, auditor, key=KEY).problems)


def test_rows_cut_off_below_the_checkpoint_are_seen(store: Store) -> None:
    from devops_automation.audit import verify_log

    auditor = _filled(store)
    verify_log(store, auditor)
    _drop_guards(store)
    with store.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE seq > 6"))
        conn.execute(text("UPDATE audit_head SET seq = 6, hash = (SELECT hash FROM audit_log WHERE seq = 6)"))
    problems = verify_log(store, auditor).problems
    assert problems[0].startswith("row 8: does not match the verification checkpoint")


def test_full_verify_walks_in_batches_without_holding_the_log(store: Store) -> None:
    from devops_automation.audit import verify_log

    auditor = _filled(store)
    seen: list[int] = []
    original = store.iter_audit_range

    def spy(after: int = 0, through: int | None = None, batch: int = 5000):  # type: ignore[no-untyped-def]
        for row in original(after, through, batch):
            seen.append(row.seq)
            yield row

    store.iter_audit_range = spy  # type: ignore[method-assign]
    result = verify_log(store, auditor, full=True, batch=3)
    assert result.problems == [] and seen == list(range(1, 9))
    assert [r.seq for r in original(0, 8, batch=3)] == list(range(1, 9))
    assert [r.seq for r in original(2, 7, batch=2)] == [3, 4, 5, 6, 7]


def test_appends_from_many_threads_and_a_second_engine_make_one_intact_chain(store: Store, db_url: str) -> None:
    """Every audit row passes through the chain's one lock (the head row, locked FOR UPDATE on PostgreSQL):
    concurrent writers from this process and another engine (another replica) never fork or reuse a seq."""
    import threading

    from devops_automation.store import open_store

    other = open_store(db_url)
    writers = [Auditor(store) for _ in range(5)] + [Auditor(other) for _ in range(3)]
    barrier = threading.Barrier(len(writers))

    def write(n: int, auditor: Auditor) -> None:
        barrier.wait()
        for i in range(15):
            auditor.event("test.append", f"writer {n} row {i}")

    try:
        threads = [threading.Thread(target=write, args=(n, a)) for n, a in enumerate(writers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        rows = list(store.iter_audit())
        assert [r.seq for r in rows] == list(range(1, 8 * 15 + 1))
        assert len({r.target for r in rows}) == 8 * 15
        assert verify_chain(rows, store.audit_head()) == []
    finally:
        other.close()
