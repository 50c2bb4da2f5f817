"""cards remember which face capture they carry, and whether a newer one exists

`cards.face_record_id` is the biometric record whose face template was signed into the card's
QR (NULL: the card carries no face template). A person captured again after the card was issued
then has a newer face than the card in their hand, and the person page and the re-capture answer
say the card should be re-issued (docs/recapture.md). No foreign key, as for other references
to biometric records that erasure must be free to delete. `cards.face_outdated` marks an active
card whose holder has a newer face than it carries; a partial index keeps the re-issue queue a
read of the few flagged cards.

Cards issued before this revision are backfilled with the person's newest face record created
before the card was issued — the time of the card's `card.issue` audit event (microseconds,
written in the issuing transaction after the face was read), or, for a card without one, its
`issued_at` plus one second (stored to the second) — and flagged when a newer face record
exists, in keyset-paginated batches.

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
    op.add_column("cards", sa.Column("face_outdated", sa.Boolean(), nullable=False,
                                     server_default=sa.false()))
    op.create_index("ix_cards_face_outdated", "cards", ["face_outdated"],
                    postgresql_where=sa.text("face_outdated"),
                    sqlite_where=sa.text("face_outdated"))
    conn = op.get_bind()
    cards = sa.table("cards", sa.column("id", sa.Uuid()), sa.column("person_id", sa.Uuid()),
                     sa.column("issued_at", sa.DateTime()), sa.column("status", sa.String()),
                     sa.column("face_record_id", _ID), sa.column("face_outdated", sa.Boolean()))
    events = sa.table("audit_events", sa.column("action", sa.String()),
                      sa.column("subject_id", sa.String()), sa.column("at", sa.DateTime()))
    records = sa.table("biometric_records", sa.column("id", _ID),
                       sa.column("person_id", sa.Uuid()), sa.column("modality", sa.String()),
                       sa.column("created_at", sa.DateTime()))
    update = (sa.update(cards).where(cards.c.id == sa.bindparam("cid"))
              .values(face_record_id=sa.bindparam("rid"), face_outdated=sa.bindparam("old")))
    last = None
    while True:
        query = sa.select(cards.c.id, cards.c.person_id, cards.c.issued_at,
                          cards.c.status).order_by(cards.c.id).limit(_BATCH)
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
        audited = {sid: at for sid, at in conn.execute(
            sa.select(events.c.subject_id, events.c.at)
            .where(events.c.action == "card.issue",
                   events.c.subject_id.in_([str(r.id) for r in rows])))}
        changes = []
        for cid, pid, issued, status in rows:
            own = faces.get(pid, [])
            at = audited.get(str(cid))
            until = _naive(at) if at is not None else _naive(issued) + timedelta(seconds=1)
            carried = [rid for rid, created in own if _naive(created) <= until]
            rid = carried[-1] if carried else None
            old = status == "active" and bool(own) and own[-1][0] != rid
            if rid is not None or old:
                changes.append({"cid": cid, "rid": rid, "old": old})
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
    op.drop_index("ix_cards_face_outdated", table_name="cards")
    op.execute("ALTER TABLE cards DROP COLUMN face_outdated")
    op.execute("ALTER TABLE cards DROP COLUMN face_record_id")
