"""A provider's retry of a message that joined a complaint is a retry (tier 2):
``dedup_decisions.sender_hash``, ``dedup_decisions.tokens_hash`` and a partial index on them.

A message that joined a complaint as a ``duplicate`` (tier 3) has no complaint row, so its
words were nowhere for tier 2 to compare: the SMS provider sending it again under a new message
id made a second ``duplicate`` event and a second reply. Its decision row now keeps its sender's
lookup hash and a keyed hash of its comparison tokens (both HMACs under the identity key, as
``identities.value_hash``); every other row has NULL, and so have the rows stored before.

The index holds only the rows that have them: a batch's senders' recent ones are found in a few
index steps however many decisions are stored.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

_INDEX = "ix_dedup_decisions_sender_hash"
_WHERE = "sender_hash IS NOT NULL"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # dedup_decisions takes a row for every complaint: as for 0013's index, built without
        # locking out the intake of the replicas still running. Outside a transaction, so each
        # step is idempotent: a run cut short is run again (adding nullable columns without a
        # default changes the catalogue only; an INVALID index left by a cut build is dropped).
        with op.get_context().autocommit_block():
            op.execute("SET lock_timeout = '5s'")  # not behind a long transaction: see 0013
            op.execute(
                "ALTER TABLE dedup_decisions ADD COLUMN IF NOT EXISTS sender_hash VARCHAR(64)"
            )
            op.execute(
                "ALTER TABLE dedup_decisions ADD COLUMN IF NOT EXISTS tokens_hash VARCHAR(64)"
            )
            op.execute("RESET lock_timeout")
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {_INDEX}")
            op.create_index(
                _INDEX,
                "dedup_decisions",
                ["sender_hash", "created_at"],
                postgresql_where=sa.text(_WHERE),
                postgresql_concurrently=True,
            )
        return
    with op.batch_alter_table("dedup_decisions") as batch:
        batch.add_column(sa.Column("sender_hash", sa.String(64), nullable=True))
        batch.add_column(sa.Column("tokens_hash", sa.String(64), nullable=True))
    op.create_index(
        _INDEX, "dedup_decisions", ["sender_hash", "created_at"], sqlite_where=sa.text(_WHERE)
    )


def downgrade() -> None:
    op.drop_index(_INDEX, "dedup_decisions")
    with op.batch_alter_table("dedup_decisions") as batch:
        batch.drop_column("tokens_hash")
        batch.drop_column("sender_hash")
