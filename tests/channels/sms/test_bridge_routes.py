"""The Jasmin, Android and SMSSync routes, flood control and delivery reports, on both databases.

Each test posts a recorded request of the bridge (fixtures/, see SOURCES.md) to the real
application and reads what was committed.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pydantic import SecretStr
from sqlalchemy import select, update

from channels.sms import android
from gateway import bootstrap
from gateway.settings import Settings
from gateway.storage.schema import raw_inbound, sms_replies
from tests.channels.sms.http_fixtures import ANDROID_KEY, Request, load
from tests.support import free_port, opened_complaints, opened_raw, with_section

pytestmark = pytest.mark.integration

Client = Callable[..., Awaitable[TestClient[Any, Any]]]
JASMIN_TOKEN = "JASMIN-TOKEN"
SMSSYNC_SECRET = "SMSSYNC-SECRET"


def configure(settings: Settings, **sms: Any) -> Settings:
    values: dict[str, Any] = {
        "jasmin_token": SecretStr(JASMIN_TOKEN),
        "modem_secret": SecretStr(ANDROID_KEY.decode()),
        "jasmin_send_url": f"http://127.0.0.1:{free_port()}/send",
        "android_send_url": f"http://127.0.0.1:{free_port()}/messages",
    } | sms
    return with_section(settings, "sms", **values)


@pytest.fixture
async def gw(settings: Settings) -> AsyncIterator[bootstrap.Gateway]:
    gateway = bootstrap.build(configure(settings))
    yield gateway
    await gateway.close()


@pytest.fixture
async def client(gw: bootstrap.Gateway, aiohttp_client: Client) -> TestClient[Any, Any]:
    return await aiohttp_client(bootstrap.build_app(gw))


async def post(client: TestClient[Any, Any], req: Request, **headers: str) -> tuple[int, str]:
    sent = {k: v for k, v in req.headers.items() if k not in ("Host", "Content-Length")}
    resp = await client.post(req.target, data=req.body, headers=sent | headers)
    return resp.status, await resp.text()


def resigned(req: Request, key: bytes = ANDROID_KEY) -> dict[str, str]:
    """Fresh X-Timestamp / X-Signature (the fixtures' timestamp is years old: a replay)."""
    ts = str(int(time.time()))
    return {"X-Timestamp": ts, "X-Signature": android.sign(key, req.body, ts)}


async def rows(gw: bootstrap.Gateway, table: Any) -> list[Any]:
    async with gw.engine.connect() as conn:
        return list((await conn.execute(select(table))).all())


# ---- Jasmin -------------------------------------------------------------------------------------


async def test_jasmin_mo_is_acknowledged_after_commit_and_its_reply_queued(
    client: TestClient[Any, Any], gw: bootstrap.Gateway
) -> None:
    req = load("jasmin/mo__gsm_text")
    assert await post(client, req) == (200, "ACK/Jasmin")
    (complaint,) = await opened_complaints(gw.engine, gw.keys)
    assert complaint.body == "Lampu jalan mati @ Jl. Merdeka 10, sudah 3 hari"
    (raw,) = await opened_raw(gw.engine, gw.keys)
    assert raw["body"] == req.body and raw["parser"] == "sms.jasmin"  # no token in the body
    assert raw["provider_message_id"] == "4a2b6f0e-3c1d-4e5f-8a9b-0c1d2e3f4a5b"
    (reply,) = await rows(gw, sms_replies)
    assert (reply.status, reply.bridge, reply.kind) == ("pending", "jasmin", "receipt")
    assert reply.tracking_id == complaint.tracking_id and complaint.tracking_id in reply.body
    assert reply.smsc == "smppc_telkomsel" and reply.service_number == "1708"
    # Jasmin resends the same id (its ACK was lost): one complaint, one reply.
    assert await post(client, req) == (200, "ACK/Jasmin")
    assert (
        len(await opened_complaints(gw.engine, gw.keys)) == 1
        and len(await rows(gw, sms_replies)) == 1
    )


async def test_jasmin_flash_sms_becomes_a_complaint_not_a_quarantined_message(
    client: TestClient[Any, Any], gw: bootstrap.Gateway
) -> None:
    # Class 0 ("flash") MOs keep their data_coding 0x10 / 0x18 / 0xF0 (TS 23.038 section 4).
    for name in ("jasmin/mo__flash_gsm", "jasmin/mo__flash_ucs2", "jasmin/mo__class0_f0"):
        assert await post(client, load(name)) == (200, "ACK/Jasmin")
    assert {r["status"] for r in await opened_raw(gw.engine, gw.keys)} == {"accepted"}
    complaints = await opened_complaints(gw.engine, gw.keys)
    assert [c.body for c in complaints] == [
        "Banjir @ Jl. Sudirman 5, air setinggi lutut sejak subuh",
        "Pohon tumbang 😡 menutup jalan di depan SDN 3",
        "Lampu lalu lintas mati di simpang Pasar Baru, rawan tabrakan",
    ]
    replies = await rows(gw, sms_replies)
    assert [r.kind for r in replies] == ["receipt"] * 3


@pytest.mark.parametrize(
    ("fixture", "decimal", "octet"),
    [
        ("jasmin/mo__gsm_text", b"coding=0", b"coding=%00"),
        ("jasmin/mo__ucs2_emoji", b"coding=8", b"coding=%08"),
        ("jasmin/mo__flash_gsm", b"coding=16", b"coding=%10"),
        ("jasmin/mo__class0_f0", b"coding=240", b"coding=%F0"),
    ],
)
async def test_jasmin_coding_as_the_raw_data_coding_octet_is_read(
    client: TestClient[Any, Any], gw: bootstrap.Gateway, fixture: str, decimal: bytes, octet: bytes
) -> None:
    # Since jookies/jasmin#607 the thrower writes coding with DataCodingEncoder().encode(): the
    # data_coding octet itself, URL-encoded ("%00", "%F0"), not the number its docs show.
    req = load(fixture)
    assert req.body.endswith(decimal)
    body = req.body[: -len(decimal)] + octet
    sent = Request(req.method, req.target, req.headers | {"Content-Length": str(len(body))}, body)
    assert await post(client, sent) == (200, "ACK/Jasmin")
    (raw,) = await opened_raw(gw.engine, gw.keys)
    assert raw["status"] == "accepted" and raw["body"] == body
    assert len(await opened_complaints(gw.engine, gw.keys)) == 1


async def test_jasmin_get_connector_with_the_token_in_its_url_is_accepted(
    client: TestClient[Any, Any], gw: bootstrap.Gateway
) -> None:
    # A GET connector appends "?" and its fields to the baseurl as it is
    # (jasmin/routing/throwers.py: baseurl += '?%s' % encodedArgs), so the token the README
    # puts in that URL arrives as "token=JASMIN-TOKEN?id=...": it was refused (401), and Jasmin
    # dropped the MO after its retries.
    form = load("jasmin/mo__gsm_text").body.decode("ascii")
    resp = await client.get(f"/sms/jasmin?token={JASMIN_TOKEN}?{form}")
    assert (resp.status, await resp.text()) == (200, "ACK/Jasmin")
    (complaint,) = await opened_complaints(gw.engine, gw.keys)
    assert complaint.body == "Lampu jalan mati @ Jl. Merdeka 10, sudah 3 hari"
    (raw,) = await opened_raw(gw.engine, gw.keys)
    assert raw["body"].startswith(b"id=4a2b6f0e-") and JASMIN_TOKEN.encode() not in raw["body"]
    assert raw["provider_message_id"] == "4a2b6f0e-3c1d-4e5f-8a9b-0c1d2e3f4a5b"
    # A wrong token is still refused.
    resp = await client.get(f"/sms/jasmin?token=wrong?{form}")
    assert resp.status == 401


async def test_jasmin_parts_with_a_16_bit_reference_are_held_and_joined(
    client: TestClient[Any, Any], gw: bootstrap.Gateway
) -> None:
    # Jasmin joins only 8-bit-reference parts; these reach the connector one by one, each with
    # its UDH at the head of the octets. Sent in reverse order, the first twice (a retry).
    text = "Jalan rusak parah di depan pasar 😡 sudah dua bulan, mohon segera diperbaiki"
    octets = text.encode("utf-16-be")
    cut = [0, 40, octets.index("😡".encode("utf-16-be")) + 2, len(octets)]
    parts = [bytes([6, 8, 4, 0x12, 0x34, 3, n]) + octets[cut[n - 1] : cut[n]] for n in (1, 2, 3)]
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    for n in (3, 3, 2, 1):
        body = f"id=j16-{n}&from=6281200000001&to=1708&coding=8&binary={parts[n - 1].hex()}"
        resp = await client.post(f"/sms/jasmin?token={JASMIN_TOKEN}", data=body, headers=form)
        assert (resp.status, await resp.text()) == (200, "ACK/Jasmin")
        if n != 1:
            assert await rows(gw, sms_replies) == []  # nothing to say until it is whole
    (complaint,) = await opened_complaints(gw.engine, gw.keys)
    assert complaint.body == text and complaint.title is None
    (reply,) = await rows(gw, sms_replies)
    assert reply.bridge == "jasmin" and reply.tracking_id == complaint.tracking_id
    parsers = sorted(r["parser"] for r in await opened_raw(gw.engine, gw.keys))
    assert parsers == ["sms.jasmin"] * 3 + ["sms.joined"]


async def test_jasmin_without_the_token_is_refused_before_reading(
    client: TestClient[Any, Any], gw: bootstrap.Gateway
) -> None:
    req = load("jasmin/mo__gsm_text")
    for target in ("/sms/jasmin", "/sms/jasmin?token=wrong"):
        resp = await client.post(
            target, data=req.body, headers={"Content-Type": "application/x-www-form-urlencoded"}
        )
        assert resp.status == 401
    assert await rows(gw, raw_inbound) == []
    metric = gw.metrics.registry.get_sample_value(
        "lapor_sms_ignored_total", {"bridge": "jasmin", "reason": "unauthorized"}
    )
    assert metric == 2


async def test_jasmin_is_refused_until_its_token_is_configured(
    settings: Settings, aiohttp_client: Client
) -> None:
    gateway = bootstrap.build(configure(settings, jasmin_token=None))
    try:
        client = await aiohttp_client(bootstrap.build_app(gateway))
        assert (await post(client, load("jasmin/mo__gsm_text")))[0] == 401
    finally:
        await gateway.close()


async def test_jasmin_database_down_is_not_acknowledged(
    settings: Settings, aiohttp_client: Client
) -> None:
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/none"
    unreachable = with_section(settings, "database", url=url, connect_timeout=0.5)
    gateway = bootstrap.build(configure(unreachable))
    try:
        client = await aiohttp_client(bootstrap.build_app(gateway))
        status, body = await post(client, load("jasmin/mo__gsm_text"))
        assert status == 503 and body != "ACK/Jasmin"  # Jasmin requeues it
    finally:
        await gateway.close()


async def test_jasmin_delivery_report_lands_on_its_reply(
    client: TestClient[Any, Any], gw: bootstrap.Gateway
) -> None:
    await post(client, load("jasmin/mo__gsm_text"))
    async with gw.engine.begin() as conn:  # what the sender stores from /send's answer
        await conn.execute(
            update(sms_replies).values(
                status="sent", provider_ref="07033084-5cfd-4812-90a4-e4d24ffb6e3d"
            )
        )
    assert await post(client, load("jasmin/dlr__delivered")) == (200, "ACK/Jasmin")
    # A late level-1 report does not overwrite the final state.
    assert await post(client, load("jasmin/dlr__smsc_accepted")) == (200, "ACK/Jasmin")
    (reply,) = await rows(gw, sms_replies)
    assert reply.dlr_status == "delivered" and reply.dlr_detail == "DELIVRD level=3 err=000"
    # A report for nothing we sent is acknowledged (else Jasmin resends it) and counted.
    unknown = load("jasmin/dlr__delivered")
    body = unknown.body.replace(b"07033084", b"99999999")
    assert await post(
        client,
        Request(
            unknown.method,
            unknown.target,
            unknown.headers | {"Content-Length": str(len(body))},
            body,
        ),
    ) == (200, "ACK/Jasmin")
    assert (
        gw.metrics.registry.get_sample_value(
            "lapor_sms_delivery_reports_total", {"bridge": "jasmin", "state": "unmatched"}
        )
        == 1
    )


async def test_jasmin_report_before_its_message_id_is_stored_lands_by_our_reply_id(
    client: TestClient[Any, Any], gw: bootstrap.Gateway
) -> None:
    # Jasmin's level-1 report can overtake the storing of /send's answer: the row has no
    # provider_ref yet, and the reply id in our dlr-url is what finds it.
    await post(client, load("jasmin/mo__gsm_text"))
    (reply,) = await rows(gw, sms_replies)
    assert reply.provider_ref is None
    report = load("jasmin/dlr__delivered")
    early = Request(
        report.method,
        f"/sms/jasmin/dlr?reply={reply.id}&token=JASMIN-TOKEN",
        report.headers,
        report.body,
    )
    assert await post(client, early) == (200, "ACK/Jasmin")
    (reply,) = await rows(gw, sms_replies)
    assert reply.dlr_status == "delivered" and reply.dlr_detail == "DELIVRD level=3 err=000"
    # Without our id, the same report matches nothing yet (the case the id is there for).
    assert await post(client, report) == (200, "ACK/Jasmin")
    assert (
        gw.metrics.registry.get_sample_value(
            "lapor_sms_delivery_reports_total", {"bridge": "jasmin", "state": "unmatched"}
        )
        == 1
    )


@pytest.mark.parametrize("odd", ["%C2%B2", "9" * 25], ids=["superscript-two", "too-long"])
async def test_jasmin_report_with_a_reply_id_that_is_no_id_of_ours_is_matched_by_message_id(
    client: TestClient[Any, Any], gw: bootstrap.Gateway, odd: str
) -> None:
    # "²" is a digit to str.isdigit() but not to int(); 25 digits are past any id we store:
    # neither is an id of ours, and the report still finds its reply by Jasmin's message id.
    await post(client, load("jasmin/mo__gsm_text"))
    async with gw.engine.begin() as conn:
        await conn.execute(
            update(sms_replies).values(
                status="sent", provider_ref="07033084-5cfd-4812-90a4-e4d24ffb6e3d"
            )
        )
    report = load("jasmin/dlr__delivered")
    odd_id = Request(
        report.method,
        f"/sms/jasmin/dlr?reply={odd}&token=JASMIN-TOKEN",
        report.headers,
        report.body,
    )
    assert await post(client, odd_id) == (200, "ACK/Jasmin")
    (reply,) = await rows(gw, sms_replies)
    assert reply.dlr_status == "delivered"


async def test_kannel_report_lands_on_its_reply_and_a_malformed_one_is_a_400(
    client: TestClient[Any, Any], gw: bootstrap.Gateway
) -> None:
    await post(client, load("jasmin/mo__gsm_text"))  # a reply row to report on
    (reply,) = await rows(gw, sms_replies)
    # Digits Python reads as digits but not as a number ("²"), or no id of ours: a 400, not a 500.
    for query in ("reply=%C2%B2&type=1", f"reply={reply.id}&type=%C2%B2", "reply=" + "9" * 30):
        resp = await client.get(f"/sms/kannel/dlr?{query}")
        assert resp.status == 400, query
    resp = await client.get(f"/sms/kannel/dlr?reply={reply.id}&type=1&smsc_reply=ok")
    assert (resp.status, await resp.text()) == (200, "OK")
    (reply,) = await rows(gw, sms_replies)
    assert reply.dlr_status == "delivered" and reply.dlr_detail == "type=1 ok"


async def test_kannel_report_keeps_why_the_smsc_refused_a_reply(
    client: TestClient[Any, Any], gw: bootstrap.Gateway
) -> None:
    # The dlr-url the sender gives smsbox, filled in as smsbox does (%d the type, %A the SMSC's
    # answer, URL-encoded): a reply the SMSC refused is recorded with the SMSC's reason, not as
    # a bare "type=16" (the sender asked for %d only).
    from urllib.parse import parse_qs, quote, urlsplit

    from channels.sms.message import Bridge
    from channels.sms.ports import ClaimedReply
    from channels.sms.senders import KannelSendsms
    from channels.sms.settings import SmsSettings

    await post(client, load("jasmin/mo__gsm_text"))  # a reply row to report on
    (row,) = await rows(gw, sms_replies)
    sendsms = KannelSendsms(
        SmsSettings(
            kannel_sendsms_url="http://kannel:13013/cgi-bin/sendsms",
            callback_url="http://gateway.internal:8080",
        )
    )
    claimed = ClaimedReply(
        row.id, Bridge.KANNEL, "+6281200000001", row.body, 1, "1708", "smpp", row.created_at
    )
    (dlr_url,) = parse_qs(sendsms.query(claimed))["dlr-url"]
    target = urlsplit(dlr_url)
    answer = quote("NACK/0x0000000b/Invalid Destination Address", safe="")
    filled = target.query.replace("%d", "16").replace("%A", answer)
    resp = await client.get(f"{target.path}?{filled}")
    assert (resp.status, await resp.text()) == (200, "OK")
    (row,) = await rows(gw, sms_replies)
    assert row.dlr_status == "rejected"
    assert row.dlr_detail == "type=16 NACK/0x0000000b/Invalid Destination Address"
    # An SMSC's receipt text may carry GSM "@" as %00, which PostgreSQL's text refuses: kept
    # as a space, not answered 503 for ever.
    nul = target.query.replace("%d", "1").replace("%A", quote("id:7 stat:DELIVRD text:a\x00b"))
    resp = await client.get(f"{target.path}?{nul}")
    assert (resp.status, await resp.text()) == (200, "OK")
    (row,) = await rows(gw, sms_replies)
    assert row.dlr_status == "delivered" and row.dlr_detail == "type=1 id:7 stat:DELIVRD text:a b"


# ---- SMS Gateway for Android ------------------------------------------------------------------


async def test_android_webhook_mo_with_a_valid_signature(
    client: TestClient[Any, Any], gw: bootstrap.Gateway
) -> None:
    req = load("android/sms_received__region_nik")
    assert await post(client, req, **resigned(req)) == (200, "ok")
    (complaint,) = await opened_complaints(gw.engine, gw.keys)
    assert complaint.body == "jalan desa rusak parah, mohon diperbaiki"
    (raw,) = await opened_raw(gw.engine, gw.keys)
    assert raw["body"] == req.body and raw["provider_message_id"] == "Qm3xRk8PzV2aLd7TnW4yC"
    (reply,) = await rows(gw, sms_replies)
    assert (reply.bridge, reply.status, reply.smsc) == ("android", "pending", "sim2")
    # The app retries with the same event id: nothing new.
    assert await post(client, req, **resigned(req)) == (200, "ok")
    assert (
        len(await opened_complaints(gw.engine, gw.keys)) == 1
        and len(await rows(gw, sms_replies)) == 1
    )


async def test_android_bad_or_stale_signature_is_refused(
    client: TestClient[Any, Any], gw: bootstrap.Gateway
) -> None:
    req = load("android/sms_received__region_nik")
    assert (await post(client, req))[0] == 401  # the fixture's own (old) timestamp: a replay
    assert (await post(client, req, **resigned(req, b"wrong-key")))[0] == 401
    stripped = Request(
        req.method,
        req.target,
        {"Content-Type": "application/json", "Content-Length": req.headers["Content-Length"]},
        req.body,
    )
    assert (await post(client, stripped))[0] == 401
    assert await rows(gw, raw_inbound) == []


async def test_android_signature_headers_that_are_not_ascii_are_refused_not_a_500(
    client: TestClient[Any, Any], gw: bootstrap.Gateway
) -> None:
    # int() reads the digits of every script: Unix seconds of now in Arabic-Indic digits passed
    # the age check and then failed to encode (HTTP 500, before any signature was checked).
    req = load("android/sms_received__region_nik")
    now = str(int(time.time()))
    arabic = now.translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))
    signature = android.sign(ANDROID_KEY, req.body, now)
    assert (await post(client, req, **{"X-Timestamp": arabic, "X-Signature": signature}))[0] == 401
    # A signature that is not ASCII (compare_digest refuses such text with a TypeError).
    fresh = resigned(req)
    assert (await post(client, req, **fresh | {"X-Signature": "é" * 64}))[0] == 401
    assert await rows(gw, raw_inbound) == []
    assert (await post(client, req, **fresh))[0] == 200  # the app's own headers still pass


