"""A person holds at most one NIK: a partial unique index on ``identities(person_id)``.

"Two NIKs are never one person" was kept by the intake alone, from what it read before taking
the person's lock; two messages giving one NIK-less person two different NIKs at the same
instant could both pass. The index makes the database refuse the second (the intake then writes
that message again and sees the first).

A person that already holds several NIKs keeps the one seen first (ties: the identity row
written first) with its other identities and its complaints; every other NIK moves to a person
of its own, as if it had been seen apart. The upgrade logs how many it moved.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-09
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import op

from gateway.ids import new_id
from gateway.storage.schema import UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

_INDEX = "uq_identities_one_nik_per_person"
_NIK = "kind = 'nik'"


def upgrade() -> None:
    _split_persons_with_several_niks()
    op.create_index(
        _INDEX,
        "identities",
        ["person_id"],
        unique=True,
        postgresql_where=sa.text(_NIK),
        sqlite_where=sa.text(_NIK),
    )


def downgrade() -> None:
    op.drop_index(_INDEX, table_name="identities")


def _split_persons_with_several_niks() -> None:
    identities = sa.table(
        "identities",
        sa.column("id", sa.BigInteger()),
        sa.column("kind", sa.String()),
        sa.column("person_id", sa.String()),
        sa.column("first_seen_at", UTCDateTime()),
    )
    persons = sa.table(
        "persons",
        sa.column("id", sa.String()),
        sa.column("created_at", UTCDateTime()),
        sa.column("merged_into", sa.String()),
    )
    nik = identities.c.kind == "nik"
    several = (
        sa.select(identities.c.person_id)
        .where(nik)
        .group_by(identities.c.person_id)
        .having(sa.func.count() > 1)
    )
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(identities.c.id, identities.c.person_id, identities.c.first_seen_at)
        .where(nik, identities.c.person_id.in_(several))
        .order_by(identities.c.person_id, identities.c.first_seen_at, identities.c.id)
    ).all()
    kept: set[str] = set()
    moved = 0
    for row in rows:
        if row.person_id not in kept:
            kept.add(row.person_id)
            continue
        person = new_id()
        bind.execute(
            sa.insert(persons).values(id=person, created_at=row.first_seen_at, merged_into=None)
        )
        bind.execute(
            sa.update(identities).where(identities.c.id == row.id).values(person_id=person)
        )
        moved += 1
    if moved:
        log.warning(
            "0008: %d NIK(s) shared a person with another NIK; each now has a person of its own",
            moved,
        )
