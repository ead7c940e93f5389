"""The audit trail: every outward action is recorded before it runs and again with its outcome.

Rows are append-only (database triggers) and hash-chained (each row's hash covers the previous
row's), so an edited, inserted or deleted row shows up in :func:`verify_chain`. Secrets are redacted
before anything is written.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Connection

from .models import CapabilityGap, TeamCreationRequest
from .store import GENESIS_HASH, AuditCheckpoint, AuditRow, Store

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

    def _detail(self, detail: dict[str, Any]) -> str:
        detail = {**_CONTEXT.get(), **detail}
        return redact(json.dumps(_redact_keys(detail), sort_keys=True, default=str, ensure_ascii=False), self.secrets)

    def _write(
        self,
        request_id: str | None,
        action: str,
        phase: str,
        target: str,
        detail: dict[str, Any],
        conn: Connection | None = None,
    ) -> AuditRow:
        return self.store.append_audit(
            request_id=request_id,
            action=action,
            phase=phase,
            target=redact(target, self.secrets),
            detail=self._detail(detail),
            hasher=row_hash,
            conn=conn,
        )

    def checkpoint(self, verified: tuple[int, str], key: bytes | None, **detail: Any) -> AuditCheckpoint:
        """Record that rows up to ``verified`` (seq, hash) were walked and found intact: an
        ``audit.checkpoint`` row in the chain and the checkpoint itself, HMAC-signed with ``key``."""
        seq, digest = verified
        mac = checkpoint_mac(key, seq, digest) if key else None
        return self.store.record_audit_checkpoint(
            verified=verified,
            target=f"rows 1..{seq}",
            detail=self._detail({**detail, "seq": seq, "hash": digest, "mac": mac}),
            hasher=row_hash,
            mac=mac,
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

    def event_within(
        self, conn: Connection, action: str, target: str, *, request_id: str | None = None, **detail: Any
    ) -> None:
        """:meth:`event`, inside the caller's write transaction ``conn`` (``Store.transaction``): the row
        commits, or rolls back, with what the caller writes there."""
        self._write(request_id, action, "recorded", target, detail, conn)

    def request_received(self, gap: CapabilityGap) -> Callable[[Connection, TeamCreationRequest], None]:
        """The ``received`` hook of ``Store.create_request`` for ``gap``: its ``request.received`` row
        (target the gap id, detail the requesting team), in the request's own insert transaction."""

        def received(conn: Connection, request: TeamCreationRequest) -> None:
            self.event_within(
                conn, "request.received", gap.id or "", request_id=request.id, requesting_team=gap.requesting_team
            )

        return received


def verify_chain(
    rows: Iterable[AuditRow], head: tuple[int, str] | None = None, start: tuple[int, str] = (0, GENESIS_HASH)
) -> list[str]:
    """Return one line per problem; an empty list means the chain is intact. ``head`` is the stored
    (seq, hash) of the last row written: without it, rows cut off the end cannot be seen. ``start`` is
    the (seq, hash) the first of ``rows`` follows: a verified checkpoint, or the genesis."""
    problems: list[str] = []
    expected_seq, prev = start[0] + 1, start[1]
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


def checkpoint_mac(key: bytes, verified_seq: int, verified_hash: str) -> str:
    """HMAC-SHA256 (hex) of a verification checkpoint under the audit key (``DEVOPS_CREW_AUDIT_KEY``)."""
    message = f"devops-crew audit checkpoint:{verified_seq}:{verified_hash}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


@dataclass
class Verification:
    """What :func:`verify_log` found: ``problems`` empty means intact. Rows ``first..last`` were walked
    (``walked`` of them); ``resumed_from`` is the checkpoint's verified seq when the walk started there;
    ``checkpoint`` the new checkpoint recorded (None when there were problems); ``notes`` say why a
    checkpoint was not used."""

    problems: list[str]
    walked: int
    first: int
    last: int
    resumed_from: int | None
    checkpoint: AuditCheckpoint | None
    notes: list[str]


def _checkpoint_problems(store: Store, point: AuditCheckpoint) -> list[str]:
    """Whether the checkpoint agrees with the rows it names: the verified row still has the recorded hash
    (and its contents that hash), and the checkpoint's own row records the same seq and hash."""
    anchor = store.audit_row(point.verified_seq)
    if anchor is None or anchor.hash != point.verified_hash or row_hash(anchor) != anchor.hash:
        return [
            f"row {point.verified_seq}: does not match the verification checkpoint (edited, rehashed or deleted "
            "below the checkpoint; run `audit --verify --full`)"
        ]
    own = store.audit_row(point.row_seq)
    claim = _claim(own)[:2] if own is not None and own.action == "audit.checkpoint" else None
    if point.row_seq <= point.verified_seq or claim != (point.verified_seq, point.verified_hash):
        return [f"the verification checkpoint is not the one recorded in the chain at row {point.row_seq} (forged)"]
    return []


