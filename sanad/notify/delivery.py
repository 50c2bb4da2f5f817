"""Delivery of outbox events: HMAC-signed webhooks and notifications, at least once.

A worker *claims* due deliveries by setting a lease (committed before any network call), then
sends, then records the outcome. A worker killed mid-send leaves the lease to expire, and the
next worker sends the same event again with the same `Idempotency-Key` (the event id): nothing
is lost, and receivers deduplicate. Failures back off exponentially (with jitter, capped) and
after `webhook_max_attempts` the delivery becomes `dead` (a dead letter an admin can requeue).

Signature: ``X-Sanad-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``,
the scheme Stripe and others use, so receivers can also reject replays of old timestamps.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from sanad.config import Settings
from sanad.errors import InvalidInput, NotFound
from sanad.notify.outbox import NOTIFY_TARGET
from sanad.notify.senders import Sender, SendFailed, render
from sanad.registry.db import transaction, utcnow
from sanad.registry.sync_models import Delivery, OutboxEvent, Subscription

SIGNATURE_HEADER = "X-Sanad-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"


def event_body(event: OutboxEvent) -> bytes:
    """The exact bytes POSTed for an event: canonical JSON, identical on every retry."""
    doc = {
        "event_id": str(event.event_id),
        "event_type": event.event_type,
        "subject_id": event.subject_id,
        "created_at": event.created_at.isoformat(),
        "payload": event.payload,
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign(secret: str, body: bytes, *, timestamp: int) -> str:
    """The signature header value for `body` sent at `timestamp`."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify_signature(secret: str, body: bytes, header: str) -> bool:
    """Receiver-side check of a signature header (constant-time comparison)."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        expected = sign(secret, body, timestamp=int(parts["t"]))
    except (KeyError, ValueError):
        return False
    return hmac.compare_digest(expected, header)


def backoff(settings: Settings, attempts: int) -> float:
    """Seconds before retry number `attempts` (1-based): doubling, capped, with ±20 % jitter."""
    base = settings.webhook_backoff_seconds * (2 ** (attempts - 1))
    delay = min(base, settings.webhook_backoff_max_seconds)
    # Jitter spreads retries of many failed deliveries so a recovering receiver is not
    # hit by all of them in the same second.
    return float(delay * random.uniform(0.8, 1.2))


@dataclass(frozen=True)
class _Claimed:
    delivery_id: int
    target: str
    attempts: int
    event: OutboxEvent
    subscription: Subscription | None


def _claim(
    sessions: sessionmaker[Session], settings: Settings, *, limit: int
) -> list[_Claimed]:
    now = utcnow()
    with transaction(sessions) as session:
        query = (
            select(Delivery)
            .where(
                Delivery.status == "pending",
                Delivery.next_attempt_at <= now,
                or_(Delivery.lease_until.is_(None), Delivery.lease_until < now),
            )
            .order_by(Delivery.id)
            .limit(limit)
        )
        if session.get_bind().dialect.name == "postgresql":
            # Several workers may run; each takes different rows without waiting.
            query = query.with_for_update(skip_locked=True)
        rows = session.scalars(query).all()
        lease = now + timedelta(seconds=settings.worker_lease_seconds)
        claimed = []
        for d in rows:
            d.lease_until = lease
            event = session.get(OutboxEvent, d.event_id)
            assert event is not None  # foreign key
            sub = session.get(Subscription, d.subscription_id) if d.subscription_id else None
            claimed.append(_Claimed(d.id, d.target, d.attempts, event, sub))
    return claimed


def _send(
    claim: _Claimed, settings: Settings, client: httpx.Client, sender: Sender
) -> None:
    event = claim.event
    key = str(event.event_id)
    if claim.target == NOTIFY_TARGET:
        message = render(event.event_type, event.payload)
        sender.send(to=str(event.payload["phone"]), message=message, idempotency_key=key)
        return
    sub = claim.subscription
    if sub is None or not sub.active:
        raise InvalidInput("subscription is gone or inactive", field="subscription")
    body = event_body(event)
    headers = {
        "Content-Type": "application/json",
        IDEMPOTENCY_HEADER: key,
        "X-Sanad-Event-Type": event.event_type,
        SIGNATURE_HEADER: sign(sub.secret, body, timestamp=int(time.time())),
    }
    try:
        resp = client.post(sub.url, content=body, headers=headers,
                           timeout=settings.webhook_timeout_seconds)
    except httpx.HTTPError as exc:
        raise SendFailed(f"{type(exc).__name__}: {exc}") from exc
    if not 200 <= resp.status_code < 300:
        raise SendFailed(f"receiver answered HTTP {resp.status_code}")


def _finish(
    sessions: sessionmaker[Session], settings: Settings, claim: _Claimed, error: str | None,
    *, permanent: bool = False,
) -> str:
    with transaction(sessions) as session:
        d = session.get(Delivery, claim.delivery_id)
        assert d is not None
        d.lease_until = None
        d.attempts = claim.attempts + 1
        if error is None:
            d.status = "delivered"
            d.delivered_at = utcnow()
            d.last_error = None
        elif permanent or d.attempts >= settings.webhook_max_attempts:
            d.status = "dead"
            d.last_error = error[:2000]
        else:
            d.last_error = error[:2000]
            d.next_attempt_at = utcnow() + timedelta(seconds=backoff(settings, d.attempts))
        return d.status


@dataclass
class DeliveryReport:
    delivered: int = 0
    retried: int = 0
    dead: int = 0


def deliver_due(
    sessions: sessionmaker[Session], settings: Settings, *, sender: Sender,
    client: httpx.Client, limit: int = 50,
) -> DeliveryReport:
    """Claim and attempt up to `limit` due deliveries; returns what happened."""
    report = DeliveryReport()
    for claim in _claim(sessions, settings, limit=limit):
        try:
            _send(claim, settings, client, sender)
        except SendFailed as exc:
            status = _finish(sessions, settings, claim, exc.message)
        except InvalidInput as exc:
            # A payload or configuration that can never succeed: dead-letter at once.
            status = _finish(sessions, settings, claim, exc.message, permanent=True)
        else:
            status = _finish(sessions, settings, claim, None)
        if status == "delivered":
            report.delivered += 1
        elif status == "dead":
            report.dead += 1
        else:
            report.retried += 1
    return report


def pending_count(session: Session) -> int:
    """Deliveries not yet delivered nor dead (including leased and backing-off ones)."""
    return int(
        session.scalar(select(func.count()).select_from(Delivery)
                       .where(Delivery.status == "pending")) or 0
    )


def next_due(session: Session) -> datetime | None:
    """When the earliest pending delivery becomes due (lease expiry included)."""
    rows = session.execute(
        select(Delivery.next_attempt_at, Delivery.lease_until).where(Delivery.status == "pending")
    ).all()
    times = [max(a, b) if b is not None else a for a, b in rows]
    return min(times) if times else None


def dead_letters(session: Session, *, limit: int = 100) -> list[dict[str, Any]]:
    """Deliveries that gave up, newest first, with their last error."""
    rows = session.execute(
        select(Delivery, OutboxEvent).join(OutboxEvent, OutboxEvent.id == Delivery.event_id)
        .where(Delivery.status == "dead").order_by(Delivery.id.desc()).limit(limit)
    ).all()
    return [
        {"delivery_id": d.id, "event_id": str(e.event_id), "event_type": e.event_type,
         "target": d.target, "attempts": d.attempts, "last_error": d.last_error}
        for d, e in rows
    ]


def requeue(session: Session, *, delivery_id: int) -> None:
    """Put a dead letter back in the queue (attempt counter reset)."""
    result = session.execute(
        update(Delivery).where(Delivery.id == delivery_id, Delivery.status == "dead")
        .values(status="pending", attempts=0, next_attempt_at=utcnow(), lease_until=None)
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise NotFound(f"no dead delivery {delivery_id}")




def purge_delivered(session: Session, *, older_than: timedelta) -> int:
    """Delete events older than `older_than` whose every delivery succeeded (or that had
    none): payloads can hold phone numbers, so they are not kept longer than needed."""
    cutoff = utcnow() - older_than
    unfinished = select(Delivery.event_id).where(Delivery.status != "delivered")
    ids = list(session.scalars(
        select(OutboxEvent.id).where(OutboxEvent.created_at < cutoff,
                                     OutboxEvent.id.not_in(unfinished)).limit(10_000)))
    if ids:
        session.execute(delete(Delivery).where(Delivery.event_id.in_(ids)))
        session.execute(delete(OutboxEvent).where(OutboxEvent.id.in_(ids)))
    return len(ids)
