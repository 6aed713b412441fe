"""What the ID of a message that joined someone's complaint under an ID of its own tells its
holder: nothing a new complaint's ID would not. Answers to a retry, the metrics, the agency,
Open311's listing by date and the status SMS, through the real intake port on both databases.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from gateway import bootstrap, queries, status_feed
from gateway.domain import Channel, Kind, Location, RawInbound, Receipt, ReceiptStatus
from gateway.errors import ParseError
from gateway.intake import Parser, ParserRegistry
from gateway.settings import Settings
from gateway.sms_store import StatusPush
from gateway.status_feed import StatusChange
from gateway.storage.schema import complaints, sms_replies
from tests.integration.test_identity_dedup import (
    NIK_A,
    NIK_B,
    PARSER,
    ROAD,
    ROAD_SMS,
    T0,
    WATER,
    _parse,
)
from tests.integration.test_own_tracking_ids import CLOCK, _change, msg
from tests.integration.test_status_feed import Client

pytestmark = pytest.mark.integration

SITI = "+6281234567890"
STRANGER = "+6285700001111"


@pytest.fixture
async def gw(settings: Settings) -> AsyncIterator[bootstrap.Gateway]:
    CLOCK.now = T0  # follows the messages sent (see test_own_tracking_ids)
    gateway = bootstrap.build(settings, clock=CLOCK)
    yield gateway
    await gateway.close()




async def test_a_redelivered_own_id_message_is_answered_as_first_not_duplicate(
    gw: bootstrap.Gateway,
) -> None:
    """Tier 1 (the API's Idempotency-Key replay, a letter confirmed again, a bridge's
    redelivery) answers as the first time: 'accepted', though the message is stored as a
    duplicate; 'duplicate' would tell the stranger that the NIK's holder complained."""
    first = await gw.intake.accept(
        msg(Channel.SMS, 0, body=ROAD, nik=NIK_A, phone=SITI, confidential=True), PARSER
    )
    stranger = msg(Channel.WEB, 60, body=ROAD_SMS, nik=NIK_A)
    told = await gw.intake.accept(stranger, PARSER)
    assert told.status is ReceiptStatus.ACCEPTED and told.tracking_id != first.tracking_id
    again = await gw.intake.accept(stranger, PARSER)  # the same provider message id
    assert again.tracking_id == told.tracking_id
    assert again.status is told.status, again


async def test_a_strangers_sms_sent_twice_gets_one_id_as_for_a_new_complaint(
    gw: bootstrap.Gateway,
) -> None:
    """A bridge resending an SMS with a new id (tier 2): a new complaint's sender is told the
    same ID again, and so is a stranger whose message joined someone's complaint (two IDs
    would tell them someone with this NIK complained of it, and give a citizen two IDs for one
    message)."""
    # Control: nobody complained before; the stranger's two sends get one ID.
    nik_b = "3209010101900002"
    a = await gw.intake.accept(
        msg(Channel.SMS, 0, body=ROAD, nik=nik_b, phone="+6285700002222"), PARSER
    )
    b = await gw.intake.accept(
        msg(Channel.SMS, 2, body=ROAD, nik=nik_b, phone="+6285700002222"), PARSER
    )
    assert a.tracking_id == b.tracking_id
    # Siti complained; the stranger sends the same SMS twice within the retry window.
    await gw.intake.accept(msg(Channel.SMS, 0, body=ROAD, nik=NIK_A, phone=SITI), PARSER)
    one = await gw.intake.accept(
        msg(Channel.SMS, 60, body=ROAD_SMS, nik=NIK_A, phone=STRANGER), PARSER
    )
    two = await gw.intake.accept(
        msg(Channel.SMS, 62, body=ROAD_SMS, nik=NIK_A, phone=STRANGER), PARSER
    )
    assert one.status is two.status is ReceiptStatus.ACCEPTED
    assert two.tracking_id == one.tracking_id, (one, two)