async def test_android_report_on_an_id_past_bigint_is_unmatched_not_a_503(
    client: TestClient[Any, Any], gw: bootstrap.Gateway
) -> None:
    body = json.dumps(
        {"event": "sms:failed", "id": "e-big", "payload": {"messageId": "lapor-" + "9" * 25}}
    ).encode()
    req = Request("POST", "/sms/android", {"Content-Type": "application/json"}, body)
    assert await post(client, req, **resigned(req)) == (200, "ok")


async def test_android_reports_and_unused_events(
    client: TestClient[Any, Any], gw: bootstrap.Gateway
) -> None:
    req = load("android/sms_received__region_nik")
    await post(client, req, **resigned(req))
    (reply,) = await rows(gw, sms_replies)
    delivered = load("android/sms_delivered__reply")
    body = delivered.body.replace(b'"lapor-1"', f'"lapor-{reply.id}"'.encode())
    delivered = Request(
        delivered.method,
        delivered.target,
        delivered.headers | {"Content-Length": str(len(body))},
        body,
    )
    assert await post(client, delivered, **resigned(delivered)) == (200, "ok")
    (reply,) = await rows(gw, sms_replies)
    assert reply.dlr_status == "delivered" and reply.dlr_detail == "sms:delivered"
    ping = load("android/system_ping__docs")
    assert await post(client, ping, **resigned(ping)) == (200, "ok")
    assert len(await rows(gw, raw_inbound)) == 1  # reports and pings are not citizen messages
    assert (
        gw.metrics.registry.get_sample_value(
            "lapor_sms_ignored_total", {"bridge": "android", "reason": "unused-event"}
        )
        == 1
    )


