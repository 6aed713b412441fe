"""The shipped ``config/kannel/kannel.conf``, run by a REAL Kannel 1.4.5 in front of the gateway.

The file is used as it is, with only what must differ on a test machine swapped: its ports for
free ones, its log and store paths for the test's folder, the operator's SMPP host for a closed
local port (bearerbox keeps trying it, as it would an operator link that is down), the gateway's
address and the secrets. Kannel's fake SMSC is added beside the SMPP link to inject MOs. An MO
then goes all the way: bearerbox -> smsbox -> the gateway's /sms/kannel -> a complaint, and the
reply with its tracking ID comes back through smsbox's sendsms to the SMSC the MO came from.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from pydantic import SecretStr
from sqlalchemy import select

from gateway import bootstrap
from gateway.settings import Settings
from gateway.storage.schema import complaints
from tests.channels.sms.kannel_harness import SENDSMS_PASSWORD, SENDSMS_USER, Kannel, installed
from tests.support import ROOT, free_port, system_package, with_section

pytestmark = [
    pytest.mark.integration,
    system_package(installed(), "Kannel (kannel, kannel-extras)"),
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
]

SHIPPED = ROOT / "config" / "kannel" / "kannel.conf"
TOKEN = "kannel-config-test-token"
TRACKING = re.compile(r"No\. lacak: ([0-9A-Z]{4})-([0-9A-Z]{5})")
FAKE_SMSC = """
group = smsc
smsc = fake
smsc-id = inject
port = {port}
connect-allow-ip = 127.0.0.1
"""


@dataclass
class ShippedKannel(Kannel):
    """The harness's Kannel, configured by the shipped file instead of the harness's own."""

    operator_port: int = field(default_factory=free_port)  # nothing listens there

    def config(self) -> str:
        text = SHIPPED.read_text()
        swaps = [
            ("admin-port = 13000", f"admin-port = {self.admin_port}", 1),
            ("smsbox-port = 13001", f"smsbox-port = {self.smsbox_port}", 1),
            ("bearerbox-port = 13001", f"bearerbox-port = {self.smsbox_port}", 1),
            ("sendsms-port = 13013", f"sendsms-port = {self.sendsms_port}", 1),
            ('"/var/log/kannel/', f'"{self.workdir}/', 3),
            ('"/var/spool/kannel/', f'"{self.workdir}/', 1),
            ("host = CHANGE-ME-smsc.operator.example", "host = 127.0.0.1", 1),
            ("port = 2775", f"port = {self.operator_port}", 1),
            ("password = CHANGE-ME-sendsms-password", f"password = {SENDSMS_PASSWORD}", 1),
            (
                "http://gateway.internal:8080/sms/kannel?token=CHANGE-ME-kannel-token&",
                f"{self.get_url}token={TOKEN}&",
                1,
            ),
        ]
        for old, new, times in swaps:
            # The file changed under the test: say which line it no longer has.
            assert text.count(old) == times, f"{SHIPPED.name}: expected {old!r} {times} time(s)"
            text = text.replace(old, new)
        return text + FAKE_SMSC.format(port=self.smsc_port)


@dataclass
class Served:
    gw: bootstrap.Gateway
    kannel: ShippedKannel


@pytest.fixture
async def served(settings: Settings, tmp_path: Path) -> AsyncIterator[Served]:
    port = free_port()
    kannel = ShippedKannel(tmp_path / "kannel", f"http://127.0.0.1:{port}/sms/kannel?")
    kannel.workdir.mkdir()
    gw = bootstrap.build(
        with_section(
            settings,
            "sms",
            kannel_token=SecretStr(TOKEN),
            kannel_sendsms_url=kannel.sendsms_url,
            kannel_sendsms_username=SENDSMS_USER,
            kannel_sendsms_password=SecretStr(SENDSMS_PASSWORD),
            callback_url=f"http://127.0.0.1:{port}",
            sender_poll_interval=0.05,
        )
    )
    assert gw.sms is not None and gw.sms.sender is not None
    runner = web.AppRunner(bootstrap.build_app(gw), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    stop = asyncio.Event()
    sender = asyncio.create_task(gw.sms.sender.run(stop))
    await asyncio.to_thread(kannel.start)
    try:
        yield Served(gw, kannel)
    finally:
        await asyncio.to_thread(kannel.stop)
        stop.set()
        await sender
        await runner.cleanup()
        await gw.close()


async def test_the_shipped_kannel_conf_carries_an_mo_in_and_the_reply_out(served: Served) -> None:
    out = await served.kannel.inject(
        "+6281200000077 1708 text Jalan berlubang di depan pasar Sumber", verbose=True, wait_mt=20
    )
    match = TRACKING.search(out)
    assert match, out[-2000:]  # the reply, with the tracking ID, reached the MO's SMSC
    async with served.gw.engine.connect() as conn:
        stored = (await conn.execute(select(complaints.c.tracking_id))).scalars().all()
    assert stored == [match.group(1) + match.group(2)]
    # The operator's SMPP link from the file is configured and being (re)connected.
    status = f"http://127.0.0.1:{served.kannel.admin_port}/status.txt"
    async with aiohttp.ClientSession() as http, http.get(
        status, params={"password": "CHANGE-ME-status-password"}
    ) as resp:
        text = await resp.text()
    assert resp.status == 200, text
    assert re.search(r"operator\[operator\]\s+SMPP:127\.0\.0\.1:\d+/\d+:CHANGE-ME-system-id", text)
