"""The reply outbox and its sender on both databases, against HTTP endpoints that answer as
Jasmin's ``/send`` and the Android app's ``/messages`` are documented to (no Jasmin or Android
phone runs here; Kannel's sendsms is exercised for real in ``test_kannel_replies_live.py``)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import pytest
from aiohttp import web
from pydantic import SecretStr
from sqlalchemy import select

from channels.sms.message import Bridge
from channels.sms.ports import NewReply
from gateway import bootstrap
from gateway.settings import Settings
from gateway.storage.schema import sms_replies
from tests.support import FixedClock, free_port

pytestmark = pytest.mark.integration


@dataclass
class Endpoint:
    """Records what it gets; answers from a script (status, body), then 200/202."""

    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    script: list[tuple[int, str]] = field(default_factory=list)

    async def jasmin(self, request: web.Request) -> web.Response:
        form = {k: v[0] for k, v in parse_qs((await request.read()).decode()).items()}
        self.requests.append(("jasmin", form))
        status, body = self.script.pop(0) if self.script else (200, f'Success "{uuid.uuid4()}"')
        return web.Response(status=status, text=body)

    async def android(self, request: web.Request) -> web.Response:
        doc = await request.json()
        doc["authorization"] = request.headers.get("Authorization")
        self.requests.append(("android", doc))
        status, body = self.script.pop(0) if self.script else (202, '{"state": "Pending"}')
        return web.Response(status=status, text=body, content_type="application/json")


@pytest.fixture
async def endpoint() -> AsyncIterator[tuple[Endpoint, int]]:
    ep = Endpoint()
    app = web.Application()
    app.router.add_post("/send", ep.jasmin)
    app.router.add_post("/3rdparty/v1/messages", ep.android)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield ep, port
    await runner.cleanup()


@pytest.fixture
def clock() -> FixedClock:
    """The gateway's clock: back-offs and leases run out when a test moves it."""
    return FixedClock(datetime(2026, 11, 26, 2, 0, tzinfo=UTC))


@pytest.fixture
async def gw(
    settings: Settings, endpoint: tuple[Endpoint, int], clock: FixedClock
) -> AsyncIterator[bootstrap.Gateway]:
    _, port = endpoint
    sms = settings.sms.model_copy(
        update={
            "jasmin_send_url": f"http://127.0.0.1:{port}/send",
            "jasmin_password": SecretStr("jasmin-pass"),
            "jasmin_token": SecretStr("jt"),
            "android_send_url": f"http://127.0.0.1:{port}/3rdparty/v1/messages",
            "android_username": "ABCDEF",
            "modem_password": SecretStr("modem-pass"),
            "callback_url": "http://gateway.internal:8080",
            "sender_backoff_initial": 0.05,
            "sender_max_attempts": 3,
        }
    )
    gateway = bootstrap.build(settings.model_copy(update={"sms": sms}), clock=clock)
    yield gateway
    await gateway.close()


def reply(bridge: Bridge, n: int = 0, recipient: str = "+6281200000001") -> NewReply:
    return NewReply(
        raw_inbound_id=str(uuid.uuid4()),
        bridge=bridge,
        recipient=recipient,
        sender_key=f"+62812{n:08d}",
        kind="receipt",
        body=f"LAPOR! Laporan diterima. No. lacak: K7QM-4XRT{n % 10}.",
        deliver=True,
        service_number="1708",
        smsc="smppc_telkomsel",
        tracking_id="K7QM4XRTX",
    )


async def rows(gw: bootstrap.Gateway) -> list[Any]:
    async with gw.engine.connect() as conn:
        return list((await conn.execute(select(sms_replies).order_by(sms_replies.c.id))).all())


async def test_jasmin_send_form_and_message_id_kept_for_reports(
    gw: bootstrap.Gateway, endpoint: tuple[Endpoint, int]
) -> None:
    ep, _ = endpoint
    assert gw.sms is not None and gw.sms.outbox is not None and gw.sms.sender is not None
    decision = await gw.sms.outbox.enqueue(reply(Bridge.JASMIN))
    assert await gw.sms.sender.send_batch() == 1
    ((kind, form),) = ep.requests
    assert kind == "jasmin" and form == {
        "username": "lapor",
        "password": "jasmin-pass",
        "to": "+6281200000001",
        "from": "1708",
        "content": "LAPOR! Laporan diterima. No. lacak: K7QM-4XRT0.",
        "coding": "0",
        "dlr": "yes",
        "dlr-url": f"http://gateway.internal:8080/sms/jasmin/dlr?reply={decision.reply_id}&token=jt",
        "dlr-level": "3",
        "dlr-method": "POST",
    }
    (row,) = await rows(gw)
    assert row.id == decision.reply_id and row.status == "sent" and row.provider_ref
    assert row.attempts == 1 and row.sent_at is not None and row.claimed_by is None
    assert await gw.sms.sender.send_batch() == 0  # sent once
    await gw.sms.sender.close()