# ---- SMSSync ------------------------------------------------------------------------------------


async def test_smssync_reply_rides_on_the_answer_and_the_secret_is_not_stored(
    settings: Settings, aiohttp_client: Client
) -> None:
    gateway = bootstrap.build(configure(settings, modem_secret=SecretStr(SMSSYNC_SECRET)))
    try:
        client = await aiohttp_client(bootstrap.build_app(gateway))
        req = load("smssync/mo__rahasia")
        status, body = await post(client, req)
        assert status == 200
        payload = json.loads(body)["payload"]
        assert payload["success"] is True and payload["task"] == "send"
        (message,) = payload["messages"]
        (reply,) = await rows(gateway, sms_replies)
        assert message["to"] == "+6281200000004" and message["uuid"] == f"lapor-{reply.id}"
        assert message["message"].startswith("LAPOR! Laporan diterima. No. lacak: ")
        assert reply.status == "inline"
        (raw,) = await rows(gateway, raw_inbound)
        assert b"secret" not in raw.body and b"SMSSYNC-SECRET" not in raw.body
        (complaint,) = await opened_complaints(gateway.engine, gateway.keys)
        assert complaint.confidential
        wrong = Request(
            req.method, req.target, req.headers, req.body.replace(b"SMSSYNC-SECRET", b"nope")
        )
        status, body = await post(client, wrong)
        assert status == 401 and json.loads(body)["payload"]["success"] is False
    finally:
        await gateway.close()


