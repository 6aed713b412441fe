"""Several relays on one PostgreSQL share the outbox without publishing a row twice; and what
the routing core receives from them, read off the wire and held to contract/asyncapi.yaml."""

from __future__ import annotations

import asyncio
import json
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aio_pika
import aiormq
import pytest
import yaml
from sqlalchemy import func, select, update

from gateway import bootstrap, contract
from gateway.domain import Attachment, Channel, ComplaintDraft, Privacy, RawInbound, Reporter
from gateway.intake import Parser
from gateway.outbox import OutboxRelay, Requeued, outbox_status, republish
from gateway.settings import Settings
from gateway.storage.schema import outbox
from tests.support import FixedClock, drain, validate_event, wait_until

pytestmark = pytest.mark.integration

PARSER = Parser("test.plain", lambda r: ComplaintDraft(body=r.body.decode()))
N = 600
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_two_relays_publish_every_row_once(settings: Settings) -> None:
    writer = bootstrap.build(settings)
    small = settings.outbox.model_copy(update={"batch_size": 25})
    gateways = [bootstrap.build(settings) for _ in range(2)]
    relays = [
        OutboxRelay(g.engine, settings.broker, small, g.metrics, g.keys, name=f"relay-{i}")
        for i, g in enumerate(gateways)
    ]
    stop = asyncio.Event()
    try:
        # The relays run while complaints keep arriving, as on two busy replicas.
        tasks = [asyncio.create_task(r.run(stop)) for r in relays]

        async def submit(start: int) -> None:
            for i in range(start, N, 4):
                raw = RawInbound(Channel.WEB, f"laporan {i}".encode(), datetime.now(UTC), f"r-{i}")
                await writer.intake.accept(raw, PARSER)

        await asyncio.gather(*(submit(k) for k in range(4)))
        messages = await drain(settings.broker.queue, expected=N, timeout=60)
        stop.set()
        await asyncio.gather(*tasks)
        ids = [m.message_id for m in messages]
        assert len(ids) == N
        assert len(set(ids)) == N, "a row was published twice"
        assert {json.loads(m.body)["body"] for m in messages} == {f"laporan {i}" for i in range(N)}
        per_relay = [g.metrics.published.labels("web")._value.get() for g in gateways]
        assert sum(per_relay) == N
        assert all(n > 0 for n in per_relay), f"one relay did all the work: {per_relay}"
        assert (await outbox_status(writer.engine)).pending == 0
        async with writer.engine.connect() as conn:
            published = (
                select(func.count()).select_from(outbox).where(outbox.c.published_at.is_not(None))
            )
            assert (await conn.execute(published)).scalar() == N
    finally:
        stop.set()
        for g in [writer, *gateways]:
            await g.close()


