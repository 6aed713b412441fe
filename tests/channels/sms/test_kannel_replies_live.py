"""Replies through the durable outbox, fragments and a burst, through a REAL Kannel 1.4.5.

fakesmsc / Kannel's HTTP SMSC -> bearerbox -> smsbox -> gateway -> database; replies leave the
reply outbox through smsbox ``sendsms`` and reach the fake SMSC; delivery reports come back to
``/sms/kannel/dlr``. Needs ``scripts/install-system-packages`` (skipped when Kannel is missing, a failure under
``REQUIRE_SYSTEM_PACKAGES=1``).
Pinned to SQLite; the same code runs on both databases in ``test_routes.py`` and
``test_outbox_store.py``.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlencode

import aiohttp
import pytest
from aiohttp import web
from pydantic import SecretStr
from sqlalchemy import func, select

from gateway import bootstrap
from gateway.settings import Settings
from gateway.storage.schema import complaints, sms_fragments, sms_replies
from tests.channels.sms.kannel_harness import (
    HTTP_SMSC_PASSWORD,
    HTTP_SMSC_USER,
    SENDSMS_PASSWORD,
    SENDSMS_USER,
    Kannel,
    concat_udh,
    concat_udh16,
    data,
    installed,
)
from tests.support import drain, free_port, opened_complaints, system_package

pytestmark = [
    pytest.mark.integration,
    system_package(installed(), "Kannel (kannel, kannel-extras)"),
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
]

A = "+6281200000001"
B = "+6281200000002"
TO = "1708"
LONG = ("Jalan Siliwangi rusak parah sejak bulan lalu, " * 8).strip()
PARTS = [LONG[i : i + 150] for i in range(0, len(LONG), 150)]
TRACKING = re.compile(r"No\. lacak: ([0-9A-Z]{4})-([0-9A-Z]{5})")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Stack:
    gw: bootstrap.Gateway
    kannel: Kannel
    requests: list[tuple[str, int, str]] = field(default_factory=list)  # (%I, status, body)
    mts: list[dict[str, list[str]]] = field(default_factory=list)  # MTs at the HTTP SMSC

    async def wait(self, probe: Callable[[], Awaitable[bool]], timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if await probe():
                return True
            await asyncio.sleep(0.1)
        return await probe()

    async def scalar(self, stmt: object) -> object:
        async with self.gw.engine.connect() as conn:
            return (await conn.execute(stmt)).scalar_one()  # type: ignore[call-overload]

    async def replies(self) -> list[object]:
        async with self.gw.engine.connect() as conn:
            return list((await conn.execute(select(sms_replies).order_by(sms_replies.c.id))).all())


@pytest.fixture
def fragment_timeout() -> float:
    """How long the gateway holds an incomplete set (a test may parametrize it)."""
    return 300.0


@pytest.fixture
def combine_timeout() -> int:
    """Kannel's sms-combine-concatenated-mo-timeout (the fragment tests make it 2 s)."""
    return 1800


@pytest.fixture
async def stack(
    settings: Settings, tmp_path: Path, fragment_timeout: float, combine_timeout: int
) -> AsyncIterator[Stack]:
    port, sink_port = free_port(), free_port()
    kannel = Kannel(
        tmp_path / "kannel",
        f"http://127.0.0.1:{port}/sms/kannel?",
        combine_timeout=combine_timeout,
        mt_sink_url=f"http://127.0.0.1:{sink_port}/mt",
    )
    kannel.workdir.mkdir()
    sms = settings.sms.model_copy(
        update={
            "kannel_sendsms_url": kannel.sendsms_url,
            "kannel_sendsms_username": SENDSMS_USER,
            "kannel_sendsms_password": SecretStr(SENDSMS_PASSWORD),
            "callback_url": f"http://127.0.0.1:{port}",
            "fragment_timeout": fragment_timeout,
            "sender_poll_interval": 0.05,
            "sender_backoff_initial": 0.2,
            "sender_batch_size": 100,
        }
    )
    gw = bootstrap.build(settings.model_copy(update={"sms": sms}))
    assert gw.sms is not None and gw.sms.sender is not None and gw.relay is not None
    app = bootstrap.build_app(gw)
    state = Stack(gw, kannel)

    @web.middleware
    async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        if request.path == "/sms/kannel":
            body = response.text if isinstance(response, web.Response) and response.text else ""
            state.requests.append((request.query.get("I", ""), response.status, body))
        return response

    app.middlewares.append(record)

    async def mt(request: web.Request) -> web.Response:
        state.mts.append(parse_qs(request.query_string))
        return web.Response(text="Sent.", content_type="text/plain")

    sink = web.Application()
    sink.router.add_get("/mt", mt)
    runners = [web.AppRunner(app, access_log=None), web.AppRunner(sink, access_log=None)]
    for runner, p in zip(runners, (port, sink_port), strict=True):
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", p, backlog=2048).start()
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(gw.sms.sender.run(stop)),
        asyncio.create_task(gw.relay.run(stop)),
    ]
    await asyncio.to_thread(kannel.start)
    try:
        yield state
    finally:
        await asyncio.to_thread(kannel.stop)
        stop.set()
        await asyncio.gather(*tasks)
        for runner in runners:
            await runner.cleanup()
        await gw.close()