# ---- Gammu SMSD ---------------------------------------------------------------------------------

GAMMU_TOKEN = "gammu-test-token"  # the one in the recorded Authorization header


@pytest.mark.parametrize("sender", ["TELKOMSEL", "3636"])
async def test_an_operators_message_to_the_modem_is_recorded_not_a_complaint_nor_answered(
    settings: Settings, aiohttp_client: Client, sender: str
) -> None:
    # The modem's SIM also receives the operator's promotions and short codes' messages.
    gateway = bootstrap.build(configure(settings, gammu_token=SecretStr(GAMMU_TOKEN)))
    try:
        client = await aiohttp_client(bootstrap.build_app(gateway))
        req = load("gammu/mo__gsm_text")
        promo = replace(req, body=req.body.replace(b"%2B6281200000005", sender.encode()))
        assert await post(client, promo) == (200, "")  # stored, nothing to answer
        assert await opened_complaints(gateway.engine, gateway.keys) == []
        (raw,) = await opened_raw(gateway.engine, gateway.keys)
        assert raw["status"] == "recorded"
        assert await rows(gateway, sms_replies) == []
        # A subscriber's message through the same modem is a complaint as ever.
        status, body = await post(client, req)
        assert status == 200 and body.startswith("LAPOR! Laporan diterima.")
    finally:
        await gateway.close()


