"""ORM models of issue #6: field-kit sync, bulk import, events/notifications, sharing.

Centre side: `Station` (registered kits and their public keys), `ReceivedPacket` (idempotency
ledger of imported packets), `SyncConflict` (updates that lost a race with a central change).
Station side: `QueuedPacket` (the durable outbox of signed, encrypted packets), `SyncReceipt`
(what the centre answered, kept after the packet is purged), `SyncState` (last error, last
sync). Imports: `ImportJob`, `ImportCheckpoint`, `ImportRowError`, `ImportedRecord`. Events:
`OutboxEvent`, `Subscription`, `Delivery`. Sharing: `SharingAgreement`, `AgreementApproval`,
`Consent`, `ExportRecord`.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from sanad.registry.db import Base, UTCDateTime, utcnow
from sanad.registry.models import Person

_BigId = BigInteger().with_variant(Integer, "sqlite")


# --- field kits: centre side -------------------------------------------------------------


class Station(Base):
    """A field-kit station registered at the centre, identified by its Ed25519 key id."""

    __tablename__ = "sync_stations"

    station_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    site: Mapped[str] = mapped_column(String(80))
    kid: Mapped[str] = mapped_column(String(16), unique=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary(32))
    status: Mapped[str] = mapped_column(String(16), default="active")
    registered_by: Mapped[str] = mapped_column(String(80))
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoked_by: Mapped[str | None] = mapped_column(String(80), nullable=True)


class ReceivedPacket(Base):
    """One packet the centre has seen: the idempotency ledger (packet_id is the key)."""

    __tablename__ = "sync_received_packets"

    packet_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    station_id: Mapped[str] = mapped_column(String(80), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    digest: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20))
    result: Mapped[dict[str, Any]] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class SyncConflict(Base):
    """A station's change to a record that was updated centrally after the packet was made."""

    __tablename__ = "sync_conflicts"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    packet_id: Mapped[uuid.UUID] = mapped_column(index=True)
    station_id: Mapped[str] = mapped_column(String(80))
    person_id: Mapped[uuid.UUID] = mapped_column(index=True)
    base_version: Mapped[int] = mapped_column(Integer)
    central_version: Mapped[int] = mapped_column(Integer)
    changes: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    resolution: Mapped[str | None] = mapped_column(String(16), nullable=True)
    resolved_by: Mapped[str | None] = mapped_column(String(80), nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


# --- field kits: station side ------------------------------------------------------------


class QueuedPacket(Base):
    """The station's durable outbox: a sealed envelope waiting for the centre's receipt."""

    __tablename__ = "sync_queue"

    packet_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    # The local household a `household` packet carries (unique: queued at most once).
    local_household_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True, unique=True)
    envelope: Mapped[bytes] = mapped_column(LargeBinary)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class SyncReceipt(Base):
    """What the centre answered for a packet; kept (without personal data) after the purge."""

    __tablename__ = "sync_receipts"

    packet_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    local_household_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True, unique=True)
    status: Mapped[str] = mapped_column(String(20))
    result: Mapped[dict[str, Any]] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class SyncState(Base):
    """Small key/value state of a station (last error, last successful sync, revoked flag)."""

    __tablename__ = "sync_state"

    key: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


# --- bulk import ---------------------------------------------------------------------------


class ImportJob(Base):
    """A bulk import of a CSV / JSON Lines file, run by `sanad worker` (never in a request)."""

    __tablename__ = "import_jobs"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    path: Mapped[str] = mapped_column(Text)
    file_format: Mapped[str] = mapped_column(String(8))
    mapping: Mapped[dict[str, Any]] = mapped_column(JSON)
    source: Mapped[str] = mapped_column(String(80))
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    total_rows: Mapped[int | None] = mapped_column(Integer, nullable=True)
    imported: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    duplicates: Mapped[int] = mapped_column(Integer, default=0)
    # Rows imported but sent to adjudication as probable (biographic) duplicates.
    adjudication: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class ImportCheckpoint(Base):
    """Rows [1, last_row] of a job are done; written in the same transaction as each batch."""

    __tablename__ = "import_checkpoints"

    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("import_jobs.id"), primary_key=True)
    last_row: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


# Biographic blocking for bulk-import dedup (`importer.probable_duplicates`): a range scan per
# (name skeletons, precision, birth-date window) instead of every person sharing a common
# name. Declared here, with the import organ that needs it (migration 0010_kit).
Index("ix_persons_biographic_block", Person.name_key, Person.dob_precision,
      Person.date_of_birth)


