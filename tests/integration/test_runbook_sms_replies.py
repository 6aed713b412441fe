"""The runbook's LaporSmsRepliesFailing section played for real (docs/runbook.md).

A citizen texts 1708 through Kannel while smsbox's sendsms does not answer: the reply with the
tracking ID is tried again with back-off, every 5 minutes at most, and goes out when sendsms
is back; only a reply older than ``sms.sender_give_up_after`` (a day) is given up, and is not
sent by itself; the command the runbook gives (``lapor-gateway sms requeue``) queues given-up
replies again, and they go out. If one of these fails, the runbook says something no longer
true.
"""

from __future__ import annotations

import argparse
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from gateway import bootstrap, cli
from gateway.settings import Settings
from gateway.storage.schema import sms_replies
from tests.support import FixedClock, free_port, kannel_mo, serving_app, with_section

pytestmark = pytest.mark.integration

Client = Callable[..., Awaitable[TestClient[Any, Any]]]
RUNBOOK = Path(__file__).resolve().parents[2] / "docs" / "runbook.md"


class Sendsms:
    """smsbox's sendsms as the gateway sees it: absent until :meth:`up`, then it takes all."""

    def __init__(self) -> None:
        self.port = free_port()
        self.taken: list[str] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.taken.append(request.query["text"])
        return web.Response(status=202, text="0: Accepted for delivery")

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/cgi-bin/sendsms", self.handle)
        return app


@pytest.fixture
def sendsms() -> Sendsms:
    return Sendsms()



def with_sendsms(settings: Settings, sendsms: Sendsms, **sms: Any) -> Settings:
    return with_section(
        settings,
        "sms",
        kannel_sendsms_url=f"http://127.0.0.1:{sendsms.port}/cgi-bin/sendsms",
        **sms,
    )


async def replies(gateway: bootstrap.Gateway) -> list[Any]:
    async with gateway.engine.connect() as conn:
        return list((await conn.execute(select(sms_replies).order_by(sms_replies.c.id))).all())


def count(gateway: bootstrap.Gateway, outcome: str) -> float:
    """lapor_sms_replies_total{bridge="kannel", outcome=...}, what LaporSmsRepliesFailing reads."""
    value = gateway.metrics.registry.get_sample_value(
        "lapor_sms_replies_total", {"bridge": "kannel", "outcome": outcome}
    )
    return value or 0.0


@pytest.fixture
async def clocked(
    settings: Settings, sendsms: Sendsms
) -> AsyncIterator[tuple[bootstrap.Gateway, FixedClock]]:
    clock = FixedClock(datetime(2026, 12, 5, 1, 0, tzinfo=UTC))
    # The reply settings of config/gateway.toml as shipped: the back-off the runbook quotes.
    gateway = bootstrap.build(with_sendsms(settings, sendsms), clock=clock)
    yield gateway, clock
    await gateway.close()


async def test_a_reply_is_tried_while_the_bridge_is_down_and_sent_when_it_is_back(
    clocked: tuple[bootstrap.Gateway, FixedClock], sendsms: Sendsms, aiohttp_client: Client
) -> None:
    gateway, clock = clocked
    sms = gateway.settings.sms
    assert (sms.sender_max_attempts, sms.sender_give_up_after) == (0, 86400.0)  # the defaults
    assert gateway.sms is not None and gateway.sms.sender is not None
    sender = gateway.sms.sender
    client = await aiohttp_client(bootstrap.build_app(gateway))
    resp = await client.get("/sms/kannel", params=kannel_mo("Jalan rusak di depan SD Negeri 3"))
    assert resp.status == 200
    (row,) = await replies(gateway)
    assert row.status == "pending" and row.kind == "receipt" and row.tracking_id

    queued = clock.now
    waits: list[float] = []  # from each try to the next one the row is given
    while clock.now < queued + timedelta(hours=2):  # sendsms refuses every connection
        assert await sender.send_batch() == 0
        (row,) = await replies(gateway)
        assert row.status == "pending" and "Cannot connect" in row.last_error
        waits.append((row.next_attempt_at - clock.now).total_seconds())
        clock.now = max(clock.now, row.next_attempt_at)
    # The back-off doubles from 2 s up to 300 s: a try every 5 minutes after the first ones.
    doubling = [2.0 * 2**n for n in range(8)]  # 2 s ... 256 s
    assert waits[: len(doubling)] == doubling, waits
    assert waits[len(doubling) :] and set(waits[len(doubling) :]) == {300.0}, waits
    assert count(gateway, "failed") == 0 and count(gateway, "retry") == row.attempts == len(waits)

    async with serving_app(sendsms.app(), sendsms.port):
        clock.now = row.next_attempt_at
        assert await sender.send_batch() == 1  # the bridge is back: the citizen gets it
        assert len(sendsms.taken) == 1 and "No. lacak" in sendsms.taken[0]
    (row,) = await replies(gateway)
    assert row.status == "sent"
    await sender.close()