async def test_open311_list_filters_do_not_bring_back_a_complaint_under_its_own_id(
    gw: bootstrap.Gateway,
) -> None:
    """Named IDs the complaint query did not return are looked up among the messages that
    joined a complaint, which also hold the complaint's own ID (its first message, its sender's
    duplicates): a complaint the filters left out must not come back that way."""
    first = await gw.intake.accept(msg(Channel.SMS, 0, body=ROAD, nik=NIK_A, phone=SITI), PARSER)
    assert first.tracking_id is not None
    # Siti texts again from her phone: told her complaint's ID. Then it is closed.
    again = await gw.intake.accept(msg(Channel.SMS, 60, body=ROAD_SMS, phone=SITI), PARSER)
    assert again.tracking_id == first.tracking_id
    await _change(gw, first.complaint_id, "closed", datetime(2026, 11, 2, 9, 30, tzinfo=UTC))
    closed = await queries.list_public_requests(gw.engine, tracking_ids=[first.tracking_id])
    assert [(r.status, r.open) for r in closed] == [("closed", False)]
    open_ = await queries.list_public_requests(
        gw.engine, tracking_ids=[first.tracking_id], statuses=["open"]
    )
    assert open_ == [], open_


async def test_open311_list_start_date_filter_holds_for_the_complaints_own_id(
    gw: bootstrap.Gateway,
) -> None:
    first = await gw.intake.accept(msg(Channel.SMS, 0, body=ROAD, nik=NIK_A, phone=SITI), PARSER)
    assert first.tracking_id is not None
    await gw.intake.accept(msg(Channel.SMS, 60, body=ROAD_SMS, phone=SITI), PARSER)
    await gw.intake.accept(msg(Channel.SMS, 61, body=ROAD_SMS + " tolong", phone=SITI), PARSER)
    start = datetime(2026, 11, 2, 8, 30, tzinfo=UTC)  # after the complaint was received
    listed = await queries.list_public_requests(
        gw.engine, tracking_ids=[first.tracking_id], start=start
    )
    assert listed == [], listed


async def test_own_id_counts_no_accepted_complaint(gw: bootstrap.Gateway) -> None:
    """A message that joined a complaint under an ID of its own is counted as a duplicate,
    not also as a complaint accepted."""
    await gw.intake.accept(msg(Channel.SMS, 0, body=ROAD, nik=NIK_A, phone=SITI), PARSER)
    accepted = gw.metrics.registry.get_sample_value(
        "lapor_intake_accepted_total", {"channel": "web"}
    ) or 0.0
    await gw.intake.accept(msg(Channel.WEB, 60, body=ROAD_SMS, nik=NIK_A), PARSER)
    after = gw.metrics.registry.get_sample_value(
        "lapor_intake_accepted_total", {"channel": "web"}
    ) or 0.0
    assert after == accepted


def _now_minutes() -> float:
    """msg()'s offset for the current time (the API stamps its own clock)."""
    return (datetime.now(UTC) - T0).total_seconds() / 60


async def test_the_api_idempotency_replay_says_duplicate_to_an_own_id_holder(
    gw: bootstrap.Gateway, aiohttp_client: Client
) -> None:
    """The same, through POST /api/v1/complaints with an Idempotency-Key: the first answer is
    'accepted' with an ID of its own, and so is the client's retry of that very request
    ('duplicate' would say 'someone with this NIK complained of this')."""
    first = await gw.intake.accept(
        msg(Channel.SMS, _now_minutes() - 5, body=ROAD, nik=NIK_A, phone=SITI), PARSER
    )
    assert first.status is ReceiptStatus.ACCEPTED
    client = await aiohttp_client(bootstrap.build_app(gw))
    complaint = {
        "title": "Jalan berlubang",
        "body": ROAD,
        "kind": "pengaduan",
        "reporter": {"name": "Budi", "nik": NIK_A},
    }
    headers = {"Idempotency-Key": "review-k1"}
    resp = await client.post("/api/v1/complaints", json=complaint, headers=headers)
    told = await resp.json()
    assert resp.status == 202 and told["status"] == "accepted", told
    assert told["tracking_id"] != first.tracking_id
    resp = await client.post("/api/v1/complaints", json=complaint, headers=headers)
    again = await resp.json()
    assert again["tracking_id"] == told["tracking_id"]
    assert again == told, again


