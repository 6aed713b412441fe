"""Gammu redelivery keys of rows stored before they were hashed.

Until this release a Gammu SMS was stored under ``gammu:<PhoneID>:<inbox ids>`` (or
``gammu:<inbox ids>`` without a PhoneID); the files backend names each inbox file after the
sender (``IN20261204_135929_00_+6281234567890_00.txt``), so the sender's number sat in the clear
in ``raw_inbound.provider_message_id``. Those keys become what ``channels.sms.gammu.provider_id``
makes now, the SHA-256 of the PhoneID and the ids: the number leaves the column, and a message
posted again after the upgrade is still recognised as the same one.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

from __future__ import annotations

import hashlib
import re

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_PREFIX = "gammu:"
_HASHED = re.compile(r"gammu:[0-9a-f]{64}")
_RAW = sa.table(
    "raw_inbound",
    sa.column("id", sa.String),
    sa.column("channel", sa.String),
    sa.column("provider_message_id", sa.String),
)


def hashed_key(old: str) -> str:
    """The key ``old`` (``gammu:<PhoneID>:<ids>`` or ``gammu:<ids>``) stands for now."""
    phone, sep, ids = old[len(_PREFIX) :].partition(":")
    if not sep:  # no PhoneID
        phone, ids = "", phone
    return _PREFIX + hashlib.sha256(f"{phone}\n{ids}".encode()).hexdigest()


def upgrade() -> None:
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(_RAW.c.id, _RAW.c.provider_message_id).where(
            _RAW.c.channel == "sms", _RAW.c.provider_message_id.like(f"{_PREFIX}%")
        )
    ).all()
    for row_id, key in rows:
        if _HASHED.fullmatch(key):
            continue
        bind.execute(
            sa.update(_RAW).where(_RAW.c.id == row_id).values(provider_message_id=hashed_key(key))
        )


def downgrade() -> None:
    # A hash does not give the ids back; the older code reads the hashed keys as any other key.
    pass
