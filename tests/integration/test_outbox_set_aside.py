"""Outbox events no relay can open (sealed under a data key nobody has any more) are listed with
their complaint's tracking ID, set aside out of the relays' way, and restored once the key is
found; on both databases, published through the real RabbitMQ, beside relays."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pydantic import SecretStr
from sqlalchemy import event, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway import bootstrap, sealing
from gateway import outbox as outbox_module
from gateway.crypto import Keys
from gateway.domain import Channel, ComplaintDraft, RawInbound, Receipt
from gateway.intake import Parser
from gateway.outbox import (
    Refused,
    StuckEvent,
    outbox_status,
    restore,
    set_aside,
    set_aside_events,
    stuck_events,
)
from gateway.reseal import reseal
from gateway.settings import Settings
from gateway.storage.database import create_engine
from gateway.storage.schema import outbox, outbox_set_aside
from tests.support import FixedClock, drain

pytestmark = pytest.mark.integration

Client = Callable[..., Awaitable[TestClient[Any, Any]]]
PARSER = Parser("test.plain", lambda r: ComplaintDraft(body=r.body.decode()))


def fresh_key() -> SecretStr:
    return SecretStr(base64.b64encode(os.urandom(32)).decode())


def keyed(
    settings: Settings, data_key: SecretStr, *previous: SecretStr, clock: FixedClock | None = None
) -> bootstrap.Gateway:
    """A gateway on ``settings`` with another data key (and previous keys)."""
    security = settings.security.model_copy(
        update={"data_key": data_key, "previous_data_keys": list(previous)}
    )
    changed = settings.model_copy(update={"security": security})
    return bootstrap.build(changed) if clock is None else bootstrap.build(changed, clock=clock)


async def accept(gw: bootstrap.Gateway, text: str, provider_id: str) -> Receipt:
    raw = RawInbound(Channel.WEB, text.encode(), datetime.now(UTC), provider_id)
    receipt = await gw.intake.accept(raw, PARSER)
    assert receipt.tracking_id is not None
    return receipt


async def message_id(engine: AsyncEngine, receipt: Receipt) -> str:
    async with engine.connect() as conn:
        found = (await conn.execute(
            select(outbox.c.message_id).where(outbox.c.complaint_id == receipt.complaint_id)
        )).scalar_one()
    return str(found)


async def in_outbox(engine: AsyncEngine) -> dict[str, datetime | None]:
    """message_id → published_at of every outbox row."""
    async with engine.connect() as conn:
        rows = (await conn.execute(select(outbox.c.message_id, outbox.c.published_at))).all()
    return {r.message_id: r.published_at for r in rows}


async def held(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        return list((await conn.execute(select(outbox_set_aside.c.message_id))).scalars())


async def listed(engine: AsyncEngine, gw: bootstrap.Gateway) -> list[StuckEvent]:
    return [e async for e in stuck_events(engine, gw.keys)]


async def shut(*gateways: bootstrap.Gateway) -> None:
    """Close each gateway and its relay's broker connection (also after a failed assertion)."""
    for gw in gateways:
        if gw.relay is not None:
            await gw.relay.close()
        await gw.close()


def bodies(messages: list[Any]) -> list[str]:
    return [json.loads(m.body)["body"] for m in messages]


