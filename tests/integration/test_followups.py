"""An SMS naming its complaint's tracking ID with news is added to that complaint.

"Laporan <ID> lubangnya makin besar, kemarin 2 motor jatuh" (the hole got bigger, two
motorbikes fell yesterday) from a number that holds the ID becomes a ``followup`` event of the
complaint, answered under that ID; from any other number it is a complaint like any other, and
the answer does not tell whether the ID exists. Through the real Kannel route, the intake port
and the reply outbox, on both databases; the status SMS through the real RabbitMQ.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select, text, update

from channels.sms.message import Bridge
from channels.sms.routes import _KANNEL_META, _form_meta, _raw
from gateway import bootstrap, tracking
from gateway.domain import Channel
from gateway.settings import Settings
from gateway.storage.schema import complaints, dedup_decisions, raw_inbound, sms_replies
from tests.integration.test_identity_dedup import NIK_A, NIK_B, PARSER, ROAD, ROAD_SMS, WATER, msg
from tests.integration.test_status_feed import Client, publish, status, texting
from tests.support import kannel_mo, opened_events, validate_event, wait_until

pytestmark = pytest.mark.integration

SITI = "+6281234567890"
NEWS = "lubangnya makin besar, kemarin 2 motor jatuh"
RECEIPT = re.compile(r"No\. lacak: (\w{4})-(\w{5})\.")


class Sms:
    """A gateway's HTTP app, texted through its Kannel route (replies in the HTTP answer)."""

    def __init__(self, gateway: bootstrap.Gateway, client: TestClient[Any, Any]) -> None:
        self.gateway = gateway
        self.client = client

    async def text(self, body: str, sender: str = SITI, message_id: str | None = None) -> str:
        params = kannel_mo(body, sender)
        if message_id is not None:
            params["I"] = message_id
        resp = await self.client.get("/sms/kannel", params=params)
        assert resp.status == 200, await resp.text()
        return await resp.text()

    async def at_once(self, *texts: tuple[str, str]) -> list[str]:
        """Several MOs (text, sender) handed to the SMS service together, as concurrent
        requests are: they go through the intake in one group commit."""
        assert self.gateway.sms is not None
        service = self.gateway.sms.service
        raws = []
        for body, sender in texts:
            query = urlencode(kannel_mo(body, sender)).encode()
            raws.append(_raw(query, _form_meta(query, _KANNEL_META), kannel_mo("x")["I"]))
        answers = await asyncio.gather(
            *(service.receive(raw, Bridge.KANNEL, inline=True) for raw in raws)
        )
        return [a.text for a in answers]

    async def events(self) -> list[dict[str, Any]]:
        bodies = [json.loads(e) for e in await opened_events(self.gateway.engine, self.gateway.keys)]
        for body in bodies:
            validate_event(body)
        return bodies

    async def complaint(self, tid: str) -> Any:
        async with self.gateway.engine.connect() as conn:
            return (
                await conn.execute(select(complaints).where(complaints.c.tracking_id == tid))
            ).one()

    async def count(self) -> int:
        async with self.gateway.engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(complaints))).scalar_one())


def receipt_id(reply: str) -> str:
    found = RECEIPT.search(reply)
    assert found is not None, reply
    return found[1] + found[2]


@pytest.fixture
async def sms(settings: Settings, aiohttp_client: Client) -> AsyncIterator[Sms]:
    gateway = bootstrap.build(settings)
    try:
        yield Sms(gateway, await aiohttp_client(bootstrap.build_app(gateway)))
    finally:
        await gateway.close()