@pytest.mark.parametrize("sender", ["TELKOMSEL", "3636"])
async def test_an_unreadable_message_no_subscriber_sent_is_quarantined_but_not_answered(
    settings: Settings, aiohttp_client: Client, sender: str
) -> None:
    # Text that is not UTF-8 fails before the sender is looked at: it was quarantined and the
    # "checked by an officer" reply went to the operator's short code (which may cost money).
    gateway = bootstrap.build(
        configure(
            settings, gammu_token=SecretStr(GAMMU_TOKEN), modem_secret=SecretStr(SMSSYNC_SECRET)
        )
    )
    try:
        client = await aiohttp_client(bootstrap.build_app(gateway))
        req = load("gammu/mo__gsm_text")
        body = req.body.replace(b"%2B6281200000005", sender.encode())
        body = re.sub(rb"SMS_1_TEXT=[^&]*", b"SMS_1_TEXT=%FF%FE", body)
        headers = req.headers | {"Content-Length": str(len(body))}
        assert await post(client, Request(req.method, req.target, headers, body)) == (200, "")
        sync = load("smssync/mo__rahasia")
        body = sync.body.replace(b"%2B6281200000004", sender.encode())
        body = re.sub(rb"message=[^&]*", b"message=%FF%FE", body)
        headers = sync.headers | {"Content-Length": str(len(body))}
        status, answer = await post(client, Request(sync.method, sync.target, headers, body))
        assert status == 200 and "messages" not in json.loads(answer)["payload"]
        assert [r["status"] for r in await opened_raw(gateway.engine, gateway.keys)] == [
            "quarantined",
            "quarantined",
        ]
        assert await rows(gateway, sms_replies) == []
        # A subscriber's unreadable message is still answered.
        body = re.sub(rb"SMS_1_TEXT=[^&]*", b"SMS_1_TEXT=%FF%FE", req.body)
        headers = req.headers | {"Content-Length": str(len(body))}
        status, answer = await post(client, Request(req.method, req.target, headers, body))
        assert status == 200 and answer.startswith("LAPOR! Pesan Anda diterima dan akan diperiksa")
    finally:
        await gateway.close()