async def test_an_event_no_key_opens_is_listed_set_aside_and_the_relays_stop_trying_it(
    settings: Settings, aiohttp_client: Client
) -> None:
    clock = FixedClock(datetime.now(UTC))
    right = bootstrap.build(settings, clock=clock)
    lost = keyed(settings, fresh_key())  # a replica whose data key is gone since
    try:
        client = await aiohttp_client(bootstrap.build_app(right))
        await accept(right, "jalan rusak", "sa-1")
        gone = await accept(lost, "lampu mati", "sa-2")
        await accept(right, "sampah menumpuk", "sa-3")
        relay = right.relay
        assert relay is not None
        assert await relay.publish_batch() == 2
        assert bodies(await drain(settings.broker.queue, 2)) == ["jalan rusak", "sampah menumpuk"]
        errors = right.metrics.relay_errors.labels("data-key")
        assert errors._value.get() == 1
        assert (await outbox_status(right.engine)).unopenable == 1
        outbox_check = (await (await client.get("/readyz")).json())["checks"]["outbox"]
        assert outbox_check["unopenable"] == 1

        # Listed, with the tracking ID the citizen holds, for the routing core.
        [stuck] = await listed(right.engine, right)
        assert stuck.message_id == await message_id(right.engine, gone)
        assert (stuck.tracking_id, stuck.channel, stuck.event) == (gone.tracking_id, "web", "created")
        assert (stuck.opens, stuck.given_back, stuck.attempts) == (False, True, 1)

        aside = await set_aside(right.engine, right.keys, stuck.message_id, reason="key lost")
        assert (aside.message_id, aside.tracking_id, aside.reason) == (
            stuck.message_id, gone.tracking_id, "key lost")
        status = await outbox_status(right.engine, count_set_aside=True)
        assert (status.pending, status.unopenable, status.set_aside) == (0, 0, 1)
        outbox_check = (await (await client.get("/readyz")).json())["checks"]["outbox"]
        assert outbox_check["ok"] and "unopenable" not in outbox_check
        assert await listed(right.engine, right) == []
        assert await held(right.engine) == [stuck.message_id]
        [kept] = [e async for e in set_aside_events(right.engine, right.keys)]
        assert (kept.message_id, kept.tracking_id, kept.opens, kept.reason) == (
            stuck.message_id, gone.tracking_id, False, "key lost")

        # The relays do not try it any more (no data-key error, so the alert stops), and the
        # other events still go out.
        clock.now += timedelta(seconds=60)  # well past the rest of a row given back
        await accept(right, "got tersumbat", "sa-4")
        relay._last_claim = 0.0  # the next batch reads the table
        assert await relay.publish_batch() == 1
        assert bodies(await drain(settings.broker.queue, 1)) == ["got tersumbat"]
        assert errors._value.get() == 1
        assert (await outbox_status(right.engine)).pending == 0
        await relay.close()
    finally:
        await shut(lost, right)


async def test_the_listing_reads_pending_rows_in_bounded_batches(settings: Settings) -> None:
    gw = bootstrap.build(settings)
    lost = keyed(settings, fresh_key())
    other = keyed(settings, fresh_key())  # a replica with another key, still running
    statements: list[str] = []
    try:
        expected = []
        for i in range(7):
            receipt = await accept(lost if i % 2 else gw, f"laporan {i}", f"bb-{i}")
            if i % 2:
                expected.append(receipt.tracking_id)
        assert gw.relay is not None
        assert await gw.relay.publish_batch() == 4  # the published ones are never read again
        await gw.relay.close()
        flagged = await accept(gw, "lampu mati", "bb-7")
        # Given back by the other replica's relay (whose key does not open it).
        assert other.relay is not None
        with pytest.raises(outbox_module._RelayFailure, match="do not open") as given_back:
            await other.relay.publish_batch()
        assert given_back.value.reason == outbox_module.UNOPENABLE
        await other.relay.close()
        event.listen(gw.engine.sync_engine, "before_cursor_execute",
                     lambda _c, _cur, sql, *_a: statements.append(sql))
        found = [e async for e in stuck_events(gw.engine, gw.keys, batch=2)]
        assert [e.tracking_id for e in found if not e.opens] == expected
        # The one a relay gave back but that opens here is told apart, not counted unopenable.
        assert [(e.tracking_id, e.given_back) for e in found if e.opens] == [
            (flagged.tracking_id, True)]
        reads = [s for s in statements if "FROM outbox" in s]
        assert len(reads) == 3  # 4 pending rows, 2 a read: 2, 2, then none
        assert all("LIMIT" in s and "published_at IS NULL" in s for s in reads)
    finally:
        await shut(gw, lost, other)


