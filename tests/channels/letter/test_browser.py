"""The letter desk in a real headless Chromium (Debian's ``chromium``) driven by Playwright.

The gateway runs with aiohttp's AppRunner on a free port (its letter reader and OCR pool with
real Tesseract). A clerk logs in, uploads a two-page scanned letter (a multi-page TIFF from the
generated letter set), watches the pages being read, corrects the subject on the review page,
confirms, gets the receipt; the test then reads the complaint from RabbitMQ with the corrected
field. With ``SCREENSHOTS=1`` it writes ``docs/letter-upload.png``,
``docs/letter-review.png`` and ``docs/letter-receipt.png``.

Then the counter's day: the receipt printed on A4, A5 and an 80 mm roll (one page each, the
tracking ID, the text and the QR code legible, the time in WIB); the first field in error
focused; corrections typed but not saved surviving a reload and a session that ran out; the
progress page of a batch updating in place, so the clerk's focus stays where it is.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pypdfium2 as pdfium
import pytest
from pydantic import SecretStr

from channels.letter.auth import Role, StaffStore
from gateway import bootstrap, tracking
from gateway.settings import Settings
from tests.browser import SCREENSHOTS, browser_page, require_chromium, serving
from tests.channels.letter import damaged
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


# ---- the counter's day ------------------------------------------------------------------------

MM = 72 / 25.4  # PDF points per millimetre


async def log_in(p: Any, base: str, username: str = "siti") -> None:
    await p.goto(base + "/staff/login")
    await p.fill("#username", username)
    await p.fill("#password", PASSWORD)
    async with p.expect_navigation():
        await p.click("button[type=submit]")


async def upload_and_wait(p: Any, files: list[Path], timeout_s: float = 180.0) -> list[str]:
    """Upload from the home page and wait on the progress page; the review links."""
    await p.set_input_files("#berkas", [str(f) for f in files])
    await p.click("#upload")
    await p.wait_for_url("**/staff/uploads/*")
    for _ in range(int(timeout_s * 10)):
        statuses = await p.locator("#letters .st").evaluate_all(
            "els => els.map(e => e.getAttribute('data-status'))"
        )
        if all(s == "ready" for s in statuses):
            break
        await p.wait_for_timeout(100)
    links: list[str] = await p.locator(".review-link").evaluate_all(
        "els => els.map(e => e.getAttribute('href'))"
    )
    assert len(links) == len(files), links
    return links


def square_paths_mm(page: Any) -> list[float]:
    """Sides (mm) of the square drawings of a PDF page: the QR code is the largest."""
    sides = []
    for obj in page.get_objects():
        if obj.type == pdfium.raw.FPDF_PAGEOBJ_PATH:
            left, bottom, right, top = obj.get_bounds()
            if abs((right - left) - (top - bottom)) < 1 and right - left > 10:
                sides.append((right - left) / MM)
    return sides


def cap_height_pt(text_page: Any, index: int) -> float:
    left, bottom, right, top = text_page.get_charbox(index)
    return float(top - bottom)


@pytest.fixture
async def desk(letter_settings: Settings) -> AsyncIterator[tuple[str, bootstrap.Gateway]]:
    """The desk with one OCR worker, as on a small office PC (letters are read one by one)."""
    settings = with_section(letter_settings, "web", csrf_key=SecretStr("k"))
    gateway = bootstrap.build(with_section(settings, "letter", ocr_workers=1))
    await add_staff(StaffStore(gateway.engine, gateway.settings.letter), "siti", Role.CLERK)
    async with serving(gateway) as base:
        yield base, gateway


@pytest.fixture
async def counter_page(tmp_path: Path) -> AsyncIterator[object]:
    async with browser_page(tmp_path / "counter", 1366, 768) as found:  # an office PC's screen
        yield found


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_the_receipt_prints_legibly_on_a4_a5_and_an_80mm_roll(
    desk: tuple[str, bootstrap.Gateway], counter_page: Any, tmp_path: Path
) -> None:
    base, _gateway = desk
    p = counter_page
    scan = tmp_path / "surat.png"
    scan.write_bytes(damaged.png("Surat warga"))
    await log_in(p, base)
    [review] = await upload_and_wait(p, [scan])
    await p.goto(base + review)
    # A long subject and a NIK mistyped: the confirmation puts the keyboard on the NIK.
    subject = ("Penyaluran bantuan sosial tidak tepat sasaran di Kelurahan Bonto Lebang, "
               "Kecamatan Mamajang, dan permohonan pemutakhiran data penerima bantuan")
    await p.fill("#sender_name", "Siti Nurhaliza")
    await p.fill("#nik", "737102440197064")
    await p.fill("#subject", subject)
    await p.fill("#body", "Saya ingin menyampaikan pengaduan mengenai penyaluran bantuan sosial.")
    async with p.expect_navigation():
        await p.click("#confirm")
    assert await p.evaluate("document.activeElement.id") == "nik"
    await p.keyboard.press("Control+A")
    await p.keyboard.type("7371024401970641")
    async with p.expect_navigation():
        await p.click("#confirm")
    shown = (await p.inner_text("#tracking-id")).strip()
    tid = tracking.normalize(shown)
    assert tid is not None

    await p.emulate_media(media="print")
    papers = {
        "A4": {"format": "A4"},
        "A5": {"format": "A5"},
        "80 mm roll": {"width": "80mm", "height": "297mm"},
    }
    for paper, size in papers.items():
        document = pdfium.PdfDocument(await p.pdf(**size))
        # One sheet, at the paper's own size: nothing shrunk onto it.
        assert len(document) == 1, paper
        page = document[0]
        text_page = page.get_textpage()
        text = text_page.get_text_range()
        assert shown in text and f"CEK {tid}" in text and "WIB" in text, paper
        assert "UTC" not in text and "Cetak" not in text and "Keluar" not in text, paper
        # The tracking ID at least 10 pt high (3.5 mm capitals), the words at least 6 pt.
        assert cap_height_pt(text_page, text.index(shown)) >= 10, paper
        assert cap_height_pt(text_page, text.index("Surat Anda")) >= 6, paper
        # The QR code at least 30 mm wide, on the page.
        qr = max(square_paths_mm(page))
        width_mm = page.get_size()[0] / MM
        assert 30 <= qr < width_mm, (paper, qr)
        words = re.sub(r"\s+", " ", text)
        assert subject[:40] in words, paper


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_corrections_not_saved_survive_a_reload_and_a_session_that_ran_out(
    desk: tuple[str, bootstrap.Gateway], counter_page: Any, tmp_path: Path
) -> None:
    base, gateway = desk
    p = counter_page
    scan = tmp_path / "surat.jpg"
    scan.write_bytes(damaged.jpeg("Surat warga"))
    await log_in(p, base)
    [review] = await upload_and_wait(p, [scan])
    await p.goto(base + review)
    assert await p.locator("#restored").count() == 0
    await p.fill("#subject", "Jalan berlubang di depan pasar")
    await p.fill("#phone", "0812-3456-7890")
    await p.check("#confidential")
    await p.reload()  # F5 by mistake: what was typed is still there, and the clerk is told
    assert await p.input_value("#subject") == "Jalan berlubang di depan pasar"
    assert await p.input_value("#phone") == "0812-3456-7890"
    assert await p.is_checked("#confidential")
    assert "dimuat kembali" in await p.inner_text("#restored")

    # The clerk goes on typing, is called away; the session runs out meanwhile.
    await p.fill("#body", "Jalan di depan pasar berlubang besar sejak dua bulan lalu.")
    async with gateway.engine.begin() as conn:
        await conn.exec_driver_sql(
            "UPDATE staff_sessions SET last_seen_at = datetime(created_at, '-2 hours')"
        )
    async with p.expect_navigation():
        await p.click("#save")
    assert "Sesi Anda sudah berakhir" in await p.inner_text(".alert")
    assert await p.evaluate("document.activeElement.id") == "username"
    await p.fill("#username", "siti")
    await p.fill("#password", PASSWORD)
    async with p.expect_navigation():
        await p.click("button[type=submit]")
    assert p.url == base + review  # back on the letter, everything typed put back
    assert await p.input_value("#subject") == "Jalan berlubang di depan pasar"
    assert await p.input_value("#body") == "Jalan di depan pasar berlubang besar sejak dua bulan lalu."
    assert await p.is_checked("#confidential")
    async with p.expect_navigation():
        await p.click("#save")
    # Saved: a reload shows the saved values and nothing "brought back".
    await p.reload()
    assert await p.locator("#restored").count() == 0
    assert await p.input_value("#subject") == "Jalan berlubang di depan pasar"
    assert await p.is_checked("#confidential")
    # Logging out forgets what this tab kept.
    await p.fill("#subject", "belum disimpan")
    async with p.expect_navigation():
        await p.click("#logout")
    kept = await p.evaluate("Object.keys(sessionStorage).filter(k => k.startsWith('lapor-'))")
    assert kept == []


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_the_progress_page_updates_in_place_and_keeps_the_clerks_focus(
    desk: tuple[str, bootstrap.Gateway], counter_page: Any, tmp_path: Path
) -> None:
    base, _gateway = desk
    p = counter_page
    quick = tmp_path / "satu.png"
    quick.write_bytes(damaged.png("Satu"))
    [letter] = generate(names=["letter-09"])  # two scanned pages: a few seconds more
    slow = tmp_path / "dua.tif"
    slow.write_bytes(letter.data)
    await log_in(p, base)
    await p.set_input_files("#berkas", [str(quick), str(slow)])
    await p.click("#upload")
    await p.wait_for_url("**/staff/uploads/*")
    await p.evaluate("window.sameDocument = true")
    first = p.locator("#letters tbody tr").nth(0)
    await first.locator(".review-link").wait_for(timeout=120_000)
    # The first letter is ready while the second is still read: the clerk tabs to its link.
    assert await p.locator("#letters tbody tr").nth(1).locator(".st").get_attribute(
        "data-status") == "reading"
    await first.locator(".review-link").focus()
    await p.locator("#letters tbody tr").nth(1).locator(".review-link").wait_for(
        timeout=120_000)
    # Both ready, and the page was never reloaded: the focus is where the clerk put it.
    assert await p.evaluate("window.sameDocument === true")
    assert await p.evaluate("document.activeElement.className") == "review-link"
    focused = await p.evaluate("document.activeElement.getAttribute('href')")
    assert focused == await first.locator(".review-link").get_attribute("href")
    await p.keyboard.press("Enter")
    await p.wait_for_selector("#review-form")
