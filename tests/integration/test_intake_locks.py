"""The intake's complaint row locks under concurrency (PostgreSQL only: SQLite has one
writer): the privacy a follow-up of another person gives a complaint reaches a duplicate
written at the same time; two batches each naming the complaint the other joins take turns
without a deadlock; follow-ups, duplicates and status changes on two replicas at once lose
nothing and publish nothing twice.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, select

from gateway import bootstrap, intake, status_feed
from gateway.domain import Channel, RawInbound
from gateway.settings import Settings
from gateway.sms_store import STATUS_CHANGE_KIND, StatusPush
from gateway.storage.schema import complaints, sms_replies
from tests.integration.test_followups import NEWS, Sms
from tests.integration.test_identity_dedup import NIK_A, NIK_B, PARSER, ROAD, ROAD_SMS, WATER
from tests.integration.test_status_feed import Client
from tests.support import wait_until, with_section

pytestmark = pytest.mark.integration

WATI = "+6281355550000"  # given on the road complaint's web form
NIK_1 = "3209010202900003"  # owner of the road complaint (texts from PHONE_1)
NIK_2 = "3209010303900004"  # owner of the water complaint (texts from PHONE_2)
PHONE_1 = "+6285711110001"
PHONE_2 = "+6285711110002"
SITI = "+6281234567890"  # given on the husband's web form: holds its complaint's ID
BUDI = "+6285700003333"  # the husband's own phone, texting his NIK
WATER_SMS = (
    "NIK {nik} Air PDAM di Perumahan Griya Asri mati total sejak tiga hari, warga beli galon"
)


@pytest.fixture
async def sms(settings: Settings, aiohttp_client: Client) -> AsyncIterator[Sms]:
    gateway = bootstrap.build(settings)
    try:
        yield Sms(gateway, await aiohttp_client(bootstrap.build_app(gateway)))
    finally:
        await gateway.close()


def _raw(channel: Channel, seconds_ago: float, **fields: object) -> RawInbound:
    at = datetime.now(UTC) - timedelta(seconds=seconds_ago)
    return RawInbound(channel, json.dumps(fields).encode(), at, f"zz-{channel.value}-{seconds_ago}")


async def _lock_waits(sms: Sms) -> int:
    async with sms.gateway.engine.connect() as conn:
        found = await conn.exec_driver_sql(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
        return int(found.scalar_one())


async def _husbands_complaint(sms: Sms) -> tuple[str, str]:
    """Siti's phone linked to her own NIK (A) first; then Budi's complaint (NIK B) filed on the
    web form giving her phone, which stays Siti's person's but holds the form's ID. Returns
    (complaint id, tracking id) of Budi's complaint."""
    await sms.gateway.intake.accept(
        _raw(Channel.SMS, 120, body="Lampu jalan di gang mawar mati", nik=NIK_A, phone=SITI),
        PARSER,
    )
    form = await sms.gateway.intake.accept(
        _raw(Channel.WEB, 60, body=WATER, title="Air PDAM mati", nik=NIK_B, phone="0812-3456-7890"),
        PARSER,
    )
    assert form.complaint_id is not None and form.tracking_id is not None
    return form.complaint_id, form.tracking_id


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # SQLite: one writer
@pytest.mark.parametrize(("word", "flag"), [("RAHASIA", "confidential"), ("ANONIM", "anonymous")])
async def test_a_duplicate_while_a_followup_raises_the_complaints_privacy_carries_it(
    sms: Sms, word: str, flag: str
) -> None:
    """Siti (her own person, NIK A) holds the ID of her husband Budi's complaint (his web form
    gave her phone). She texts "RAHASIA Laporan <ID> ..." (or "ANONIM ..."), making the
    complaint confidential (anonymous), while Budi texts his complaint again from his phone
    with his NIK, a duplicate of it. The duplicate waits for the complaint's row and its event
    carries the flag the follow-up gave: the flags are read again under the lock."""
    complaint_id, tid = await _husbands_complaint(sms)
    outbox = sms.gateway.sms.outbox if sms.gateway.sms else None
    assert outbox is not None
    write, gate, paused = outbox.write_batch, asyncio.Event(), asyncio.Event()
    calls = 0

    async def held_open(conn: Any, batch: list[Any]) -> Any:
        nonlocal calls
        calls += 1
        written = await write(conn, batch)
        if calls == 1:  # the follow-up's transaction, once its flags and reply are written
            paused.set()
            await gate.wait()
        return written

    outbox.write_batch = held_open  # type: ignore[method-assign]
    following = asyncio.create_task(sms.text(f"{word} Laporan {tid} {NEWS}", SITI))
    await wait_until(paused.is_set, "the follow-up written, not committed")
    duplicating = asyncio.create_task(sms.text(WATER_SMS.format(nik=NIK_B), BUDI))

    async def waiting_or_done() -> bool:
        return duplicating.done() or await _lock_waits(sms) >= 1

    await wait_until(waiting_or_done, "the duplicate waiting for the complaint's row")
    # It waits for the follow-up's transaction (the complaint's row): it commits after it.
    assert not duplicating.done()
    gate.set()
    followed = await asyncio.wait_for(following, 10)
    await asyncio.wait_for(duplicating, 10)
    assert followed.startswith("LAPOR! Tambahan info"), followed

    async with sms.gateway.engine.connect() as conn:
        row = (await conn.execute(select(complaints).where(complaints.c.id == complaint_id))).one()
    assert getattr(row, flag)
    events = [e for e in await sms.events() if e["complaint_id"] == complaint_id]
    kinds = [e["event"] for e in events]
    assert kinds == ["created", "followup", "duplicate"], kinds
    followup, duplicate = events[1], events[2]
    assert followup["privacy"][flag] is True
    assert duplicate["complaint_id"] == complaint_id
    assert duplicate["privacy"][flag] is True, duplicate["privacy"]