async def test_restore_after_the_key_is_found_publishes_it_with_its_message_id(
    settings: Settings,
) -> None:
    key = fresh_key()
    lost = keyed(settings, key, clock=FixedClock(datetime.now(UTC) - timedelta(days=2)))
    right = bootstrap.build(settings)
    assert settings.security.data_key is not None
    found = keyed(settings, settings.security.data_key, key)  # the key, found, as a previous key
    try:
        gone = await accept(lost, "lampu mati", "rs-1")
        mid = await message_id(right.engine, gone)
        await set_aside(right.engine, right.keys, mid)
        # Without the key every relay would give it back again: refused, nothing changed.
        with pytest.raises(Refused, match="LAPOR_SECURITY__PREVIOUS_DATA_KEYS"):
            await restore(right.engine, right.keys, mid)
        assert await held(right.engine) == [mid] and await in_outbox(right.engine) == {}
        [kept] = [e async for e in set_aside_events(found.engine, found.keys)]
        assert kept.opens  # listed as opening now
        async with found.engine.connect() as conn:
            stored = (await conn.execute(select(outbox_set_aside.c.body))).scalar_one()
        sent = sealing.open_event(found.keys, mid, stored, True)

        restored = await restore(found.engine, found.keys, mid)
        assert (restored.message_id, restored.tracking_id) == (mid, gone.tracking_id)
        status = await outbox_status(found.engine, count_set_aside=True)
        assert (status.pending, status.set_aside) == (1, 0)
        # It waits since it was put back, not since its commit two days ago: no lag to take
        # every replica out of the load balancer.
        assert status.lag_seconds(datetime.now(UTC)) < 60
        assert found.relay is not None
        assert await found.relay.publish_batch() == 1
        await found.relay.close()
        [message] = await drain(settings.broker.queue, 1)
        assert message.message_id == mid and message.body.decode() == sent
        assert json.loads(message.body)["tracking_id"] == gone.tracking_id
        assert (await outbox_status(found.engine)).pending == 0
        with pytest.raises(Refused, match="not set aside: it is in the outbox, published"):
            await restore(found.engine, found.keys, mid)
    finally:
        await shut(lost, right, found)


async def test_set_aside_refuses_what_opens_what_is_published_and_what_is_not_there(
    settings: Settings,
) -> None:
    gw = bootstrap.build(settings)
    try:
        first = await message_id(gw.engine, await accept(gw, "jalan rusak", "rf-1"))
        second = await message_id(gw.engine, await accept(gw, "lampu mati", "rf-2"))
        # It opens: a relay publishes it, it is not the operator's to drop.
        with pytest.raises(Refused, match="opens with this process's data keys"):
            await set_aside(gw.engine, gw.keys, first)
        assert await in_outbox(gw.engine) == {first: None, second: None}
        assert await held(gw.engine) == []
        # Unless forced.
        await set_aside(gw.engine, gw.keys, second, force=True, reason="test")
        assert await held(gw.engine) == [second]
        assert gw.relay is not None
        assert await gw.relay.publish_batch() == 1  # the first one only
        await gw.relay.close()
        assert bodies(await drain(settings.broker.queue, 1)) == ["jalan rusak"]

        with pytest.raises(Refused, match="not pending: published at"):
            await set_aside(gw.engine, gw.keys, first, force=True)
        with pytest.raises(Refused, match="already set aside"):
            await set_aside(gw.engine, gw.keys, second)
        unknown = str(uuid.uuid4())
        with pytest.raises(Refused, match="no such event in the outbox"):
            await set_aside(gw.engine, gw.keys, unknown, force=True)
        with pytest.raises(Refused, match="no event set aside under this message_id"):
            await restore(gw.engine, gw.keys, unknown)
        assert list(await in_outbox(gw.engine)) == [first] and await held(gw.engine) == [second]
        # Put back, it is published as any other (it opens: no --force needed).
        await restore(gw.engine, gw.keys, second)
        assert await gw.relay.publish_batch() == 1
        await gw.relay.close()
        assert bodies(await drain(settings.broker.queue, 1)) == ["lampu mati"]
    finally:
        await shut(gw)


async def test_set_aside_waits_for_a_publication_in_progress_and_refuses_it(
    settings: Settings,
) -> None:
    gw = bootstrap.build(settings)
    lost = keyed(settings, fresh_key())
    relay_side = create_engine(settings.database)  # another process's connection
    try:
        mid = await message_id(gw.engine, await accept(lost, "lampu mati", "pp-1"))
        async with relay_side.begin() as conn:
            # A relay (one that has the key) marks it published; not committed yet.
            await conn.execute(
                update(outbox).where(outbox.c.message_id == mid)
                .values(published_at=datetime.now(UTC), claimed_by=None, claim_expires=None)
            )
            task = asyncio.create_task(set_aside(gw.engine, gw.keys, mid))
            await asyncio.sleep(0.5)
            # It waits for the row instead of passing it by as missing, or setting aside the
            # version read before the relay's commit.
            assert not task.done()
        with pytest.raises(Refused, match="not pending: published at"):
            await task
        assert list(await in_outbox(gw.engine)) == [mid] and await held(gw.engine) == []
    finally:
        await relay_side.dispose()
        await lost.close()
        await gw.close()


