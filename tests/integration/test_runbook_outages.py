"""The runbook's outage sections played for real (docs/runbook.md:
LaporBrokerUnreachable, LaporOutboxLagging, LaporIntakeUnavailable, LaporRelayErrors).

A gateway (HTTP app and its relay) whose broker or PostgreSQL is cut by a TCP proxy and then
restored; the tests read what the operator reads, ``/readyz`` and ``/metrics``, and check that
the metrics the alerting rules (config/prometheus/lapor-alerts.yml) read move as the rules and
the runbook say. If one of these fails, the runbook or a rule says something no longer true.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from gateway import bootstrap
from gateway.settings import Settings
from tests.support import (
    TcpProxy,
    kannel_mo,
    pg_admin,
    scratch_postgres,
    wait_until,
    with_section,
)

pytestmark = pytest.mark.integration

Client = Callable[..., Awaitable[TestClient[Any, Any]]]


def complaint(n: int) -> dict[str, Any]:
    """A JSON API complaint; each ``n`` its own text (the same text twice is a retry)."""
    return {
        "title": f"Jalan berlubang {n}",
        "body": f"Jalan Siliwangi nomor {n} depan pasar berlubang besar, sudah {n + 2} bulan.",
        "reporter": {"name": "Siti"},
    }



async def scrape(client: TestClient[Any, Any]) -> dict[tuple[str, frozenset[Any]], float]:
    """``/metrics`` as Prometheus reads it: (sample name, labels) -> value."""
    resp = await client.get("/metrics")
    assert resp.status == 200  # the scrape itself answers: `up` stays 1, whatever is down
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(await resp.text())
        for s in family.samples
    }


def value(metrics: dict[tuple[str, frozenset[Any]], float], name: str, **labels: str) -> float:
    """One sample's value; 0 when the series does not exist (a labelled counter not yet hit)."""
    return metrics.get((name, frozenset(labels.items())), 0.0)


async def readyz(client: TestClient[Any, Any]) -> tuple[int, dict[str, Any]]:
    resp = await client.get("/readyz")
    return resp.status, await resp.json()


