"""Central audit of online card verifications (`POST /verify`, the checkpoint page).

Each verification becomes one `card.verify` event in the hash-chained audit log: who checked,
through which channel, when, which card (the registry's card id when the card is one of ours,
its card number and credential id), the verdict and its reason codes. Never the QR text, the
face template, a holder photo or the names on the card.

The audit chain is a serialisation point (one lock on its tip per transaction), and a
checkpoint API may take a thousand verifications a second. So by default events are queued in
process memory and a background thread appends them in batches (`audit.record_many`: one
transaction, one tip lock, the same rows and hashes) every `verify_audit_batch_seconds`, or
sooner when `verify_audit_batch_max` are waiting. What that costs: an event reaches the log up
to that interval after the answer was sent, and a process killed outright (SIGKILL, power
loss) loses the events of that last interval; a normal shutdown writes them (`close`). With
`verify_audit_batch_seconds = 0` every verification is written in its own transaction before
the answer is sent. If the queue ever holds `BACKLOG_BATCHES` batches (the database is down),
requests write their own event synchronously instead of queueing more: back-pressure, never a
silently dropped event.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from sanad import audit
from sanad.registry.db import transaction, utcnow
from sanad.registry.models import Card
from sanad.verify import VerificationResult

__all__ = ["ACTION", "VerificationAuditLog", "VerificationEvent", "event_for", "write_events"]

log = logging.getLogger("sanad.audit")
ACTION = "card.verify"
BACKLOG_BATCHES = 20


@dataclass(frozen=True)
class VerificationEvent:
    """What is kept of one verification (no QR payload, no biometric data, no names)."""

    actor: str
    channel: str  # "api" | "checkpoint"
    checked_at: datetime
    valid: bool
    reasons: tuple[str, ...]
    card_number: str | None
    cti: str | None  # the credential's id (hex), when its signature was good
    kid: str | None
    face_checked: bool


def event_for(result: VerificationResult, *, actor: str, channel: str) -> VerificationEvent:
    claims = result.claims or {}
    number = claims.get("card_number")
    cti = claims.get("card_id", claims.get("cti"))
    return VerificationEvent(
        actor=actor, channel=channel, checked_at=utcnow(), valid=result.valid,
        reasons=result.reasons, card_number=number if isinstance(number, str) else None,
        cti=cti if isinstance(cti, str) else None, kid=result.kid,
        face_checked=result.face_score is not None or "face_unavailable" in result.reasons,
    )


def write_events(session: Session, events: Sequence[VerificationEvent]) -> None:
    """Append `events` to the audit log in the caller's transaction (one chain-tip lock)."""
    ctis: dict[bytes, str] = {}
    for e in events:
        if e.cti is not None:
            try:
                ctis[bytes.fromhex(e.cti)] = e.cti
            except ValueError:
                continue
    known: dict[str, str] = {}
    if ctis:
        rows = session.execute(select(Card.cti, Card.id).where(Card.cti.in_(list(ctis))))
        known = {cti.hex(): str(card_id) for cti, card_id in rows}
    entries = []
    for e in events:
        card_id = known.get(e.cti) if e.cti is not None else None
        details: dict[str, object] = {
            "channel": e.channel,
            "checked_at": e.checked_at.isoformat(timespec="milliseconds"),
            "valid": e.valid,
            "reasons": list(e.reasons),
        }
        if e.card_number is not None:
            details["card_number"] = e.card_number
        if e.cti is not None:
            details["cti"] = e.cti
        if e.kid is not None:
            details["kid"] = e.kid
        if e.face_checked:
            details["face_checked"] = True
        entries.append(audit.Entry(
            actor=e.actor, action=ACTION,
            subject_type="card" if card_id else "credential",
            subject_id=card_id or e.cti or "unreadable", details=details,
        ))
    audit.record_many(session, entries)


class VerificationAuditLog:
    """Where the API and the checkpoint page send verification events (one per process).

    `add` never blocks on the database when batching: it queues the event and returns True.
    It returns False when the caller must write synchronously (`write_now`, from a worker
    thread): batching is off, or the backlog is full.
    """

    def __init__(self, sessions: sessionmaker[Session], *, batch_seconds: float,
                 batch_max: int) -> None:
        self.sessions = sessions
        self.batch_seconds = batch_seconds
        self.batch_max = batch_max
        self._queue: list[VerificationEvent] = []
        self._lock = threading.Lock()  # guards _queue
        self._write_lock = threading.Lock()  # one batch write at a time, in queue order
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def batching(self) -> bool:
        return self.batch_seconds > 0

    def add(self, event: VerificationEvent) -> bool:
        if not self.batching:
            return False
        with self._lock:
            if len(self._queue) >= self.batch_max * BACKLOG_BATCHES:
                return False
            self._queue.append(event)
            full = len(self._queue) >= self.batch_max
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(target=self._run, name="verify-audit",
                                                daemon=True)
                self._thread.start()
        if full:
            self._wake.set()
        return True

    def write_now(self, event: VerificationEvent) -> None:
        """Write one event in its own transaction (blocking)."""
        self.flush()  # keep the log in the order the verifications happened
        with self._write_lock, transaction(self.sessions) as session:
            write_events(session, [event])

    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    def flush(self) -> int:
        """Write every queued event now (blocking); returns how many were written."""
        with self._write_lock:
            with self._lock:
                batch, self._queue = self._queue, []
            if not batch:
                return 0
            try:
                with transaction(self.sessions) as session:
                    write_events(session, batch)
            except Exception:
                with self._lock:  # keep them for the next attempt, in order
                    self._queue[:0] = batch
                raise
            return len(batch)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.batch_seconds)
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # the database is unreachable: retry on the next round
                log.exception("writing verification audit events failed; will retry")

    def close(self) -> None:
        """Stop the background writer and write what is queued (application shutdown)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.flush()