async def test_an_own_id_shows_no_agency_named_before_its_message_arrived(
    gw: bootstrap.Gateway,
) -> None:
    """The agency named when the complaint was forwarded (before the stranger's message) does
    not show under the stranger's ID, even once a later change (naming no agency) is shown."""
    first = await gw.intake.accept(msg(Channel.SMS, 0, body=ROAD, nik=NIK_A, phone=SITI), PARSER)
    await _change(gw, first.complaint_id, "forwarded", datetime(2026, 11, 2, 8, 30, tzinfo=UTC))
    own = await gw.intake.accept(msg(Channel.WEB, 60, body=ROAD_SMS, nik=NIK_A), PARSER)
    assert own.tracking_id is not None and own.tracking_id != first.tracking_id
    # The routing core's next change names no agency: the column keeps the earlier one.
    async with gw.engine.begin() as conn:
        await conn.execute(
            update(complaints)
            .where(complaints.c.id == first.complaint_id)
            .values(status="in_progress", status_changed_at=datetime(2026, 11, 2, 10, tzinfo=UTC))
        )
    public = await queries.public_request(gw.engine, own.tracking_id)
    seen = await gw.intake.status(own.tracking_id)
    assert public is not None and seen is not None
    assert (public.agency, seen.agency) == (None, None), (public, seen)


async def test_an_own_id_shows_on_open311_as_a_new_complaint_would(
    gw: bootstrap.Gateway,
) -> None:
    """A new (not confidential) complaint shows its title on Open311 to whoever holds its ID;
    so does a message told an ID of its own (none would tell the holder it joined someone's
    complaint)."""
    nik_b = "3209010101900002"
    new = await gw.intake.accept(
        msg(Channel.WEB, 0, body=WATER, title="Air PDAM mati", nik=nik_b), PARSER
    )
    assert new.tracking_id is not None
    shown_new = await queries.public_request(gw.engine, new.tracking_id)
    assert shown_new is not None and shown_new.title == "Air PDAM mati"
    first = await gw.intake.accept(
        msg(Channel.SMS, 0, body=ROAD, nik=NIK_A, phone=SITI), PARSER
    )
    own = await gw.intake.accept(
        msg(Channel.WEB, 60, body=ROAD, title="Jalan berlubang", nik=NIK_A), PARSER
    )
    assert own.status is ReceiptStatus.ACCEPTED and own.tracking_id is not None
    assert own.complaint_id == first.complaint_id  # joined
    shown_own = await queries.public_request(gw.engine, own.tracking_id)
    assert shown_own is not None
    assert shown_own.title == "Jalan berlubang", shown_own


async def test_an_own_id_is_listed_by_date_as_a_new_complaint_would_be(
    gw: bootstrap.Gateway,
) -> None:
    """Open311 requests.json?start_date=&end_date= (no service_request_id) lists every
    complaint received in the window but the confidential ones (whose listed ID would show
    anyone their status and agency): a new complaint's holder finds their ID there, and so
    does an own ID's (missing, it would tell its holder the message joined someone's
    complaint); a confidential one is missing either way."""
    new = await gw.intake.accept(
        msg(Channel.WEB, 0, body=WATER, nik="3209010101900002", confidential=True), PARSER
    )
    await gw.intake.accept(msg(Channel.SMS, 0, body=ROAD, nik=NIK_A, phone=SITI), PARSER)
    own = await gw.intake.accept(msg(Channel.WEB, 60, body=ROAD_SMS, nik=NIK_A), PARSER)
    assert own.status is ReceiptStatus.ACCEPTED and own.complaint_id is not None
    around_new = await queries.list_public_requests(
        gw.engine, start=T0 - timedelta(minutes=1), end=T0 + timedelta(minutes=1)
    )
    assert new.tracking_id not in {r.tracking_id for r in around_new}
    plain = await gw.intake.accept(msg(Channel.WEB, 0, body=WATER, nik="3209010101900003"), PARSER)
    around_new = await queries.list_public_requests(
        gw.engine, start=T0 - timedelta(minutes=1), end=T0 + timedelta(minutes=1)
    )
    assert plain.tracking_id in {r.tracking_id for r in around_new}
    around_own = await queries.list_public_requests(
        gw.engine, start=T0 + timedelta(minutes=59), end=T0 + timedelta(minutes=61)
    )
    assert own.tracking_id in {r.tracking_id for r in around_own}, around_own


