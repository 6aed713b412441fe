"""The routing core's status changes, through the real RabbitMQ into both databases, and back out
to whoever holds the tracking ID (the API, /cek, Open311)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika
import pamqp.encode
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from aiormq import spec
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from gateway import bootstrap, status_feed
from gateway.settings import Settings
from gateway.storage.database import create_engine
from gateway.storage.schema import complaint_status_events, complaints, sms_replies
from tests.support import (
    AMQP_URL,
    TcpProxy,
    drain,
    free_port,
    kannel_mo,
    pg_admin,
    scratch_postgres,
    serving_app,
    wait_until,
    with_section,
)

pytestmark = pytest.mark.integration

Client = Callable[..., Awaitable[TestClient[Any, Any]]]


@dataclass
class Feed:
    gateway: bootstrap.Gateway
    client: TestClient[Any, Any]
    settings: Settings

    async def complaint(self, n: int, nik: bool = True) -> tuple[str, str]:
        """A complaint through the JSON API: (complaint id, tracking ID)."""
        reporter = {"name": "Siti", "nik": "3201014101900001"} if nik else {"name": f"Warga {n}"}
        resp = await self.client.post(
            "/api/v1/complaints",
            json={
                "title": f"Lampu jalan mati {n}",
                "body": f"Lampu jalan di gang {n} Jalan Kenanga mati sejak {n + 1} minggu.",
                "reporter": reporter,
            },
        )
        assert resp.status == 202, await resp.text()
        tid = (await resp.json())["tracking_id"]
        async with self.gateway.engine.connect() as conn:
            cid = (
                await conn.execute(select(complaints.c.id).where(complaints.c.tracking_id == tid))
            ).scalar_one()
        return cid, tid

    async def applied(self) -> list[Any]:
        async with self.gateway.engine.connect() as conn:
            return list(
                await conn.execute(
                    select(complaint_status_events).order_by(complaint_status_events.c.id)
                )
            )

    def count(self, outcome: str) -> float:
        value = self.gateway.metrics.status_changes.labels(outcome)._value.get()
        return float(value)


def status(cid: str, tid: str, word: str, at: str, **extra: Any) -> dict[str, Any]:
    return {
        "schema_version": "1.0",
        "complaint_id": cid,
        "tracking_id": tid,
        "status": word,
        "changed_at": at,
        **extra,
    }


async def publish(
    settings: Settings, body: dict[str, Any] | bytes, message_id: str | None = None
) -> None:
    """What the routing core does: a persistent message on lapor.status, with confirms."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    word = body["status"] if isinstance(body, dict) else "unknown"
    connection = await aio_pika.connect(AMQP_URL)
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(settings.status_feed.exchange)
        await exchange.publish(
            aio_pika.Message(
                raw,
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                message_id=message_id,
            ),
            routing_key=f"status.{word}",
            mandatory=True,
        )
    finally:
        await connection.close()


@contextlib.asynccontextmanager
async def running(
    settings: Settings, aiohttp_client: Client, sms_sender: bool = False
) -> AsyncIterator[Feed]:
    """A gateway's HTTP app with its status feed consuming (and its SMS reply sender)."""
    gateway = bootstrap.build(settings)
    consumer = gateway.status_feed
    assert consumer is not None
    client = await aiohttp_client(bootstrap.build_app(gateway))
    stop = asyncio.Event()
    tasks = [asyncio.create_task(consumer.run(stop))]
    if sms_sender:
        assert gateway.sms is not None and gateway.sms.sender is not None
        tasks.append(asyncio.create_task(gateway.sms.sender.run(stop)))
    try:
        await wait_until(lambda: consumer.consuming, "consuming")
        yield Feed(gateway, client, settings)
    finally:
        stop.set()
        for task in tasks:
            await task
        await gateway.close()


@contextlib.asynccontextmanager
async def texting(
    settings: Settings, aiohttp_client: Client
) -> AsyncIterator[tuple[Feed, list[tuple[str, str]]]]:
    """:func:`running` with its SMS reply sender, whose replies go to a fake smsbox
    ``sendsms`` that records each as (to, text)."""
    sent: list[tuple[str, str]] = []

    async def sendsms(request: web.Request) -> web.Response:
        sent.append((request.query["to"], request.query["text"]))
        return web.Response(status=202, text="0: Accepted for delivery")

    app = web.Application()
    app.router.add_get("/cgi-bin/sendsms", sendsms)
    port = free_port()
    s = with_section(
        settings, "sms", kannel_sendsms_url=f"http://127.0.0.1:{port}/cgi-bin/sendsms"
    )
    async with serving_app(app, port), running(s, aiohttp_client, sms_sender=True) as feed:
        yield feed, sent