async def test_gammu_reply_is_the_answer_after_commit_and_redelivery_creates_nothing(
    settings: Settings, aiohttp_client: Client
) -> None:
    gateway = bootstrap.build(configure(settings, gammu_token=SecretStr(GAMMU_TOKEN)))
    try:
        client = await aiohttp_client(bootstrap.build_app(gateway))
        req = load("gammu/mo__long_2parts")
        status, body = await post(client, req)
        assert status == 200 and body.startswith("LAPOR! Laporan diterima. No. lacak: ")
        (complaint,) = await opened_complaints(gateway.engine, gateway.keys)
        assert complaint.body == ("Jalan Siliwangi rusak parah sejak bulan lalu, " * 6).strip()
        assert complaint.tracking_id[:4] in body
        (raw,) = await opened_raw(gateway.engine, gateway.keys)
        assert raw["body"] == req.body
        assert re.fullmatch(r"gammu:[0-9a-f]{64}", raw["provider_message_id"])
        (reply,) = await rows(gateway, sms_replies)
        assert reply.status == "inline" and reply.body == body
        # lapor-onreceive run again for the same message: the same reply, nothing new.
        assert await post(client, req) == (200, body)
        assert len(await opened_complaints(gateway.engine, gateway.keys)) == 1
        assert len(await rows(gateway, sms_replies)) == 1
    finally:
        await gateway.close()


