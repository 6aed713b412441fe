"""A duplicate's receipt names the earlier complaint only to its own sender:
``complaints.identity_hashes``, ``raw_inbound.shown`` and an index on
``raw_inbound (complaint_id)``.

A message the identity graph takes for an earlier complainant's only through what anyone may
type (a NIK, a phone number or an address on a form, in a text or a letter) is told an ID of its
own instead of the earlier complaint's (gateway.intake). The earlier complaint's own identities
say whom its ID may be told: an SMS from the phone number a web form gave, an e-mail from its
address. Their lookup hashes (the same HMACs ``identities.value_hash`` holds) are kept on the
complaint. Complaints stored before have NULL: only their transport's sender is compared.

``raw_inbound.shown``: what such a message's own ID shows of it, as a new complaint's would
(kind, agency, and its title and place unless it asked for confidentiality); the status pages
and Open311 showed nothing of it, which told whoever typed the NIK that their message had
joined something.

The index: the SMS telling a status change finds the IDs of the messages that joined the
complaint (``raw_inbound.tracking_id`` of its rows) without reading the table.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # Built without locking out writes: raw_inbound takes every message, and a plain CREATE
        # INDEX on a table of millions of rows would hold the intake of every replica still
        # running (503s) until it is done. CONCURRENTLY cannot run inside a transaction: what
        # the run did before is committed first (the earlier migrations, recorded). First, so
        # that a run cut short leaves nothing else half done; a build cut short leaves an
        # INVALID index, dropped here by the next run.
        with op.get_context().autocommit_block():
            op.execute("DROP INDEX CONCURRENTLY IF EXISTS ix_raw_inbound_complaint_id")
            op.create_index(
                "ix_raw_inbound_complaint_id",
                "raw_inbound",
                ["complaint_id"],
                postgresql_concurrently=True,
            )
    else:
        op.create_index("ix_raw_inbound_complaint_id", "raw_inbound", ["complaint_id"])
    with op.batch_alter_table("complaints") as batch:
        batch.add_column(sa.Column("identity_hashes", sa.Text(), nullable=True))
    with op.batch_alter_table("raw_inbound") as batch:
        batch.add_column(sa.Column("shown", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("raw_inbound") as batch:
        batch.drop_column("shown")
    op.drop_index("ix_raw_inbound_complaint_id", "raw_inbound")
    with op.batch_alter_table("complaints") as batch:
        batch.drop_column("identity_hashes")