async def test_set_aside_waits_for_a_relay_lease_to_end(settings: Settings) -> None:
    gw = bootstrap.build(settings)
    lost = keyed(settings, fresh_key())
    try:
        mid = await message_id(gw.engine, await accept(lost, "lampu mati", "ls-1"))
        now = datetime.now(UTC)

        async def mark(**values: Any) -> None:
            async with gw.engine.begin() as conn:
                await conn.execute(update(outbox).where(outbox.c.message_id == mid).values(**values))

        # A relay claimed it: as far as anyone here knows it is on its way to the broker.
        await mark(claimed_by="relay-x", claim_expires=now + timedelta(seconds=60))
        with pytest.raises(Refused, match="claimed by the relay relay-x until"):
            await set_aside(gw.engine, gw.keys, mid, lease_wait=0.3)
        assert list(await in_outbox(gw.engine)) == [mid] and await held(gw.engine) == []
        task = asyncio.create_task(set_aside(gw.engine, gw.keys, mid))
        await asyncio.sleep(0.3)
        assert not task.done()
        # The relay cannot open it and gives it back: it is set aside then.
        await mark(claimed_by=None, claim_expires=now + timedelta(seconds=5),
                   last_error="data-key: 1 event(s) do not open with this process's data key")
        assert (await task).message_id == mid
        assert await in_outbox(gw.engine) == {} and await held(gw.engine) == [mid]
    finally:
        await lost.close()
        await gw.close()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_set_aside_gives_up_on_a_row_locked_too_long(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outbox_module, "LOCK_WAIT", 0.3)
    gw = bootstrap.build(settings)
    lost = keyed(settings, fresh_key())
    other = create_engine(settings.database)
    try:
        mid = await message_id(gw.engine, await accept(lost, "lampu mati", "lk-1"))
        async with other.begin() as conn:
            await conn.execute(
                select(outbox.c.id).where(outbox.c.message_id == mid).with_for_update()
            )
            with pytest.raises(Refused, match="another transaction held it for more than 0.3 s"):
                await set_aside(gw.engine, gw.keys, mid)
        assert list(await in_outbox(gw.engine)) == [mid] and await held(gw.engine) == []
        await set_aside(gw.engine, gw.keys, mid)  # the lock gone, it goes
        async with gw.engine.connect() as conn:
            count = (await conn.execute(select(func.count()).select_from(outbox))).scalar_one()
        assert count == 0
    finally:
        await other.dispose()
        await lost.close()
        await gw.close()


async def test_keys_reseal_keeps_what_is_set_aside_restorable(settings: Settings) -> None:
    old, gone, new = fresh_key(), fresh_key(), fresh_key()
    before = keyed(settings, old)
    now = datetime.now(UTC)

    def row(key: SecretStr) -> dict[str, Any]:
        mid = str(uuid.uuid4())
        keys = Keys(b"i" * 32, base64.b64decode(key.get_secret_value()))
        return {"message_id": mid, "event": "created", "channel": "web",
                "routing_key": "complaint.created.web", "body": sealing.event_body(keys, mid, "{}"),
                "sealed": True, "created_at": now}

    forced, lost = row(old), row(gone)
    try:
        async with before.engine.begin() as conn:
            await conn.execute(outbox.insert(), [forced, lost])
        await set_aside(before.engine, before.keys, forced["message_id"], force=True)
        await set_aside(before.engine, before.keys, lost["message_id"])
    finally:
        await before.close()
    rotated = keyed(settings, new, old)
    try:
        report = await reseal(rotated.engine, rotated.keys, rotated.files)
        # The one a key opens is sealed under the new key; the one none opens is left as it is.
        assert (report.resealed["outbox_set_aside"], report.seen["outbox_set_aside"]) == (1, 2)
    finally:
        await rotated.close()
    retired = keyed(settings, new)  # the old key retired, as the rotation's last step
    try:
        opens = {e.message_id: e.opens async for e in set_aside_events(retired.engine, retired.keys)}
        assert opens == {forced["message_id"]: True, lost["message_id"]: False}
        await restore(retired.engine, retired.keys, forced["message_id"])
        assert list(await in_outbox(retired.engine)) == [forced["message_id"]]
    finally:
        await retired.close()
