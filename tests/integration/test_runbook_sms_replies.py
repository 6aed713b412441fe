"""The runbook's LaporSmsRepliesFailing section played for real (docs/runbook.md).

A citizen texts 1708 through Kannel while smsbox's sendsms does not answer: the reply with the
tracking ID is tried again with back-off, then given up, and it is NOT sent when sendsms is
back; the statement the runbook gives (read from the runbook itself) queues the given-up
replies again, and they go out. If one of these fails, the runbook says something no longer
true.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from gateway import bootstrap
from gateway.settings import Settings
from gateway.storage.schema import sms_replies
from tests.support import FixedClock, free_port, serving_app, with_section

pytestmark = pytest.mark.integration

Client = Callable[..., Awaitable[TestClient[Any, Any]]]
RUNBOOK = Path(__file__).resolve().parents[2] / "docs" / "runbook.md"


def runbook_statements(section: str, marker: str) -> list[str]:
    """The SQL statements of the ```sql block of the runbook ``section`` that holds ``marker``,
    exactly as the operator copies them."""
    text = RUNBOOK.read_text()
    start = text.index(f"\n## {section}\n")
    end = text.find("\n## ", start + 1)
    blocks = re.findall(r"```sql\n(.*?)```", text[start : end if end > 0 else None], re.S)
    (block,) = [b for b in blocks if marker in b]
    lines = [line for line in block.splitlines() if not line.lstrip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


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


def kannel_mo(text: str) -> dict[str, str]:
    return {
        "p": "+6281234500002",
        "P": "1708",
        "b": text,
        "c": "0",
        "C": "utf-8",
        "I": f"mo-{uuid.uuid4().hex[:12]}",
        "i": "telkomsel",
    }


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


async def test_a_reply_is_given_up_within_minutes_and_not_sent_when_the_bridge_is_back(
    clocked: tuple[bootstrap.Gateway, FixedClock], sendsms: Sendsms, aiohttp_client: Client
) -> None:
    gateway, clock = clocked
    sms = gateway.settings.sms
    assert (sms.sender_max_attempts, sms.sender_backoff_initial) == (8, 2.0)  # the defaults
    assert gateway.sms is not None and gateway.sms.sender is not None
    sender = gateway.sms.sender
    client = await aiohttp_client(bootstrap.build_app(gateway))
    resp = await client.get("/sms/kannel", params=kannel_mo("Jalan rusak di depan SD Negeri 3"))
    assert resp.status == 200
    (row,) = await replies(gateway)
    assert row.status == "pending" and row.kind == "receipt" and row.tracking_id

    first_attempt = clock.now
    while row.status == "pending":  # sendsms refuses the connection at every attempt
        assert await sender.send_batch() == 0
        (row,) = await replies(gateway)
        clock.now = max(clock.now, row.next_attempt_at)
    given_up_after = clock.now - first_attempt
    # "about 4 minutes at the defaults": 2 + 4 + ... + 128 s between the 8 attempts.
    assert given_up_after == timedelta(seconds=254)
    assert row.status == "failed" and row.attempts == 8
    assert "Cannot connect" in row.reason
    assert count(gateway, "retry") == 7 and count(gateway, "failed") == 1
    assert count(gateway, "sent") == 0

    async with serving_app(sendsms.app(), sendsms.port):
        clock.now += timedelta(hours=1)
        assert await sender.send_batch() == 0  # not by itself: the citizen still waits
        assert sendsms.taken == []
        (row,) = await replies(gateway)
        assert row.status == "failed"
    await sender.close()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # the runbook's SQL
async def test_the_runbooks_statement_sends_the_given_up_replies(
    settings: Settings, sendsms: Sendsms, aiohttp_client: Client
) -> None:
    gateway = bootstrap.build(
        with_sendsms(settings, sendsms, sender_max_attempts=1, sender_backoff_initial=0.01)
    )
    try:
        assert gateway.sms is not None and gateway.sms.sender is not None
        sender = gateway.sms.sender
        client = await aiohttp_client(bootstrap.build_app(gateway))
        for text in ("Jalan rusak di depan SD Negeri 3", "Lampu jalan mati di gang melati"):
            mo = kannel_mo(text)
            mo["p"] = f"+62812345{uuid.uuid4().int % 100000:05d}"
            assert (await client.get("/sms/kannel", params=mo)).status == 200
        assert await sender.send_batch() == 0  # sendsms is not there: both given up
        assert {r.status for r in await replies(gateway)} == {"failed"}

        async with serving_app(sendsms.app(), sendsms.port):
            assert await sender.send_batch() == 0
            statements = runbook_statements("LaporSmsRepliesFailing", "UPDATE sms_replies")
            async with gateway.engine.begin() as conn:
                results = [await conn.exec_driver_sql(s) for s in statements]
            assert results[-1].rowcount == 2
            assert await sender.send_batch() == 2
            assert len(sendsms.taken) == 2
            assert all("No. lacak" in text for text in sendsms.taken)
        rows = await replies(gateway)
        assert {r.status for r in rows} == {"sent"}
        assert count(gateway, "sent") == 2
        await sender.close()
    finally:
        await gateway.close()
