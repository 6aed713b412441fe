"""What the benchmarks share: throw-away databases, broker names, keys."""

from __future__ import annotations

import base64
import contextlib
import os
import uuid
from collections.abc import AsyncIterator

import aio_pika
import asyncpg

AMQP = "amqp://guest:guest@127.0.0.1:5672/"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


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
