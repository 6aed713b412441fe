"""The citizen form in a real headless Chromium (Debian's ``chromium``) driven by Playwright.

The gateway runs with aiohttp's AppRunner on a free port; the browser fills the form with a
photo, submits, reads the tracking ID on the receipt, looks it up on /cek, and the test reads the
complaint from RabbitMQ. A citizen halfway through the form switches it to English and keeps
what was typed. On phones 320 and 360 px wide every page fits the screen, every control is big
enough to tap and no text is too small. With ``SCREENSHOTS=1`` it writes the screenshots
``docs/web-form.png``, ``docs/web-receipt.png`` and ``docs/web-form-kept.png`` (an error, the
photo kept) (a normal run leaves the committed ones alone).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from channels.dates import latest_today
from channels.web.exif import make_exif_jpeg
from gateway import bootstrap, tracking
from gateway.settings import Settings
from tests.browser import SCREENSHOTS, browser_page, require_chromium, serving
from tests.channels.web.conftest import NIK, web_settings
from tests.support import ROOT, drain, phone_photo

pytestmark = pytest.mark.integration

require_chromium()


@contextlib.asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[tuple[str, bootstrap.Gateway]]:
    gateway = bootstrap.build(settings)
    async with serving(gateway) as base:
        yield base, gateway


@pytest.fixture
async def served(settings: Settings) -> AsyncIterator[tuple[str, bootstrap.Gateway]]:
    async with running(web_settings(settings)) as found:
        yield found


@pytest.fixture
async def page(tmp_path: Path) -> AsyncIterator[object]:
    async with browser_page(tmp_path / "profile", 390, 844) as found:  # a phone
        yield found


async def fill(page: object, nik: str, photo: Path | None) -> None:
    p = page
    await p.fill("#judul", "Jalan berlubang")  # type: ignore[attr-defined]
    await p.fill("#isi", "Jalan Siliwangi depan pasar berlubang besar.")  # type: ignore[attr-defined]
    await p.select_option("#klasifikasi", "aspirasi")  # type: ignore[attr-defined]
    await p.fill("#lokasi", "Jl. Siliwangi, Sumber")  # type: ignore[attr-defined]
    await p.fill("#nama", "Siti Aminah")  # type: ignore[attr-defined]
    await p.fill("#nik", nik)  # type: ignore[attr-defined]
    await p.fill("#hp", "0812 3456 7890")  # type: ignore[attr-defined]
    if photo is not None:
        await p.set_input_files("#lampiran", str(photo))  # type: ignore[attr-defined]


def street_photo(tmp_path: Path) -> Path:
    """A small JPEG with a GPS position, as a phone takes it."""
    photo = tmp_path / "jalan.jpg"
    photo.write_bytes(phone_photo(padding=4000))
    return photo


async def published_event(gateway: bootstrap.Gateway, settings: Settings) -> dict[str, Any]:
    """Publish what the gateway holds and read back the one event from RabbitMQ."""
    assert gateway.relay is not None
    await gateway.relay.publish_batch()
    await gateway.relay._close()
    [msg] = await drain(settings.broker.queue, 1)
    event: dict[str, Any] = json.loads(msg.body)
    return event


async def test_citizen_fills_the_form_and_follows_the_report(
    served: tuple[str, bootstrap.Gateway], page: object, settings: Settings, tmp_path: Path,
    database_url: str,
) -> None:
    base, gateway = served
    p = page
    photo = street_photo(tmp_path)
    await p.goto(base + "/")  # type: ignore[attr-defined]
    assert "hoaks" in await p.inner_text("main")  # type: ignore[attr-defined]
    await fill(p, NIK, photo)
    if SCREENSHOTS and database_url.startswith("sqlite"):
        await p.screenshot(path=str(ROOT / "docs" / "web-form.png"), full_page=True)  # type: ignore[attr-defined]
    await p.click("button[type=submit]")  # type: ignore[attr-defined]
    shown = (await p.inner_text("#tracking-id")).strip()  # type: ignore[attr-defined]
    tid = tracking.normalize(shown)
    assert tid is not None and shown == tracking.display(tid)
    # The SMS to send is kept on one line: a narrow screen broke it at the ID's dash.
    sms = await p.evaluate(  # type: ignore[attr-defined]
        "(() => { const e = document.querySelector('.sms');"
        " return [e.textContent, getComputedStyle(e).whiteSpace, e.getClientRects().length]; })()"
    )
    assert sms == [f"CEK {shown}", "nowrap", 1]
    if SCREENSHOTS and database_url.startswith("sqlite"):
        await p.screenshot(path=str(ROOT / "docs" / "web-receipt.png"), full_page=True)  # type: ignore[attr-defined]

    await p.goto(base + "/cek")  # type: ignore[attr-defined]
    await p.fill("#id", shown)  # type: ignore[attr-defined]
    await p.click("button[type=submit]")  # type: ignore[attr-defined]
    assert "menunggu verifikasi" in await p.inner_text("#status")  # type: ignore[attr-defined]

    event = await published_event(gateway, settings)
    assert event["tracking_id"] == tid and event["kind"] == "aspirasi"
    assert event["reporter"]["nik"] == NIK and event["reporter"]["phone"] == "+6281234567890"
    [att] = event["attachments"]
    assert att["filename"] == "jalan.jpg" and att["media_type"] == "image/jpeg"
    assert await gateway.files.read(att["sha256"]) == photo.read_bytes()


async def test_invalid_nik_is_explained_and_the_typed_text_kept(
    served: tuple[str, bootstrap.Gateway], page: object
) -> None:
    base, gateway = served
    p = page
    await p.goto(base + "/")  # type: ignore[attr-defined]
    await fill(p, "3209014101900000", None)
    await p.click("button[type=submit]")  # type: ignore[attr-defined]
    assert "0000" in await p.inner_text("#nik-err")  # type: ignore[attr-defined]
    assert await p.input_value("#nik") == "3209014101900000"  # type: ignore[attr-defined]
    assert await p.input_value("#judul") == "Jalan berlubang"  # type: ignore[attr-defined]
    assert await p.input_value("#klasifikasi") == "aspirasi"  # type: ignore[attr-defined]
    assert await gateway.intake.count_complaints() == 0


@pytest.mark.parametrize("address", ["/", "/?lang=en"])
async def test_a_photo_too_big_is_refused_and_the_typed_text_kept(
    settings: Settings, page: object, tmp_path: Path, address: str
) -> None:
    p = page
    photo = tmp_path / "besar.jpg"
    photo.write_bytes(make_exif_jpeg(-6.7612, 108.4801, b"\x00" * 200_000))
    async with running(web_settings(settings, max_attachment_size=50_000)) as (base, gateway):
        await p.goto(base + address)  # type: ignore[attr-defined]
        await fill(p, NIK, photo)
        await p.fill("#email", "siti@contoh.id")  # type: ignore[attr-defined]
        await p.check("#rahasia")  # type: ignore[attr-defined]
        await p.click("button[type=submit]")  # type: ignore[attr-defined]
        error = await p.inner_text("#lampiran-err")  # type: ignore[attr-defined]
        assert "besar.jpg" in error and "48 KB" in error
        for field, typed in (("#judul", "Jalan berlubang"), ("#nik", NIK),
                             ("#nama", "Siti Aminah"), ("#email", "siti@contoh.id"),
                             ("#isi", "Jalan Siliwangi depan pasar berlubang besar.")):
            assert await p.input_value(field) == typed  # type: ignore[attr-defined]
        assert await p.is_checked("#rahasia")  # type: ignore[attr-defined]
        # In the language it was filled in, the summary on top leading to the attachment.
        lang = "en" if "lang=en" in address else "id"
        assert await p.get_attribute("html", "lang") == lang  # type: ignore[attr-defined]
        summary = await p.inner_text("#error-summary a[href='#lampiran']")  # type: ignore[attr-defined]
        assert summary.startswith("Attachments: " if lang == "en" else "Lampiran: ")
        assert await gateway.intake.count_complaints() == 0


async def test_after_an_invalid_nik_the_photo_is_kept_and_goes_with_the_report(
    served: tuple[str, bootstrap.Gateway], page: object, settings: Settings, tmp_path: Path,
    database_url: str,
) -> None:
    base, gateway = served
    p = page
    photo = street_photo(tmp_path)
    await p.goto(base + "/")  # type: ignore[attr-defined]
    await fill(p, "3209014101900000", photo)
    await p.click("button[type=submit]")  # type: ignore[attr-defined]
    assert "0000" in await p.inner_text("#nik-err")  # type: ignore[attr-defined]
    assert "jalan.jpg" in await p.inner_text("#kept")  # type: ignore[attr-defined]
    assert await p.is_checked("#kept-0")  # type: ignore[attr-defined]
    if SCREENSHOTS and database_url.startswith("sqlite"):
        await p.screenshot(path=str(ROOT / "docs" / "web-form-kept.png"), full_page=True)  # type: ignore[attr-defined]
    # The file input is empty again (browsers never refill it); the photo need not be chosen.
    await p.fill("#nik", NIK)  # type: ignore[attr-defined]
    await p.click("button[type=submit]")  # type: ignore[attr-defined]
    tid = tracking.normalize((await p.inner_text("#tracking-id")).strip())  # type: ignore[attr-defined]
    assert tid is not None
    event = await published_event(gateway, settings)
    assert event["tracking_id"] == tid and event["reporter"]["nik"] == NIK
    [att] = event["attachments"]
    assert att["filename"] == "jalan.jpg"
    assert await gateway.files.read(att["sha256"]) == photo.read_bytes()


# The widest element's right edge and the page's width, on a phone 320 px wide.
OVERFLOW = (
    "(() => [Math.max(...[...document.querySelectorAll('body *')]"
    ".map(e => e.getBoundingClientRect().right)), document.documentElement.scrollWidth])()"
)


@pytest.fixture
async def small(tmp_path: Path) -> AsyncIterator[object]:
    async with browser_page(tmp_path / "small", 320, 640) as found:  # a cheap, small phone
        yield found


async def test_on_a_320_px_phone_a_long_photo_name_and_the_tracking_id_fit(
    served: tuple[str, bootstrap.Gateway], small: object, tmp_path: Path
) -> None:
    base, _ = served
    p = small
    photo = tmp_path / "IMG_20261117_083015123_HDR_PORTRAIT_jalan_siliwangi.jpg"  # a phone's name
    photo.write_bytes(street_photo(tmp_path).read_bytes())
    await p.goto(base + "/")  # type: ignore[attr-defined]
    assert await p.evaluate(OVERFLOW) == [320, 320]  # type: ignore[attr-defined]
    await fill(p, "3209014101900000", photo)
    await p.click("button[type=submit]")  # type: ignore[attr-defined]
    assert photo.name in await p.inner_text("#kept")  # type: ignore[attr-defined]
    right, width = await p.evaluate(OVERFLOW)  # type: ignore[attr-defined]
    assert right <= 320 and width == 320
    await p.fill("#nik", NIK)  # type: ignore[attr-defined]
    await p.click("button[type=submit]")  # type: ignore[attr-defined]
    # The tracking ID on one line, within the screen: not broken at its dash.
    tid = await p.evaluate(  # type: ignore[attr-defined]
        "(() => { const e = document.querySelector('#tracking-id'), r = document.createRange(),"
        " s = getComputedStyle(e); r.selectNodeContents(e); return [r.getClientRects().length,"
        " r.getBoundingClientRect().width <= e.clientWidth - parseFloat(s.paddingLeft)"
        " - parseFloat(s.paddingRight)]; })()"
    )
    assert tid == [1, True]
    right, width = await p.evaluate(OVERFLOW)  # type: ignore[attr-defined]
    assert right <= 320 and width == 320


async def test_switching_the_form_to_english_keeps_what_was_typed(
    served: tuple[str, bootstrap.Gateway], small: object, tmp_path: Path
) -> None:
    base, gateway = served
    p = small  # a 320 px phone
    photo = street_photo(tmp_path)
    # The page is made between these two readings of the clock: when the date changes in
    # Indonesia's east (15:00 UTC) between them, either date is right.
    before = latest_today(datetime.now(UTC))
    await p.goto(base + "/")  # type: ignore[attr-defined]
    after = latest_today(datetime.now(UTC))
    # The date picker stops at today: a later date is out of the input's range.
    picker_max = await p.get_attribute("#tanggal", "max")  # type: ignore[attr-defined]
    assert picker_max in (before.isoformat(), after.isoformat()), (picker_max, before, after)
    today = date.fromisoformat(picker_max)
    await p.fill("#tanggal", (today + timedelta(days=1)).isoformat())  # type: ignore[attr-defined]
    assert await p.evaluate("document.querySelector('#tanggal').validity.rangeOverflow")  # type: ignore[attr-defined]
    happened = (today - timedelta(days=3)).isoformat()
    await p.fill("#tanggal", happened)  # type: ignore[attr-defined]
    await fill(p, NIK, photo)
    story = "Jalan Siliwangi depan pasar berlubang besar.\nSudah dua bulan, motor sering jatuh."
    await p.fill("#isi", story)  # type: ignore[attr-defined]
    await p.check("#rahasia")  # type: ignore[attr-defined]
    # The header's "English" leads to the form's own switch, a button labelled in English.
    await p.click("header a")  # type: ignore[attr-defined]
    switch = p.locator("#ganti-bahasa")  # type: ignore[attr-defined]
    assert await switch.get_attribute("lang") == "en"
    assert "Show this form in English" in await switch.inner_text()
    await switch.click()
    await p.wait_for_selector("html[lang=en]")  # type: ignore[attr-defined]
    assert await p.inner_text("h1") == "Submit your report"  # type: ignore[attr-defined]
    for field, typed in (("#judul", "Jalan berlubang"), ("#isi", story), ("#tanggal", happened),
                         ("#klasifikasi", "aspirasi"), ("#lokasi", "Jl. Siliwangi, Sumber"),
                         ("#nama", "Siti Aminah"), ("#nik", NIK), ("#hp", "0812 3456 7890")):
        assert await p.input_value(field) == typed, field  # type: ignore[attr-defined]
    assert await p.is_checked("#rahasia") and not await p.is_checked("#anonim")  # type: ignore[attr-defined]
    assert await p.locator(".err, [role=alert]").count() == 0  # type: ignore[attr-defined]
    # The photo was not taken (a browser cannot refill a file input): the page says so.
    note = await p.inner_text("#lampiran-note")  # type: ignore[attr-defined]
    assert "jalan.jpg" in note and "Choose them again" in note
    assert await p.evaluate("document.querySelector('#lampiran').files.length") == 0  # type: ignore[attr-defined]
    right, width = await p.evaluate(OVERFLOW)  # type: ignore[attr-defined]
    assert right <= 320 and width == 320
    assert await gateway.intake.count_complaints() == 0
    assert not gateway.files.root.exists() or not any(
        f.is_file() for f in gateway.files.root.rglob("*")
    )
    # Chosen again, in English, the report goes.
    await p.set_input_files("#lampiran", str(photo))  # type: ignore[attr-defined]
    await p.click("button[type=submit]")  # type: ignore[attr-defined]
    assert "Your report has been received" in await p.inner_text("main")  # type: ignore[attr-defined]
    assert tracking.normalize((await p.inner_text("#tracking-id")).strip())  # type: ignore[attr-defined]
    assert await gateway.intake.count_complaints() == 1


# What a thumb and a tired eye need, on the page shown: the page no wider than the screen; every
# control at least 44 px high (a checkbox at least 24 px, its label, which ticks it too, 44 px);
# every field with a label; no text smaller than 14 px. What falls short, and the page's width.
PHONE_FIT = """(() => {
  const width = document.documentElement.clientWidth, short = [];
  for (const e of document.querySelectorAll(
      'a[href], button, input:not([type=hidden]), select, textarea')) {
    const r = e.getBoundingClientRect(), name = e.id || e.textContent.trim();
    if (r.right > width + 0.5) short.push('wider: ' + name);
    if (e.labels && e.tagName !== 'BUTTON' && e.labels.length === 0) short.push('no label: ' + name);
    if (e.type === 'checkbox') {
      const label = document.querySelector('label[for="' + e.id + '"]').getBoundingClientRect();
      if (r.width < 24 || r.height < 24 || label.height < 44) short.push('checkbox: ' + name);
    } else if (r.height < 44 || r.width < 44) {
      short.push('small: ' + name + ' ' + Math.round(r.width) + 'x' + Math.round(r.height));
    }
  }
  for (const e of document.querySelectorAll('body *')) {
    const text = [...e.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    if (text && parseFloat(getComputedStyle(e).fontSize) < 14) short.push('tiny: ' + e.tagName);
  }
  return [short, document.documentElement.scrollWidth, width];
})()"""


async def fits_the_phone(p: Any) -> None:
    short, scrolled, width = await p.evaluate(PHONE_FIT)
    assert short == [] and scrolled == width, (short, scrolled, width)


@pytest.fixture(params=[(320, 568), (360, 640)], ids=["320x568", "360x640"])
async def phone(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[object]:
    width, height = request.param
    async with browser_page(tmp_path / "phone", width, height) as found:
        yield found


async def test_on_a_small_phone_every_page_fits_and_every_control_is_big_enough_to_tap(
    served: tuple[str, bootstrap.Gateway], phone: object, tmp_path: Path
) -> None:
    base, _ = served
    p: Any = phone
    photo = tmp_path / "IMG_20261117_083015123_HDR_PORTRAIT_jalan_siliwangi.jpg"  # a phone's name
    photo.write_bytes(street_photo(tmp_path).read_bytes())
    await p.goto(base + "/")
    await fits_the_phone(p)
    # The hoax warning is read before anything is typed: whole on the first screen.
    hoax = await p.evaluate("document.querySelector('.hoax').getBoundingClientRect().bottom")
    assert hoax <= p.viewport_size["height"]
    await fill(p, "3209014101900000", photo)
    await p.fill("#isi", "pendek")
    await p.click("button[type=submit]")
    # Sent back: the summary on top names each wrong field and leads to it.
    summary = p.locator("#error-summary a")
    assert await summary.count() == 2
    assert await summary.nth(0).get_attribute("href") == "#isi"
    assert await summary.nth(1).get_attribute("href") == "#nik"
    await fits_the_phone(p)
    await summary.nth(1).click()
    assert await p.evaluate("document.activeElement.id") == "nik"
    await p.fill("#nik", NIK)
    await p.fill("#isi", "Jalan Siliwangi depan pasar berlubang besar.")
    await p.click("button[type=submit]")
    shown = (await p.inner_text("#tracking-id")).strip()
    await fits_the_phone(p)
    lines, inside = await p.evaluate(  # the ID on one line, within its box
        "(() => { const e = document.querySelector('#tracking-id'), r = document.createRange(),"
        " s = getComputedStyle(e); r.selectNodeContents(e); return [r.getClientRects().length,"
        " r.getBoundingClientRect().width <= e.clientWidth - parseFloat(s.paddingLeft)"
        " - parseFloat(s.paddingRight)]; })()"
    )
    assert lines == 1 and inside
    # A long press (a double click here) selects the whole ID to copy, not the half before or
    # after its dash.
    await p.dblclick("#tracking-id")
    assert await p.evaluate("getSelection().toString()") == shown
    # The header's "English" leads to the receipt's switch, which shows the same receipt in
    # English: the ID and the follow-up code still on the screen.
    code = await p.inner_text("#followup-code")
    await p.click("header a")
    await p.click("#ganti-bahasa")
    await p.wait_for_selector("html[lang=en]")
    assert (await p.inner_text("#tracking-id")).strip() == shown
    assert await p.inner_text("#followup-code") == code
    await fits_the_phone(p)
    # Its status, in English.
    await p.click("text=Check a report's status")
    assert await p.input_value("#id") == shown
    assert "waiting for verification" in await p.inner_text("#status")
    await fits_the_phone(p)
    await p.fill("#id", "AAAA-BBBBB")
    await p.click("button[type=submit]")
    assert await p.get_attribute("#id", "aria-describedby") == "not-found"
    await fits_the_phone(p)


async def test_citizen_adds_information_with_the_code_from_the_receipt(
    served: tuple[str, bootstrap.Gateway], phone: object, settings: Settings, tmp_path: Path
) -> None:
    """The receipt's code, typed on the page its link opens, on the smallest phone: a wrong
    code is said next to its field with everything typed kept; the right one adds the text to
    the report, and the routing core gets it as a ``followup`` of that report."""
    base, gateway = served
    p: Any = phone
    await p.goto(base + "/")
    await fill(p, NIK, None)
    await p.click("button[type=submit]")
    shown = (await p.inner_text("#tracking-id")).strip()
    code = (await p.inner_text("#followup-code")).strip()
    await p.click("text=Tambah informasi")
    await p.wait_for_selector("#tambahan")
    assert await p.input_value("#nomor") == shown
    await fits_the_phone(p)
    news = "Lubangnya makin besar, kemarin dua motor jatuh."
    await p.fill("#kode", "2222-2222")
    await p.fill("#tambahan", news)
    await p.click("button[type=submit]")
    assert "tidak cocok" in await p.inner_text("#kode-err")
    assert await p.input_value("#tambahan") == news and await p.input_value("#nomor") == shown
    await fits_the_phone(p)
    await p.fill("#kode", code.lower())
    await p.click("button[type=submit]")
    assert (await p.inner_text("#tracking-id")).strip() == shown
    assert "ditambahkan" in await p.inner_text("main")
    await fits_the_phone(p)
    assert gateway.relay is not None
    await gateway.relay.publish_batch()
    await gateway.relay._close()
    created, followup = [json.loads(m.body) for m in await drain(settings.broker.queue, 2)]
    assert followup["event"] == "followup" and followup["body"] == news
    assert followup["tracking_id"] == created["tracking_id"] == tracking.normalize(shown)
