"""recompute imported records' exact-duplicate keys with the first-vowel name skeletons

0012 recomputed `persons.name_key` with the skeleton that keeps only the class of a name's first
vowel, but left `imported_records.dedup_key` (a hash over the row's skeletons, father's name,
birth date and sex) as it was: a legacy row imported before 0012 with a vowel-initial name
(Omar, Ibrahim) and imported again after it was found only as a *probable* duplicate (a needless
adjudication case) instead of being skipped as the same record. This revision recomputes each
key from the imported person's stored fields, in keyset-paginated batches, where that is exact:

* only for people whose record is unchanged since the import (version 1 — the stored fields
  are still the row's values);
* only where the key changes, and never onto a key another imported record already holds (two
  legacy rows that the new skeleton makes identical keep their keys: they are probable
  duplicates, which adjudication handles).

Downgrade leaves the keys: they are valid under the skeleton the code uses.

Revision ID: 0015_import_dedup_keys
Revises: 0014_held_captures
Create Date: 2026-11-27 01:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from sanad.registry.importer import dedup_key, name_key

revision = "0015_import_dedup_keys"
down_revision = "0014_held_captures"
branch_labels = None
depends_on = None

_BATCH = 5_000


def upgrade() -> None:
    conn = op.get_bind()
    records = sa.table("imported_records", sa.column("id", sa.BigInteger()),
                       sa.column("person_id", sa.Uuid()), sa.column("dedup_key", sa.String()))
    persons = sa.table("persons", sa.column("id", sa.Uuid()), sa.column("given_name", sa.Text()),
                       sa.column("family_name", sa.Text()), sa.column("father_name", sa.Text()),
                       sa.column("date_of_birth", sa.Date()),
                       sa.column("dob_precision", sa.String()), sa.column("sex", sa.String()),
                       sa.column("version", sa.Integer()))
    update = (sa.update(records).where(records.c.id == sa.bindparam("rid"))
              .values(dedup_key=sa.bindparam("key")))
    last = None
    while True:
        query = (sa.select(records.c.id, records.c.dedup_key, persons.c.given_name,
                           persons.c.family_name, persons.c.father_name,
                           persons.c.date_of_birth, persons.c.dob_precision, persons.c.sex)
                 .join(persons, persons.c.id == records.c.person_id)
                 .where(persons.c.version == 1).order_by(records.c.id).limit(_BATCH))
        if last is not None:
            query = query.where(records.c.id > last)
        rows = conn.execute(query).all()
        if not rows:
            return
        wanted = {}
        for r in rows:
            key = dedup_key({"name_key": name_key(r.given_name, r.family_name),
                             "father_name": r.father_name, "date_of_birth": r.date_of_birth,
                             "dob_precision": r.dob_precision, "sex": r.sex})
            if key != r.dedup_key:
                wanted[r.id] = key
        if wanted:
            taken = set(conn.execute(sa.select(records.c.dedup_key).where(
                records.c.dedup_key.in_(set(wanted.values())))).scalars())
            changes = []
            for rid, key in wanted.items():
                if key not in taken:
                    taken.add(key)
                    changes.append({"rid": rid, "key": key})
            if changes:
                conn.execute(update, changes)
        last = rows[-1].id


def downgrade() -> None:
    """Nothing to undo: the keys stay valid exact-duplicate keys."""