async def test_an_own_id_is_texted_when_its_shown_status_changes(gw: bootstrap.Gateway) -> None:
    """The complaint was forwarded before the stranger's SMS came: their ID shows 'received'.
    The routing core's next change repeats 'forwarded' (a new agency): their ID now shows
    'forwarded' (/cek, SMS CEK), so their number is texted of it, as a new complaint's holder
    is texted 'kini berstatus DITERUSKAN'."""
    first = await gw.intake.accept(msg(Channel.SMS, 0, body=ROAD, nik=NIK_A, phone=SITI), PARSER)
    assert first.complaint_id is not None and first.tracking_id is not None
    push = StatusPush("1708")
    now = T0 + timedelta(hours=3)

    def change(key: str, minutes: int, agency: str) -> StatusChange:
        return StatusChange(
            key, first.complaint_id, first.tracking_id, "forwarded",  # type: ignore[arg-type]
            T0 + timedelta(minutes=minutes), agency,
        )

    await status_feed.apply(gw.engine, change("c-1", 30, "Dinas PUPR Kab. Cirebon"), now, push)
    own = await gw.intake.accept(
        msg(Channel.SMS, 60, body=ROAD_SMS, nik=NIK_A, phone=STRANGER), PARSER
    )
    assert own.status is ReceiptStatus.ACCEPTED and own.tracking_id is not None
    # The receipt the stranger's number got (as the SMS channel writes it).
    async with gw.engine.begin() as conn:
        await conn.execute(
            sms_replies.insert().values(
                raw_inbound_id=own.raw_id, bridge="kannel", recipient=gw.keys.encrypt(STRANGER),
                sender_hash="stranger", tracking_id=own.tracking_id, kind="receipt",
                body="receipt", status="sent", created_at=now, next_attempt_at=now,
            )
        )
    before = await gw.intake.status(own.tracking_id)
    assert before is not None and before.status == "received"
    _, told = await status_feed.apply(
        gw.engine, change("c-2", 90, "Dinas Perhubungan Kab. Cirebon"), now, push
    )
    after = await gw.intake.status(own.tracking_id)
    assert after is not None and after.status == "forwarded"  # shown to the stranger now
    async with gw.engine.connect() as conn:
        texted = (
            await conn.execute(
                select(sms_replies.c.body).where(
                    sms_replies.c.kind == "status-change",
                    sms_replies.c.tracking_id == own.tracking_id,
                )
            )
        ).scalars().all()
    assert told == 1 and len(texted) == 1, (told, texted)


def _parse_kind(raw: RawInbound) -> Any:
    draft = PARSER.parse(raw)
    return replace(draft, kind=Kind(json.loads(raw.body).get("kind", "pengaduan")))


async def test_open311_list_by_kind_finds_an_own_id_behind_newer_own_ids_of_another_kind(
    gw: bootstrap.Gateway,
) -> None:
    # Open311 requests.json?service_code=aspirasi lists the newest aspirations. An own ID of
    # that kind is one, as a new complaint of that kind would be, however many newer own IDs
    # of another kind there are (the filter comes before the limit).
    parser = Parser("test.json", _parse_kind)
    first = await gw.intake.accept(msg(Channel.SMS, 0, body=ROAD, nik=NIK_A, phone=SITI), parser)
    assert first.status is ReceiptStatus.ACCEPTED
    wanted = await gw.intake.accept(
        msg(Channel.WEB, 60, body=ROAD, nik=NIK_A, kind="aspirasi"), parser
    )
    assert wanted.status is ReceiptStatus.ACCEPTED and wanted.complaint_id == first.complaint_id
    for minutes, tail in ((180, " tolong"), (300, " segera")):
        other = await gw.intake.accept(
            msg(Channel.WEB, minutes, body=ROAD + tail, nik=NIK_A), parser
        )
        assert other.complaint_id == first.complaint_id
        assert other.tracking_id not in (wanted.tracking_id, first.tracking_id)
    all_aspirations = await queries.list_public_requests(gw.engine, kinds=["aspirasi"])
    assert [r.tracking_id for r in all_aspirations] == [wanted.tracking_id]
    newest = await queries.list_public_requests(gw.engine, kinds=["aspirasi"], limit=1)
    assert [r.tracking_id for r in newest] == [wanted.tracking_id]





def _parse_place(raw: RawInbound) -> Any:
    place = json.loads(raw.body).get("place")
    return replace(PARSER.parse(raw), location=None if place is None else Location(text=place))