async def test_gammu_new_sms_under_an_inbox_id_a_new_smsd_database_reused_is_filed(
    settings: Settings, aiohttp_client: Client
) -> None:
    # SMSD on an SQL backend passes row ids; a database created anew starts again at 1. The
    # key holds the number and the text too: the new SMS is filed and answered with its own
    # tracking ID, and each one posted again is still a redelivery of itself.
    gateway = bootstrap.build(configure(settings, gammu_token=SecretStr(GAMMU_TOKEN)))
    try:
        client = await aiohttp_client(bootstrap.build_app(gateway))
        req = load("gammu/mo__gsm_text")
        old_body = re.sub(rb"ids=[^&]*", b"ids=1", req.body)
        new_body = old_body.replace(b"%2B6281200000005", b"%2B6281200000032")
        new_body = re.sub(
            rb"SMS_1_TEXT=[^&]*", b"SMS_1_TEXT=Sampah+menumpuk+di+pasar+Baru", new_body
        )
        old, new = (
            Request(req.method, req.target, req.headers | {"Content-Length": str(len(b))}, b)
            for b in (old_body, new_body)
        )
        first, second = await post(client, old), await post(client, new)
        assert first[0] == second[0] == 200
        assert "No. lacak" in first[1] and "No. lacak" in second[1] and first != second
        assert await post(client, old) == first and await post(client, new) == second
        complaints = await opened_complaints(gateway.engine, gateway.keys)
        assert sorted(c.body for c in complaints) == [
            "Jalan rusak @£$ {biaya} [RT 05] ~ tolong",
            "Sampah menumpuk di pasar Baru",
        ]
        assert len(await rows(gateway, sms_replies)) == 2
    finally:
        await gateway.close()


