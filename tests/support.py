"""Test support: real services on this machine, helpers to read what the gateway published."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import json
import os
import random
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aio_pika
import asyncpg
import jsonschema
import pytest
from aiohttp import web
from sqlalchemy import select
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway import sealing
from gateway.crypto import Keys
from gateway.settings import Settings
from gateway.storage import migrate
from gateway.storage.database import create_engine
from gateway.storage.schema import complaints, outbox, raw_inbound

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((ROOT / "contract" / "complaint-event.v1.schema.json").read_text())
VALIDATOR = jsonschema.Draft7Validator(SCHEMA, format_checker=jsonschema.FormatChecker())

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


def png(tag: str) -> bytes:
    """A small real PNG, its pixels drawn from ``tag`` (another tag, another file)."""
    from PIL import Image

    digest = hashlib.sha256(tag.encode()).digest()
    out = io.BytesIO()
    Image.frombytes("RGB", (4, 2), digest[:24]).save(out, "PNG")
    return out.getvalue()


def pdf(text: str, padding: int = 0) -> bytes:
    """A one-page real PDF whose page says ``text``; ``padding`` bytes in a comment after its
    header make it as big as wanted."""
    import pikepdf

    doc = pikepdf.new()
    doc.add_blank_page()
    doc.pages[0].Contents = doc.make_stream(b"BT 20 100 Td (" + text.encode() + b") Tj ET")
    out = io.BytesIO()
    doc.save(out)
    head, rest = out.getvalue().split(b"\n", 1)
    return head + b"\n%" + b"1" * padding + b"\n" + rest if padding else out.getvalue()


def phone_photo(padding: int = 0) -> bytes:
    """A real JPEG as a phone takes it: GPS (6.7612 S, 108.4801 E), make and model in EXIF,
    taken sideways (orientation 6); ``padding`` bytes after its end make it as big as wanted."""
    from PIL import Image

    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x0112] = "Samsung", "SM-A155F", 6
    exif.get_ifd(0x8825).update({1: "S", 2: (6.0, 45.0, 40.32), 3: "E", 4: (108.0, 28.0, 48.36)})
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 120, 40)).save(out, "JPEG", exif=exif)
    return out.getvalue() + b"\x00" * padding


class FixedClock:
    """A clock the test sets and moves (``clock.now += timedelta(...)``)."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def system_package(
    present: object, what: str, install: str = "scripts/install-system-packages"
) -> pytest.MarkDecorator:
    """A mark for tests that need ``what``, which ``install`` installs: they are skipped where it
    is missing, so the suite still runs on a machine without it.

    With ``REQUIRE_SYSTEM_PACKAGES=1`` (``make test`` sets it, having just installed them) a
    missing package fails the run instead: a failed install must not pass as a green run of
    skipped tests.
    """
    reason = f"{what} is not installed ({install})"
    if not present and os.environ.get("REQUIRE_SYSTEM_PACKAGES") == "1":
        pytest.fail(f"{reason}, and REQUIRE_SYSTEM_PACKAGES=1 requires it", pytrace=False)
    return pytest.mark.skipif(not present, reason=reason)


def require_system_package(
    present: object, what: str, install: str = "scripts/install-system-packages"
) -> None:
    """:func:`system_package` for a whole module, called where it is imported: skips the module
    when ``what`` is missing (fails under ``REQUIRE_SYSTEM_PACKAGES=1``)."""
    mark = system_package(present, what, install)
    if not present:
        pytest.skip(mark.kwargs["reason"], allow_module_level=True)


async def wait_until(check: Callable[[], Any], what: str, timeout: float = 10.0) -> None:
    """Wait until ``check()`` (a plain or an async function) is true; fail naming ``what`` when
    it is still false after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if asyncio.iscoroutine(found):
            found = await found
        if found:
            return
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        await asyncio.sleep(0.02)


def with_section(settings: Settings, section: str, **values: Any) -> Settings:
    """``settings`` with ``values`` changed in one section (``"database"``, ``"web"``...),
    validated as the settings file would be: a value the gateway refuses at start fails here
    too, instead of a test running on settings no operator could write."""
    current = getattr(settings, section)
    changed = type(current).model_validate({**dict(current), **values})
    return type(settings).model_validate({**dict(settings), section: changed})


def _ephemeral_low() -> int:
    """The first port of the kernel's range for outgoing connections (Linux: 32768)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


_PORTS_HANDED: set[int] = set()


def free_port() -> int:
    """A TCP port nobody listens on right now, on every address, below the range the kernel
    gives outgoing connections: a port of that range (what binding to port 0 returns) could be
    taken by any connection to PostgreSQL or RabbitMQ between this check and the server's own
    bind (seen: a compose replica's "address already in use"). Never the same port twice in
    one test run."""
    high = _ephemeral_low()
    low = max(1024, high - 12000)
    pick = random.SystemRandom()
    for _ in range(500):
        port = pick.randrange(low, high)
        if port in _PORTS_HANDED:
            continue
        with socket.socket() as s:
            try:
                s.bind(("0.0.0.0", port))
            except OSError:
                continue
        _PORTS_HANDED.add(port)
        return port
    raise RuntimeError(f"no free TCP port in {low}-{high - 1}")


