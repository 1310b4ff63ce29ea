"""share links: signed, expiring, read-only links to one experiment or pipeline version

Revision ID: 0004_share_links
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_share_links"
down_revision = "0003_accounts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "share_links",
        sa.Column("id", sa.String(length=32), primary_key=True),
        sa.Column("scope_kind", sa.String(length=20), nullable=False),
        sa.Column("scope_ref", sa.String(length=200), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.Column("revoked_by", sa.String(length=200), nullable=True),
    )
    op.create_index("ix_share_links_scope", "share_links", ["scope_kind", "scope_ref"])


def downgrade() -> None:
    op.drop_index("ix_share_links_scope", table_name="share_links")
    op.drop_table("share_links")