async def test_reply_with_the_tracking_id_reaches_the_phone_through_sendsms(stack: Stack) -> None:
    out = await stack.kannel.inject(
        f"{A} {TO} text Pungli di kantor desa", verbose=True, wait_mt=20
    )
    match = TRACKING.search(out)
    assert match, out[-2000:]
    tid = match.group(1) + match.group(2)
    assert await stack.scalar(select(complaints.c.tracking_id)) == tid
    # smsbox got an empty answer: the reply went through sendsms, not in the HTTP body.
    assert [(status, body) for _, status, body in stack.requests] == [(200, "")]
    (reply,) = await stack.replies()
    assert reply.status == "sent" and reply.tracking_id == tid and reply.smsc == "inject"
    # Encrypted at rest under the gateway's data key: the number only comes out decrypted.
    assert A.lstrip("+") not in reply.recipient
    assert stack.gw.keys.decrypt(reply.recipient) == A

    async def reported() -> bool:
        rows = await stack.replies()
        return rows[0].dlr_status is not None

    # bearerbox reports the fake SMSC's acceptance (type 8) and delivery (type 1) to dlr-url.
    assert await stack.wait(reported, 20)
    (reply,) = await stack.replies()
    assert reply.dlr_status in ("delivered", "accepted") and "type=" in reply.dlr_detail


async def test_long_message_with_16_bit_reference_in_order_and_reversed(stack: Stack) -> None:
    for i, part in enumerate(PARTS):
        await stack.kannel.inject(
            f"{A} {TO} udh-text {data(concat_udh16(0x1A2B, 3, i + 1))} {part}"
        )
    for i, part in reversed(list(enumerate(PARTS))):
        await stack.kannel.inject(
            f"{B} {TO} udh-text {data(concat_udh16(0x1A2C, 3, i + 1))} {part}"
        )

    async def both() -> bool:
        return await stack.gw.intake.count_complaints() >= 2

    assert await stack.wait(both)
    bodies = [r.body for r in await opened_complaints(stack.gw.engine, stack.gw.keys)]
    assert bodies == [LONG, LONG]
    assert len(stack.requests) == 2  # Kannel reassembled both: one request each


@pytest.mark.parametrize("combine_timeout", [2])
async def test_missing_part_is_held_and_joined_when_it_arrives(stack: Stack) -> None:
    ref = 0x2B3C
    # Parts 1 and 3 only: after its combine timeout Kannel hands them over one by one.
    for seq in (1, 3):
        await stack.kannel.inject(
            f"{A} {TO} udh-text {data(concat_udh16(ref, 3, seq))} {PARTS[seq - 1]}"
        )

    async def two_fragments() -> bool:
        return len(stack.requests) >= 2

    assert await stack.wait(two_fragments, 20)
    assert await stack.gw.intake.count_complaints() == 0
    assert await stack.scalar(select(func.count()).select_from(sms_fragments)) == 2
    # Part 2, late: Kannel starts a new group with it and hands it over alone too.
    await stack.kannel.inject(f"{A} {TO} udh-text {data(concat_udh16(ref, 3, 2))} {PARTS[1]}")

    async def joined() -> bool:
        return await stack.gw.intake.count_complaints() == 1

    assert await stack.wait(joined, 20)
    (row,) = await opened_complaints(stack.gw.engine, stack.gw.keys)
    async with stack.gw.engine.connect() as conn:
        held = (await conn.execute(select(sms_fragments))).all()
    assert row.body == LONG and row.title is None
    assert len(held) == 3 and all(h.closed_at is not None for h in held)
    assert {h.joined_raw_inbound_id for h in held} == {row.raw_inbound_id}
    assert all(status == 200 and body == "" for _, status, body in stack.requests)

    async def replied() -> bool:
        return [r.status for r in await stack.replies()] == ["sent"]

    assert await stack.wait(replied, 10)  # the joined complaint's receipt went out once


