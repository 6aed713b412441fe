"""Events queued again for publication (``lapor-gateway outbox republish``).

``queued_at`` is set when an operator puts published events back in the outbox (the routing core
lost them); the lag of ``/readyz``, ``outbox status`` and the metrics counts from it for those
rows, not from the day they were first committed. NULL for every other row.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from gateway.storage.schema import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("outbox", sa.Column("queued_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    op.drop_column("outbox", "queued_at")  # SQLite 3.35 and later drop a column in place
