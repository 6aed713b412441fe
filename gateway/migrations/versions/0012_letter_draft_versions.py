"""Letter drafts: a row version, and the values saved after a confirmation began.

``letter_drafts.version`` is raised by every write of a draft's status or values: a clerk's
save writes only over the version the review page was drawn from (before, over the row's
``updated_at``, which two writes in the same clock tick, or on replicas whose clocks differ,
could share), and the record of a confirmation writes only over the row it read.

``unsent``, ``unsent_by`` and ``unsent_at``: a save that landed after a confirmation began
(its hold had run out while the intake port was slow, or the save ended a hold named failed
whose confirmation went through after all) was overwritten by the values sent, with nothing
kept and nobody told. Such values are now kept here (sealed like ``reviewed``), with who saved
them and when, and the receipt page shows them beside what was sent. Existing drafts start at
version 0 with nothing unsent. Plain added columns on both databases.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from gateway.storage.schema import UTCDateTime

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("letter_drafts") as batch:
        batch.add_column(
            sa.Column("version", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )
        batch.add_column(sa.Column("unsent", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("unsent_by", sa.String(36), nullable=True))
        batch.add_column(sa.Column("unsent_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("letter_drafts") as batch:
        batch.drop_column("unsent_at")
        batch.drop_column("unsent_by")
        batch.drop_column("unsent")
        batch.drop_column("version")