def _claim(row: AuditRow) -> tuple[Any, Any, Any]:
    """The (seq, hash, mac) an ``audit.checkpoint`` row records; Nones when its detail is not that."""
    try:
        recorded = json.loads(row.detail)
    except ValueError:
        recorded = None
    if not isinstance(recorded, dict):
        return None, None, None
    return recorded.get("seq"), recorded.get("hash"), recorded.get("mac")


def _claim_problems(store: Store, row: AuditRow, key: bytes | None) -> list[str]:
    """An ``audit.checkpoint`` row met on a walk: the row it vouches for must still have the hash it
    recorded and, with ``key``, its HMAC must verify. This is what catches a rewrite of the rows below a
    checkpoint that rehashed the whole chain to hide it (with the key: whoever rewrote did not hold it)."""
    seq, digest, mac = _claim(row)
    vouched = store.audit_row(seq) if isinstance(seq, int) else None
    if vouched is None or vouched.hash != digest:
        return [f"row {row.seq}: the checkpoint it records (row {seq}) no longer matches that row (rewritten)"]
    if key is not None and mac is not None and not hmac.compare_digest(str(mac), checkpoint_mac(key, seq, digest)):
        return [f"row {row.seq}: the checkpoint it records has a wrong HMAC (forged)"]
    return []


def verify_log(
    store: Store, auditor: Auditor, *, full: bool = False, key: bytes | None = None, batch: int = 5000
) -> Verification:
    """Walk the audit chain in keyset batches (constant memory) up to the head read at the start (rows
    written meanwhile are for the next walk), from the last verified checkpoint unless ``full``; when
    intact, record a new checkpoint at the head (an ``audit.checkpoint`` row in the chain, signed with
    ``key`` when given).

    The checkpoint is used only if it agrees with the rows it names (the verified row still has its
    hash, the checkpoint's own row records the same seq and hash) and, with ``key``, its HMAC verifies:
    a wrong HMAC is a problem, and so is a missing one (outside ``full``, which then signs a new one).
    Every ``audit.checkpoint`` row a walk passes is checked against the row it vouches for. Without
    ``key`` a checkpoint is as tamper-evident as the chain (whoever can rewrite the whole chain can
    rewrite it too); with it, rows below a signed checkpoint cannot be rewritten unseen by anyone
    without the key. Rows below the checkpoint are not read again outside ``full``: an edit there is
    found by the next ``full`` walk. Raises the store's errors only."""
    point = store.audit_checkpoint()  # before the head: a checkpoint recorded meanwhile is never past it
    head = store.audit_head()
    problems: list[str] = []
    notes: list[str] = []
    start = (0, GENESIS_HASH)
    resumed: int | None = None
    if point is not None:
        trusted = True
        if key is not None and point.mac is None:
            trusted = False
            if full:
                notes.append("the checkpoint was not signed with the audit key: a new signed one is recorded")
            else:
                problems.append(
                    f"the verification checkpoint at row {point.row_seq} is not signed with the audit key "
                    "(forged, or recorded before the key was set: check with `audit --verify --full`)"
                )
        elif key is not None and not hmac.compare_digest(str(point.mac), checkpoint_mac(key, *point[:2])):
            trusted = False
            problems.append(f"the verification checkpoint at row {point.row_seq} has a wrong HMAC (forged)")
        checked = _checkpoint_problems(store, point)
        problems += checked
        if trusted and not checked and not full:
            start, resumed = (point.verified_seq, point.verified_hash), point.verified_seq
    through = head[0] if head is not None else None
    walked = [0]

    def rows() -> Iterator[AuditRow]:
        for row in store.iter_audit_range(start[0], through, batch):
            walked[0] += 1
            if row.action == "audit.checkpoint":
                problems.extend(_claim_problems(store, row, key))
            yield row

    problems += verify_chain(rows(), head, start)
    recorded = None
    if not problems and head is not None:
        recorded = auditor.checkpoint(head, key, walked=walked[0], full=resumed is None)
    return Verification(problems, walked[0], start[0] + 1, through or start[0], resumed, recorded, notes)
