"""Bodies sealed at rest: raw inbound messages, complaints' words, event bodies, held SMS parts.

Rows written from this revision on keep their body (and the transport metadata that names the
sender; a complaint's dedup tokens, and its title when it is confidential) AES-256-GCM sealed
under the data key, with ``sealed`` true. Rows written before stay as they were (``sealed``
false) and are read as before.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_TABLES = ("raw_inbound", "complaints", "outbox", "sms_fragments")


def upgrade() -> None:
    # A plain ADD COLUMN on both databases (SQLite takes it with a constant default): no table
    # copy, which SQLite could not do here anyway while other tables' foreign keys point at
    # raw_inbound.
    for table in _TABLES:
        op.add_column(
            table, sa.Column("sealed", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    # Sealed rows cannot be read without the gateway's key: refuse rather than lose them.
    bind = op.get_bind()
    for table in _TABLES:
        sealed = sa.column("sealed", sa.Boolean())
        query = sa.select(sa.literal(1)).select_from(sa.table(table, sealed)).where(sealed)
        if bind.execute(query.limit(1)).first():
            raise RuntimeError(f"{table} holds sealed rows; downgrade below 0006 would strand them")
    for table in _TABLES:
        op.drop_column(table, "sealed")  # SQLite 3.35 and later drop a column in place
