"""encryption at rest: data keys, erasure register

Revision ID: 0006_crypto
Revises: 0001
Create Date: 2026-11-26 08:50:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0006_crypto'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('data_keys',
    sa.Column('id', sa.LargeBinary(length=16), nullable=False),
    sa.Column('subject', sa.String(length=64), nullable=False),
    sa.Column('kek_id', sa.String(length=64), nullable=False),
    sa.Column('wrapped', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('rewrapped_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('data_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_data_keys_subject'), ['subject'], unique=False)
        batch_op.create_index(batch_op.f('ix_data_keys_kek_id'), ['kek_id'], unique=False)

    op.create_table('erasures',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('person_id', sa.Uuid(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('actor', sa.String(length=80), nullable=False),
    sa.Column('keys_destroyed', sa.Integer(), nullable=False),
    sa.Column('records_deleted', sa.Integer(), nullable=False),
    sa.Column('erased_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('erasures', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_erasures_person_id'), ['person_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_erasures_erased_at'), ['erased_at'], unique=False)

    op.create_table('erased_records',
    sa.Column('record_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.Column('erasure_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['erasure_id'], ['erasures.id'], ),
    sa.PrimaryKeyConstraint('record_id')
    )
    with op.batch_alter_table('erased_records', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_erased_records_erasure_id'), ['erasure_id'], unique=False)


def downgrade() -> None:
    op.drop_table('erased_records')
    op.drop_table('erasures')
    op.drop_table('data_keys')