async def test_a_reply_is_given_up_once_older_than_the_give_up_time(
    settings: Settings, sendsms: Sendsms, aiohttp_client: Client
) -> None:
    clock = FixedClock(datetime(2026, 12, 5, 1, 0, tzinfo=UTC))
    gateway = bootstrap.build(
        with_sendsms(settings, sendsms, sender_give_up_after=600.0), clock=clock
    )
    try:
        assert gateway.sms is not None and gateway.sms.sender is not None
        sender = gateway.sms.sender
        client = await aiohttp_client(bootstrap.build_app(gateway))
        assert (await client.get("/sms/kannel", params=kannel_mo("Lampu mati"))).status == 200
        (row,) = await replies(gateway)
        while row.status == "pending":
            assert await sender.send_batch() == 0
            (row,) = await replies(gateway)
            assert row.next_attempt_at <= row.created_at + timedelta(seconds=600)
            clock.now = max(clock.now, row.next_attempt_at)
        assert row.status == "failed" and "Cannot connect" in row.reason
        assert clock.now <= row.created_at + timedelta(seconds=600)
        assert count(gateway, "failed") == 1
        async with serving_app(sendsms.app(), sendsms.port):
            clock.now += timedelta(hours=1)
            assert await sender.send_batch() == 0  # given up: not by itself
        # Queued again while the bridge is still down: tries for a whole give-up time again,
        # not one try and failed at once for being old.
        args = {"action": "requeue", "since": row.created_at, "bridge": None, "dry_run": False}
        assert await cli._sms(gateway.settings, argparse.Namespace(**args)) == 0
        clock.now = datetime.now(UTC) + timedelta(seconds=1)  # the command's clock: the real one
        assert await sender.send_batch() == 0
        (row,) = await replies(gateway)
        assert row.status == "pending" and row.attempts == 1
        await sender.close()
    finally:
        await gateway.close()


async def test_the_runbooks_requeue_command_sends_the_given_up_replies(
    settings: Settings, sendsms: Sendsms, aiohttp_client: Client
) -> None:
    section = RUNBOOK.read_text().split("\n## LaporSmsRepliesFailing\n", 1)[1].split("\n## ")[0]
    assert "lapor-gateway sms requeue --since" in section
    gateway = bootstrap.build(
        with_sendsms(settings, sendsms, sender_max_attempts=1, sender_backoff_initial=0.01)
    )
    try:
        assert gateway.sms is not None and gateway.sms.sender is not None
        sender = gateway.sms.sender
        client = await aiohttp_client(bootstrap.build_app(gateway))
        start = datetime.now(UTC) - timedelta(seconds=1)
        for text in ("Jalan rusak di depan SD Negeri 3", "Lampu jalan mati di gang melati"):
            mo = kannel_mo(text)
            mo["p"] = f"+62812345{uuid.uuid4().int % 100000:05d}"
            assert (await client.get("/sms/kannel", params=mo)).status == 200
        assert await sender.send_batch() == 0  # sendsms is not there: both given up
        assert {r.status for r in await replies(gateway)} == {"failed"}

        def requeue(**extra: Any) -> argparse.Namespace:
            args = {"action": "requeue", "since": start, "bridge": "kannel", "dry_run": False}
            return argparse.Namespace(**(args | extra))

        async with serving_app(sendsms.app(), sendsms.port):
            assert await sender.send_batch() == 0
            assert await cli._sms(gateway.settings, requeue(dry_run=True)) == 0
            assert {r.status for r in await replies(gateway)} == {"failed"}  # a dry run
            assert await cli._sms(gateway.settings, requeue(bridge="jasmin")) == 0
            assert {r.status for r in await replies(gateway)} == {"failed"}  # another bridge's
            assert await cli._sms(gateway.settings, requeue()) == 0
            assert await sender.send_batch() == 2
            assert len(sendsms.taken) == 2
            assert all("No. lacak" in text for text in sendsms.taken)
        rows = await replies(gateway)
        assert {r.status for r in rows} == {"sent"}
        assert count(gateway, "sent") == 2
        await sender.close()
    finally:
        await gateway.close()
