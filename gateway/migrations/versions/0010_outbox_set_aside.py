"""Events set aside: ``outbox_set_aside``, for the outbox events no relay can open.

An event sealed under a data key no replica has any more, or damaged, stayed pending for ever:
given back by every relay at each batch and counted as a ``data-key`` error, so the alert
LaporRelayDataKey never stopped. ``lapor-gateway outbox set-aside`` moves such an event here
(its outbox columns as they were, with when and why), out of the relays' way;
``lapor-gateway outbox restore`` puts it back, pending, with its message_id and body. A plain
CREATE TABLE on both databases.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from gateway.storage.schema import UTCDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outbox_set_aside",
        sa.Column("message_id", sa.String(36), nullable=False),
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("routing_key", sa.String(255), nullable=False),
        sa.Column("complaint_id", sa.String(36), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("sealed", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("claimed_by", sa.String(64), nullable=True),
        sa.Column("claim_expires", UTCDateTime(), nullable=True),
        sa.Column("published_at", UTCDateTime(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("queued_at", UTCDateTime(), nullable=True),
        sa.Column("set_aside_at", UTCDateTime(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("message_id", name="pk_outbox_set_aside"),
    )


def downgrade() -> None:
    # The events set aside exist nowhere else: refuse rather than drop them with the table.
    bind = op.get_bind()
    held = sa.table("outbox_set_aside", sa.column("message_id", sa.String))
    if bind.execute(sa.select(held.c.message_id).limit(1)).first():
        raise RuntimeError(
            "outbox_set_aside holds events; put them back with `lapor-gateway outbox restore`"
            " (or copy the table) before downgrading below 0010"
        )
    op.drop_table("outbox_set_aside")
