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