async def test_broker_outage_as_the_operator_sees_it(
    settings: Settings, aiohttp_client: Client
) -> None:
    proxy = TcpProxy(5672)
    await proxy.start()
    s = with_section(settings, "broker", url=f"amqp://guest@127.0.0.1:{proxy.port}/")
    s = with_section(s, "outbox", ready_max_lag=2.0)  # outbox.ready_max_lag: 300 s in production
    gateway = bootstrap.build(s)
    assert gateway.relay is not None
    stop = asyncio.Event()
    relay_task = asyncio.create_task(gateway.relay.run(stop))
    try:
        client = await aiohttp_client(bootstrap.build_app(gateway))
        assert (await client.post("/api/v1/complaints", json=complaint(1))).status == 202

        async def published(n: int) -> bool:
            return value(await scrape(client), "lapor_outbox_published_total", channel="web") == n

        await wait_until(lambda: published(1), "the first complaint is published")
        assert value(await scrape(client), "lapor_outbox_broker_connected") == 1

        await proxy.cut()

        async def disconnected() -> bool:
            return value(await scrape(client), "lapor_outbox_broker_connected") == 0

        await wait_until(disconnected, "lapor_outbox_broker_connected goes to 0")
        metrics = await scrape(client)
        # LaporBrokerUnreachable reads both: the gauge at 0 and the relays' broker errors.
        assert value(metrics, "lapor_outbox_relay_errors_total", reason="broker-unreachable") >= 1

        # Intake still commits; /readyz names the broker but keeps the replica in.
        assert (await client.post("/api/v1/complaints", json=complaint(2))).status == 202
        status, body = await readyz(client)
        assert status == 200, body
        assert body["checks"]["broker"]["ok"] is False
        # What the runbook tells the operator to look for (uvloop's words).
        assert "Connection refused" in body["checks"]["broker"]["error"]
        assert body["checks"]["outbox"]["pending"] == 1
        assert value(await scrape(client), "lapor_outbox_depth", channel="web") == 1

        # Past outbox.ready_max_lag /readyz names the lag but keeps the replica in: the lag is
        # the shared database's, and the intake still accepts (runbook, LaporOutboxLagging).
        async def lagging() -> bool:
            return (await readyz(client))[1]["checks"]["outbox"]["ok"] is False

        await wait_until(lagging, "/readyz names the lag once it passes ready_max_lag")
        status, body = await readyz(client)
        assert status == 200, body
        assert body["checks"]["database"] == {"ok": True}
        assert body["checks"]["outbox"]["ok"] is False
        assert body["checks"]["outbox"]["lag_seconds"] > 2.0
        assert body["checks"]["keys"] == {"ok": True}
        # LaporOutboxLagging reads this gauge: it grows with the wait.
        assert value(await scrape(client), "lapor_outbox_oldest_age_seconds", channel="web") > 2.0
        assert (await client.post("/api/v1/complaints", json=complaint(3))).status == 202

        # The broker back: the relay reconnects by itself and publishes the backlog.
        await proxy.start()

        async def ready() -> bool:
            return (await readyz(client))[0] == 200

        await wait_until(ready, "/readyz answers 200 again", timeout=20)
        await wait_until(lambda: published(3), "the backlog is published", timeout=20)
        metrics = await scrape(client)
        assert value(metrics, "lapor_outbox_broker_connected") == 1
        assert value(metrics, "lapor_outbox_oldest_age_seconds", channel="web") == 0
        assert value(metrics, "lapor_outbox_depth", channel="web") == 0
    finally:
        stop.set()
        await relay_task
        await proxy.cut()
        await gateway.close()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_database_outage_is_not_reported_as_a_broker_outage(
    settings: Settings, aiohttp_client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    proxy = TcpProxy(5432)
    await proxy.start()
    url = settings.database.url.replace("@127.0.0.1:5432/", f"@127.0.0.1:{proxy.port}/")
    assert url != settings.database.url
    gateway = bootstrap.build(with_section(settings, "database", url=url, connect_timeout=1.0))
    assert gateway.relay is not None
    stop = asyncio.Event()
    relay_task = asyncio.create_task(gateway.relay.run(stop))
    try:
        client = await aiohttp_client(bootstrap.build_app(gateway))
        assert (await client.post("/api/v1/complaints", json=complaint(1))).status == 202
        await wait_until(lambda: gateway.relay is not None and gateway.relay.connected, "relay up")

        await proxy.cut()
        caplog.set_level(logging.WARNING, logger="channels.web.abuse")
        resp = await client.post("/api/v1/complaints", json=complaint(2))
        assert resp.status == 503 and resp.headers["Retry-After"]  # the sender retries later
        assert any("request not counted, answered 503" in r.getMessage() for r in caplog.records)
        resp = await client.get("/sms/kannel", params=kannel_mo("Jalan rusak di depan pasar baru"))
        assert resp.status == 503  # smsbox's http-request-retry sends it again
        status, body = await readyz(client)
        assert status == 503 and body["checks"]["database"]["ok"] is False

        async def relay_failed_on_the_database() -> bool:
            metrics = await scrape(client)
            return value(metrics, "lapor_outbox_relay_errors_total", reason="database") >= 2

        await wait_until(relay_failed_on_the_database, "the relay fails on the database")
        metrics = await scrape(client)
        # What LaporIntakeUnavailable reads: the intake's retry signals (SMS), and the web
        # surfaces' 503 answers (refused at the rate-limit count, before the intake: not in
        # lapor_intake_unavailable_total).
        assert value(metrics, "lapor_intake_unavailable_total", channel="sms") >= 1
        assert (
            value(metrics, "lapor_http_responses_total", surface="api", method="POST", status="503")
            >= 1
        )
        # The relay keeps its broker channel through a database failure: the gauge and
        # /readyz's `broker` tell the broker's own state, and LaporBrokerUnreachable stays quiet.
        assert value(metrics, "lapor_outbox_broker_connected") == 1
        assert value(metrics, "lapor_outbox_relay_errors_total", reason="broker-unreachable") == 0
        status, body = await readyz(client)
        assert status == 503 and body["checks"]["broker"] == {"ok": True}
        assert value(metrics, "lapor_outbox_relay_errors_total", reason="metrics-database") >= 1

        await proxy.start()

        async def ready() -> bool:
            return (await readyz(client))[0] == 200

        await wait_until(ready, "/readyz answers 200 again", timeout=20)
        assert (await client.post("/api/v1/complaints", json=complaint(3))).status == 202
    finally:
        stop.set()
        await relay_task
        await proxy.cut()
        await gateway.close()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_read_only_database_refuses_every_commit_while_readyz_says_ready(
    settings: Settings, aiohttp_client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    async with scratch_postgres(settings, "lapor_runbook") as (s, name):
        await read_only_database(s, name, aiohttp_client, caplog)


async def read_only_database(
    s: Settings, name: str, aiohttp_client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    gateway = bootstrap.build(s)
    assert gateway.relay is not None
    stop = asyncio.Event()
    relay_task: asyncio.Task[None] | None = None
    try:
        client = await aiohttp_client(bootstrap.build_app(gateway))
        assert (await client.post("/api/v1/complaints", json=complaint(1))).status == 202
        # What a failover to a standby, or a read-only switch, does to every new session.
        await pg_admin(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
        await gateway.engine.dispose()
        caplog.set_level(logging.WARNING)
        relay_task = asyncio.create_task(gateway.relay.run(stop))
        resp = await client.post("/api/v1/complaints", json=complaint(2))
        assert resp.status == 503 and resp.headers["Retry-After"]
        resp = await client.get("/sms/kannel", params=kannel_mo("Lampu jalan mati di gang melati"))
        assert resp.status == 503
        status, body = await readyz(client)
        assert status == 200, body  # SELECT 1 works: /readyz cannot tell
        assert body["checks"]["database"] == {"ok": True}

        def logged(message: str) -> list[str]:
            return [
                str(getattr(r, "error", ""))
                for r in caplog.records
                if r.getMessage().startswith(message)
            ]

        await wait_until(lambda: logged("outbox relay failed"), "the relay logs its failure")
        # The database's own words, in the relay's lines and the intake's (SMS) lines.
        assert "read-only transaction" in logged("outbox relay failed")[-1]
        assert "read-only transaction" in logged("intake could not commit")[-1]
        metrics = await scrape(client)
        assert value(metrics, "lapor_intake_unavailable_total", channel="sms") == 1
        assert (
            value(metrics, "lapor_http_responses_total", surface="api", method="POST", status="503")
            == 1
        )

        await pg_admin(f'ALTER DATABASE "{name}" RESET default_transaction_read_only')
        await gateway.engine.dispose()
        assert (await client.post("/api/v1/complaints", json=complaint(3))).status == 202
    finally:
        stop.set()
        if relay_task is not None:
            await relay_task
        await gateway.close()