async def test_concurrent_batches_share_one_connection(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    gateway = bootstrap.build(settings)
    relay = OutboxRelay(
        gateway.engine,
        settings.broker,
        settings.outbox,
        gateway.metrics,
        gateway.keys,
        name="relay-x",
    )
    try:
        for i in range(3):
            raw = RawInbound(Channel.WEB, f"laporan {i}".encode(), datetime.now(UTC), f"c-{i}")
            await gateway.intake.accept(raw, PARSER)
        caplog.set_level("INFO", logger="gateway.outbox")
        # Both start while the relay has no connection: the second waits for the first's.
        counts = await asyncio.gather(*(relay.publish_batch() for _ in range(4)))
        assert sum(counts) == 3
        connects = [r for r in caplog.records if "connected to the broker" in r.getMessage()]
        assert len(connects) == 1, "one connection, not one per caller"
        assert len(await drain(settings.broker.queue, expected=3)) == 3
    finally:
        await relay.close()
        await gateway.close()


async def test_republished_events_go_out_again_oldest_first_with_their_ids(
    settings: Settings,
) -> None:
    gateway = bootstrap.build(settings)
    relay = OutboxRelay(
        gateway.engine,
        settings.broker,
        settings.outbox,
        gateway.metrics,
        gateway.keys,
        name="relay-r",
    )
    stop = asyncio.Event()
    try:
        for i, channel in enumerate([Channel.WEB, Channel.SMS, Channel.WEB, Channel.WEB]):
            raw = RawInbound(channel, f"laporan {i}".encode(), datetime.now(UTC), f"r-{i}")
            await gateway.intake.accept(raw, PARSER)
        while await relay.publish_batch():
            pass
        first = await drain(settings.broker.queue, expected=4)
        async with gateway.engine.connect() as conn:
            created = [
                r.created_at
                for r in (
                    await conn.execute(select(outbox.c.created_at).order_by(outbox.c.id))
                ).all()
            ]
        since = created[1]  # the SMS one and both web ones after it
        later = datetime.now(UTC) + timedelta(days=1)  # "now" for the lag, a day after
        dry = await republish(gateway.engine, since, None, None, later, dry_run=True)
        assert dry.count == 3 and (await outbox_status(gateway.engine)).pending == 0

        only_web = await republish(gateway.engine, since, None, "web", later)
        assert only_web.count == 2
        status = await outbox_status(gateway.engine)
        # Waiting since they were queued again, not since their commit a day "before".
        assert status.pending == 2 and status.lag_seconds(later) == 0.0
        assert await republish(gateway.engine, since, created[3], "sms", later) == Requeued(
            1, created[1], created[1]
        )
        tasks = [asyncio.create_task(relay.run(stop))]
        again = await drain(settings.broker.queue, expected=3)
        stop.set()
        await asyncio.gather(*tasks)
        # The same messages, ids and bodies, in their first order.
        assert [(m.message_id, m.body) for m in again] == [
            (m.message_id, m.body) for m in first[1:]
        ]
        assert (await outbox_status(gateway.engine)).pending == 0
    finally:
        stop.set()
        await gateway.close()


async def test_a_handed_row_whose_lease_ran_out_is_published_once(settings: Settings) -> None:
    clock = FixedClock(datetime.now(UTC))
    gateway = bootstrap.build(settings, clock=clock)
    relay = gateway.relay
    assert relay is not None
    try:
        await relay.publish_batch()  # connected, nothing waiting: caught up
        assert relay.lease() is not None
        raw = RawInbound(Channel.WEB, b"laporan", clock(), "lease-1")
        await gateway.intake.accept(raw, PARSER)  # handed to the relay, leased to it
        async with gateway.engine.connect() as conn:
            (claimed_by,) = (await conn.execute(select(outbox.c.claimed_by))).scalars().all()
        assert claimed_by == relay.name and len(relay._handed) == 1  # both: in hand and leased
        # The relay does not get to it before the lease ends (a slow broker, a busy core): the
        # row is claimable by any relay now, this one included, and must go out once only.
        clock.now += timedelta(seconds=settings.outbox.claim_timeout + 1)
        stop = asyncio.Event()
        task = asyncio.create_task(relay.run(stop))
        messages = await drain(settings.broker.queue, expected=1)
        await asyncio.sleep(0.5)  # several polls of the table
        stop.set()
        await task
        assert len(messages) == 1 and len(await drain(settings.broker.queue, expected=0)) == 0
    finally:
        await relay.close()
        await gateway.close()


async def test_the_hand_over_is_bounded(settings: Settings) -> None:
    gateway = bootstrap.build(settings)
    relay = gateway.relay
    assert relay is not None
    try:
        await relay.publish_batch()
        lease = relay.lease()
        assert lease is not None
        row = {
            "message_id": "m",
            "event": "created",
            "channel": "web",
            "routing_key": "k",
            "body": "{}",
            "created_at": datetime.now(UTC),
            "claim_expires": lease[1],
        }
        relay.hand_over([row] * (4 * settings.outbox.batch_size - 1))
        assert relay.lease() is not None
        relay.hand_over([row])
        # Publication lags behind: new rows wait in the table, not in this process's memory.
        assert relay.lease() is None
    finally:
        await relay.close()
        await gateway.close()


async def test_an_unexpected_error_does_not_stop_the_relay(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    gateway = bootstrap.build(settings)
    relay = gateway.relay
    assert relay is not None
    real = relay.publish_batch
    calls = 0

    async def once_broken() -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("a surprise")
        return await real()

    monkeypatch.setattr(relay, "publish_batch", once_broken)
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        raw = RawInbound(Channel.WEB, b"laporan", datetime.now(UTC), "surprise-1")
        await gateway.intake.accept(raw, PARSER)

        async def published() -> bool:
            return (await outbox_status(gateway.engine)).pending == 0

        await wait_until(published, "the relay, back from its backoff, published the row")
        assert len(await drain(settings.broker.queue, expected=1)) == 1  # it went on
        assert not task.done()
        assert gateway.metrics.relay_errors.labels("internal")._value.get() == 1
    finally:
        stop.set()
        await task
        await gateway.close()


async def test_a_queue_declared_with_other_arguments_is_told_apart_from_a_broker_down(
    settings: Settings,
) -> None:
    # A consumer declared the routing core's queue itself, without the dead-letter arguments:
    # the broker is up, but refuses the relay's declaration (PRECONDITION_FAILED).
    connection = await aio_pika.connect(settings.broker.effective_url())
    async with connection:
        await (await connection.channel()).declare_queue(settings.broker.queue, durable=True)
    gateway = bootstrap.build(settings)
    relay = gateway.relay
    assert relay is not None
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        raw = RawInbound(Channel.WEB, b"laporan", datetime.now(UTC), "mismatch-1")
        await gateway.intake.accept(raw, PARSER)
        errors = gateway.metrics.relay_errors

        await wait_until(
            lambda: errors.labels("topology-mismatch")._value.get() >= 1,
            "the relay's failure is counted as a topology mismatch",
        )
        assert errors.labels("broker-unreachable")._value.get() == 0
        assert relay.last_error is not None and "declare_queue" in relay.last_error
        assert (await outbox_status(gateway.engine)).pending == 1  # kept, not lost
    finally:
        stop.set()
        await task
        await gateway.close()


async def test_rows_a_relay_could_not_open_are_claimed_after_the_others(
    settings: Settings,
) -> None:
    small = settings.outbox.model_copy(update={"batch_size": 2})
    gateway = bootstrap.build(settings)
    relay = OutboxRelay(
        gateway.engine, settings.broker, small, gateway.metrics, gateway.keys, name="relay-o"
    )
    try:
        for i in range(3):
            raw = RawInbound(Channel.WEB, f"laporan {i}".encode(), datetime.now(UTC), f"o-{i}")
            await gateway.intake.accept(raw, PARSER)
        async with gateway.engine.begin() as conn:  # the oldest: given back by another relay
            oldest = (await conn.execute(select(func.min(outbox.c.id)))).scalar_one()
            await conn.execute(
                update(outbox)
                .where(outbox.c.id == oldest)
                .values(last_error="data-key: 1 event(s) do not open")
            )
        assert await relay.publish_batch() == 2
        first = await drain(settings.broker.queue, expected=2)
        assert [json.loads(m.body)["body"] for m in first] == ["laporan 1", "laporan 2"]
        assert await relay.publish_batch() == 1  # then it too, when there is room
    finally:
        await relay.close()
        await gateway.close()


async def test_a_returned_row_is_retried_after_its_rest_and_the_rest_go_out(
    settings: Settings,
) -> None:
    # One row of a batch the broker returns (mandatory, no queue bound to its key): it is not
    # skipped. It goes back to the table, resting min(5 s, backoff_max), and the relay tries it
    # again then until it is routed; the other rows of the batch, confirmed, are not published
    # again. Order between events is not kept then, as contract/asyncapi.yaml says: the
    # routing core orders by `received_at` where it matters.
    gateway = bootstrap.build(settings)
    relay = gateway.relay
    assert relay is not None
    stop = asyncio.Event()
    task: asyncio.Task[None] | None = None
    try:
        for i in range(3):
            raw = RawInbound(Channel.WEB, f"laporan {i}".encode(), datetime.now(UTC), f"ret-{i}")
            await gateway.intake.accept(raw, PARSER)
        async with gateway.engine.begin() as conn:
            ids = (await conn.execute(select(outbox.c.message_id).order_by(outbox.c.id))).scalars()
            first, returned, third = ids.all()
            key = (
                await conn.execute(
                    select(outbox.c.routing_key).where(outbox.c.message_id == returned)
                )
            ).scalar_one()
            await conn.execute(
                update(outbox)
                .where(outbox.c.message_id == returned)
                .values(routing_key="lapor.nowhere")
            )
        task = asyncio.create_task(relay.run(stop))
        errors = gateway.metrics.relay_errors.labels("unroutable")

        async def tried_twice() -> bool:
            return errors._value.get() >= 2

        await wait_until(tried_twice, "the relay tried the returned row again after its backoff")
        async with gateway.engine.connect() as conn:
            rows = {r.message_id: r for r in await conn.execute(select(outbox))}
        assert rows[first].published_at is not None and rows[third].published_at is not None
        waiting = rows[returned]
        assert waiting.published_at is None and waiting.attempts >= 2
        assert waiting.last_error.startswith("unroutable")
        async with gateway.engine.begin() as conn:  # a binding for it appears
            await conn.execute(
                update(outbox).where(outbox.c.message_id == returned).values(routing_key=key)
            )

        async def published() -> bool:
            return (await outbox_status(gateway.engine)).pending == 0

        await wait_until(published, "the returned row, routable now, was published")
        messages = await drain(settings.broker.queue, expected=3)
        assert [m.message_id for m in messages] == [first, third, returned]  # each once
    finally:
        stop.set()
        if task is not None:
            await task
        await gateway.close()


async def test_one_refused_row_does_not_throttle_the_rows_behind_it(settings: Settings) -> None:
    # The oldest row is returned by the broker (no queue bound to its key) at every try; many
    # rows committed after it must still flow at full speed, not one batch per back-off.
    small = settings.outbox.model_copy(
        update={"batch_size": 5, "backoff_initial": 0.5, "backoff_max": 30.0}
    )
    gateway = bootstrap.build(settings)
    relay = OutboxRelay(gateway.engine, settings.broker, small, gateway.metrics, gateway.keys,
                        name="relay-refused")
    stop = asyncio.Event()
    task: asyncio.Task[None] | None = None
    good = 40
    try:
        for i in range(good + 1):
            raw = RawInbound(Channel.WEB, f"laporan {i}".encode(), datetime.now(UTC), f"rf-{i}")
            await gateway.intake.accept(raw, PARSER)
        async with gateway.engine.begin() as conn:
            refused = (
                await conn.execute(select(outbox.c.message_id).order_by(outbox.c.id).limit(1))
            ).scalar_one()
            await conn.execute(
                update(outbox)
                .where(outbox.c.message_id == refused)
                .values(routing_key="lapor.nowhere")
            )
        errors = gateway.metrics.relay_errors.labels("unroutable")
        started = asyncio.get_running_loop().time()
        task = asyncio.create_task(relay.run(stop))
        # The relay declares the queue before its first batch (which meets the refused row).
        await wait_until(lambda: errors._value.get() >= 1, "the relay tried the refused row")
        messages = await drain(settings.broker.queue, expected=good, timeout=20)
        took = asyncio.get_running_loop().time() - started
        assert len(messages) == good and refused not in {m.message_id for m in messages}
        # Before the fix: 4 good rows per batch, then 0.5 + 1 + 2 + 4 + 8 + 16 + 30 s of back-off.
        assert took < 5, f"{good} rows behind one refused row took {took:.1f}s"
        async with gateway.engine.connect() as conn:
            waiting = (
                await conn.execute(select(outbox).where(outbox.c.message_id == refused))
            ).one()
        assert waiting.published_at is None  # kept, never dropped
        assert waiting.last_error.startswith("unroutable")
        # The broker only refused that row: the relay kept its channel and did not back off.
        assert relay.connected and relay.last_error is None
    finally:
        stop.set()
        if task is not None:
            await task
        await gateway.close()


async def test_a_claim_takes_at_most_batch_size_rows(settings: Settings) -> None:
    # On a small PostgreSQL table the planner ran the locking subquery of the claim again for
    # every row (a nested-loop semi join): one claim took the whole outbox.
    gateway = bootstrap.build(settings)
    small = settings.outbox.model_copy(update={"batch_size": 5})
    relay = OutboxRelay(gateway.engine, settings.broker, small, gateway.metrics, gateway.keys,
                        name="relay-small")
    try:
        for i in range(12):
            raw = RawInbound(Channel.WEB, f"laporan {i}".encode(), datetime.now(UTC), f"cb-{i}")
            await gateway.intake.accept(raw, PARSER)
        assert [await relay.publish_batch() for _ in range(4)] == [5, 5, 2, 0]
        messages = await drain(settings.broker.queue, expected=12)
        assert [json.loads(m.body)["body"] for m in messages] == [f"laporan {i}" for i in range(12)]
    finally:
        await relay.close()
        await gateway.close()


# ---- What the routing core receives: every AMQP property, the body of a complaint and of its
# duplicate, the dead-letter queue, a republished copy. Read on the wire (aiormq, under
# aio-pika: aio-pika's own incoming message fills a property that did not travel with its
# default), and held to what contract/asyncapi.yaml declares.

ASYNCAPI = yaml.safe_load((ROOT / "contract" / "asyncapi.yaml").read_text())
NIK = "3209014101900001"


def _wire_parse(raw: RawInbound) -> ComplaintDraft:
    data = json.loads(raw.body)
    return ComplaintDraft(
        body=data["body"],
        title=data.get("title"),
        reporter=Reporter(
            nik=data.get("nik"),
            name=data.get("name"),
            phone=data.get("phone"),
            email=data.get("email"),
        ),
        privacy=Privacy(**data.get("privacy", {})),
        attachments=tuple(Attachment(**a) for a in data.get("attachments", [])),
    )


WIRE_PARSER = Parser("test.wire", _wire_parse)


async def _take(channel: aiormq.abc.AbstractChannel, queue: str, expected: int
                ) -> list[aiormq.abc.DeliveredMessage]:
    """``expected`` messages of ``queue``, unacknowledged, as they came over the wire."""
    taken: list[aiormq.abc.DeliveredMessage] = []
    deadline = asyncio.get_running_loop().time() + 15
    while len(taken) < expected and asyncio.get_running_loop().time() < deadline:
        message = await channel.basic_get(queue)
        if isinstance(message.delivery, aiormq.spec.Basic.GetEmpty):
            await asyncio.sleep(0.05)
        else:
            taken.append(message)
    assert len(taken) == expected, f"{len(taken)} of {expected} messages in {queue}"
    for message in taken:
        validate_event(json.loads(message.body))
    return taken


def _tag(message: aiormq.abc.DeliveredMessage) -> int:
    assert message.delivery_tag is not None
    return message.delivery_tag


def _declared(message_id: str, event: str, created_at: datetime) -> dict[str, Any]:
    """Every AMQP property of an event as contract/asyncapi.yaml declares it."""
    operation = ASYNCAPI["operations"]["publishComplaintEvent"]["bindings"]["amqp"]
    message = ASYNCAPI["components"]["messages"]["complaintEvent"]
    return {
        "content_type": message["contentType"],
        "content_encoding": message["bindings"]["amqp"]["contentEncoding"],
        "delivery_mode": operation["deliveryMode"],
        "priority": operation["priority"],
        "correlation_id": None,
        "reply_to": None,
        "expiration": None,
        "message_id": message_id,
        "timestamp": created_at.replace(microsecond=0),
        "message_type": f"complaint.{event}",
        "user_id": None,
        "app_id": "lapor-gateway",
        "cluster_id": "",
    }


def _properties(message: aiormq.abc.DeliveredMessage) -> tuple[dict[str, Any], dict[str, Any]]:
    """The properties of ``message`` but its headers, and the headers the gateway set (those
    starting with ``x-`` are the broker's: a quorum queue's x-delivery-count, x-death...)."""
    props = message.header.properties
    found = {name: getattr(props, name) for name in props.__slots__ if name != "headers"}
    headers = {k: v for k, v in (props.headers or {}).items() if not k.startswith("x-")}
    return found, headers


async def test_the_routing_core_gets_a_complaint_and_its_duplicate_as_the_contract_says(
    settings: Settings,
) -> None:
    gateway = bootstrap.build(settings)
    relay = gateway.relay
    assert relay is not None
    start = datetime.now(UTC).replace(microsecond=0)
    sms = RawInbound(
        Channel.SMS,
        json.dumps({
            "body": "jalan siliwangi depan pasar sumber berlubang besar motor sering jatuh",
            "phone": "+6281234567890",
            "privacy": {"anonymous": True, "confidential": True},
        }).encode(),
        start,
        "kannel-w1",
        metadata={"sender": "081234567890", "smsc": "tsel", "receiver": "1708"},
    )
    photo = {"sha256": "c" * 64, "media_type": "image/jpeg", "size": 2048,
             "filename": f"KTP {NIK}.jpg"}
    web = RawInbound(
        Channel.WEB,
        json.dumps({
            "body": "jalan siliwangi depan pasar sumber berlubang makin besar, ini fotonya",
            "title": "Jalan Siliwangi berlubang",
            "nik": NIK,
            "name": "Siti Aminah",
            "phone": "+6281234567890",
            "email": "siti@example.id",
            "attachments": [photo],
        }).encode(),
        start + timedelta(minutes=30, milliseconds=250),
        "form:w2",
        metadata={"remote": "203.0.113.9", "user_agent": "UA/1.0"},
    )
    connection = await aio_pika.connect(settings.broker.effective_url())
    try:
        assert await relay.publish_batch() == 0  # connected and caught up: rows handed over
        first = await gateway.intake.accept(sms, WIRE_PARSER)
        joined = await gateway.intake.accept(web, WIRE_PARSER)
        # The same phone, but typed on a form: told an ID of its own, joined all the same.
        assert first.complaint_id is not None and joined.complaint_id == first.complaint_id
        assert joined.tracking_id != first.tracking_id
        assert len(relay._handed) == 2  # published from memory, republished from the table
        while await relay.publish_batch():
            pass
        async with gateway.engine.connect() as conn:
            rows = {r.event: r for r in await conn.execute(select(outbox))}
        channel = await (await connection.channel()).get_underlay_channel()
        created, duplicate = await _take(channel, settings.broker.queue, 2)

        for message, event, key in [(created, "created", "complaint.created.sms"),
                                    (duplicate, "duplicate", "complaint.duplicate.web")]:
            row = rows[event]
            properties, headers = _properties(message)
            assert properties == _declared(row.message_id, event, row.created_at)
            assert headers == {"schema_version": "1.0"}
            assert (message.exchange, message.routing_key) == (settings.broker.exchange, key)

        body = json.loads(created.body)
        assert (body["event"], body["channel"], body["tracking_id"]) == (
            "created", "sms", first.tracking_id)
        assert body["privacy"] == {"anonymous": True, "confidential": True}
        # The transport facts, never the number as the bridge wrote it.
        assert body["source"] == {"provider_message_id": "kannel-w1", "smsc": "tsel",
                                  "receiver": "1708",
                                  "raw_inbound_id": body["source"]["raw_inbound_id"]}

        # The duplicate carries the new evidence: the new message's words, files, channel,
        # identities and time; the earlier complaint's ids; the privacy the first message asked
        # for, which the second did not lift; nothing of the web client.
        dup = json.loads(duplicate.body)
        assert (dup["event"], dup["channel"]) == ("duplicate", "web")
        assert (dup["complaint_id"], dup["tracking_id"], dup["duplicate_of"]) == (
            first.complaint_id, first.tracking_id, first.tracking_id)
        assert (dup["title"], dup["body"]) == (
            "Jalan Siliwangi berlubang",
            "jalan siliwangi depan pasar sumber berlubang makin besar, ini fotonya")
        assert dup["attachments"] == [photo | {"href": f"/files/{'c' * 64}"}]
        assert dup["reporter"] == {"nik": NIK, "name": "Siti Aminah", "phone": "+6281234567890",
                                   "email": "siti@example.id", "handles": {}}
        assert dup["received_at"] == contract.rfc3339(web.received_at)
        assert dup["received_at"].endswith(".250Z")
        assert dup["privacy"] == {"anonymous": True, "confidential": True}
        assert set(dup["source"]) == {"provider_message_id", "raw_inbound_id", "given_tracking_id"}
        assert dup["source"]["provider_message_id"] == "form:w2"
        assert dup["source"]["given_tracking_id"] == joined.tracking_id
        assert dup["source"]["raw_inbound_id"] == joined.raw_id

        # The routing core refuses the duplicate (rejected, not requeued): it dead-letters,
        # whole, to the dead-letter queue, with the broker's x-death saying why and whence.
        await channel.basic_ack(_tag(created))
        await channel.basic_reject(_tag(duplicate), requeue=False)
        [dead] = await _take(channel, settings.broker.dead_letter_queue, 1)
        await channel.basic_ack(_tag(dead))
        properties, headers = _properties(dead)
        assert properties == _declared(rows["duplicate"].message_id, "duplicate",
                                       rows["duplicate"].created_at)
        assert headers == {"schema_version": "1.0"} and dead.body == duplicate.body
        [death] = dead.header.properties.headers["x-death"]
        assert (death["queue"], death["reason"]) == (settings.broker.queue, "rejected")
        assert dead.routing_key == "complaint.duplicate.web"

        # Published again (`outbox republish`), read from the table and opened this time: the
        # same message, property for property and byte for byte, timestamp included, so a
        # consumer drops the copy it already has.
        later = datetime.now(UTC) + timedelta(hours=1)
        assert (await republish(gateway.engine, start - timedelta(seconds=1), None, None,
                                later)).count == 2
        relay.wake()  # as the relays' next look at the table
        while await relay.publish_batch():
            pass
        again = await _take(channel, settings.broker.queue, 2)
        for message in again:
            await channel.basic_ack(_tag(message))
        assert [(_properties(m), m.body, m.routing_key) for m in again] == [
            (_properties(m), m.body, m.routing_key) for m in (created, duplicate)]
    finally:
        await connection.close()
        await relay.close()
        await gateway.close()


# A Kubernetes pod's host name: the Deployment's name, the ReplicaSet's hash and 5 symbols (up
# to 63 characters). The relay's name adds "-" and 8 hex digits; claimed_by holds 64.
POD_HOSTNAME = "lapor-intake-gateway-production-jakarta-7c9f8d6b5d-x2x7k"


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_relay_on_a_host_with_a_long_name_publishes(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Its name went whole into outbox.claimed_by: PostgreSQL refused every claim ("value too
    # long"), counted as a database error, and nothing was ever published.
    monkeypatch.setattr(socket, "gethostname", lambda: POD_HOSTNAME)
    gateway = bootstrap.build(settings)
    relay = gateway.relay
    assert relay is not None and relay.name.startswith("lapor-intake-gateway-production")
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        raw = RawInbound(Channel.WEB, b"lampu jalan mati", datetime.now(UTC), "pod-1")
        await gateway.intake.accept(raw, PARSER)

        async def published() -> bool:
            return (await outbox_status(gateway.engine)).pending == 0

        await wait_until(published, "the relay published the event", timeout=10)
        assert len(await drain(settings.broker.queue, expected=1)) == 1
        assert gateway.metrics.relay_errors.labels("database")._value.get() == 0
    finally:
        stop.set()
        await task
        await gateway.close()