async def test_news_naming_the_id_from_the_same_phone_is_a_followup_of_that_complaint(
    sms: Sms,
) -> None:
    first = await sms.text("Jalan Siliwangi depan pasar berlubang besar")
    tid = receipt_id(first)
    shown = tracking.display(tid)
    reply = await sms.text(f"Laporan {shown} {NEWS}")
    assert reply == (
        f"LAPOR! Tambahan info untuk laporan {shown} diterima. "
        f"Cek status: kirim CEK {tid} ke 1708."
    )
    assert await sms.count() == 1
    created, followup = await sms.events()
    assert created["event"] == "created"
    assert followup["event"] == "followup"
    assert (followup["complaint_id"], followup["tracking_id"]) == (
        created["complaint_id"],
        tid,
    )
    assert followup["duplicate_of"] is None
    assert followup["body"] == f"Laporan {shown} {NEWS}"
    assert followup["reporter"]["phone"] == SITI
    assert "given_tracking_id" not in followup["source"]
    # Stored as such: the raw message under the complaint, and the decision the operator reads.
    async with sms.gateway.engine.connect() as conn:
        row = (
            await conn.execute(
                select(raw_inbound.c.status, raw_inbound.c.tracking_id, raw_inbound.c.complaint_id)
                .where(raw_inbound.c.id == followup["source"]["raw_inbound_id"])
            )
        ).one()
        tiers = list(
            (await conn.execute(select(dedup_decisions.c.tier).order_by(dedup_decisions.c.id)))
            .scalars()
        )
    assert tuple(row) == ("followup", tid, created["complaint_id"])
    assert tiers == ["new", "followup"]
    history = await sms.gateway.intake.dedup_history(tid)
    assert [h["tier"] for h in history] == ["new", "followup"]
    scraped = sms.gateway.metrics.followups.labels("sms")._value.get()
    assert scraped == 1


async def test_the_same_followup_delivered_again_is_answered_again_and_published_once(
    sms: Sms,
) -> None:
    tid = receipt_id(await sms.text("Lampu jalan di gang mawar mati sejak minggu lalu"))
    text = f"Laporan {tid} sekarang 3 tiang mati, tadi malam gelap total"
    once = await sms.text(text, message_id="mo-followup-1")
    again = await sms.text(text, message_id="mo-followup-1")  # smsbox's retry: the same %I
    assert once == again and once.startswith("LAPOR! Tambahan info untuk laporan")
    # The phone sends it again under another id (a modem's resend): tier 2, no second event.
    resent = await sms.text(text, message_id="mo-followup-2")
    assert tid.replace("-", "") in resent.replace("-", "")
    assert [e["event"] for e in await sms.events()] == ["created", "followup"]


async def test_another_phone_quoting_the_id_gets_an_id_of_its_own_and_no_followup(
    sms: Sms,
) -> None:
    tid = receipt_id(await sms.text("Jalan Siliwangi depan pasar berlubang besar"))
    other = await sms.text(f"Laporan {tid} {NEWS}", sender="+6285700001111")
    assert other.startswith("LAPOR! Laporan diterima"), other
    assert receipt_id(other) != tid
    # The same for an ID that passes the check symbol but names nothing: filed, no hint.
    unknown = tracking.new_tracking_id()
    while unknown == tid:
        unknown = tracking.new_tracking_id()
    stray = await sms.text(f"Laporan {unknown} {NEWS}")
    assert stray.startswith("LAPOR! Laporan diterima"), stray
    assert [e["event"] for e in await sms.events()] == ["created", "created", "created"]


async def test_a_phone_given_on_the_web_form_holds_the_complaints_id(sms: Sms) -> None:
    form = await sms.gateway.intake.accept(
        msg(Channel.WEB, 0, body=ROAD, title="Jalan Siliwangi", nik=NIK_A, phone="0812-3456-7890"),
        PARSER,
    )
    assert form.tracking_id is not None
    reply = await sms.text(f"Laporan {form.tracking_id} {NEWS}")
    assert reply.startswith(
        f"LAPOR! Tambahan info untuk laporan {tracking.display(form.tracking_id)}"
    ), reply
    followup = (await sms.events())[-1]
    assert (followup["event"], followup["tracking_id"]) == ("followup", form.tracking_id)
    assert followup["channel"] == "sms"


