"""The receipt's language switch (POST /tanda-terima) at its edges, and the HTTP metrics'
"followup" surface: only the exact pages count there."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gateway import bootstrap
from gateway.http import surface
from gateway.settings import Settings
from tests.channels.web.conftest import NIK, csrf_token, web_settings
from tests.channels.web.test_web_followups import NEWS, filed

Client = Callable[..., Awaitable[TestClient[Any, Any]]]

FORM = {
    "judul": "Jalan berlubang", "isi": "Jalan Siliwangi depan pasar berlubang besar.",
    "klasifikasi": "pengaduan", "nama": "Siti Aminah", "nik": NIK, "hp": "0812 3456 7890",
}
SWITCH = re.compile(r'<form method="post" action="([^"]+)"><input type="hidden" '
                    r'name="csrf" value="([^"]+)">')


async def test_the_token_of_the_page_that_adds_shows_no_new_report_receipt(
    gw: bootstrap.Gateway, aiohttp_client: Client
) -> None:
    """The token of a /tambah page that added information, posted to the receipt's switch, does
    not bring a "Laporan Anda telah diterima" receipt: what /tambah adds is stored under ids of
    its own (add:<nonce>), so the switch finds no form's receipt for it."""
    client = await aiohttp_client(bootstrap.build_app(gw))
    receipt = await filed(client)
    token = csrf_token(await (await client.get("/tambah")).text())
    added = await client.post("/tambah", data={
        "csrf": token, "nomor": receipt["tracking_id"], "kode": receipt["followup_code"],
        "tambahan": NEWS,
    })
    assert added.status == 200 and "ditambahkan" in await added.text()
    again = await client.post("/tanda-terima", data={"csrf": token})
    html = await again.text()
    assert "Laporan Anda telah diterima" not in html, (again.status, html[:800])


async def test_the_receipts_switch_after_the_token_expired_does_not_ask_to_send_again(
    settings: Settings, aiohttp_client: Client
) -> None:
    """A citizen who keeps the receipt open longer than the form's token lives and then taps
    the language switch is told the receipt can no longer be shown and that the report was
    received: never "send it again", which would file it twice."""
    gw = bootstrap.build(web_settings(settings, csrf_max_age=2.0))
    try:
        client = await aiohttp_client(bootstrap.build_app(gw))
        html = await (await client.get("/")).text()
        receipt = await client.post("/", data={**FORM, "csrf": csrf_token(html)})
        text = await receipt.text()
        assert receipt.status == 200 and "Laporan Anda telah diterima" in text
        switch = SWITCH.search(text)
        assert switch, text
        await asyncio.sleep(3.2)
        action = switch.group(1).replace("&amp;", "&")
        late = await client.post(action, data={"csrf": switch.group(2)})
        page = await late.text()
        assert "kirim ulang" not in page and "send it again" not in page, (late.status, page)
    finally:
        await gw.close()


async def test_the_switched_receipts_address_opened_again_shows_the_status_page(
    gw: bootstrap.Gateway, aiohttp_client: Client
) -> None:
    """The address the browser shows after the switch, opened again (the history, a reopened
    tab), answers the status page saying why, not a bare 405."""
    client = await aiohttp_client(bootstrap.build_app(gw))
    resp = await client.get("/tanda-terima")
    text = await resp.text()
    assert resp.status != 405 and "/cek" in text, (resp.status, text[:300])


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/tambahan", "other"),
        ("/tambah.php", "other"),
        ("/tanda-terima-lama", "other"),
    ],
)
def test_only_the_exact_pages_count_as_followups(path: str, expected: str) -> None:
    """Only /tambah (and the API's .../followups) count on the "followup" surface: a scanner's
    /tambah.php or /tambahan must not feed LaporFollowupCodesRefused."""
    assert surface(path) == expected
