"""kit: import probable-duplicate counter, biographic blocking index

Revision ID: 0010_kit
Revises: 0005_sync, 0007_adjudication
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_kit"
# Merges the sync (import_jobs) and adjudication (persons.name_key) branches, whose tables
# this revision changes: `depends_on` across branches of one base trips Alembic (KeyError).
down_revision = ("0005_sync", "0007_adjudication")
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("import_jobs") as batch:
        batch.add_column(
            sa.Column("adjudication", sa.Integer(), nullable=False, server_default="0")
        )
    op.create_index("ix_persons_biographic_block", "persons",
                    ["name_key", "dob_precision", "date_of_birth"])


def downgrade() -> None:
    op.drop_index("ix_persons_biographic_block", table_name="persons")
    with op.batch_alter_table("import_jobs") as batch:
        batch.drop_column("adjudication")
