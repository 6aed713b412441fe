"""The desk's list of letters (every letter not sent, the newest sent ones), the upload form's
limits, the review form leaving field checks to the server, and a supervisor's own account."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import ClientSession, CookieJar
from aiohttp.test_utils import TestClient
from pydantic import SecretStr
from sqlalchemy import update

from channels.letter.auth import Role, Staff, StaffStore
from channels.letter.drafts import DraftStatus, DraftStore
from channels.letter.parse import Scan
from gateway import bootstrap
from gateway.settings import Settings
from gateway.storage.schema import letter_drafts
from tests.channels.letter.conftest import add_staff, login
from tests.support import with_section

pytestmark = pytest.mark.integration

Client = Callable[..., Awaitable[TestClient[Any, Any]]]
MAX_FILES = 7
MAX_FILE_SIZE = 11 * 1024 * 1024 // 2  # 5.5 MB


@pytest.fixture
async def gw(letter_settings: Settings) -> AsyncIterator[bootstrap.Gateway]:
    settings = with_section(letter_settings, "web", csrf_key=SecretStr("test-csrf-key"))
    settings = with_section(
        settings, "letter", max_files=MAX_FILES, max_file_size=MAX_FILE_SIZE, ocr_workers=1
    )
    gateway = bootstrap.build(settings)
    yield gateway
    await gateway.close()


@pytest.fixture
async def accounts(gw: bootstrap.Gateway) -> dict[str, Staff]:
    store = StaffStore(gw.engine, gw.settings.letter)
    return {
        "ani": await add_staff(store, "ani", Role.SUPERVISOR),
        "budi": await add_staff(store, "budi", Role.CLERK),
        "citra": await add_staff(store, "citra", Role.CLERK),
    }


def other_browser(client: TestClient[Any, Any]) -> ClientSession:
    base = str(client.make_url("/")).rstrip("/")
    return ClientSession(base_url=base, cookie_jar=CookieJar(unsafe=True))


async def letters(
    drafts: DraftStore,
    gw: bootstrap.Gateway,
    staff: Staff,
    status: DraftStatus,
    count: int = 1,
    name: str = "surat.png",
) -> list[str]:
    """``count`` letters of ``staff`` (one upload, in upload order) set to ``status``."""
    scan = Scan("0" * 64, "image/png", 10, name)
    batch, _ = await drafts.create_batch([[scan]] * count, staff.id)
    ids = [d.id for d in await drafts.batch(batch)]
    async with gw.engine.begin() as conn:
        await conn.execute(
            update(letter_drafts)
            .where(letter_drafts.c.batch_id == batch)
            .values(
                status=status.value,
                claimed_by=None,
                claim_expires=None,
                tracking_id="G69P5CAWW" if status is DraftStatus.CONFIRMED else None,
            )
        )
    return ids


def section(html: str, table_id: str) -> str:
    found = re.search(rf'<table id="{table_id}">.*?</table>', html, re.S)
    return found.group(0) if found else ""


def row_ids(html: str, table_id: str) -> list[str]:
    return re.findall(r'<tr id="d-([^"]+)"', section(html, table_id))


# ---- the store ---------------------------------------------------------------------------------


async def test_every_letter_not_sent_is_on_the_desk_with_the_newest_sent_ones(
    gw: bootstrap.Gateway, accounts: dict[str, Staff]
) -> None:
    budi, citra = accounts["budi"], accounts["citra"]
    drafts = DraftStore(gw.engine, gw.keys)
    [old_ready] = await letters(drafts, gw, budi, DraftStatus.READY)
    [failed] = await letters(drafts, gw, budi, DraftStatus.FAILED)
    sent = await letters(drafts, gw, budi, DraftStatus.CONFIRMED, 3)
    reading = await letters(drafts, gw, budi, DraftStatus.READING, 2)
    [new_ready] = await letters(drafts, gw, budi, DraftStatus.READY)
    [citras] = await letters(drafts, gw, citra, DraftStatus.READY)

    desk = await drafts.desk(budi.id, limit=2)
    # What needs the clerk first, the longest waiting on top; then what is being read.
    assert [d.id for d in desk.waiting] == [old_ready, failed, new_ready, *reading]
    assert [d.id for d in desk.sent] == [sent[2], sent[1]]  # the newest, newest first
    assert desk.more_sent
    assert not (await drafts.desk(budi.id, limit=3)).more_sent  # all three listed

    everyone = await drafts.desk(None, limit=2)  # the supervisor's: every clerk's
    assert [d.id for d in everyone.waiting] == [old_ready, failed, new_ready, citras, *reading]
    assert [d.id for d in everyone.sent] == [sent[2], sent[1]] and everyone.more_sent
    citras_desk = await drafts.desk(citra.id)
    assert [d.id for d in citras_desk.waiting] == [citras]
    assert citras_desk.sent == [] and not citras_desk.more_sent
    # As one list: the waiting ones, then the sent ones.
    two = await drafts.desk(budi.id, limit=2)
    assert [d.id for d in [*two.waiting, *two.sent]] == [
        old_ready,
        failed,
        new_ready,
        *reading,
        sent[2],
        sent[1],
    ]


# ---- the home page -----------------------------------------------------------------------------


async def test_the_home_page_lists_what_waits_first_and_says_when_sent_letters_are_cut(
    client: TestClient[Any, Any], gw: bootstrap.Gateway, accounts: dict[str, Staff]
) -> None:
    drafts = DraftStore(gw.engine, gw.keys)
    [waiting] = await letters(drafts, gw, accounts["budi"], DraftStatus.READY, name="loket.png")
    sent = await letters(drafts, gw, accounts["budi"], DraftStatus.CONFIRMED, 101)
    [citras] = await letters(drafts, gw, accounts["citra"], DraftStatus.FAILED)
    await login(client, "budi")
    home = await (await client.get("/staff/")).text()
    assert home.index('id="letters-waiting"') < home.index('id="letters-sent"')
    assert row_ids(home, "letters-waiting") == [waiting]
    shown = row_ids(home, "letters-sent")
    assert shown == sent[:0:-1]  # the 100 newest, newest first; not the oldest
    assert 'id="sent-cut"' in home
    assert "Hanya 100 surat terkirim terbaru yang ditampilkan" in home
    assert "Surat belum terkirim" in home and citras not in home
    english = await (await client.get("/staff/?lang=en")).text()
    assert "Only the 100 most recently sent letters are shown" in english
    assert "Letters not sent yet" in english

    async with other_browser(client) as ani:
        await login(ani, "ani")  # type: ignore[arg-type]
        everyone = await (await ani.get("/staff/")).text()
    assert row_ids(everyone, "letters-waiting") == [waiting, citras]
    assert "Surat semua petugas yang belum terkirim" in everyone
    assert "Diunggah oleh" in section(everyone, "letters-waiting")
    assert 'id="sent-cut"' in everyone


async def test_the_home_page_cuts_nothing_when_every_sent_letter_is_listed(
    client: TestClient[Any, Any], gw: bootstrap.Gateway, accounts: dict[str, Staff]
) -> None:
    drafts = DraftStore(gw.engine, gw.keys)
    await login(client, "budi")
    empty = await (await client.get("/staff/")).text()
    assert 'id="no-letters-waiting"' in empty and 'id="no-letters-sent"' in empty
    assert "Tidak ada surat yang menunggu." in empty and 'id="sent-cut"' not in empty
    sent = await letters(drafts, gw, accounts["budi"], DraftStatus.CONFIRMED, 100)
    home = await (await client.get("/staff/")).text()
    assert row_ids(home, "letters-sent") == sent[::-1]
    assert 'id="sent-cut"' not in home and 'id="no-letters-waiting"' in home


async def test_the_upload_form_says_how_many_files_one_upload_may_hold(
    client: TestClient[Any, Any], accounts: dict[str, Staff]
) -> None:
    await login(client, "budi")
    home = await (await client.get("/staff/")).text()
    limits = re.search(r'<p class="note" id="upload-limits">([^<]+)</p>', home)
    assert limits, "the limits next to the file input"
    assert limits.group(1) == (
        f"Paling banyak {MAX_FILES} berkas sekali unggah, masing-masing paling besar 5,5 MB."
    )
    assert 'name="berkas" multiple required' in home
    assert re.search(r'<input type="file"[^>]*aria-describedby="upload-limits"', home)
    english = await (await client.get("/staff/?lang=en")).text()
    assert f"At most {MAX_FILES} files in one upload, each at most 5.5 MB." in english


# ---- the review form ---------------------------------------------------------------------------


async def test_the_review_form_leaves_field_checks_to_the_server(
    client: TestClient[Any, Any], gw: bootstrap.Gateway, accounts: dict[str, Staff]
) -> None:
    drafts = DraftStore(gw.engine, gw.keys)
    [draft_id] = await letters(drafts, gw, accounts["budi"], DraftStatus.READY)
    token = await login(client, "budi")
    review = f"/staff/letters/{draft_id}"
    html = await (await client.get(review)).text()
    form = re.search(r'<form [^>]*id="review-form"[^>]*>', html)
    assert form and " novalidate" in form.group(0)  # Save, Confirm and Enter alike
    # The field types and lengths still help typing (the keyboard, a cap on typing).
    assert re.search(r'<input type="email" id="email"[^>]*maxlength="254"', html)
    assert re.search(r'<textarea id="body"[^>]*maxlength="20000"', html)

    # What the browser would have refused: saved as typed ...
    values = {"csrf": token, "email": "budi.gmail.com", "body": "Jalan rusak di depan pasar."}
    saved = await client.post(review, data={**values, "action": "save"}, allow_redirects=False)
    assert saved.status == 303 and saved.headers["Location"].endswith("?saved=1")
    draft = await drafts.get(draft_id)
    assert draft is not None and draft.values["email"] == "budi.gmail.com"
    # ... and on Confirm the server's own message next to the field, in the page's language.
    refused = await client.post(review, data={**values, "action": "confirm"})
    assert refused.status == 422
    page = await refused.text()
    assert 'id="email-err"' in page and 'aria-invalid="true"' in page


# ---- accounts ----------------------------------------------------------------------------------


async def test_a_supervisor_is_told_in_both_languages_that_their_own_account_stays_enabled(
    client: TestClient[Any, Any], gw: bootstrap.Gateway, accounts: dict[str, Staff]
) -> None:
    token = await login(client, "ani")
    ani = accounts["ani"]
    told = await client.post(f"/staff/accounts/{ani.id}/disable", data={"csrf": token})
    assert told.status == 409
    assert "Anda tidak dapat menonaktifkan akun Anda sendiri" in await told.text()
    english = await client.post(f"/staff/accounts/{ani.id}/disable?lang=en", data={"csrf": token})
    assert english.status == 409
    assert "You cannot disable your own account" in await english.text()
    [still] = [
        a for a in await StaffStore(gw.engine, gw.settings.letter).accounts() if a.id == ani.id
    ]
    assert not still.disabled
    # Another supervisor's or clerk's account is disabled as before.
    budi = accounts["budi"]
    done = await client.post(
        f"/staff/accounts/{budi.id}/disable", data={"csrf": token}, allow_redirects=False
    )
    assert done.status == 303
