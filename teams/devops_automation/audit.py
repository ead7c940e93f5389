"""The audit trail: every outward action is recorded before it runs and again with its outcome.

Rows are append-only (database triggers) and hash-chained (each row's hash covers the previous
row's), so an edited, inserted or deleted row shows up in :func:`verify_chain`. Secrets are redacted
before anything is written.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from .store import GENESIS_HASH, AuditRow, Store

REDACTED = "[REDACTED]"

# Token shapes worth catching even when nobody told us the value: (pattern, replacement).
_SECRET_PATTERNS = [
    (re.compile(r"(://[^/\s:@]+:)[^@/\s]+(@)"), rf"\1{REDACTED}\2"),  # credentials inside a URL
    (re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})\b"), REDACTED),
    (re.compile(r"\bsk-[A-Za-z0-9_-]{16,}\b"), REDACTED),
    (re.compile(r"(?i)(authorization:\s*(?:bearer|token|basic)\s+)\S+"), rf"\1{REDACTED}"),
    (
        re.compile(r"(?i)\b((?:token|password|passwd|secret|api[_-]?key)\"?\s*[=:]\s*\"?)[^\s&\"',;@\[]+"),
        rf"\1{REDACTED}",
    ),
]


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Replace every known secret value, and anything shaped like a credential, with a marker."""
    for value in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        text = text.replace(value, REDACTED)
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


_SECRET_KEY = re.compile(r"(?i)(token|password|passwd|secret|api[_-]?key|authorization|credential)")


def _redact_keys(value: Any) -> Any:
    """Blank every value whose key names a secret, however deep."""
    if isinstance(value, dict):
        return {k: REDACTED if _SECRET_KEY.search(str(k)) else _redact_keys(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_keys(v) for v in value]
    return value


# Who and which run the rows written in this thread or task belong to (run id, actor id, channel). A
# context variable, not an attribute of the shared Auditor: a server runs many requests at once.
_CONTEXT: ContextVar[dict[str, str]] = ContextVar("devops_crew_audit_context", default={})  # noqa: B039


@contextmanager
def audit_context(**values: str | None) -> Iterator[None]:
    """Within the block, every audit row written by this thread or task also records ``values``
    (e.g. ``run="run-1a2b", actor="alice", channel="cli"``); nested blocks add to the outer one."""
    token = _CONTEXT.set({**_CONTEXT.get(), **{k: v for k, v in values.items() if v is not None}})
    try:
        yield
    finally:
        _CONTEXT.reset(token)


def row_hash(row: AuditRow) -> str:
    material = json.dumps(
        [row.seq, row.ts.isoformat(), row.request_id, row.action, row.phase, row.target, row.detail, row.prev_hash],
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(material.encode()).hexdigest()


@dataclass
class AuditedCall:
    """Handed to the body of :meth:`Auditor.action`; whatever it puts in ``result`` is recorded."""

    result: dict[str, Any] = field(default_factory=dict)


class Auditor:
    """Writes audit rows for one process. Knows the secrets it must never write."""

    def __init__(self, store: Store, secrets: Iterable[str] = ()) -> None:
        self.store = store
        self.secrets = [s for s in secrets if s]

    def _write(self, request_id: str | None, action: str, phase: str, target: str, detail: dict[str, Any]) -> AuditRow:
        detail = {**_CONTEXT.get(), **detail}
        text = redact(json.dumps(_redact_keys(detail), sort_keys=True, default=str, ensure_ascii=False), self.secrets)
        return self.store.append_audit(
            request_id=request_id,
            action=action,
            phase=phase,
            target=redact(target, self.secrets),
            detail=text,
            hasher=row_hash,
        )

    @contextmanager
    def action(
        self, action: str, target: str, *, request_id: str | None = None, **detail: Any
    ) -> Iterator[AuditedCall]:
        """Record ``initiated``, run the body, then ``succeeded`` or ``failed`` with the error."""
        self._write(request_id, action, "initiated", target, detail)
        call = AuditedCall()
        try:
            yield call
        except BaseException as exc:
            error = f"{type(exc).__name__}: {exc}"
            self._write(request_id, action, "failed", target, {**call.result, "error": error})
            raise
        self._write(request_id, action, "succeeded", target, call.result)

    def event(self, action: str, target: str, *, request_id: str | None = None, **detail: Any) -> None:
        """A decision that is not an outward action (policy verdicts, approvals)."""
        self._write(request_id, action, "recorded", target, detail)


def verify_chain(rows: Iterable[AuditRow], head: tuple[int, str] | None = None) -> list[str]:
    """Return one line per problem; an empty list means the chain is intact. ``head`` is the stored
    (seq, hash) of the last row written: without it, rows cut off the end cannot be seen."""
    problems: list[str] = []
    expected_seq, prev = 1, GENESIS_HASH
    for row in rows:
        if row.seq != expected_seq:
            problems.append(f"row {row.seq}: rows {expected_seq}..{row.seq - 1} are missing (deleted)")
        if row.prev_hash != prev:
            problems.append(f"row {row.seq}: does not follow the previous row (chain broken)")
        if row_hash(row) != row.hash:
            problems.append(f"row {row.seq}: contents do not match its hash (edited)")
        expected_seq, prev = row.seq + 1, row.hash
    if head is not None and (expected_seq - 1, prev) != head:
        problems.append(
            f"the log ends at row {expected_seq - 1}, but row {head[0]} was written: rows were removed from the end"
            if head[0] >= expected_seq
            else f"the log's last row {expected_seq - 1} does not match the recorded head (row {head[0]})"
        )
    return problems
