"""The transactional outbox: `emit` writes an event in the caller's transaction.

Because the event row and its delivery rows commit (or roll back) with the change they
describe, a consumer can never see an event for a change that did not happen, nor miss one
that did. Delivery is a separate, retried step (`sanad worker`, see `sanad.notify.delivery`),
so it is *at least once*: receivers deduplicate on the `Idempotency-Key` header (the event id).

Deliveries are fanned out here, at emit time, rather than by a worker scanning event ids: on
PostgreSQL, concurrent transactions commit ids out of order, and a scanning cursor would skip
an event whose transaction committed late.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from sanad.registry.sync_models import Delivery, OutboxEvent, Subscription

NOTIFY_TARGET = "notify"

# Event types that also produce a notification to the person (see sanad.notify.senders).
NOTIFIABLE_EVENTS = frozenset({"card.ready"})


def _matches(patterns: list[str], event_type: str) -> bool:
    for pattern in patterns:
        if pattern == "*" or pattern == event_type:
            return True
        if pattern.endswith(".*") and event_type.startswith(pattern[:-1]):
            return True
    return False


def emit(
    session: Session, *, event_type: str, subject_id: str | uuid.UUID, payload: dict[str, Any]
) -> OutboxEvent:
    """Record `event_type` about `subject_id` in the current transaction and queue deliveries.

    `payload` must be JSON-serialisable and hold what subscribers need (ids, statuses), not
    biometrics. For `card.ready`, include `phone`, `site` and `date` so a notification can
    be sent ("your card is ready at site X on date Y").
    """
    event = OutboxEvent(
        event_id=uuid.uuid4(), event_type=event_type, subject_id=str(subject_id),
        payload=payload,
    )
    session.add(event)
    session.flush()
    subscriptions = session.scalars(
        select(Subscription).where(Subscription.active.is_(True))
    ).all()
    for sub in subscriptions:
        if _matches(sub.event_types, event_type):
            session.add(
                Delivery(event_id=event.id, target=f"webhook:{sub.id}", subscription_id=sub.id)
            )
    if event_type in NOTIFIABLE_EVENTS and payload.get("phone"):
        session.add(Delivery(event_id=event.id, target=NOTIFY_TARGET))
    session.flush()
    return event