@contextlib.asynccontextmanager
async def serving_app(app: web.Application, port: int | None = None) -> AsyncIterator[int]:
    """Serve ``app`` on 127.0.0.1 (on ``port``, else a free one) until the block ends; the port."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = port or free_port()
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
        yield port
    finally:
        await runner.cleanup()


def validate_event(body: dict[str, Any]) -> None:
    """Fail the test when a published body does not match the published contract."""
    VALIDATOR.validate(body)


async def drain(
    queue_name: str, expected: int, timeout: float = 15.0, *, complaint_events: bool = True
) -> list[aio_pika.abc.AbstractIncomingMessage]:
    """Read ``expected`` messages from a queue (then make sure no extra one follows).

    Every body read is validated against the contract's JSON Schema of complaint events,
    unless ``complaint_events`` is false (another queue's messages).
    """
    connection = await aio_pika.connect(AMQP_URL)
    messages: list[aio_pika.abc.AbstractIncomingMessage] = []
    try:
        channel = await connection.channel()
        queue = await channel.get_queue(queue_name, ensure=True)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(messages) < expected and loop.time() < deadline:
            msg = await queue.get(no_ack=True, fail=False)
            if msg is None:
                await asyncio.sleep(0.05)
                continue
            messages.append(msg)
        await asyncio.sleep(0.2)
        while (extra := await queue.get(no_ack=True, fail=False)) is not None:
            messages.append(extra)
    finally:
        await connection.close()
    for msg in messages if complaint_events else ():
        validate_event(json.loads(msg.body))
    return messages


def status_names(broker_names: dict[str, str]) -> dict[str, str]:
    """The status feed's exchange and queues beside a test's own broker names."""
    tag = broker_names["exchange"].removesuffix(".lapor.intake")
    return {
        "exchange": f"{tag}.lapor.status",
        "queue": f"{tag}.gateway.status",
        "dead_letter_exchange": f"{tag}.status.dlx",
        "dead_letter_queue": f"{tag}.gateway.status.dead",
    }


async def delete_topology(names: dict[str, str]) -> None:
    """Remove the exchanges and queues a test declared."""
    connection = await aio_pika.connect(AMQP_URL)
    try:
        channel = await connection.channel()
        for queue in (names["queue"], names["dead_letter_queue"]):
            with contextlib.suppress(Exception):
                await channel.queue_delete(queue)
        for exchange in (names["exchange"], names["dead_letter_exchange"]):
            with contextlib.suppress(Exception):
                await channel.exchange_delete(exchange)
    finally:
        await connection.close()


class TcpProxy:
    """A TCP forwarder to a real service that a test can cut and restore (a broker outage)."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.port = free_port()
        self._target = (target_host, target_port)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        """Accept and forward connections."""
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def cut(self) -> None:
        """Stop listening and drop every forwarded connection."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers -= {writer, up_writer}


@contextlib.asynccontextmanager
async def scratch_postgres(settings: Settings, prefix: str) -> AsyncIterator[tuple[Settings, str]]:
    """``settings`` on a migrated PostgreSQL database of the test's own, and its name, dropped
    at the end: for a test that changes the database itself (ALTER DATABASE must not touch the
    one other tests share)."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    await pg_admin(f'CREATE DATABASE "{name}"')
    try:
        url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
        scratch = with_section(settings, "database", url=url)
        engine = create_engine(scratch.database)
        await migrate.upgrade(engine)
        await engine.dispose()
        yield scratch, name
    finally:
        await pg_admin(f'DROP DATABASE "{name}" WITH (FORCE)')


async def pg_admin(sql: str) -> None:
    """Run one statement as PostgreSQL's admin (CREATE / DROP DATABASE)."""
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def opened_raw(engine: AsyncEngine, keys: Keys) -> list[dict[str, Any]]:
    """Every raw inbound row, oldest first, with its sealed body and transport metadata opened."""
    async with engine.connect() as conn:
        rows: list[Row[Any]] = list(
            await conn.execute(select(raw_inbound).order_by(raw_inbound.c.stored_at))
        )
    opened = []
    for r in rows:
        row = dict(r._mapping)
        row["body"] = sealing.raw_body(keys, r.id, r.body, r.sealed)
        row["transport_meta"] = sealing.raw_meta(keys, r.id, r.transport_meta, r.sealed)
        opened.append(row)
    return opened


async def opened_complaints(engine: AsyncEngine, keys: Keys) -> list[SimpleNamespace]:
    """Every complaint row, oldest first, with its sealed title, body and tokens opened."""
    async with engine.connect() as conn:
        rows = list(await conn.execute(select(complaints).order_by(complaints.c.created_at)))
    opened = []
    for r in rows:
        row = dict(r._mapping)
        for field in ("title", "body", "location", "match_tokens"):
            row[field] = sealing.open_complaint(
                keys, r.id, field, row[field], r.sealed, r.confidential
            )
        opened.append(SimpleNamespace(**row))
    return opened


async def opened_events(engine: AsyncEngine, keys: Keys) -> list[str]:
    """The JSON of every outbox row, in outbox order, opened as the relay publishes it."""
    async with engine.connect() as conn:
        rows = list(
            await conn.execute(
                select(outbox.c.message_id, outbox.c.body, outbox.c.sealed).order_by(outbox.c.id)
            )
        )
    return [sealing.open_event(keys, r.message_id, r.body, r.sealed) for r in rows]


def kannel_mo(text: str, sender: str = "+6281234500001") -> dict[str, str]:
    """An MO as Kannel smsbox's get-url sends it (the SMS channel's README), with a new id."""
    return {
        "p": sender,
        "P": "1708",
        "b": text,
        "c": "0",
        "C": "utf-8",
        "I": f"mo-{uuid.uuid4().hex[:12]}",
        "i": "telkomsel",
    }
