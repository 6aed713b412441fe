"""Status changes from the routing core: ``complaints.status_changed_at`` and
``complaint_status_events``.

Before, nothing changed a complaint's ``status`` after intake: ``/cek``, the API, Open311 and
SMS ``CEK`` said "received" for ever. gateway.status_feed now consumes the routing core's status
messages, keeps each one here (its AMQP message_id unique, so a redelivery changes nothing) and
sets the complaint's status and ``status_changed_at`` when it is the newest. A nullable column
and a new table on both databases; existing complaints keep their status, changed at NULL. An
index on ``sms_replies (tracking_id, kind)``: the status change's SMS finds the complaint's
receipts without reading the table.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from gateway.storage.schema import UTCDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("complaints") as batch:
        batch.add_column(sa.Column("status_changed_at", UTCDateTime(), nullable=True))
    op.create_table(
        "complaint_status_events",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("message_id", sa.String(80), nullable=False),
        sa.Column("complaint_id", sa.String(36), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("agency", sa.String(255), nullable=True),
        sa.Column("changed_at", UTCDateTime(), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("applied", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_complaint_status_events"),
        sa.UniqueConstraint("message_id", name="uq_complaint_status_events_message_id"),
    )
    op.create_index(
        "ix_complaint_status_events_complaint_id",
        "complaint_status_events",
        ["complaint_id", "changed_at"],
    )
    # The receipts of a complaint, read in the status change's transaction to tell the numbers.
    op.create_index("ix_sms_replies_tracking_id_kind", "sms_replies", ["tracking_id", "kind"])


def downgrade() -> None:
    op.drop_index("ix_sms_replies_tracking_id_kind", "sms_replies")
    op.drop_index("ix_complaint_status_events_complaint_id", "complaint_status_events")
    op.drop_table("complaint_status_events")
    with op.batch_alter_table("complaints") as batch:
        batch.drop_column("status_changed_at")
