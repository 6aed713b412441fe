"""The letter receipt's follow-up code: not printed for a letter added to an earlier report,
and its line kept on an 80 mm roll with a long address; the upload form's check cleared when
the clerk chooses again."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pypdfium2 as pdfium
import pytest
from aiohttp.test_utils import TestClient

from channels.letter.pages import Context
from channels.letter.receipt import ReceiptData, receipt_page
from gateway import bootstrap, tracking
from tests.channels.letter.test_letter_followups import (  # noqa: F401 (fixtures)
    confirm,
    desk,
    earlier_report,
    gw,
)

pytestmark = pytest.mark.integration

MM = 72 / 25.4
CODE = re.compile(r'<strong class="code">([^<]+)</strong>')


async def test_a_followup_letters_receipt_does_not_print_the_named_reports_web_code(
    gw: bootstrap.Gateway, desk: tuple[TestClient[Any, Any], str]  # noqa: F811
) -> None:
    """A letter added to an earlier report (its ID typed by the clerk, the NIK checked against
    the KTP) gives no follow-up code on its receipt: the code of the report named is its
    holder's. The receipt says only that the report carries that NIK, as the letter README
    promises; the code would open the web's /tambah to whoever holds a KTP copy and the ID."""
    _, tid = await earlier_report(gw)
    receipt = await confirm(desk, tracking.display(tid))
    assert 'id="followup"' in receipt  # added to the earlier report
    web_code = tracking.display_code(gw.intake.followup_code(tid))
    printed = CODE.search(receipt)
    assert printed is None or printed.group(1) != web_code, "the web report's code is printed"


async def test_the_followup_line_stays_on_an_80mm_roll_with_a_long_public_url(
    tmp_path: Path,
) -> None:
    """The receipt's lines with addresses (/cek, /tambah) wrap on an 80 mm roll with a long base
    address of a regional deployment: the citizen's copy keeps the whole address to type."""
    from tests.browser import browser_page, require_chromium

    require_chromium()
    base = "https://pengaduanmasyarakat.makassarkota.go.id/layananpengaduan"
    tid = "K7QM4XRT" + tracking._check_symbol("K7QM4XRT")
    data = ReceiptData(
        tracking_id=tid, received_at=datetime(2026, 12, 5, 3, 0, tzinfo=UTC),
        subject="Jalan berlubang", pages=1, clerk="siti", followup_code="ABCD-EFGH",
    )
    html = receipt_page(Context("id", None, "x", "/staff/"), data, base, "1708")
    async with browser_page(tmp_path / "roll", 1366, 768) as p:
        await p.set_content(html)
        await p.emulate_media(media="print")
        document = pdfium.PdfDocument(await p.pdf(width="80mm", height="297mm"))
    page = document[0]
    width = page.get_size()[0]
    text_page = page.get_textpage()
    text = text_page.get_text_range()
    flat = re.sub(r"[\s\ufffe]+", "", text)
    assert f"{base}/tambah" in flat, text
    start = text.find("https://", text.find("Tambah informasi"))
    beyond = [
        text[i] for i in range(start, start + len(base) + 8)
        if not text[i].isspace() and text_page.get_charbox(i)[2] > width + 0.5
    ]
    assert not beyond, (f"{len(beyond)} characters past the paper's edge ({width / MM:.0f} mm)",
                        "".join(beyond))


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_files_chosen_then_removed_clear_the_upload_check(
    letter_settings: Any, tmp_path: Path
) -> None:
    """A clerk who chose one file too many and then clears the choice (or chooses fewer) is no
    longer told the upload would be refused, and the form may be sent: a stale alert would
    block the desk's only upload form."""
    from channels.letter.auth import Role, StaffStore
    from tests.browser import browser_page, require_chromium, serving
    from tests.channels.letter.conftest import PASSWORD, add_staff
    from tests.channels.letter.test_letter_upload_checks import MAX_FILES, limited, small_png

    require_chromium()
    gateway = bootstrap.build(limited(letter_settings))
    await add_staff(StaffStore(gateway.engine, gateway.settings.letter), "budi", Role.CLERK)
    files = []
    for n in range(MAX_FILES + 1):
        files.append(tmp_path / f"surat-{n}.png")
        files[-1].write_bytes(small_png(f"Surat {n}"))
    async with serving(gateway) as base, browser_page(tmp_path / "desk", 1366, 768) as p:
        await p.goto(base + "/staff/login?lang=en")
        await p.fill("#username", "budi")
        await p.fill("#password", PASSWORD)
        async with p.expect_navigation():
            await p.click("button[type=submit]")
        check = p.locator("#upload-check")
        await p.set_input_files("#berkas", [str(f) for f in files])
        assert await check.is_visible()
        await p.set_input_files("#berkas", [])
        assert not await check.is_visible()
        assert await p.eval_on_selector("#berkas", "e => e.validationMessage") != ""  # required
        await p.set_input_files("#berkas", [str(files[0])])
        assert not await check.is_visible()
        assert await p.eval_on_selector("#berkas", "e => e.validationMessage") == ""
