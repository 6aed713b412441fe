"""Benchmark: the JSON API through the full path, beside a bare aiohttp handler, in one run.

The gateway app (AppRunner on a free port, SQLite file or PostgreSQL on 127.0.0.1, its outbox
relay running) takes N ``POST /api/v1/complaints`` from C concurrent HTTP clients; the clock stops
when RabbitMQ has confirmed all N. In the same run a bare aiohttp app with one handler that
parses the same JSON and answers 202 takes the same N requests from the same clients: the
ceiling of HTTP + JSON on this machine. Rate limiting is off unless ``--rate-limit``: then the
per-address and per-identity limits are on (high enough never to refuse), the gateway trusts
127.0.0.1 as a reverse proxy and every request comes "from" its own X-Forwarded-For address, so
each request counts one address and one identity bucket, as with real citizens.

    python bench/web.py [-n 2000] [-c 32] [--databases sqlite,postgresql] [--rate-limit]

Prints requests/s, p99 latency and the ratio gateway / bare.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import (
    broker_names,
    cleanup,
    cpu_line,
    cpu_per_item,
    cpu_snapshot,
    database,
    random_keys,
    run,
)
from gateway import bootstrap
from gateway.settings import load_settings
from gateway.storage import migrate
from tests.support import free_port


def complaint(i: int) -> dict[str, object]:
    """The i-th request body: each from its own citizen."""
    return {
        "title": "Jalan berlubang",
        "body": f"Jalan Siliwangi depan pasar berlubang besar nomor {i}, sudah 2 bulan.",
        "kind": "pengaduan",
        "reporter": {"name": f"Warga {i}", "phone": f"+62812{i:08d}"},
    }


Cpu = dict[str, float]


async def clients(
    base: str, n: int, c: int, forwarded: bool = False
) -> tuple[float, list[float]]:
    latencies: list[float] = []
    counter = iter(range(n))
    conn = aiohttp.TCPConnector(limit=c)
    async with aiohttp.ClientSession(connector=conn) as session:

        async def one_client() -> None:
            for i in counter:
                body = complaint(i)
                headers = {"X-Forwarded-For": f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"}
                t0 = time.perf_counter()
                async with session.post(
                    f"{base}/api/v1/complaints", json=body, headers=headers if forwarded else None
                ) as resp:
                    await resp.read()
                    assert resp.status == 202, resp.status
                latencies.append(time.perf_counter() - t0)

        start = time.perf_counter()
        await asyncio.gather(*(one_client() for _ in range(c)))
        return time.perf_counter() - start, latencies


async def bare(n: int, c: int) -> tuple[float, list[float], Cpu]:
    async def handler(request: web.Request) -> web.Response:
        data = json.loads(await request.read())
        assert isinstance(data, dict) and data["body"]
        return web.json_response({"status": "accepted"}, status=202)

    app = web.Application()
    app.router.add_post("/api/v1/complaints", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        cpu = cpu_snapshot()
        elapsed, latencies = await clients(f"http://127.0.0.1:{port}", n, c)
        return elapsed, latencies, cpu_per_item(cpu, cpu_snapshot(), n)
    finally:
        await runner.cleanup()


async def gateway(
    url: str, tmp: str, broker: dict[str, str], n: int, c: int, rate_limit: bool = False
) -> tuple[float, list[float], Cpu]:
    web_config: dict[str, object] = {
        "rate_limit_requests": 0, "rate_limit_identity_requests": 0, "csrf_key": "bench"
    }
    if rate_limit:
        web_config.update(rate_limit_requests=1_000_000, rate_limit_identity_requests=1_000_000,
                          trusted_proxies=["127.0.0.1/32"])
    settings = load_settings(
        ROOT / "config" / "gateway.toml",
        environ={},
        overrides={
            "database": {"url": url, "pool_size": c},
            "storage": {"file_store": f"{tmp}/files"},
            "broker": broker,
            "outbox": {"poll_interval": 0.005},
            "logging": {"level": "WARNING"},
            "web": web_config,
            "security": random_keys(),
        },
    )
    gw = bootstrap.build(settings)
    await migrate.upgrade(gw.engine)
    assert gw.relay is not None
    await gw.relay.publish_batch()
    stop = asyncio.Event()
    relay = asyncio.create_task(gw.relay.run(stop))
    runner = web.AppRunner(bootstrap.build_app(gw), access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        cpu = cpu_snapshot()
        start = time.perf_counter()
        _, latencies = await clients(f"http://127.0.0.1:{port}", n, c, forwarded=rate_limit)
        published = gw.metrics.published.labels("web")
        while published._value.get() < n:
            await asyncio.sleep(0.002)
        elapsed = time.perf_counter() - start
        return elapsed, latencies, cpu_per_item(cpu, cpu_snapshot(), n)
    finally:
        stop.set()
        await relay
        await runner.cleanup()
        await gw.close()


def p99(latencies: list[float]) -> float:
    return statistics.quantiles(latencies, n=100)[98] * 1000


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=2000, help="requests per run")
    ap.add_argument("-c", type=int, default=32, help="concurrent HTTP clients")
    ap.add_argument("--databases", default="sqlite,postgresql")
    ap.add_argument("--rate-limit", action="store_true", help="per-address and identity limits on")
    args = ap.parse_args()
    print(f"N={args.n} requests, {args.c} concurrent clients\n")
    print(f"{'run':<46}{'req/s':>9}{'p99 ms':>9}{'vs bare':>9}")
    bare_s, bare_lat, bare_cpu = await bare(args.n, args.c)
    bare_rate = args.n / bare_s
    bare_label = "bare aiohttp: parse JSON, 202"
    print(f"{bare_label:<46}{bare_rate:>9.0f}{p99(bare_lat):>9.1f}{'100%':>9}")
    cpu_rows = [(bare_label, bare_cpu)]
    for db in args.databases.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            broker = broker_names()
            try:
                async with database(db, tmp) as url:
                    gw_s, gw_lat, gw_cpu = await gateway(
                        url, tmp, broker, args.n, args.c, args.rate_limit
                    )
            finally:
                await cleanup(broker)
        rate = args.n / gw_s
        label = f"gateway HTTP→commit→confirm, {db}" + (" +RL" if args.rate_limit else "")
        print(f"{label:<46}{rate:>9.0f}{p99(gw_lat):>9.1f}{rate / bare_rate:>8.0%}")
        cpu_rows.append((label, gw_cpu))
    # Where the time goes: the HTTP clients share the process with the server in both runs, so
    # "this proc" is clients + server (+ the gateway's relay); the bare row is the clients' and
    # aiohttp's own part.
    names = ("this proc", "rabbitmq", "postgresql")
    print(f"\nCPU per request, microseconds ({os.cpu_count()} cores)")
    print(f"{'run':<44}" + "".join(f"{n:>12}" for n in (*names, "machine")) + f"{'busy':>8}")
    for label, used in cpu_rows:
        print(cpu_line(label[:43], {"this proc": used["intake proc"], **used}, names))


if __name__ == "__main__":
    run(main())
