"""Benchmark: a real Kannel delivering N SMS into the gateway, beside the same Kannel into a sink.

For each database, two runs in the same process, the same way:

1. bearerbox starts alone and N MOs (each from its own number, each text unique) are injected
   through Kannel's HTTP SMSC, so they wait queued in bearerbox;
2. smsbox starts and delivers the queue to its ``get-url`` with up to ``max-pending-requests``
   parallel keep-alive connections; the clock runs from smsbox's first request to the N-th
   answer.

The receivers: a trivial asyncio sink (aiohttp handler answering ``200`` with an empty body),
then the gateway (``/sms/kannel``: raw inbound, parse, identity, dedup, complaint and outbox row
committed, reply queued, ``200``), with its outbox relay publishing to RabbitMQ and its reply
sender sending receipts back through smsbox ``sendsms``, as in production.

    python bench/sms.py [-n 2000] [--databases sqlite,postgresql] [--reply-mode outbox|body]

Prints messages/s for each and the ratio gateway / sink (target: >= 80 %).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
from aiohttp import web
from pydantic import SecretStr

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
)
from bench.common import run as run_bench
from gateway import bootstrap
from gateway.settings import load_settings
from gateway.storage import migrate
from tests.channels.sms.kannel_harness import (
    HTTP_SMSC_PASSWORD,
    HTTP_SMSC_USER,
    SENDSMS_PASSWORD,
    SENDSMS_USER,
    Kannel,
    installed,
)
from tests.support import free_port

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Cpu = dict[str, float]


class Counter:
    """Counts the answers given to smsbox and notes the first request and the N-th answer."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.count = 0
        self.errors = 0
        self.first: float | None = None
        self.done = asyncio.Event()
        self.last = 0.0

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self.first is None:
            self.first = time.perf_counter()
        response = await handler(request)
        if request.path == "/sms/kannel":
            if response.status == 200:
                self.count += 1
            else:
                self.errors += 1
            if self.count >= self.n and not self.done.is_set():
                self.last = time.perf_counter()
                self.done.set()
        return response

    @property
    def seconds(self) -> float:
        assert self.first is not None
        return self.last - self.first


async def inject(kannel: Kannel, n: int, tag: str) -> None:
    """N unique MOs into bearerbox through its HTTP SMSC (smsbox not connected yet)."""
    async with aiohttp.ClientSession() as session:
        gate = asyncio.Semaphore(32)

        async def one(i: int) -> None:
            query = urlencode(
                {
                    "username": HTTP_SMSC_USER,
                    "password": HTTP_SMSC_PASSWORD,
                    "from": f"+62815{i:08d}",
                    "to": "1708",
                    "text": f"Laporan {tag}-{i}: lampu jalan gang {i} mati sejak pekan lalu",
                    "coding": "0",
                }
            )
            async with gate, session.get(f"{kannel.http_smsc_url}?{query}") as resp:
                assert resp.status == 202, await resp.text()

        await asyncio.gather(*(one(i) for i in range(n)))


async def mt_sink(port: int) -> web.AppRunner:
    """Where Kannel's HTTP SMSC sends MTs (the replies of the gateway run)."""

    async def mt(request: web.Request) -> web.Response:
        return web.Response(text="Sent.", content_type="text/plain")

    app = web.Application()
    app.router.add_get("/mt", mt)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=2048).start()
    return runner


AppFactory = Callable[[Kannel, int], Awaitable[web.Application]]


async def run(
    workdir: Path,
    n: int,
    tag: str,
    make_app: AppFactory,
    before_smsbox: Callable[[], Awaitable[None]] | None = None,
    after_delivery: Callable[[], Awaitable[None]] | None = None,
) -> tuple[float, Cpu]:
    """One Kannel delivering N queued MOs into ``make_app``'s app: seconds, first to N-th, and
    CPU per message from smsbox's start to the N-th answer, by process."""
    port, sink_port = free_port(), free_port()
    await asyncio.to_thread(workdir.mkdir)
    kannel = Kannel(
        workdir,
        f"http://127.0.0.1:{port}/sms/kannel?",
        mt_sink_url=f"http://127.0.0.1:{sink_port}/mt",
    )
    counter = Counter(n)
    app = await make_app(kannel, port)
    app.middlewares.append(counter.middleware)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=2048).start()
    sink = await mt_sink(sink_port)
    try:
        await asyncio.to_thread(kannel.start_bearerbox)
        await inject(kannel, n, tag)
        if before_smsbox is not None:
            await before_smsbox()
        before = cpu_snapshot({"bearerbox": kannel.processes[0].pid})
        await asyncio.to_thread(kannel.start_smsbox)
        await asyncio.wait_for(counter.done.wait(), timeout=max(120.0, n / 20))
        boxes = dict(zip(("bearerbox", "smsbox"), (p.pid for p in kannel.processes), strict=True))
        used = cpu_per_item(before, cpu_snapshot(boxes), n)
        if counter.errors:
            print(f"    {counter.errors} answers other than 200 (smsbox retried them)")
        return counter.seconds, used
    finally:
        if after_delivery is not None:
            await after_delivery()
        await asyncio.to_thread(kannel.stop)
        await runner.cleanup()
        await sink.cleanup()


