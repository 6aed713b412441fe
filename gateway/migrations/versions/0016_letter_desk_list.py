"""The letter desk's list: ``letter_drafts`` indexed by clerk, status and time.

The desk's list (``/staff/``) shows every letter not confirmed yet, whatever its age, and the
newest confirmed ones. ``ix_letter_drafts_created_by_status_created_at`` finds both for one
clerk as index ranges: the letters waiting (``created_by = ? AND status IN (...)``) without
reading the clerk's confirmed letters of every year, and the newest confirmed ones in order.
It replaces ``ix_letter_drafts_created_by_created_at`` (the same first column: whatever that
one served, this one serves). Everybody's list, the supervisor's, takes
``ix_letter_drafts_status_created_at`` as before.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

_TABLE = "letter_drafts"
_NEW = "ix_letter_drafts_created_by_status_created_at"
_OLD = "ix_letter_drafts_created_by_created_at"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # Built without locking out the clerks' uploads and saves (see 0013): outside a
        # transaction, every step safe to run again (an index a build cut short left INVALID
        # is dropped and built again; the old one is dropped only once the new one is there).
        with op.get_context().autocommit_block():
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {_NEW}")
            op.create_index(
                _NEW, _TABLE, ["created_by", "status", "created_at"], postgresql_concurrently=True
            )
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {_OLD}")
        return
    op.create_index(_NEW, _TABLE, ["created_by", "status", "created_at"])
    op.drop_index(_OLD, table_name=_TABLE)


def downgrade() -> None:
    op.create_index(_OLD, _TABLE, ["created_by", "created_at"])
    op.drop_index(_NEW, table_name=_TABLE)