async def test_a_second_web_form_with_a_typed_nik_is_not_told_the_first_forms_own_id(
    gw: bootstrap.Gateway,
) -> None:
    # A web form's NIK is typed: the same form sent twice is not told the first's ID (see
    # test_a_web_form_sent_again_is_told_an_id_of_its_own_and_makes_no_event). Nor when the
    # first form joined Siti's complaint under an ID of its own and a second form with the same
    # NIK, title and words (not place: tier 2 compares title and body) comes within the retry
    # window: told that ID, whoever typed the NIK second would learn that someone sent these
    # words with this NIK minutes before, and through the ID the place the first form gave
    # (its sender's address, perhaps).
    parser = Parser("test.json", _parse_place)
    await gw.intake.accept(msg(Channel.SMS, 0, body=ROAD, nik=NIK_A, phone=SITI), parser)
    one = await gw.intake.accept(
        msg(Channel.WEB, 60, body=ROAD_SMS, nik=NIK_A, title="Jalan rusak",
            place="Jl. Melati No. 17, RT 03/RW 05, Sumber"),
        parser,
    )
    assert one.status is ReceiptStatus.ACCEPTED and one.tracking_id is not None
    two = await gw.intake.accept(
        msg(Channel.WEB, 62, body=ROAD_SMS, nik=NIK_A, title="Jalan rusak"), parser
    )
    assert two.status is ReceiptStatus.ACCEPTED and two.tracking_id is not None
    shown = await queries.public_request(gw.engine, two.tracking_id)
    assert shown is not None
    assert shown.address is None, f"the second sender sees the first form's place: {shown}"
    assert two.tracking_id != one.tracking_id, "a typed NIK was told another sender's ID"






def _parse_agency(raw: RawInbound) -> Any:
    return replace(PARSER.parse(raw), agency=json.loads(raw.body).get("agency"))


async def test_an_own_id_keeps_the_agency_it_asked_for_as_a_new_complaint_does(
    gw: bootstrap.Gateway,
) -> None:
    # A new complaint that asked for an agency shows it until a change names another; a change
    # naming none (most status changes) leaves it. So does an own ID: its holder must not see
    # the agency vanish where a new complaint's would not.
    parser = Parser("test.json", _parse_agency)
    asked = "Dinas PUPR Kab. Cirebon"
    new = await gw.intake.accept(
        msg(Channel.WEB, 0, body=WATER, nik="3209010101900002", agency=asked), parser
    )
    first = await gw.intake.accept(msg(Channel.SMS, 0, body=ROAD, nik=NIK_A, phone=SITI), parser)
    own = await gw.intake.accept(
        msg(Channel.WEB, 60, body=ROAD_SMS, nik=NIK_A, agency=asked), parser
    )
    assert own.status is ReceiptStatus.ACCEPTED and own.complaint_id == first.complaint_id
    assert new.tracking_id is not None and own.tracking_id is not None
    for tid in (new.tracking_id, own.tracking_id):
        seen = await gw.intake.status(tid)
        assert seen is not None and (seen.status, seen.agency) == ("received", asked), seen
    later = T0 + timedelta(hours=3)
    for receipt in (new, first):  # the routing core's change, naming no agency
        assert receipt.complaint_id is not None and receipt.tracking_id is not None
        change = StatusChange(
            f"change-{receipt.complaint_id}", receipt.complaint_id, receipt.tracking_id,
            "in_progress", later, None,
        )
        await status_feed.apply(gw.engine, change, later + timedelta(minutes=1))
    seen_new = await gw.intake.status(new.tracking_id)
    assert seen_new is not None and (seen_new.status, seen_new.agency) == ("in_progress", asked)
    seen_own = await gw.intake.status(own.tracking_id)
    assert seen_own is not None and (seen_own.status, seen_own.agency) == (
        "in_progress", asked
    ), seen_own
    public = await queries.public_request(gw.engine, own.tracking_id)
    assert public is not None and public.agency == asked, public