async def sink_run(workdir: Path, n: int) -> tuple[float, Cpu]:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(text="", content_type="text/plain")

    async def make_app(kannel: Kannel, port: int) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/sms/kannel", handler)
        return app

    return await run(workdir, n, "sink", make_app)


async def gateway_run(
    workdir: Path, n: int, url: str, reply_mode: str
) -> tuple[float, Cpu, int, int]:
    broker = broker_names()
    holder: list[bootstrap.Gateway] = []
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []

    async def make_app(kannel: Kannel, port: int) -> web.Application:
        settings = load_settings(
            ROOT / "config" / "gateway.toml",
            environ={},
            overrides={
                "database": {"url": url, "pool_size": 20},
                "storage": {"file_store": str(workdir.parent / "files")},
                "broker": broker,
                "logging": {"level": "WARNING"},
                "security": random_keys(),
                "sms": {
                    "reply_mode": reply_mode,
                    "kannel_sendsms_url": kannel.sendsms_url,
                    "kannel_sendsms_username": SENDSMS_USER,
                    "callback_url": f"http://127.0.0.1:{port}",
                },
            },
        )
        sms = settings.sms.model_copy(
            update={"kannel_sendsms_password": SecretStr(SENDSMS_PASSWORD)}
        )
        gw = bootstrap.build(settings.model_copy(update={"sms": sms}))
        holder.append(gw)
        await migrate.upgrade(gw.engine)
        return bootstrap.build_app(gw)

    async def start_background() -> None:
        gw = holder[0]
        assert gw.relay is not None and gw.sms is not None and gw.sms.sender is not None
        await gw.relay.publish_batch()  # connect and declare before the clock starts
        tasks.append(asyncio.create_task(gw.relay.run(stop)))
        tasks.append(asyncio.create_task(gw.sms.sender.run(stop)))

    published = 0

    async def drain_and_stop() -> None:
        # Wait for the relay to publish everything and the replies to go out, then stop both.
        nonlocal published
        gw = holder[0]
        for _ in range(600):
            value = gw.metrics.registry.get_sample_value(
                "lapor_outbox_published_total", {"channel": "sms"}
            )
            published = int(value or 0)
            counts = await gw.sms.outbox.counts() if gw.sms and gw.sms.outbox else None
            if published >= n and (counts is None or not counts.by_status.get("pending")):
                break
            await asyncio.sleep(0.1)
        stop.set()
        await asyncio.gather(*tasks)

    try:
        seconds, used = await run(workdir, n, "gw", make_app, start_background, drain_and_stop)
        complaints = await holder[0].intake.count_complaints()
        return seconds, used, complaints, published
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        if holder:
            await holder[0].close()
        await cleanup(broker)


async def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("-n", type=int, default=2000, help="messages per run")
    ap.add_argument("--databases", default="sqlite,postgresql")
    ap.add_argument("--reply-mode", choices=("outbox", "body"), default="outbox")
    args = ap.parse_args()
    if not installed():
        sys.exit("Kannel is not installed: scripts/install-system-packages")
    print(f"N={args.n} MOs queued in bearerbox, delivered by smsbox; replies: {args.reply_mode}\n")
    print(f"{'run':<44}{'seconds':>9}{'msg/s':>9}{'vs sink':>9}")
    cpu_rows: list[tuple[str, Cpu]] = []
    for db in args.databases.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            sink_s, sink_cpu = await sink_run(Path(tmp) / "sink", args.n)
            async with database(db, tmp) as url:
                gw_s, gw_cpu, complaints, published = await gateway_run(
                    Path(tmp) / "gateway", args.n, url, args.reply_mode
                )
        sink_rate, gw_rate = args.n / sink_s, args.n / gw_s
        sink_label = "Kannel -> asyncio sink (200, empty)"
        print(f"{sink_label:<44}{sink_s:>9.2f}{sink_rate:>9.0f}{'100%':>9}")
        label = f"Kannel -> gateway, {db}"
        print(f"{label:<44}{gw_s:>9.2f}{gw_rate:>9.0f}{gw_rate / sink_rate:>8.0%}")
        print(f"{'':<4}complaints stored: {complaints}, events published: {published}")
        cpu_rows += [(sink_label, sink_cpu), (label, gw_cpu)]
    # Where the time goes, from smsbox's start to the N-th answer. "this proc" is the receiver
    # (the sink, or the gateway with its relay and reply sender) and the fake MT link.
    names = ("this proc", "bearerbox", "smsbox", "rabbitmq", "postgresql")
    print(f"\nCPU per message, microseconds ({os.cpu_count()} cores)")
    print(f"{'run':<44}" + "".join(f"{n:>12}" for n in (*names, "machine")) + f"{'busy':>8}")
    for label, used in cpu_rows:
        print(cpu_line(label, {"this proc": used["intake proc"], **used}, names))


if __name__ == "__main__":
    run_bench(main())
