"""The database holds one NIK per person (migration 0008), on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from gateway.settings import DatabaseSettings, Settings
from gateway.storage import migrate
from gateway.storage.database import create_engine
from gateway.storage.schema import identities, persons

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


def _person(pid: str, at: datetime = T0) -> dict[str, object]:
    return {"id": pid, "created_at": at, "merged_into": None}


def _identity(kind: str, value_hash: str, pid: str, at: datetime = T0) -> dict[str, object]:
    return {
        "kind": kind,
        "value_hash": value_hash,
        "value_enc": "sealed",
        "person_id": pid,
        "first_seen_at": at,
    }


async def test_a_second_nik_for_one_person_is_refused(settings: Settings) -> None:
    engine = create_engine(settings.database)
    try:
        async with engine.begin() as conn:
            await conn.execute(persons.insert(), [_person("p-1"), _person("p-2")])
            await conn.execute(
                identities.insert(),
                [
                    _identity("nik", "n1", "p-1"),
                    _identity("phone", "ph1", "p-1"),
                    _identity("email", "e1", "p-1"),  # any number of contacts
                    _identity("nik", "n2", "p-2"),  # one NIK each: fine
                ],
            )
        with pytest.raises(IntegrityError):
            async with engine.begin() as conn:
                await conn.execute(identities.insert().values(_identity("nik", "n3", "p-1")))
        with pytest.raises(IntegrityError):  # a merge that would join two NIKs, too
            async with engine.begin() as conn:
                await conn.execute(
                    identities.update()
                    .where(identities.c.value_hash == "n2")
                    .values(person_id="p-1")
                )
    finally:
        await engine.dispose()





async def test_the_upgrade_gives_every_extra_nik_a_person_of_its_own(empty_url: str) -> None:
    # Written at 0007 by the race 0008 closes: person A holds three NIKs (two seen at the same
    # instant), person B one; A's phone and B's e-mail are theirs alone.
    engine = create_engine(DatabaseSettings(url=empty_url))
    try:
        await migrate.upgrade(engine, "0007")
        later = T0 + timedelta(minutes=5)
        async with engine.begin() as conn:
            await conn.execute(persons.insert(), [_person("a"), _person("b")])
            await conn.execute(
                identities.insert(),
                [
                    _identity("phone", "ph-a", "a"),
                    _identity("nik", "n-a3", "a", later),
                    _identity("nik", "n-a1", "a", T0),
                    _identity("nik", "n-a2", "a", T0),
                    _identity("nik", "n-b", "b"),
                    _identity("email", "e-b", "b"),
                ],
            )
        await migrate.upgrade(engine)
        assert await migrate.current_revision(engine) == migrate.head_revision()
        async with engine.connect() as conn:
            owner = {
                r.value_hash: r.person_id
                for r in await conn.execute(select(identities.c.value_hash, identities.c.person_id))
            }
            people = {r.id: r for r in await conn.execute(select(persons))}
        # A keeps its phone and the NIK it was first seen with (ties: the row written first).
        assert owner["ph-a"] == owner["n-a1"] == "a"
        assert owner["n-b"] == owner["e-b"] == "b"
        moved = {owner["n-a2"], owner["n-a3"]}
        assert len(moved) == 2 and not moved & {"a", "b"}
        assert people[owner["n-a3"]].created_at == later
        assert all(people[p].merged_into is None for p in moved)
        # ...and from now on the database refuses a second NIK.
        with pytest.raises(IntegrityError):
            async with engine.begin() as conn:
                await conn.execute(identities.insert().values(_identity("nik", "n-a4", "a")))
        # The downgrade drops the index only.
        await migrate.downgrade(engine, "0007")
        assert await migrate.current_revision(engine) == "0007"
        async with engine.begin() as conn:
            await conn.execute(identities.insert().values(_identity("nik", "n-a4", "a")))
    finally:
        await engine.dispose()