async def test_a_confidential_own_id_does_not_show_its_agency_on_open311(
    gw: bootstrap.Gateway,
) -> None:
    # Open311 (public: anyone may list by date) never shows a confidential complaint's agency:
    # "whom it concerns ... tells its matter" (queries._public), and lists it by date not at
    # all. Nor a confidential message's told an ID of its own, as for a new one.
    parser = Parser("test.json", _parse_agency)
    asked = "Inspektorat Kab. Cirebon"
    new = await gw.intake.accept(
        msg(Channel.WEB, 0, body=WATER, nik="3209010101900002", agency=asked, confidential=True),
        parser,
    )
    assert new.tracking_id is not None
    control = await queries.public_request(gw.engine, new.tracking_id)
    assert control is not None and control.agency is None  # a new confidential complaint
    first = await gw.intake.accept(msg(Channel.SMS, 0, body=ROAD, nik=NIK_A, phone=SITI), parser)
    own = await gw.intake.accept(
        msg(Channel.WEB, 60, body=ROAD_SMS, nik=NIK_A, agency=asked, confidential=True), parser
    )
    assert own.status is ReceiptStatus.ACCEPTED and own.complaint_id == first.complaint_id
    assert own.tracking_id is not None
    for start in (T0 - timedelta(minutes=1), T0 + timedelta(minutes=59)):
        listed = await queries.list_public_requests(
            gw.engine, start=start, end=start + timedelta(minutes=2)
        )
        assert {r.tracking_id for r in listed} & {own.tracking_id, new.tracking_id} == set()
    [named] = await queries.list_public_requests(gw.engine, tracking_ids=[own.tracking_id])
    assert (named.tracking_id, named.title, named.agency) == (own.tracking_id, None, None)
    one = await queries.public_request(gw.engine, own.tracking_id)
    assert one is not None and one.agency is None, one


async def test_open311_lists_an_own_id_open_or_closed_by_what_it_shows(
    gw: bootstrap.Gateway,
) -> None:
    # Listed by date with status=open/closed, an own ID counts as what it shows: "received"
    # (open) while the complaint's status was set before it arrived, then the status changed
    # since.
    first = await gw.intake.accept(msg(Channel.SMS, 0, body=ROAD, nik=NIK_A, phone=SITI), PARSER)
    await _change(gw, first.complaint_id, "forwarded", T0 + timedelta(minutes=30))
    own = await gw.intake.accept(msg(Channel.WEB, 60, body=ROAD_SMS, nik=NIK_A), PARSER)
    assert own.tracking_id is not None and own.complaint_id == first.complaint_id
    window = {"start": T0 + timedelta(minutes=59), "end": T0 + timedelta(minutes=61)}

    async def listed(status: str) -> list[str]:
        found = await queries.list_public_requests(gw.engine, statuses=[status], **window)
        return [r.tracking_id for r in found]

    assert (await listed("open"), await listed("closed")) == ([own.tracking_id], [])
    await _change(gw, first.complaint_id, "selesai", T0 + timedelta(hours=3))
    assert (await listed("open"), await listed("closed")) == ([], [own.tracking_id])


PUPR = "Dinas PUPR Kab. Cirebon"


async def _forward(gw: bootstrap.Gateway, *receipts: Receipt) -> None:
    """The routing core forwards each complaint to PUPR, three hours on."""
    later = T0 + timedelta(hours=3)
    for receipt in receipts:
        assert receipt.complaint_id is not None and receipt.tracking_id is not None
        change = StatusChange(
            f"fwd-{receipt.complaint_id}", receipt.complaint_id, receipt.tracking_id,
            "forwarded", later, PUPR,
        )
        await status_feed.apply(gw.engine, change, later + timedelta(minutes=1))


async def test_a_message_that_joins_after_a_change_dated_after_its_arrival_shows_received(
    gw: bootstrap.Gateway,
) -> None:
    # A letter's received_at is when its draft was made (channels/letter/routes.py:
    # received_at=draft.created_at); the clerk confirms it later. A long SMS is received when
    # its first part came. A new complaint received at 09:00 and stored at 09:40 shows
    # 'received'; so does an own ID with the same dates, though the complaint was forwarded at
    # 09:30: that was before the message joined.
    first = await gw.intake.accept(msg(Channel.SMS, 0, body=ROAD, nik=NIK_A, phone=SITI), PARSER)
    assert first.complaint_id is not None and first.tracking_id is not None
    received = msg(Channel.WEB, 60, body=WATER, nik=NIK_B)
    CLOCK.now = T0 + timedelta(minutes=100)
    new = await gw.intake.accept(received, PARSER)
    assert new.tracking_id is not None
    forwarded = StatusChange(
        "fwd-before-join", first.complaint_id, first.tracking_id, "forwarded",
        T0 + timedelta(minutes=90), PUPR,
    )
    await status_feed.apply(gw.engine, forwarded, T0 + timedelta(minutes=95))
    # Confirmed at the desk (or its last SMS part came) after that change: it joins now.
    late = msg(Channel.WEB, 60, body=ROAD_SMS, nik=NIK_A)
    CLOCK.now = T0 + timedelta(minutes=100)
    own = await gw.intake.accept(late, PARSER)
    assert own.status is ReceiptStatus.ACCEPTED and own.complaint_id == first.complaint_id
    assert own.tracking_id not in (None, first.tracking_id)
    seen_new = await gw.intake.status(new.tracking_id)
    assert seen_new is not None and (seen_new.status, seen_new.agency) == ("received", None)
    seen_own = await gw.intake.status(own.tracking_id)
    assert seen_own is not None
    assert (seen_own.status, seen_own.agency) == ("received", None), seen_own
    public = await queries.public_request(gw.engine, own.tracking_id)
    assert public is not None and (public.status, public.agency) == ("received", None), public


