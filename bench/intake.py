"""Benchmark: complaints through the intake port to confirmed publication, beside raw aio-pika.

For each database (SQLite file, PostgreSQL on 127.0.0.1) the gateway takes N complaints through
``IntakeService.accept`` (C concurrent submitters) while its outbox relay runs; the clock stops
when the broker has confirmed all N. In the same run, a raw aio-pika loop publishes the same N
bodies with publisher confirms, in batches of the relay's batch size awaited together (the same
publish pattern as the relay, so the baseline is the broker's own ceiling on this machine).

    python bench/intake.py [-n 5000] [-c 32] [--databases sqlite,postgresql]

Prints complaints/s for each and the ratio gateway / raw.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import aio_pika
from sqlalchemy import select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import AMQP, broker_names, cleanup, database, random_keys
from gateway import bootstrap
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


async def run_gateway(settings: Settings, n: int, concurrency: int) -> tuple[float, list[str]]:
    gw = bootstrap.build(settings)
    await migrate.upgrade(gw.engine)
    assert gw.relay is not None
    stop = asyncio.Event()
    await gw.relay.publish_batch()  # connect and declare before the clock starts
    relay_task = asyncio.create_task(gw.relay.run(stop))
    counter = iter(range(n))

    async def submitter() -> None:
        for i in counter:
            # Every complaint from its own citizen: each meets the identity graph and dedup.
            raw = RawInbound(
                Channel.SMS,
                TEXT.format(i=i).encode(),
                datetime.now(UTC),
                f"bench-{i}",
                metadata={"sender": f"+62812{i:08d}"},
            )
            await gw.intake.accept(raw, PARSER)

    published = gw.metrics.published.labels("sms")
    start = time.perf_counter()
    await asyncio.gather(*(submitter() for _ in range(concurrency)))
    while published._value.get() < n:
        await asyncio.sleep(0.002)
    elapsed = time.perf_counter() - start
    stop.set()
    await relay_task
    async with gw.engine.connect() as conn:
        bodies = list((await conn.execute(select(outbox.c.body).order_by(outbox.c.id))).scalars())
    await gw.close()
    return elapsed, bodies


async def run_raw(bodies: list[str], batch: int) -> float:
    broker = broker_names()
    conn = await aio_pika.connect(AMQP)
    try:
        ch = await conn.channel(publisher_confirms=True, on_return_raises=True)
        exchange = await ch.declare_exchange(broker["exchange"], "topic", durable=True)
        queue = await ch.declare_queue(
            broker["queue"], durable=True, arguments={"x-queue-type": "quorum"}
        )
        await queue.bind(exchange, "complaint.#")
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
        return time.perf_counter() - start
    finally:
        await conn.close()
        await cleanup(broker)


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=5000, help="complaints per run")
    ap.add_argument("-c", type=int, default=32, help="concurrent submitters")
    ap.add_argument("--databases", default="sqlite,postgresql")
    ap.add_argument("--batch", type=int, default=200, help="outbox relay batch size")
    args = ap.parse_args()
    config = ROOT / "config" / "gateway.toml"
    print(f"N={args.n} complaints, {args.c} concurrent submitters\n")
    print(f"{'run':<34}{'seconds':>9}{'complaints/s':>14}{'vs raw':>9}")
    for db in args.databases.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            broker = broker_names()
            try:
                async with database(db, tmp) as url:
                    settings = load_settings(
                        config,
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
                    gw_s, bodies = await run_gateway(settings, args.n, args.c)
                    raw_s = await run_raw(bodies, settings.outbox.batch_size)
            finally:
                await cleanup(broker)
        gw_rate, raw_rate = args.n / gw_s, args.n / raw_s
        print(f"{'gateway intake→confirm, ' + db:<34}{gw_s:>9.2f}{gw_rate:>14.0f}"
              f"{gw_rate / raw_rate:>8.0%}")
        print(f"{'raw aio-pika confirmed publish':<34}{raw_s:>9.2f}{raw_rate:>14.0f}{'100%':>9}")


if __name__ == "__main__":
    asyncio.run(main())
