"""Identity graph and dedup tiers 2 and 3, through the real intake port, on both databases."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from gateway import bootstrap
from gateway.domain import (
    Channel,
    ComplaintDraft,
    Privacy,
    RawInbound,
    ReceiptStatus,
    Reporter,
)
from gateway.intake import Parser
from gateway.settings import Settings
from gateway.storage.schema import (
    complaints,
    dedup_decisions,
    identities,
    identity_conflicts,
    outbox,
    persons,
)
from normalizer import normalize_email, normalize_phone
from tests.support import drain, opened_events, validate_event

pytestmark = pytest.mark.integration

NIK_A = "3209014101900001"  # Kab. Cirebon, born 1 Jan 1990 (woman: day + 40)
NIK_B = "3209010101900002"
ROAD = "Jalan Siliwangi depan Pasar Sumber berlubang besar sudah dua bulan, motor sering jatuh."
ROAD_SMS = "jln siliwangi dpn pasar sumber berlubang bsr udh 2 bln, motor srg jatuh tlg diperbaiki"
WATER = "Air PDAM di Perumahan Griya Asri mati total sejak tiga hari, warga harus beli air galon."


def _parse(raw: RawInbound) -> ComplaintDraft:
    # As every channel's parser: the phone number and e-mail address in the contract's form.
    data = json.loads(raw.body)
    phone, email = data.get("phone"), data.get("email")
    return ComplaintDraft(
        body=data["body"],
        title=data.get("title"),
        reporter=Reporter(
            nik=data.get("nik"),
            phone=normalize_phone(phone) if phone else None,
            email=normalize_email(email) if email else None,
            handles=data.get("handles", {}),
        ),
        privacy=Privacy(
            anonymous=bool(data.get("anonymous")), confidential=bool(data.get("confidential"))
        ),
    )


PARSER = Parser("test.json", _parse)
T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
_seq = iter(range(10**6))


def msg(channel: Channel, minutes: float = 0, **fields: object) -> RawInbound:
    return RawInbound(
        channel, json.dumps(fields).encode(), T0 + timedelta(minutes=minutes), f"m-{next(_seq)}"
    )


@pytest.fixture
async def gw(settings: Settings) -> AsyncIterator[bootstrap.Gateway]:
    gateway = bootstrap.build(settings)
    yield gateway
    await gateway.close()


async def _count(gw: bootstrap.Gateway, table: object) -> int:
    async with gw.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())  # type: ignore[arg-type]


async def test_same_person_across_channels_becomes_a_duplicate_event(
    gw: bootstrap.Gateway, settings: Settings
) -> None:
    web = await gw.intake.accept(
        msg(Channel.WEB, body=ROAD, nik=NIK_A, phone="0812-3456-7890", email="Siti@Mail.ID"), PARSER
    )
    sms = await gw.intake.accept(msg(Channel.SMS, 60, body=ROAD_SMS, phone="+6281234567890"), PARSER)
    mail = await gw.intake.accept(msg(Channel.EMAIL, 90, body=ROAD, email="siti@mail.id"), PARSER)
    assert web.status is ReceiptStatus.ACCEPTED
    for later in (sms, mail):
        assert later.status is ReceiptStatus.DUPLICATE
        assert later.tracking_id == later.duplicate_of == web.tracking_id
        assert later.complaint_id == web.complaint_id
    assert await _count(gw, complaints) == 1
    assert gw.relay is not None
    while await gw.relay.publish_batch():
        pass
    await gw.relay._close()
    messages = await drain(settings.broker.queue, expected=3)
    keys = sorted(m.routing_key or "" for m in messages)
    assert keys == ["complaint.created.web", "complaint.duplicate.email", "complaint.duplicate.sms"]
    dup = next(json.loads(m.body) for m in messages if m.routing_key == "complaint.duplicate.sms")
    assert dup["duplicate_of"] == web.tracking_id and dup["event"] == "duplicate"
    assert dup["body"] == ROAD_SMS  # the new evidence travels
    assert dup["complaint_id"] == web.complaint_id
    async with gw.engine.connect() as conn:
        rows = (await conn.execute(select(dedup_decisions).order_by(dedup_decisions.c.id))).all()
    assert [r.tier for r in rows] == ["new", "similar", "similar"]
    assert [r.identity_kind for r in rows[1:]] == ["phone", "email"]
    assert all(r.score is not None and r.score >= settings.dedup.similarity_threshold for r in rows[1:])
    assert gw.metrics.duplicates.labels("sms", "similar")._value.get() == 1


async def test_retry_with_a_new_id_gets_the_first_receipt_and_no_event(gw: bootstrap.Gateway) -> None:
    first = await gw.intake.accept(msg(Channel.SMS, 0, body=WATER, phone="+6281299990001"), PARSER)
    again = await gw.intake.accept(msg(Channel.SMS, 2, body=WATER, phone="081299990001"), PARSER)
    assert again.redelivered and again.tracking_id == first.tracking_id
    assert await _count(gw, outbox) == 1
    later = await gw.intake.accept(msg(Channel.SMS, 60, body=WATER, phone="081299990001"), PARSER)
    assert later.status is ReceiptStatus.DUPLICATE  # outside the retry window: new evidence
    assert await _count(gw, outbox) == 2


async def test_the_same_short_text_about_another_place_is_not_taken_for_a_retry(
    gw: bootstrap.Gateway,
) -> None:
    # Tier 2 drops a message whose comparison tokens equal those of the sender's message of a
    # few minutes before: "pasar lama" and "pasar baru" lost their place words as stop words,
    # so the second market's report never reached the routing core.
    phone = "+6281299990003"
    first = await gw.intake.accept(
        msg(Channel.SMS, 0, body="sampah blm diangkut seminggu di pasar lama", phone=phone), PARSER
    )
    other = await gw.intake.accept(
        msg(Channel.SMS, 3, body="sampah blm diangkut seminggu di pasar baru", phone=phone), PARSER
    )
    assert first.status is ReceiptStatus.ACCEPTED
    assert not other.redelivered
    assert await _count(gw, outbox) == 2  # its own event: the second market is not lost


async def test_different_matters_and_different_people_stay_separate(gw: bootstrap.Gateway) -> None:
    a1 = await gw.intake.accept(msg(Channel.WEB, 0, body=ROAD, nik=NIK_A), PARSER)
    a2 = await gw.intake.accept(msg(Channel.WEB, 5, body=WATER, nik=NIK_A), PARSER)
    b1 = await gw.intake.accept(msg(Channel.WEB, 10, body=ROAD, nik=NIK_B), PARSER)
    c1 = await gw.intake.accept(msg(Channel.SMS, 15, body=ROAD, phone="+6281277770001"), PARSER)
    assert [r.status for r in (a1, a2, b1, c1)] == [ReceiptStatus.ACCEPTED] * 4
    assert len({r.tracking_id for r in (a1, a2, b1, c1)}) == 4
    # outside the window the same matter is a new complaint again
    late = await gw.intake.accept(msg(Channel.WEB, 15 * 24 * 60, body=ROAD, nik=NIK_A), PARSER)
    assert late.status is ReceiptStatus.ACCEPTED


async def test_identity_of_one_nik_is_never_moved_to_another(gw: bootstrap.Gateway) -> None:
    await gw.intake.accept(msg(Channel.WEB, 0, body=ROAD, nik=NIK_A, phone="+6281234500001"), PARSER)
    other = await gw.intake.accept(
        msg(Channel.WEB, 1, body=ROAD, nik=NIK_B, phone="+6281234500001"), PARSER
    )
    assert other.status is ReceiptStatus.ACCEPTED  # never merged into NIK A's complaint
    async with gw.engine.connect() as conn:
        conflict = (await conn.execute(select(identity_conflicts))).one()
        phone_owner = (
            await conn.execute(select(identities.c.person_id).where(identities.c.kind == "phone"))
        ).scalar_one()
        nik_owners = (
            await conn.execute(
                select(identities.c.person_id).where(identities.c.kind == "nik").order_by(identities.c.id)
            )
        ).scalars().all()
    assert conflict.kind == "phone" and conflict.person_id == nik_owners[0]
    assert conflict.claimed_by_person_id == nik_owners[1]
    assert phone_owner == nik_owners[0] != nik_owners[1]


async def test_people_without_nik_merge_when_seen_together(gw: bootstrap.Gateway) -> None:
    sms = await gw.intake.accept(msg(Channel.SMS, 0, body=WATER, phone="+6281211110001"), PARSER)
    await gw.intake.accept(msg(Channel.EMAIL, 1, body=ROAD, email="budi@contoh.id"), PARSER)
    assert await _count(gw, persons) == 2
    # a web form names both: one person now, and the NIK anchors it. It joins the SMS's
    # complaint; its phone number, typed, vouches for nothing: it is told an ID of its own.
    both = await gw.intake.accept(
        msg(Channel.WEB, 2, body=WATER, nik=NIK_A, phone="081211110001", email="budi@contoh.id"),
        PARSER,
    )
    assert both.status is ReceiptStatus.ACCEPTED and both.complaint_id == sms.complaint_id
    assert both.tracking_id not in (None, sms.tracking_id)
    async with gw.engine.connect() as conn:
        owners = set((await conn.execute(select(identities.c.person_id))).scalars())
        person_ids = set((await conn.execute(select(complaints.c.person_id))).scalars())
    assert len(owners) == 1 and person_ids == owners


async def test_a_gmail_address_typed_without_its_dots_is_the_same_reporter(
    gw: bootstrap.Gateway,
) -> None:
    # The web form's address as the citizen typed it; his mail program sends from the account's
    # own spelling. Gmail delivers both to one mailbox: one person, one complaint.
    web = await gw.intake.accept(
        msg(Channel.WEB, 0, body=ROAD, nik=NIK_A, email="sitirahayu90@gmail.com"), PARSER
    )
    mail = await gw.intake.accept(
        msg(Channel.EMAIL, 60, body=ROAD, email="Siti.Rahayu90@gmail.com"), PARSER
    )
    assert mail.status is ReceiptStatus.DUPLICATE and mail.duplicate_of == web.tracking_id
    # Elsewhere the dots are another address, possibly another person's: not linked.
    other = await gw.intake.accept(
        msg(Channel.EMAIL, 61, body=ROAD, email="siti.rahayu90@yahoo.co.id"), PARSER
    )
    yahoo = await gw.intake.accept(
        msg(Channel.EMAIL, 62, body=WATER, email="sitirahayu90@yahoo.co.id"), PARSER
    )
    assert other.status is yahoo.status is ReceiptStatus.ACCEPTED
    assert await _count(gw, persons) == 3


async def test_nik_and_contacts_are_stored_encrypted_and_looked_up_by_keyed_hash(
    gw: bootstrap.Gateway,
) -> None:
    await gw.intake.accept(msg(Channel.WEB, 0, body=ROAD, nik=NIK_A, phone="+6281234567890"), PARSER)
    async with gw.engine.connect() as conn:
        stored = [dict(r._mapping) for r in await conn.execute(select(identities))]
        reporter = (await conn.execute(select(complaints.c.reporter))).scalar_one()
    dump = json.dumps(stored, default=str) + json.dumps(reporter)
    # Neither in the identity rows nor in the complaint's reporter column, in any spelling.
    assert NIK_A not in dump
    assert "81234567890" not in dump  # the phone, written +62812... or 0812...
    assert {r["kind"] for r in stored} == {"nik", "phone"}
    keys = gw.intake._keys
    by_kind = {r["kind"]: r for r in stored}
    assert keys.decrypt(by_kind["nik"]["value_enc"]) == NIK_A
    assert by_kind["nik"]["value_hash"] == keys.lookup_hash("nik", NIK_A)
    assert keys.decrypt(reporter["nik"]["enc"]) == NIK_A
    assert keys.decrypt(reporter["phone"]["enc"]) == "+6281234567890"


async def test_a_complaint_with_a_very_long_number_is_accepted_and_its_retry_recognised(
    gw: bootstrap.Gateway,
) -> None:
    # A pasted run of digits longer than Python's int() takes (4300) made the dedup tokens fail:
    # the complaint went to quarantine ("normalize-crash") instead of to the routing core.
    body = f"{WATER} Nomor pelanggan tertulis {'9' * 5000} di tagihan."
    first = await gw.intake.accept(msg(Channel.SMS, 0, body=body, phone="+6281299990002"), PARSER)
    assert first.status is ReceiptStatus.ACCEPTED
    again = await gw.intake.accept(msg(Channel.SMS, 1, body=body, phone="081299990002"), PARSER)
    assert again.redelivered and again.tracking_id == first.tracking_id
    assert await _count(gw, complaints) == 1


async def test_a_nik_typed_in_other_digits_is_the_same_person(gw: bootstrap.Gateway) -> None:
    # Arabic-Indic digits (a phone keyboard set to Arabic) and the isolate marks a chat app puts
    # around a copied number: the same NIK, so the same person and the same complaint.
    first = await gw.intake.accept(msg(Channel.WEB, 0, body=ROAD, nik=NIK_A), PARSER)
    typed = "\u2068" + NIK_A.translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")) + "\u2069"
    again = await gw.intake.accept(msg(Channel.LETTER, 30, body=ROAD_SMS, nik=typed), PARSER)
    assert again.complaint_id == first.complaint_id  # a letter's NIK, typed: an ID of its own
    assert await _count(gw, persons) == 1


async def test_an_invalid_nik_links_nothing(gw: bootstrap.Gateway) -> None:
    receipt = await gw.intake.accept(msg(Channel.WEB, 0, body=ROAD, nik="9999999999999999"), PARSER)
    assert receipt.status is ReceiptStatus.ACCEPTED
    assert await _count(gw, identities) == 0


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_concurrent_messages_of_one_person_give_one_created(settings: Settings) -> None:
    """Two identities of one person, the same complaint, the same instant, separate connections."""
    seed = bootstrap.build(settings)
    replicas = [bootstrap.build(settings), bootstrap.build(settings)]
    rounds = 15
    try:
        for i in range(rounds):
            # A person whose phone and e-mail are linked (through a web form about something else)
            phone, email = f"+62812345{i:05d}", f"warga{i}@contoh.id"
            await seed.intake.accept(
                msg(Channel.WEB, 0, body=WATER, nik=f"320901410190{i + 1:04d}", phone=phone,
                    email=email),
                PARSER,
            )
            # ...then texts and e-mails the same complaint at the same instant.
            by_phone = msg(Channel.SMS, 10, body=ROAD, phone=phone)
            by_mail = msg(Channel.EMAIL, 10, body=ROAD, email=email.upper())
            results = await asyncio.gather(
                replicas[0].intake.accept(by_phone, PARSER),
                replicas[1].intake.accept(by_mail, PARSER),
            )
            # One complaint (the e-mail address was not given in the SMS's: an ID of its own).
            assert results[0].complaint_id == results[1].complaint_id, f"round {i}"
        async with seed.engine.connect() as conn:
            created = (
                await conn.execute(select(func.count()).select_from(outbox).where(outbox.c.event == "created"))
            ).scalar_one()
        assert created == 2 * rounds
    finally:
        for g in (seed, *replicas):
            await g.close()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_two_niks_for_one_person_at_the_same_instant_stay_two_people(
    settings: Settings,
) -> None:
    """A NIK-less person's phone arrives with NIK 1 and with NIK 2 at once, on two replicas.

    Both messages read the person without a NIK; whichever takes its lock second must see the
    NIK the first gave it: the phone stays with the first NIK, the second NIK becomes a person
    of its own and the clash is recorded (README, "Identity and deduplication").
    """
    seed = bootstrap.build(settings)
    replicas = [bootstrap.build(settings), bootstrap.build(settings)]
    keys = seed.keys
    rounds = 20
    try:
        for i in range(rounds):
            phone = f"+62813345{i:05d}"
            niks = (f"320901410190{i + 1:04d}", f"320901010190{i + 1:04d}")
            await seed.intake.accept(msg(Channel.SMS, 0, body=WATER, phone=phone), PARSER)
            results = await asyncio.gather(
                replicas[0].intake.accept(
                    msg(Channel.WEB, 10, body=ROAD, nik=niks[0], phone=phone), PARSER
                ),
                replicas[1].intake.accept(
                    msg(Channel.WEB, 10, body=ROAD, nik=niks[1], phone=phone), PARSER
                ),
            )
            assert [r.status for r in results] == [ReceiptStatus.ACCEPTED] * 2, f"round {i}"
            async with seed.engine.connect() as conn:
                owner = {
                    r.value_hash: r.person_id
                    for r in await conn.execute(select(identities.c.value_hash, identities.c.person_id))
                }
                conflicts = (
                    await conn.execute(
                        select(identity_conflicts).where(
                            identity_conflicts.c.value_hash == keys.lookup_hash("phone", phone)
                        )
                    )
                ).all()
                filed_by = [
                    (
                        await conn.execute(
                            select(complaints.c.person_id).where(
                                complaints.c.tracking_id == r.tracking_id
                            )
                        )
                    ).scalar_one()
                    for r in results
                ]
            first = owner[keys.lookup_hash("phone", phone)]
            nik_owner = [owner[keys.lookup_hash("nik", n)] for n in niks]
            assert first in nik_owner and nik_owner[0] != nik_owner[1], f"round {i}: one person"
            assert filed_by == nik_owner, f"round {i}"  # each complaint with its own NIK
            # The phone stays with the NIK that came first; the other NIK's claim is recorded.
            (conflict,) = conflicts
            other = next(p for p in nik_owner if p != first)
            assert (conflict.kind, conflict.person_id, conflict.claimed_by_person_id) == (
                "phone",
                first,
                other,
            ), f"round {i}"
        async with seed.engine.connect() as conn:
            most = (
                await conn.execute(
                    select(func.count())
                    .select_from(identities)
                    .where(identities.c.kind == "nik")
                    .group_by(identities.c.person_id)
                    .order_by(func.count().desc())
                    .limit(1)
                )
            ).scalar_one()
        assert most == 1  # no person ever holds two NIKs
    finally:
        for g in (seed, *replicas):
            await g.close()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_message_waiting_on_a_merge_goes_to_the_person_that_survives(
    settings: Settings,
) -> None:
    """Phone X and e-mail E are two NIK-less persons; a web form naming both merges them while
    an e-mail from E about the same matter arrives: whichever waits for the other's lock must
    follow the merge, so the two messages are one complaint and it belongs to the survivor."""
    seed = bootstrap.build(settings)
    replicas = [bootstrap.build(settings), bootstrap.build(settings)]
    rounds = 15
    try:
        for i in range(rounds):
            phone, email = f"+62813346{i:05d}", f"tetangga{i}@contoh.id"
            await seed.intake.accept(msg(Channel.SMS, 0, body=WATER, phone=phone), PARSER)
            await seed.intake.accept(
                msg(Channel.EMAIL, 1, body="Lampu jalan di gang Melati padam seminggu.", email=email),
                PARSER,
            )
            results = await asyncio.gather(
                replicas[0].intake.accept(
                    msg(Channel.WEB, 10, body=ROAD, phone=phone, email=email), PARSER
                ),
                replicas[1].intake.accept(msg(Channel.EMAIL, 10, body=ROAD, email=email), PARSER),
            )
            assert results[0].complaint_id == results[1].complaint_id, f"round {i}"
        async with seed.engine.connect() as conn:
            merged = select(persons.c.id).where(persons.c.merged_into.is_not(None))
            on_merged = (
                await conn.execute(
                    select(func.count())
                    .select_from(complaints)
                    .where(complaints.c.person_id.in_(merged))
                )
            ).scalar_one()
            survivors = (
                await conn.execute(select(func.count(func.distinct(complaints.c.person_id))))
            ).scalar_one()
        assert on_merged == 0
        assert survivors == rounds
    finally:
        for g in (seed, *replicas):
            await g.close()


async def test_a_duplicate_never_lifts_the_privacy_of_the_complaint_it_joins(
    gw: bootstrap.Gateway,
) -> None:
    # Sent anonymously and confidentially on the web, then again by SMS without the keywords:
    # the duplicate event still hides the identity and keeps the content unpublished.
    first = await gw.intake.accept(
        msg(Channel.WEB, body=ROAD, nik=NIK_A, phone="0812-3456-7890", anonymous=True,
            confidential=True),
        PARSER,
    )
    later = await gw.intake.accept(msg(Channel.SMS, 60, body=ROAD_SMS, phone="+6281234567890"), PARSER)
    assert later.status is ReceiptStatus.DUPLICATE and later.duplicate_of == first.tracking_id
    # And the other way round: a later message may ask for more, never for less.
    other = await gw.intake.accept(msg(Channel.WEB, 2, body=WATER, nik=NIK_B), PARSER)
    stricter = await gw.intake.accept(
        msg(Channel.WEB, 3, body=WATER + " Mohon segera ditangani.", nik=NIK_B, anonymous=True),
        PARSER,
    )
    assert stricter.complaint_id == other.complaint_id
    events = [json.loads(e) for e in await opened_events(gw.engine, gw.keys)]
    privacy = {(e["event"], e["tracking_id"]): e["privacy"] for e in events}
    assert privacy[("duplicate", first.tracking_id)] == {"anonymous": True, "confidential": True}
    assert privacy[("created", other.tracking_id)] == {"anonymous": False, "confidential": False}
    assert privacy[("duplicate", other.tracking_id)] == {"anonymous": True, "confidential": False}


async def test_a_duplicate_in_the_same_group_commit_keeps_the_privacy_of_the_first(
    gw: bootstrap.Gateway,
) -> None:
    # Both arrive together, so they are written in one group commit: the second is decided
    # against the first as the batch placed it, not as read from the table, and must still
    # carry the first's anonymity and confidentiality.
    first, later = await asyncio.gather(
        gw.intake.accept(
            msg(Channel.WEB, body=ROAD, nik=NIK_A, phone="0812-3456-7890", anonymous=True,
                confidential=True),
            PARSER,
        ),
        gw.intake.accept(msg(Channel.SMS, 1, body=ROAD_SMS, phone="+6281234567890"), PARSER),
    )
    assert later.status is ReceiptStatus.DUPLICATE and later.duplicate_of == first.tracking_id
    events = [json.loads(e) for e in await opened_events(gw.engine, gw.keys)]
    privacy = {(e["event"], e["tracking_id"]): e["privacy"] for e in events}
    assert privacy[("created", first.tracking_id)] == {"anonymous": True, "confidential": True}
    assert privacy[("duplicate", first.tracking_id)] == {"anonymous": True, "confidential": True}


async def test_a_later_message_asking_for_more_privacy_is_kept_by_the_complaint(
    gw: bootstrap.Gateway,
) -> None:
    # Filed openly, then the citizen asks that it be confidential: the public pages (Open311)
    # stop showing its title and place, and a third message inherits what the second asked,
    # in a later group commit (from the table) as in the same one (from the batch).
    from gateway import queries

    first = await gw.intake.accept(msg(Channel.WEB, body=ROAD, nik=NIK_A, title="Jalan"), PARSER)
    assert first.tracking_id is not None
    shown = await queries.public_request(gw.engine, first.tracking_id)
    assert shown is not None and shown.title == "Jalan"
    asked = await gw.intake.accept(
        msg(Channel.SMS, 60, body=ROAD_SMS, nik=NIK_A, confidential=True), PARSER
    )
    assert asked.complaint_id == first.complaint_id
    async with gw.engine.connect() as conn:
        row = (
            await conn.execute(
                select(complaints.c.anonymous, complaints.c.confidential).where(
                    complaints.c.id == first.complaint_id
                )
            )
        ).one()
    assert (row.anonymous, row.confidential) == (False, True)
    hidden = await queries.public_request(gw.engine, first.tracking_id)
    assert hidden is not None and hidden.title is None
    third = await gw.intake.accept(msg(Channel.EMAIL, 90, body=ROAD, nik=NIK_A), PARSER)
    # In one group commit: an anonymous ask, then a message that asks nothing.
    fourth, fifth = await asyncio.gather(
        gw.intake.accept(msg(Channel.WEB, 100, body=ROAD, nik=NIK_A, anonymous=True), PARSER),
        gw.intake.accept(msg(Channel.WEB, 101, body=ROAD_SMS, nik=NIK_A), PARSER),
    )
    assert {third.complaint_id, fourth.complaint_id, fifth.complaint_id} == {first.complaint_id}
    events = [json.loads(e) for e in await opened_events(gw.engine, gw.keys)]
    flags = [
        (e["received_at"], e["privacy"]["anonymous"], e["privacy"]["confidential"])
        for e in events
    ]
    assert [f[1:] for f in sorted(flags)] == [
        (False, False), (False, True), (False, True), (True, True), (True, True)
    ]


async def test_the_same_text_sent_again_with_rahasia_is_not_a_retry(gw: bootstrap.Gateway) -> None:
    # A provider's retry repeats the message as it was; the same text again from the citizen,
    # now asking for confidentiality, is the citizen's word: an event carries it.
    first = await gw.intake.accept(msg(Channel.SMS, 0, body=WATER, phone="+6281299990001"), PARSER)
    again = await gw.intake.accept(
        msg(Channel.SMS, 2, body=WATER, phone="081299990001", confidential=True), PARSER
    )
    assert not again.redelivered and again.status is ReceiptStatus.DUPLICATE
    assert again.duplicate_of == first.tracking_id
    events = [json.loads(e) for e in await opened_events(gw.engine, gw.keys)]
    assert sorted(e["privacy"]["confidential"] for e in events) == [False, True]
    # Sent a third time as the second was (a provider's retry): the second's receipt, no event.
    third = await gw.intake.accept(
        msg(Channel.SMS, 3, body=WATER, phone="081299990001", confidential=True), PARSER
    )
    assert third.redelivered and await _count(gw, outbox) == 2


async def test_a_complaint_made_confidential_later_has_its_title_and_place_sealed(
    gw: bootstrap.Gateway,
) -> None:
    # Title and place stay in the clear only while a complaint is not confidential (the public
    # pages show them). Made confidential by a later message, in a later group commit or in the
    # same one, they are sealed as a complaint confidential from the start has them, and
    # `keys reseal` still reads every row.
    from gateway import sealing
    from gateway.reseal import reseal

    place = {"text": "Jl. Siliwangi", "latitude": -6.7, "longitude": 108.5}

    def draft(raw: RawInbound) -> ComplaintDraft:
        from dataclasses import replace

        from gateway.domain import Location

        return replace(_parse(raw), location=Location(**place))

    located = Parser("test.located", draft)
    first = await gw.intake.accept(
        msg(Channel.WEB, body=ROAD, nik=NIK_A, title="Jalan Siliwangi rusak"), located
    )
    await gw.intake.accept(msg(Channel.SMS, 60, body=ROAD_SMS, nik=NIK_A, confidential=True),
                           PARSER)
    together, _ = await asyncio.gather(
        gw.intake.accept(msg(Channel.WEB, 100, body=WATER, nik=NIK_B, title="Air mati"), located),
        gw.intake.accept(msg(Channel.SMS, 101, body=WATER, nik=NIK_B, confidential=True), PARSER),
    )
    for receipt, title in ((first, "Jalan Siliwangi rusak"), (together, "Air mati")):
        async with gw.engine.connect() as conn:
            row = (
                await conn.execute(select(complaints).where(complaints.c.id == receipt.complaint_id))
            ).one()
        assert row.confidential and row.sealed
        assert row.title != title and "Siliwangi" not in json.dumps(row.location)
        opened = sealing.open_complaint(gw.keys, row.id, "title", row.title, True, True)
        assert opened == title
        where = sealing.open_complaint(gw.keys, row.id, "location", row.location, True, True)
        assert {k: where[k] for k in place} == place
    await reseal(gw.engine, gw.keys, gw.files)  # reads every row: nothing left in the clear


async def _events(gw: bootstrap.Gateway) -> list[str]:
    return sorted(json.loads(e)["event"] for e in await opened_events(gw.engine, gw.keys))


async def test_a_providers_retry_of_a_duplicate_gets_its_receipt_and_no_event(
    gw: bootstrap.Gateway,
) -> None:
    # Siti's second SMS about the road joins her first complaint (tier 3). Kannel sends it again
    # under a new message id: it is that SMS again, not new evidence, whatever the first
    # complaint's words were. The same receipt, no second `duplicate` event.
    phone = "+6281234567890"
    first = await gw.intake.accept(msg(Channel.SMS, 0, body=ROAD, phone=phone), PARSER)
    dup = await gw.intake.accept(msg(Channel.SMS, 60, body=ROAD_SMS, phone=phone), PARSER)
    assert dup.status is ReceiptStatus.DUPLICATE and dup.duplicate_of == first.tracking_id
    again = await gw.intake.accept(msg(Channel.SMS, 62, body=ROAD_SMS, phone="081234567890"), PARSER)
    assert again.redelivered and again.status is ReceiptStatus.DUPLICATE
    assert again.tracking_id == again.duplicate_of == first.tracking_id
    assert again.complaint_id == first.complaint_id
    assert await _events(gw) == ["created", "duplicate"]
    # Past the retry window the same words are the citizen's again: new evidence.
    later = await gw.intake.accept(msg(Channel.SMS, 75, body=ROAD_SMS, phone=phone), PARSER)
    assert later.status is ReceiptStatus.DUPLICATE and not later.redelivered
    assert await _events(gw) == ["created", "duplicate", "duplicate"]
    async with gw.engine.connect() as conn:
        tiers = (
            await conn.execute(select(dedup_decisions.c.tier).order_by(dedup_decisions.c.id))
        ).scalars().all()
    assert tiers == ["new", "similar", "retry", "similar"]


async def test_a_retry_of_a_duplicate_told_its_own_id_is_told_that_id_again(
    gw: bootstrap.Gateway,
) -> None:
    # An SMS from a number Siti's web form did not give, with her NIK, joins her complaint and is
    # told an ID of its own; the provider's retry of it is told that ID, not a third one and
    # never the complaint's, and makes no event. A web form sent twice makes no event either,
    # but its NIK is typed: the second is not told the first's ID (which shows what the first
    # wrote), any more than a complaint's.
    first = await gw.intake.accept(msg(Channel.WEB, 0, body=ROAD, nik=NIK_A), PARSER)
    by_sms = await gw.intake.accept(
        msg(Channel.SMS, 60, body=ROAD_SMS, nik=NIK_A, phone="+6285700001111"), PARSER
    )
    assert by_sms.status is ReceiptStatus.ACCEPTED and by_sms.complaint_id == first.complaint_id
    assert by_sms.tracking_id not in (None, first.tracking_id)
    again = await gw.intake.accept(
        msg(Channel.SMS, 61, body=ROAD_SMS, nik=NIK_A, phone="+6285700001111"), PARSER
    )
    assert (again.status, again.tracking_id, again.complaint_id, again.duplicate_of) == (
        ReceiptStatus.ACCEPTED, by_sms.tracking_id, first.complaint_id, None
    )
    by_form = await gw.intake.accept(msg(Channel.WEB, 70, body=ROAD_SMS + " Tolong.", nik=NIK_A), PARSER)
    form_again = await gw.intake.accept(
        msg(Channel.WEB, 72, body=ROAD_SMS + " Tolong.", nik=NIK_A), PARSER
    )
    assert by_form.tracking_id not in (None, first.tracking_id, by_sms.tracking_id)
    assert form_again.tracking_id not in (None, first.tracking_id, by_form.tracking_id)
    assert form_again.complaint_id == first.complaint_id
    assert form_again.status is ReceiptStatus.ACCEPTED and form_again.duplicate_of is None
    assert await _events(gw) == ["created", "duplicate", "duplicate"]
    # Someone typing the number of an SMS that was told the complaint's ID, with its words, on
    # the web form: not that number's transport, so not told the complaint's ID.
    phone = "+6281299990007"
    mine = await gw.intake.accept(msg(Channel.WEB, 100, body=WATER, phone=phone), PARSER)
    texted = await gw.intake.accept(msg(Channel.SMS, 160, body=WATER + " Tolong", phone=phone), PARSER)
    assert texted.status is ReceiptStatus.DUPLICATE and texted.duplicate_of == mine.tracking_id
    typed = await gw.intake.accept(
        msg(Channel.WEB, 161, body=WATER + " Tolong", phone=phone), PARSER
    )
    assert typed.tracking_id not in (None, mine.tracking_id) and typed.duplicate_of is None
    assert typed.complaint_id == mine.complaint_id


async def test_a_retry_of_a_duplicate_in_the_same_group_commit_makes_no_event(
    gw: bootstrap.Gateway,
) -> None:
    # The duplicate and the provider's retry of it arrive together: one group commit decides the
    # second against the first as the batch placed it.
    phone = "+6281234567890"
    first = await gw.intake.accept(msg(Channel.WEB, 0, body=ROAD, nik=NIK_A, phone=phone), PARSER)
    dup, again = await asyncio.gather(
        gw.intake.accept(msg(Channel.SMS, 60, body=ROAD_SMS, phone=phone), PARSER),
        gw.intake.accept(msg(Channel.SMS, 60.5, body=ROAD_SMS, phone=phone), PARSER),
    )
    assert dup.status is ReceiptStatus.DUPLICATE and dup.duplicate_of == first.tracking_id
    assert again.redelivered and again.tracking_id == first.tracking_id
    # The same with a duplicate told an ID of its own (a number the complaint did not come from).
    other = "+6285700001111"
    own, own_again = await asyncio.gather(
        gw.intake.accept(msg(Channel.SMS, 90, body=ROAD_SMS + " lagi", nik=NIK_A, phone=other),
                         PARSER),
        gw.intake.accept(msg(Channel.SMS, 90.5, body=ROAD_SMS + " lagi", nik=NIK_A, phone=other),
                         PARSER),
    )
    assert own.tracking_id not in (None, first.tracking_id) and own.duplicate_of is None
    assert own_again.tracking_id == own.tracking_id and own_again.duplicate_of is None
    assert own.complaint_id == own_again.complaint_id == first.complaint_id
    assert await _events(gw) == ["created", "duplicate", "duplicate"]
    async with gw.engine.connect() as conn:
        decided = (
            await conn.execute(
                select(dedup_decisions.c.tier, dedup_decisions.c.created_at)
                .where(dedup_decisions.c.tier != "new")
                .order_by(dedup_decisions.c.id)
            )
        ).all()
    assert [d.tier for d in decided] == ["similar", "retry", "similar", "retry"]
    assert decided[0].created_at == decided[1].created_at  # one group commit indeed
    assert decided[2].created_at == decided[3].created_at


async def test_the_same_matter_after_its_complaint_was_closed_is_a_new_complaint(
    gw: bootstrap.Gateway,
) -> None:
    # The routing core resolved the complaint; the citizen texts the same matter again a day
    # later: the road is broken again. That is a new complaint for someone to handle, not
    # evidence for one closed (which showed "selesai" to its ID, or "received" for ever to an
    # own ID). A provider's retry of the first message is still that message.
    first = await gw.intake.accept(
        msg(Channel.SMS, 0, body=ROAD, nik=NIK_A, phone="+6281234567890"), PARSER
    )
    retried_raw = msg(Channel.SMS, 5, body=ROAD, nik=NIK_A, phone="+6281234567890")
    async with gw.engine.begin() as conn:
        await conn.execute(
            complaints.update()
            .where(complaints.c.id == first.complaint_id)
            .values(status="resolved", status_changed_at=T0 + timedelta(minutes=1))
        )
    retried = await gw.intake.accept(retried_raw, PARSER)
    assert retried.redelivered and retried.tracking_id == first.tracking_id
    again = await gw.intake.accept(
        msg(Channel.SMS, 24 * 60, body=ROAD_SMS, phone="+6281234567890"), PARSER
    )
    assert again.status is ReceiptStatus.ACCEPTED and again.complaint_id != first.complaint_id
    assert again.duplicate_of is None and await _count(gw, complaints) == 2
    # Its event names the closed one for the routing core, which decides whether to open it
    # again; the citizen was told the new ID only.
    created = {
        body["tracking_id"]: body
        for body in map(json.loads, await opened_events(gw.engine, gw.keys))
        if body["event"] == "created"
    }
    assert created[again.tracking_id]["source"]["repeats_tracking_id"] == first.tracking_id
    assert "repeats_tracking_id" not in created[first.tracking_id]["source"]
    for body in created.values():
        validate_event(body)
    # Open again (the routing core reopened it): joined as before.
    async with gw.engine.begin() as conn:
        await conn.execute(
            complaints.update()
            .where(complaints.c.id == first.complaint_id)
            .values(status="in_progress", status_changed_at=T0 + timedelta(hours=30))
        )
    later = await gw.intake.accept(
        msg(Channel.SMS, 31 * 60, body=ROAD_SMS + " tolong", phone="+6281234567890"), PARSER
    )
    assert later.status is ReceiptStatus.DUPLICATE
    assert later.duplicate_of in (first.tracking_id, again.tracking_id)
