"""The letter desk in a real headless Chromium (Debian's ``chromium``) driven by Playwright.

The gateway runs with aiohttp's AppRunner on a free port (its letter reader and OCR pool with
real Tesseract). A clerk logs in, uploads a two-page scanned letter (a multi-page TIFF from the
generated letter set), watches the pages being read, corrects the subject on the review page,
confirms, gets the receipt; the test then reads the complaint from RabbitMQ with the corrected
field. With ``SCREENSHOTS=1`` it writes ``docs/letter-upload.png``,
``docs/letter-review.png`` and ``docs/letter-receipt.png``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from channels.letter.auth import Role, StaffStore
from gateway import bootstrap, tracking
from gateway.settings import Settings
from tests.browser import SCREENSHOTS, browser_page, require_chromium, serving
from tests.channels.letter.conftest import PASSWORD, add_staff
from tests.channels.letter.letterset import generate
from tests.support import ROOT, drain, require_system_package, with_section

pytestmark = pytest.mark.integration

require_chromium()
require_system_package(shutil.which("tesseract") is not None, "Tesseract (tesseract-ocr)")


@pytest.fixture
async def served(letter_settings: Settings) -> AsyncIterator[tuple[str, bootstrap.Gateway]]:
    gateway = bootstrap.build(with_section(letter_settings, "web", csrf_key=SecretStr("k")))
    await add_staff(StaffStore(gateway.engine, gateway.settings.letter), "siti", Role.CLERK)
    async with serving(gateway) as base:
        yield base, gateway


@pytest.fixture
async def page(tmp_path: Path) -> AsyncIterator[object]:
    async with browser_page(tmp_path / "profile", 1280, 900) as found:  # the front desk's screen
        yield found


async def shot(p: object, name: str, full_page: bool = True) -> None:
    if SCREENSHOTS:
        await p.screenshot(path=str(ROOT / "docs" / name), full_page=full_page)  # type: ignore[attr-defined]


# One browser run is enough: test_routes covers both databases.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_clerk_uploads_reviews_corrects_confirms_and_prints_the_receipt(
    served: tuple[str, bootstrap.Gateway], page: object, settings: Settings, tmp_path: Path
) -> None:
    base, gateway = served
    [letter] = generate(names=["letter-09"])  # two pages, an LZW TIFF from the scanner
    assert letter.pages == 2 and letter.content_type == "image/tiff"
    scan = tmp_path / "surat-warga.tif"
    scan.write_bytes(letter.data)
    p = page

    await p.goto(base + "/staff/")  # type: ignore[attr-defined]
    assert p.url.endswith("/staff/login")  # type: ignore[attr-defined]
    await p.fill("#username", "siti")  # type: ignore[attr-defined]
    await p.fill("#password", PASSWORD)  # type: ignore[attr-defined]
    await p.click("button[type=submit]")  # type: ignore[attr-defined]
    assert "siti (petugas)" in await p.inner_text("#who")  # type: ignore[attr-defined]

    await p.set_input_files("#berkas", str(scan))  # type: ignore[attr-defined]
    await shot(p, "letter-upload.png")
    await p.click("#upload")  # type: ignore[attr-defined]
    await p.wait_for_url("**/staff/uploads/*")  # type: ignore[attr-defined]

    # Watch the progress: the page updates itself until the letter is ready.
    seen: list[str] = []
    for _ in range(1800):
        status = (await p.inner_text("#letters .st")).strip()  # type: ignore[attr-defined]
        if not seen or seen[-1] != status:
            seen.append(status)
        if status == "Siap diperiksa":
            break
        await p.wait_for_timeout(100)  # type: ignore[attr-defined]
    assert seen[-1] == "Siap diperiksa", seen
    assert any("dari 2 dibaca" in s for s in seen), seen

    await p.click(".review-link")  # type: ignore[attr-defined]
    await p.wait_for_selector("#review-form")  # type: ignore[attr-defined]
    assert await p.locator(".scans img").count() == 2  # type: ignore[attr-defined]
    for img in await p.locator(".scans img").all():  # type: ignore[attr-defined]
        assert await img.evaluate("i => i.complete && i.naturalWidth > 500")
    corrected = "Lampu penerangan jalan mati di Gang Melati (dikoreksi)"
    await p.fill("#subject", corrected)  # type: ignore[attr-defined]
    if SCREENSHOTS:  # the whole form, beside the first page
        await p.set_viewport_size({"width": 1280, "height": 1900})  # type: ignore[attr-defined]
        await p.evaluate("window.scrollTo(0, 0)")  # type: ignore[attr-defined]
        await shot(p, "letter-review.png", full_page=False)
        await p.set_viewport_size({"width": 1280, "height": 900})  # type: ignore[attr-defined]
    await p.click("#confirm")  # type: ignore[attr-defined]
    await p.wait_for_load_state()  # type: ignore[attr-defined]
    truth = {
        "sender_name": letter.fields.sender_name, "nik": letter.fields.nik or "",
        "phone": letter.fields.phone or "", "letter_date": letter.fields.letter_date,
        "body": letter.fields.body, "address": letter.fields.address or "",
    }
    if await p.locator("#tracking-id").count() == 0:  # type: ignore[attr-defined]
        # The reading was not perfect: the clerk fixes the fields the page marks.
        for name, value in truth.items():
            if await p.locator(f"#{name}-err").count():  # type: ignore[attr-defined]
                await p.fill(f"#{name}", value)  # type: ignore[attr-defined]
        await p.click("#confirm")  # type: ignore[attr-defined]
    shown = (await p.inner_text("#tracking-id")).strip()  # type: ignore[attr-defined]
    tid = tracking.normalize(shown)
    assert tid is not None and shown == tracking.display(tid)
    receipt = await p.inner_text("#receipt")  # type: ignore[attr-defined]
    assert f"CEK {tid}" in receipt and "1708" in receipt and "3 hari kerja" in receipt
    assert await p.locator("#receipt svg").count() == 1  # type: ignore[attr-defined]
    assert await p.locator("[data-print]").is_visible()  # type: ignore[attr-defined]
    await shot(p, "letter-receipt.png")

    assert gateway.relay is not None
    await gateway.relay.publish_batch()
    await gateway.relay._close()
    [msg] = await drain(settings.broker.queue, 1)
    event = json.loads(msg.body)
    assert event["tracking_id"] == tid and event["channel"] == "letter"
    assert event["title"] == corrected
    assert event["source"]["entered_by"] == "siti"
    [att] = event["attachments"]
    assert att["sha256"] == hashlib.sha256(letter.data).hexdigest()
    assert att["media_type"] == "image/tiff" and att["filename"] == "surat-warga.tif"
