"""``lapor-gateway relay``: the outbox relay in a process of its own, as an operator runs it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from datetime import UTC, datetime

import aiohttp
import pytest

from gateway import bootstrap
from gateway.domain import Channel, ComplaintDraft, RawInbound, Reporter
from gateway.intake import Parser
from gateway.settings import Settings
from tests.conftest import TEST_KEYS
from tests.support import drain, free_port, with_section

pytestmark = pytest.mark.integration

PARSER = Parser(
    "test.plain", lambda raw: ComplaintDraft(body=raw.body.decode(), reporter=Reporter())
)


def _environ(settings: Settings, broker: dict[str, str], port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAPOR_")}
    env.update(
        {
            "LAPOR_DATABASE__URL": settings.database.effective_url(),
            "LAPOR_STORAGE__FILE_STORE": str(settings.storage.file_store),
            "LAPOR_OUTBOX__POLL_INTERVAL": "0.05",
            "LAPOR_OUTBOX__RELAY_PORT": str(port),
            "LAPOR_HTTP__HOST": "127.0.0.1",
            "LAPOR_LOGGING__LEVEL": "WARNING",
            **{f"LAPOR_BROKER__{k.upper()}": v for k, v in broker.items()},
            **{f"LAPOR_SECURITY__{k.upper()}": v for k, v in TEST_KEYS.items()},
        }
    )
    return env


async def _published(port: int, expected: int) -> str:
    """The relay's /metrics once it counts ``expected`` published web events (or after 20 s)."""
    text = ""
    async with aiohttp.ClientSession() as http:
        for _ in range(200):
            try:
                async with http.get(f"http://127.0.0.1:{port}/metrics") as resp:
                    text = await resp.text()
            except aiohttp.ClientConnectionError:
                pass
            if f'lapor_outbox_published_total{{channel="web"}} {expected}.0' in text:
                break
            await asyncio.sleep(0.1)
    return text


async def test_relay_process_publishes_what_a_commit_only_replica_accepted(
    settings: Settings, broker_names: dict[str, str]
) -> None:
    # The HTTP replica commits only; the relay process publishes.
    gw = bootstrap.build(with_section(settings, "outbox", enabled=False))
    assert gw.relay is None
    try:
        receipts = [
            await gw.intake.accept(
                RawInbound(
                    Channel.WEB, f"Lampu jalan mati nomor {i}".encode(), datetime.now(UTC), f"r-{i}"
                ),
                PARSER,
            )
            for i in range(20)
        ]
    finally:
        await gw.close()
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "import sys; from gateway.cli import main; sys.exit(main(['relay']))",
        env=_environ(settings, broker_names, port),
    )
    try:
        text = await _published(port, 20)
        assert 'lapor_outbox_published_total{channel="web"} 20.0' in text
        messages = await drain(settings.broker.queue, 20)
        assert sorted(json.loads(m.body)["tracking_id"] for m in messages) == sorted(
            r.tracking_id or "" for r in receipts
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), 20)
    assert code == 0