@pytest.fixture
async def replicas(settings: Settings, aiohttp_client: Client) -> AsyncIterator[list[Sms]]:
    """Two gateways (two intake replicas) on one database; no flood control on replies."""
    s = with_section(settings, "sms", flood_max_replies=100)
    built = [bootstrap.build(s), bootstrap.build(s)]
    try:
        yield [Sms(g, await aiohttp_client(bootstrap.build_app(g))) for g in built]
    finally:
        for g in built:
            await g.close()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # SQLite: one writer
async def test_two_batches_each_naming_the_complaint_the_other_joins_do_not_deadlock(
    replicas: list[Sms],
) -> None:
    """Two replicas each write a group commit of two SMS at the same time: replica 1 a
    follow-up naming the water complaint and a duplicate of the road complaint, replica 2 a
    follow-up naming the road complaint and a duplicate of the water one; four persons, so no
    person lock orders them. The intake locks every complaint of a transaction in one
    statement, in id order: the two take turns, no deadlock, no batch written again message by
    message. (A gate holds each transaction just before its locks until both got there.)"""
    one, two = replicas
    accept = one.gateway.intake.accept
    await accept(_raw(Channel.SMS, 300, body="Lampu jalan mati", nik=NIK_A, phone=SITI), PARSER)
    await accept(_raw(Channel.SMS, 290, body="Sampah menumpuk", nik=NIK_B, phone=WATI), PARSER)
    road = await accept(
        _raw(Channel.WEB, 200, body=ROAD, title="Jalan", nik=NIK_1, phone=WATI), PARSER
    )
    water = await accept(
        _raw(Channel.WEB, 190, body=WATER, title="Air", nik=NIK_2, phone=SITI), PARSER
    )
    assert road.tracking_id and water.tracking_id and road.complaint_id != water.complaint_id

    errors: list[str] = []

    def seen(context: Any) -> None:
        code = getattr(getattr(context.original_exception, "__cause__", None), "sqlstate", None)
        errors.append(str(code or type(context.original_exception).__name__))

    for replica in replicas:
        event.listen(replica.gateway.engine.sync_engine, "handle_error", seen)

    join = intake._join_after_changes
    arrived = 0
    both = asyncio.Event()

    async def gated(*args: Any) -> None:
        nonlocal arrived
        arrived += 1
        if arrived <= 2:  # the two batches, each holding the complaint it names
            if arrived == 2:
                both.set()
            try:
                await asyncio.wait_for(both.wait(), 3)
            except TimeoutError:
                pass
        await join(*args)

    intake._join_after_changes = gated  # type: ignore[assignment]
    try:
        started = asyncio.get_running_loop().time()
        answers = await asyncio.wait_for(
            asyncio.gather(
                one.at_once(
                    (f"Laporan {water.tracking_id} {NEWS}", SITI),
                    (f"NIK {NIK_1} {ROAD_SMS}", PHONE_1),
                ),
                two.at_once(
                    (f"Laporan {road.tracking_id} {NEWS}", WATI),
                    (
                        f"NIK {NIK_2} air pdam griya asri mati total 3 hari, warga beli air galon",
                        PHONE_2,
                    ),
                ),
            ),
            15,
        )
        took = asyncio.get_running_loop().time() - started
    finally:
        intake._join_after_changes = join  # type: ignore[assignment]
    assert arrived >= 2
    (follow_water, dup_road), (follow_road, dup_water) = answers
    assert follow_water.startswith("LAPOR! Tambahan info"), follow_water
    assert follow_road.startswith("LAPOR! Tambahan info"), follow_road
    assert dup_road.startswith("LAPOR!") and dup_water.startswith("LAPOR!"), answers
    events = await one.events()
    followups = sorted(e["complaint_id"] for e in events if e["event"] == "followup")
    joined = sorted(e["complaint_id"] for e in events if e["event"] == "duplicate")
    assert followups == sorted([road.complaint_id, water.complaint_id]), events
    assert joined == sorted([road.complaint_id, water.complaint_id]), events
    assert errors == [], errors  # 40P01: deadlock detected
    assert took < 1.0, took


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # SQLite: one writer
async def test_followups_duplicates_and_status_changes_on_two_replicas_at_once(
    replicas: list[Sms],
) -> None:
    """Stress: two replicas each take a group commit of follow-ups naming the road complaint
    (from Wati, whose phone its form gave: another person than its owner's) and duplicates of
    it (from its owner's phone, with the owner's NIK), while the status feed applies four
    changes to it at the same time. Expected: every SMS answered (no error, no retry), each
    message published once (a follow-up event per follow-up, a duplicate event per duplicate),
    every change kept and the newest shown, no status SMS queued twice, all within 10 s."""
    one, two = replicas
    accept = one.gateway.intake.accept
    await accept(_raw(Channel.SMS, 290, body="Sampah menumpuk", nik=NIK_B, phone=WATI), PARSER)
    road = await accept(
        _raw(Channel.WEB, 200, body=ROAD, title="Jalan", nik=NIK_1, phone=WATI), PARSER
    )
    assert road.tracking_id and road.complaint_id
    # The owner's phone is known (else both replicas would create it at once: a unique
    # conflict, by design written again message by message).
    await accept(_raw(Channel.SMS, 100, body="Lampu jalan mati", nik=NIK_1, phone=PHONE_1), PARSER)
    errors: list[str] = []

    def seen(context: Any) -> None:
        code = getattr(getattr(context.original_exception, "__cause__", None), "sqlstate", None)
        errors.append(str(code or type(context.original_exception).__name__))

    for replica in replicas:
        event.listen(replica.gateway.engine.sync_engine, "handle_error", seen)
    news = [
        "lubangnya makin besar kemarin dua motor jatuh",
        "sekarang air menggenang di lubang itu",
        "tadi pagi ada mobil terperosok ke lubang",
        "warga sudah pasang tanda bahaya dari kayu",
        "lubang kedua muncul di dekat jembatan",
        "anak sekolah hampir jatuh sore ini",
    ]
    dups = [
        f"NIK {NIK_1} {ROAD_SMS}",
        f"NIK {NIK_1} jalan siliwangi depan pasar sumber berlubang besar motor sering jatuh",
        f"NIK {NIK_1} tolong jalan siliwangi dpn pasar sumber berlubang besar sdh 2 bulan",
    ]
    batch_one = [(f"Laporan {road.tracking_id} {n}", WATI) for n in news[:3]] + [(dups[0], PHONE_1)]
    batch_two = [(f"Laporan {road.tracking_id} {n}", WATI) for n in news[3:]] + [
        (d, PHONE_1) for d in dups[1:]
    ]
    now = datetime.now(UTC)
    words = ["forwarded", "in_progress", "forwarded", "in_progress"]
    changes = [
        status_feed.StatusChange(
            f"zz-{i}", road.complaint_id, road.tracking_id, w, now - timedelta(seconds=60 - i), None
        )
        for i, w in enumerate(words)
    ]
    push = StatusPush(one.gateway.settings.sms.short_code)
    engines = [one.gateway.engine, two.gateway.engine]
    started = asyncio.get_running_loop().time()
    results = await asyncio.wait_for(
        asyncio.gather(
            one.at_once(*batch_one),
            two.at_once(*batch_two),
            *(
                status_feed.apply(engines[i % 2], c, now + timedelta(seconds=1), push)
                for i, c in enumerate(changes)
            ),
            return_exceptions=True,
        ),
        15,
    )
    took = asyncio.get_running_loop().time() - started
    failed = [r for r in results if isinstance(r, BaseException)]
    assert failed == [], failed
    answers = [*results[0], *results[1]]  # type: ignore[misc]
    assert [a for a in answers if not a.startswith("LAPOR!")] == [], list(enumerate(answers))
    assert sum(a.startswith("LAPOR! Tambahan info") for a in answers) == len(news), answers
    events = [e for e in await one.events() if e["complaint_id"] == road.complaint_id]
    raw_ids = [e["source"]["raw_inbound_id"] for e in events]
    assert len(raw_ids) == len(set(raw_ids)), "a message published twice"
    kinds = sorted(e["event"] for e in events if e["event"] in ("followup", "duplicate"))
    assert kinds.count("followup") == len(news), kinds
    assert kinds.count("duplicate") == len(dups), kinds
    assert await one.gateway.intake.status(road.tracking_id) is not None
    assert (await one.gateway.intake.status(road.tracking_id)).status == "in_progress"  # type: ignore[union-attr]
    async with one.gateway.engine.connect() as conn:
        told = (
            await conn.execute(
                select(
                    sms_replies.c.recipient, sms_replies.c.tracking_id, sms_replies.c.body
                ).where(sms_replies.c.kind == STATUS_CHANGE_KIND)
            )
        ).all()
    told_keyed = [(one.gateway.keys.decrypt(to), tid, body) for to, tid, body in told]
    assert len(told_keyed) == len(set(told_keyed)), told_keyed
    assert errors == [], errors
    assert took < 10, took
