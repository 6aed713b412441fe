"""Intake spine: raw inbound, complaints, outbox, quarantine.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from gateway.storage.schema import BigId, UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "raw_inbound",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("provider_message_id", sa.String(255), nullable=False),
        sa.Column("parser", sa.String(64), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("stored_at", UTCDateTime(), nullable=False),
        sa.Column("content_type", sa.String(255), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=True),
        sa.Column("transport_meta", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("tracking_id", sa.String(12), nullable=True),
        sa.Column("complaint_id", sa.String(36), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_raw_inbound"),
        sa.UniqueConstraint(
            "channel", "provider_message_id", name="uq_raw_inbound_channel_provider_message_id"
        ),
    )
    op.create_index("ix_raw_inbound_tracking_id", "raw_inbound", ["tracking_id"])

    op.create_table(
        "complaints",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("tracking_id", sa.String(12), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("anonymous", sa.Boolean(), nullable=False),
        sa.Column("confidential", sa.Boolean(), nullable=False),
        sa.Column("reporter", sa.JSON(), nullable=False),
        sa.Column("location", sa.JSON(), nullable=True),
        sa.Column("attachments", sa.JSON(), nullable=False),
        sa.Column("occurred_on", sa.Date(), nullable=True),
        sa.Column("agency", sa.String(255), nullable=True),
        sa.Column("raw_inbound_id", sa.String(36), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_complaints"),
        sa.UniqueConstraint("tracking_id", name="uq_complaints_tracking_id"),
        sa.ForeignKeyConstraint(
            ["raw_inbound_id"], ["raw_inbound.id"], name="fk_complaints_raw_inbound_id_raw_inbound"
        ),
    )

    op.create_table(
        "outbox",
        sa.Column("id", BigId, nullable=False, autoincrement=True),
        sa.Column("message_id", sa.String(36), nullable=False),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("routing_key", sa.String(255), nullable=False),
        sa.Column("complaint_id", sa.String(36), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("claimed_by", sa.String(64), nullable=True),
        sa.Column("claim_expires", UTCDateTime(), nullable=True),
        sa.Column("published_at", UTCDateTime(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.UniqueConstraint("message_id", name="uq_outbox_message_id"),
    )
    op.create_index(
        "ix_outbox_pending",
        "outbox",
        ["id"],
        postgresql_where=sa.text("published_at IS NULL"),
        sqlite_where=sa.text("published_at IS NULL"),
    )

    op.create_table(
        "quarantine",
        sa.Column("id", BigId, nullable=False, autoincrement=True),
        sa.Column("raw_inbound_id", sa.String(36), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("stage", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("replay_count", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("last_replay_at", UTCDateTime(), nullable=True),
        sa.Column("last_replay_error", sa.Text(), nullable=True),
        sa.Column("resolved_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_quarantine"),
        sa.ForeignKeyConstraint(
            ["raw_inbound_id"], ["raw_inbound.id"], name="fk_quarantine_raw_inbound_id_raw_inbound"
        ),
    )
    op.create_index(
        "ix_quarantine_open",
        "quarantine",
        ["id"],
        postgresql_where=sa.text("resolved_at IS NULL"),
        sqlite_where=sa.text("resolved_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_table("quarantine")
    op.drop_table("outbox")
    op.drop_table("complaints")
    op.drop_table("raw_inbound")
