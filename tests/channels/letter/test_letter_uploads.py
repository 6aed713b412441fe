"""The letter desk's upload: files that cannot be letters named beside the ones that went in,
an empty file called empty, the per-upload limit refused at the first file over it, file names
that cannot be shown, and logs that never name a file."""

from __future__ import annotations

import hashlib
import io
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient
from pydantic import SecretStr

from channels.fields import header_text
from channels.letter.auth import Role, StaffStore
from channels.letter.drafts import DraftStore
from gateway import bootstrap
from gateway.settings import Settings
from tests.channels.letter import damaged
from tests.channels.letter.conftest import add_staff, login
from tests.support import with_section

pytestmark = pytest.mark.integration

Client = Callable[..., Awaitable[TestClient[Any, Any]]]
MAX_FILES = 3
MAX_FILE_SIZE = 200 * 1024
HEIC = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00heicmif1"


def small_png(text: str = "Surat") -> bytes:
    from PIL import Image, ImageDraw

    img = Image.new("L", (320, 120), 255)
    ImageDraw.Draw(img).text((20, 50), text, fill=0)
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


@pytest.fixture
async def gw(letter_settings: Settings) -> AsyncIterator[bootstrap.Gateway]:
    settings = with_section(letter_settings, "web", csrf_key=SecretStr("test-csrf-key"))
    settings = with_section(
        settings, "letter", max_files=MAX_FILES, max_file_size=MAX_FILE_SIZE
    )
    gateway = bootstrap.build(settings)
    yield gateway
    await gateway.close()


@pytest.fixture
async def token(gw: bootstrap.Gateway, client: TestClient[Any, Any]) -> str:
    await add_staff(StaffStore(gw.engine, gw.settings.letter), "budi", Role.CLERK)
    return await login(client, "budi")


def form(token: str, files: list[tuple[str, bytes]], one_letter: bool = False) -> FormData:
    fd = FormData()
    fd.add_field("csrf", token)
    for name, data in files:
        fd.add_field("berkas", io.BytesIO(data), filename=name,
                     content_type="application/octet-stream")
    if one_letter:  # after the files, as the page puts it
        fd.add_field("one_letter", "1")
    return fd


async def letters(gw: bootstrap.Gateway) -> list[list[str | None]]:
    """The file names of each letter made, oldest first."""
    desk = await DraftStore(gw.engine, gw.keys).desk(None)
    return sorted(([f.filename for f in d.files] for d in [*desk.waiting, *desk.sent]), key=str)


def stored(gw: bootstrap.Gateway, data: bytes) -> bool:
    return gw.files.path(hashlib.sha256(data).hexdigest()).exists()


async def test_files_of_the_wrong_kind_are_named_and_the_others_go_in(
    client: TestClient[Any, Any], gw: bootstrap.Gateway, token: str
) -> None:
    docx = b"PK\x03\x04" + b"\x00" * 300
    files = [("a.png", small_png("Satu")), ("foto.heic", HEIC), ("b.png", small_png("Dua"))]
    resp = await client.post("/staff/letters", data=form(token, files))
    html = await resp.text()
    assert resp.status == 415
    assert "Berkas foto.heic bukan PDF, JPEG, PNG atau TIFF" in html
    assert "2 surat lainnya sudah diunggah dan sedang dibaca." in html
    assert 'id="uploaded-progress"' in html
    assert await letters(gw) == [["a.png"], ["b.png"]]
    assert not stored(gw, HEIC)  # read past, never stored
    # In English, with a damaged scan beside it: both named, in the upload's order.
    files = [("surat.docx", docx), ("c.png", small_png("Tiga")), ("potong.jpg", damaged.cut_jpeg())]
    en = await client.post("/staff/letters?lang=en", data=form(token, files))
    html = await en.text()
    assert en.status == 422  # two kinds of refusal
    assert html.index("The file surat.docx is not a PDF, JPEG, PNG or TIFF") < html.index(
        "The file potong.jpg is damaged or incomplete"
    )
    assert "The other letter was uploaded and is being read." in html
    assert len(await letters(gw)) == 3


async def test_a_single_file_of_the_wrong_kind_is_refused_by_name(
    client: TestClient[Any, Any], gw: bootstrap.Gateway, token: str
) -> None:
    resp = await client.post("/staff/letters", data=form(token, [("surat.docx", b"PK\x03\x04")]))
    html = await resp.text()
    assert resp.status == 415 and "Berkas surat.docx bukan PDF, JPEG, PNG atau TIFF" in html
    assert 'id="uploaded"' not in html
    assert await letters(gw) == []


async def test_pages_of_one_letter_with_one_of_the_wrong_kind_make_no_letter(
    client: TestClient[Any, Any], gw: bootstrap.Gateway, token: str
) -> None:
    files = [("hal-1.png", small_png("Satu")), ("hal-2.heic", HEIC)]
    resp = await client.post("/staff/letters", data=form(token, files, one_letter=True))
    html = await resp.text()
    assert resp.status == 415 and "Berkas hal-2.heic bukan PDF" in html
    assert "Surat ini belum diunggah" in html
    assert await letters(gw) == []


