"""adjudication: two-person rule, judged pairs, biographic key, biometric exceptions

Revision ID: 0007_adjudication
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_adjudication"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("persons") as batch:
        batch.add_column(sa.Column("name_key", sa.String(120), nullable=False, server_default=""))
        batch.add_column(sa.Column("duplicate_of", sa.Uuid(), nullable=True))
        batch.add_column(sa.Column("biometrics_refused_reason", sa.Text(), nullable=True))
        batch.create_index("ix_persons_name_key", ["name_key"])
        batch.create_foreign_key("fk_persons_duplicate_of", "persons", ["duplicate_of"], ["id"])
    with op.batch_alter_table("adjudication_cases") as batch:
        batch.alter_column("status", type_=sa.String(24), existing_type=sa.String(16))
        batch.add_column(
            sa.Column("kind", sa.String(20), nullable=False, server_default="biometric")
        )
        batch.add_column(
            sa.Column("needs_second", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("first_decision", sa.String(20), nullable=True))
        batch.add_column(sa.Column("first_reason", sa.Text(), nullable=True))
        batch.add_column(sa.Column("first_decided_by", sa.String(80), nullable=True))
        batch.add_column(sa.Column("first_decided_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "adjudicated_pairs",
        sa.Column("person_a", sa.Uuid(), sa.ForeignKey("persons.id"), primary_key=True),
        sa.Column("person_b", sa.Uuid(), sa.ForeignKey("persons.id"), primary_key=True),
        sa.Column("version_a", sa.Integer(), nullable=False),
        sa.Column("version_b", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Uuid(), sa.ForeignKey("adjudication_cases.id"), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "biometric_exceptions",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("person_id", sa.Uuid(), sa.ForeignKey("persons.id"), nullable=False),
        sa.Column("modality", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(40), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_biometric_exceptions_person_id", "biometric_exceptions", ["person_id"])


def downgrade() -> None:
    op.drop_index("ix_biometric_exceptions_person_id", "biometric_exceptions")
    op.drop_table("biometric_exceptions")
    op.drop_table("adjudicated_pairs")
    with op.batch_alter_table("adjudication_cases") as batch:
        for col in ("first_decided_at", "first_decided_by", "first_reason", "first_decision",
                    "needs_second", "kind"):
            batch.drop_column(col)
    with op.batch_alter_table("persons") as batch:
        batch.drop_constraint("fk_persons_duplicate_of", type_="foreignkey")
        batch.drop_index("ix_persons_name_key")
        for col in ("biometrics_refused_reason", "duplicate_of", "name_key"):
            batch.drop_column(col)