async def test_a_confidential_own_id_shows_on_cek_the_agency_a_later_change_named(
    gw: bootstrap.Gateway,
) -> None:
    # /cek and the API show a new confidential complaint's holder the agency a change named
    # (only Open311, public, hides it). So for a confidential message told an ID of its own,
    # though it makes the complaint confidential too (it asks more privacy).
    new = await gw.intake.accept(
        msg(Channel.WEB, 0, body=WATER, nik=NIK_B, confidential=True), PARSER
    )
    first = await gw.intake.accept(msg(Channel.SMS, 0, body=ROAD, nik=NIK_A, phone=SITI), PARSER)
    own = await gw.intake.accept(
        msg(Channel.WEB, 60, body=ROAD_SMS, nik=NIK_A, confidential=True), PARSER
    )
    assert own.status is ReceiptStatus.ACCEPTED and own.complaint_id == first.complaint_id
    await _forward(gw, new, first)
    assert new.tracking_id is not None and own.tracking_id is not None
    seen_new = await gw.intake.status(new.tracking_id)
    assert seen_new is not None and (seen_new.status, seen_new.agency) == ("forwarded", PUPR)
    seen_own = await gw.intake.status(own.tracking_id)
    assert seen_own is not None
    assert (seen_own.status, seen_own.agency) == ("forwarded", PUPR), seen_own


async def test_an_own_id_joined_to_a_confidential_complaint_shows_the_agency_named_since(
    gw: bootstrap.Gateway,
) -> None:
    # The other way round: the stranger's message is not confidential, Siti's complaint is. A
    # new (not confidential) complaint's holder sees on /cek and Open311 the agency a change
    # named, and so does the own ID's: hiding it by the complaint's flag would tell them they
    # joined a confidential complaint.
    new = await gw.intake.accept(msg(Channel.WEB, 0, body=WATER, nik=NIK_B), PARSER)
    first = await gw.intake.accept(
        msg(Channel.SMS, 0, body=ROAD, nik=NIK_A, phone=SITI, confidential=True), PARSER
    )
    own = await gw.intake.accept(msg(Channel.WEB, 60, body=ROAD_SMS, nik=NIK_A), PARSER)
    assert own.status is ReceiptStatus.ACCEPTED and own.complaint_id == first.complaint_id
    await _forward(gw, new, first)
    assert new.tracking_id is not None and own.tracking_id is not None
    for tid in (new.tracking_id, own.tracking_id):
        seen = await gw.intake.status(tid)
        public = await queries.public_request(gw.engine, tid)
        assert seen is not None and public is not None
        assert (seen.agency, public.agency) == (PUPR, PUPR), (tid == own.tracking_id, seen, public)


async def test_open311_updated_datetime_of_an_own_id_is_as_a_new_complaints(
    gw: bootstrap.Gateway,
) -> None:
    # Open311 updated_datetime of a new complaint whose status has not changed is when it was
    # stored (created_at: for a letter, when the clerk confirmed it), not when it was
    # received; so is an own ID's.
    await gw.intake.accept(msg(Channel.SMS, 0, body=ROAD, nik=NIK_A, phone=SITI), PARSER)
    new_raw, own_raw = (
        msg(Channel.WEB, 60, body=WATER, nik=NIK_B),
        msg(Channel.WEB, 60, body=ROAD_SMS, nik=NIK_A),
    )
    CLOCK.now = T0 + timedelta(minutes=100)  # both stored (a letter confirmed) 40 minutes on
    new = await gw.intake.accept(new_raw, PARSER)
    own = await gw.intake.accept(own_raw, PARSER)
    assert new.tracking_id is not None and own.tracking_id is not None
    shown_new = await queries.public_request(gw.engine, new.tracking_id)
    shown_own = await queries.public_request(gw.engine, own.tracking_id)
    assert shown_new is not None and shown_own is not None
    assert shown_new.received_at == shown_own.received_at
    assert shown_own.updated_at == shown_new.updated_at == T0 + timedelta(minutes=100)


