"""Hash-chained, append-only audit log.

Each event's hash is SHA-256 over the previous hash and a canonical JSON encoding of the row.
The chain tip lives in `audit_head` (one row, locked FOR UPDATE on PostgreSQL) so concurrent
writers cannot fork the chain. `verify_chain` detects an edited row (hash mismatch), a deleted
row (sequence gap / prev-hash mismatch) and a truncated tail (tip mismatch).

Details must never hold biometric data or more personal data than an auditor needs: record ids
and decisions, not names.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from sanad.registry.db import utcnow
from sanad.registry.models import AuditEvent, AuditHead

GENESIS = "0" * 64


def _canonical(
    seq: int, at: datetime, actor: str, action: str, subject_type: str, subject_id: str,
    details: dict[str, Any], prev_hash: str,
) -> bytes:
    body = {
        "seq": seq,
        "at": at.isoformat(timespec="microseconds"),
        "actor": actor,
        "action": action,
        "subject_type": subject_type,
        "subject_id": subject_id,
        "details": details,
        "prev": prev_hash,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _digest(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def record(
    session: Session, *, actor: str, action: str, subject_type: str, subject_id: str,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event inside the caller's transaction (so it commits or rolls back with it)."""
    head = session.scalars(select(AuditHead).where(AuditHead.id == 1).with_for_update()).first()
    if head is None:
        head = AuditHead(id=1, last_seq=0, last_hash=GENESIS)
        session.add(head)
        session.flush()
    seq = head.last_seq + 1
    at = utcnow()
    details = details or {}
    digest = _digest(
        _canonical(seq, at, actor, action, subject_type, subject_id, details, head.last_hash)
    )
    event = AuditEvent(
        seq=seq, at=at, actor=actor, action=action, subject_type=subject_type,
        subject_id=subject_id, details=details, prev_hash=head.last_hash, hash=digest,
    )
    session.add(event)
    head.last_seq = seq
    head.last_hash = digest
    session.flush()
    return event


@dataclass(frozen=True)
class Entry:
    """One event for `record_many`."""

    actor: str
    action: str
    subject_type: str
    subject_id: str
    details: dict[str, Any]


def record_many(session: Session, entries: Sequence[Entry]) -> int:
    """Append `entries` in order inside the caller's transaction, taking the chain tip once.

    The batched path for high-rate events (online verifications): the same rows and hashes as
    calling `record` for each, with one lock of `audit_head` and one multi-row INSERT instead
    of one of each per event. Returns the sequence number of the last event (0 for none).
    """
    if not entries:
        return 0
    head = session.scalars(select(AuditHead).where(AuditHead.id == 1).with_for_update()).first()
    if head is None:
        head = AuditHead(id=1, last_seq=0, last_hash=GENESIS)
        session.add(head)
        session.flush()
    seq, last_hash = head.last_seq, head.last_hash
    rows: list[dict[str, Any]] = []
    for e in entries:
        seq += 1
        at = utcnow()
        digest = _digest(_canonical(seq, at, e.actor, e.action, e.subject_type, e.subject_id,
                                    e.details, last_hash))
        rows.append({"seq": seq, "at": at, "actor": e.actor, "action": e.action,
                     "subject_type": e.subject_type, "subject_id": e.subject_id,
                     "details": e.details, "prev_hash": last_hash, "hash": digest})
        last_hash = digest
    session.execute(insert(AuditEvent), rows)
    head.last_seq = seq
    head.last_hash = last_hash
    session.flush()
    return seq


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    events: int
    first_broken_seq: int | None = None
    problem: str | None = None


def verify_chain(session: Session, *, batch: int = 5000) -> ChainReport:
    """Walk the whole chain in order and report the first inconsistency, if any."""
    prev_hash = GENESIS
    expected_seq = 1
    count = 0
    last_seq = 0
    while True:
        rows = session.scalars(
            select(AuditEvent).where(AuditEvent.seq > last_seq).order_by(AuditEvent.seq)
            .limit(batch)
        ).all()
        if not rows:
            break
        for ev in rows:
            if ev.seq != expected_seq:
                return ChainReport(False, count, expected_seq, "missing event (deleted row)")
            if ev.prev_hash != prev_hash:
                return ChainReport(False, count, ev.seq, "previous-hash link broken")
            recomputed = _digest(
                _canonical(
                    ev.seq, ev.at, ev.actor, ev.action, ev.subject_type, ev.subject_id,
                    ev.details, ev.prev_hash,
                )
            )
            if recomputed != ev.hash:
                return ChainReport(False, count, ev.seq, "row content does not match its hash")
            prev_hash = ev.hash
            expected_seq += 1
            count += 1
            last_seq = ev.seq
    head = session.get(AuditHead, 1)
    head_seq, head_hash = (head.last_seq, head.last_hash) if head else (0, GENESIS)
    if head_seq != count or head_hash != prev_hash:
        return ChainReport(False, count, count + 1, "chain tip missing (tail deleted)")
    return ChainReport(True, count)


def events_for(session: Session, *, subject_id: str, limit: int = 200) -> list[AuditEvent]:
    """The audit trail of one subject, newest first."""
    return list(
        session.scalars(
            select(AuditEvent).where(AuditEvent.subject_id == subject_id)
            .order_by(AuditEvent.seq.desc()).limit(limit)
        )
    )
