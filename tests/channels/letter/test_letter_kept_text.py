"""What the clerk typed and has not saved, kept by ``staff.js`` in the tab: on the pages that show
values which were sent and not saved (a 409 because someone saved first), those values are the
kept copy, so a GET of the letter (the language switch, the login after a session ran out)
brings them back; the pages that show saved values (the review, the 422 page) keep the rule of
putting back only what was typed over them.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from channels.letter.auth import Role, StaffStore
from channels.letter.drafts import DraftStore, values_version
from gateway import bootstrap
from gateway.settings import Settings
from tests.channels.letter.conftest import PASSWORD, add_staff
from tests.channels.letter.test_pages import ctx, draft
from tests.support import with_section


def small_png(text: str) -> bytes:
    from PIL import Image, ImageDraw

    img = Image.new("L", (320, 120), 255)
    ImageDraw.Draw(img).text((20, 50), text, fill=0)
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


# ---- the marker (pure) ------------------------------------------------------------------------


def test_only_a_form_showing_values_not_saved_is_marked_unsaved() -> None:
    from channels.letter.pages import review_page, unsaved_page

    saved = draft()
    # The review as saved, or the 422 page (its values were saved): nothing to mark.
    html = review_page(ctx(), saved, saved.values, frozenset(), None,
                       version=values_version(saved.values))
    assert 'data-draft="d-1"' in html and "data-unsaved" not in html
    # A 409: what was typed, over the values saved meanwhile (the form builds on those).
    typed = {**saved.values, "body": "Jalan berlubang di depan pasar sejak dua bulan."}
    html = review_page(ctx(), saved, typed, frozenset(), None,
                       version=values_version(saved.values), theirs={"body": ""})
    assert "data-unsaved" in html
    # A 503 while saving: what was typed, with the form's based_on as sent.
    html = review_page(ctx(), saved, typed, frozenset(), None, version="v0")
    assert "data-unsaved" in html
    # Without the letter, staff.js does not keep anything on the page at all.
    html = unsaved_page(ctx(), "d-1", typed, None, "v0", None)
    assert "data-draft" not in html and "data-unsaved" not in html


# ---- in the browser ---------------------------------------------------------------------------


@pytest.fixture
async def desk(letter_settings: Settings) -> AsyncIterator[tuple[str, bootstrap.Gateway]]:
    from tests.browser import require_chromium, serving

    require_chromium()
    settings = with_section(letter_settings, "web", csrf_key=SecretStr("k"))
    gateway = bootstrap.build(with_section(settings, "letter", ocr_workers=1))
    store = StaffStore(gateway.engine, gateway.settings.letter)
    await add_staff(store, "siti", Role.CLERK)
    await add_staff(store, "ani", Role.SUPERVISOR)
    async with serving(gateway) as base:
        yield base, gateway


async def open_letter(p: Any, base: str, tmp_path: Path) -> str:
    """Log siti in, upload a one-page letter, wait until it is read; the review address."""
    scan = tmp_path / "surat.png"
    scan.write_bytes(small_png("Surat warga"))
    await p.goto(base + "/staff/login")
    await p.fill("#username", "siti")
    await p.fill("#password", PASSWORD)
    async with p.expect_navigation():
        await p.click("button[type=submit]")
    await p.set_input_files("#berkas", str(scan))
    await p.click("#upload")
    await p.wait_for_url("**/staff/uploads/*")
    for _ in range(1200):
        if await p.locator(".review-link").count():
            break
        await p.wait_for_timeout(100)
    review = await p.locator(".review-link").first.get_attribute("href")
    assert review
    await p.goto(base + review)
    return str(review)


async def supervisor_saves(gateway: bootstrap.Gateway, draft_id: str, **changes: str) -> None:
    drafts = DraftStore(gateway.engine, gateway.keys)
    found = await drafts.get(draft_id)
    assert found is not None
    [ani] = [a for a in await StaffStore(gateway.engine, gateway.settings.letter).accounts()
             if a.username == "ani"]
    assert await drafts.save(draft_id, ani.id, {**found.values, **changes})


@pytest.mark.integration
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_the_language_switch_on_a_conflict_page_keeps_what_was_typed(
    desk: tuple[str, bootstrap.Gateway], tmp_path: Path
) -> None:
    from tests.browser import browser_page

    base, gateway = desk
    async with browser_page(tmp_path / "counter", 1366, 768) as p:
        review = await open_letter(p, base, tmp_path)
        typed = "Jalan di depan pasar berlubang besar sejak dua bulan lalu, sudah tiga kali jatuh."
        await p.fill("#body", typed)
        await supervisor_saves(gateway, review.rsplit("/", 1)[1], subject="Jalan rusak")
        async with p.expect_navigation():
            await p.click("#save")
        assert "diubah oleh ani" in await p.inner_text(".alert")
        assert await p.locator("#restored").count() == 0  # the 409 page says what it shows
        assert await p.input_value("#body") == typed
        shown = await p.input_value("#subject")  # siti's, with ani's "Jalan rusak" under it
        assert shown != "Jalan rusak"

        # Nothing typed on the 409 page: the language switch (a GET of the letter) brings
        # back the form as it showed it, over ani's values, and says so.
        async with p.expect_navigation():
            await p.click("#lang-switch")
        assert p.url.startswith(base + review)
        assert await p.input_value("#body") == typed
        assert await p.input_value("#subject") == shown
        assert "brought back" in await p.inner_text("#restored")

        # Saved from there, it is meant: it lands over ani's values, and nothing is kept.
        async with p.expect_navigation():
            await p.click("#save")
        assert "Draft saved" in await p.inner_text("main")
        await p.reload()
        assert await p.locator("#restored").count() == 0
        assert await p.input_value("#body") == typed
        kept = await p.evaluate("Object.keys(sessionStorage).filter(k => k.startsWith('lapor-'))")
        assert kept == []


@pytest.mark.integration
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_second_conflict_keeps_what_was_typed_on_the_first_conflict_page(
    desk: tuple[str, bootstrap.Gateway], tmp_path: Path
) -> None:
    from tests.browser import browser_page

    base, gateway = desk
    draft_id = ""
    async with browser_page(tmp_path / "counter", 1366, 768) as p:
        review = await open_letter(p, base, tmp_path)
        draft_id = review.rsplit("/", 1)[1]
        await p.fill("#body", "Ketikan pertama yang cukup panjang untuk isi surat.")
        await supervisor_saves(gateway, draft_id, subject="Jalan rusak")
        async with p.expect_navigation():
            await p.click("#save")
        assert "diubah oleh ani" in await p.inner_text(".alert")
        # Corrected on the 409 page; ani saves once more before siti's Save.
        second = "Ketikan kedua, dibetulkan di halaman konflik, sesuai surat aslinya."
        await p.fill("#body", second)
        await supervisor_saves(gateway, draft_id, subject="Jalan rusak berat")
        async with p.expect_navigation():
            await p.click("#save")
        assert "diubah oleh ani" in await p.inner_text(".alert")
        assert await p.input_value("#body") == second
        shown = await p.input_value("#subject")
        # The session runs out; the login leads back to the letter with the latest typing.
        async with gateway.engine.begin() as conn:
            await conn.exec_driver_sql(
                "UPDATE staff_sessions SET last_seen_at = datetime(created_at, '-2 hours')"
            )
        async with p.expect_navigation():
            await p.click("#save")
        assert "Sesi Anda sudah berakhir" in await p.inner_text(".alert")
        await p.fill("#username", "siti")
        await p.fill("#password", PASSWORD)
        async with p.expect_navigation():
            await p.click("button[type=submit]")
        assert p.url == base + review
        assert await p.input_value("#body") == second
        assert await p.input_value("#subject") == shown
        assert await p.locator("#restored").count() == 1


@pytest.mark.integration
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_the_422_page_shows_saved_values_and_brings_nothing_older_back(
    desk: tuple[str, bootstrap.Gateway], tmp_path: Path
) -> None:
    from tests.browser import browser_page

    base, _gateway = desk
    async with browser_page(tmp_path / "counter", 1366, 768) as p:
        review = await open_letter(p, base, tmp_path)
        await p.fill("#subject", "Jalan berlubang")
        await p.fill("#nik", "12345")  # not a NIK: the confirmation is refused (422), saved
        async with p.expect_navigation():
            await p.click("#confirm")
        assert await p.locator("#nik-err").count() == 1
        assert await p.locator("#restored").count() == 0
        # A GET of the letter shows the values as saved, nothing "brought back".
        await p.goto(base + review)
        assert await p.input_value("#nik") == "12345"
        assert await p.input_value("#subject") == "Jalan berlubang"
        assert await p.locator("#restored").count() == 0
        kept = await p.evaluate("Object.keys(sessionStorage).filter(k => k.startsWith('lapor-'))")
        assert kept == []
