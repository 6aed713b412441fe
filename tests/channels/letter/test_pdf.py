"""PDF pages: the text layer of an exported PDF, the picture of a scanned one."""

from __future__ import annotations

import io
import random

import pytest
from PIL import Image

from channels.letter import pdf
from tests.channels.letter import damaged
from tests.channels.letter.letterset import compose, render, text_pdf


@pytest.fixture(scope="module")
def two_pages() -> list[list[object]]:
    return compose(random.Random(9), 4, pages_wanted=2, layout="identity").pages  # type: ignore[return-value]


def test_text_layer_is_read_in_lines_and_paragraphs(two_pages: list) -> None:
    data = text_pdf(two_pages)
    assert pdf.page_count(data) == 2
    page = pdf.read_page(data, 0)
    assert page.text is not None
    lines = page.text.split("\n")
    # Label and value are separate runs in the PDF; they come back as one line.
    assert any(line.startswith("Perihal : ") for line in lines)
    assert any(line.startswith("NIK : ") for line in lines)
    assert "Dengan hormat," in lines
    assert "" in lines  # paragraphs are separated by a blank line
    assert page.image.mode == "L" and page.image.height > 1000


def test_scanned_pdf_page_is_a_picture_at_its_resolution(two_pages: list) -> None:
    scans = [render(p, 200) for p in two_pages]
    out = io.BytesIO()
    scans[0].save(out, "PDF", save_all=True, append_images=scans[1:], resolution=200)
    data = out.getvalue()
    assert pdf.page_count(data) == 2
    page = pdf.read_page(data, 1)
    assert page.text is None
    assert page.dpi == pytest.approx(200, abs=1)
    assert page.image.size == pytest.approx(scans[1].size, abs=2)


def test_damaged_pdf() -> None:
    with pytest.raises(pdf.UnreadablePdf):
        pdf.page_count(b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ngarbage")


def test_image_pdf_from_pillow_counts_as_scan() -> None:
    out = io.BytesIO()
    Image.new("L", (850, 1100), 255).save(out, "PDF", resolution=100)
    page = pdf.read_page(out.getvalue(), 0)
    assert page.text is None and page.dpi == pytest.approx(150)  # raised to the minimum


def test_opening_every_page_finds_a_page_the_page_tree_still_counts() -> None:
    lost = damaged.pdf_with_a_lost_page()
    assert pdf.page_count(lost) == 2  # the page tree alone looks whole
    with pytest.raises(pdf.UnreadablePdf, match="page 1 of the PDF"):
        pdf.open_pages(io.BytesIO(lost))
    assert pdf.open_pages(io.BytesIO(damaged.pdf())) == 2