async def test_android_json_with_our_id_and_basic_auth(
    gw: bootstrap.Gateway, endpoint: tuple[Endpoint, int]
) -> None:
    ep, _ = endpoint
    assert gw.sms is not None and gw.sms.outbox is not None and gw.sms.sender is not None
    decision = await gw.sms.outbox.enqueue(reply(Bridge.ANDROID))
    assert await gw.sms.sender.send_batch() == 1
    ((kind, doc),) = ep.requests
    assert doc == {
        "id": f"lapor-{decision.reply_id}",
        "textMessage": {"text": "LAPOR! Laporan diterima. No. lacak: K7QM-4XRT0."},
        "phoneNumbers": ["+6281200000001"],
        "withDeliveryReport": True,
        "authorization": "Basic QUJDREVGOm1vZGVtLXBhc3M=",  # ABCDEF:modem-pass
    }
    (row,) = await rows(gw)
    assert row.status == "sent" and row.provider_ref == f"lapor-{decision.reply_id}"
    await gw.sms.sender.close()


async def test_android_reply_leaves_through_the_sim_the_message_came_in_on(
    gw: bootstrap.Gateway, endpoint: tuple[Endpoint, int]
) -> None:
    # The MO's webhook said simNumber 2 (kept as smsc "sim2"): without simNumber the app
    # answers from its default SIM, or round robin, another number on a dual-SIM phone.
    ep, _ = endpoint
    assert gw.sms is not None and gw.sms.outbox is not None and gw.sms.sender is not None
    await gw.sms.outbox.enqueue(replace(reply(Bridge.ANDROID, 1), smsc="sim2"))
    await gw.sms.outbox.enqueue(replace(reply(Bridge.ANDROID, 2), smsc="sim0"))
    await gw.sms.outbox.enqueue(replace(reply(Bridge.ANDROID, 3), smsc=None))
    assert await gw.sms.sender.send_batch() == 3
    sims = sorted(
        ((doc["textMessage"]["text"][-2], doc.get("simNumber")) for _, doc in ep.requests),
        key=str,
    )
    assert sims == [("1", 2), ("2", None), ("3", None)]
    await gw.sms.sender.close()


async def test_retry_with_backoff_then_give_up_or_refuse_for_good(
    gw: bootstrap.Gateway, endpoint: tuple[Endpoint, int], clock: FixedClock
) -> None:
    ep, _ = endpoint
    assert gw.sms is not None and gw.sms.outbox is not None and gw.sms.sender is not None
    sender = gw.sms.sender
    backoff = timedelta(seconds=0.05)  # sender_backoff_initial, doubled after each failure
    # Two failures, then the bridge takes it: sent at the third attempt.
    ep.script = [(500, 'Error "Cannot send submit_sm"'), (500, "again")]
    await gw.sms.outbox.enqueue(reply(Bridge.JASMIN, 1))
    assert await sender.send_batch() == 0
    (row,) = await rows(gw)
    assert row.status == "pending" and row.attempts == 1 and "HTTP 500" in row.last_error
    assert await sender.send_batch() == 0 and len(ep.requests) == 1  # not due yet: backing off
    clock.now += backoff
    assert await sender.send_batch() == 0 and len(ep.requests) == 2  # second 500
    clock.now += backoff
    assert await sender.send_batch() == 0 and len(ep.requests) == 2  # the back-off doubled
    clock.now += backoff
    assert await sender.send_batch() == 1  # third attempt goes through
    (row,) = await rows(gw)
    assert row.status == "sent" and row.attempts == 3
    # Every attempt fails: after sender_max_attempts (3) the reply is given up, with the reason.
    ep.requests.clear()
    ep.script = [(500, "down"), (503, "still down"), (500, "down for good")]
    await gw.sms.outbox.enqueue(reply(Bridge.JASMIN, 2))
    for wait in (backoff, 2 * backoff):
        assert await sender.send_batch() == 0
        assert (await rows(gw))[1].status == "pending"
        clock.now += wait
    assert await sender.send_batch() == 0
    given_up = (await rows(gw))[1]
    assert given_up.status == "failed" and given_up.attempts == 3
    assert "HTTP 500: down for good" in given_up.reason
    clock.now += timedelta(hours=1)
    assert await sender.send_batch() == 0 and len(ep.requests) == 3  # never tried again
    # 400 is a refusal that will not change: failed at once, with the reason.
    ep.script = [(400, 'Error "Argument to has an invalid value"')]
    await gw.sms.outbox.enqueue(reply(Bridge.JASMIN, 3))
    assert await sender.send_batch() == 0
    failed = (await rows(gw))[2]
    assert failed.status == "failed" and "HTTP 400" in failed.reason and failed.attempts == 1
    await sender.close()


