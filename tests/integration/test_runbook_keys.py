"""The runbook's LaporRelayDataKey section played for real (docs/runbook.md): one replica started
with another ``LAPOR_SECURITY__DATA_KEY`` beside one with the right key, on one database.

What the operator can and cannot tell from it: its relay publishes its own events, so no relay
counts a ``data-key`` error and the alert stays quiet; only ``/readyz`` → ``keys`` shows it, and
that check names whichever replica differs from the one that sealed most of the newest events,
which is the right one once the wrong one took most of the traffic. If one of these fails, the
runbook says something no longer true.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pydantic import SecretStr

from gateway import bootstrap
from gateway.outbox import outbox_status
from gateway.settings import Settings
from tests.support import with_section

pytestmark = pytest.mark.integration

Client = Callable[..., Awaitable[TestClient[Any, Any]]]


def complaint(n: int) -> dict[str, Any]:
    return {
        "title": f"Saluran air tersumbat {n}",
        "body": f"Saluran air di gang {n} tersumbat sampah sejak {n + 1} minggu, banjir tiap hujan.",
        "reporter": {"name": "Budi"},
    }


async def publish_all(gateway: bootstrap.Gateway) -> None:
    assert gateway.relay is not None
    while await gateway.relay.publish_batch():
        pass


def data_key_errors(gateway: bootstrap.Gateway) -> float:
    """lapor_outbox_relay_errors_total{reason="data-key"}: what LaporRelayDataKey reads."""
    value = gateway.metrics.registry.get_sample_value(
        "lapor_outbox_relay_errors_total", {"reason": "data-key"}
    )
    return value or 0.0


async def keys_check(client: TestClient[Any, Any]) -> tuple[int, bool]:
    resp = await client.get("/readyz")
    return resp.status, (await resp.json())["checks"]["keys"]["ok"]


async def test_a_replica_with_another_data_key_raises_no_alert_and_can_pass_for_the_right_one(
    settings: Settings, aiohttp_client: Client
) -> None:
    other = SecretStr(base64.b64encode(os.urandom(32)).decode())
    right = bootstrap.build(settings)
    wrong = bootstrap.build(with_section(settings, "security", data_key=other))
    try:
        right_http = await aiohttp_client(bootstrap.build_app(right))
        wrong_http = await aiohttp_client(bootstrap.build_app(wrong))
        for n in range(3):
            assert (await right_http.post("/api/v1/complaints", json=complaint(n))).status == 202
        await publish_all(right)
        assert await keys_check(wrong_http) == (503, False)  # taken out, if checked in time
        assert await keys_check(right_http) == (200, True)

        # Reached all the same (a load balancer that does not check /readyz, or one request
        # before the check): what it accepts its own relay publishes, and nobody complains.
        for n in range(3, 7):
            assert (await wrong_http.post("/api/v1/complaints", json=complaint(n))).status == 202
            await publish_all(wrong)
            await publish_all(right)
        status = await outbox_status(right.engine)
        assert status.pending == 0 and status.unopenable == 0
        assert data_key_errors(right) == 0 and data_key_errors(wrong) == 0  # no alert

        # Four of the five newest events are the wrong key's now: the check turns round.
        assert await keys_check(right_http) == (503, False)
        assert await keys_check(wrong_http) == (200, True)
    finally:
        await wrong.close()
        await right.close()
