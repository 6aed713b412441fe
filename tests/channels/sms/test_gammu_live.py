"""End to end through a REAL Gammu SMSD: dummy phone -> gammu-smsd -> lapor-onreceive -> gateway.

The SMS goes into the dummy phone's inbox, SMSD receives it and runs the project's
``config/gammu/lapor-onreceive``, which posts it to the gateway; the reply the gateway answers
is queued with ``gammu-smsd-inject`` and sent by SMSD through the same phone. Needs
``scripts/install-system-packages`` (skipped when Gammu is missing, a failure under
``REQUIRE_SYSTEM_PACKAGES=1``). Pinned to SQLite; the route itself runs on both databases in
``test_bridge_routes.py``.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import Table, select

from gateway import bootstrap
from gateway.settings import Settings
from gateway.storage.schema import raw_inbound
from tests.channels.sms.gammu_harness import TOKEN, Gammu, installed, running
from tests.support import free_port, opened_complaints, serving_app, system_package

pytestmark = [
    pytest.mark.integration,
    system_package(installed(), "Gammu (gammu, gammu-smsd, curl)"),
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
]

A = "+6281200000005"
LONG = ("Jalan Siliwangi rusak parah sejak bulan lalu, " * 6).strip()


class Served:
    """The gateway, served on ``port`` by :func:`serving_app` (``lapor-onreceive`` calls it
    with curl); the port is chosen first, so a test may start serving later."""

    def __init__(self, settings: Settings) -> None:
        sms = settings.sms.model_copy(update={"gammu_token": SecretStr(TOKEN)})
        self.gw = bootstrap.build(settings.model_copy(update={"sms": sms}))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/sms/gammu"

    def serving(self) -> AbstractAsyncContextManager[int]:
        return serving_app(bootstrap.build_app(self.gw), self.port)

    async def rows(self, table: Table) -> list[Any]:
        async with self.gw.engine.connect() as conn:
            return list((await conn.execute(select(table))).all())


@pytest.fixture
async def served(settings: Settings) -> AsyncIterator[Served]:
    server = Served(settings)
    yield server
    await server.gw.close()


async def _until(check: Callable[[], Awaitable[bool]], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.2)


async def _sent(smsd: Gammu, n: int) -> list[tuple[str, str]]:
    async def enough() -> bool:
        return len(smsd.sent()) >= n

    await _until(enough)
    return smsd.sent()


async def test_sms_becomes_a_complaint_and_the_reply_goes_out_through_the_modem(
    served: Served, tmp_path: Path
) -> None:
    async with served.serving():
        with running(tmp_path, served.url, phone_id="modem-1") as smsd:
            text = "Lampu jalan mati 😡 di RT 05, € 2 juta"
            await asyncio.to_thread(smsd.receive, A, text, unicode=True)
            await asyncio.to_thread(smsd.receive, A, LONG, parts=2)
            sent = await _sent(smsd, 2)
    stored = await opened_complaints(served.gw.engine, served.gw.keys)
    assert sorted(r.body for r in stored) == sorted([text, LONG])
    tracking = {r.tracking_id for r in stored}
    assert [number for number, _ in sent] == [A, A]
    for _, text in sent:
        assert text.startswith("LAPOR! Laporan diterima. No. lacak: ") and len(text) <= 160
        assert any(f"{t[:4]}-{t[4:]}" in text for t in tracking)
    raws = await served.rows(raw_inbound)
    # Keys of the inbox ids, hashed: the files backend names each part after the sender.
    assert all(re.fullmatch(r"gammu:[0-9a-f]{64}", r.provider_message_id) for r in raws)
    assert not any(A.lstrip("+") in r.provider_message_id for r in raws)


async def test_sms_waits_in_curl_retries_while_the_gateway_is_down(
    served: Served, tmp_path: Path
) -> None:
    # Nothing listens yet: curl is refused and tries again after 1 s, 2 s, 4 s...
    with running(tmp_path, served.url) as smsd:
        await asyncio.to_thread(smsd.receive, A, "Sampah menumpuk di Jl. Merdeka 10")
        await asyncio.to_thread(smsd.wait_log, "Starting run on receive")
        await asyncio.sleep(1.5)
        assert await served.rows(raw_inbound) == []
        async with served.serving():
            ((number, text),) = await _sent(smsd, 1)
    (complaint,) = await opened_complaints(served.gw.engine, served.gw.keys)
    assert complaint.body == "Sampah menumpuk di Jl. Merdeka 10"
    assert number == A and complaint.tracking_id[:4] in text
