"""The letter desk's list: ``letter_drafts`` indexed by clerk, status and time sent.

The desk's list (``/staff/``) shows every letter not confirmed yet, whatever its age, and the
letters sent last. ``ix_letter_drafts_created_by_status_confirmed_at`` finds both for one clerk
as index ranges: the letters waiting (``created_by = ? AND status IN (...)``) without reading
the clerk's confirmed letters of every year, and the last sent, in the order they were sent.
It replaces ``ix_letter_drafts_created_by_created_at`` (the same first column: whatever that
one served, this one serves). Everybody's list, the supervisor's, takes
``ix_letter_drafts_status_confirmed_at`` for the letters sent last and
``ix_letter_drafts_status_created_at`` for the others, as before.

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
_NEW = {
    "ix_letter_drafts_created_by_status_confirmed_at": ["created_by", "status", "confirmed_at"],
    "ix_letter_drafts_status_confirmed_at": ["status", "confirmed_at"],
}
_OLD = "ix_letter_drafts_created_by_created_at"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # Built without locking out the clerks' uploads and saves (see 0013): outside a
        # transaction, every step safe to run again (an index a build cut short left INVALID
        # is dropped and built again; the old one is dropped only once the new ones are there).
        with op.get_context().autocommit_block():
            for name, columns in _NEW.items():
                op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
                op.create_index(name, _TABLE, columns, postgresql_concurrently=True)
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {_OLD}")
        return
    for name, columns in _NEW.items():
        op.create_index(name, _TABLE, columns)
    op.drop_index(_OLD, table_name=_TABLE)


def downgrade() -> None:
    op.create_index(_OLD, _TABLE, ["created_by", "created_at"])
    for name in _NEW:
        op.drop_index(name, table_name=_TABLE)
