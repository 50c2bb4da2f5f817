"""credentials: card lifecycle columns, status list state, print queue

Revision ID: 0002_credentials
Revises: 0001
Create Date: 2026-11-26 09:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0002_credentials'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('cards', schema=None) as batch_op:
        batch_op.add_column(sa.Column('status_index', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('issue_reason', sa.String(length=16), nullable=False,
                                      server_default='new'))
        batch_op.add_column(sa.Column('replaces_id', sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('revocation_reason', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('revoked_by', sa.String(length=80), nullable=True))
        batch_op.create_unique_constraint('uq_cards_status_index', ['status_index'])
        batch_op.create_foreign_key('fk_cards_replaces_id', 'cards', ['replaces_id'], ['id'])

    op.create_table('status_lists',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('next_index', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('signed', sa.LargeBinary(), nullable=True),
    sa.Column('signed_version', sa.Integer(), nullable=True),
    sa.Column('signed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('signed_kid', sa.String(length=32), nullable=True),
    sa.Column('signed_issuer', sa.String(length=80), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('print_jobs',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('card_id', sa.Uuid(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('reprints', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('requested_by', sa.String(length=80), nullable=False),
    sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('printed_by', sa.String(length=80), nullable=True),
    sa.Column('printed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('collected_by', sa.String(length=120), nullable=True),
    sa.Column('collection_proof', sa.Text(), nullable=True),
    sa.Column('handed_over_by', sa.String(length=80), nullable=True),
    sa.Column('collected_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('batch', sa.String(length=40), nullable=True),
    sa.Column('pdf_sha256', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['card_id'], ['cards.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('print_jobs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_print_jobs_card_id'), ['card_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_print_jobs_state'), ['state'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('print_jobs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_print_jobs_state'))
        batch_op.drop_index(batch_op.f('ix_print_jobs_card_id'))
    op.drop_table('print_jobs')
    op.drop_table('status_lists')
    with op.batch_alter_table('cards', schema=None) as batch_op:
        batch_op.drop_constraint('fk_cards_replaces_id', type_='foreignkey')
        batch_op.drop_constraint('uq_cards_status_index', type_='unique')
        batch_op.drop_column('revoked_by')
        batch_op.drop_column('revocation_reason')
        batch_op.drop_column('revoked_at')
        batch_op.drop_column('replaces_id')
        batch_op.drop_column('issue_reason')
        batch_op.drop_column('status_index')
