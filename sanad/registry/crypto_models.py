"""ORM models of encryption at rest: per-record data keys and the erasure register.

A `DataKey` row holds one AES-256 data key (DEK) wrapped by a key-encryption key (KEK); the
sealed blob names the row by its 16-byte id. Deleting the row is crypto-shredding: every blob
sealed under that key, wherever a copy lives, becomes unreadable. `Erasure` and `ErasedRecord`
remember what lawful erasure removed (the gallery drops those ids when it catches up).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from sanad.registry.db import Base, UTCDateTime, utcnow


class DataKey(Base):
    """One wrapped data key; `subject` is whose data it protects (a person id)."""

    __tablename__ = "data_keys"

    id: Mapped[bytes] = mapped_column(LargeBinary(16), primary_key=True)
    subject: Mapped[str] = mapped_column(String(64), index=True)
    kek_id: Mapped[str] = mapped_column(String(64), index=True)
    wrapped: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    rewrapped_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Erasure(Base):
    """A lawful erasure: whose biometric data was shredded, why, by whom and when."""

    __tablename__ = "erasures"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    person_id: Mapped[uuid.UUID] = mapped_column(index=True)
    reason: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(80))
    keys_destroyed: Mapped[int] = mapped_column(Integer)
    records_deleted: Mapped[int] = mapped_column(Integer)
    erased_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)


class ErasedRecord(Base):
    """A gallery id (BiometricRecord id) removed by an erasure: every index must drop it."""

    __tablename__ = "erased_records"

    record_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    )
    erasure_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("erasures.id"), index=True)
