"""Identity graph and dedup: persons, identities, conflicts, decisions; complaint match keys.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from gateway.storage.schema import BigId, UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "persons",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("merged_into", sa.String(36), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_persons"),
    )
    op.create_table(
        "identities",
        sa.Column("id", BigId, nullable=False, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("value_hash", sa.String(64), nullable=False),
        sa.Column("value_enc", sa.Text(), nullable=False),
        sa.Column("person_id", sa.String(36), nullable=False),
        sa.Column("first_seen_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_identities"),
        sa.UniqueConstraint("kind", "value_hash", name="uq_identities_kind_value_hash"),
        sa.ForeignKeyConstraint(
            ["person_id"], ["persons.id"], name="fk_identities_person_id_persons"
        ),
    )
    op.create_index("ix_identities_person_id", "identities", ["person_id"])
    op.create_table(
        "identity_conflicts",
        sa.Column("id", BigId, nullable=False, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("value_hash", sa.String(64), nullable=False),
        sa.Column("person_id", sa.String(36), nullable=False),
        sa.Column("claimed_by_person_id", sa.String(36), nullable=False),
        sa.Column("raw_inbound_id", sa.String(36), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_identity_conflicts"),
    )
    op.create_table(
        "dedup_decisions",
        sa.Column("id", BigId, nullable=False, autoincrement=True),
        sa.Column("raw_inbound_id", sa.String(36), nullable=False),
        sa.Column("tier", sa.String(16), nullable=False),
        sa.Column("complaint_id", sa.String(36), nullable=True),
        sa.Column("matched_tracking_id", sa.String(12), nullable=True),
        sa.Column("person_id", sa.String(36), nullable=True),
        sa.Column("identity_kind", sa.String(16), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("candidates", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_dedup_decisions"),
        sa.UniqueConstraint("raw_inbound_id", name="uq_dedup_decisions_raw_inbound_id"),
    )
    with op.batch_alter_table("complaints") as batch:
        batch.add_column(sa.Column("person_id", sa.String(36), nullable=True))
        batch.add_column(sa.Column("sender_hash", sa.String(64), nullable=True))
        batch.add_column(
            sa.Column("match_tokens", sa.Text(), nullable=False, server_default=sa.text("''"))
        )
    op.create_index(
        "ix_complaints_person_id_received_at", "complaints", ["person_id", "received_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_complaints_person_id_received_at", table_name="complaints")
    with op.batch_alter_table("complaints") as batch:
        batch.drop_column("match_tokens")
        batch.drop_column("sender_hash")
        batch.drop_column("person_id")
    op.drop_table("dedup_decisions")
    op.drop_table("identity_conflicts")
    op.drop_index("ix_identities_person_id", table_name="identities")
    op.drop_table("identities")
    op.drop_table("persons")