async def test_an_empty_file_is_called_empty(
    client: TestClient[Any, Any], gw: bootstrap.Gateway, token: str
) -> None:
    resp = await client.post("/staff/letters", data=form(token, [("kosong.pdf", b"")]))
    html = await resp.text()
    assert resp.status == 422
    assert "Berkas kosong.pdf kosong (0 bita)" in html and "bukan PDF" not in html
    en = await client.post("/staff/letters?lang=en", data=form(token, [("kosong.pdf", b"")]))
    html = await en.text()
    assert en.status == 422
    assert "The file kosong.pdf is empty (0 bytes)" in html and "not a PDF" not in html
    # In a batch the others still go in.
    files = [("kosong.pdf", b""), ("a.png", small_png())]
    batch = await client.post("/staff/letters?lang=id", data=form(token, files))
    html = await batch.text()
    assert batch.status == 422 and "kosong.pdf kosong" in html
    assert "Surat lainnya sudah diunggah" in html
    assert await letters(gw) == [["a.png"]]


async def test_the_first_file_over_the_limit_refuses_the_upload_and_nothing_after_is_stored(
    client: TestClient[Any, Any], gw: bootstrap.Gateway, token: str
) -> None:
    pngs = [small_png(f"Surat {i}") for i in range(MAX_FILES + 2)]
    files = [(f"s{i}.png", data) for i, data in enumerate(pngs)]
    resp = await client.post("/staff/letters", data=form(token, files))
    html = await resp.text()
    assert resp.status == 413
    assert f"Paling banyak {MAX_FILES} berkas sekali unggah" in html
    assert f"Berkas ke-{MAX_FILES + 1} (s{MAX_FILES}.png)" in html
    assert "belum ada surat yang dibuat" in html
    assert await letters(gw) == []
    assert not stored(gw, pngs[MAX_FILES]) and not stored(gw, pngs[MAX_FILES + 1])
    en = await client.post("/staff/letters?lang=en", data=form(token, files))
    assert en.status == 413 and f"At most {MAX_FILES} files in one upload" in await en.text()
    # Files refused as they came count too: they are files of the upload.
    mixed = [("a.png", pngs[0]), ("x.heic", HEIC), ("b.png", pngs[1]), ("kosong.pdf", b"")]
    over = await client.post("/staff/letters?lang=id", data=form(token, mixed))
    assert over.status == 413 and f"Berkas ke-{MAX_FILES + 1} (kosong.pdf)" in await over.text()
    # Exactly the limit is taken.
    exact = await client.post("/staff/letters", data=form(token, files[:MAX_FILES]),
                              allow_redirects=False)
    assert exact.status == 303
    assert len(await letters(gw)) == MAX_FILES


async def test_a_file_of_the_wrong_kind_larger_than_a_scan_may_be_is_refused(
    client: TestClient[Any, Any], gw: bootstrap.Gateway, token: str
) -> None:
    big = b"PK\x03\x04" + b"\x00" * (MAX_FILE_SIZE + 1)
    files = [("a.png", small_png()), ("besar.docx", big), ("b.png", small_png("Dua"))]
    resp = await client.post("/staff/letters", data=form(token, files))
    html = await resp.text()
    assert resp.status == 413 and f"Berkas besar.docx lebih dari {MAX_FILE_SIZE // 2**20} MB" in html
    assert await letters(gw) == []


async def test_a_file_name_that_cannot_be_shown_is_kept_as_a_label(
    client: TestClient[Any, Any], gw: bootstrap.Gateway, token: str
) -> None:
    assert header_text("a\ud800b.png") == "a\ufffdb.png"
    body = (
        f'--x\r\nContent-Disposition: form-data; name="csrf"\r\n\r\n{token}\r\n'
        "--x\r\nContent-Disposition: form-data; name=\"berkas\"; "
        "filename*=utf-7''surat%2B2AA-.png\r\nContent-Type: image/png\r\n\r\n"
    ).encode() + small_png() + b"\r\n--x--\r\n"
    resp = await client.post(
        "/staff/letters", data=body, allow_redirects=False,
        headers={"Content-Type": "multipart/form-data; boundary=x"},
    )
    assert resp.status == 303, await resp.text()
    assert (await client.get(resp.headers["Location"])).status == 200
    assert await letters(gw) == [["surat\ufffd.png"]]
    home = await client.get("/staff/")
    assert home.status == 200 and "surat\ufffd.png" in await home.text()


async def test_refusals_are_logged_without_the_files_names(
    client: TestClient[Any, Any], gw: bootstrap.Gateway, token: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("INFO")
    files = [("Surat Budi Santoso.heic", HEIC), ("Siti Aminah.png", small_png()),
             ("Joko Widodo.jpg", damaged.cut_jpeg())]
    resp = await client.post("/staff/letters", data=form(token, files))
    assert resp.status == 422
    empty = await client.post("/staff/letters", data=form(token, [("Ani Lestari.pdf", b"")]))
    assert empty.status == 422
    over = files + [("Dewi Sartika.png", small_png("Dua"))]
    assert (await client.post("/staff/letters", data=form(token, over))).status == 413
    records = [r for r in caplog.records if r.name.startswith("channels.")]
    logged = " ".join(f"{r.getMessage()} {vars(r)}" for r in records)
    for name in ("Budi", "Siti", "Joko", "Ani", "Dewi"):
        assert name not in logged, name
    refused = {getattr(r, "code", None): r for r in records if r.msg == "letter file refused"}
    assert set(refused) == {"wrong_kind", "damaged", "empty"}
    heic = refused["wrong_kind"]
    assert (heic.file, heic.size, heic.sent_as) == (1, len(HEIC), "application/octet-stream")
    assert (refused["damaged"].file, refused["damaged"].media_type) == (3, "image/jpeg")
    assert (refused["empty"].file, refused["empty"].size) == (1, 0)
    [whole] = [r for r in records if r.msg == "letter upload refused"]
    assert (whole.code, whole.file, whole.status) == ("too_many_files", 4, 413)
