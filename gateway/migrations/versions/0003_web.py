"""Web channel: per-IP rate limit counters shared by every replica.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from gateway.storage.schema import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "web_rate_limits",
        sa.Column("bucket", sa.String(160), nullable=False),
        sa.Column("window_start", sa.BigInteger(), nullable=False),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("bucket", name="pk_web_rate_limits"),
    )
    op.create_index("ix_web_rate_limits_updated_at", "web_rate_limits", ["updated_at"])


def downgrade() -> None:
    op.drop_index("ix_web_rate_limits_updated_at", table_name="web_rate_limits")
    op.drop_table("web_rate_limits")
