"""A duplicate's receipt names the earlier complaint only to the sender it came from.

Anyone who types a citizen's NIK (or phone number, or address) with a similar text is taken
for that citizen by the identity graph, and their message joins that citizen's complaint. The
answer must not tell them so: it gives them an ID of their own, which shows only what happens
to the complaint from then on. Through the real intake port, on both databases, and the status
SMS through the real RabbitMQ.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update

from gateway import bootstrap, queries, status_feed
from gateway.cli import main
from gateway.domain import Channel, RawInbound, Receipt, ReceiptStatus
from gateway.errors import ParseError
from gateway.intake import Parser
from gateway.settings import Settings, load_settings
from gateway.sms_store import prune
from gateway.storage.schema import complaints, outbox, sms_replies
from tests.integration.test_cli import env  # noqa: F401 (the CLI's environment)
from tests.integration.test_identity_dedup import NIK_A, PARSER, ROAD, ROAD_SMS, T0
from tests.integration.test_identity_dedup import msg as message
from tests.integration.test_status_feed import Client, publish, status, texting
from tests.support import FixedClock, kannel_mo, opened_events, validate_event, wait_until

pytestmark = pytest.mark.integration


# The gateway's clock follows the messages the tests send: each is stored (joins) a second
# after its transport received it, as in a gateway taking it as it comes. An own ID shows what
# changed after its message was stored.
CLOCK = FixedClock(T0)


def msg(channel: Channel, minutes: float = 0, **fields: object) -> RawInbound:
    raw = message(channel, minutes, **fields)
    CLOCK.now = raw.received_at + timedelta(seconds=1)
    return raw


@pytest.fixture
async def gw(settings: Settings) -> AsyncIterator[bootstrap.Gateway]:
    CLOCK.now = T0
    gateway = bootstrap.build(settings, clock=CLOCK)
    yield gateway
    await gateway.close()


async def _change(gw: bootstrap.Gateway, cid: str | None, word: str, at: datetime) -> None:
    """What the status feed sets when the routing core changes the complaint."""
    async with gw.engine.begin() as conn:
        await conn.execute(
            update(complaints)
            .where(complaints.c.id == cid)
            .values(status=word, status_changed_at=at, agency="Dinas PUPR Kab. Cirebon")
        )


def _told_own_id(receipt: Receipt, first: Receipt) -> None:
    assert receipt.status is ReceiptStatus.ACCEPTED and receipt.duplicate_of is None
    assert receipt.tracking_id not in (None, first.tracking_id)
    assert receipt.complaint_id == first.complaint_id  # joined, for the routing core


async def test_someone_typing_a_citizens_nik_learns_nothing_of_the_complaint(
    gw: bootstrap.Gateway,
) -> None:
    # Siti texts her complaint with her NIK, confidentially; the routing core forwards it.
    first = await gw.intake.accept(
        msg(Channel.SMS, 0, body=ROAD, title="Siliwangi", nik=NIK_A, phone="+6281234567890",
            confidential=True),
        PARSER,
    )
    assert first.status is ReceiptStatus.ACCEPTED and first.tracking_id
    forwarded_at = datetime(2026, 11, 2, 8, 30, tzinfo=UTC)
    await _change(gw, first.complaint_id, "forwarded", forwarded_at)

    # Someone who knows her NIK sends the same matter on the web form, and by SMS from their own
    # phone: each is answered as a new complaint would be.
    form = msg(Channel.WEB, 60, body=ROAD_SMS, title="Jalan berlubang", nik=NIK_A)
    by_form = await gw.intake.accept(form, PARSER)
    by_sms = await gw.intake.accept(
        msg(Channel.SMS, 61, body=ROAD_SMS, nik=NIK_A, phone="+6285700001111"), PARSER
    )
    _told_own_id(by_form, first)
    _told_own_id(by_sms, first)
    assert by_form.tracking_id != by_sms.tracking_id
    # The same message again (an Idempotency-Key's retry): the same answer, not "duplicate".
    retried = await gw.intake.accept(form, PARSER)
    assert retried.redelivered
    assert (retried.status, retried.tracking_id) == (ReceiptStatus.ACCEPTED, by_form.tracking_id)
    assert await gw.intake.count_complaints() == 1

    # Their ID shows nothing from before they sent it: not "forwarded", not the agency, not
    # its date, not its title; the public request shows their own title, as for a new one.
    assert by_form.tracking_id is not None and by_sms.tracking_id is not None
    seen = await gw.intake.status(by_form.tracking_id)
    assert seen is not None
    assert (seen.status, seen.updated_at, seen.agency) == ("received", None, None)
    assert seen.received_at == datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    public = await queries.public_request(gw.engine, by_form.tracking_id)
    assert public is not None and public.tracking_id == by_form.tracking_id
    assert (public.status, public.title, public.address, public.agency, public.kind) == (
        "received", "Jalan berlubang", None, None, "pengaduan"
    )
    listed = await queries.list_public_requests(
        gw.engine, tracking_ids=[by_form.tracking_id, by_sms.tracking_id, first.tracking_id]
    )
    assert {r.tracking_id for r in listed} == {
        by_form.tracking_id, by_sms.tracking_id, first.tracking_id
    }
    assert [r.status for r in listed if r.tracking_id == first.tracking_id] == ["forwarded"]

    # What changes after they sent it, they see, as the holder of a new complaint would; the
    # agency of a confidential complaint stays hidden.
    later = datetime(2026, 11, 2, 11, 0, tzinfo=UTC)
    await _change(gw, first.complaint_id, "in_progress", later)
    seen = await gw.intake.status(by_sms.tracking_id)
    assert seen is not None and (seen.status, seen.updated_at, seen.agency) == (
        "in_progress", later, None
    )
    own = await gw.intake.status(first.tracking_id)
    assert own is not None and own.agency == "Dinas PUPR Kab. Cirebon"

    # The routing core gets both as duplicates of Siti's complaint, with the ID each was told.
    events = [json.loads(e) for e in await opened_events(gw.engine, gw.keys)]
    for event in events:
        validate_event(event)
    told = {
        e["source"]["given_tracking_id"]: (e["tracking_id"], e["duplicate_of"])
        for e in events
        if e["event"] == "duplicate"
    }
    assert told == {
        by_form.tracking_id: (first.tracking_id, first.tracking_id),
        by_sms.tracking_id: (first.tracking_id, first.tracking_id),
    }

    # The operator's `dedup show` finds the complaint by either ID.
    history = await gw.intake.dedup_history(by_sms.tracking_id)
    assert [h["tier"] for h in history] == ["new", "similar", "similar"]
    assert history == await gw.intake.dedup_history(first.tracking_id)

    # Siti herself, texting again from her phone, is told her complaint's ID.
    again = await gw.intake.accept(
        msg(Channel.SMS, 120, body=ROAD_SMS, phone="+6281234567890"), PARSER
    )
    assert again.status is ReceiptStatus.DUPLICATE
    assert again.tracking_id == again.duplicate_of == first.tracking_id


async def test_a_web_form_sent_again_is_told_an_id_of_its_own_and_makes_no_event(
    gw: bootstrap.Gateway,
) -> None:
    # The same form sent twice (a new page, so a new message) within the retry window: a web
    # form's NIK is typed, so the second is not told the first's ID; like any retry, it sends
    # the routing core nothing new.
    first = await gw.intake.accept(msg(Channel.WEB, 0, body=ROAD, nik=NIK_A), PARSER)
    second = await gw.intake.accept(msg(Channel.WEB, 2, body=ROAD, nik=NIK_A), PARSER)
    _told_own_id(second, first)
    async with gw.engine.connect() as conn:
        events = (await conn.execute(select(func.count()).select_from(outbox))).scalar_one()
    assert events == 1
    assert second.tracking_id is not None
    seen = await gw.intake.status(second.tracking_id)
    assert seen is not None and seen.status == "received"


async def test_a_phone_given_in_a_form_told_its_own_id_is_told_that_id_when_it_texts(
    gw: bootstrap.Gateway,
) -> None:
    # Siti's first form gave her NIK only; her second, of the same matter, also her phone, and
    # was told an ID of its own (a form's identities are typed). Texting from that phone later
    # (the operator vouches for the number) she is told that ID again, as an SMS from a number
    # the first form gave would be told the complaint's; another number is told one of its own.
    first = await gw.intake.accept(msg(Channel.WEB, 0, body=ROAD, nik=NIK_A), PARSER)
    second = await gw.intake.accept(
        msg(Channel.WEB, 60, body=ROAD_SMS, nik=NIK_A, phone="0812-3456-7890"), PARSER
    )
    _told_own_id(second, first)
    texted = await gw.intake.accept(
        msg(Channel.SMS, 180, body=ROAD_SMS + " mohon segera", nik=NIK_A, phone="+6281234567890"),
        PARSER,
    )
    assert texted.complaint_id == first.complaint_id
    assert (texted.status, texted.tracking_id) == (ReceiptStatus.DUPLICATE, second.tracking_id)
    other = await gw.intake.accept(
        msg(Channel.SMS, 200, body=ROAD_SMS + " cepat", nik=NIK_A, phone="+6285700001111"),
        PARSER,
    )
    _told_own_id(other, first)
    assert other.tracking_id not in (second.tracking_id, texted.tracking_id)
    duplicates = [
        body
        for body in map(json.loads, await opened_events(gw.engine, gw.keys))
        if body["event"] == "duplicate"
    ]
    assert sorted(b["source"]["given_tracking_id"] for b in duplicates) == sorted(
        [second.tracking_id, second.tracking_id, other.tracking_id]
    )


async def test_a_status_sms_names_the_id_the_number_was_told(
    settings: Settings, aiohttp_client: Client
) -> None:
    async with texting(settings, aiohttp_client) as (feed, sent):
        cid, tid = await feed.complaint(1)  # on the web, with a NIK
        # From a phone the web form did not give, the same matter with the same NIK.
        phone = "+6281234500088"
        text = "NIK 3201014101900001 lampu jalan di gang 1 jalan kenanga mati sejak 2 minggu"
        resp = await feed.client.get("/sms/kannel", params=kannel_mo(text, phone))
        assert resp.status == 200
        await wait_until(lambda: len(sent) == 1, "the receipt sent")
        async with feed.gateway.engine.connect() as conn:
            assert (await conn.execute(select(func.count()).select_from(complaints))).scalar() == 1
        found = re.search(r"Laporan diterima\. No\. lacak: (\w{4})-(\w{5})\.", sent[0][1])
        assert found is not None, sent[0][1]
        own = found[1] + found[2]
        assert own != tid and tid not in sent[0][1]

        s = feed.settings
        now = datetime.now(UTC)
        # A change the routing core made before the SMS came is not told to it...
        before = (now - timedelta(minutes=10)).isoformat()
        await publish(s, status(cid, tid, "verified", before), "own-1")
        await wait_until(lambda: feed.count("applied") == 1, "the first change applied")
        # ...one made after it is, under the ID that number holds.
        await publish(s, status(cid, tid, "forwarded", now.isoformat()), "own-2")
        await wait_until(lambda: len(sent) == 2, "the change told")
        shown = f"{own[:4]}-{own[4:]}"
        assert sent[1][0] == phone
        assert f"Laporan {shown} kini berstatus DITERUSKAN" in sent[1][1]
        assert f"CEK {own} " in sent[1][1] and tid not in sent[1][1]
        seen: Any = await feed.gateway.intake.status(own)
        assert (seen.tracking_id, seen.status) == (own, "forwarded")
        # Kept past sms.keep_replies while the complaint is open: how the number is found.
        engine = feed.gateway.engine
        async with engine.begin() as conn:
            await conn.execute(update(sms_replies).values(created_at=now - timedelta(days=91)))
        assert await prune(engine, 90 * 86400.0, 0, datetime.now(UTC)) == (0, 0)
        await _change(feed.gateway, cid, "closed", datetime.now(UTC))
        assert await prune(engine, 90 * 86400.0, 0, datetime.now(UTC)) == (2, 0)


@pytest.mark.usefixtures("env")
def test_status_show_gives_the_operator_the_complaint_behind_an_own_id(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["migrate"]) == 0

    async def run() -> tuple[Receipt, Receipt]:
        gw = bootstrap.build(load_settings())
        try:
            first = await gw.intake.accept(msg(Channel.SMS, 0, body=ROAD, nik=NIK_A), PARSER)
            joined = await gw.intake.accept(msg(Channel.WEB, 60, body=ROAD_SMS, nik=NIK_A), PARSER)
            change = status_feed.parse(
                json.dumps(status(first.complaint_id, first.tracking_id, "forwarded",
                                  "2026-11-02T08:30:00Z")).encode(),
                "st-1",
            )
            await status_feed.apply(gw.engine, change, datetime(2026, 11, 2, 8, 31, tzinfo=UTC))
            return first, joined
        finally:
            await gw.close()

    first, joined = asyncio.run(run())
    assert first.tracking_id and joined.tracking_id
    capsys.readouterr()
    assert main(["status", "show", joined.tracking_id]) == 0
    lines = capsys.readouterr().out.splitlines()
    shown = f"{first.tracking_id[:4]}-{first.tracking_id[4:]}"
    assert lines[0].startswith(f"{joined.tracking_id[:4]}-{joined.tracking_id[4:]}  status=received")
    assert f"a message that joined {shown}" in lines[1]
    assert lines[2].startswith("2026-11-02 08:30  forwarded") and len(lines) == 3


async def test_an_own_id_shows_the_message_as_it_asked_not_the_complaint(
    gw: bootstrap.Gateway,
) -> None:
    # Through the JSON API's parser: the kind, agency and place the message asked for are what
    # its own ID shows, as for a new complaint; a message asking confidentiality shows no
    # title or place of its own either.
    api = gw.parsers.get("web.json")
    assert api is not None

    def sent(minutes: int, **fields: Any) -> RawInbound:
        body = {"body": ROAD, "reporter": {"nik": NIK_A}, **fields}
        at = datetime(2026, 11, 2, 8, tzinfo=UTC) + timedelta(minutes=minutes)
        return RawInbound(Channel.WEB, json.dumps(body).encode(), at, f"own-{minutes}")

    first = await gw.intake.accept(
        sent(0, title="Jalan Siliwangi", kind="pengaduan", agency="Dinas PUPR",
             location={"text": "Jl. Siliwangi", "latitude": -6.7, "longitude": 108.5}),
        api,
    )
    asked = await gw.intake.accept(
        sent(5, title="Aspirasi jalan", kind="aspirasi", agency="Bupati Cirebon",
             location={"text": "Pasar Sumber"}),
        api,
    )
    hidden = await gw.intake.accept(
        sent(6, title="Rahasia", location={"text": "Rumah"}, privacy={"confidential": True}),
        api,
    )
    for receipt in (asked, hidden):
        _told_own_id(receipt, first)
    assert asked.tracking_id and hidden.tracking_id
    seen = await gw.intake.status(asked.tracking_id)
    assert seen is not None and (seen.kind, seen.agency) == ("aspirasi", "Bupati Cirebon")
    public = await queries.public_request(gw.engine, asked.tracking_id)
    assert public is not None
    assert (public.kind, public.title, public.address, public.agency) == (
        "aspirasi", "Aspirasi jalan", "Pasar Sumber", "Bupati Cirebon"
    )
    secret = await queries.public_request(gw.engine, hidden.tracking_id)
    assert secret is not None and (secret.title, secret.address) == (None, None)
    listed = await queries.list_public_requests(
        gw.engine, tracking_ids=[asked.tracking_id], kinds=["aspirasi"]
    )
    assert [r.tracking_id for r in listed] == [asked.tracking_id]


async def test_an_own_id_in_a_group_commit_with_a_quarantined_message_keeps_what_it_shows(
    gw: bootstrap.Gateway,
) -> None:
    # One multi-row insert takes every message of a group commit: a quarantined one (first)
    # and one told an ID of its own must both be stored whole.
    first = await gw.intake.accept(msg(Channel.SMS, 0, body=ROAD, nik=NIK_A), PARSER)

    def broken(_raw: RawInbound) -> Any:
        raise ParseError("unreadable", stage="decode")

    held, own = await asyncio.gather(
        gw.intake.accept(msg(Channel.WEB, 59, body="?"), Parser("t.broken", broken)),
        gw.intake.accept(
            msg(Channel.WEB, 60, body=ROAD_SMS, title="Jalan berlubang", nik=NIK_A), PARSER
        ),
    )
    assert held.status is ReceiptStatus.QUARANTINED
    _told_own_id(own, first)
    assert own.tracking_id is not None
    public = await queries.public_request(gw.engine, own.tracking_id)
    assert public is not None and public.title == "Jalan berlubang"


async def test_a_number_whose_message_was_replayed_into_a_complaint_is_told_its_changes(
    settings: Settings, aiohttp_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An SMS that could not be read is answered "quarantined" with an ID; the operator replays
    # it after a fix, and it joins an earlier complaint (the same NIK). That number holds the
    # quarantine's ID: the complaint's later changes are texted to it under that ID.
    from channels.sms import service

    async with texting(settings, aiohttp_client) as (feed, sent):
        gw = feed.gateway
        nik = "3201014101900001"
        text = f"NIK {nik} jembatan cikapundung retak parah di dekat pasar, mohon diperbaiki"
        resp = await feed.client.get("/sms/kannel", params=kannel_mo(text, "+6281234500091"))
        assert resp.status == 200
        await wait_until(lambda: len(sent) == 1, "the receipt sent")
        async with gw.engine.connect() as conn:
            cid, tid = (await conn.execute(select(complaints.c.id, complaints.c.tracking_id))).one()

        read = service.interpret

        def unreadable(*args: Any, **kwargs: Any) -> Any:
            raise ParseError("a reader bug", stage="grammar")

        monkeypatch.setattr(service, "interpret", unreadable)
        phone = "+6281234500092"
        resp = await feed.client.get("/sms/kannel", params=kannel_mo(text + " sekali", phone))
        assert resp.status == 200
        monkeypatch.setattr(service, "interpret", read)
        await wait_until(lambda: len(sent) == 2, "the quarantined answer sent")
        assert sent[1][0] == phone and "diperiksa petugas" in sent[1][1]
        [entry] = await gw.intake.list_quarantine()
        held = (await gw.intake.show_quarantine(entry["id"]))["tracking_id"]
        replayed = await gw.intake.replay(entry["id"], gw.parsers)
        assert replayed.complaint_id == cid and replayed.tracking_id == held != tid

        await publish(
            feed.settings, status(cid, tid, "forwarded", datetime.now(UTC).isoformat()), "rp-1"
        )
        await wait_until(lambda: len(sent) == 4, "the change told to both numbers")
        told = {to: body for to, body in sent[2:]}
        assert f"Laporan {held[:4]}-{held[4:]} kini berstatus DITERUSKAN" in told[phone]
        assert tid not in told[phone] and held not in told["+6281234500091"]
