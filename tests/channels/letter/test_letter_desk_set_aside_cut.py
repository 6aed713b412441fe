"""The desk's folded list of letters set aside: the newest ones, saying so when older ones are
left out, as the list of sent letters does."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import update

from channels.letter.auth import Role, Staff, StaffStore
from channels.letter.drafts import DraftStatus, DraftStore
from channels.letter.parse import Scan
from gateway import bootstrap
from gateway.storage.schema import letter_drafts
from tests.channels.letter.conftest import add_staff, login

pytestmark = pytest.mark.integration


class Steps:
    """A clock that moves a second each time it is read (letters set aside in order)."""

    def __init__(self) -> None:
        self.now = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


async def set_aside(gw: bootstrap.Gateway, staff: Staff, count: int) -> list[str]:
    """``count`` letters of ``staff`` set aside one after the other, in that order."""
    drafts = DraftStore(gw.engine, gw.keys, clock=Steps())
    scan = Scan("0" * 64, "image/png", 10, "surat.png")
    batch, _ = await drafts.create_batch([[scan]] * count, staff.id)
    ids = [d.id for d in await drafts.batch(batch)]
    async with gw.engine.begin() as conn:
        await conn.execute(
            update(letter_drafts)
            .where(letter_drafts.c.batch_id == batch)
            .values(status=DraftStatus.READY.value, claimed_by=None, claim_expires=None)
        )
    for letter in ids:
        assert await drafts.set_aside(letter, staff.id, "twice")
    return ids


def aside_rows(html: str) -> list[str]:
    found = re.search(r'<table id="letters-set-aside">.*?</table>', html, re.S)
    return re.findall(r'<tr id="d-([^"]+)"', found.group(0)) if found else []


async def test_the_desk_says_when_letters_set_aside_earlier_are_left_out(
    gw: bootstrap.Gateway,
) -> None:
    budi = await add_staff(StaffStore(gw.engine, gw.settings.letter), "budi", Role.CLERK)
    aside = await set_aside(gw, budi, 3)
    drafts = DraftStore(gw.engine, gw.keys)

    desk = await drafts.desk(budi.id, limit=2)
    assert [d.id for d in desk.set_aside] == [aside[2], aside[1]]  # the last set aside first
    assert desk.more_set_aside and not desk.more_sent
    whole = await drafts.desk(budi.id, limit=3)
    assert [d.id for d in whole.set_aside] == aside[::-1] and not whole.more_set_aside
    everyone = await drafts.desk(None, limit=2)
    assert len(everyone.set_aside) == 2 and everyone.more_set_aside


async def test_the_home_page_says_when_letters_set_aside_are_cut(
    client: TestClient[Any, Any], gw: bootstrap.Gateway
) -> None:
    budi = await add_staff(StaffStore(gw.engine, gw.settings.letter), "budi", Role.CLERK)
    aside = await set_aside(gw, budi, 101)
    await login(client, "budi")
    home = await (await client.get("/staff/")).text()
    assert aside_rows(home) == aside[:0:-1]  # the 100 set aside last; not the first one
    assert 'id="set-aside-cut"' in home and 'id="sent-cut"' not in home
    assert "Surat yang disisihkan (100+)" in home
    assert (
        "Hanya 100 surat yang terakhir disisihkan yang ditampilkan; yang lebih lama tidak."
        in home
    )
    # Inside the folded list, after its table.
    details = home[home.index('<details id="set-aside">'):]
    details = details[: details.index("</details>")]
    assert details.index('id="letters-set-aside"') < details.index('id="set-aside-cut"')
    english = await (await client.get("/staff/?lang=en")).text()
    assert "Letters set aside (100+)" in english
    assert "Only the 100 letters set aside last are shown; older ones are not." in english


async def test_the_home_page_cuts_no_letter_set_aside_when_all_are_listed(
    client: TestClient[Any, Any], gw: bootstrap.Gateway
) -> None:
    budi = await add_staff(StaffStore(gw.engine, gw.settings.letter), "budi", Role.CLERK)
    aside = await set_aside(gw, budi, 100)
    await login(client, "budi")
    home = await (await client.get("/staff/")).text()
    assert aside_rows(home) == aside[::-1]
    assert "Surat yang disisihkan (100)" in home and 'id="set-aside-cut"' not in home
