"""A message joined to an earlier complaint through a typed identity, at the letter desk and by
SMS, over the real HTTP routes, compared answer for answer with a brand-new complaint's."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pydantic import SecretStr

from channels.letter.auth import Role, StaffStore
from gateway import bootstrap, tracking
from gateway.settings import Settings
from tests.channels.letter.conftest import add_staff, letter_settings, login  # noqa: F401
from tests.channels.letter.test_routes import (
    TID,
    ready_letter,
)
from tests.integration.test_status_feed import Client, publish, status, texting
from tests.support import kannel_mo, wait_until, with_section

pytestmark = pytest.mark.integration

NIK_SITI = "3201014101900001"
NIK_FRESH = "3201015202910003"
SUBJECT = "Lampu jalan mati"
BODY = "Lampu jalan di gang 1 Jalan Kenanga mati sejak 2 minggu, gelap sekali di malam hari."


async def _letter_gateway(letter_settings: Settings) -> bootstrap.Gateway:  # noqa: F811
    sms = letter_settings.sms.model_copy(
        update={"kannel_sendsms_url": "http://127.0.0.1:9/cgi-bin/sendsms"}  # never reached
    )
    web_section = letter_settings.web.model_copy(update={"csrf_key": SecretStr("k")})
    return bootstrap.build(letter_settings.model_copy(update={"sms": sms, "web": web_section}))


async def _earlier_web_complaint(client: TestClient[Any, Any]) -> str:
    resp = await client.post("/api/v1/complaints", json={
        "title": "Lampu jalan mati 1",
        "body": "Lampu jalan di gang 1 Jalan Kenanga mati sejak 2 minggu.",
        "reporter": {"name": "Siti", "nik": NIK_SITI, "phone": "+6281234567890"},
    })
    assert resp.status == 202, await resp.text()
    return str((await resp.json())["tracking_id"])


def _scrub(html: str, tid: str, draft: str) -> str:
    shown = tracking.display(tid)
    out = html.replace(shown, "<TID>").replace(tid, "<TID>").replace(draft, "<DRAFT>")
    out = re.sub(r"<svg.*?</svg>", "<SVG/>", out, flags=re.S)
    out = re.sub(r'name="csrf" value="[^"]+"', 'name="csrf" value=""', out)
    # The follow-up code is the ID's, as the ID is each letter's own.
    out = re.sub(r'class="code">[^<]+<', 'class="code"><CODE><', out)
    # The times shown (the two letters may be confirmed in different minutes).
    out = re.sub(r"\d{1,2} \w+ \d{4},? \d{2}[.:]\d{2}( WIB)?", "<WHEN>", out)
    out = re.sub(r"\d{2}-\d{2}-\d{4},? \d{2}[.:]\d{2}( WIB)?", "<WHEN>", out)
    out = re.sub(r"\d{2}-\d{2}-\d{4}", "<DAY>", out)  # across midnight, too
    return out


STRANGER = "+6285700001111"
OTHER = "+6285700002222"
SMS_TEXT = "NIK {nik} lampu jalan di gang 1 jalan kenanga mati sejak 2 minggu"


def _own(text: str) -> str:
    found = re.search(r"No\. lacak: (\w{4})-(\w{5})\.", text)
    assert found is not None, text
    return found[1] + found[2]


async def _receipts(first: str, letter_settings: Settings, aiohttp_client: Client) -> dict[str, Any]:  # noqa: F811
    gateway = await _letter_gateway(letter_settings)
    out: dict[str, Any] = {}
    try:
        client = await aiohttp_client(bootstrap.build_app(gateway))
        store = StaffStore(gateway.engine, gateway.settings.letter)
        await add_staff(store, "budi")
        await add_staff(store, "ani", Role.SUPERVISOR)
        if first == "web":
            earlier = await _earlier_web_complaint(client)
        else:
            resp = await client.get("/sms/kannel", params=kannel_mo(
                SMS_TEXT.format(nik=NIK_SITI), "+6281234567890"))
            assert resp.status == 200
            async with gateway.engine.connect() as conn:
                earlier = (await conn.exec_driver_sql(
                    "SELECT tracking_id FROM complaints")).scalar_one()
        token = await login(client, "budi")
        for kind, nik, phone in (("joined", NIK_SITI, "0813-1111-2222"),
                                 ("fresh", NIK_FRESH, "0813-1111-2222")):
            review = await ready_letter(client, token, f"{kind}.png")
            values = {**VALID_LETTER, "nik": nik, "phone": phone}
            resp = await client.post(review, data={**values, "csrf": token, "action": "confirm"})
            html = await resp.text()
            assert resp.status == 200, html
            tid = tracking.normalize(TID.search(html).group(1))  # type: ignore[union-attr]
            assert tid is not None and tid != earlier
            again = await client.post(review, data={**values, "csrf": token, "action": "confirm"})
            assert TID.search(await again.text()).group(1) == tracking.display(tid)  # type: ignore[union-attr]
            draft = review.rsplit("/", 1)[1]
            for lang in ("id", "en"):
                page = await (await client.get(f"{review}/receipt?receipt_lang={lang}")).text()
                out[f"{kind}-{lang}"] = _scrub(page, tid, draft)
            async with gateway.engine.connect() as conn:
                rows = (await conn.exec_driver_sql(
                    f"SELECT kind, body FROM sms_replies WHERE tracking_id = '{tid}'")).all()
                out[f"{kind}-sms"] = [
                    (k, b.replace(tracking.display(tid), "<TID>").replace(tid, "<TID>"))
                    for k, b in rows]
                out[f"{kind}-status"] = (await conn.exec_driver_sql(
                    f"SELECT receipt_status FROM letter_drafts WHERE id = '{draft}'")).scalar_one()
        out["complaints"] = await gateway.intake.count_complaints()
        async with gateway.engine.connect() as conn:
            out["raw"] = [tuple(map(str, r)) for r in (await conn.exec_driver_sql(
                "SELECT r.channel, r.status, r.tracking_id, r.received_at, r.stored_at, "
                "c.tracking_id, c.received_at FROM raw_inbound r LEFT JOIN complaints c "
                "ON c.id = r.complaint_id ORDER BY r.stored_at")).all()]
            out["drafts"] = [tuple(map(str, r)) for r in (await conn.exec_driver_sql(
                "SELECT created_at, confirmed_at, tracking_id FROM letter_drafts")).all()]
            out["api"] = {}
            for r in out["raw"]:
                api = await client.get(f"/api/v1/complaints/{r[2]}")
                out["api"][r[2]] = await api.text()
    finally:
        await gateway.close()
    return out


VALID_LETTER = {"sender_name": "Pengirim Surat", "kind": "pengaduan", "subject": SUBJECT,
                "body": BODY}


@pytest.mark.parametrize("first", ["web", "sms"])
async def test_a_letter_joined_by_nik_gets_a_new_complaints_receipt(
    first: str, letter_settings: Settings, aiohttp_client: Client,  # noqa: F811
) -> None:
    # The earlier complaint came by the web or by SMS with Siti's NIK; a letter with her NIK
    # and the same matter joins it: its printed receipt (both languages), the receipt SMS and
    # a second click on confirm are a new letter's, with its own ID.
    out = await _receipts(first, letter_settings, aiohttp_client)
    assert out["complaints"] == 2  # the earlier one and the fresh letter's: the other joined
    assert out["joined-status"] == out["fresh-status"] == "accepted"
    for lang in ("id", "en"):
        assert "sudah pernah" not in out[f"joined-{lang}"]
        assert "digabungkan" not in out[f"joined-{lang}"] and "joined" not in out[f"joined-{lang}"]
        assert out[f"joined-{lang}"] == out[f"fresh-{lang}"]
    assert out["joined-sms"] == out["fresh-sms"] and len(out["joined-sms"]) == 1


async def test_a_joined_letters_sms_and_cek_read_as_a_new_letters(
    letter_settings: Settings, aiohttp_client: Client,  # noqa: F811
) -> None:
    s = with_section(letter_settings, "web", csrf_key=SecretStr("k"))
    async with texting(s, aiohttp_client) as (feed, sent):
        gw, client = feed.gateway, feed.client
        cid, tid = await feed.complaint(1)  # NIK_SITI on the web
        await add_staff(StaffStore(gw.engine, gw.settings.letter), "budi")
        token = await login(client, "budi")
        reviews = {k: await ready_letter(client, token, f"{k}.png") for k in ("joined", "fresh")}
        # The routing core verifies Siti's complaint while the letter waits for the clerk.
        await publish(feed.settings, status(cid, tid, "verified", datetime.now(UTC).isoformat()),
                      "r3-1")
        await wait_until(lambda: feed.count("applied") == 1, "applied")
        tids = {}
        phones = {"joined": "+6281311112222", "fresh": "+6281333334444"}
        for kind, nik in (("joined", NIK_SITI), ("fresh", NIK_FRESH)):
            resp = await client.post(reviews[kind], data={
                **VALID_LETTER, "csrf": token, "nik": nik, "phone": phones[kind],
                "action": "confirm"})
            tids[kind] = tracking.normalize(
                TID.search(await resp.text()).group(1))  # type: ignore[union-attr]
        assert await gw.intake.count_complaints() == 2
        await wait_until(lambda: len(sent) == 2, "the receipts by SMS")

        def by(phone: str, start: int = 0) -> list[str]:
            return [b for to, b in sent[start:] if to == phone]

        def scrub(kind: str, texts: list[str]) -> list[str]:
            t = tids[kind]
            return [x.replace(tracking.display(t), "<T>").replace(t, "<T>") for x in texts]

        assert scrub("joined", by(phones["joined"])) == scrub("fresh", by(phones["fresh"]))
        for kind in ("joined", "fresh"):
            n = len(sent)
            resp = await client.get("/sms/kannel", params=kannel_mo(f"CEK {tids[kind]}",
                                                                     phones[kind]))
            assert resp.status == 200
            await wait_until(lambda n=n: len(sent) > n, "CEK answered")
        assert scrub("joined", by(phones["joined"])) == scrub("fresh", by(phones["fresh"]))
        async with gw.engine.connect() as conn:
            fcid = (await conn.exec_driver_sql(
                f"SELECT id FROM complaints WHERE tracking_id = '{tids['fresh']}'")).scalar_one()
        now = datetime.now(UTC).isoformat()
        await publish(feed.settings, status(cid, tid, "forwarded", now, agency="Dinas X"), "r3-2")
        await publish(feed.settings, status(fcid, tids["fresh"], "forwarded", now,
                                            agency="Dinas X"), "r3-3")
        await wait_until(lambda: len(sent) == 6, "the status SMS")
        for kind in ("joined", "fresh"):
            n = len(sent)
            resp = await client.get("/sms/kannel", params=kannel_mo(f"CEK {tids[kind]}",
                                                                     phones[kind]))
            await wait_until(lambda n=n: len(sent) > n, "CEK answered")
        assert scrub("joined", by(phones["joined"])) == scrub("fresh", by(phones["fresh"]))
        for kind in ("joined", "fresh"):
            api = await (await client.get(f"/api/v1/complaints/{tids[kind]}")).json()
            assert (api["status"], api["agency"]) == ("forwarded", "Dinas X"), (kind, api)


async def _age(gw: bootstrap.Gateway, minutes: int) -> None:
    """Everything stored so far arrived ``minutes`` earlier (past the retry window)."""
    from datetime import timedelta

    from sqlalchemy import update

    from gateway.storage.schema import complaints, raw_inbound

    async with gw.engine.begin() as conn:
        back = timedelta(minutes=minutes)
        from sqlalchemy import select

        for rid, rec, sto in (await conn.execute(select(
                raw_inbound.c.id, raw_inbound.c.received_at, raw_inbound.c.stored_at))).all():
            await conn.execute(update(raw_inbound).where(raw_inbound.c.id == rid).values(
                received_at=rec - back, stored_at=sto - back))
        for cid, rec in (await conn.execute(select(
                complaints.c.id, complaints.c.received_at))).all():
            await conn.execute(update(complaints).where(complaints.c.id == cid).values(
                received_at=rec - back))


async def test_a_stranger_texting_the_same_matter_again_is_told_what_a_new_complainant_is(
    settings: Settings, aiohttp_client: Client
) -> None:
    """A new complaint's sender texting the same matter again later (past the retry window,
    same phone) is told the same ID again; so is a stranger who typed someone's NIK, texting
    the same again from the same phone (a second, different ID would tell them their first
    message joined someone else's complaint)."""
    async with texting(settings, aiohttp_client) as (feed, sent):
        await feed.complaint(1)  # Siti, NIK_SITI, on the web

        async def sms(text: str, phone: str) -> str:
            n = len(sent)
            resp = await feed.client.get("/sms/kannel", params=kannel_mo(text, phone))
            assert resp.status == 200
            await wait_until(lambda: len(sent) > n, "answered")
            return sent[-1][1]

        first = {"joined": await sms(SMS_TEXT.format(nik=NIK_SITI), STRANGER),
                 "fresh": await sms(SMS_TEXT.format(nik=NIK_FRESH), OTHER)}
        await _age(feed.gateway, 20)
        again_text = "NIK {nik} lampu jln gang 1 kenanga msh mati udh 2 mgg tlg segera diperbaiki"
        again = {"joined": await sms(again_text.format(nik=NIK_SITI), STRANGER),
                 "fresh": await sms(again_text.format(nik=NIK_FRESH), OTHER)}
        told = {k: (_own(first[k]), _own(again[k])) for k in first}
        assert await feed.gateway.intake.count_complaints() == 2  # Siti's and the fresh one
        assert told["fresh"][0] == told["fresh"][1], told  # the control
        assert told["joined"][0] == told["joined"][1], told


async def test_flood_control_treats_a_strangers_repeat_as_a_new_complainants(
    settings: Settings, aiohttp_client: Client
) -> None:
    """Past the flood allowance a new complainant texting the same matter again gets no
    reply (its receipt names an ID the number was told); nor does the stranger who typed
    someone's NIK (a new ID each time would get one through)."""
    async with texting(settings, aiohttp_client) as (feed, sent):
        await feed.complaint(1)  # Siti, NIK_SITI, on the web

        async def sms(text: str, phone: str) -> None:
            resp = await feed.client.get("/sms/kannel", params=kannel_mo(text, phone))
            assert resp.status == 200

        await sms(SMS_TEXT.format(nik=NIK_SITI), STRANGER)
        await sms(SMS_TEXT.format(nik=NIK_FRESH), OTHER)
        for _ in range(4):  # the allowance (5 replies) used up by CEKs
            await sms("CEK K7QM4XRT9", STRANGER)
            await sms("CEK K7QM4XRT9", OTHER)
        await wait_until(lambda: len(sent) == 10, "ten replies")
        await _age(feed.gateway, 20)
        again_text = "NIK {nik} lampu jln gang 1 kenanga msh mati udh 2 mgg tlg segera diperbaiki"
        await sms(again_text.format(nik=NIK_SITI), STRANGER)
        await sms(again_text.format(nik=NIK_FRESH), OTHER)
        async with feed.gateway.engine.connect() as conn:
            rows = (await conn.exec_driver_sql(
                "SELECT status FROM sms_replies WHERE kind = 'receipt' "
                "ORDER BY created_at")).scalars().all()
        assert len(rows) == 4
        assert rows[3] == "suppressed"  # the control: the new complainant's repeat
        assert rows[2] == rows[3], rows  # the stranger's repeat


async def test_one_status_change_texts_a_stranger_once_as_a_new_complainant(
    settings: Settings, aiohttp_client: Client
) -> None:
    """After texting the same matter twice (past the retry window), a new complainant gets one
    status SMS per change, and so does the stranger whose two messages joined someone's
    complaint."""
    async with texting(settings, aiohttp_client) as (feed, sent):
        cid, tid = await feed.complaint(1)  # Siti, NIK_SITI, on the web

        async def sms(text: str, phone: str) -> None:
            n = len(sent)
            resp = await feed.client.get("/sms/kannel", params=kannel_mo(text, phone))
            assert resp.status == 200
            await wait_until(lambda: len(sent) > n, "answered")

        await sms(SMS_TEXT.format(nik=NIK_SITI), STRANGER)
        await sms(SMS_TEXT.format(nik=NIK_FRESH), OTHER)
        await _age(feed.gateway, 20)
        again_text = "NIK {nik} lampu jln gang 1 kenanga msh mati udh 2 mgg tlg segera diperbaiki"
        await sms(again_text.format(nik=NIK_SITI), STRANGER)
        await sms(again_text.format(nik=NIK_FRESH), OTHER)
        fresh = _own(sent[1][1])
        async with feed.gateway.engine.connect() as conn:
            fcid = (await conn.exec_driver_sql(
                f"SELECT id FROM complaints WHERE tracking_id = '{fresh}'")).scalar_one()
        now = datetime.now(UTC).isoformat()
        n = len(sent)
        await publish(feed.settings, status(cid, tid, "forwarded", now), "r3-s1")
        await publish(feed.settings, status(fcid, fresh, "forwarded", now), "r3-s2")
        await wait_until(lambda: feed.count("applied") == 2, "applied")
        await wait_until(lambda: len(sent) >= n + 2, "the status SMS")
        await asyncio.sleep(2)
        counts = {p: sum(1 for to, _ in sent[n:] if to == p) for p in (STRANGER, OTHER)}
        assert counts[OTHER] == 1  # the control
        assert counts[STRANGER] == counts[OTHER], sent[n:]
