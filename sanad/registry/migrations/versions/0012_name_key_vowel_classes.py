"""recompute the biographic blocking key with first-vowel classes

`latin_skeleton` now keeps only the class of a name's first vowel (e/i, o/u), so Omar and Umar,
Osama and Usama, Ibrahim and Ebrahim share a blocking key. Every stored `persons.name_key` is
recomputed with the current function, in keyset-paginated batches (a 1.45 M registry is read
once; only changed keys are written). No schema change; downgrade leaves the keys (the old
function would only split variants apart again, and the new keys are a superset match).
Import jobs keep their rows' exact-duplicate keys (`dedup_key`, a hash over the skeletons): a
row imported before the upgrade and again after it, with a vowel-initial name, is found as a
*probable* duplicate (same blocking key → adjudication) rather than skipped as an exact one.

Revision ID: 0012_name_key_vowel_classes
Revises: 0011_merge_heads
Create Date: 2026-11-26 19:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from sanad.abis.biographic import name_key

revision = "0012_name_key_vowel_classes"
down_revision = "0011_merge_heads"
branch_labels = None
depends_on = None

_BATCH = 5_000


def upgrade() -> None:
    conn = op.get_bind()
    persons = sa.table("persons", sa.column("id", sa.Uuid()), sa.column("given_name", sa.Text()),
                       sa.column("family_name", sa.Text()), sa.column("name_key", sa.Text()))
    update = (sa.update(persons).where(persons.c.id == sa.bindparam("pid"))
              .values(name_key=sa.bindparam("key")))
    last = None
    while True:
        query = (sa.select(persons.c.id, persons.c.given_name, persons.c.family_name,
                           persons.c.name_key).order_by(persons.c.id).limit(_BATCH))
        if last is not None:
            query = query.where(persons.c.id > last)
        rows = conn.execute(query).all()
        if not rows:
            return
        changed = [{"pid": pid, "key": key} for pid, given, family, old in rows
                   if (key := name_key(given, family)) != old]
        if changed:
            conn.execute(update, changed)
        last = rows[-1][0]


def downgrade() -> None:
    """Nothing to undo: the keys stay valid blocking keys."""