def _broken(_raw: RawInbound) -> Any:
    raise ParseError("a reader bug", stage="grammar")


async def _replayed(gw: bootstrap.Gateway, raw: RawInbound) -> tuple[str, Receipt]:
    held = await gw.intake.accept(raw, Parser("t.review", _broken))
    assert held.status is ReceiptStatus.QUARANTINED and held.tracking_id is not None
    [entry] = await gw.intake.list_quarantine()
    fixed = ParserRegistry([Parser("t.review", _parse)])
    return held.tracking_id, await gw.intake.replay(entry["id"], fixed)


async def test_a_replayed_sms_from_the_complaints_own_number_is_listed_by_its_id(
    gw: bootstrap.Gateway,
) -> None:
    # An SMS quarantined is answered with an ID; replayed, it keeps that ID (its number is
    # texted under it). Replayed into a new complaint, the ID is listed by date on Open311; so
    # it is when replayed into the complaint the same number sent before.
    nik_b_phone = "+6285700002222"
    held_b, new = await _replayed(
        gw, msg(Channel.SMS, 0, body=WATER, nik=NIK_B, phone=nik_b_phone)
    )
    assert new.tracking_id == held_b and new.status is ReceiptStatus.ACCEPTED
    listed = await queries.list_public_requests(
        gw.engine, start=T0 - timedelta(minutes=1), end=T0 + timedelta(minutes=1)
    )
    assert held_b in {r.tracking_id for r in listed}
    first = await gw.intake.accept(msg(Channel.SMS, 30, body=ROAD, nik=NIK_A, phone=SITI), PARSER)
    held, joined = await _replayed(gw, msg(Channel.SMS, 60, body=ROAD_SMS, phone=SITI))
    assert joined.complaint_id == first.complaint_id
    assert await gw.intake.status(held) is not None
    assert await queries.public_request(gw.engine, held) is not None
    around = await queries.list_public_requests(
        gw.engine, start=T0 + timedelta(minutes=59), end=T0 + timedelta(minutes=61)
    )
    assert held in {r.tracking_id for r in around}, (held, joined, around)


async def test_an_own_id_whose_holder_later_asks_confidentiality_is_listed_no_more(
    gw: bootstrap.Gateway,
) -> None:
    """A phone that joined Siti's complaint under an ID of its own writes of the matter again,
    now asking confidentiality: told the same ID, which from then on shows what a confidential
    message's would (no title, no place) and leaves Open311's listing by date, as the
    complaint itself does once a later message makes it confidential."""
    siti = await gw.intake.accept(msg(Channel.SMS, 0, body=ROAD, nik=NIK_A, phone=SITI), PARSER)
    first = await gw.intake.accept(
        msg(Channel.SMS, 60, body=ROAD_SMS, title="Siliwangi", nik=NIK_A, phone=STRANGER), PARSER
    )
    assert first.status is ReceiptStatus.ACCEPTED
    assert first.tracking_id not in (None, siti.tracking_id)
    later = await gw.intake.accept(
        msg(Channel.SMS, 180, body=ROAD_SMS + " tolong dirahasiakan", nik=NIK_A,
            phone=STRANGER, confidential=True),
        PARSER,
    )
    assert later.tracking_id == first.tracking_id, later
    around_siti = await queries.list_public_requests(
        gw.engine, start=T0 - timedelta(minutes=1), end=T0 + timedelta(minutes=1)
    )
    assert siti.tracking_id not in {r.tracking_id for r in around_siti}
    listed = await queries.list_public_requests(
        gw.engine, start=T0 + timedelta(minutes=59), end=T0 + timedelta(minutes=61)
    )
    assert first.tracking_id not in {r.tracking_id for r in listed}, listed
    assert first.tracking_id is not None
    one = await queries.public_request(gw.engine, first.tracking_id)
    assert one is not None and (one.title, one.address, one.agency) == (None, None, None)
