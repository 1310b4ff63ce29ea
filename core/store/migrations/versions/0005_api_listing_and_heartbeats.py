"""API listing index and scheduler heartbeats

- ``ix_experiments_created_id``: the API pages experiments newest first by (created_at, id)
  with a keyset cursor, so a page reads ``limit`` rows, not the whole table.
- ``scheduler_heartbeats``: each scheduler writes one row per tick; ``/readyz`` reads the
  newest beat to tell whether any scheduler is alive.

Revision ID: 0005_api_listing_and_heartbeats
Revises: 0004_share_links
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_api_listing_and_heartbeats"
down_revision = "0004_share_links"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_experiments_created_id", "experiments", ["created_at", "id"])
    op.create_table(
        "scheduler_heartbeats",
        sa.Column("scheduler_id", sa.String(length=100), primary_key=True),
        sa.Column("host", sa.String(length=200), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("beat_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_scheduler_heartbeats_beat_at", "scheduler_heartbeats", ["beat_at"])


def downgrade() -> None:
    op.drop_index("ix_scheduler_heartbeats_beat_at", table_name="scheduler_heartbeats")
    op.drop_table("scheduler_heartbeats")
    op.drop_index("ix_experiments_created_id", table_name="experiments")
