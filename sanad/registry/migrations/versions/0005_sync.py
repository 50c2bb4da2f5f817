"""field kits, sync, imports, events, sharing (issue #6)

Revision ID: 0005_sync
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa


revision = "0005_sync"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('export_log',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('agreement_id', sa.Uuid(), nullable=True),
    sa.Column('actor', sa.String(length=80), nullable=False),
    sa.Column('rows', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('import_jobs',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('file_format', sa.String(length=8), nullable=False),
    sa.Column('mapping', sa.JSON(), nullable=False),
    sa.Column('source', sa.String(length=80), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('total_rows', sa.Integer(), nullable=True),
    sa.Column('imported', sa.Integer(), nullable=False),
    sa.Column('rejected', sa.Integer(), nullable=False),
    sa.Column('duplicates', sa.Integer(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_by', sa.String(length=80), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_import_jobs_status'), 'import_jobs', ['status'], unique=False)
    op.create_table('outbox_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('event_id', sa.Uuid(), nullable=False),
    sa.Column('event_type', sa.String(length=60), nullable=False),
    sa.Column('subject_id', sa.String(length=64), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('event_id')
    )
    op.create_index(op.f('ix_outbox_events_event_type'), 'outbox_events', ['event_type'], unique=False)
    op.create_table('sharing_agreements',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('recipient', sa.String(length=120), nullable=False),
    sa.Column('recipient_type', sa.String(length=20), nullable=False),
    sa.Column('recipient_country', sa.String(length=3), nullable=False),
    sa.Column('purpose', sa.String(length=60), nullable=False),
    sa.Column('fields', sa.JSON(), nullable=False),
    sa.Column('legal_basis', sa.Text(), nullable=False),
    sa.Column('impact_assessment', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_by', sa.String(length=80), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('valid_until', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_sharing_agreements_purpose'), 'sharing_agreements', ['purpose'], unique=False)
    op.create_table('sync_conflicts',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('packet_id', sa.Uuid(), nullable=False),
    sa.Column('station_id', sa.String(length=80), nullable=False),
    sa.Column('person_id', sa.Uuid(), nullable=False),
    sa.Column('base_version', sa.Integer(), nullable=False),
    sa.Column('central_version', sa.Integer(), nullable=False),
    sa.Column('changes', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('resolution', sa.String(length=16), nullable=True),
    sa.Column('resolved_by', sa.String(length=80), nullable=True),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_sync_conflicts_packet_id'), 'sync_conflicts', ['packet_id'], unique=False)
    op.create_index(op.f('ix_sync_conflicts_person_id'), 'sync_conflicts', ['person_id'], unique=False)
    op.create_index(op.f('ix_sync_conflicts_status'), 'sync_conflicts', ['status'], unique=False)
    op.create_table('sync_queue',
    sa.Column('packet_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('local_household_id', sa.Uuid(), nullable=True),
    sa.Column('envelope', sa.LargeBinary(), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('last_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('packet_id'),
    sa.UniqueConstraint('digest'),
    sa.UniqueConstraint('local_household_id')
    )
    op.create_table('sync_receipts',
    sa.Column('packet_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('local_household_id', sa.Uuid(), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('result', sa.JSON(), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('packet_id'),
    sa.UniqueConstraint('local_household_id')
    )
    op.create_table('sync_received_packets',
    sa.Column('packet_id', sa.Uuid(), nullable=False),
    sa.Column('station_id', sa.String(length=80), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('result', sa.JSON(), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('packet_id')
    )
    op.create_index(op.f('ix_sync_received_packets_station_id'), 'sync_received_packets', ['station_id'], unique=False)
    op.create_table('sync_state',
    sa.Column('key', sa.String(length=40), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_table('sync_stations',
    sa.Column('station_id', sa.String(length=80), nullable=False),
    sa.Column('site', sa.String(length=80), nullable=False),
    sa.Column('kid', sa.String(length=16), nullable=False),
    sa.Column('public_key', sa.LargeBinary(length=32), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('registered_by', sa.String(length=80), nullable=False),
    sa.Column('registered_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_by', sa.String(length=80), nullable=True),
    sa.PrimaryKeyConstraint('station_id'),
    sa.UniqueConstraint('kid')
    )
    op.create_table('webhook_subscriptions',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('url', sa.Text(), nullable=False),
    sa.Column('secret', sa.String(length=128), nullable=False),
    sa.Column('event_types', sa.JSON(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_by', sa.String(length=80), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('import_checkpoints',
    sa.Column('job_id', sa.Uuid(), nullable=False),
    sa.Column('last_row', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['import_jobs.id'], ),
    sa.PrimaryKeyConstraint('job_id')
    )
    op.create_table('import_row_errors',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('job_id', sa.Uuid(), nullable=False),
    sa.Column('row', sa.Integer(), nullable=False),
    sa.Column('field', sa.String(length=80), nullable=False),
    sa.Column('error', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['import_jobs.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_import_row_errors_job_id'), 'import_row_errors', ['job_id'], unique=False)
    op.create_table('outbox_deliveries',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('event_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('target', sa.String(length=60), nullable=False),
    sa.Column('subscription_id', sa.Uuid(), nullable=True),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['event_id'], ['outbox_events.id'], ),
    sa.ForeignKeyConstraint(['subscription_id'], ['webhook_subscriptions.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('event_id', 'target')
    )
    op.create_index('ix_outbox_deliveries_due', 'outbox_deliveries', ['status', 'next_attempt_at'], unique=False)
    op.create_index(op.f('ix_outbox_deliveries_event_id'), 'outbox_deliveries', ['event_id'], unique=False)
    op.create_table('sharing_approvals',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('agreement_id', sa.Uuid(), nullable=False),
    sa.Column('approver', sa.String(length=80), nullable=False),
    sa.Column('approved_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['agreement_id'], ['sharing_agreements.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('agreement_id', 'approver')
    )
    op.create_table('imported_records',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('job_id', sa.Uuid(), nullable=False),
    sa.Column('row', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(length=80), nullable=False),
    sa.Column('legacy_id', sa.String(length=80), nullable=True),
    sa.Column('household_ref', sa.String(length=80), nullable=True),
    sa.Column('person_id', sa.Uuid(), nullable=False),
    sa.Column('household_id', sa.Uuid(), nullable=False),
    sa.Column('dedup_key', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('dedup_key')
    )
    op.create_index('ix_imported_records_household_ref', 'imported_records', ['source', 'household_ref'], unique=False)
    op.create_index(op.f('ix_imported_records_job_id'), 'imported_records', ['job_id'], unique=False)
    op.create_index(op.f('ix_imported_records_person_id'), 'imported_records', ['person_id'], unique=False)
    op.create_table('sharing_consents',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('person_id', sa.Uuid(), nullable=False),
    sa.Column('purpose', sa.String(length=60), nullable=False),
    sa.Column('granted', sa.Boolean(), nullable=False),
    sa.Column('recorded_by', sa.String(length=80), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['person_id'], ['persons.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_sharing_consents_person_purpose', 'sharing_consents', ['person_id', 'purpose'], unique=False)


def downgrade() -> None:

    op.drop_index('ix_sharing_consents_person_purpose', table_name='sharing_consents')
    op.drop_table('sharing_consents')
    op.drop_index(op.f('ix_imported_records_person_id'), table_name='imported_records')
    op.drop_index(op.f('ix_imported_records_job_id'), table_name='imported_records')
    op.drop_index('ix_imported_records_household_ref', table_name='imported_records')
    op.drop_table('imported_records')
    op.drop_table('sharing_approvals')
    op.drop_index(op.f('ix_outbox_deliveries_event_id'), table_name='outbox_deliveries')
    op.drop_index('ix_outbox_deliveries_due', table_name='outbox_deliveries')
    op.drop_table('outbox_deliveries')
    op.drop_index(op.f('ix_import_row_errors_job_id'), table_name='import_row_errors')
    op.drop_table('import_row_errors')
    op.drop_table('import_checkpoints')
    op.drop_table('webhook_subscriptions')
    op.drop_table('sync_stations')
    op.drop_table('sync_state')
    op.drop_index(op.f('ix_sync_received_packets_station_id'), table_name='sync_received_packets')
    op.drop_table('sync_received_packets')
    op.drop_table('sync_receipts')
    op.drop_table('sync_queue')
    op.drop_index(op.f('ix_sync_conflicts_status'), table_name='sync_conflicts')
    op.drop_index(op.f('ix_sync_conflicts_person_id'), table_name='sync_conflicts')
    op.drop_index(op.f('ix_sync_conflicts_packet_id'), table_name='sync_conflicts')
    op.drop_table('sync_conflicts')
    op.drop_index(op.f('ix_sharing_agreements_purpose'), table_name='sharing_agreements')
    op.drop_table('sharing_agreements')
    op.drop_index(op.f('ix_outbox_events_event_type'), table_name='outbox_events')
    op.drop_table('outbox_events')
    op.drop_index(op.f('ix_import_jobs_status'), table_name='import_jobs')
    op.drop_table('import_jobs')
    op.drop_table('export_log')
