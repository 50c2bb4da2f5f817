"""ORM models: one class per aggregate table. No business logic here (see the services)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from sanad.registry.db import Base, UTCDateTime, utcnow


class DobPrecision(StrEnum):
    EXACT = "exact"
    YEAR = "year"
    ESTIMATED = "estimated"


class Sex(StrEnum):
    MALE = "M"
    FEMALE = "F"
    OTHER = "X"


class PersonStatus(StrEnum):
    ACTIVE = "active"
    PENDING_ADJUDICATION = "pending_adjudication"
    # Adjudicated as the same person as `duplicate_of`; kept for history, never carded.
    LINKED = "linked"
    # Imported from a legacy register: no card before biometric enrolment.
    PENDING_BIOMETRICS = "pending_biometrics"
    # Surrendered their card on voluntary return; record kept per retention policy.
    RETURNED = "returned"
    DECEASED = "deceased"


class Role(StrEnum):
    REGISTRATION_OFFICER = "registration_officer"
    ADJUDICATOR = "adjudicator"
    CARD_OFFICER = "card_officer"
    VERIFIER = "verifier"
    AUDITOR = "auditor"
    ADMIN = "admin"


class Household(Base):
    __tablename__ = "households"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    registration_number: Mapped[str] = mapped_column(String(12), unique=True)
    province: Mapped[str] = mapped_column(String(80))
    district: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    members: Mapped[list[Person]] = relationship(
        back_populates="household", order_by="Person.member_no"
    )


class Person(Base):
    __tablename__ = "persons"
    __table_args__ = (UniqueConstraint("household_id", "member_no"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    household_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("households.id"), index=True)
    member_no: Mapped[int] = mapped_column(Integer)
    registration_number: Mapped[str] = mapped_column(String(12), unique=True)
    relationship_to_head: Mapped[str] = mapped_column(String(20))
    given_name: Mapped[str] = mapped_column(String(100))
    family_name: Mapped[str] = mapped_column(String(100))
    father_name: Mapped[str] = mapped_column(String(100), default="")
    given_name_ar: Mapped[str] = mapped_column(String(100), default="")
    family_name_ar: Mapped[str] = mapped_column(String(100), default="")
    father_name_ar: Mapped[str] = mapped_column(String(100), default="")
    date_of_birth: Mapped[date] = mapped_column(Date)
    dob_precision: Mapped[str] = mapped_column(String(10))
    sex: Mapped[str] = mapped_column(String(1))
    nationality: Mapped[str] = mapped_column(String(3))
    province: Mapped[str] = mapped_column(String(80), index=True)
    district: Mapped[str] = mapped_column(String(80))
    phone: Mapped[str | None] = mapped_column(String(20), nullable=True)
    status: Mapped[str] = mapped_column(String(24), default=PersonStatus.ACTIVE)
    version: Mapped[int] = mapped_column(Integer, default=1)
    # Biographic blocking key (normalised name skeletons) for biographic deduplication.
    name_key: Mapped[str] = mapped_column(String(120), default="", index=True)
    duplicate_of: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("persons.id"), nullable=True
    )
    biometrics_refused_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    household: Mapped[Household] = relationship(back_populates="members")
    biometrics: Mapped[list[BiometricRecord]] = relationship(back_populates="person")
    cards: Mapped[list[Card]] = relationship(back_populates="person", order_by="Card.issued_at")


class Enrolment(Base):
    """Who enrolled a household, when, where and at which station, and what dedup decided."""

    __tablename__ = "enrolments"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    household_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("households.id"), index=True)
    officer: Mapped[str] = mapped_column(String(80))
    site: Mapped[str] = mapped_column(String(80))
    station: Mapped[str] = mapped_column(String(80))
    enrolled_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    outcome: Mapped[str] = mapped_column(String(20))


class BiometricRecord(Base):
    """One sealed template. The integer `id` is the opaque gallery id and the index watermark."""

    __tablename__ = "biometric_records"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    person_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("persons.id"), index=True)
    modality: Mapped[str] = mapped_column(String(16))
    template: Mapped[bytes] = mapped_column(LargeBinary)
    quality: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    person: Mapped[Person] = relationship(back_populates="biometrics")


class Card(Base):
    __tablename__ = "cards"
    # The re-issue queue reads only flagged cards (few), never all 1.45 M.
    __table_args__ = (Index("ix_cards_face_outdated", "face_outdated",
                            postgresql_where=text("face_outdated"),
                            sqlite_where=text("face_outdated")),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    person_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("persons.id"), index=True)
    card_number: Mapped[str] = mapped_column(String(9), unique=True)
    cti: Mapped[bytes] = mapped_column(LargeBinary(16), unique=True)
    kid: Mapped[str] = mapped_column(String(32))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16), default="active")
    qr: Mapped[str] = mapped_column(Text)
    mrz: Mapped[str] = mapped_column(String(92))
    issued_by: Mapped[str] = mapped_column(String(80))
    # Bit of this card in its issuer's signed status list (sanad.registry.status_list); set in
    # the issuing transaction, so a card never exists without a way to revoke it offline.
    status_index: Mapped[int | None] = mapped_column(Integer, nullable=True, unique=True)
    # new | renewal | replacement | update (why this card was issued)
    issue_reason: Mapped[str] = mapped_column(String(16), default="new")
    # The face capture (biometric record) whose template is signed into the QR; None: no face
    # template on the card. No foreign key: erasure deletes biometric records freely.
    face_record_id: Mapped[int | None] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), nullable=True)
    # Set when the holder's newest face capture changed after this card was issued (a
    # re-capture, a first capture, captures moved onto them by a link): re-issue it.
    face_outdated: Mapped[bool] = mapped_column(Boolean, default=False)
    replaces_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("cards.id"), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # lost | surrendered | deceased | fraud | superseded | duplicate (linked to another identity)
    revocation_reason: Mapped[str | None] = mapped_column(String(16), nullable=True)
    revoked_by: Mapped[str | None] = mapped_column(String(80), nullable=True)

    person: Mapped[Person] = relationship(back_populates="cards")


class AdjudicationCase(Base):
    """A possible duplicate waiting for (or decided by) a human adjudicator."""

    __tablename__ = "adjudication_cases"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    person_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("persons.id"), index=True)
    candidates: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(24), default="open", index=True)
    # Why the case exists: biometric score in the review band, an officer's override of a
    # duplicate, or biometrics refused/missing (mandatory adjudication).
    kind: Mapped[str] = mapped_column(String(20), default="biometric")
    # Two-person rule: overriding a candidate at/above the match threshold as "different"
    # needs a second adjudicator; the first opinion is kept here.
    needs_second: Mapped[bool] = mapped_column(Boolean, default=False)
    first_decision: Mapped[str | None] = mapped_column(String(20), nullable=True)
    first_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    first_decided_by: Mapped[str | None] = mapped_column(String(80), nullable=True)
    first_decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    decision: Mapped[str | None] = mapped_column(String(20), nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(80), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class HeldCapture(Base):
    """A re-capture that did not verify, held (sealed, outside the gallery) for an adjudicator
    at the officer's request: accepted onto the person or discarded by its `recapture` case
    (docs/recapture.md). Sealed under the person's data key, so an erasure shreds it too."""

    __tablename__ = "held_captures"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    person_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("persons.id"), index=True)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("adjudication_cases.id"), unique=True)
    # The capture as the API takes it (`BiometricsUpdate` JSON, the face as its template),
    # sealed with AAD ``<person id>:held``.
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    # The failed 1:1 verification: face_score, finger_llr, fingers_compared, offered, why.
    verification: Mapped[dict[str, Any]] = mapped_column(JSON)
    officer: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AdjudicatedPair(Base):
    """A pair an adjudicator judged "not the same person", at both records' versions.

    The pair is not raised again unless either record changes (its version moves on).
    """

    __tablename__ = "adjudicated_pairs"

    person_a: Mapped[uuid.UUID] = mapped_column(ForeignKey("persons.id"), primary_key=True)
    person_b: Mapped[uuid.UUID] = mapped_column(ForeignKey("persons.id"), primary_key=True)
    version_a: Mapped[int] = mapped_column(Integer)
    version_b: Mapped[int] = mapped_column(Integer)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("adjudication_cases.id"))
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class BiometricException(Base):
    """A biometric that could not be captured, per finger (or face), with the reason."""

    __tablename__ = "biometric_exceptions"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    person_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("persons.id"), index=True)
    modality: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(40))
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class User(Base):
    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    roles: Mapped[list[str]] = mapped_column(JSON)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ApiToken(Base):
    """A bearer token (stored as its SHA-256 only) for a user session or a system."""

    __tablename__ = "api_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AuditEvent(Base):
    """Append-only, hash-chained: `hash` = SHA-256(prev_hash ‖ canonical row)."""

    __tablename__ = "audit_events"

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(60), index=True)
    subject_type: Mapped[str] = mapped_column(String(30))
    subject_id: Mapped[str] = mapped_column(String(64), index=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """Single row holding the chain's tip; locked FOR UPDATE so concurrent appends serialise."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    last_hash: Mapped[str] = mapped_column(String(64))
