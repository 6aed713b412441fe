"""Across channels, at the edges of retries and follow-ups: an Idempotency-Key over the
rate limits, an SMS naming its complaint's ID with new evidence, a region keyword before a
common place word, and the own ID a phone holds when someone else gives the same phone."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gateway import bootstrap
from gateway.settings import Settings
from tests.channels.web.conftest import web_settings
from tests.support import FixedClock

pytestmark = pytest.mark.integration

Client = Callable[..., Awaitable[TestClient[Any, Any]]]


def _stored_files(settings: Settings) -> set[Path]:
    root = Path(settings.storage.file_store)
    return {p for p in root.rglob("*") if p.is_file()} if root.exists() else set()


async def test_an_idempotency_key_over_the_limit_does_not_let_new_bodies_into_the_store(
    settings: Settings, aiohttp_client: Client
) -> None:
    """Over the address limit, a request that reuses an Idempotency-Key that went through but
    carries ANOTHER body is no retry: refused, with nothing written. Taken for a retry on the key
    alone, it went to the intake, which writes a large body to the file store before it finds
    the key's first receipt: one request that went through would let a client push any number
    of new bodies past every rate limit."""
    clock = FixedClock(datetime(2026, 11, 23, 8, 0, 15, tzinfo=UTC))
    gateway = bootstrap.build(
        web_settings(settings, rate_limit_requests=1, rate_limit_identity_requests=100),
        clock=clock,
    )
    try:
        client = await aiohttp_client(bootstrap.build_app(gateway))
        key = {"Idempotency-Key": "partner-1", "Content-Type": "application/json"}
        body = {"body": "Lampu jalan mati di Jalan Merdeka", "reporter": {"phone": "081299990000"}}
        filed = await client.post("/api/v1/complaints", data=json.dumps(body), headers=key)
        assert filed.status == 202, await filed.text()
        before = _stored_files(settings)
        answers = []
        for i in range(5):
            # The same identity (so the same key scope), another body, padded past the inline
            # limit: whitespace is valid JSON.
            other = json.dumps({**body, "body": f"Lain {i}"}) + " " * (40_000 + i)
            answer = await client.post("/api/v1/complaints", data=other, headers=key)
            answers.append(answer.status)
        written = _stored_files(settings) - before
        assert not written, f"{len(written)} new files in the store, answered {answers}"
    finally:
        await gateway.close()

async def test_over_the_limit_a_stranger_cannot_probe_which_keys_a_nik_has_used(
    settings: Settings, aiohttp_client: Client
) -> None:
    """A citizen files through a partner app with Idempotency-Key "1" (the key's scope is her
    NIK). Someone who knows her NIK then sends requests naming it, with other texts, over the
    per-identity limit: key "1" and key "2" are answered alike (429). A 422 "already used with a
    different request body" for key "1" would tell them, without limit, that the holder of the
    NIK filed a complaint through the API, and with which keys."""
    clock = FixedClock(datetime(2026, 11, 23, 9, 0, 15, tzinfo=UTC))
    gateway = bootstrap.build(
        web_settings(settings, rate_limit_requests=100, rate_limit_identity_requests=1),
        clock=clock,
    )
    try:
        client = await aiohttp_client(bootstrap.build_app(gateway))
        nik = "3201014101900001"
        citizen = {"body": "Jalan Siliwangi berlubang besar", "reporter": {"nik": nik}}
        filed = await client.post(
            "/api/v1/complaints", json=citizen, headers={"Idempotency-Key": "1"}
        )
        assert filed.status == 202, await filed.text()
        probe = {"body": "Tes saja", "reporter": {"nik": nik}}
        used = await client.post("/api/v1/complaints", json=probe, headers={"Idempotency-Key": "1"})
        unused = await client.post(
            "/api/v1/complaints", json=probe, headers={"Idempotency-Key": "2"}
        )
        assert (used.status, unused.status) == (429, 429), (used.status, unused.status)
    finally:
        await gateway.close()


async def test_new_evidence_that_names_its_id_and_asks_to_check_reaches_the_routing_core(
    settings: Settings, aiohttp_client: Client
) -> None:
    """A citizen's follow-up by SMS: "Laporan <ID> lubang makin besar, kemarin 2 motor jatuh,
    mohon cek" (the hole got bigger, two motorbikes fell yesterday, please check): filed, so
    that the new evidence reaches the routing core (a `followup` of her complaint: she texts
    from the number it came from), and answered as such, not taken for a status query because
    it names an ID that exists."""
    from urllib.parse import quote_plus

    from tests.support import opened_events

    def kannel(text: str, message_id: str) -> str:
        return (
            f"/sms/kannel?p=%2B6281200000001&P=1708&b={quote_plus(text)}&c=0&C=UTF-8"
            f"&I={message_id}&u=&i=inject"
        )

    gateway = bootstrap.build(settings)
    try:
        client = await aiohttp_client(bootstrap.build_app(gateway))
        first = await (
            await client.get(kannel("Jalan Siliwangi depan pasar berlubang besar", "e-1"))
        ).text()
        assert "No. lacak: " in first, first
        tid = first.split("No. lacak: ")[1][:10].replace("-", "")
        follow = f"Laporan {tid} lubang makin besar, kemarin 2 motor jatuh, mohon cek"
        reply = await (await client.get(kannel(follow, "e-2"))).text()
        events = [json.loads(e)["event"] for e in await opened_events(gateway.engine, gateway.keys)]
        # Its words reach the routing core as a second event of her complaint, and she is told
        # so, not answered a status.
        assert events == ["created", "followup"], events
        assert reply.startswith("LAPOR! Tambahan info untuk laporan"), reply
    finally:
        await gateway.close()


def test_a_region_keyword_before_the_word_pegunungan_is_still_read() -> None:
    """"JATENG pegunungan Dieng jalan longsor" (Central Java, the Dieng mountains: road cut by a
    landslide): region 33, the keyword out of the body. "Pegunungan" continues a place name
    after a place's name (Papua Pegunungan), not after an abbreviation."""
    from channels.sms.grammar import interpret
    from channels.sms.settings import DEFAULT_REGIONS

    read = interpret("JATENG pegunungan Dieng jalan longsor", "+6281200000001", DEFAULT_REGIONS)
    assert read.draft is not None
    region = read.draft.location.region_code if read.draft.location is not None else None
    assert (region, read.draft.body) == ("33", "pegunungan Dieng jalan longsor")


