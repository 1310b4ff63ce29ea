"""initial schema

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-28 03:21:57.945329
"""

from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('app_settings',
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('value', sa.JSON(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('updated_by', sa.String(length=200), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_table('audit_log',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('action', sa.String(length=100), nullable=False),
    sa.Column('subject', sa.String(length=200), nullable=False),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_log_at'), ['at'], unique=False)

    op.create_table('collector_processes',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('owner_ref', sa.String(length=64), nullable=False),
    sa.Column('role', sa.String(length=50), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=False),
    sa.Column('port', sa.Integer(), nullable=True),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('collector_processes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_collector_processes_owner_ref'), ['owner_ref'], unique=False)

    op.create_table('experiments',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('owner', sa.String(length=200), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('baseline_pipeline', sa.String(length=200), nullable=False),
    sa.Column('baseline_version', sa.Integer(), nullable=True),
    sa.Column('candidate_pipeline', sa.String(length=200), nullable=False),
    sa.Column('candidate_version', sa.Integer(), nullable=True),
    sa.Column('target', sa.JSON(), nullable=False),
    sa.Column('load_profile', sa.JSON(), nullable=False),
    sa.Column('duration_s', sa.Float(), nullable=False),
    sa.Column('interval_s', sa.Float(), nullable=False),
    sa.Column('criteria', sa.JSON(), nullable=False),
    sa.Column('critical_policy', sa.JSON(), nullable=True),
    sa.Column('dry_run', sa.Boolean(), nullable=False),
    sa.Column('result', sa.JSON(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('runtime_info', sa.JSON(), nullable=False),
    sa.Column('needs_teardown', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=True),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('claimed_by', sa.String(length=100), nullable=True),
    sa.Column('lease_until', sa.DateTime(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('experiments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_experiments_state'), ['state'], unique=False)

    op.create_table('pipelines',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('builtin', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('experiment_events',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('experiment_id', sa.String(length=32), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('from_state', sa.String(length=20), nullable=False),
    sa.Column('to_state', sa.String(length=20), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['experiment_id'], ['experiments.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('experiment_id', 'seq', name='uq_experiment_event_seq')
    )
    with op.batch_alter_table('experiment_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_experiment_events_experiment_id'), ['experiment_id'], unique=False)

    op.create_table('measurement_samples',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('experiment_id', sa.String(length=32), nullable=False),
    sa.Column('variant', sa.String(length=20), nullable=False),
    sa.Column('t', sa.DateTime(), nullable=False),
    sa.Column('series', sa.BigInteger(), nullable=False),
    sa.Column('datapoints', sa.BigInteger(), nullable=False),
    sa.Column('bytes', sa.BigInteger(), nullable=False),
    sa.Column('collector_cpu_pct', sa.Float(), nullable=True),
    sa.Column('collector_rss_mb', sa.Float(), nullable=True),
    sa.Column('critical_coverage_pct', sa.Float(), nullable=True),
    sa.Column('processes_seen', sa.Integer(), nullable=True),
    sa.Column('series_created', sa.Integer(), nullable=True),
    sa.Column('series_removed', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['experiment_id'], ['experiments.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('measurement_samples', schema=None) as batch_op:
        batch_op.create_index('ix_samples_experiment_variant_t', ['experiment_id', 'variant', 't'], unique=False)

    op.create_table('pipeline_versions',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('pipeline_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('graph', sa.JSON(), nullable=False),
    sa.Column('collector_yaml', sa.Text(), nullable=False),
    sa.Column('commit_id', sa.String(length=64), nullable=True),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('author', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('computed', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['pipeline_id'], ['pipelines.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('pipeline_id', 'number', name='uq_pipeline_version_number')
    )
    with op.batch_alter_table('pipeline_versions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pipeline_versions_pipeline_id'), ['pipeline_id'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('pipeline_versions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pipeline_versions_pipeline_id'))

    op.drop_table('pipeline_versions')
    with op.batch_alter_table('measurement_samples', schema=None) as batch_op:
        batch_op.drop_index('ix_samples_experiment_variant_t')

    op.drop_table('measurement_samples')
    with op.batch_alter_table('experiment_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_experiment_events_experiment_id'))

    op.drop_table('experiment_events')
    op.drop_table('pipelines')
    with op.batch_alter_table('experiments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_experiments_state'))

    op.drop_table('experiments')
    with op.batch_alter_table('collector_processes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_collector_processes_owner_ref'))

    op.drop_table('collector_processes')
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_log_at'))

    op.drop_table('audit_log')
    op.drop_table('app_settings')

