"""Correlation id of the request that created an experiment

- ``experiments.correlation_id``: the id the API/UI bound when the experiment was created
  (``core.observability.context``). The scheduler binds it while it steps the experiment, so
  the scheduler's log lines and spans for it carry the id of the request that started it.
  Nullable: experiments created before this revision have none.

Revision ID: 0006_experiment_correlation_id
Revises: 0005_api_listing_and_heartbeats
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_experiment_correlation_id"
down_revision = "0005_api_listing_and_heartbeats"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("experiments") as batch:
        batch.add_column(sa.Column("correlation_id", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("experiments") as batch:
        batch.drop_column("correlation_id")
