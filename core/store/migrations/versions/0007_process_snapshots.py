"""Stored process snapshots

- ``process_snapshots``: the history the intelligent node learns from (``phoenix snapshot
  add``, retrained on a schedule). One row per snapshot: Parquet bytes plus what listings show
  without reading them; one snapshot is stored once per scope (``scope``, ``sha256`` unique).

Revision ID: 0007_process_snapshots
Revises: 0006_experiment_correlation_id
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_process_snapshots"
down_revision = "0006_experiment_correlation_id"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "process_snapshots",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("scope", sa.String(length=100), nullable=False),
        sa.Column("taken_at", sa.DateTime(), nullable=False),
        sa.Column("added_at", sa.DateTime(), nullable=False),
        sa.Column("added_by", sa.String(length=200), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("hosts", sa.Integer(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("scrapes", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.UniqueConstraint("scope", "sha256", name="uq_process_snapshots_scope_sha256"),
    )
    op.create_index("ix_process_snapshots_scope_taken", "process_snapshots", ["scope", "taken_at"])


def downgrade() -> None:
    op.drop_index("ix_process_snapshots_scope_taken", table_name="process_snapshots")
    op.drop_table("process_snapshots")
