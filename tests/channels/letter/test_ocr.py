"""Reading documents end to end with the real Tesseract (``ind``): no mock of the OCR anywhere.

Generated letters (``letterset.py``) with known fields go through ``OcrPool.read_document`` and
``extract_fields``; NIK and phone must come back exactly. The tests that run Tesseract are
skipped where it is not installed (a failure under ``REQUIRE_SYSTEM_PACKAGES=1``); the others
(sniffing, page counts, Tesseract's TSV, a missing Tesseract) run everywhere.
"""

from __future__ import annotations

import asyncio
import io
import shutil
from collections.abc import Iterator
from functools import cache

import pypdfium2 as pdfium
import pytest
from PIL import Image

from channels.letter.extract import extract_fields
from channels.letter.ocr import (
    MAX_PAGES,
    LetterFormatError,
    OcrPool,
    OcrUnavailable,
    check_document,
    count_pages,
    parse_tsv,
    sniff,
)
from tests.channels.letter import damaged
from tests.channels.letter.letterset import LetterSample, generate
from tests.support import system_package

# On the tests that run Tesseract (``OcrPool`` checks for it before reading anything).
needs_tesseract = system_package(shutil.which("tesseract"), "Tesseract (tesseract-ocr)")


@cache
def sample(name: str) -> LetterSample:
    return generate(names=[name])[0]


@pytest.fixture(scope="module")
def pool() -> Iterator[OcrPool]:
    ocr = OcrPool(workers=2)
    yield ocr
    asyncio.run(ocr.close())


@needs_tesseract
@pytest.mark.parametrize(
    "name",
    [
        "letter-01",  # JPEG, 200 dpi, skewed 3.5°
        "letter-08",  # phone photo, EXIF orientation 6, uneven light
        "letter-12",  # complaint-box form, bilevel G4 TIFF, skewed -3°
        "letter-25",  # bad scan: 150 dpi, blurred, noisy, faded, JPEG q37
    ],
)
async def test_scanned_letters_read_end_to_end(pool: OcrPool, name: str) -> None:
    letter = sample(name)
    pages = await pool.read_document(letter.data, letter.content_type)
    assert [p.number for p in pages] == list(range(1, letter.pages + 1))
    assert all(p.source == "ocr" and 60 < p.confidence <= 100 for p in pages)
    fields = extract_fields(pages)
    assert fields.nik.value == letter.fields.nik
    assert fields.phone.value == letter.fields.phone_e164
    assert fields.sender_name.value == letter.fields.sender_name
    assert fields.letter_date.value == letter.fields.letter_date
    shown = Image.open(io.BytesIO(pages[0].image_png))
    assert shown.height > shown.width  # upright, whatever the file stored


@needs_tesseract
async def test_multi_page_tiff_is_split_with_progress(pool: OcrPool) -> None:
    letter = sample("letter-09")  # RW letterhead, 2 pages, LZW TIFF
    assert letter.content_type == "image/tiff" and count_pages(letter.data) == 2
    progress: list[tuple[int, int]] = []
    pages = await pool.read_document(letter.data, on_page=lambda d, t: progress.append((d, t)))
    assert progress == [(1, 2), (2, 2)]
    assert [p.number for p in pages] == [1, 2]
    assert "Dengan hormat" in pages[0].text and "Hormat saya" in pages[1].text
    assert len(pages[0].line_confidences) == len(pages[0].text.split("\n"))
    fields = extract_fields(pages)
    assert fields.phone.value == letter.fields.phone_e164  # not the letterhead's
    assert fields.nik.value == letter.fields.nik


@needs_tesseract
async def test_text_pdf_uses_its_text_layer(pool: OcrPool) -> None:
    letter = sample("letter-18")  # 2 pages, exported with text
    pages = await pool.read_document(letter.data, "application/pdf")
    assert [(p.source, p.confidence) for p in pages] == [("text-layer", 100.0)] * 2
    # Exact text, as only a text layer gives: every printed line is there.
    printed = " ".join(letter.page_texts[0].split())
    assert " ".join(pages[0].text.split()) == printed
    fields = extract_fields(pages)
    assert fields.nik.value == letter.fields.nik
    assert fields.phone.value == letter.fields.phone_e164
    assert fields.body.value == letter.fields.body
    assert pages[0].image_png.startswith(b"\x89PNG")


@needs_tesseract
async def test_scanned_pdf_is_ocred(pool: OcrPool) -> None:
    letter = sample("letter-05")  # 2 scanned pages in a PDF
    pages = await pool.read_document(letter.data)
    assert [p.source for p in pages] == ["ocr", "ocr"]
    assert abs(pages[0].skew) > 1  # the scan was skewed and has been straightened
    assert extract_fields(pages).phone.value == letter.fields.phone_e164


