"""Webhook subscriptions of local systems (admin-managed, audited)."""

from __future__ import annotations

import re
import secrets
import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from sanad import audit
from sanad.errors import Conflict, InvalidInput, NotFound
from sanad.registry.sync_models import Subscription

_EVENT_PATTERN = re.compile(r"^(\*|[a-z_]+(\.[a-z_]+)*(\.\*)?)$")


def create_subscription(
    session: Session, *, name: str, url: str, event_types: list[str], actor: str
) -> tuple[Subscription, str]:
    """Subscribe `url` to `event_types` (``*``, ``card.*`` or exact); returns the secret once."""
    if not url.startswith(("http://", "https://")):
        raise InvalidInput("url must be http(s)", field="url")
    if not event_types:
        raise InvalidInput("at least one event type", field="event_types")
    for pattern in event_types:
        if not _EVENT_PATTERN.match(pattern):
            raise InvalidInput(f"bad event type pattern {pattern!r}", field="event_types")
    if session.scalar(select(Subscription.id).where(Subscription.name == name)) is not None:
        raise Conflict(f"a subscription named {name!r} exists")
    secret = secrets.token_hex(32)
    sub = Subscription(name=name, url=url, secret=secret, event_types=event_types,
                       created_by=actor)
    session.add(sub)
    session.flush()
    audit.record(session, actor=actor, action="subscription.create",
                 subject_type="subscription", subject_id=str(sub.id),
                 details={"name": name, "event_types": event_types})
    return sub, secret


def list_subscriptions(session: Session) -> list[Subscription]:
    return list(session.scalars(select(Subscription).order_by(Subscription.created_at)))


def deactivate_subscription(session: Session, *, subscription_id: uuid.UUID, actor: str) -> None:
    """Stop delivering to a subscription (pending deliveries are dead-lettered on attempt)."""
    sub = session.get(Subscription, subscription_id)
    if sub is None:
        raise NotFound(f"no subscription {subscription_id}")
    sub.active = False
    audit.record(session, actor=actor, action="subscription.deactivate",
                 subject_type="subscription", subject_id=str(sub.id))