async def test_a_sent_reply_is_recorded_through_a_database_blip_and_not_sent_again(
    gw: bootstrap.Gateway,
    endpoint: tuple[Endpoint, int],
    clock: FixedClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ep, _ = endpoint
    assert gw.sms is not None and gw.sms.outbox is not None and gw.sms.sender is not None
    outbox, sender = gw.sms.outbox, gw.sms.sender
    await outbox.enqueue(reply(Bridge.JASMIN))
    real = outbox.mark_sent
    failures = [RuntimeError("connection reset"), RuntimeError("connection reset")]

    async def flaky(reply_id: int, owner: str, provider_ref: str | None) -> None:
        if failures:
            raise failures.pop(0)
        await real(reply_id, owner, provider_ref)

    monkeypatch.setattr(outbox, "mark_sent", flaky)
    assert await sender.send_batch() == 1
    assert not failures and len(ep.requests) == 1
    (row,) = await rows(gw)
    assert row.status == "sent" and row.claimed_by is None and row.provider_ref
    clock.now += timedelta(hours=1)  # long past the lease: nothing goes out again
    assert await sender.send_batch() == 0 and len(ep.requests) == 1
    await sender.close()


async def test_recording_a_sent_reply_is_not_retried_past_its_lease(
    gw: bootstrap.Gateway,
    endpoint: tuple[Endpoint, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The lease runs from the claim: a slow bridge has used most of it before the reply is
    # recorded, and a retry after it ended could find another replica sending the reply again.
    ep, _ = endpoint
    assert gw.sms is not None and gw.sms.outbox is not None and gw.sms.sender is not None
    outbox, sender = gw.sms.outbox, gw.sms.sender
    lease, slow = 2.0, 1.8
    monkeypatch.setattr(sender, "_settings", replace(sender._settings, sender_claim_timeout=lease))
    loop = asyncio.get_running_loop()
    client = sender._bridges[Bridge.JASMIN]
    real_claim, real_send = outbox.claim, client.send
    claimed: list[float] = []
    attempts: list[float] = []

    async def claim(*args: Any) -> Any:
        claimed.append(loop.time())
        return await real_claim(*args)

    async def slow_send(*args: Any) -> str | None:
        await asyncio.sleep(slow)  # the bridge takes it, late
        return await real_send(*args)

    async def down(reply_id: int, owner: str, provider_ref: str | None) -> None:
        attempts.append(loop.time())
        raise RuntimeError("connection reset")

    monkeypatch.setattr(outbox, "claim", claim)
    monkeypatch.setattr(client, "send", slow_send)
    monkeypatch.setattr(outbox, "mark_sent", down)
    await outbox.enqueue(reply(Bridge.JASMIN))
    with pytest.raises(RuntimeError, match="connection reset"):
        await sender.send_batch()
    assert len(ep.requests) == 1 and attempts
    assert max(attempts) < claimed[0] + lease, [round(a - claimed[0], 2) for a in attempts]
    await sender.close()


async def test_two_senders_share_the_outbox_and_send_each_reply_once(
    gw: bootstrap.Gateway, endpoint: tuple[Endpoint, int]
) -> None:
    ep, _ = endpoint
    assert gw.sms is not None and gw.sms.outbox is not None and gw.sms.sender is not None
    for n in range(150):
        await gw.sms.outbox.enqueue(reply(Bridge.ANDROID, n, recipient=f"+62812{n:08d}"))
    other = bootstrap.build(gw.settings, clock=gw.clock)  # one clock for both replicas
    assert other.sms is not None and other.sms.sender is not None
    senders = [gw.sms.sender, other.sms.sender]
    try:
        while True:
            sent = await asyncio.gather(*(s.send_batch() for s in senders))
            if sum(sent) == 0:
                break
    finally:
        for s in senders:
            await s.close()
        await other.close()
    ids = [doc["id"] for _, doc in ep.requests]
    assert len(ids) == 150 and len(set(ids)) == 150
    assert {r.status for r in await rows(gw)} == {"sent"}


async def test_redelivered_mo_never_queues_a_second_reply(gw: bootstrap.Gateway) -> None:
    assert gw.sms is not None and gw.sms.outbox is not None
    first = reply(Bridge.JASMIN)
    a = await gw.sms.outbox.enqueue(first)
    b = await gw.sms.outbox.enqueue(first)
    racing = await asyncio.gather(*(gw.sms.outbox.enqueue(first) for _ in range(5)))
    assert a.created and not b.created and b.reply_id == a.reply_id
    assert {d.reply_id for d in racing} == {a.reply_id}
    assert len(await rows(gw)) == 1
    counts = await gw.sms.outbox.counts()
    assert counts.by_status == {"pending": 1} and counts.oldest_pending is not None


async def test_flood_allowance_holds_for_replies_written_in_one_batch(
    gw: bootstrap.Gateway,
) -> None:
    assert gw.sms is not None and gw.sms.outbox is not None
    same_sender = [
        NewReply(
            raw_inbound_id=str(uuid.uuid4()),
            bridge=Bridge.JASMIN,
            recipient="+6281200000077",
            sender_key="+6281200000077",
            kind="receipt",
            body=f"LAPOR! {n}",
            deliver=True,
        )
        for n in range(12)
    ]
    decisions = await asyncio.gather(*(gw.sms.outbox.enqueue(r) for r in same_sender))
    statuses = [d.status.value for d in decisions]
    assert statuses.count("pending") == 5 and statuses.count("suppressed") == 7
    assert len({d.reply_id for d in decisions}) == 12
