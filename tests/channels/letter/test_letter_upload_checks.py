"""The upload form tells the clerk before anything is sent when more files are chosen than one
upload holds, or a file is larger than one may be (staff.js, in the page's language); the form
is not sent then. Without JavaScript the form is sent and the server refuses it
(test_letter_uploads)."""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pydantic import SecretStr

from channels.letter.auth import Role, StaffStore
from channels.letter.static import STAFF_JS
from gateway import bootstrap
from gateway.settings import Settings
from tests.channels.letter.conftest import PASSWORD, add_staff, login
from tests.support import with_section

pytestmark = pytest.mark.integration

MAX_FILES = 3
MAX_FILE_SIZE = 200 * 1024  # "200 KB" on the page


def limited(settings: Settings) -> Settings:
    settings = with_section(settings, "web", csrf_key=SecretStr("k"))
    return with_section(
        settings, "letter", max_files=MAX_FILES, max_file_size=MAX_FILE_SIZE, ocr_workers=1
    )


@pytest.fixture
async def gw(letter_settings: Settings) -> AsyncIterator[bootstrap.Gateway]:
    gateway = bootstrap.build(limited(letter_settings))
    await add_staff(StaffStore(gateway.engine, gateway.settings.letter), "budi", Role.CLERK)
    yield gateway
    await gateway.close()


def form_tag(html: str) -> dict[str, str]:
    found = re.search(r'<form [^>]*id="upload-form"[^>]*>', html)
    assert found, "the upload form"
    return {k: unescape(v) for k, v in re.findall(r'([\w-]+)="([^"]*)"', found.group(0))}


async def test_the_upload_form_carries_its_limits_and_what_to_say_in_its_language(
    client: TestClient[Any, Any],
) -> None:
    await login(client, "budi")
    form = form_tag(await (await client.get("/staff/")).text())
    assert form["data-max-files"] == str(MAX_FILES)
    assert form["data-max-size"] == str(MAX_FILE_SIZE)
    assert form["data-too-many"].startswith(
        "Terpilih {count} berkas, padahal paling banyak 3 berkas sekali unggah"
    )
    assert form["data-too-large"].startswith(
        "Lebih dari 200 KB, unggahan ini akan ditolak: {names}"
    )
    english = form_tag(await (await client.get("/staff/?lang=en")).text())
    assert english["data-too-many"].startswith("{count} files are chosen, but one upload holds")
    assert "Larger than 200 KB" in english["data-too-large"]
    # The script reads exactly these.
    for name in ("data-max-files", "data-max-size", "data-too-many", "data-too-large"):
        assert f"'{name}'" in STAFF_JS


def small_png(text: str) -> bytes:
    from PIL import Image, ImageDraw

    img = Image.new("L", (320, 120), 255)
    ImageDraw.Draw(img).text((20, 50), text, fill=0)
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_the_clerk_is_told_before_sending_too_many_or_too_large_files(
    letter_settings: Settings, tmp_path: Path
) -> None:
    from tests.browser import browser_page, require_chromium, serving

    require_chromium()
    gateway = bootstrap.build(limited(letter_settings))
    await add_staff(StaffStore(gateway.engine, gateway.settings.letter), "budi", Role.CLERK)
    small = []
    for n in range(MAX_FILES + 1):
        small.append(tmp_path / f"surat-{n + 1}.png")
        small[-1].write_bytes(small_png(f"Surat {n + 1}"))
    large = tmp_path / "bundel-$&-besar.pdf"  # "$&" would be the match in a replace pattern
    large.write_bytes(b"%PDF-1.4\n" + b"0" * MAX_FILE_SIZE)

    async with serving(gateway) as base, browser_page(tmp_path / "desk", 1366, 768) as p:
        posted: list[str] = []
        p.on("request", lambda r: posted.append(r.url) if r.method == "POST" else None)
        await p.goto(base + "/staff/login")
        await p.fill("#username", "budi")
        await p.fill("#password", PASSWORD)
        async with p.expect_navigation():
            await p.click("button[type=submit]")
        posted.clear()
        check = p.locator("#upload-check")
        assert await check.count() == 1 and not await check.is_visible()

        # One file too many: said at once, in Indonesian; the form is not sent.
        await p.set_input_files("#berkas", [str(f) for f in small])
        assert await check.is_visible()
        said = await check.inner_text()
        assert said.startswith(
            f"Terpilih {MAX_FILES + 1} berkas, padahal paling banyak {MAX_FILES} berkas "
            "sekali unggah: unggahan ini akan ditolak."
        ), said
        assert await check.get_attribute("role") == "alert"
        await p.click("#upload")
        await p.wait_for_timeout(500)
        assert posted == [] and p.url == base + "/staff/"
        assert said in await p.eval_on_selector("#berkas", "e => e.validationMessage")

        # A file over the size: named; both at once are both said.
        await p.set_input_files("#berkas", [str(small[0]), str(large)])
        said = await check.inner_text()
        assert said.startswith(
            "Lebih dari 200 KB, unggahan ini akan ditolak: bundel-$&-besar.pdf."
        ), said
        assert "surat-1.png" not in said
        await p.set_input_files("#berkas", [*map(str, small), str(large)])
        said = await check.inner_text()
        assert "Terpilih 5 berkas" in said and "ditolak: bundel-$&-besar.pdf." in said
        await p.click("#upload")
        await p.wait_for_timeout(500)
        assert posted == []

        # Within the limits: nothing said, and the form goes.
        await p.set_input_files("#berkas", [str(f) for f in small[:MAX_FILES]])
        assert not await check.is_visible()
        assert await p.eval_on_selector("#berkas", "e => e.validationMessage") == ""
        async with p.expect_navigation():
            await p.click("#upload")
        assert "/staff/uploads/" in p.url and posted == [base + "/staff/letters"]

        # In English with the page.
        await p.goto(base + "/staff/?lang=en")
        await p.set_input_files("#berkas", [str(large)])
        assert (await check.inner_text()).startswith(
            "Larger than 200 KB, so this upload would be refused: bundel-$&-besar.pdf."
        )