async def test_a_phone_that_wrote_under_its_own_id_keeps_it_when_a_later_form_gives_it(
    settings: Settings,
) -> None:
    """Siti's second form (her NIK and phone) joined her complaint under an ID of its own, X;
    texting from that phone she is told X. Then someone else who knows her NIK and phone sends a
    form of the same matter with their own title, told an ID of their own, Y. Siti, texting
    again from the phone that already wrote under X, is told X again: her ID does not change
    under her, and Y (which shows the stranger's title and place) is not hers."""
    from gateway.domain import Channel, ReceiptStatus
    from tests.integration.test_identity_dedup import NIK_A, PARSER, ROAD, ROAD_SMS, msg

    gw = bootstrap.build(settings)
    try:
        first = await gw.intake.accept(msg(Channel.WEB, 0, body=ROAD, nik=NIK_A), PARSER)
        second = await gw.intake.accept(
            msg(Channel.WEB, 60, body=ROAD_SMS, nik=NIK_A, phone="0812-3456-7890"), PARSER
        )
        own_x = second.tracking_id
        assert second.status is ReceiptStatus.ACCEPTED and own_x != first.tracking_id
        texted = await gw.intake.accept(
            msg(Channel.SMS, 120, body=ROAD_SMS + " mohon segera", phone="+6281234567890"), PARSER
        )
        assert (texted.status, texted.tracking_id) == (ReceiptStatus.DUPLICATE, own_x)
        stranger = await gw.intake.accept(
            msg(Channel.WEB, 180, body=ROAD + " Tolong.", title="Rumah orang lain", nik=NIK_A,
                phone="0812-3456-7890"),
            PARSER,
        )
        assert stranger.complaint_id == first.complaint_id
        assert stranger.tracking_id not in (first.tracking_id, own_x)
        again = await gw.intake.accept(
            msg(Channel.SMS, 300, body=ROAD_SMS + " sudah seminggu", phone="+6281234567890"),
            PARSER,
        )
        assert again.complaint_id == first.complaint_id
        assert again.tracking_id == own_x, (
            f"told {again.tracking_id}, the stranger's own ID {stranger.tracking_id}"
            if again.tracking_id == stranger.tracking_id
            else again.tracking_id
        )
    finally:
        await gw.close()