@pytest.mark.parametrize(
    ("data", "content_type", "message"),
    [
        (b"", None, "empty"),
        (b"GIF89a\x01\x00\x01\x00", "image/gif", r"GIF image is not accepted \(sent as image/gif\)"),
        (b"PK\x03\x04rest-of-a-docx", None, "ZIP archive or Office document"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", None, "WebP image"),
        (b"hello, this is text", "application/pdf", "not a PDF, JPEG, PNG or TIFF"),
    ],
)
def test_unsupported_data_is_refused_with_the_reason(
    data: bytes, content_type: str | None, message: str
) -> None:
    with pytest.raises(LetterFormatError, match=message):
        sniff(data, content_type)
    with pytest.raises(LetterFormatError):
        count_pages(data, content_type)


@needs_tesseract
async def test_damaged_files_are_format_errors(pool: OcrPool) -> None:
    jpeg = sample("letter-01").data
    with pytest.raises(LetterFormatError, match="cannot be"):
        await pool.read_document(jpeg[: len(jpeg) // 3])
    with pytest.raises(LetterFormatError, match="PDF"):
        await pool.read_document(b"%PDF-1.7\nnot really a pdf")


class CountingReader(io.BytesIO):
    """A file that counts the bytes read from it and the largest single read."""

    taken = 0
    largest = 0

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.taken += len(data)
        self.largest = max(self.largest, len(data))
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        got = super().readinto(buffer)
        self.taken += got
        self.largest = max(self.largest, got)
        return got


@pytest.mark.parametrize(
    "name",
    [
        "letter-01",  # JPEG
        "letter-02",  # PNG
        "letter-05",  # scanned PDF, 2 pages
        "letter-09",  # LZW TIFF, 2 pages
        "letter-12",  # G4 TIFF
        "letter-18",  # text PDF, 2 pages
    ],
)
def test_checking_a_document_opens_every_page_in_place(name: str) -> None:
    letter = sample(name)
    fh = CountingReader(letter.data)
    assert check_document(fh, letter.content_type) == letter.pages == count_pages(letter.data)
    if letter.content_type != "application/pdf":  # headers and a TIFF's tags, no picture
        assert fh.taken < 16 * 1024 < len(letter.data), fh.taken


def test_a_tiff_cut_short_is_found_by_where_its_pictures_lie() -> None:
    cut = damaged.cut_tiff()
    assert count_pages(cut) == 2  # every frame's tags are there
    with pytest.raises(LetterFormatError, match="page 2 of the TIFF is cut short"):
        check_document(io.BytesIO(cut))
    assert check_document(io.BytesIO(damaged.tiff())) == 2


def test_a_pdf_page_that_cannot_be_loaded_is_a_format_error() -> None:
    lost = damaged.pdf_with_a_lost_page()
    assert count_pages(lost) == 2
    with pytest.raises(LetterFormatError, match="cannot read page 1 of the PDF"):
        check_document(io.BytesIO(lost), "application/pdf")


def test_decompression_bomb_is_refused() -> None:
    # A PNG header claiming 20000 x 20000 pixels: refused from the header, nothing decoded.
    out = io.BytesIO()
    Image.new("1", (20000, 20000)).save(out, "PNG")
    with pytest.raises(LetterFormatError, match="20000x20000|too large"):
        count_pages(out.getvalue())
    with pytest.raises(LetterFormatError, match="20000x20000|too large"):
        check_document(io.BytesIO(out.getvalue()))


def test_checking_a_document_refuses_too_many_pages_before_opening_them() -> None:
    # A TIFF or PDF of thousands of tiny pages (a few bytes each) cost seconds of CPU in the
    # web process per 20000 pages at the upload's check, and was accepted only to be refused
    # by the reader: the check stops at the page limit.
    frames = [Image.new("1", (8, 8)) for _ in range(MAX_PAGES + 1)]
    out = io.BytesIO()
    frames[0].save(out, "TIFF", save_all=True, append_images=frames[1:])
    with pytest.raises(LetterFormatError, match=f"more than {MAX_PAGES}"):
        check_document(io.BytesIO(out.getvalue()), "image/tiff")
    doc = pdfium.PdfDocument.new()
    for _ in range(MAX_PAGES + 1):
        doc.new_page(200, 200)
    out = io.BytesIO()
    doc.save(out)
    with pytest.raises(LetterFormatError, match=f"more than {MAX_PAGES}"):
        check_document(io.BytesIO(out.getvalue()), "application/pdf")


@needs_tesseract
async def test_too_many_pages_is_refused() -> None:
    small = OcrPool(workers=1, max_pages=1)
    try:
        with pytest.raises(LetterFormatError, match="2 pages"):
            await small.read_document(sample("letter-09").data)
    finally:
        await small.close()


async def test_missing_tesseract_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(OcrUnavailable, match="tesseract-ocr"):
        await OcrPool(workers=1).check()


@needs_tesseract
async def test_missing_language_data_is_reported() -> None:
    with pytest.raises(OcrUnavailable, match="xyz"):
        await OcrPool(workers=1, language="xyz").check()


def test_tsv_to_lines_and_confidences() -> None:
    tsv = (
        "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext\n"
        "5\t1\t1\t1\t1\t1\t0\t0\t1\t1\t90\tPerihal\n"
        "5\t1\t1\t1\t1\t2\t0\t0\t1\t1\t80\t:\n"
        "5\t1\t1\t1\t1\t3\t0\t0\t1\t1\t70\tBanjir\n"
        "4\t1\t1\t2\t1\t0\t0\t0\t1\t1\t-1\t\n"
        "5\t1\t1\t2\t1\t1\t0\t0\t1\t1\t96\tDengan\n"
        "5\t1\t1\t2\t1\t2\t0\t0\t1\t1\t94\thormat,\n"
        "5\t1\t1\t2\t2\t1\t0\t0\t1\t1\t-1\t \n"
    )
    read = parse_tsv(tsv)
    assert read.text == "Perihal : Banjir\n\nDengan hormat,"
    assert read.line_confidences == (80.0, 100.0, 95.0)
    assert read.confidence == 86.0
