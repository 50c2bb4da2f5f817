"""ORM models of the officer application: API keys, idempotency records, status changes, photos.

No business logic here: see `sanad.registry.users` (API keys), `sanad.registry.idempotency`,
`sanad.registry.status_changes` and `sanad.registry.photos`.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from sanad.registry.db import Base, UTCDateTime, utcnow


class ApiKey(Base):
    """A role-scoped key for another system. Only the SHA-256 of the secret is stored; the
    public `prefix` finds the row and is safe to show in lists and logs."""

    __tablename__ = "api_keys"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    roles: Mapped[list[str]] = mapped_column(JSON)
    rate_per_minute: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class IdempotencyRecord(Base):
    """The stored answer to a POST sent with an `Idempotency-Key` (scoped per caller)."""

    __tablename__ = "idempotency_keys"

    principal: Mapped[str] = mapped_column(String(80), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response_body: Mapped[str] = mapped_column(Text)
    response_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class StatusChange(Base):
    """One reversible change of a person's civil status or of a household's head.

    `kind` is `deceased`, `reactivated` or `head_changed`; `before`/`after` hold what is needed
    to undo it. A reversal is itself a change whose `reverts` names the undone one.
    """

    __tablename__ = "status_changes"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    household_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("households.id"), index=True)
    person_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("persons.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    before: Mapped[dict[str, str]] = mapped_column(JSON)
    after: Mapped[dict[str, str]] = mapped_column(JSON)
    reason: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(80))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    reverts: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("status_changes.id"), nullable=True
    )
    reverted_by: Mapped[uuid.UUID | None] = mapped_column(nullable=True)


class PersonPhoto(Base):
    """The portrait captured at enrolment, kept for the printed card and the adjudicator.
    (The biometric template lives sealed in `biometric_records`; this is the picture.)"""

    __tablename__ = "person_photos"

    person_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("persons.id"), primary_key=True)
    content_type: Mapped[str] = mapped_column(String(40))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
