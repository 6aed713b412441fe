"""End to end through a REAL Kannel 1.4.5: fakesmsc -> bearerbox -> smsbox -> gateway -> DB.

Needs ``scripts/install-system-packages`` (skipped when Kannel is missing, a failure under
``REQUIRE_SYSTEM_PACKAGES=1``). Pinned to SQLite to keep the module fast; the route itself runs on both databases in ``test_routes.py``.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from aiohttp import web
from sqlalchemy import select

from gateway import bootstrap
from gateway.settings import Settings
from gateway.storage.schema import complaints
from tests.channels.sms.kannel_harness import (
    Kannel,
    PostUrlKannel,
    concat_udh,
    data,
    installed,
    ucs2,
)
from tests.support import (
    free_port,
    opened_complaints,
    opened_raw,
    system_package,
    with_section,
)

pytestmark = [
    pytest.mark.integration,
    system_package(installed(), "Kannel (kannel, kannel-extras)"),
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
]

A = "+6281200000001"
B = "+6281200000002"
TO = "1708"
LONG = ("Jalan Siliwangi rusak parah sejak bulan lalu, " * 8).strip()
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Stack:
    gw: bootstrap.Gateway
    kannel: Kannel
    requests: list[tuple[str, int, str]] = field(default_factory=list)  # (%I, status, reply)
    fail_first: set[str] = field(default_factory=set)  # texts whose first request gets a 503

    async def wait_complaints(self, n: int, timeout: float = 30.0) -> int:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        count = await self.gw.intake.count_complaints()
        while count < n and loop.time() < deadline:
            await asyncio.sleep(0.1)
            count = await self.gw.intake.count_complaints()
        return count

    async def send(self, message: str, answered: bool = True) -> None:
        """Inject one MO; with ``answered``, keep fakesmsc connected until the gateway got it.

        (A reply to an earlier MO may reach this fakesmsc; closing it with that reply unread
        resets the connection, and bearerbox could lose the MO it had not read yet.)
        """
        before = len(self.requests)

        async def got_it() -> bool:
            return len(self.requests) > before

        await self.kannel.inject(message, until=got_it if answered else None)

    async def bodies(self) -> list[str]:
        return [r.body for r in await opened_complaints(self.gw.engine, self.gw.keys)]


@pytest.fixture
def dedup_enabled() -> bool:
    """Content dedup (tiers 2 and 3) on, as in production; a test may parametrize it off."""
    return True


@pytest.fixture
def post_url() -> bool:
    """The README's get-url; a test may parametrize it to a bare post-url (send-sender on)."""
    return False


@pytest.fixture
async def stack(
    settings: Settings, tmp_path: Path, dedup_enabled: bool, post_url: bool
) -> AsyncIterator[Stack]:
    gw = bootstrap.build(with_section(settings, "dedup", enabled=dedup_enabled))
    app = bootstrap.build_app(gw)
    port = free_port()
    kannel = (
        PostUrlKannel(
            tmp_path / "kannel",
            f"http://127.0.0.1:{port}/sms/kannel",
            service_lines="send-sender = true",
        )
        if post_url
        else Kannel(tmp_path / "kannel", f"http://127.0.0.1:{port}/sms/kannel?")
    )
    kannel.workdir.mkdir()
    state = Stack(gw, kannel)
    seen: set[str] = set()

    @web.middleware
    async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        message_id = request.query.get("I", "")
        text = request.query.get("b", "")
        if post_url:  # the text is the body, the sender a header: no id at all
            text = (await request.read()).decode("utf-8", "replace")
            message_id = request.headers.get("X-Kannel-From", "") + " " + text
        reply = response.text if isinstance(response, web.Response) and response.text else ""
        state.requests.append((message_id, response.status, reply))
        if text in state.fail_first and message_id not in seen:
            seen.add(message_id)
            # The message IS committed; the answer is lost: smsbox must send it again.
            return web.Response(status=503, text="", content_type="text/plain")
        return response

    app.middlewares.append(record)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=2048).start()
    await asyncio.to_thread(kannel.start)
    try:
        yield state
    finally:
        await asyncio.to_thread(kannel.stop)
        await runner.cleanup()
        await gw.close()


async def test_gsm_ucs2_emoji_and_crlf_arrive_exact(stack: Stack) -> None:
    await stack.send(f"{A} {TO} text Jalan rusak @£$€ di depan pasar")
    await stack.send(f"{A} {TO} ucs2 " + ucs2("Lampu jalan mati 😡👍🏽 sudah 3 hari"))
    await stack.send(f"{B} {TO} data " + data(b"Sampah menumpuk\r\ndi  Jl. Merdeka\r\n100% bau"))
    assert await stack.wait_complaints(3) == 3
    assert sorted(await stack.bodies()) == sorted(
        [
            "Jalan rusak @£$€ di depan pasar",
            "Lampu jalan mati 😡👍🏽 sudah 3 hari",
            "Sampah menumpuk\r\ndi  Jl. Merdeka\r\n100% bau",
        ]
    )
    rows = await opened_raw(stack.gw.engine, stack.gw.keys)
    for row in rows:  # stored exactly as received: the query string smsbox sent
        assert parse_qs(row["body"].decode())["I"] == [row["provider_message_id"]]
    assert {r["transport_meta"]["sender"] for r in rows} == {A, B}


