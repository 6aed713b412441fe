"""A duplicate's receipt names the earlier complaint only to its own sender:
``complaints.identity_hashes``, ``raw_inbound.shown`` and two indexes on ``raw_inbound``.

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

The indexes: the SMS telling a status change finds the IDs of the messages that joined the
complaint (``raw_inbound.tracking_id`` of its rows), and Open311's listing by date the own IDs
received in its window, without reading the table.

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

# The messages that joined a complaint (their IDs, for status SMS); those told an ID of their
# own, by arrival (Open311's listing by date).
_INDEXES = (
    ("ix_raw_inbound_complaint_id", "complaint_id", None),
    ("ix_raw_inbound_own_ids", "received_at", "shown IS NOT NULL"),
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # Without locking out writes: raw_inbound takes every message, and a plain CREATE INDEX
        # on a table of millions of rows would hold the intake of every replica still running
        # (503s) until it is done. CONCURRENTLY cannot run inside a transaction, so this runs
        # outside one (what the run did before is committed first: the earlier migrations,
        # recorded), every step such that a run cut short can be run again: a column already
        # added is left, an index a build cut short left INVALID is dropped and built again.
        with op.get_context().autocommit_block():
            # Adding a nullable column changes only the catalogue, but it needs the table to
            # itself for that instant: behind a long transaction it would queue every insert
            # behind it. It gives up after a few seconds instead (run migrate again).
            op.execute("SET lock_timeout = '5s'")
            op.execute("ALTER TABLE complaints ADD COLUMN IF NOT EXISTS identity_hashes TEXT")
            op.execute("ALTER TABLE raw_inbound ADD COLUMN IF NOT EXISTS shown JSON")
            op.execute("RESET lock_timeout")
            for name, column, where in _INDEXES:
                op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
                op.create_index(
                    name,
                    "raw_inbound",
                    [column],
                    postgresql_concurrently=True,
                    postgresql_where=None if where is None else sa.text(where),
                )
        return
    with op.batch_alter_table("complaints") as batch:
        batch.add_column(sa.Column("identity_hashes", sa.Text(), nullable=True))
    with op.batch_alter_table("raw_inbound") as batch:
        batch.add_column(sa.Column("shown", sa.JSON(), nullable=True))
    for name, column, where in _INDEXES:
        op.create_index(
            name, "raw_inbound", [column], sqlite_where=None if where is None else sa.text(where)
        )


def downgrade() -> None:
    for name, _, _ in _INDEXES:
        op.drop_index(name, "raw_inbound")
    with op.batch_alter_table("raw_inbound") as batch:
        batch.drop_column("shown")
    with op.batch_alter_table("complaints") as batch:
        batch.drop_column("identity_hashes")