async def test_gammu_refuses_without_the_token_and_when_not_configured(
    settings: Settings, aiohttp_client: Client
) -> None:
    req = load("gammu/mo__gsm_text")
    gateway = bootstrap.build(configure(settings, gammu_token=SecretStr(GAMMU_TOKEN)))
    try:
        client = await aiohttp_client(bootstrap.build_app(gateway))
        wrong = {"Authorization": "Basic " + base64.b64encode(b"lapor:nope").decode()}
        assert (await post(client, req, **wrong))[0] == 401
        bare = {k: v for k, v in req.headers.items() if k != "Authorization"}
        assert (await post(client, Request(req.method, req.target, bare, req.body)))[0] == 401
        assert await rows(gateway, raw_inbound) == []
    finally:
        await gateway.close()
    gateway = bootstrap.build(configure(settings))  # no LAPOR_SMS__GAMMU_TOKEN
    try:
        client = await aiohttp_client(bootstrap.build_app(gateway))
        assert (await post(client, req))[0] == 401
        assert await rows(gateway, raw_inbound) == []
        assert (
            gateway.metrics.registry.get_sample_value(
                "lapor_sms_ignored_total", {"bridge": "gammu", "reason": "not-configured"}
            )
            == 1
        )
    finally:
        await gateway.close()


# ---- flood control ---------------------------------------------------------------------------


async def test_flood_control_records_everything_and_answers_at_most_n(
    settings: Settings, aiohttp_client: Client
) -> None:
    gateway = bootstrap.build(configure(settings, flood_max_replies=3, flood_window=600))
    try:
        client = await aiohttp_client(bootstrap.build_app(gateway))
        answers = []
        for i in range(6):
            q = f"p=%2B6281200000009&P=1708&b=Laporan+banjir+gang+{i}+RT+{i}&c=0&C=UTF-8&I=flood-{i}"
            answers.append(await (await client.get(f"/sms/kannel?{q}")).text())
        assert [bool(a) for a in answers] == [True, True, True, False, False, False]
        replies = await rows(gateway, sms_replies)
        # (no row order: PostgreSQL moves a row it updates)
        assert sorted(r.status for r in replies) == ["inline"] * 3 + ["suppressed"] * 3
        assert all(r.reason.startswith("flood: 3 replies") for r in replies if r.status != "inline")
        assert len(await rows(gateway, raw_inbound)) == 6  # every message is recorded
        assert (
            gateway.metrics.registry.get_sample_value(
                "lapor_sms_replies_suppressed_total", {"reason": "flood"}
            )
            == 3
        )
        # Another sender is not affected.
        q = "p=%2B6281200000010&P=1708&b=Jalan+rusak&c=0&C=UTF-8&I=other-1"
        assert "No. lacak" in await (await client.get(f"/sms/kannel?{q}")).text()
    finally:
        await gateway.close()


async def test_flood_control_never_hides_a_new_complaint_s_tracking_id(
    settings: Settings, aiohttp_client: Client
) -> None:
    # Past the allowance every reply was suppressed, the receipt of a second, different
    # complaint too: it was filed, and the citizen never learnt its tracking ID.
    gateway = bootstrap.build(configure(settings, flood_max_replies=2, flood_window=600))
    try:
        client = await aiohttp_client(bootstrap.build_app(gateway))

        async def text(body: str, mo_id: str) -> str:
            q = f"p=%2B6281200000011&P=1708&b={body}&c=0&C=UTF-8&I={mo_id}"
            return await (await client.get(f"/sms/kannel?{q}")).text()

        first = await text("Jalan+berlubang+besar+depan+pasar+Cibubur", "new-id-1")
        assert "No. lacak" in first
        assert (await text("INFO", "new-id-2")).startswith("LAPOR! Kirim isi laporan")
        assert await text("INFO", "new-id-3") == ""  # the allowance (2) is used
        second = await text("Lampu+penerangan+mati+sejak+seminggu+di+gang+Melati", "new-id-4")
        assert "No. lacak" in second and second != first
        assert await text("BANTUAN", "new-id-5") == ""  # still past the allowance
        complaints_filed = await opened_complaints(gateway.engine, gateway.keys)
        assert len(complaints_filed) == 2
        assert {c.tracking_id for c in complaints_filed} == {
            r.tracking_id for r in await rows(gateway, sms_replies) if r.kind == "receipt"
        }
    finally:
        await gateway.close()
