"""Benchmark: complaints through the intake port to confirmed publication, beside raw aio-pika.

For each database (SQLite file, PostgreSQL on 127.0.0.1) the gateway takes N complaints through
``IntakeService.accept`` (C concurrent submitters) while its outbox relay runs; the clock stops
when the broker has confirmed all N. Two deployments: the relay inside the intake process (the
default), and the relay in a process of its own (``lapor-gateway relay``, the intake process with
``outbox.enabled = false``). In the same run, a raw aio-pika loop publishes the same N
bodies with publisher confirms, in batches of the relay's batch size awaited together (the same
publish pattern as the relay, so the baseline is the broker's own ceiling on this machine).

    python bench/intake.py [-n 5000] [-c 32] [--databases sqlite,postgresql]
                           [--relay inline,process[,inline-claim,none,drain]]

``--relay inline-claim`` adds the inline relay claiming every row from the table
(``outbox.handoff = false``); ``--relay none`` the intake alone (``outbox.enabled = false``, the
clock stops at the last commit): what the intake commits when nothing publishes beside it;
``--relay drain`` the relay alone: N complaints are committed first (not timed), then the clock
runs while a relay publishes the full outbox, claiming rows from the table.

Prints complaints/s for each and the ratio gateway / raw (the faster of two raw runs).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import aio_pika
import aiohttp
from pydantic import SecretStr
from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import (
    AMQP,
    broker_names,
    cleanup,
    cpu_line,
    cpu_per_item,
    cpu_snapshot,
    database,
    random_keys,
    run,
)
from gateway import bootstrap, sealing
from gateway.domain import Channel, ComplaintDraft, RawInbound, Reporter
from gateway.intake import Parser
from gateway.settings import Settings, load_settings
from gateway.storage import migrate
from gateway.storage.schema import outbox

TEXT = (
    "Jalan di depan SDN 2 Sumber berlubang besar sejak dua bulan, sudah ada pengendara motor "
    "yang jatuh. Mohon segera diperbaiki. Nomor {i}."
)
PARSER = Parser(
    "bench.plain",
    lambda raw: ComplaintDraft(
        body=raw.body.decode(), reporter=Reporter(phone=raw.metadata["sender"])
    ),
)


def _raw(i: int) -> RawInbound:
    # Every complaint from its own citizen: each meets the identity graph and dedup.
    return RawInbound(
        Channel.SMS,
        TEXT.format(i=i).encode(),
        datetime.now(UTC),
        f"bench-{i}",
        metadata={"sender": f"+62812{i:08d}"},
    )


Cpu = dict[str, float]


async def run_gateway(
    settings: Settings, n: int, concurrency: int
) -> tuple[float, Cpu, list[str]]:
    gw = bootstrap.build(settings)
    await migrate.upgrade(gw.engine)
    assert gw.relay is not None
    stop = asyncio.Event()
    await gw.relay.publish_batch()  # connect and declare before the clock starts
    relay_task = asyncio.create_task(gw.relay.run(stop))
    counter = iter(range(n))

    async def submitter() -> None:
        for i in counter:
            await gw.intake.accept(_raw(i), PARSER)

    cpu = cpu_snapshot()
    start = time.perf_counter()
    await asyncio.gather(*(submitter() for _ in range(concurrency)))
    await _published(gw, n)
    elapsed = time.perf_counter() - start
    used = cpu_per_item(cpu, cpu_snapshot(), n)
    stop.set()
    await relay_task
    async with gw.engine.connect() as conn:
        rows = await conn.execute(
            select(outbox.c.message_id, outbox.c.body, outbox.c.sealed).order_by(outbox.c.id)
        )
        # The raw loop publishes the same JSON the relay did (stored sealed).
        bodies = [sealing.open_event(gw.keys, r.message_id, r.body, r.sealed) for r in rows]
    await gw.close()
    return elapsed, used, bodies


async def _published(gw: bootstrap.Gateway, n: int) -> None:
    """Return once the relay of ``gw`` has had ``n`` events confirmed by the broker."""
    published = gw.metrics.published.labels("sms")
    while published._value.get() < n:
        await asyncio.sleep(0.002)


async def run_intake_only(settings: Settings, n: int, concurrency: int) -> tuple[float, Cpu]:
    """The intake port alone (``outbox.enabled = false``): the clock stops at the last commit."""
    outbox_off = settings.outbox.model_copy(update={"enabled": False})
    gw = bootstrap.build(settings.model_copy(update={"outbox": outbox_off}))
    await migrate.upgrade(gw.engine)
    counter = iter(range(n))

    async def submitter() -> None:
        for i in counter:
            await gw.intake.accept(_raw(i), PARSER)

    try:
        cpu = cpu_snapshot()
        start = time.perf_counter()
        await asyncio.gather(*(submitter() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
        return elapsed, cpu_per_item(cpu, cpu_snapshot(), n)
    finally:
        await gw.close()


async def run_drain(settings: Settings, n: int, concurrency: int) -> tuple[float, Cpu]:
    """The relay alone: N committed rows first, then the clock runs while the relay drains them."""
    elapsed, _ = await run_intake_only(settings, n, concurrency)
    gw = bootstrap.build(settings)
    assert gw.relay is not None
    try:
        stop = asyncio.Event()
        cpu = cpu_snapshot()
        start = time.perf_counter()
        relay_task = asyncio.create_task(gw.relay.run(stop))
        await _published(gw, n)
        elapsed = time.perf_counter() - start
        used = cpu_per_item(cpu, cpu_snapshot(), n)
        stop.set()
        await relay_task
        return elapsed, used
    finally:
        await gw.close()


async def run_split(
    settings: Settings, broker: dict[str, str], n: int, concurrency: int
) -> tuple[float, Cpu]:
    """Intake here with outbox.enabled = false; ``lapor-gateway relay`` in a child process."""
    outbox_off = settings.outbox.model_copy(update={"enabled": False})
    gw = bootstrap.build(settings.model_copy(update={"outbox": outbox_off}))
    await migrate.upgrade(gw.engine)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAPOR_")}
    env.update(
        {
            "LAPOR_DATABASE__URL": settings.database.effective_url(),
            "LAPOR_STORAGE__FILE_STORE": str(settings.storage.file_store),
            "LAPOR_OUTBOX__POLL_INTERVAL": str(settings.outbox.poll_interval),
            "LAPOR_OUTBOX__BATCH_SIZE": str(settings.outbox.batch_size),
            "LAPOR_OUTBOX__RELAY_PORT": str(port),
            "LAPOR_HTTP__HOST": "127.0.0.1",
            "LAPOR_LOGGING__LEVEL": "WARNING",
            "LAPOR_SECURITY__IDENTITY_KEY": _secret(settings.security.identity_key),
            "LAPOR_SECURITY__DATA_KEY": _secret(settings.security.data_key),
            **{f"LAPOR_BROKER__{k.upper()}": v for k, v in broker.items()},
        }
    )
    relay = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "import sys; from gateway.cli import main; sys.exit(main(['relay']))",
        env=env,
        cwd=ROOT,
    )
    try:
        await _relay_connected(port)
        counter = iter(range(n))

        async def submitter() -> None:
            for i in counter:
                await gw.intake.accept(_raw(i), PARSER)

        pids = {"relay proc": relay.pid}
        cpu = cpu_snapshot(pids)
        start = time.perf_counter()
        await asyncio.gather(*(submitter() for _ in range(concurrency)))
        while True:
            async with gw.engine.connect() as conn:
                left = (
                    await conn.execute(
                        select(func.count())
                        .select_from(outbox)
                        .where(outbox.c.published_at.is_(None))
                    )
                ).scalar_one()
            if left == 0:
                break
            await asyncio.sleep(0.005)
        elapsed = time.perf_counter() - start
        return elapsed, cpu_per_item(cpu, cpu_snapshot(pids), n)
    finally:
        relay.send_signal(signal.SIGTERM)
        await relay.wait()
        await gw.close()


def _secret(value: SecretStr | None) -> str:
    assert value is not None
    return value.get_secret_value()


async def _relay_connected(port: int) -> None:
    """Wait until the relay process answers /readyz with its broker connection up."""
    async with aiohttp.ClientSession() as http:
        for _ in range(300):
            try:
                async with http.get(f"http://127.0.0.1:{port}/readyz") as resp:
                    if (await resp.json())["checks"]["broker"]["ok"]:
                        return
            except (aiohttp.ClientError, KeyError):
                pass
            await asyncio.sleep(0.05)
    raise SystemExit("the relay process did not connect to the broker")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def run_raw(bodies: list[str], batch: int) -> tuple[float, Cpu]:
    broker = broker_names()
    conn = await aio_pika.connect(AMQP)
    try:
        ch = await conn.channel(publisher_confirms=True, on_return_raises=True)
        exchange = await ch.declare_exchange(broker["exchange"], "topic", durable=True)
        queue = await ch.declare_queue(
            broker["queue"], durable=True, arguments={"x-queue-type": "quorum"}
        )
        await queue.bind(exchange, "complaint.#")
        cpu = cpu_snapshot()
        start = time.perf_counter()
        for k in range(0, len(bodies), batch):
            await asyncio.gather(
                *(
                    exchange.publish(
                        aio_pika.Message(
                            b.encode(),
                            content_type="application/json",
                            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                            message_id=str(uuid.uuid4()),
                            type="complaint.created",
                            timestamp=datetime.now(UTC),
                        ),
                        routing_key="complaint.created.sms",
                        mandatory=True,
                    )
                    for b in bodies[k : k + batch]
                )
            )
        elapsed = time.perf_counter() - start
        return elapsed, cpu_per_item(cpu, cpu_snapshot(), len(bodies))
    finally:
        await conn.close()
        await cleanup(broker)


def make_settings(url: str, tmp: str, broker: dict[str, str], args: argparse.Namespace) -> Settings:
    return load_settings(
        ROOT / "config" / "gateway.toml",
        environ={},
        overrides={
            "database": {"url": url, "pool_size": args.c},
            "storage": {"file_store": f"{tmp}/files"},
            "broker": broker,
            "outbox": {"poll_interval": 0.005, "batch_size": args.batch},
            "logging": {"level": "WARNING"},
            "security": random_keys(),
        },
    )


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=5000, help="complaints per run")
    ap.add_argument("-c", type=int, default=32, help="concurrent submitters")
    ap.add_argument("--databases", default="sqlite,postgresql")
    ap.add_argument(
        "--relay",
        default="inline,process",
        help="where the relay runs: inline, process; for comparison inline-claim (inline with"
        " outbox.handoff = false), none (the intake alone) and drain (the relay alone)",
    )
    ap.add_argument("--batch", type=int, default=200, help="outbox relay batch size")
    args = ap.parse_args()
    print(f"N={args.n} complaints, {args.c} concurrent submitters\n")
    print(f"{'run':<44}{'seconds':>9}{'complaints/s':>14}{'vs raw':>9}")
    cpu_rows: list[tuple[str, Cpu]] = []
    for db in args.databases.split(","):
        results: list[tuple[str, float, Cpu]] = []
        bodies: list[str] = []
        for mode in args.relay.split(","):
            with tempfile.TemporaryDirectory() as tmp:
                broker = broker_names()
                try:
                    async with database(db, tmp) as url:
                        settings = make_settings(url, tmp, broker, args)
                        if mode in ("inline", "inline-claim"):
                            if mode == "inline-claim":  # the relay claims every row
                                off = settings.outbox.model_copy(update={"handoff": False})
                                settings = settings.model_copy(update={"outbox": off})
                            elapsed, used, bodies = await run_gateway(settings, args.n, args.c)
                        elif mode == "none":
                            elapsed, used = await run_intake_only(settings, args.n, args.c)
                        elif mode == "drain":
                            elapsed, used = await run_drain(settings, args.n, args.c)
                        else:
                            elapsed, used = await run_split(settings, broker, args.n, args.c)
                        label = {
                            "none": "intake only, no relay",
                            "drain": "relay only, outbox full",
                        }.get(mode, f"relay {mode}")
                        results.append((f"gateway, {db}, {label}", elapsed, used))
                finally:
                    await cleanup(broker)
        if not bodies:
            bodies = [TEXT.format(i=i) for i in range(args.n)]
        # The broker shares the machine: the baseline runs twice and the faster run counts, so
        # a noisy moment never flatters the gateway's ratio.
        raw_s, raw_cpu = min([await run_raw(bodies, args.batch) for _ in range(2)])
        raw_rate = args.n / raw_s
        for label, elapsed, used in results:
            rate = args.n / elapsed
            print(f"{label:<44}{elapsed:>9.2f}{rate:>14.0f}{rate / raw_rate:>8.0%}")
            cpu_rows.append((label, used))
        print(f"{'raw aio-pika confirmed publish':<44}{raw_s:>9.2f}{raw_rate:>14.0f}{'100%':>9}")
        cpu_rows.append(("raw aio-pika confirmed publish", raw_cpu))
    # Where the time goes: CPU per complaint on the whole machine (2 cores here), split by
    # process. "intake proc" is the bench process: the intake (and the relay, inline) or the raw
    # publisher.
    names = ("intake proc", "relay proc", "rabbitmq", "postgresql")
    print(f"\nCPU per complaint, microseconds ({os.cpu_count()} cores)")
    print(f"{'run':<44}" + "".join(f"{n:>12}" for n in (*names, "machine")) + f"{'busy':>8}")
    for label, used in cpu_rows:
        print(cpu_line(label, used, names))


if __name__ == "__main__":
    run(main())