@pytest.fixture
async def feed(settings: Settings, aiohttp_client: Client) -> AsyncIterator[Feed]:
    async with running(settings, aiohttp_client) as started:
        yield started


async def test_a_status_change_is_shown_by_the_api_the_status_page_and_open311(feed: Feed) -> None:
    cid, tid = await feed.complaint(1)
    resp = await feed.client.get(f"/api/v1/complaints/{tid}")
    before = await resp.json()
    assert (before["status"], before["updated_at"], before["agency"]) == ("received", None, None)

    agency = "Dinas Perhubungan Kabupaten Cirebon"
    await publish(
        feed.settings,
        status(cid, tid, "forwarded", "2026-12-05T09:30:00+07:00", agency=agency),
        str(uuid.uuid4()),
    )
    await wait_until(lambda: feed.count("applied") == 1, "the change applied")

    after = await (await feed.client.get(f"/api/v1/complaints/{tid}")).json()
    assert after["status"] == "forwarded"
    assert after["updated_at"] == "2026-12-05T02:30:00.000Z"
    assert after["agency"] == agency
    assert after["received_at"] == before["received_at"]

    page = await (await feed.client.get("/cek", params={"id": tid})).text()
    assert "Diteruskan ke instansi" in page
    assert "05-12-2026 09:30 WIB" in page and agency in page
    english = await (await feed.client.get("/cek", params={"id": tid, "lang": "en"})).text()
    assert "Forwarded to the agency" in english

    [one] = await (await feed.client.get(f"/open311/v2/requests/{tid}.json")).json()
    assert (one["status"], one["status_notes"]) == ("open", "forwarded")
    assert one["agency_responsible"] == agency
    assert one["updated_datetime"].startswith("2026-12-05T") and one["updated_datetime"] != (
        one["requested_datetime"]
    )

    await publish(feed.settings, status(cid, tid, "resolved", "2026-12-05T10:00:00Z"), "m-2")
    await wait_until(lambda: feed.count("applied") == 2, "the second change applied")
    [closed] = await (await feed.client.get(f"/open311/v2/requests/{tid}.json")).json()
    # Resolved is closed for Open311; no agency in the message leaves the one shown.
    assert (closed["status"], closed["agency_responsible"]) == ("closed", agency)


async def test_a_redelivery_changes_nothing_and_the_newest_change_wins(feed: Feed) -> None:
    cid, tid = await feed.complaint(2)
    newer = status(cid, tid, "in_progress", "2026-12-04T08:00:00Z")
    older = status(cid, tid, "verified", "2026-12-03T08:00:00Z")
    await publish(feed.settings, newer, "m-newer")
    await wait_until(lambda: feed.count("applied") == 1, "the newer change applied")
    await publish(feed.settings, newer, "m-newer")  # the routing core published it again
    await publish(feed.settings, older, "m-older")  # arrived late
    await publish(feed.settings, older, "m-older")
    await wait_until(
        lambda: (feed.count("duplicate"), feed.count("stale")) == (2, 1), "every one settled"
    )
    shown = await (await feed.client.get(f"/api/v1/complaints/{tid}")).json()
    assert (shown["status"], shown["updated_at"]) == ("in_progress", "2026-12-04T08:00:00.000Z")
    kept = [(r.message_id, r.status, r.applied) for r in await feed.applied()]
    assert kept == [("m-newer", "in_progress", True), ("m-older", "verified", False)]


async def test_what_cannot_be_applied_is_dead_lettered_not_dropped(feed: Feed) -> None:
    cid, tid = await feed.complaint(3)
    await publish(feed.settings, b"not json", "m-bad")
    await publish(feed.settings, status(str(uuid.uuid4()), tid, "verified", "2026-12-05T01:00:00Z"))
    await publish(feed.settings, status(cid, "K7QM4XRT9", "verified", "2026-12-05T01:00:00Z"))
    dead = await drain(feed.settings.status_feed.dead_letter_queue, 3, complaint_events=False)
    assert "m-bad" in [m.message_id for m in dead]
    assert all(m.headers.get("x-death") for m in dead)
    assert feed.count("refused") == 3 and await feed.applied() == []
    # The complaint is as it was, and the feed goes on with the next message.
    await publish(feed.settings, status(cid, tid, "verified", "2026-12-05T01:00:00Z"), "m-ok")
    await wait_until(lambda: feed.count("applied") == 1, "the valid change applied")


