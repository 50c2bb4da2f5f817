"""held re-captures: a capture that did not verify, kept sealed for an adjudicator

A registration officer may send a re-capture that does not verify against the enrolled
biometrics (a child's face after two years, no fingers to help) to an adjudicator instead of
discarding it. The capture waits in `held_captures`, sealed under the person's data key and
outside the gallery, until its `recapture` case accepts it onto the person or discards it
(docs/recapture.md).

Revision ID: 0014_held_captures
Revises: 0013_card_face_record
Create Date: 2026-11-27 01:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014_held_captures"
down_revision = "0013_card_face_record"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "held_captures",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("person_id", sa.Uuid(), sa.ForeignKey("persons.id"), nullable=False),
        sa.Column("case_id", sa.Uuid(), sa.ForeignKey("adjudication_cases.id"), nullable=False,
                  unique=True),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("verification", sa.JSON(), nullable=False),
        sa.Column("officer", sa.String(80), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_held_captures_person_id", "held_captures", ["person_id"])


def downgrade() -> None:
    op.drop_index("ix_held_captures_person_id", table_name="held_captures")
    op.drop_table("held_captures")
