"""The /sms/kannel route on the real databases (both SQLite and PostgreSQL), without Kannel."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from channels import sms as sms_channel
from channels.sms import kannel, replies
from channels.sms.ports import FragmentSet
from channels.sms.settings import SmsSettings
from gateway import bootstrap, tracking
from gateway.settings import Settings
from gateway.storage.schema import quarantine, sms_replies
from tests.channels.sms.http_fixtures import Request, load
from tests.support import (
    FixedClock,
    free_port,
    kannel_mo,
    opened_complaints,
    opened_events,
    opened_raw,
    with_section,
)

pytestmark = pytest.mark.integration

Client = Callable[..., Awaitable[TestClient[Any, Any]]]
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "kannel"
TRACKING = re.compile(r"No\. lacak: ([0-9A-Z]{4})-([0-9A-Z]{5})")


def fixture(name: str) -> str:
    return (FIXTURES / f"{name}.txt").read_text().rstrip("\n")


def query(text: str, message_id: str, sender: str = "%2B6281200000001") -> str:
    from urllib.parse import quote_plus

    return f"p={sender}&P=1708&b={quote_plus(text)}&c=0&C=UTF-8&I={message_id}&u=&i=inject"


@pytest.fixture
async def gw(settings: Settings) -> AsyncIterator[bootstrap.Gateway]:
    gateway = bootstrap.build(settings)
    yield gateway
    await gateway.close()


@pytest.fixture
async def client(gw: bootstrap.Gateway, aiohttp_client: Client) -> TestClient[Any, Any]:
    return await aiohttp_client(bootstrap.build_app(gw))


def tracking_of(reply: str) -> str:
    match = TRACKING.search(reply)
    assert match, reply
    return match.group(1) + match.group(2)


async def test_complaint_is_answered_in_plain_text_after_commit(
    client: TestClient[Any, Any], gw: bootstrap.Gateway
) -> None:
    q = fixture("mo__region_nik_rahasia")
    resp = await client.get(f"/sms/kannel?{q}")
    reply = await resp.text()
    assert resp.status == 200 and resp.content_type == "text/plain" and resp.charset == "utf-8"
    tid = tracking_of(reply)
    assert reply == (
        f"LAPOR! Laporan diterima. No. lacak: {tid[:4]}-{tid[4:]}. "
        f"Cek status: kirim CEK {tid} ke 1708."
    )
    (row,) = await opened_complaints(gw.engine, gw.keys)
    assert row.tracking_id == tid
    (event_body,) = await opened_events(gw.engine, gw.keys)
    (raw,) = await opened_raw(gw.engine, gw.keys)
    assert row.channel == "sms" and row.body == "pungli di kantor kelurahan" and row.confidential
    assert row.location["region_code"] == "32"
    # The reporter is encrypted at rest; the event for the routing core carries it.
    event = json.loads(event_body)
    assert event["reporter"]["nik"] == "3201014101900001"
    assert event["reporter"]["phone"] == "+6281200000001"
    assert raw["body"] == q.encode() and raw["parser"] == "sms.kannel"
    assert raw["provider_message_id"] == "56538353-a454-478e-8dd9-7b9dc0975df7"
    meta = raw["transport_meta"]
    assert meta["sender"] == "+6281200000001"
    assert meta["smsc"] == "inject" and meta["charset"] == "UTF-8"


async def test_redelivery_with_the_same_message_id_gets_the_first_receipt(
    client: TestClient[Any, Any], gw: bootstrap.Gateway
) -> None:
    q = query("Lampu jalan mati", "same-id-1")
    first = await (await client.get(f"/sms/kannel?{q}")).text()
    second = await (await client.get(f"/sms/kannel?{q}")).text()
    assert tracking_of(first) == tracking_of(second)
    assert await gw.intake.count_complaints() == 1


async def test_post_form_body_is_accepted_too(
    client: TestClient[Any, Any], gw: bootstrap.Gateway
) -> None:
    resp = await client.post(
        "/sms/kannel",
        data=query("Sampah menumpuk", "post-1"),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert resp.status == 200 and "No. lacak" in await resp.text()
    assert await gw.intake.count_complaints() == 1


async def test_post_url_request_is_read_from_its_url_not_its_text_body(
    client: TestClient[Any, Any], gw: bootstrap.Gateway
) -> None:
    # Kannel's post-url (smsbox.c, TRANSTYPE_POST_URL) expands the escapes in the URL, as
    # get-url does, and POSTs the SMS text itself as a text/plain body: not a form.
    resp = await client.post(
        f"/sms/kannel?{query('Sampah menumpuk di pasar', 'post-url-1')}",
        data=b"Sampah menumpuk di pasar",
        headers={"Content-Type": 'text/plain; charset="UTF-8"'},
    )
    assert resp.status == 200 and "No. lacak" in await resp.text()
    (row,) = await opened_complaints(gw.engine, gw.keys)
    assert row.body == "Sampah menumpuk di pasar"


def recorded_post_url(name: str) -> Request:
    """A post-url request a real Kannel 1.4.5 sent (fixtures/kannel/post_url__*.http)."""
    req = load(f"kannel/post_url__{name}")
    headers = {k: v for k, v in req.headers.items() if k != "Content-Length"}
    return Request(req.method, req.target, headers, req.body)


async def post_url(
    client: TestClient[Any, Any], req: Request, target: str | None = None, **headers: str
) -> tuple[int, str]:
    resp = await client.post(target or req.target, data=req.body, headers=req.headers | headers)
    return resp.status, await resp.text()


async def test_post_url_without_a_query_stores_every_mo_with_its_own_text_and_sender(
    client: TestClient[Any, Any], gw: bootstrap.Gateway
) -> None:
    # post-url = "http://gw/sms/kannel" with send-sender = true: the text in the body, the rest
    # in X-Kannel-* headers, no %I. Every MO was stored as the same empty query, and every one
    # after the first answered as a redelivery of it: dropped.
    req = recorded_post_url("sender_id__gsm")
    first = replace(req, body=b"Jalan rusak parah di gang Mawar")
    second = replace(req, body=b"Sampah menumpuk di pasar Baru")
    status1, answer1 = await post_url(client, first, "/sms/kannel")
    status2, answer2 = await post_url(
        client, second, "/sms/kannel", **{"X-Kannel-From": "+6281200000099"}
    )
    assert status1 == status2 == 200 and answer1 != answer2
    assert "No. lacak" in answer1 and "No. lacak" in answer2
    complaints = await opened_complaints(gw.engine, gw.keys)
    assert sorted(c.body for c in complaints) == [
        "Jalan rusak parah di gang Mawar",
        "Sampah menumpuk di pasar Baru",
    ]
    raws = await opened_raw(gw.engine, gw.keys)
    assert [r["transport_meta"]["sender"] for r in raws] == ["+6281200000001", "+6281200000099"]
    # smsbox retrying a request whose answer it lost sends it again unchanged (its headers
    # kept, X-Kannel-Time the MO's): the same receipt, nothing new.
    assert await post_url(client, first, "/sms/kannel") == (200, answer1)
    assert len(await opened_raw(gw.engine, gw.keys)) == 2


async def test_post_url_with_the_id_in_its_url_is_keyed_by_it_and_stored_as_its_get_url(
    client: TestClient[Any, Any], gw: bootstrap.Gateway
) -> None:
    req = recorded_post_url("sender_id__gsm")
    status, answer = await post_url(client, req)
    assert status == 200 and "No. lacak" in answer
    (raw,) = await opened_raw(gw.engine, gw.keys)
    assert raw["provider_message_id"] == req.query.split("&")[0].removeprefix("I=")
    assert raw["body"] == kannel.post_url_query(req.query.encode(), req.headers, req.body)
    assert raw["content_type"] == "application/x-www-form-urlencoded"
    (row,) = await opened_complaints(gw.engine, gw.keys)
    assert row.body == "Jalan rusak @£$€ {biaya} [RT 05] ~ tolong é"
    # The same MO under another id (another message) is another complaint's raw row.
    other = req.target.replace(req.query.split("&")[0], "I=another-id")
    assert (await post_url(client, req, other))[0] == 200
    assert len(await opened_raw(gw.engine, gw.keys)) == 2


async def test_post_url_8bit_ucs2_and_a_part_are_read_from_their_headers(
    client: TestClient[Any, Any], gw: bootstrap.Gateway
) -> None:
    for name in ("sender_id__data", "norecode__ucs2"):
        status, answer = await post_url(client, recorded_post_url(name))
        assert status == 200 and "No. lacak" in answer, name
    bodies = sorted(c.body for c in await opened_complaints(gw.engine, gw.keys))
    assert bodies == [
        "Lampu jalan mati 😡👍🏽 sudah 3 hari",
        "Sampah menumpuk\r\ndi  Jl. Merdeka 10\r\n100% bau & kotor +",
    ]
    # A part Kannel could not join (X-Kannel-UDH): held, nothing said yet.
    assert await post_url(client, recorded_post_url("sender_id__fragment")) == (200, "")
    held = (await opened_raw(gw.engine, gw.keys))[-1]
    assert held["status"] == "recorded" and held["transport_meta"]["udh"] == "050003280401"


async def test_post_url_without_send_sender_is_stored_quarantined_and_logged(
    client: TestClient[Any, Any], gw: bootstrap.Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    # No X-Kannel-From (send-sender is off by default): the sender is unknown, the MO is kept
    # for an officer (with its text), and the log names the fix.
    req = recorded_post_url("bare__gsm")
    with caplog.at_level(logging.WARNING, logger="channels.sms.routes"):
        status, _ = await post_url(client, req)
        assert status == 200
        assert (await post_url(client, replace(req, body=b"Pesan lain")))[0] == 200
    assert "send-sender = true" in caplog.text
    raws = await opened_raw(gw.engine, gw.keys)
    assert [r["status"] for r in raws] == ["quarantined", "quarantined"]
    assert kannel.split_query(raws[0]["body"])["b"] == req.body
    assert await gw.intake.count_complaints() == 0


async def test_post_form_with_the_token_in_the_url_is_authorized(
    gw: bootstrap.Gateway, aiohttp_client: Client
) -> None:
    app = web.Application()
    sms_channel.setup(app, gw.intake, SmsSettings(kannel_token="s3cret"))
    client = await aiohttp_client(app)
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    q = query("Sampah menumpuk", "post-tok-1")
    refused = await client.post("/sms/kannel?token=wrong", data=q, headers=form)
    assert refused.status == 403
    resp = await client.post("/sms/kannel?token=s3cret", data=q, headers=form)
    assert resp.status == 200 and "No. lacak" in await resp.text()
    (raw,) = await opened_raw(gw.engine, gw.keys)
    assert raw["body"] == q.encode()


async def test_status_query_help_and_unknown_id(client: TestClient[Any, Any]) -> None:
    reply = await (await client.get(f"/sms/kannel?{query('Jalan rusak', 'c-1')}")).text()
    tid = tracking_of(reply)
    status = await (await client.get(f"/sms/kannel?{query(f'cek {tid.lower()}', 'c-2')}")).text()
    assert status.startswith(f"LAPOR! Laporan {tid[:4]}-{tid[4:]} (diterima ")
    assert status.endswith("status DITERIMA.")
    helped = await (await client.get(f"/sms/kannel?{fixture('mo__info')}")).text()
    assert helped.startswith("LAPOR! Kirim isi laporan ke 1708.")
    unknown = await (await client.get(f"/sms/kannel?{fixture('mo__cek_status')}")).text()
    assert unknown.startswith("LAPOR! No. lacak K7QM-4XRTX tidak ditemukan.")


async def test_empty_sms_is_quarantined_and_told_so(
    client: TestClient[Any, Any], gw: bootstrap.Gateway
) -> None:
    resp = await client.get(f"/sms/kannel?{fixture('mo__empty')}")
    assert resp.status == 200
    assert (await resp.text()).startswith("LAPOR! Pesan Anda belum berisi laporan.")
    async with gw.engine.connect() as conn:
        rows = (await conn.execute(select(quarantine))).all()
    assert len(rows) == 1 and rows[0].stage == "empty"


async def test_fragment_is_stored_and_answered_with_an_empty_body(
    client: TestClient[Any, Any], gw: bootstrap.Gateway
) -> None:
    resp = await client.get(f"/sms/kannel?{fixture('mo__fragment_timeout')}")
    assert resp.status == 200 and await resp.text() == ""
    (raw,) = await opened_raw(gw.engine, gw.keys)
    assert raw["status"] == "recorded" and raw["transport_meta"]["udh"] == "050003280401"
    assert await gw.intake.count_complaints() == 0


# Two UCS-2 parts whose emoji's surrogate pair the phone split between them, handed over one by
# one by Kannel (see SOURCES.md): as UTF-16BE (mo-recode = no), and as smsbox recodes them
# (mo-recode = yes: the high half dropped, the low one sent as bytes that are not UTF-8).
SPLIT_PAIR = {
    "ucs2": (
        ["mo__ucs2_part1_split_pair", "mo__ucs2_part2_split_pair"],
        "Lampu jalan mati sudah 3 hari 😡 mohon diperbaiki",
    ),
    "recoded": (
        ["mo__recoded_part1_split_pair", "mo__recoded_part2_split_pair"],
        "Lampu jalan mati sudah 3 hari \ufffd mohon diperbaiki",
    ),
}


@pytest.mark.parametrize(
    ("kind", "order"),
    [("ucs2", [0, 1]), ("ucs2", [1, 0]), ("recoded", [0, 1])],
    ids=["ucs2-in-order", "ucs2-reversed", "recoded"],
)
async def test_parts_splitting_an_emoji_become_one_complaint(
    client: TestClient[Any, Any], gw: bootstrap.Gateway, kind: str, order: list[int]
) -> None:
    names, body = SPLIT_PAIR[kind]
    first = await client.get(f"/sms/kannel?{fixture(names[order[0]])}")
    assert first.status == 200 and await first.text() == ""  # held, nothing to say yet
    second = await client.get(f"/sms/kannel?{fixture(names[order[1]])}")
    tracking_of(await second.text())
    (row,) = await opened_complaints(gw.engine, gw.keys)
    assert row.body == body and row.title is None
    (event,) = await opened_events(gw.engine, gw.keys)
    assert json.loads(event.encode("utf-8"))["body"] == body  # strict UTF-8 throughout
    async with gw.engine.connect() as conn:
        assert (await conn.execute(select(quarantine))).all() == []
    joined = [r for r in await opened_raw(gw.engine, gw.keys) if r["parser"] == "sms.joined"]
    assert json.loads(joined[0]["body"].decode("utf-8"))["missing"] == []


async def test_a_part_kannel_hands_over_after_its_own_timeout_is_joined_with_the_default(
    settings: Settings, aiohttp_client: Client
) -> None:
    # With the shipped settings (sms.fragment_timeout 3600, Kannel's combine timeout 1800): a
    # sibling late by d reaches Kannel d after the first part and the gateway d after it (each
    # handed over once Kannel's own 1800 s wait ended). At 1800 s, as shipped before, the first
    # part was filed alone before any late sibling came: two incomplete complaints.
    assert settings.sms.fragment_timeout == 3600
    clock = FixedClock(datetime(2026, 12, 5, 2, 0, tzinfo=UTC))
    gateway = bootstrap.build(settings, clock=clock)
    try:
        assert gateway.sms is not None
        client = await aiohttp_client(bootstrap.build_app(gateway))
        one = kannel_mo("Lampu jalan di gang Melati mati sejak ", "+6281200000078")
        one["u"] = "0500032B0201"
        two = kannel_mo("minggu lalu, gelap sekali di malam hari.", "+6281200000078")
        two["u"] = "0500032B0202"
        assert await (await client.get("/sms/kannel", params=one)).text() == ""
        for late in (1800 + 60, 1800 + 1700):  # the sweeps run every minute
            clock.now = datetime(2026, 12, 5, 2, 0, tzinfo=UTC) + timedelta(seconds=late)
            assert await gateway.sms.service.sweep() == 0
        tracking_of(await (await client.get("/sms/kannel", params=two)).text())
        (row,) = await opened_complaints(gateway.engine, gateway.keys)
        assert row.title is None
        assert row.body == "Lampu jalan di gang Melati mati sejak minggu lalu, gelap sekali di malam hari."
        # A part whose sibling never comes is filed, incomplete, once 3600 s have passed.
        lone = kannel_mo("Jembatan kayu di desa Sukamaju patah ", "+6281200000079")
        lone["u"] = "0500032C0201"
        await client.get("/sms/kannel", params=lone)
        clock.now += timedelta(seconds=3500)
        assert await gateway.sms.service.sweep() == 0
        clock.now += timedelta(seconds=160)
        assert await gateway.sms.service.sweep() == 1
        assert len(await opened_complaints(gateway.engine, gateway.keys)) == 2
    finally:
        await gateway.close()


async def test_timed_out_sets_are_swept_a_batch_at_a_time(
    settings: Settings, aiohttp_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A flood of parts with random references (each a set that never completes) was read into
    # memory whole by one sweep.
    from channels.sms import service as sms_service

    monkeypatch.setattr(sms_service, "SWEEP_BATCH", 2)
    gateway = bootstrap.build(with_section(settings, "sms", fragment_timeout=0.01))
    try:
        assert gateway.sms is not None and gateway.sms.service._buffer is not None
        buffer = gateway.sms.service._buffer
        asked: list[int] = []
        read = buffer.expired

        async def expired(older_than: datetime, limit: int) -> list[FragmentSet]:
            sets = await read(older_than, limit)
            asked.append(len(sets))
            return sets

        monkeypatch.setattr(buffer, "expired", expired)
        client = await aiohttp_client(bootstrap.build_app(gateway))
        for n in range(5):
            mo = kannel_mo(f"Bagian pertama laporan nomor {n}", f"+62812345001{n:02d}")
            mo["u"] = f"050003{0x40 + n:02X}0201"  # part 1 of 2, its own reference
            resp = await client.get("/sms/kannel", params=mo)
            assert resp.status == 200 and await resp.text() == ""
        await asyncio.sleep(0.05)
        assert await gateway.sms.service.sweep() == 5
        assert asked == [2, 2, 1]
        assert len(await opened_complaints(gateway.engine, gateway.keys)) == 5
        assert await gateway.sms.service.sweep() == 0
    finally:
        await gateway.close()


async def test_part_whose_sibling_never_comes_keeps_its_text_with_fffd(
    settings: Settings, aiohttp_client: Client
) -> None:
    gateway = bootstrap.build(with_section(settings, "sms", fragment_timeout=0.01))
    try:
        client = await aiohttp_client(bootstrap.build_app(gateway))
        resp = await client.get(f"/sms/kannel?{fixture('mo__ucs2_part1_split_pair')}")
        assert resp.status == 200 and await resp.text() == ""
        await asyncio.sleep(0.05)
        assert gateway.sms is not None and await gateway.sms.service.sweep() == 1
        (row,) = await opened_complaints(gateway.engine, gateway.keys)
        assert row.body == "Lampu jalan mati sudah 3 hari \ufffd [...]"
        assert row.title == "SMS tidak lengkap: bagian 2 dari 2 tidak diterima"
        (event,) = await opened_events(gateway.engine, gateway.keys)
        assert json.loads(event.encode("utf-8"))["body"] == row.body
    finally:
        await gateway.close()


async def test_undecodable_request_is_quarantined_not_lost(
    client: TestClient[Any, Any], gw: bootstrap.Gateway
) -> None:
    resp = await client.get("/sms/kannel?p=%2B6281200000001&b=%FF%FE&c=0&C=UTF-8&I=bad-1")
    reply = await resp.text()
    assert resp.status == 200 and reply.startswith("LAPOR! Pesan Anda diterima dan akan diperiksa")
    assert "No. lacak" in reply
    async with gw.engine.connect() as conn:
        assert len((await conn.execute(select(quarantine))).all()) == 1


async def test_token_is_checked_and_never_stored(
    gw: bootstrap.Gateway, aiohttp_client: Client
) -> None:
    app = web.Application()
    sms_channel.setup(app, gw.intake, SmsSettings(kannel_token="s3cret"))
    client = await aiohttp_client(app)
    q = query("Jalan rusak", "tok-1")
    assert (await client.get(f"/sms/kannel?{q}")).status == 403
    assert (await client.get(f"/sms/kannel?{q}&token=wrong")).status == 403
    resp = await client.get(f"/sms/kannel?token=s3cret&{q}")
    assert resp.status == 200 and "No. lacak" in await resp.text()
    basic = "Basic " + base64.b64encode(b"kannel:s3cret").decode()
    resp = await client.get(
        f"/sms/kannel?{query('Jalan rusak', 'tok-2')}", headers={"Authorization": basic}
    )
    assert resp.status == 200
    bodies = [r["body"] for r in await opened_raw(gw.engine, gw.keys)]
    assert sorted(bodies) == sorted([q.encode(), query("Jalan rusak", "tok-2").encode()])


async def test_database_down_answers_503_so_smsbox_retries(
    settings: Settings, aiohttp_client: Client
) -> None:
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/none"
    gateway = bootstrap.build(with_section(settings, "database", url=url, connect_timeout=0.5))
    try:
        client = await aiohttp_client(bootstrap.build_app(gateway))
        resp = await client.get(f"/sms/kannel?{query('Jalan rusak', 'down-1')}")
        assert resp.status == 503 and resp.content_type == "text/plain"
    finally:
        await gateway.close()


async def test_the_mo_and_its_reply_commit_together_or_not_at_all(
    client: TestClient[Any, Any], gw: bootstrap.Gateway
) -> None:
    # The database refuses the reply row (a trigger): the complaint must not commit without it.
    postgres = gw.engine.dialect.name == "postgresql"
    async with gw.engine.begin() as conn:
        if postgres:
            await conn.exec_driver_sql(
                "CREATE FUNCTION refuse_reply() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'reply store refuses'; END $$"
            )
            await conn.exec_driver_sql(
                "CREATE TRIGGER refuse_reply BEFORE INSERT ON sms_replies "
                "FOR EACH ROW EXECUTE FUNCTION refuse_reply()"
            )
        else:
            await conn.exec_driver_sql(
                "CREATE TRIGGER refuse_reply BEFORE INSERT ON sms_replies "
                "BEGIN SELECT RAISE(ABORT, 'reply store refuses'); END"
            )
    try:
        resp = await client.get(f"/sms/kannel?{query('Jembatan putus', 'together-1')}")
        assert resp.status == 503  # smsbox will deliver it again
        assert await gw.intake.count_complaints() == 0
        assert await opened_raw(gw.engine, gw.keys) == []
        assert await opened_events(gw.engine, gw.keys) == []
    finally:
        async with gw.engine.begin() as conn:
            await conn.exec_driver_sql("DROP TRIGGER refuse_reply" + (" ON sms_replies" if postgres else ""))
            if postgres:
                await conn.exec_driver_sql("DROP FUNCTION refuse_reply()")
    resp = await client.get(f"/sms/kannel?{query('Jembatan putus', 'together-1')}")
    reply = await resp.text()
    assert resp.status == 200 and "No. lacak" in reply
    async with gw.engine.connect() as conn:
        (row,) = (await conn.execute(select(sms_replies))).all()
    assert row.tracking_id == tracking_of(reply) and row.kind == "receipt"
    assert await gw.intake.count_complaints() == 1


def test_sms_section_of_the_settings_reaches_the_channel() -> None:
    from pathlib import Path

    from gateway.bootstrap import sms_settings
    from gateway.settings import load_settings

    config = Path(__file__).resolve().parents[3] / "config" / "gateway.toml"
    default = sms_settings(load_settings(config, environ={}))
    assert default.kannel_token is None and default.short_code == "1708"
    assert default.regions["JABAR"] == "32"
    custom = sms_settings(
        load_settings(
            config,
            environ={
                "LAPOR_SMS__KANNEL_TOKEN": "rahasia",
                "LAPOR_SMS__REGIONS": '{"CRB": "32.09"}',
            },
        )
    )
    assert custom.kannel_token == "rahasia" and dict(custom.regions) == {"CRB": "32.09"}


# ---- every message a citizen may send gets its reply, in one GSM-7 segment ---------------------

VALID_NIK = "3201011508900001"
INVALID_NIK = "9901014101900001"
UNKNOWN_TID = "K7QM4XRT" + tracking._check_symbol("K7QM4XRT")
UNKNOWN_SHOWN = tracking.display(UNKNOWN_TID)
MISTYPED_TID = UNKNOWN_TID[:-1] + ("2" if UNKNOWN_TID[-1] != "2" else "3")
EMPTY = "LAPOR! Pesan Anda belum berisi laporan."
HELP = "LAPOR! Kirim isi laporan ke 1708."
HELP_EN = "LAPOR! Send your report to 1708."
# CEK with no ID at all: nothing was looked for, how to ask.
HOW_TO_ASK = "LAPOR! Untuk cek status, kirim CEK<spasi>no.lacak ke 1708, contoh: "


def unknown(shown: str) -> str:
    return f"LAPOR! No. lacak {shown} tidak ditemukan. "


RECEIPT = "LAPOR! Laporan diterima. No. lacak: "


@pytest.mark.parametrize(
    ("text", "kind", "start"),
    [
        ("", "empty", EMPTY),
        ("   ", "empty", EMPTY),
        (f"NIK {VALID_NIK}", "empty", EMPTY),
        (VALID_NIK, "empty", EMPTY),
        ("JABAR", "empty", EMPTY),
        ("Papua Barat RAHASIA ANONIM", "empty", EMPTY),
        ("INFO", "help", HELP),
        ("bantuan", "help", HELP),
        ("HELP", "help", HELP_EN),
        ("CEK", "status-unknown", HOW_TO_ASK),
        ("Cek status laporan saya", "status-unknown", HOW_TO_ASK),
        # An ID not found is shown as it was read: the citizen sees the typo.
        (f"CEK {UNKNOWN_TID}", "status-unknown", unknown(UNKNOWN_SHOWN)),
        (f"cek {UNKNOWN_SHOWN}", "status-unknown", unknown(UNKNOWN_SHOWN)),
        (f"CEK {MISTYPED_TID}", "status-unknown", unknown(MISTYPED_TID)),
        (f"Cek status {MISTYPED_TID.lower()}", "status-unknown", unknown(MISTYPED_TID)),
        (f"CEK {UNKNOWN_SHOWN[:-1]}", "status-unknown", unknown(UNKNOWN_TID[:-1])),
        (f"jabar cek {UNKNOWN_TID}", "status-unknown", unknown(UNKNOWN_SHOWN)),
        (f"JABAR RAHASIA ANONIM nik {VALID_NIK} jalan rusak", "receipt", RECEIPT),
        (f"Papua Barat jalan rusak NIK {INVALID_NIK}", "receipt", RECEIPT),
        ("Cek jalan rusak di RT 05", "receipt", RECEIPT),
        # One word is no report (a ping, a test, an unknown command): told how to report.
        ("p", "too-short", EMPTY),
        ("tes", "too-short", EMPTY),
        ("Halo!", "too-short", EMPTY),
        ("REG", "too-short", EMPTY),
        (f"banjir NIK {VALID_NIK}", "too-short", EMPTY),
        ("Banjir lagi", "receipt", RECEIPT),
        ("JABAR banjir", "receipt", RECEIPT),  # what, and where
        # Courtesies around a query, greetings alone, service commands: no report filed.
        ("Cek status laporan saya dong", "status-unknown", HOW_TO_ASK),
        (f"Tolong cek {MISTYPED_TID} ya", "status-unknown", unknown(MISTYPED_TID)),
        ("Halo min", "too-short", EMPTY),
        ("REG LAPOR", "too-short", EMPTY),
        ("STOP SMS", "too-short", EMPTY),
        ("INFO LAPOR", "help", HELP),
        ("Cek jalan rusak di depan pasar Sumber sudah 2 bulan", "receipt", RECEIPT),
        (f"Jalan rusak, no KTP saya {VALID_NIK}", "receipt", RECEIPT),
        # SMS spellings, courtesies before CEK or after INFO, a NIK named in a query.
        ("Gmn status laporan saya?", "status-unknown", HOW_TO_ASK),
        (f"Cek status laporan NIK saya {VALID_NIK}", "status-unknown", HOW_TO_ASK),
        (f"Mohon cek laporan {UNKNOWN_TID} sudah 2 minggu belum ada tindak lanjut dari dinas",
         "status-unknown", unknown(UNKNOWN_SHOWN)),  # fmt: skip
        ("Info dong min", "help", HELP),
        ("Info banjir di Cileunyi", "receipt", RECEIPT),
        ("Tolong cek jalan rusak di depan pasar sudah 2 bulan", "receipt", RECEIPT),
        ("Mohon dicek lampu jalan mati di gang mawar", "receipt", RECEIPT),
        (f"Lampu jalan mati, NIK saya, {VALID_NIK}", "receipt", RECEIPT),
    ],
)
async def test_every_kind_of_message_is_answered_in_one_gsm7_segment(
    client: TestClient[Any, Any], gw: bootstrap.Gateway, text: str, kind: str, start: str
) -> None:
    resp = await client.get(f"/sms/kannel?{query(text, 'every-1')}")
    reply = await resp.text()
    assert resp.status == 200 and reply.startswith(start), reply
    assert len(reply) <= replies.SEGMENT and replies.is_portable(reply), reply
    # Nothing personal comes back: not the NIK (valid or not), not the number.
    assert VALID_NIK not in reply and INVALID_NIK not in reply and "81200000001" not in reply
    async with gw.engine.connect() as conn:
        (row,) = (await conn.execute(select(sms_replies))).all()
    assert row.kind == kind and row.body == reply
    assert await gw.intake.count_complaints() == (1 if kind == "receipt" else 0)
    if "NIK" in text and kind == "receipt":
        assert ("NIK tidak sah, tidak disimpan." in reply) == (INVALID_NIK in text)


STATUS_REPLY = re.compile(
    r"LAPOR! Laporan ([0-9A-Z]{4}-[0-9A-Z]{5}) \(diterima (\d\d-\d\d-\d{4})\): status DITERIMA\."
)


async def test_cek_of_someone_elses_id_shows_status_and_date_only(
    client: TestClient[Any, Any], gw: bootstrap.Gateway
) -> None:
    # A confidential complaint, and a message only an officer can read, from one citizen...
    secret = "RAHASIA Kepala desa Sukamaju minta uang NIK " + VALID_NIK
    confidential = tracking_of(await (await client.get(f"/sms/kannel?{query(secret, 'o-1')}")).text())
    bad = "p=%2B6281200000001&b=%FF%FE&c=0&C=UTF-8&I=o-2"
    quarantined = tracking_of(await (await client.get(f"/sms/kannel?{bad}")).text())
    # ... looked up by another: the ID, the date and the status, nothing else.
    other = "%2B6281299999999"
    for n, tid in enumerate((confidential, quarantined)):
        cek = query(f"CEK {tid}", f"o-cek-{n}", sender=other)
        reply = await (await client.get(f"/sms/kannel?{cek}")).text()
        match = STATUS_REPLY.fullmatch(reply)
        assert match is not None and match.group(1) == tracking.display(tid), reply
    assert await gw.intake.count_complaints() == 1


# ---- a query only the database can tell from a complaint --------------------------------------


async def test_a_split_id_before_a_sentence_is_a_query_only_when_it_exists(
    client: TestClient[Any, Any], gw: bootstrap.Gateway
) -> None:
    filed = await (await client.get(f"/sms/kannel?{query('Jalan rusak parah', 'm-1')}")).text()
    tid = tracking_of(filed)
    # The printed groups then a sentence: the ID exists, so the citizen asks for its status.
    asked = query(f"CEK {tracking.display(tid)} kok belum diproses juga", "m-2")
    status = await (await client.get(f"/sms/kannel?{asked}")).text()
    assert STATUS_REPLY.fullmatch(status) and tracking.display(tid) in status, status
    assert await gw.intake.count_complaints() == 1
    # Ordinary words passing for an ID (PDAM+TAMAN), and a valid ID nobody was given: filed.
    for n, text in enumerate(
        (
            "Cek PDAM Taman Sari, air mati sudah 3 hari tidak ada kabar",
            f"CEK {UNKNOWN_SHOWN} kok belum diproses juga",
        )
    ):
        reply = await (await client.get(f"/sms/kannel?{query(text, f'm-{n + 3}')}")).text()
        assert reply.startswith(RECEIPT) and tracking_of(reply) != tid, reply
    bodies = {c.body for c in await opened_complaints(gw.engine, gw.keys)}
    assert "Cek PDAM Taman Sari, air mati sudah 3 hari tidak ada kabar" in bodies
    assert len(bodies) == 3


@pytest.mark.parametrize(
    "template",
    [
        "Tolong cek {tid}",
        "Cek status laporan saya no lacak {dashed} terima kasih",
        "Laporan {tid} belum ditanggapi, tolong cek",
        "Tlg cek laporannya sy {dashed} gmn ya min",
        "Mohon dicekin {dashed}, sudah 2 minggu belum ada kabar sama sekali",
    ],
)
async def test_a_polite_status_query_gets_the_status_and_files_nothing(
    client: TestClient[Any, Any], gw: bootstrap.Gateway, template: str
) -> None:
    tid = tracking_of(await (await client.get(f"/sms/kannel?{query('Lampu mati', 'p-1')}")).text())
    text = template.format(tid=tid, dashed=tracking.display(tid))
    status = await (await client.get(f"/sms/kannel?{query(text, 'p-2')}")).text()
    assert STATUS_REPLY.fullmatch(status) and tracking.display(tid) in status, status
    assert await gw.intake.count_complaints() == 1


@pytest.mark.parametrize(
    "thanks", ["Terima kasih", "ok makasih min", "Siap pak", "Ok trm ksh min", "{dashed} makasih"]
)
async def test_thanks_after_a_receipt_is_recorded_and_not_answered(
    client: TestClient[Any, Any], gw: bootstrap.Gateway, thanks: str
) -> None:
    first = await (await client.get(f"/sms/kannel?{query('Lampu mati', 't-1')}")).text()
    assert first.startswith(RECEIPT)
    thanks = thanks.format(dashed=tracking.display(tracking_of(first)))  # the ID quoted
    resp = await client.get(f"/sms/kannel?{query(thanks, 't-2')}")
    assert resp.status == 200 and await resp.text() == ""
    assert await gw.intake.count_complaints() == 1
    raws = await opened_raw(gw.engine, gw.keys)
    assert [r["status"] for r in raws] == ["accepted", "recorded"]
    async with gw.engine.connect() as conn:
        rows = (await conn.execute(select(sms_replies))).all()
    assert [r.kind for r in rows] == ["receipt"]  # no reply row for the thanks