async def test_the_feed_comes_back_after_a_broker_outage(
    settings: Settings, aiohttp_client: Client
) -> None:
    proxy = TcpProxy(5672)
    await proxy.start()
    s = with_section(settings, "broker", url=f"amqp://guest:guest@127.0.0.1:{proxy.port}/")
    try:
        async with running(s, aiohttp_client) as feed:
            consumer = feed.gateway.status_feed
            assert consumer is not None
            cid, tid = await feed.complaint(4)
            await proxy.cut()
            await wait_until(lambda: not consumer.consuming, "the consumer notices the cut")
            # Published while the gateway cannot reach the broker: it waits on the queue.
            await publish(s, status(cid, tid, "verified", "2026-12-05T01:00:00Z"), "m-during")
            await proxy.start()
            await wait_until(lambda: feed.count("applied") == 1, "applied after the outage")
            assert feed.gateway.metrics.status_feed_connected._value.get() == 1
    finally:
        await proxy.cut()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_change_that_cannot_be_committed_waits_on_the_queue(
    settings: Settings, aiohttp_client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    def failed() -> list[str]:
        return [
            str(getattr(r, "error", ""))
            for r in caplog.records
            if r.getMessage().startswith("status feed failed")
        ]

    scratch = scratch_postgres(settings, "lapor_status")
    async with scratch as (s, name), running(s, aiohttp_client) as feed:
        cid, tid = await feed.complaint(5)
        await pg_admin(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
        await feed.gateway.engine.dispose()
        caplog.set_level(logging.WARNING)
        await publish(s, status(cid, tid, "verified", "2026-12-05T01:00:00Z"), "m-1")
        await wait_until(lambda: failed(), "the feed logs the failure")
        assert "read-only transaction" in failed()[0]
        # Then it takes no message while the database is read-only (it answers SELECT 1): each
        # one taken went back with the connection, and RabbitMQ 4 (before 4.3) counts every
        # return towards the quorum queue's delivery limit, past which it dead-letters.
        await wait_until(lambda: len(failed()) >= 5, "the feed keeps trying")
        assert sum("read-only transaction" in error for error in failed()) == 1
        assert "the database is read-only" in failed()[-1]
        assert feed.count("applied") == 0

        await pg_admin(f'ALTER DATABASE "{name}" RESET default_transaction_read_only')
        await feed.gateway.engine.dispose()
        await wait_until(lambda: feed.count("applied") == 1, "applied once it is back")
        shown = await (await feed.client.get(f"/api/v1/complaints/{tid}")).json()
        assert shown["status"] == "verified"
        assert [r.message_id for r in await feed.applied()] == ["m-1"]


async def test_a_citizen_who_texted_is_told_each_change_by_sms(
    settings: Settings, aiohttp_client: Client
) -> None:
    async with texting(settings, aiohttp_client) as (feed, sent):
        s = feed.settings
        phone = "+6281234500077"
        resp = await feed.client.get(
            "/sms/kannel", params=kannel_mo("Jembatan Cikapundung retak parah", phone)
        )
        assert resp.status == 200
        await wait_until(lambda: len(sent) == 1, "the receipt sent")
        async with feed.gateway.engine.connect() as conn:
            cid, tid = (await conn.execute(select(complaints.c.id, complaints.c.tracking_id))).one()
        web_cid, web_tid = await feed.complaint(6)  # its receipt went in the HTTP answer

        await publish(s, status(cid, tid, "received", "2026-12-05T01:00:00Z"), "m-0")
        await publish(s, status(cid, tid, "forwarded", "2026-12-05T02:00:00Z"), "m-1")
        await publish(s, status(cid, tid, "forwarded", "2026-12-05T02:00:00Z"), "m-1")
        await publish(s, status(cid, tid, "verified", "2026-12-05T01:30:00Z"), "m-late")
        await publish(s, status(web_cid, web_tid, "verified", "2026-12-05T01:30:00Z"), "m-w")
        await wait_until(
            lambda: sum(feed.count(o) for o in ("applied", "duplicate", "stale")) == 5,
            "every change settled",
        )
        await wait_until(lambda: len(sent) == 2, "the change told")
        await asyncio.sleep(0.5)  # and nothing more: received, the copy, the late one
        shown = f"{tid[:4]}-{tid[4:]}"
        assert sent[1] == (
            phone,
            f"LAPOR! Laporan {shown} kini berstatus DITERUSKAN (05-12-2026). "
            f"Cek: kirim CEK {tid} ke 1708.",
        )
        assert len(sent) == 2 and sent[0][0] == phone
        async with feed.gateway.engine.connect() as conn:  # the web complaint's: none to tell
            pushed = (
                await conn.execute(
                    select(sms_replies.c.tracking_id, sms_replies.c.status).where(
                        sms_replies.c.kind == "status-change"
                    )
                )
            ).all()
        assert [tuple(r) for r in pushed] == [(tid, "sent")]


async def test_a_complaint_open_longer_than_the_replies_are_kept_is_still_told(
    settings: Settings, aiohttp_client: Client
) -> None:
    # sms.keep_replies (90 days) deleted the receipt by which StatusPush finds the number: a
    # complaint still open after that was told of no change by SMS any more.
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import func, update

    from gateway.sms_store import prune

    async with texting(settings, aiohttp_client) as (feed, sent):
        s = feed.settings
        engine = feed.gateway.engine
        texted: list[tuple[str, str, str]] = []  # (phone, complaint id, tracking ID)
        for phone, words in (
            ("+6281234500078", "Lampu jalan di Jalan Dago mati semua sejak minggu lalu"),
            ("+6281234500079", "Saluran air di Pasar Baru tersumbat sampah plastik"),
        ):
            resp = await feed.client.get("/sms/kannel", params=kannel_mo(words, phone))
            assert resp.status == 200
            await wait_until(lambda n=len(texted): len(sent) == n + 1, "the receipt sent")
            known = [t for _, _, t in texted]
            async with engine.connect() as conn:
                cid, tid = (
                    await conn.execute(
                        select(complaints.c.id, complaints.c.tracking_id).where(
                            complaints.c.tracking_id.not_in(known)
                        )
                    )
                ).one()
            texted.append((phone, cid, tid))
        (open_phone, open_cid, open_tid), (_, closed_cid, closed_tid) = texted
        await publish(s, status(closed_cid, closed_tid, "closed", "2026-12-05T02:00:00Z"), "c-1")
        await wait_until(lambda: len(sent) == 3, "the closing told")

        async with engine.begin() as conn:  # 91 days later
            await conn.execute(
                update(sms_replies).values(created_at=datetime.now(UTC) - timedelta(days=91))
            )
        assert await prune(engine, 90 * 86400.0, 0, datetime.now(UTC)) == (2, 0)
        async with engine.connect() as conn:
            left = (
                await conn.execute(
                    select(sms_replies.c.tracking_id, func.count()).group_by(
                        sms_replies.c.tracking_id
                    )
                )
            ).all()
        assert [tuple(r) for r in left] == [(open_tid, 1)]  # the closed one's receipt went

        await publish(s, status(open_cid, open_tid, "forwarded", "2026-12-05T03:00:00Z"), "o-1")
        await wait_until(lambda: len(sent) == 4, "the change told after the prune")
        assert sent[3][0] == open_phone and "DITERUSKAN" in sent[3][1]


async def test_a_burst_of_changes_is_applied_without_a_failure(
    feed: Feed, caplog: pytest.LogCaptureFixture
) -> None:
    # 500 changes of 20 complaints at once, taken 50 at a time (status_feed.prefetch): the
    # concurrent transactions on one complaint neither fail nor let an older change win.
    caplog.set_level(logging.WARNING)
    made = [await feed.complaint(100 + i, nik=False) for i in range(20)]
    connection = await aio_pika.connect(AMQP_URL)
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(feed.settings.status_feed.exchange)
        await asyncio.gather(
            *(
                exchange.publish(
                    aio_pika.Message(
                        json.dumps(
                            status(cid, tid, "step_" + chr(97 + m), f"2026-12-05T01:{m:02d}:00Z")
                        ).encode(),
                        message_id=f"b-{n}-{m}",
                    ),
                    routing_key="status.step_" + chr(97 + m),
                )
                for n, (cid, tid) in enumerate(made)
                for m in range(25)
            )
        )
    finally:
        await connection.close()
    await wait_until(
        lambda: sum(feed.count(o) for o in ("applied", "stale")) == 500, "all 500 settled", 60
    )
    assert not [r.getMessage() for r in caplog.records if r.name == "gateway.status_feed"]
    for _, tid in made:  # the newest of each, whatever order they were applied in
        shown = await (await feed.client.get(f"/api/v1/complaints/{tid}")).json()
        assert (shown["status"], shown["updated_at"]) == ("step_y", "2026-12-05T01:24:00.000Z")
    assert len(await feed.applied()) == 500


async def test_the_agency_named_by_a_change_that_came_late_is_shown(feed: Feed) -> None:
    cid, tid = await feed.complaint(7)
    # Assigned to an agency at 01:00, in progress at 02:00 (no agency named): the 02:00 message
    # arrives first.
    await publish(feed.settings, status(cid, tid, "in_progress", "2026-12-05T02:00:00Z"), "a-2")
    await wait_until(lambda: feed.count("applied") == 1, "the newer change applied")
    late = status(cid, tid, "forwarded", "2026-12-05T01:00:00Z", agency="Dinas PU")
    await publish(feed.settings, late, "a-1")
    await wait_until(lambda: feed.count("stale") == 1, "the older change kept")
    shown = await (await feed.client.get(f"/api/v1/complaints/{tid}")).json()
    assert (shown["status"], shown["agency"]) == ("in_progress", "Dinas PU")
    # Reassigned at 03:00; a copy of an assignment older than that changes nothing.
    moved = status(cid, tid, "forwarded", "2026-12-05T03:00:00Z", agency="Dinas Perhubungan")
    await publish(feed.settings, moved, "a-3")
    older = status(cid, tid, "forwarded", "2026-12-05T00:30:00Z", agency="Kecamatan")
    await publish(feed.settings, older, "a-0")
    await wait_until(lambda: feed.count("stale") == 2, "the oldest change kept")
    shown = await (await feed.client.get(f"/api/v1/complaints/{tid}")).json()
    assert (shown["status"], shown["agency"]) == ("forwarded", "Dinas Perhubungan")


async def test_the_feed_comes_back_when_its_queue_is_deleted(feed: Feed) -> None:
    # What an operator does to change the queue's arguments: the broker cancels the consumer,
    # which must take that as a lost connection, not go on believing it consumes.
    consumer = feed.gateway.status_feed
    assert consumer is not None
    cid, tid = await feed.complaint(8)
    connection = await aio_pika.connect(AMQP_URL)
    try:
        channel = await connection.channel()
        await channel.queue_delete(feed.settings.status_feed.queue)
    finally:
        await connection.close()
    await wait_until(lambda: not consumer.consuming, "the cancel noticed")
    await wait_until(lambda: consumer.consuming, "consuming again (the queue declared anew)")
    await publish(feed.settings, status(cid, tid, "verified", "2026-12-05T01:00:00Z"), "q-1")
    await wait_until(lambda: feed.count("applied") == 1, "applied on the new queue")


async def test_a_message_that_keeps_failing_is_set_aside_and_the_feed_goes_on(
    settings: Settings, aiohttp_client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    # Something unforeseen fails on one message every time (here: what the change causes).
    gateway = bootstrap.build(settings)
    poisoned: set[str] = set()

    async def notify(conn: Any, change: status_feed.StatusChange, now: Any, _: Any) -> int:
        if change.tracking_id in poisoned:
            raise RuntimeError("a bug")
        return 0

    consumer = status_feed.StatusConsumer(
        gateway.engine, settings.broker, settings.status_feed, gateway.metrics, notify=notify
    )
    gateway.status_feed = consumer
    client = await aiohttp_client(bootstrap.build_app(gateway))
    feed = Feed(gateway, client, settings)
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    try:
        await wait_until(lambda: consumer.consuming, "consuming")
        bad, good = await feed.complaint(9), await feed.complaint(10, nik=False)
        poisoned.add(bad[1])
        await publish(settings, status(*bad, "verified", "2026-12-05T01:00:00Z"), "p-bad")
        await publish(settings, status(*good, "verified", "2026-12-05T01:00:00Z"), "p-good")
        await wait_until(lambda: feed.count("refused") == 1, "the failing one set aside", 30)
        await wait_until(lambda: feed.count("applied") == 1, "the next one applied")
        dead = await drain(settings.status_feed.dead_letter_queue, 1, complaint_events=False)
        assert [m.message_id for m in dead] == ["p-bad"]
        errors = [r for r in caplog.records if r.getMessage() == "status feed: unexpected error"]
        assert len(errors) == status_feed.POISON_ATTEMPTS
    finally:
        stop.set()
        await task
        await gateway.close()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_values_the_database_refuses_are_told_from_its_state(settings: Settings) -> None:
    # SQLSTATE class 22 (a data exception): the message's fault, set aside at once. A read-only
    # database (25006): its state, the message waits.
    async with scratch_postgres(settings, "lapor_sqlstate") as (s, name):
        engine = create_engine(s.database)
        try:
            with pytest.raises(DBAPIError) as data:
                async with engine.connect() as conn:
                    await conn.execute(text("SELECT CAST('x' AS integer)"))
            assert status_feed._refused_values(data.value)
            await pg_admin(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
            await engine.dispose()
            with pytest.raises(DBAPIError) as state:
                async with engine.begin() as conn:
                    await conn.execute(text("CREATE TABLE t (x int)"))
            assert "read-only" in str(state.value)
            assert not status_feed._refused_values(state.value)
        finally:
            await engine.dispose()


async def test_a_gateway_with_the_feed_turned_off_consumes_nothing(settings: Settings) -> None:
    gateway = bootstrap.build(with_section(settings, "status_feed", enabled=False))
    try:
        assert gateway.status_feed is None
        assert gateway.metrics.status_feed_enabled._value.get() == 0  # LaporStatusFeedDown quiet
    finally:
        await gateway.close()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_an_older_agency_does_not_win_a_race_with_a_newer_one(feed: Feed) -> None:
    # Two changes older than the status shown, both naming an agency, applied at once on two
    # replicas: the newer one's agency must stay. The newer one is played by hand, held at the
    # point where it has set its agency and kept its event but not committed yet.
    cid, tid = await feed.complaint(9)
    engine = feed.gateway.engine

    def change(key: str, word: str, at: str, agency: str | None = None) -> status_feed.StatusChange:
        extra = {} if agency is None else {"agency": agency}
        body = json.dumps(status(cid, tid, word, at, **extra)).encode()
        return status_feed.parse(body, key)

    shown = change("r-3", "in_progress", "2026-12-05T03:00:00Z")
    assert (await status_feed.apply(engine, shown, shown.changed_at))[0] == "applied"
    newer = change("r-2", "forwarded", "2026-12-05T02:00:00Z", "Dinas PU")
    older = change("r-1", "forwarded", "2026-12-05T01:00:00Z", "Kecamatan")
    async with engine.connect() as other:
        await other.begin()
        await other.execute(
            complaints.update().where(complaints.c.id == cid).values(agency=newer.agency)
        )
        await other.execute(
            complaint_status_events.insert().values(
                message_id=newer.key,
                complaint_id=cid,
                status=newer.status,
                agency=newer.agency,
                changed_at=newer.changed_at,
                received_at=newer.changed_at,
                applied=False,
            )
        )
        racing = asyncio.create_task(status_feed.apply(engine, older, older.changed_at))

        async def waiting() -> bool:
            async with engine.connect() as conn:
                n = await conn.scalar(
                    text(
                        "SELECT count(*) FROM pg_stat_activity"
                        " WHERE wait_event_type = 'Lock' AND datname = current_database()"
                    )
                )
            return bool(n) or racing.done()

        await wait_until(waiting, "the older change waits for the newer one's lock")
        await other.commit()
    assert (await racing)[0] == "stale"
    async with engine.connect() as conn:
        agency = await conn.scalar(select(complaints.c.agency).where(complaints.c.id == cid))
    assert agency == "Dinas PU"


def _refusals(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage().startswith("status message refused")]


async def test_a_message_id_kept_with_another_change_is_refused_not_dropped(
    feed: Feed, caplog: pytest.LogCaptureFixture
) -> None:
    # A routing core that reuses ids (one per complaint, or a counter restarted): the second
    # change was taken for a copy of the first, acknowledged and dropped, unseen.
    caplog.set_level(logging.INFO)
    cid, tid = await feed.complaint(11)
    other_cid, other_tid = await feed.complaint(12, nik=False)
    await publish(feed.settings, status(cid, tid, "forwarded", "2026-12-05T02:00:00Z"), "r-1")
    await wait_until(lambda: feed.count("applied") == 1, "the first change applied")
    # The same change written otherwise (its time at its offset, the fields in another order)
    # is a copy.
    copy = dict(reversed(status(cid, tid, "forwarded", "2026-12-05T09:00:00+07:00").items()))
    await publish(feed.settings, copy, "r-1")
    await wait_until(lambda: feed.count("duplicate") == 1, "the copy settled")
    await publish(feed.settings, status(cid, tid, "resolved", "2026-12-05T03:00:00Z"), "r-1")
    await publish(
        feed.settings, status(other_cid, other_tid, "verified", "2026-12-05T03:00:00Z"), "r-1"
    )
    dead = await drain(feed.settings.status_feed.dead_letter_queue, 2, complaint_events=False)
    assert [m.message_id for m in dead] == ["r-1", "r-1"]
    assert {json.loads(m.body)["status"] for m in dead} == {"resolved", "verified"}
    assert (feed.count("refused"), feed.count("duplicate")) == (2, 1)
    for t, word in ((tid, "forwarded"), (other_tid, "received")):
        shown = await (await feed.client.get(f"/api/v1/complaints/{t}")).json()
        assert shown["status"] == word
    # What the operator asked about one complaint finds in the log: the reason and the ids.
    refused = {getattr(r, "tracking_id", None): r for r in _refusals(caplog)}
    assert set(refused) == {tid, other_tid}
    assert "message_id already kept with another change" in refused[tid].getMessage()
    assert "status forwarded, changed_at 2026-12-05T02:00:00Z" in refused[tid].getMessage()
    assert "another complaint" in refused[other_tid].getMessage()
    assert getattr(refused[tid], "message_id", None) == "r-1"
    assert [r.message_id for r in await feed.applied()] == ["r-1"]


async def test_a_change_dated_ahead_of_the_clock_is_refused(
    feed: Feed, caplog: pytest.LogCaptureFixture
) -> None:
    # A routing core whose clock (or time zone) is wrong: shown, a change dated next year hid
    # every real change until then, and told the citizen by SMS the date it never happened.
    caplog.set_level(logging.WARNING)
    cid, tid = await feed.complaint(13)
    now = datetime.now(UTC)
    ahead = (now + timedelta(days=400)).strftime("%Y-%m-%dT%H:%M:%SZ")
    await publish(feed.settings, status(cid, tid, "closed", ahead), "t-ahead")
    dead = await drain(feed.settings.status_feed.dead_letter_queue, 1, complaint_events=False)
    assert [m.message_id for m in dead] == ["t-ahead"]
    [refused] = _refusals(caplog)
    assert "changed_at is 400 days ahead of the gateway's clock" in refused.getMessage()
    # Within the clocks' drift it is applied, and so are the real changes after it.
    drift = (now + timedelta(minutes=1)).isoformat()
    await publish(feed.settings, status(cid, tid, "verified", drift), "t-drift")
    await wait_until(lambda: feed.count("applied") == 1, "the change within the drift applied")
    later = (now + timedelta(minutes=2)).isoformat()
    await publish(feed.settings, status(cid, tid, "forwarded", later), "t-later")
    await wait_until(lambda: feed.count("applied") == 2, "the real change applied")
    shown = await (await feed.client.get(f"/api/v1/complaints/{tid}")).json()
    assert shown["status"] == "forwarded" and feed.count("refused") == 1


async def test_a_change_that_repeats_the_status_is_not_texted_again(
    settings: Settings, aiohttp_client: Client
) -> None:
    # An agency's second reply, a reassignment: a newer change with the same status word. The
    # citizen was texted "kini berstatus DIPROSES" once more each time.
    async with texting(settings, aiohttp_client) as (feed, sent):
        s = feed.settings
        phone = "+6281234500081"
        resp = await feed.client.get(
            "/sms/kannel", params=kannel_mo("Sampah menumpuk di Jalan Braga dua minggu", phone)
        )
        assert resp.status == 200
        await wait_until(lambda: len(sent) == 1, "the receipt sent")
        async with feed.gateway.engine.connect() as conn:
            cid, tid = (await conn.execute(select(complaints.c.id, complaints.c.tracking_id))).one()
        changes = [
            ("s-1", "in_progress", "2026-12-05T02:00:00Z", None),
            ("s-2", "in_progress", "2026-12-05T03:00:00Z", "Dinas Lingkungan Hidup"),
            ("s-3", "in_progress", "2026-12-05T04:00:00Z", None),
            ("s-4", "resolved", "2026-12-05T05:00:00Z", None),
        ]
        for n, (key, word, at, agency) in enumerate(changes, 1):
            extra = {} if agency is None else {"agency": agency}
            await publish(s, status(cid, tid, word, at, **extra), key)

            def applied(n: int = n) -> bool:
                return feed.count("applied") == n

            await wait_until(applied, f"change {key} applied")
        await wait_until(lambda: len(sent) == 3, "the two new statuses told")
        await asyncio.sleep(0.5)  # and nothing more
        told = sorted(body.split(" kini berstatus ")[1].split(" (")[0] for _, body in sent[1:])
        assert told == ["DIPROSES", "SELESAI"]
        assert len(sent) == 3 and {to for to, _ in sent} == {phone}
        shown = await (await feed.client.get(f"/api/v1/complaints/{tid}")).json()
        assert (shown["status"], shown["agency"]) == ("resolved", "Dinas Lingkungan Hidup")


async def test_a_constraint_the_change_breaks_is_not_taken_for_a_redelivery(
    settings: Settings, aiohttp_client: Client
) -> None:
    # Any IntegrityError counted as "duplicate": a change that broke another constraint (here,
    # in what it causes) was acknowledged and lost, never applied, nothing logged.
    gateway = bootstrap.build(settings)

    async def notify(conn: Any, change: status_feed.StatusChange, now: Any, _: Any) -> int:
        for _ in range(2):
            await conn.execute(
                complaint_status_events.insert().values(
                    message_id="taken",
                    complaint_id=change.complaint_id,
                    status=change.status,
                    changed_at=change.changed_at,
                    received_at=now,
                    applied=False,
                )
            )
        return 0

    consumer = status_feed.StatusConsumer(
        gateway.engine, settings.broker, settings.status_feed, gateway.metrics, notify=notify
    )
    gateway.status_feed = consumer
    client = await aiohttp_client(bootstrap.build_app(gateway))
    feed = Feed(gateway, client, settings)
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    try:
        await wait_until(lambda: consumer.consuming, "consuming")
        cid, tid = await feed.complaint(14)
        await publish(settings, status(cid, tid, "verified", "2026-12-05T01:00:00Z"), "c-1")
        await wait_until(lambda: feed.count("refused") == 1, "set aside after its attempts", 30)
        dead = await drain(settings.status_feed.dead_letter_queue, 1, complaint_events=False)
        assert [m.message_id for m in dead] == ["c-1"]
        assert feed.count("duplicate") == 0 and await feed.applied() == []
    finally:
        stop.set()
        await task
        await gateway.close()


async def _publish_as_octets(
    settings: Settings,
    body: dict[str, Any],
    encoders: dict[str, Callable[[Any], bytes]],
    **properties: Any,
) -> None:
    """Publish a status message with some AMQP types encoded by ``encoders`` (pamqp's encoder
    table, for this one message): octets that are no UTF-8 where the protocol has octets and
    RabbitMQ passes them on unchecked, as a Go or Java client can send them."""
    connection = await aio_pika.connect(AMQP_URL)
    originals = {name: pamqp.encode.METHODS[name] for name in encoders}
    try:
        channel = await connection.channel(publisher_confirms=True)
        underlay = await channel.get_underlay_channel()
        pamqp.encode.METHODS.update(encoders)
        try:
            await underlay.basic_publish(
                json.dumps(body).encode(),
                exchange=settings.status_feed.exchange,
                routing_key=f"status.{body['status']}",
                mandatory=True,
                properties=spec.Basic.Properties(
                    content_type="application/json", delivery_mode=2, **properties
                ),
            )
        finally:
            pamqp.encode.METHODS.update(originals)
    finally:
        await connection.close()


def _short_string(value: str | bytes) -> bytes:
    octets = value if isinstance(value, bytes) else value.encode()
    return bytes([len(octets)]) + octets


async def test_a_status_message_whose_message_id_is_no_utf8_does_not_stop_the_feed(
    settings: Settings, aiohttp_client: Client
) -> None:
    # One bad message never stops the feed. A message id of octets that are no UTF-8 failed
    # the client library's decoding of the delivery, which took the connection down before
    # the gateway saw it; the broker delivered it again at once, for ever, and nothing behind
    # it was applied. Read, its change is kept under the hash of its id's octets.
    async with running(settings, aiohttp_client) as feed:
        cid, tid = await feed.complaint(1)
        await _publish_as_octets(
            settings,
            status(cid, tid, "verified", "2026-12-05T01:00:00Z"),
            {"shortstr": _short_string},
            message_id=b"\xff\xfe-change-1",
        )
        await publish(settings, status(cid, tid, "in_progress", "2026-12-05T02:00:00Z"), "m-2")
        await wait_until(lambda: feed.count("applied") == 2, "both changes applied", timeout=20)
        async with feed.gateway.engine.connect() as conn:
            keys = (await conn.execute(select(complaint_status_events.c.message_id))).scalars()
            word = (await conn.execute(select(complaints.c.status))).scalar_one()
        expected = "sha256:" + hashlib.sha256(b"\xff\xfe-change-1").hexdigest()
        assert sorted(keys) == sorted([expected, "m-2"]) and word == "in_progress"


async def test_a_status_message_whose_header_name_is_no_utf8_does_not_stop_the_feed(
    settings: Settings, aiohttp_client: Client
) -> None:
    # A header's name is an AMQP short string too, decoded by the table decoder: read as well,
    # and the change published after it applied.
    entry = bytes([2]) + b"\xffx" + b"t\x01"  # one field, named by the octets ff 78: true
    raw_table = len(entry).to_bytes(4, "big") + entry
    async with running(settings, aiohttp_client) as feed:
        cid, tid = await feed.complaint(1)
        await _publish_as_octets(
            settings,
            status(cid, tid, "verified", "2026-12-05T01:00:00Z"),
            {"table": lambda value: raw_table},
            message_id="bad-header-1",
            headers={"x": True},
        )
        await publish(settings, status(cid, tid, "in_progress", "2026-12-05T02:00:00Z"), "m-2")
        await wait_until(lambda: feed.count("applied") == 2, "both changes applied", timeout=20)
        async with feed.gateway.engine.connect() as conn:
            word = (await conn.execute(select(complaints.c.status))).scalar_one()
        assert word == "in_progress"