@pytest.mark.parametrize("combine_timeout", [2])
async def test_ucs2_parts_splitting_an_emoji_are_held_and_joined(stack: Stack) -> None:
    """The phone split an emoji's surrogate pair between two UCS-2 parts; part 2 came after
    Kannel's combine timeout, so each part is handed over alone. With ``mo-recode = yes`` smsbox
    drops the high half and sends the low one as bytes that are not UTF-8: the complaint keeps
    the rest of the text, U+FFFD for the emoji."""
    octets = "Lampu jalan mati sudah 3 hari 😡 mohon diperbaiki".encode("utf-16-be")
    cut = octets.index("😡".encode("utf-16-be")) + 2
    async with aiohttp.ClientSession() as session:
        for seq, text in ((1, octets[:cut]), (2, octets[cut:])):
            query = urlencode(
                {
                    "username": HTTP_SMSC_USER,
                    "password": HTTP_SMSC_PASSWORD,
                    "from": A,
                    "to": TO,
                    "text": text,
                    "udh": concat_udh(0x5B, 2, seq),
                    "coding": "2",
                }
            )
            async with session.get(f"{stack.kannel.http_smsc_url}?{query}") as resp:
                assert resp.status == 202

            async def handed_over(n: int = seq) -> bool:
                return len(stack.requests) >= n

            assert await stack.wait(handed_over, 20)

    async def joined() -> bool:
        return await stack.gw.intake.count_complaints() == 1

    assert await stack.wait(joined, 20)
    (row,) = await opened_complaints(stack.gw.engine, stack.gw.keys)
    assert row.body == "Lampu jalan mati sudah 3 hari \ufffd mohon diperbaiki"
    assert row.title is None
    assert all(status == 200 and body == "" for _, status, body in stack.requests)


@pytest.mark.parametrize("combine_timeout", [2])
# Well past Kannel's own combining (2 s) and its delivery of the parts, also on a busy machine:
# the set must be joined with both parts that did arrive.
@pytest.mark.parametrize("fragment_timeout", [10.0])
async def test_incomplete_set_becomes_a_marked_complaint_after_the_timeout(stack: Stack) -> None:
    ref = 0x3C4D
    for seq in (1, 2):
        await stack.kannel.inject(
            f"{B} {TO} udh-text {data(concat_udh16(ref, 3, seq))} {PARTS[seq - 1]}"
        )

    async def joined() -> bool:
        return await stack.gw.intake.count_complaints() == 1

    assert await stack.wait(joined, 30)
    (row,) = await opened_complaints(stack.gw.engine, stack.gw.keys)
    assert row.body == f"{PARTS[0]}{PARTS[1]} [...]"
    assert row.title == "SMS tidak lengkap: bagian 3 dari 3 tidak diterima"


async def test_burst_of_2000_unique_messages_loses_nothing(
    stack: Stack, settings: Settings
) -> None:
    """2 000 MOs, each its own sender and text, content dedup ON: 2 000 complaints, 2 000 events."""
    n = 2000
    started = time.monotonic()
    async with aiohttp.ClientSession() as session:
        gate = asyncio.Semaphore(32)

        async def one(i: int) -> tuple[int, str]:
            query = urlencode(
                {
                    "username": HTTP_SMSC_USER,
                    "password": HTTP_SMSC_PASSWORD,
                    "from": f"+62813{i:08d}",
                    "to": TO,
                    "text": f"Laporan {i}: lampu jalan gang {i} mati sejak pekan lalu",
                    "coding": "0",
                }
            )
            async with gate, session.get(f"{stack.kannel.http_smsc_url}?{query}") as resp:
                return resp.status, await resp.text()

        results = await asyncio.gather(*(one(i) for i in range(n)))
    assert set(results) == {(202, "Sent.")}

    async def all_in() -> bool:
        return await stack.gw.intake.count_complaints() >= n

    assert await stack.wait(all_in, 90), await stack.gw.intake.count_complaints()
    elapsed = time.monotonic() - started
    messages = await drain(settings.broker.queue, n, timeout=60)
    assert len(messages) == n
    bodies = {json.loads(m.body)["body"] for m in messages}
    assert len(bodies) == n
    assert all(status == 200 and body == "" for _, status, body in stack.requests)
    assert len({message_id for message_id, _, _ in stack.requests}) == n

    async def replies_out() -> bool:
        return len(stack.mts) >= n

    assert await stack.wait(replies_out, 60), len(stack.mts)
    assert {r.status for r in await stack.replies()} == {"sent"}
    assert all(TRACKING.search(mt["text"][0]) for mt in stack.mts)
    print(f"{n} MOs -> {n} complaints in {elapsed:.1f} s; {n} events; {len(stack.mts)} replies")