async def test_long_message_in_three_parts_in_order_and_reversed(stack: Stack) -> None:
    parts = [LONG[i : i + 150] for i in range(0, len(LONG), 150)]
    assert len(parts) == 3
    for i, part in enumerate(parts):
        udh = data(concat_udh(0x31, 3, i + 1))
        await stack.send(f"{A} {TO} udh-text {udh} {part}", answered=i == 2)
    for i, part in reversed(list(enumerate(parts))):
        udh = data(concat_udh(0x32, 3, i + 1))
        await stack.send(f"{B} {TO} udh-text {udh} {part}", answered=i == 0)
    assert await stack.wait_complaints(2) == 2
    assert await stack.bodies() == [LONG, LONG]


async def test_reply_and_status_reach_the_phone(stack: Stack) -> None:
    out = await stack.kannel.inject(
        f"{A} {TO} text Pungli di kantor desa", verbose=True, wait_mt=15
    )
    match = re.search(r"No\. lacak: ([0-9A-Z]{4})-([0-9A-Z]{5})", out)
    assert match, out[-2000:]
    tid = match.group(1) + match.group(2)
    async with stack.gw.engine.connect() as conn:
        assert (await conn.execute(select(complaints.c.tracking_id))).scalar_one() == tid
    out = await stack.kannel.inject(f"{A} {TO} text cek {tid.lower()}", verbose=True, wait_mt=15)
    assert f"Laporan {tid[:4]}-{tid[4:]}" in out and "status DITERIMA" in out, out[-2000:]


async def test_smsbox_retries_after_a_503_and_one_complaint_is_made(stack: Stack) -> None:
    stack.fail_first.add("Jembatan putus di desa Sukamaju")
    await stack.send(f"{A} {TO} text Jembatan putus di desa Sukamaju")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while loop.time() < deadline:
        if len(stack.requests) >= 2:
            break
        await asyncio.sleep(0.1)
    (id1, status1, reply1), (id2, status2, reply2) = stack.requests[:2]
    assert id1 == id2 and status1 == status2 == 200  # the handler's own status; 503 went out
    assert reply1 == reply2 and "No. lacak" in reply1  # the redelivery got the first receipt
    await asyncio.sleep(1.5)  # nothing else follows
    assert len(stack.requests) == 2
    assert await stack.gw.intake.count_complaints() == 1


@pytest.mark.parametrize("post_url", [True])
async def test_bare_post_url_stores_every_mo_and_a_retry_makes_nothing_new(stack: Stack) -> None:
    # post-url = "http://gw/sms/kannel" (no escapes, no %I) with send-sender = true: every MO
    # after the first was stored as the same empty query and answered as its redelivery.
    stack.fail_first.add("Sampah menumpuk di pasar Baru")
    await stack.send(f"{A} {TO} text Jalan rusak parah di gang Mawar")
    await stack.send(f"{B} {TO} text Sampah menumpuk di pasar Baru")
    await stack.send(f"{B} {TO} ucs2 " + ucs2("Lampu jalan mati 😡 sudah 3 hari"))
    assert await stack.wait_complaints(3) == 3
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while loop.time() < deadline:
        if len(stack.requests) >= 4:
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.5)  # nothing else follows
    # smsbox sent the 503'd request again, unchanged: the same receipt, nothing new.
    retried = [r for r in stack.requests if r[0] == f"{B} Sampah menumpuk di pasar Baru"]
    assert len(retried) == 2 and retried[0][2] == retried[1][2] and "No. lacak" in retried[0][2]
    assert len(stack.requests) == 4
    assert sorted(await stack.bodies()) == [
        "Jalan rusak parah di gang Mawar",
        "Lampu jalan mati 😡 sudah 3 hari",
        "Sampah menumpuk di pasar Baru",
    ]
    rows = await opened_raw(stack.gw.engine, stack.gw.keys)
    assert [r["transport_meta"]["sender"] for r in rows] == [A, B, B]


# fakesmsc picks each MO at random among a few texts from one sender: with content dedup on,
# the repeats would rightly collapse into one complaint. Off, every MO must become one.
@pytest.mark.parametrize("dedup_enabled", [False])
async def test_burst_of_500_messages_loses_nothing(stack: Stack) -> None:
    messages = [f"{A} {TO} text Laporan nomor {i} jalan rusak" for i in range(5)]

    async def all_in() -> bool:
        return await stack.gw.intake.count_complaints() >= 500

    loop = asyncio.get_running_loop()
    started = loop.time()
    await stack.kannel.inject(*messages, count=500, timeout=90, until=all_in)
    statuses = Counter(status for _, status, _ in stack.requests)
    assert await stack.wait_complaints(500, timeout=5) == 500, (statuses, stack.requests[:3])
    print(f"500 MOs through Kannel into the database in {loop.time() - started:.1f} s")
    await asyncio.sleep(0.5)
    assert await stack.gw.intake.count_complaints() == 500
    assert all(status == 200 for _, status, _ in stack.requests)
    assert len({message_id for message_id, _, _ in stack.requests}) == 500