async def test_a_phone_told_an_id_of_its_own_adds_to_the_complaint_under_that_id(
    sms: Sms,
) -> None:
    # Siti's complaint on the form; someone who knows her NIK texts the same matter from their
    # phone and is told an ID of their own, X. Naming X with news, that phone adds to the
    # complaint; the event names X as the ID its sender holds, the answer names X only.
    first = await sms.gateway.intake.accept(
        msg(Channel.WEB, 0, body=ROAD, nik=NIK_A), PARSER
    )
    assert first.tracking_id is not None
    stranger = "+6285700002222"
    joined = await sms.gateway.intake.accept(
        msg(Channel.SMS, 61, body=ROAD_SMS, nik=NIK_A, phone=stranger), PARSER
    )
    own = joined.tracking_id
    assert own is not None and own != first.tracking_id
    assert joined.complaint_id == first.complaint_id
    reply = await sms.text(f"Laporan {own} {NEWS}", sender=stranger)
    assert reply.startswith(f"LAPOR! Tambahan info untuk laporan {tracking.display(own)}")
    assert first.tracking_id not in reply.replace("-", "")
    followup = (await sms.events())[-1]
    assert followup["event"] == "followup"
    assert (followup["complaint_id"], followup["tracking_id"]) == (
        first.complaint_id,
        first.tracking_id,
    )
    assert followup["source"]["given_tracking_id"] == own
    # The complaint's own ID, which that phone was never told, is no follow-up from it.
    guessed = await sms.text(f"Laporan {first.tracking_id} {NEWS} lagi", sender=stranger)
    assert not guessed.startswith("LAPOR! Tambahan info"), guessed


async def test_a_confidential_followup_makes_the_complaint_confidential(sms: Sms) -> None:
    tid = receipt_id(await sms.text("Pungutan liar di kantor kelurahan untuk surat domisili"))
    assert not (await sms.complaint(tid)).confidential
    reply = await sms.text(f"RAHASIA Laporan {tid} petugasnya minta 200 ribu lagi kemarin")
    assert reply.startswith("LAPOR! Tambahan info")
    assert (await sms.complaint(tid)).confidential
    followup = (await sms.events())[-1]
    assert followup["privacy"] == {"anonymous": False, "confidential": True}
    # A later follow-up that does not ask it still carries it: never lifted.
    await sms.text(f"Laporan {tid} hari ini kantor tutup, tidak ada petugas sama sekali")
    assert (await sms.events())[-1]["privacy"]["confidential"] is True


async def test_a_closed_complaint_takes_followups(sms: Sms) -> None:
    tid = receipt_id(await sms.text("Jalan Siliwangi depan pasar berlubang besar"))
    async with sms.gateway.engine.begin() as conn:
        await conn.execute(
            update(complaints)
            .where(complaints.c.tracking_id == tid)
            .values(status="closed", status_changed_at=datetime.now(UTC))
        )
    reply = await sms.text(f"Laporan {tid} ditutup sepihak padahal {NEWS}")
    assert reply.startswith("LAPOR! Tambahan info"), reply
    assert [e["event"] for e in await sms.events()] == ["created", "followup"]


async def test_the_number_of_a_followup_is_told_of_the_complaints_changes(
    settings: Settings, aiohttp_client: Client
) -> None:
    # A complaint from the web form that gave Siti's phone: no SMS receipt, so the phone is
    # not told of changes; once it sent a follow-up, it is.
    async with texting(settings, aiohttp_client) as (feed, sent):
        form = await feed.gateway.intake.accept(
            msg(Channel.WEB, 0, body=ROAD, title="Jalan Siliwangi", phone="0812-3456-7890"),
            PARSER,
        )
        tid, cid = form.tracking_id, form.complaint_id
        assert tid is not None and cid is not None
        resp = await feed.client.get("/sms/kannel", params=kannel_mo(f"Laporan {tid} {NEWS}", SITI))
        assert resp.status == 200
        await wait_until(lambda: len(sent) == 1, "the follow-up's answer sent")
        assert sent[0][0] == SITI and sent[0][1].startswith("LAPOR! Tambahan info")
        now = datetime.now(UTC).isoformat()
        await publish(feed.settings, status(cid, tid, "forwarded", now), "followup-1")
        await wait_until(lambda: len(sent) == 2, "the change told")
        assert sent[1][0] == SITI
        assert f"Laporan {tracking.display(tid)} kini berstatus DITERUSKAN" in sent[1][1]
        async with feed.gateway.engine.connect() as conn:
            kinds = list(
                (await conn.execute(select(sms_replies.c.kind).order_by(sms_replies.c.id)))
                .scalars()
            )
        assert kinds == ["followup", "status-change"]