class ImportRowError(Base):
    """One line of a validation report: row number (1-based data row), field, message."""

    __tablename__ = "import_row_errors"

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("import_jobs.id"), index=True)
    row: Mapped[int] = mapped_column(Integer)
    field: Mapped[str] = mapped_column(String(80))
    error: Mapped[str] = mapped_column(Text)


class ImportedRecord(Base):
    """Provenance of an imported person and the biographic key that deduplicates imports.

    No foreign keys, on purpose: a per-row FK check costs more than the rest of the insert
    at millions of rows, and provenance must not block erasure of a person (the erasure
    service deletes these rows with the person; see docs/interop.md).
    """

    __tablename__ = "imported_records"
    __table_args__ = (Index("ix_imported_records_household_ref", "source", "household_ref"),)

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    job_id: Mapped[uuid.UUID] = mapped_column(index=True)
    row: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(80))
    legacy_id: Mapped[str | None] = mapped_column(String(80), nullable=True)
    household_ref: Mapped[str | None] = mapped_column(String(80), nullable=True)
    person_id: Mapped[uuid.UUID] = mapped_column(index=True)
    household_id: Mapped[uuid.UUID] = mapped_column()
    dedup_key: Mapped[str] = mapped_column(String(64), unique=True)


# --- events and notifications ----------------------------------------------------------------


class OutboxEvent(Base):
    """A domain event written in the same transaction as the change it describes."""

    __tablename__ = "outbox_events"

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    event_id: Mapped[uuid.UUID] = mapped_column(unique=True, default=uuid.uuid4)
    event_type: Mapped[str] = mapped_column(String(60), index=True)
    subject_id: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Subscription(Base):
    """A local system subscribed to event types; deliveries are HMAC-signed with `secret`."""

    __tablename__ = "webhook_subscriptions"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    url: Mapped[str] = mapped_column(Text)
    secret: Mapped[str] = mapped_column(String(128))
    event_types: Mapped[list[str]] = mapped_column(JSON)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Delivery(Base):
    """One event to one target (a subscription, or the notification sender when null)."""

    __tablename__ = "outbox_deliveries"
    __table_args__ = (
        UniqueConstraint("event_id", "target"),
        Index("ix_outbox_deliveries_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("outbox_events.id"), index=True)
    # "webhook:<subscription uuid>" or "notify"
    target: Mapped[str] = mapped_column(String(60))
    subscription_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("webhook_subscriptions.id"), nullable=True
    )
    status: Mapped[str] = mapped_column(String(12), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


# --- sharing safeguards ----------------------------------------------------------------------


class SharingAgreement(Base):
    """A data-sharing agreement; record exports need it `approved` (two different admins)."""

    __tablename__ = "sharing_agreements"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    recipient: Mapped[str] = mapped_column(String(120))
    recipient_type: Mapped[str] = mapped_column(String(20))
    recipient_country: Mapped[str] = mapped_column(String(3))
    purpose: Mapped[str] = mapped_column(String(60), index=True)
    fields: Mapped[list[str]] = mapped_column(JSON)
    legal_basis: Mapped[str] = mapped_column(Text)
    impact_assessment: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="proposed")
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class AgreementApproval(Base):
    """One admin's approval of an agreement (unique per admin: two approvals = two people)."""

    __tablename__ = "sharing_approvals"
    __table_args__ = (UniqueConstraint("agreement_id", "approver"),)

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    agreement_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sharing_agreements.id"))
    approver: Mapped[str] = mapped_column(String(80))
    approved_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Consent(Base):
    """A person's consent to sharing for one purpose; the latest row per purpose counts."""

    __tablename__ = "sharing_consents"
    __table_args__ = (Index("ix_sharing_consents_person_purpose", "person_id", "purpose"),)

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    person_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("persons.id"))
    purpose: Mapped[str] = mapped_column(String(60))
    granted: Mapped[bool] = mapped_column(Boolean)
    recorded_by: Mapped[str] = mapped_column(String(80))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ExportRecord(Base):
    """Every export (aggregate or records): who, what, for which agreement, how many rows."""

    __tablename__ = "export_log"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    kind: Mapped[str] = mapped_column(String(20))
    agreement_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    actor: Mapped[str] = mapped_column(String(80))
    rows: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
