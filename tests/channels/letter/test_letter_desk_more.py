"""The letter desk's lists, setting aside, the OCR pool and follow-up letters in the cases a
clerk meets less often: a letter set aside or sent late stays on its list, one put back keeps
why it could not be read, a sent letter whose receipt was not recorded is never set aside, a
KTP tick saved for one NIK does not vouch for another, and the OCR pool reads on after it once
could not start."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pydantic import SecretStr
from sqlalchemy import update

from channels.letter.auth import Role, StaffStore
from channels.letter.drafts import DraftStatus, DraftStore
from channels.letter.ocr import OcrError, OcrPool
from channels.letter.parse import Scan
from gateway import bootstrap, tracking
from gateway.settings import Settings
from gateway.storage.schema import letter_drafts
from tests.channels.letter.conftest import add_staff, login
from tests.channels.letter.test_routes import Client, ready_letter

pytestmark = pytest.mark.integration

T0 = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


async def _letters(
    gw: bootstrap.Gateway, drafts: DraftStore, clock: Clock, staff_id: str, n: int
) -> list[str]:
    """``n`` letters uploaded a minute apart, read (ready), oldest first."""
    ids = []
    for i in range(n):
        clock.now = T0 + timedelta(minutes=i)
        scan = Scan(sha256=f"{i:064x}", media_type="image/png", size=10, filename=f"{i}.png")
        batch, _ = await drafts.create_batch([[scan]], staff_id)
        [draft] = await drafts.batch(batch)
        ids.append(draft.id)
    async with gw.engine.begin() as conn:
        await conn.execute(
            update(letter_drafts)
            .where(letter_drafts.c.id.in_(ids))
            .values(status=DraftStatus.READY.value)
        )
    return ids


async def test_a_letter_just_set_aside_is_listed_among_the_letters_set_aside(
    gw: bootstrap.Gateway,
) -> None:
    """A clerk sets aside an older letter late (a duplicate found later): it is listed first
    among the letters set aside (the last set aside on top), whatever its upload time."""
    budi = await add_staff(StaffStore(gw.engine, gw.settings.letter), "budi")
    clock = Clock()
    drafts = DraftStore(gw.engine, gw.keys, clock=clock)
    old, newer, newest = await _letters(gw, drafts, clock, budi.id, 3)
    for hours, letter in ((1, newer), (2, newest), (3, old)):
        clock.now = T0 + timedelta(hours=hours)
        assert await drafts.set_aside(letter, budi.id, "twice")
    desk = await drafts.desk(budi.id, limit=2)
    assert old not in [d.id for d in desk.waiting]
    assert [d.id for d in desk.set_aside][:1] == [old], (
        "the letter set aside last is not on the list of letters set aside"
    )


async def test_a_letter_that_could_not_be_read_keeps_its_reason_when_put_back(
    gw: bootstrap.Gateway,
) -> None:
    """A letter that could not be read, set aside and put back, is as it was: failed with the
    reason it could not be read ("split it"), not a generic "not read yet"."""
    budi = await add_staff(StaffStore(gw.engine, gw.settings.letter), "budi")
    clock = Clock()
    drafts = DraftStore(gw.engine, gw.keys, clock=clock)
    [letter] = await _letters(gw, drafts, clock, budi.id, 1)
    async with gw.engine.begin() as conn:
        await conn.execute(
            update(letter_drafts)
            .where(letter_drafts.c.id == letter)
            .values(status=DraftStatus.READING.value)
        )
    why = "the document has 140 pages, more than 100: split it"
    assert await drafts.fail(letter, None, why)
    assert await drafts.set_aside(letter, budi.id, "wrong_file")
    assert await drafts.put_back(letter, budi.id)
    draft = await drafts.get(letter)
    assert draft is not None and draft.status is DraftStatus.FAILED
    assert draft.error is not None and "split it" in draft.error, draft.error


async def test_a_pool_that_could_not_start_once_reads_the_next_letters() -> None:
    """A passing failure to start the OCR workers (too many open files while the gateway is busy)
    fails the page being read at that moment, and the next letters are read once the pool can
    start: the worker slot is given back."""
    pool = OcrPool(workers=1)
    real = pool._pool
    calls = {"n": 0}

    def flaky() -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError(24, "Too many open files")
        return real()

    pool._pool = flaky  # type: ignore[method-assign]
    try:
        with contextlib.suppress(OcrError):  # that page fails
            await asyncio.wait_for(pool._submit(object(), sum, (1, 2)), 5)
        try:
            assert await asyncio.wait_for(pool._submit(object(), sum, (2, 2)), 10) == 4
        except TimeoutError:
            pytest.fail("the next document waits forever: the pool's only worker slot was lost")
    finally:
        await pool.close()


@pytest.fixture
async def fgw(letter_settings: Settings) -> AsyncIterator[bootstrap.Gateway]:
    sms = letter_settings.sms.model_copy(
        update={"kannel_sendsms_url": "http://127.0.0.1:9/cgi-bin/sendsms"}  # never reached
    )
    web = letter_settings.web.model_copy(update={"csrf_key": SecretStr("k")})
    gateway = bootstrap.build(letter_settings.model_copy(update={"sms": sms, "web": web}))
    yield gateway
    await gateway.close()


@pytest.fixture
async def fdesk(
    fgw: bootstrap.Gateway, aiohttp_client: Client
) -> tuple[TestClient[Any, Any], str]:
    client = await aiohttp_client(bootstrap.build_app(fgw))
    await add_staff(StaffStore(fgw.engine, fgw.settings.letter), "budi")
    return client, await login(client, "budi")



async def test_a_ktp_tick_saved_for_one_nik_does_not_vouch_for_another(
    fgw: bootstrap.Gateway, fdesk: tuple[TestClient[Any, Any], str]
) -> None:
    """The clerk ticks "NIK sesuai KTP" for the NIK as read and saves; later the NIK is edited to
    another number and the letter confirmed with the box still ticked: the tick saved for the
    first NIK does not vouch for the second (it is cleared and the clerk asked to check again),
    so the letter is not added to the report of that other NIK."""
    from tests.channels.letter.test_letter_followups import NEWS, earlier_report, events
    from tests.integration.test_identity_dedup import NIK_A, NIK_B

    client, token = fdesk
    _, tid = await earlier_report(fgw, NIK_A)
    review = await ready_letter(client, token)
    values = {
        "csrf": token, "sender_name": "Siti Aminah", "kind": "pengaduan", "nik": NIK_B,
        "phone": "0812-3456-7890", "body": NEWS, "about": tracking.display(tid),
        "nik_checked": "on", "action": "save",
    }
    assert (await client.post(review, data=values)).status == 200
    page = await (await client.get(review)).text()
    assert 'name="nik_checked" value="1" checked' in page  # the box comes back ticked
    # The NIK edited, the form sent with the box as it stands (ticked).
    resp = await client.post(review, data={**values, "nik": NIK_A, "action": "confirm"})
    assert resp.status in (200, 422)
    kinds = [e["event"] for e in await events(fgw)]
    assert "followup" not in kinds, (
        "a KTP tick saved for another NIK added the letter to this NIK's report"
    )


async def test_a_letter_just_sent_is_listed_among_the_letters_sent(
    gw: bootstrap.Gateway,
) -> None:
    """An old letter confirmed today is listed among the letters sent last, however many letters
    uploaded after it were sent before."""
    budi = await add_staff(StaffStore(gw.engine, gw.settings.letter), "budi")
    clock = Clock()
    drafts = DraftStore(gw.engine, gw.keys, clock=clock)
    old, newer, newest = await _letters(gw, drafts, clock, budi.id, 3)
    for hours, letter in ((1, newer), (2, newest), (3, old)):
        clock.now = T0 + timedelta(hours=hours)
        await drafts.confirmed(letter, budi.id, tracking.new_tracking_id(), "accepted")
    desk = await drafts.desk(budi.id, limit=2)
    assert old not in [d.id for d in desk.waiting]
    assert old in [d.id for d in desk.sent], "the letter sent last is not on the list of sent"


async def test_a_letter_sent_whose_receipt_was_not_recorded_cannot_be_set_aside(
    client: TestClient[Any, Any], gw: bootstrap.Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A letter sent whose receipt was not recorded on it (the request failed after the intake's
    commit) is never set aside: the supervisor is refused (409) and the confirmation is
    recorded then, so the clerk's next Konfirmasi leads to the receipt."""
    from tests.support import opened_raw

    store = StaffStore(gw.engine, gw.settings.letter)
    await add_staff(store, "ani", Role.SUPERVISOR)
    await add_staff(store, "budi")
    token = await login(client, "budi")
    review = await ready_letter(client, token)
    letter = review.rstrip("/").rsplit("/", 1)[1]
    real = DraftStore.confirmed
    calls = {"n": 0}

    async def busy(self: DraftStore, *args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise TimeoutError("the database is busy")
        return await real(self, *args, **kwargs)

    monkeypatch.setattr(DraftStore, "confirmed", busy)
    values = {
        "csrf": token, "sender_name": "Siti Aminah", "kind": "pengaduan",
        "body": "Jalan rusak parah di depan pasar sejak bulan lalu.", "action": "confirm",
    }
    first = await client.post(review, data=values)
    assert first.status == 503, first.status
    assert len(await opened_raw(gw.engine, gw.keys)) == 1  # the complaint went in
    # Two minutes later the hold has run out.
    async with gw.engine.begin() as conn:
        await conn.execute(
            update(letter_drafts)
            .where(letter_drafts.c.id == letter)
            .values(claim_expires=datetime.now(UTC) - timedelta(seconds=1))
        )
    from tests.channels.letter.test_routes import aiohttp_client_like

    ani = await aiohttp_client_like(client)
    try:
        ani_token = await login(ani, "ani")
        aside = await ani.post(
            review + "/set-aside", data={"csrf": ani_token, "reason": "twice"},
            allow_redirects=False,
        )
    finally:
        await ani.close()
    again = await client.post(review, data=values, allow_redirects=False)
    assert (aside.status, again.headers.get("Location")) == (409, review + "/receipt"), (
        "a letter already sent was set aside, and its receipt is out of reach"
    )
