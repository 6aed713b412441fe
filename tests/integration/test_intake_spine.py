"""The intake spine against the real RabbitMQ and the real databases (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from sqlalchemy import event, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway import bootstrap, tracking
from gateway.domain import (
    Channel,
    ComplaintDraft,
    NotAComplaint,
    RawInbound,
    Receipt,
    ReceiptStatus,
    Reporter,
)
from gateway.errors import IntakeUnavailable, ParseError, QuarantineNotFound
from gateway.filestore import MAGIC
from gateway.intake import FollowUp, Parser, ParserRegistry, transaction_committed
from gateway.outbox import OutboxRelay, outbox_status
from gateway.settings import Settings
from gateway.storage.schema import complaints, outbox, quarantine, raw_inbound
from tests.support import (
    PG_ADMIN_DSN,
    TcpProxy,
    drain,
    opened_events,
    opened_raw,
    validate_event,
    wait_until,
    with_section,
)

pytestmark = pytest.mark.integration


def _parse(raw: RawInbound) -> ComplaintDraft:
    text = raw.body.decode()
    if text.startswith("!"):
        raise ParseError("starts with !", stage="grammar")
    # No reporter: these tests are about the spine; dedup by person has tests of its own.
    return ComplaintDraft(body=text)


PARSER = Parser("test.plain", _parse)


def raw(text: str, provider_id: str | None = None, channel: Channel = Channel.SMS) -> RawInbound:
    return RawInbound(
        channel=channel,
        body=text.encode(),
        received_at=datetime.now(UTC),
        provider_message_id=provider_id,
        metadata={"sender": "+6281234567890"},
    )


@pytest.fixture
async def gw(settings: Settings) -> AsyncIterator[bootstrap.Gateway]:
    gateway = bootstrap.build(settings)
    yield gateway
    await gateway.close()


async def _publish_all(relay: OutboxRelay) -> int:
    total = 0
    while n := await relay.publish_batch():
        total += n
    return total


async def test_accept_publishes_exactly_one_confirmed_valid_message(
    gw: bootstrap.Gateway, settings: Settings
) -> None:
    receipt = await gw.intake.accept(raw("Jalan rusak di depan SDN 2", "kannel-1"), PARSER)
    assert receipt.status is ReceiptStatus.ACCEPTED
    assert receipt.tracking_id and tracking.is_valid(receipt.tracking_id)
    assert gw.relay is not None
    assert await _publish_all(gw.relay) == 1
    await gw.relay._close()

    [msg] = await drain(settings.broker.queue, expected=1)
    body = json.loads(msg.body)
    assert body["tracking_id"] == receipt.tracking_id
    assert body["complaint_id"] == receipt.complaint_id
    assert body["event"] == "created" and body["channel"] == "sms"
    assert body["body"] == "Jalan rusak di depan SDN 2"
    assert body["source"]["provider_message_id"] == "kannel-1"
    assert msg.routing_key == "complaint.created.sms"
    assert msg.delivery_mode == 2
    assert msg.content_type == "application/json"
    assert msg.type == "complaint.created"
    assert msg.timestamp is not None and msg.message_id
    async with gw.engine.connect() as conn:
        row = (await conn.execute(select(outbox))).one()
    assert row.message_id == msg.message_id and row.published_at is not None


async def test_same_provider_id_twice_gives_one_complaint_and_the_same_receipt(
    gw: bootstrap.Gateway,
) -> None:
    first = await gw.intake.accept(raw("Lampu jalan mati", "dup-1"), PARSER)
    again = await gw.intake.accept(raw("Lampu jalan mati", "dup-1"), PARSER)
    assert again.redelivered and not first.redelivered
    assert (again.tracking_id, again.raw_id, again.complaint_id) == (
        first.tracking_id, first.raw_id, first.complaint_id
    )
    # racing redeliveries on separate connections agree too
    racing = await asyncio.gather(
        *(gw.intake.accept(raw("Sampah menumpuk", "race-1"), PARSER) for _ in range(8))
    )
    assert len({r.tracking_id for r in racing}) == 1
    async with gw.engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(complaints))).scalar() == 2
        assert (await conn.execute(select(func.count()).select_from(outbox))).scalar() == 2
        assert (await conn.execute(select(func.count()).select_from(raw_inbound))).scalar() == 2


async def test_broker_outage_intake_keeps_answering_and_messages_arrive_in_order(
    settings: Settings,
) -> None:
    proxy = TcpProxy(5672)
    await proxy.start()
    url = f"amqp://guest@127.0.0.1:{proxy.port}/"
    s = settings.model_copy(update={"broker": settings.broker.model_copy(update={"url": url})})
    gateway = bootstrap.build(s)
    assert gateway.relay is not None
    stop = asyncio.Event()
    relay_task = asyncio.create_task(gateway.relay.run(stop))
    try:
        await gateway.intake.accept(raw("sebelum gangguan", "o-0"), PARSER)
        for _ in range(100):
            if (await outbox_status(gateway.engine)).pending == 0:
                break
            await asyncio.sleep(0.05)
        await proxy.cut()
        receipts = [
            await gateway.intake.accept(raw(f"saat gangguan {i}", f"o-{i}"), PARSER)
            for i in range(1, 21)
        ]
        assert all(r.status is ReceiptStatus.ACCEPTED for r in receipts)
        relay = gateway.relay
        await wait_until(lambda: not relay.connected, "the relay noticed the broker is gone")
        status = await outbox_status(gateway.engine)
        assert status.pending == 20
        # Nothing stays leased to a relay that cannot publish: another replica may take them.
        for _ in range(60):
            async with gateway.engine.connect() as conn:
                held = (
                    await conn.execute(
                        select(func.count())
                        .select_from(outbox)
                        .where(outbox.c.published_at.is_(None), outbox.c.claimed_by.is_not(None))
                    )
                ).scalar_one()
            if held == 0:
                break
            await asyncio.sleep(0.1)
        assert held == 0
        assert gateway.metrics.relay_errors.labels("broker-unreachable")._value.get() >= 1
        await proxy.start()
        messages = await drain(s.broker.queue, expected=21, timeout=20)
    finally:
        stop.set()
        await relay_task
        await proxy.cut()
        await gateway.close()
    bodies = [json.loads(m.body)["body"] for m in messages]
    assert bodies == ["sebelum gangguan"] + [f"saat gangguan {i}" for i in range(1, 21)]


async def test_database_refusing_commits_raises_the_named_retry_error(
    settings: Settings, database_url: str
) -> None:
    gateway = bootstrap.build(settings)
    try:
        if database_url.startswith("sqlite"):
            # Another process holds the write lock past the busy timeout.
            import sqlite3

            locker = sqlite3.connect(database_url.split("///", 1)[1], isolation_level=None)
            locker.execute("BEGIN EXCLUSIVE")
            gateway.engine.sync_engine.pool.dispose()
            short = settings.database.model_copy(update={"connect_timeout": 0.3})
            from gateway.storage.database import create_engine

            await gateway.engine.dispose()
            gateway.engine = create_engine(short)
            gateway.intake._engine = gateway.engine
            try:
                with pytest.raises(IntakeUnavailable):
                    await gateway.intake.accept(raw("tidak tersimpan", "db-1"), PARSER)
            finally:
                locker.execute("ROLLBACK")
                locker.close()
        else:
            dbname = database_url.rsplit("/", 1)[1]
            admin = await asyncpg.connect(PG_ADMIN_DSN)
            try:
                await admin.execute(
                    f'ALTER DATABASE "{dbname}" SET default_transaction_read_only = on'
                )
                await gateway.engine.dispose()  # new connections pick the setting up
                with pytest.raises(IntakeUnavailable):
                    await gateway.intake.accept(raw("tidak tersimpan", "db-1"), PARSER)
            finally:
                await admin.execute(f'ALTER DATABASE "{dbname}" RESET default_transaction_read_only')
                await admin.close()
                await gateway.engine.dispose()
        # Nothing half-stored: once the database takes commits again, the message goes in whole.
        receipt = await gateway.intake.accept(raw("tersimpan", "db-1"), PARSER)
        assert receipt.status is ReceiptStatus.ACCEPTED and not receipt.redelivered
        assert gateway.metrics.unavailable.labels("sms")._value.get() == 1
    finally:
        await gateway.close()


async def test_unreachable_database_raises_the_named_retry_error(settings: Settings) -> None:
    from tests.support import free_port

    url = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/nothing"
    gateway = bootstrap.build(with_section(settings, "database", url=url, connect_timeout=1.0))
    try:
        with pytest.raises(IntakeUnavailable):
            await gateway.intake.accept(raw("x", "u-1"), PARSER)
    finally:
        await gateway.close()


async def test_parser_failure_is_quarantined_acknowledged_and_replayable(
    gw: bootstrap.Gateway, settings: Settings
) -> None:
    receipt = await gw.intake.accept(raw("!rusak", "q-1"), PARSER)
    assert receipt.status is ReceiptStatus.QUARANTINED
    assert receipt.tracking_id and receipt.complaint_id is None
    [entry] = await gw.intake.list_quarantine()
    assert (entry["stage"], entry["reason"], entry["parser"]) == ("grammar", "starts with !", "test.plain")
    shown = await gw.intake.show_quarantine(entry["id"])
    assert shown["body"] == b"!rusak"

    # A crashing parser is quarantined too, never lost.
    def crash(_raw: RawInbound) -> ComplaintDraft:
        raise KeyError("bug")

    crashed = await gw.intake.accept(raw("apa saja", "q-2"), Parser("test.plain", crash))
    assert crashed.status is ReceiptStatus.QUARANTINED

    # After the "fix", replay turns both into complaints that keep their tracking IDs.
    fixed = Parser("test.plain", lambda r: ComplaintDraft(body=r.body.decode().lstrip("!")))
    replays = [await gw.intake.replay(e["id"], ParserRegistry([fixed]))
               for e in await gw.intake.list_quarantine()]
    assert [r.status for r in replays] == [ReceiptStatus.ACCEPTED] * 2
    assert [r.tracking_id for r in replays] == [receipt.tracking_id, crashed.tracking_id]
    assert await gw.intake.list_quarantine() == []
    assert gw.relay is not None
    assert await _publish_all(gw.relay) == 2
    await gw.relay._close()
    messages = await drain(settings.broker.queue, expected=2)
    assert sorted(json.loads(m.body)["body"] for m in messages) == ["apa saja", "rusak"]
    status = await gw.intake.status(receipt.tracking_id.lower())
    assert status is not None and status.status == "received"


async def test_a_replay_joining_an_earlier_complaint_keeps_the_senders_tracking_id(
    gw: bootstrap.Gateway,
) -> None:
    def with_nik(r: RawInbound) -> ComplaintDraft:
        text = r.body.decode()
        if text.startswith("!"):
            raise ParseError("starts with !", stage="grammar")
        return ComplaintDraft(body=text, reporter=Reporter(nik="3209014101900001"))

    first = await gw.intake.accept(
        raw("Jalan rusak parah di depan SDN 2 Sumber", "d-1"), Parser("t.nik", with_nik)
    )
    held = await gw.intake.accept(
        raw("!Jalan rusak parah depan SDN 2 Sumber, mohon diperbaiki", "d-2"),
        Parser("t.nik", with_nik),
    )
    assert held.status is ReceiptStatus.QUARANTINED and held.tracking_id
    [entry] = await gw.intake.list_quarantine()
    fixed = Parser("t.nik", lambda r: with_nik(replace(r, body=r.body.lstrip(b"!"))))
    replayed = await gw.intake.replay(entry["id"], ParserRegistry([fixed]))
    assert replayed.status is ReceiptStatus.DUPLICATE
    assert replayed.complaint_id == first.complaint_id
    assert replayed.tracking_id == held.tracking_id != first.tracking_id
    # The sender's ID (told on arrival, by SMS or on the receipt page) follows that complaint
    # from the message's arrival: not a change from before it, which tells of the first.
    arrived = (await gw.intake.status(held.tracking_id)).received_at  # type: ignore[union-attr]
    for changed_at, shown in (
        (arrived - timedelta(minutes=1), "received"),
        (arrived + timedelta(minutes=1), "in_progress"),
    ):
        async with gw.engine.begin() as conn:
            await conn.execute(
                update(complaints).values(status="in_progress", status_changed_at=changed_at)
            )
        status = await gw.intake.status(held.tracking_id)
        assert status is not None and (status.tracking_id, status.status) == (
            held.tracking_id,
            shown,
        )
    # The routing core learns it too.
    *_, duplicate = [json.loads(e) for e in await opened_events(gw.engine, gw.keys)]
    validate_event(duplicate)
    assert (duplicate["event"], duplicate["tracking_id"]) == ("duplicate", first.tracking_id)
    assert duplicate["source"]["given_tracking_id"] == held.tracking_id


async def test_two_replays_of_one_entry_at_once_make_one_complaint(
    gw: bootstrap.Gateway, settings: Settings
) -> None:
    await gw.intake.accept(raw("!rusak", "q-twice"), PARSER)
    [entry] = await gw.intake.list_quarantine()
    fixed = ParserRegistry([Parser("test.plain", lambda r: ComplaintDraft(body="rusak"))])
    # Two operators run the replay at the same moment (two gateway processes, one database):
    # both have read the entry, still open, before either writes.
    other = bootstrap.build(settings)
    both_read = asyncio.Barrier(2)
    for intake in (gw.intake, other.intake):
        read = intake.show_quarantine

        async def read_then_wait(entry_id: int, read: Any = read) -> dict[str, Any]:
            found = await read(entry_id)
            await both_read.wait()
            return found

        intake.show_quarantine = read_then_wait  # type: ignore[method-assign]
    try:
        outcomes = await asyncio.gather(
            gw.intake.replay(entry["id"], fixed), other.intake.replay(entry["id"], fixed),
            return_exceptions=True,
        )
    finally:
        await other.close()
    done = [o for o in outcomes if not isinstance(o, BaseException)]
    refused = [o for o in outcomes if isinstance(o, BaseException)]
    assert [r.status for r in done] == [ReceiptStatus.ACCEPTED]
    assert len(refused) == 1 and isinstance(refused[0], QuarantineNotFound), refused
    assert await gw.intake.count_complaints() == 1


async def test_a_quarantine_reason_keeps_no_nik_or_phone_number_in_the_clear(
    gw: bootstrap.Gateway,
) -> None:
    # A parser's message may quote what it could not take: stored for the operator, masked.
    def quoting(r: RawInbound) -> ComplaintDraft:
        raise ParseError("NIK 3209014101900000 / HP 081234567890 tidak sah", "fields")

    def crashing(r: RawInbound) -> ComplaintDraft:
        raise ValueError("invalid literal for int(): '3209014101900000'")

    await gw.intake.accept(raw("NIK 3209014101900000", "m-1"), Parser("test.plain", quoting))
    entry_id = (await gw.intake.list_quarantine())[0]["id"]
    await gw.intake.replay(entry_id, ParserRegistry([Parser("test.plain", crashing)]))
    async with gw.engine.connect() as conn:
        stored = [
            (row.reason, row.last_replay_error)
            for row in await conn.execute(select(quarantine.c.reason, quarantine.c.last_replay_error))
        ]
    assert stored and "3209014101900000" not in str(stored) and "081234567890" not in str(stored)
    [(reason, replay_error)] = stored
    assert reason.startswith("NIK 3209") and "tidak sah" in reason  # still says what went wrong
    assert replay_error is not None and "invalid literal" in replay_error


async def test_an_outcome_the_channel_already_parsed_is_not_parsed_again(
    gw: bootstrap.Gateway,
) -> None:
    calls: list[bytes] = []

    def counting(r: RawInbound) -> ComplaintDraft:
        calls.append(r.body)
        return _parse(r)

    parser = Parser("test.plain", counting)
    first = raw("Lampu jalan mati", "p-1")
    accepted = await gw.intake.accept(first, parser, _parse(first))
    refused = raw("!tidak terbaca", "p-2")
    quarantined = await gw.intake.accept(refused, parser, ParseError("unreadable", "grammar"))
    assert calls == []
    assert accepted.status is ReceiptStatus.ACCEPTED and accepted.tracking_id
    assert quarantined.status is ReceiptStatus.QUARANTINED and quarantined.tracking_id
    [entry] = await gw.intake.list_quarantine()
    # Stored under the parser's name, so a replay after a fix runs the parser itself.
    assert (entry["stage"], entry["reason"], entry["parser"]) == (
        "grammar", "unreadable", "test.plain"
    )
    fixed = Parser("test.plain", lambda r: ComplaintDraft(body=r.body.decode().lstrip("!")))
    replayed = await gw.intake.replay(entry["id"], ParserRegistry([fixed]))
    assert replayed.status is ReceiptStatus.ACCEPTED
    assert replayed.tracking_id == quarantined.tracking_id


async def test_a_draft_the_normaliser_cannot_handle_is_quarantined_not_lost(
    gw: bootstrap.Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: object) -> None:
        raise ValueError("normaliser bug")

    # A bug in a pure normaliser (our own code, not the database) on one message.
    monkeypatch.setattr("gateway.intake.comparison_tokens", broken)
    receipt = await gw.intake.accept(raw("Jalan rusak", "n-1"), PARSER)
    assert receipt.status is ReceiptStatus.QUARANTINED and receipt.tracking_id
    [entry] = await gw.intake.list_quarantine()
    assert entry["stage"] == "normalize-crash" and "normaliser bug" in entry["reason"]
    monkeypatch.undo()
    replayed = await gw.intake.replay(entry["id"], ParserRegistry([PARSER]))
    assert replayed.status is ReceiptStatus.ACCEPTED
    assert replayed.tracking_id == receipt.tracking_id


async def test_a_commit_whose_sender_went_away_still_ends_before_close(
    gw: bootstrap.Gateway,
) -> None:
    sender = asyncio.create_task(gw.intake.accept(raw("pengirim pergi", "gone-1"), PARSER))
    await asyncio.sleep(0)  # queued, and a writer started for it
    sender.cancel()  # the HTTP client disconnected
    with pytest.raises(asyncio.CancelledError):
        await sender
    await gw.intake.idle()  # what Gateway.close() waits for before disposing the pool
    async with gw.engine.connect() as conn:
        stored = (await conn.execute(select(raw_inbound.c.provider_message_id))).scalars().all()
    assert stored == ["gone-1"]  # committed: a retry by the sender gets the first receipt


async def test_a_writer_cancelled_during_its_commit_answers_what_was_committed(
    gw: bootstrap.Gateway,
) -> None:
    # Something (a shutdown) cancels the group-commit writer while the COMMIT of its batch is
    # on its way to the database. The database commits it; the sender must get its receipt,
    # not the retry error: a sender without a transport id would then send it a second time.
    cancelled: list[asyncio.Task[Any]] = []

    def cancel_the_writer(_conn: object) -> None:
        writers = [t for t in asyncio.all_tasks() if t.get_name() == "intake-writer"]
        if not cancelled and writers:
            cancelled.extend(writers)
            writers[0].cancel()

    event.listen(gw.engine.sync_engine, "commit", cancel_the_writer)
    try:
        receipt = await gw.intake.accept(raw("dibatalkan saat commit", "cut-1"), PARSER)
    finally:
        event.remove(gw.engine.sync_engine, "commit", cancel_the_writer)
    assert receipt.status is ReceiptStatus.ACCEPTED
    await gw.intake.idle()
    assert cancelled and cancelled[0].cancelled()  # the writer did stop, as it was told
    assert await gw.intake.count_complaints() == 1
    # Later messages find a writer again.
    later = await gw.intake.accept(raw("sesudahnya", "cut-2"), PARSER)
    assert later.status is ReceiptStatus.ACCEPTED


async def test_replay_without_the_parser_stays_quarantined(gw: bootstrap.Gateway) -> None:
    await gw.intake.accept(raw("!x", "q-3"), PARSER)
    [entry] = await gw.intake.list_quarantine()
    again = await gw.intake.replay(entry["id"], ParserRegistry())
    assert again.status is ReceiptStatus.QUARANTINED
    [still] = await gw.intake.list_quarantine()
    assert still["replay_count"] == 1 and "no parser" in still["last_replay_error"]


async def test_not_a_complaint_is_recorded_without_event(gw: bootstrap.Gateway) -> None:
    status_query = Parser("test.cek", lambda r: NotAComplaint("status-query"))
    receipt = await gw.intake.accept(raw("CEK K7QM4XRT9", "c-1"), status_query)
    assert receipt.status is ReceiptStatus.RECORDED and receipt.tracking_id is None
    assert (await outbox_status(gw.engine)).pending == 0
    (stored,) = await opened_raw(gw.engine, gw.keys)
    assert stored["body"] == b"CEK K7QM4XRT9"


async def test_large_body_goes_to_the_file_store(gw: bootstrap.Gateway) -> None:
    big = "Laporan panjang. " * 200
    receipt = await gw.intake.accept(raw(big, "big-1"), PARSER)
    async with gw.engine.connect() as conn:
        row = (await conn.execute(select(raw_inbound))).one()
    assert row.body is None and row.size == len(big.encode())
    assert await gw.files.read(row.sha256) == big.encode()
    on_disk = gw.files.path(row.sha256).read_bytes()  # sealed: not the message itself
    assert on_disk.startswith(MAGIC) and b"Laporan panjang" not in on_disk
    assert receipt.status is ReceiptStatus.ACCEPTED
    # A channel reads back what it sent, opened, from the file store or inline alike.
    assert await gw.intake.raw_body(receipt.raw_id) == big.encode()
    small = await gw.intake.accept(raw("Lampu jalan mati", "small-1"), PARSER)
    assert await gw.intake.raw_body(small.raw_id) == b"Lampu jalan mati"


async def test_expired_claim_is_published_again_with_the_same_message_id(
    gw: bootstrap.Gateway, settings: Settings
) -> None:
    await gw.intake.accept(raw("klaim kedaluwarsa", "l-1"), PARSER)
    async with gw.engine.begin() as conn:
        # A relay claimed the row and died before publishing.
        await conn.execute(
            update(outbox).values(
                claimed_by="dead-relay", claim_expires=datetime.now(UTC) - timedelta(seconds=1)
            )
        )
        message_id = (await conn.execute(select(outbox.c.message_id))).scalar_one()
    assert gw.relay is not None
    assert await _publish_all(gw.relay) == 1
    await gw.relay._close()
    [msg] = await drain(settings.broker.queue, expected=1)
    assert msg.message_id == message_id


async def test_in_process_relay_publishes_committed_rows_without_claiming_them(
    settings: Settings,
) -> None:
    gateway = bootstrap.build(with_section(settings, "outbox", poll_interval=30.0))
    relay = gateway.relay
    assert relay is not None
    claims: list[str] = []

    def count_claims(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        text = statement.lstrip().upper()
        if text.startswith("UPDATE OUTBOX") and "RETURNING" in text:  # a claim
            claims.append(statement)

    event.listen(gateway.engine.sync_engine, "before_cursor_execute", count_claims)
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        for _ in range(100):  # connected, and its first claim found the outbox empty
            if relay.lease() is not None:
                break
            await asyncio.sleep(0.05)
        assert relay.lease() is not None
        before = len(claims)
        for i in range(3):
            await gateway.intake.accept(raw(f"langsung {i}", f"h-{i}"), PARSER)
        messages = await drain(settings.broker.queue, expected=3, timeout=5)
        assert [json.loads(m.body)["body"] for m in messages] == [f"langsung {i}" for i in range(3)]
        assert len(claims) == before  # handed over in memory: no claim of these rows
        async with gateway.engine.connect() as conn:
            rows = (await conn.execute(select(outbox))).all()
        assert all(r.published_at is not None and r.claimed_by is None for r in rows)
        assert {r.message_id for r in rows} == {m.message_id for m in messages}
    finally:
        stop.set()
        await task
        await gateway.close()


async def test_rows_leased_to_a_relay_that_died_go_out_through_another_after_the_lease(
    settings: Settings,
) -> None:
    first = bootstrap.build(settings)
    assert first.relay is not None
    assert await first.relay.publish_batch() == 0  # connected and caught up: it takes handoffs
    await first.intake.accept(raw("relay mati", "d-1"), PARSER)
    async with first.engine.connect() as conn:
        row = (await conn.execute(select(outbox))).one()
    assert row.claimed_by == first.relay.name and row.published_at is None
    # The process dies with the row in hand: nothing releases it.
    await first.relay._close()
    await first.engine.dispose()
    later = datetime.now(UTC) + timedelta(seconds=settings.outbox.claim_timeout + 1)
    second = bootstrap.build(settings, clock=lambda: later)
    try:
        assert second.relay is not None
        assert await _publish_all(second.relay) == 1
        await second.relay._close()
    finally:
        await second.close()
    [msg] = await drain(settings.broker.queue, expected=1)
    assert msg.message_id == row.message_id and json.loads(msg.body)["body"] == "relay mati"


async def test_quarantine_rows_reference_their_raw_message(gw: bootstrap.Gateway) -> None:
    receipt = await gw.intake.accept(raw("!a", "qr-1"), PARSER)
    async with gw.engine.connect() as conn:
        q = (await conn.execute(select(quarantine))).one()
        r = (await conn.execute(select(raw_inbound))).one()
    assert q.raw_inbound_id == r.id == receipt.raw_id
    assert r.status == "quarantined" and r.tracking_id == receipt.tracking_id


async def test_group_commit_under_load_gives_every_sender_its_own_committed_receipt(
    gw: bootstrap.Gateway,
) -> None:
    # A burst with redeliveries mixed in: batches that hit the unique constraint fall back to
    # one message at a time without losing or duplicating anything.
    ids = [f"burst-{i % 150}" for i in range(200)]
    receipts = await asyncio.gather(*(gw.intake.accept(raw(f"pesan {p}", p), PARSER) for p in ids))
    by_id: dict[str, set[str | None]] = {}
    for provider_id, receipt in zip(ids, receipts, strict=True):
        by_id.setdefault(provider_id, set()).add(receipt.tracking_id)
    assert all(len(t) == 1 for t in by_id.values())
    assert len({next(iter(t)) for t in by_id.values()}) == 150
    assert sum(r.redelivered for r in receipts) == 50
    # right after a burst, a lone message still gets a writer (no message is left waiting)
    lone = await asyncio.wait_for(gw.intake.accept(raw("sendiri", "lone-1"), PARSER), 5)
    assert lone.status is ReceiptStatus.ACCEPTED
    async with gw.engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(complaints))).scalar() == 151


async def test_relay_publishes_at_once_after_a_commit_in_the_same_process(
    settings: Settings,
) -> None:
    # A long poll interval: only the in-process wake-up can explain a quick publication.
    gateway = bootstrap.build(with_section(settings, "outbox", poll_interval=30.0))
    relay = gateway.relay
    assert relay is not None
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        # Connected, and its first claim found the outbox empty: it sleeps for the poll interval.
        await wait_until(lambda: relay.lease() is not None, "the relay is connected and caught up")
        loop = asyncio.get_running_loop()
        started = loop.time()
        await gateway.intake.accept(raw("lampu mati", "wake-1"), PARSER)
        [msg] = await drain(settings.broker.queue, expected=1, timeout=5)
        assert loop.time() - started < 2.0
        assert json.loads(msg.body)["body"] == "lampu mati"
    finally:
        stop.set()
        await task
        await gateway.close()


async def test_follow_ups_are_written_in_the_intake_transaction(gw: bootstrap.Gateway) -> None:
    # A channel's follow-up sees the receipt and writes in the same transaction as the message
    # (here: it reads the message's own raw row back, visible only inside that transaction).
    seen: list[tuple[str, int]] = []

    async def write(conn: AsyncConnection, raw_ids: list[str]) -> list[str]:
        for raw_id in raw_ids:
            found = await conn.execute(
                select(func.count()).select_from(raw_inbound).where(raw_inbound.c.id == raw_id)
            )
            seen.append((raw_id, found.scalar_one()))
        return [f"written for {raw_id}" for raw_id in raw_ids]

    follow = FollowUp(write, lambda receipt: receipt.raw_id)
    results = await asyncio.gather(
        *(
            gw.intake.accept_with(raw(f"Laporan {i}", f"f-{i}"), PARSER, None, follow)
            for i in range(5)
        )
    )
    assert [r for _, r in results] == [f"written for {receipt.raw_id}" for receipt, _ in results]
    assert sorted(seen) == sorted((receipt.raw_id, 1) for receipt, _ in results)
    # A redelivery gets the first receipt; its follow-up was written with the first delivery.
    again, result = await gw.intake.accept_with(raw("Laporan 0", "f-0"), PARSER, None, follow)
    assert again.redelivered and again.raw_id == results[0][0].raw_id and result is None
    assert len(seen) == 5


async def test_a_follow_up_that_fails_to_make_its_item_does_not_hold_up_the_commit(
    gw: bootstrap.Gateway,
) -> None:
    def broken(receipt: Receipt) -> str:
        raise RuntimeError("bug in a channel")

    async def write(conn: AsyncConnection, items: list[str]) -> list[str]:
        return items

    receipt, result = await gw.intake.accept_with(
        raw("Laporan", "broken-1"), PARSER, None, FollowUp(write, broken)
    )
    assert receipt.status is ReceiptStatus.ACCEPTED and result is None
    assert await gw.intake.count_complaints() == 1


async def test_a_value_refused_before_it_reaches_the_database_fails_only_its_own_message(
    gw: bootstrap.Gateway,
) -> None:
    # A channel's bug: a naive receive time, refused by the column type while the statement is
    # built (SQLAlchemy's StatementError, not the database being away). The message of the
    # same group commit beside it must still be committed and answered.
    naive = replace(raw("!rusak", "naive-1"), received_at=datetime.now(UTC).replace(tzinfo=None))
    bad, good = await asyncio.gather(
        gw.intake.accept(naive, PARSER),
        gw.intake.accept(raw("Jembatan ambruk", "beside-1"), PARSER),
        return_exceptions=True,
    )
    assert isinstance(bad, IntakeUnavailable)
    assert isinstance(good, Receipt) and good.status is ReceiptStatus.ACCEPTED
    assert await gw.intake.count_complaints() == 1


async def test_a_commit_of_this_process_left_to_the_table_goes_out_before_later_handoffs(
    settings: Settings,
) -> None:
    # The relay is caught up, but one commit was written without a lease (its writer asked
    # while the relay was not yet caught up, or the relay had enough in hand): that row waits
    # in the table. A later commit handed over in memory must not overtake it, and the wake-up
    # of the first commit must have the relay look at the table, not wait for the next poll.
    gateway = bootstrap.build(with_section(settings, "outbox", poll_interval=30.0))
    relay = gateway.relay
    assert relay is not None
    try:
        assert await relay.publish_batch() == 0  # connected and caught up: it takes handoffs
        lease = relay.lease
        relay.lease = lambda: None  # type: ignore[method-assign]
        await gateway.intake.accept(raw("pertama, lewat tabel", "t-1"), PARSER)
        relay.lease = lease  # type: ignore[method-assign]
        await gateway.intake.accept(raw("kedua, diserahkan", "t-2"), PARSER)
        assert await _publish_all(relay) == 2
        await relay._close()
        messages = await drain(settings.broker.queue, expected=2, timeout=3)
        assert [json.loads(m.body)["body"] for m in messages] == [
            "pertama, lewat tabel",
            "kedua, diserahkan",
        ]
    finally:
        await gateway.close()


async def test_a_claim_timeout_shorter_than_a_publication_hands_nothing_over(
    settings: Settings,
) -> None:
    # A lease too short to outlast a publication's confirm timeout: a row handed over with it
    # would be dropped from memory at once and wait in the table until its lease ended. The
    # intake writes it unleased instead, and it goes out at once.
    gateway = bootstrap.build(
        with_section(settings, "outbox", poll_interval=30.0, claim_timeout=20.0)
    )
    relay = gateway.relay
    assert relay is not None
    try:
        assert await relay.publish_batch() == 0  # connected and caught up
        await gateway.intake.accept(raw("sewa singkat", "short-1"), PARSER)
        assert await _publish_all(relay) == 1
        await relay._close()
        [msg] = await drain(settings.broker.queue, expected=1, timeout=3)
        assert json.loads(msg.body)["body"] == "sewa singkat"
    finally:
        await gateway.close()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # SQLite has no lengths
async def test_a_complaint_the_database_refuses_is_counted_as_quarantined(
    gw: bootstrap.Gateway,
) -> None:
    # Kept in quarantine (stage "store"): counted there, where LaporQuarantineRising looks,
    # not as an accepted complaint.
    refused = Parser("test.long", lambda r: ComplaintDraft(body="isi", agency="x" * 300))
    accepted = gw.metrics.accepted.labels("sms")
    quarantined = gw.metrics.quarantined.labels("sms")
    before = (accepted._value.get(), quarantined._value.get())
    receipt = await gw.intake.accept(raw("isi", "long-1"), refused)
    assert receipt.status is ReceiptStatus.QUARANTINED
    after = (accepted._value.get(), quarantined._value.get())
    assert (after[0] - before[0], after[1] - before[1]) == (0, 1)


def _commit_then_fail(
    gw: bootstrap.Gateway, monkeypatch: pytest.MonkeyPatch, error: str, committed: bool
) -> list[bool]:
    """Make the next COMMIT fail as a lost connection or a timeout does: after the database
    carried it out (``committed``), or without it (rolled back). The list fills when it did."""
    dialect = gw.engine.sync_engine.dialect
    real = dialect.do_commit
    fired: list[bool] = []

    def do_commit(dbapi_connection: Any) -> None:
        if fired:
            real(dbapi_connection)
            return
        fired.append(True)
        if committed:
            real(dbapi_connection)
        else:
            dialect.do_rollback(dbapi_connection)
        if error == "lost":  # the driver's own error, wrapped by SQLAlchemy as a DBAPIError
            raise dialect.loaded_dbapi.OperationalError("connection lost during COMMIT")
        raise TimeoutError("timed out waiting for COMMIT")

    monkeypatch.setattr(dialect, "do_commit", do_commit)
    return fired


@pytest.mark.parametrize("error", ["lost", "timeout"])
async def test_a_commit_that_failed_after_it_was_carried_out_answers_its_receipt(
    gw: bootstrap.Gateway, monkeypatch: pytest.MonkeyPatch, error: str
) -> None:
    # A JSON API call without Idempotency-Key has a random provider id: answered "retry" for a
    # complaint that was committed, the client would file it a second time.
    fired = _commit_then_fail(gw, monkeypatch, error, committed=True)
    receipts = await asyncio.gather(
        gw.intake.accept(raw("Lampu jalan mati"), PARSER),
        gw.intake.accept(raw("Sampah menumpuk"), PARSER),
    )
    assert fired
    async with gw.engine.connect() as conn:
        stored = {
            r.id: r.tracking_id for r in await conn.execute(select(raw_inbound))
        }
        assert (await conn.execute(select(func.count()).select_from(outbox))).scalar() == 2
    assert {r.raw_id: r.tracking_id for r in receipts} == stored
    assert all(r.status is ReceiptStatus.ACCEPTED and not r.redelivered for r in receipts)
    assert gw.metrics.unavailable.labels("sms")._value.get() == 0


@pytest.mark.parametrize("error", ["lost", "timeout"])
async def test_a_commit_that_failed_before_it_was_carried_out_is_still_retry(
    gw: bootstrap.Gateway, monkeypatch: pytest.MonkeyPatch, error: str
) -> None:
    fired = _commit_then_fail(gw, monkeypatch, error, committed=False)
    with pytest.raises(IntakeUnavailable):
        await gw.intake.accept(raw("Lampu jalan mati", "lost-1"), PARSER)
    assert fired and await gw.intake.count_complaints() == 0
    again = await gw.intake.accept(raw("Lampu jalan mati", "lost-1"), PARSER)
    assert again.status is ReceiptStatus.ACCEPTED and not again.redelivered


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize("outcome", ["commit", "rollback"])
async def test_the_outcome_of_a_transaction_still_in_progress_is_waited_for(
    gw: bootstrap.Gateway, database_url: str, outcome: str
) -> None:
    # A backend goes on with a COMMIT its client gave up on: asked too early, its rows would
    # not be visible yet and the senders would be told "retry" for a stored complaint. The
    # server's answer is waited for while the transaction is in progress (here one held open
    # on a connection of its own, then ended).
    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        tx = conn.transaction()
        await tx.start()
        xid = int(await conn.fetchval("SELECT pg_current_xact_id()::text"))
        asking = asyncio.create_task(transaction_committed(gw.engine, xid, wait=10.0))
        await asyncio.sleep(0.3)
        assert not asking.done()  # still in progress: still asking
        await (tx.commit() if outcome == "commit" else tx.rollback())
        assert await asyncio.wait_for(asking, 5.0) is (outcome == "commit")
        # Ended long ago, the answer comes at once.
        assert await transaction_committed(gw.engine, xid, wait=0.0) is (outcome == "commit")
    finally:
        await conn.close()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_transaction_in_progress_past_the_wait_is_not_counted_committed(
    gw: bootstrap.Gateway, database_url: str
) -> None:
    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        async with conn.transaction():
            xid = int(await conn.fetchval("SELECT pg_current_xact_id()::text"))
            started = asyncio.get_running_loop().time()
            assert await transaction_committed(gw.engine, xid, wait=0.3) is False
            assert asyncio.get_running_loop().time() - started >= 0.25
    finally:
        await conn.close()