async def test_two_followups_in_one_group_commit_keep_the_confidentiality_the_first_asked(
    sms: Sms,
) -> None:
    """Siti texts "RAHASIA Laporan <ID> ..." and, a second later, more news without the
    keyword; both are written in one group commit. The complaint is confidential from the first
    of them on, so the second follow-up's event says ``confidential: true`` too, as when the two
    come in separate commits (a later message never lifts what an earlier one asked)."""
    tid = receipt_id(await sms.text("Pungutan liar di kantor kelurahan untuk surat domisili"))
    answers = await sms.at_once(
        (f"RAHASIA Laporan {tid} petugasnya minta 200 ribu lagi kemarin", SITI),
        (f"Laporan {tid} hari ini kantor tutup, tidak ada petugas sama sekali", SITI),
    )
    assert all(a.startswith("LAPOR! Tambahan info") for a in answers), answers
    assert (await sms.complaint(tid)).confidential
    followups = [e for e in await sms.events() if e["event"] == "followup"]
    assert len(followups) == 2
    assert [f["privacy"]["confidential"] for f in followups] == [True, True]


async def test_a_followup_after_a_confidential_duplicate_in_the_same_commit_stays_confidential(
    sms: Sms,
) -> None:
    """Siti sends her complaint again with RAHASIA (a duplicate, which makes the complaint
    confidential) and, in the same group commit, a follow-up naming its ID: the follow-up's
    event is confidential as well, the flags the duplicate of the same batch raised included."""
    road = "Jalan Siliwangi depan pasar berlubang besar sudah dua bulan, motor sering jatuh"
    tid = receipt_id(await sms.text(road))
    answers = await sms.at_once(
        (f"RAHASIA {road}", SITI),
        (f"Laporan {tid} sekarang lubangnya makin besar, kemarin 2 motor jatuh", SITI),
    )
    assert answers[1].startswith("LAPOR! Tambahan info"), answers
    events = await sms.events()
    assert [e["event"] for e in events] == ["created", "duplicate", "followup"]
    assert events[1]["privacy"]["confidential"] is True
    assert (await sms.complaint(tid)).confidential
    assert events[2]["privacy"]["confidential"] is True


async def test_a_resent_followup_from_a_phone_of_another_person_is_not_published_twice(
    sms: Sms,
) -> None:
    """Siti's phone is linked to her own NIK. Her husband files a complaint on the web form with
    his NIK and gives her number, which so holds that complaint's ID though the identity graph
    keeps it with Siti. Her follow-up naming that ID, sent again by her modem under another
    message id, is answered as a retry: the routing core gets the news once."""
    first = await sms.gateway.intake.accept(
        msg(Channel.SMS, 0, body="Lampu jalan di gang mawar mati sejak minggu lalu",
            nik=NIK_A, phone=SITI),
        PARSER,
    )
    assert first.tracking_id is not None
    form = await sms.gateway.intake.accept(
        msg(Channel.WEB, 5, body=WATER, title="Air PDAM mati", nik=NIK_B, phone="0812-3456-7890"),
        PARSER,
    )
    assert form.tracking_id is not None and form.complaint_id != first.complaint_id
    text = f"Laporan {form.tracking_id} sekarang air masih mati, kemarin warga beli air galon"
    once = await sms.text(text, message_id="mo-family-1")
    assert once.startswith("LAPOR! Tambahan info"), once
    await sms.text(text, message_id="mo-family-2")  # the modem's resend
    followups = [e for e in await sms.events() if e["event"] == "followup"]
    assert len(followups) == 1, [f["source"]["provider_message_id"] for f in followups]


