"""ORM models of the card organ besides `Card` itself: the status list and the print queue.

`StatusListState` is one row per issuer: the next free status index (handed out under a row
lock, so two concurrent issuances never share a bit), the list version (bumped by every
revocation) and the last signed list (cached so checkpoints downloading it do not make the
server sign on every request). `PrintJob` is a card's way through the print room:
requested → printed → collected, with retries and a reprint counter.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from sanad.registry.db import Base, UTCDateTime, utcnow


class StatusListState(Base):
    """Allocation counter, version and cached signed bytes of the status list (one row, id 1).

    One index space for the whole registry (cards.status_index is unique); the list is signed
    under the configured issuer name.
    """

    __tablename__ = "status_lists"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    next_index: Mapped[int] = mapped_column(Integer, default=0)
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    signed: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    signed_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    signed_kid: Mapped[str | None] = mapped_column(String(32), nullable=True)
    signed_issuer: Mapped[str | None] = mapped_column(String(80), nullable=True)


class PrintState(StrEnum):
    REQUESTED = "requested"
    PRINTED = "printed"
    COLLECTED = "collected"
    FAILED = "failed"
    CANCELLED = "cancelled"


class PrintJob(Base):
    """One card's printing: who asked, each attempt, who collected it and the proof shown."""

    __tablename__ = "print_jobs"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    card_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cards.id"), index=True)
    state: Mapped[str] = mapped_column(String(16), default=PrintState.REQUESTED, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    reprints: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    requested_by: Mapped[str] = mapped_column(String(80))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    printed_by: Mapped[str | None] = mapped_column(String(80), nullable=True)
    printed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    collected_by: Mapped[str | None] = mapped_column(String(120), nullable=True)
    collection_proof: Mapped[str | None] = mapped_column(Text, nullable=True)
    handed_over_by: Mapped[str | None] = mapped_column(String(80), nullable=True)
    collected_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    batch: Mapped[str | None] = mapped_column(String(40), nullable=True)
    pdf_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
