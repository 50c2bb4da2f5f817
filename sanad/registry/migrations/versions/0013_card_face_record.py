"""cards remember which face capture they carry

`cards.face_record_id` is the biometric record whose face template was signed into the card's
QR (NULL: the card carries no face template). A person captured again after the card was issued
then has a newer face than the card in their hand, and the person page and the re-capture answer
say the card should be re-issued (docs/recapture.md). No foreign key, as for other references
to biometric records that erasure must be free to delete.

Cards issued before this revision are backfilled with the person's newest face record created
no later than one second after the card was issued (`issued_at` is stored to the second, the
record to the microsecond), in keyset-paginated batches.

Revision ID: 0013_card_face_record
Revises: 0012_name_key_vowel_classes
Create Date: 2026-11-27 01:45:00
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision = "0013_card_face_record"
down_revision = "0012_name_key_vowel_classes"
branch_labels = None
depends_on = None

_BATCH = 5_000
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.add_column("cards", sa.Column("face_record_id", _ID, nullable=True))
    conn = op.get_bind()
    cards = sa.table("cards", sa.column("id", sa.Uuid()), sa.column("person_id", sa.Uuid()),
                     sa.column("issued_at", sa.DateTime()),
                     sa.column("face_record_id", _ID))
    records = sa.table("biometric_records", sa.column("id", _ID),
                       sa.column("person_id", sa.Uuid()), sa.column("modality", sa.String()),
                       sa.column("created_at", sa.DateTime()))
    update = (sa.update(cards).where(cards.c.id == sa.bindparam("cid"))
              .values(face_record_id=sa.bindparam("rid")))
    last = None
    while True:
        query = sa.select(cards.c.id, cards.c.person_id, cards.c.issued_at).order_by(
            cards.c.id).limit(_BATCH)
        if last is not None:
            query = query.where(cards.c.id > last)
        rows = conn.execute(query).all()
        if not rows:
            return
        faces: dict[object, list[tuple[int, datetime]]] = {}
        for rid, pid, created in conn.execute(
            sa.select(records.c.id, records.c.person_id, records.c.created_at)
            .where(records.c.modality == "face",
                   records.c.person_id.in_({r.person_id for r in rows}))
            .order_by(records.c.id)
        ):
            faces.setdefault(pid, []).append((rid, created))
        changes = []
        for cid, pid, issued in rows:
            carried = [rid for rid, created in faces.get(pid, [])
                       if _naive(created) <= _naive(issued) + timedelta(seconds=1)]
            if carried:
                changes.append({"cid": cid, "rid": carried[-1]})
        if changes:
            conn.execute(update, changes)
        last = rows[-1][0]


def _naive(value: datetime) -> datetime:
    """Timestamps compared without their zone: both sides come in the same one (SQLite's are
    naive UTC, PostgreSQL's aware in the session's zone)."""
    return value.replace(tzinfo=None)


def downgrade() -> None:
    # Plain ALTER on both databases (SQLite >= 3.35): a batch rebuild of `cards` would have
    # to drop a table that print jobs and other cards reference.
    op.execute("ALTER TABLE cards DROP COLUMN face_record_id")