async def test_a_resent_followup_is_answered_as_the_followup_was(sms: Sms) -> None:
    """A follow-up sent twice under two message ids is answered the same both times ("Tambahan
    info untuk laporan ... diterima"), not as a new report the second time."""
    tid = receipt_id(await sms.text("Lampu jalan di gang mawar mati sejak minggu lalu"))
    text = f"Laporan {tid} sekarang 3 tiang mati, tadi malam gelap total"
    once = await sms.text(text, message_id="mo-resend-1")
    again = await sms.text(text, message_id="mo-resend-2")
    assert once.startswith("LAPOR! Tambahan info"), once
    assert again == once


async def test_a_phone_given_on_a_form_sent_twice_holds_the_id_the_second_form_was_shown(
    sms: Sms,
) -> None:
    """Siti fills the web form twice with the same words and her number. The second is a retry
    of the first (dedup tier 2) and, the form vouching for nobody, is shown an ID of its own, Y,
    which follows her complaint. Her number, given in that message, holds Y: news naming Y is a
    follow-up."""
    first = await sms.gateway.intake.accept(
        msg(Channel.WEB, 0, body=ROAD, nik=NIK_A, phone="0812-3456-7890"), PARSER
    )
    again = await sms.gateway.intake.accept(
        msg(Channel.WEB, 1, body=ROAD, nik=NIK_A, phone="0812-3456-7890"), PARSER
    )
    held = again.tracking_id
    assert held is not None and held != first.tracking_id
    assert again.complaint_id == first.complaint_id
    assert await sms.gateway.intake.status(held) is not None
    reply = await sms.text(f"Laporan {held} {NEWS}")
    assert reply.startswith(
        f"LAPOR! Tambahan info untuk laporan {tracking.display(held)}"
    ), reply


async def test_a_followup_with_a_mistyped_nik_is_told_the_nik_was_not_kept(sms: Sms) -> None:
    """A follow-up with a mistyped labelled NIK is told "NIK tidak sah, tidak disimpan.", as a
    complaint is, so Siti knows to send it again."""
    tid = receipt_id(await sms.text("Jalan Siliwangi depan pasar berlubang besar"))
    reply = await sms.text(f"NIK 320901410190000 laporan {tid} sekarang makin parah, {NEWS}")
    assert reply.startswith("LAPOR! Tambahan info"), reply
    assert "NIK tidak sah" in reply


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # SQLite: one writer
async def test_a_followup_while_another_transaction_makes_the_complaint_confidential(
    sms: Sms,
) -> None:
    """A follow-up from a number of another person than the complaint's (so no person's lock
    covers both) arrives while another transaction is making the complaint confidential. The
    follow-up waits for it and its event carries the flag: the flags are read again under the
    row's lock before the event is written, never kept from before a commit in flight."""
    form = await sms.gateway.intake.accept(
        msg(Channel.WEB, 0, body=WATER, title="Air PDAM mati", nik=NIK_B, phone="0812-3456-7890"),
        PARSER,
    )
    assert form.complaint_id is not None and form.tracking_id is not None
    # Siti's number is linked to her own NIK: another person than the form's.
    await sms.gateway.intake.accept(
        msg(Channel.SMS, 1, body=ROAD_SMS, nik=NIK_A, phone=SITI), PARSER
    )
    engine = sms.gateway.engine
    async with engine.connect() as holder:
        # As the intake raises a complaint's flags: the row locked, then written.
        mine = complaints.c.id == form.complaint_id
        await holder.execute(select(complaints.c.id).where(mine).with_for_update())
        await holder.execute(update(complaints).where(mine).values(confidential=True))
        sent = asyncio.create_task(sms.text(f"Laporan {form.tracking_id} {NEWS}"))

        async def waiting_or_done() -> bool:
            if sent.done():
                return True
            async with engine.connect() as conn:
                found = await conn.scalar(
                    select(func.count())
                    .select_from(text("pg_stat_activity"))
                    .where(text("wait_event_type = 'Lock' AND datname = current_database()"))
                )
            return int(found or 0) >= 1

        await wait_until(waiting_or_done, "the follow-up waiting for the complaint's row")
        await holder.commit()
    reply = await sent
    assert reply.startswith("LAPOR! Tambahan info"), reply
    followup = (await sms.events())[-1]
    assert followup["event"] == "followup"
    assert followup["privacy"]["confidential"] is True
