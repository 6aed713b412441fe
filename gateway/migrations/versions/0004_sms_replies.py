"""SMS channel: the durable reply outbox and the fragments waiting for their siblings.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from gateway.storage.schema import BigId, UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_PENDING = "status = 'pending'"
_OPEN = "closed_at IS NULL"


def upgrade() -> None:
    op.create_table(
        "sms_replies",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("raw_inbound_id", sa.String(36), nullable=False),
        sa.Column("bridge", sa.String(16), nullable=False),
        sa.Column("recipient", sa.Text(), nullable=False),
        sa.Column("sender_hash", sa.String(64), nullable=True),
        sa.Column("service_number", sa.String(32), nullable=True),
        sa.Column("smsc", sa.String(64), nullable=True),
        sa.Column("tracking_id", sa.String(12), nullable=True),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("claimed_by", sa.String(64), nullable=True),
        sa.Column("claim_expires", UTCDateTime(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.Column("provider_ref", sa.String(255), nullable=True),
        sa.Column("dlr_status", sa.String(32), nullable=True),
        sa.Column("dlr_at", UTCDateTime(), nullable=True),
        sa.Column("dlr_detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_sms_replies"),
        sa.UniqueConstraint("raw_inbound_id", name="uq_sms_replies_raw_inbound_id"),
    )
    op.create_index(
        "ix_sms_replies_pending",
        "sms_replies",
        ["next_attempt_at"],
        postgresql_where=sa.text(_PENDING),
        sqlite_where=sa.text(_PENDING),
    )
    op.create_index(
        "ix_sms_replies_sender_hash_created_at", "sms_replies", ["sender_hash", "created_at"]
    )
    op.create_index("ix_sms_replies_provider_ref", "sms_replies", ["provider_ref"])

    op.create_table(
        "sms_fragments",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("raw_inbound_id", sa.String(36), nullable=False),
        sa.Column("bridge", sa.String(16), nullable=False),
        sa.Column("group_key", sa.String(160), nullable=False),
        sa.Column("reference", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("meta", sa.JSON(), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("closed_at", UTCDateTime(), nullable=True),
        sa.Column("joined_raw_inbound_id", sa.String(36), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_sms_fragments"),
        sa.UniqueConstraint("raw_inbound_id", name="uq_sms_fragments_raw_inbound_id"),
    )
    op.create_index(
        "ix_sms_fragments_open",
        "sms_fragments",
        ["group_key"],
        postgresql_where=sa.text(_OPEN),
        sqlite_where=sa.text(_OPEN),
    )
    op.create_index(
        "ix_sms_fragments_open_created_at",
        "sms_fragments",
        ["created_at"],
        postgresql_where=sa.text(_OPEN),
        sqlite_where=sa.text(_OPEN),
    )


def downgrade() -> None:
    op.drop_index("ix_sms_fragments_open_created_at", table_name="sms_fragments")
    op.drop_index("ix_sms_fragments_open", table_name="sms_fragments")
    op.drop_table("sms_fragments")
    op.drop_index("ix_sms_replies_provider_ref", table_name="sms_replies")
    op.drop_index("ix_sms_replies_sender_hash_created_at", table_name="sms_replies")
    op.drop_index("ix_sms_replies_pending", table_name="sms_replies")
    op.drop_table("sms_replies")
