"""What the benchmarks share: throw-away databases, broker names, keys."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import time
import uuid
from collections.abc import AsyncIterator, Coroutine
from typing import Any

import aio_pika
import asyncpg

from gateway.bootstrap import loop_factory

AMQP = "amqp://guest:guest@127.0.0.1:5672/"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def run(main: Coroutine[Any, Any, None]) -> None:
    """Run a benchmark on the event loop the gateway runs on (``http.event_loop``, uvloop by
    default): the gateway and its baseline share the loop, so the ratio compares like with
    like. ``BENCH_EVENT_LOOP=asyncio`` runs it on Python's own loop."""
    loop = loop_factory(os.environ.get("BENCH_EVENT_LOOP", "uvloop"))
    with asyncio.Runner(loop_factory=loop) as runner:
        runner.run(main)
    print(f"\n(event loop: {os.environ.get('BENCH_EVENT_LOOP', 'uvloop')})")


def broker_names() -> dict[str, str]:
    """Exchange and queue names of one benchmark run."""
    tag = uuid.uuid4().hex[:8]
    return {
        "exchange": f"bench.{tag}.intake",
        "queue": f"bench.{tag}.routing",
        "dead_letter_exchange": f"bench.{tag}.dlx",
        "dead_letter_queue": f"bench.{tag}.dead",
    }


async def cleanup(broker: dict[str, str]) -> None:
    """Delete the queues and exchanges of ``broker_names()``."""
    conn = await aio_pika.connect(AMQP)
    try:
        ch = await conn.channel()
        for q in (broker["queue"], broker["dead_letter_queue"]):
            with contextlib.suppress(Exception):
                await ch.queue_delete(q)
        for x in (broker["exchange"], broker["dead_letter_exchange"]):
            with contextlib.suppress(Exception):
                await ch.exchange_delete(x)
    finally:
        await conn.close()


def random_keys() -> dict[str, str]:
    """A ``[security]`` section with fresh keys."""
    return {
        "identity_key": base64.b64encode(os.urandom(32)).decode(),
        "data_key": base64.b64encode(os.urandom(32)).decode(),
    }


async def create_pg() -> tuple[str, str]:
    """A new empty PostgreSQL database: (name, SQLAlchemy URL)."""
    name = f"lapor_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(PG_ADMIN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return name, f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"


async def drop_pg(name: str) -> None:
    """Drop a database made by :func:`create_pg`."""
    admin = await asyncpg.connect(PG_ADMIN)
    try:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@contextlib.asynccontextmanager
async def database(kind: str, tmp: str) -> AsyncIterator[str]:
    """The URL of a fresh ``sqlite`` file in ``tmp`` or ``postgresql`` database, removed after."""
    if kind == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp}/bench.db"
        return
    name, url = await create_pg()
    try:
        yield url
    finally:
        await drop_pg(name)


# CPU accounting, so a figure comes with where its time went. Linux /proc, clock ticks.
_TICK = os.sysconf("SC_CLK_TCK")
# Server processes by their command name: RabbitMQ runs in the Erlang VM.
SERVERS = {"rabbitmq": ("beam",), "postgresql": ("postgres",)}


def _stat(pid: int | str) -> list[str]:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def process_cpu(pid: int | str) -> float:
    """CPU seconds of a process and of the children it has reaped (PostgreSQL's backends)."""
    try:
        fields = _stat(pid)
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return sum(int(v) for v in fields[11:15]) / _TICK


def cpu_snapshot(children: dict[str, int] | None = None) -> dict[str, float]:
    """CPU seconds so far: the whole machine (busy), this process, each server, named pids."""
    with open("/proc/stat") as f:
        ticks = [int(v) for v in f.readline().split()[1:]]
    idle = ticks[3] + ticks[4]  # idle + iowait
    snap = {
        "machine": (sum(ticks[:8]) - idle) / _TICK,
        "machine_all": sum(ticks[:8]) / _TICK,
        "intake proc": time.process_time(),
    }
    for name in SERVERS:
        snap[name] = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/comm") as f:
                comm = f.read().strip()
        except OSError:
            continue
        for name, prefixes in SERVERS.items():
            if comm.startswith(prefixes):
                snap[name] += process_cpu(entry)
    for name, pid in (children or {}).items():
        snap[name] = process_cpu(pid)
    return snap


def cpu_per_item(before: dict[str, float], after: dict[str, float], n: int) -> dict[str, float]:
    """Microseconds of CPU per item between two snapshots (``busy`` = machine busy share)."""
    per = {k: (after[k] - before.get(k, 0.0)) / n * 1e6 for k in after if k != "machine_all"}
    span = after["machine_all"] - before["machine_all"]
    per["busy"] = (after["machine"] - before["machine"]) / span if span else 0.0
    return per


def cpu_line(label: str, per: dict[str, float], names: tuple[str, ...]) -> str:
    """One row of the CPU table: µs per item for each of ``names``, the machine, its busy share."""
    cells = "".join(f"{per.get(name, 0.0):>12.0f}" for name in names)
    return f"{label:<44}{cells}{per['machine']:>12.0f}{per['busy']:>8.0%}"
