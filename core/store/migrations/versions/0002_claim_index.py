"""index for the scheduler's claim: experiments awaiting teardown

The claim selects ``state IN (active) OR needs_teardown``; with ``state`` indexed and
this small partial index PostgreSQL answers it with a BitmapOr instead of a sequential
scan of every experiment ever stored (bench/load.py: 14-45 ms at 10,000 experiments,
growing with history, → well under 1 ms).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("experiments", schema=None) as batch_op:
        batch_op.create_index("ix_experiments_needs_teardown", ["needs_teardown"], unique=False,
                              postgresql_where=sa.text("needs_teardown"), sqlite_where=sa.text("needs_teardown"))


def downgrade() -> None:
    with op.batch_alter_table("experiments", schema=None) as batch_op:
        batch_op.drop_index("ix_experiments_needs_teardown")
