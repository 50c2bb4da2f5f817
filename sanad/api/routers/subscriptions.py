"""Webhook subscriptions of local systems, and the dead letters of failed deliveries."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, ConfigDict, Field

from sanad.api.deps import Principal, RegistryDep, require
from sanad.notify import delivery, subscriptions
from sanad.registry.db import transaction
from sanad.registry.models import Role

router = APIRouter(prefix="/subscriptions", tags=["events"])
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]


class SubscriptionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=80)
    url: str = Field(min_length=8, max_length=2000)
    event_types: list[str] = Field(min_length=1, examples=[["card.*", "household.enrolled"]])


@router.post("", status_code=201)
def create(body: SubscriptionCreate, registry: RegistryDep, user: Admin) -> dict[str, Any]:
    """Subscribe a local system; the HMAC secret is returned once, here."""
    with transaction(registry.sessions) as session:
        sub, secret = subscriptions.create_subscription(
            session, name=body.name, url=body.url, event_types=body.event_types,
            actor=user.username)
        return {"id": str(sub.id), "name": sub.name, "url": sub.url,
                "event_types": sub.event_types, "secret": secret}


@router.get("")
def list_all(registry: RegistryDep, _user: Admin) -> list[dict[str, Any]]:
    with transaction(registry.sessions) as session:
        return [{"id": str(s.id), "name": s.name, "url": s.url, "event_types": s.event_types,
                 "active": s.active} for s in subscriptions.list_subscriptions(session)]


@router.post("/{subscription_id}/deactivate", status_code=204)
def deactivate(subscription_id: uuid.UUID, registry: RegistryDep, user: Admin) -> None:
    with transaction(registry.sessions) as session:
        subscriptions.deactivate_subscription(session, subscription_id=subscription_id,
                                              actor=user.username)


@router.get("/dead-letters")
def dead_letters(registry: RegistryDep, _user: Admin) -> list[dict[str, Any]]:
    """Deliveries that failed `webhook_max_attempts` times."""
    with transaction(registry.sessions) as session:
        return delivery.dead_letters(session)


@router.post("/dead-letters/{delivery_id}/requeue", status_code=204)
def requeue(
    delivery_id: Annotated[int, Path(ge=1, le=2**63 - 1)], registry: RegistryDep, _user: Admin
) -> None:
    with transaction(registry.sessions) as session:
        delivery.requeue(session, delivery_id=delivery_id)
