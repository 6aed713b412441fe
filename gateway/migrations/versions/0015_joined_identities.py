"""``dedup_decisions.identity_hashes``: the identities a message that joined a complaint carried.

A message told an ID of its own when it joined a complaint (a web form, a letter, an SMS from
another number) may give a phone number or an address; the same phone or address writing of
that matter later is its transport's word that it is that message's sender, and is told that
ID again, as an SMS from a number a complaint's form gave is told the complaint's ID. Its
decision row now keeps the lookup hashes of the identities it carried (as
``complaints.identity_hashes``); NULL on every other row, and on the rows stored before.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # A nullable column without a default changes the catalogue only; not behind a long
        # transaction (see 0013), and safe to run again.
        with op.get_context().autocommit_block():
            op.execute("SET lock_timeout = '5s'")
            op.execute("ALTER TABLE dedup_decisions ADD COLUMN IF NOT EXISTS identity_hashes TEXT")
            op.execute("RESET lock_timeout")
        return
    with op.batch_alter_table("dedup_decisions") as batch:
        batch.add_column(sa.Column("identity_hashes", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("dedup_decisions") as batch:
        batch.drop_column("identity_hashes")
