"""merge the organ branches into one head

Each organ added its tables in a migration branching from 0001 (they were built in
parallel); this revision joins the branches so the schema has one head again and later
migrations have one parent. It changes no table.

Revision ID: 0011_merge_heads
Revises: 0002_credentials, 0004_access, 0006_crypto, 0010_kit
Create Date: 2026-11-26 12:50:00
"""

revision = "0011_merge_heads"
down_revision = ("0002_credentials", "0004_access", "0006_crypto", "0010_kit")
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing to do: a merge point."""


def downgrade() -> None:
    """Nothing to undo: a merge point."""
