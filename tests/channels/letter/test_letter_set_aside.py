"""Setting a letter aside: one that is no report to send (uploaded twice, blank, the wrong file).

Every letter not sent stays on the desk's list until it is sent; one that should never be sent
is set aside instead, with a reason chosen from a list: off the list of letters to send, kept
with its scans, listed apart with who set it aside and why, and put back as it was. Through the
staff pages on both databases.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select, update

from channels.letter.auth import StaffStore
from channels.letter.drafts import DraftStatus
from gateway import bootstrap
from gateway.storage.schema import letter_drafts
from tests.channels.letter.conftest import login
from tests.channels.letter.test_routes import ready_letter
from tests.support import opened_raw

pytestmark = pytest.mark.integration


def draft_id(review_url: str) -> str:
    return review_url.rstrip("/").rsplit("/", 1)[1]


def table(html: str, table_id: str) -> str:
    found = re.search(rf'<table id="{table_id}">.*?</table>', html, re.S)
    return found.group(0) if found else ""


async def status_of(gw: bootstrap.Gateway, letter: str) -> str:
    async with gw.engine.connect() as conn:
        return str(
            (
                await conn.execute(
                    select(letter_drafts.c.status).where(letter_drafts.c.id == letter)
                )
            ).scalar_one()
        )


async def test_a_letter_set_aside_leaves_the_list_to_send_and_comes_back_as_it_was(
    client: TestClient[Any, Any], gw: bootstrap.Gateway, staff: StaffStore
) -> None:
    token = await login(client, "budi")
    review = await ready_letter(client, token)
    letter = draft_id(review)
    # The clerk had typed something: it comes back with the letter.
    saved = await client.post(
        review, data={"csrf": token, "sender_name": "Siti Aminah", "body": "Surat warga",
                      "action": "save"})
    assert saved.status == 200
    home = await (await client.get("/staff/")).text()
    assert f'id="d-{letter}"' in table(home, "letters-waiting")
    assert 'name="reason"' in table(home, "letters-waiting")  # behind "Sisihkan"

    resp = await client.post(f"{review}/set-aside", data={"csrf": token, "reason": "twice"},
                             allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/staff/"
    assert await status_of(gw, letter) == DraftStatus.SET_ASIDE.value
    home = await (await client.get("/staff/")).text()
    assert f'id="d-{letter}"' not in table(home, "letters-waiting")
    aside = table(home, "letters-set-aside")
    assert f'id="d-{letter}"' in aside
    assert "terunggah dua kali" in aside and "Disisihkan oleh budi" in aside
    assert "Surat yang disisihkan (1)" in home
    # Its own page says so and offers to put it back; nothing can be sent from it.
    page = await (await client.get(review)).text()
    assert "Surat ini disisihkan: terunggah dua kali." in page and "/put-back" in page
    confirm = await client.post(
        review, data={"csrf": token, "sender_name": "Siti Aminah", "kind": "pengaduan",
                      "body": "Jalan di depan pasar berlubang besar.", "action": "confirm"})
    assert confirm.status < 500
    assert await status_of(gw, letter) == DraftStatus.SET_ASIDE.value
    assert await opened_raw(gw.engine, gw.keys) == []  # nothing was sent

    resp = await client.post(f"{review}/put-back", data={"csrf": token}, allow_redirects=False)
    assert resp.status == 303
    assert await status_of(gw, letter) == DraftStatus.READY.value
    home = await (await client.get("/staff/")).text()
    assert f'id="d-{letter}"' in table(home, "letters-waiting")
    assert 'id="set-aside"' not in home
    again = await (await client.get(review)).text()
    assert 'value="Siti Aminah"' in again


async def test_a_letter_that_could_not_be_read_is_put_back_to_be_read_again(
    client: TestClient[Any, Any], gw: bootstrap.Gateway, staff: StaffStore
) -> None:
    token = await login(client, "budi")
    review = await ready_letter(client, token)
    letter = draft_id(review)
    async with gw.engine.begin() as conn:  # as the reader leaves a letter it could not read
        await conn.execute(
            update(letter_drafts)
            .where(letter_drafts.c.id == letter)
            .values(status=DraftStatus.FAILED.value, error="OCR gagal. / OCR failed.")
        )
    resp = await client.post(f"{review}/set-aside", data={"csrf": token, "reason": "wrong_file"},
                             allow_redirects=False)
    assert resp.status == 303
    await client.post(f"{review}/put-back", data={"csrf": token})
    assert await status_of(gw, letter) == DraftStatus.FAILED.value
    home = await (await client.get("/staff/")).text()
    row = table(home, "letters-waiting")
    assert f'id="d-{letter}"' in row and "/read-again" in row
    assert "OCR gagal." in row  # why it could not be read, as before it was set aside


async def test_only_who_may_see_a_letter_sets_it_aside_with_a_reason_from_the_list(
    client: TestClient[Any, Any], gw: bootstrap.Gateway, staff: StaffStore
) -> None:
    token = await login(client, "budi")
    review = await ready_letter(client, token)
    letter = draft_id(review)
    no_token = await client.post(f"{review}/set-aside", data={"reason": "twice"})
    assert no_token.status == 403
    free_text = await client.post(
        f"{review}/set-aside", data={"csrf": token, "reason": "Siti minta dibatalkan"})
    assert free_text.status == 400
    await client.post("/staff/logout", data={"csrf": token})
    other = await login(client, "citra")
    theirs = await client.post(f"{review}/set-aside", data={"csrf": other, "reason": "twice"})
    assert theirs.status == 403
    assert await status_of(gw, letter) == DraftStatus.READY.value
    await client.post("/staff/logout", data={"csrf": other})
    boss = await login(client, "ani")  # a supervisor may
    done = await client.post(f"{review}/set-aside", data={"csrf": boss, "reason": "not_a_report"},
                             allow_redirects=False)
    assert done.status == 303
    assert await status_of(gw, letter) == DraftStatus.SET_ASIDE.value
    # A sent letter is never set aside.
    again = await client.post(f"{review}/set-aside", data={"csrf": boss, "reason": "twice"})
    assert again.status == 409
