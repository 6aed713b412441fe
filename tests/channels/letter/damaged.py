"""Real scans of each kind the desk takes, whole and damaged as transfers and old disks damage
them: cut short, a slice of the body lost, a page's object overwritten.

Every file is made by Pillow and pikepdf (nothing committed). The damaged ones are chosen so
that counting pages from the file's structure (what the upload checked before it ran the serving
code) still accepts them; the tests assert that too, so they keep showing what the check adds.
"""

from __future__ import annotations

import io

import pikepdf
from PIL import Image, ImageDraw


def page(text: str, size: tuple[int, int] = (480, 640)) -> Image.Image:
    """A small grey page with a few lines of text (Tesseract reads it in a moment)."""
    img = Image.new("L", size, 255)
    draw = ImageDraw.Draw(img)
    for line in range(6):
        draw.text((30, 40 + 40 * line), f"{text} baris {line + 1}", fill=0)
    return img


def jpeg(text: str = "Surat") -> bytes:
    out = io.BytesIO()
    page(text).save(out, "JPEG", quality=85)
    return out.getvalue()


def png(text: str = "Surat") -> bytes:
    out = io.BytesIO()
    page(text).save(out, "PNG")
    return out.getvalue()


def pdf(text: str = "Surat", pages: int = 2) -> bytes:
    """A scanned PDF as Pillow writes it: one JPEG picture per page."""
    images = [page(f"{text} halaman {n + 1}") for n in range(pages)]
    out = io.BytesIO()
    images[0].save(out, "PDF", save_all=True, append_images=images[1:], resolution=100.0)
    return out.getvalue()


def tiff(text: str = "Surat", pages: int = 2) -> bytes:
    """An uncompressed multi-page TIFF: each frame's tags before its picture data."""
    images = [page(f"{text} halaman {n + 1}") for n in range(pages)]
    out = io.BytesIO()
    images[0].save(out, "TIFF", save_all=True, append_images=images[1:])
    return out.getvalue()


def cut_jpeg() -> bytes:
    """A JPEG whose scan stops two thirds of the way (no EOI): the header is whole."""
    data = jpeg("Potong")
    return data[: len(data) * 2 // 3]


def cut_png() -> bytes:
    """A PNG cut in the middle of its picture data (IDAT)."""
    data = png("Rusak")
    return data[: len(data) // 2]


def cut_pdf() -> bytes:
    """A two-page scanned PDF, linearized with its objects in object streams (as scanner apps
    and "fast web view" exports write it), with a slice of its body lost in transfer. PDFium
    still finds and loads both pages; qpdf, which ``/files/`` serves it with, cannot follow it."""
    with pikepdf.open(io.BytesIO(pdf("Potong"))) as doc:
        out = io.BytesIO()
        doc.save(out, linearize=True, object_stream_mode=pikepdf.ObjectStreamMode.generate)
    data = out.getvalue()
    at = len(data) * 3 // 10
    return data[:at] + data[at + len(data) // 20 :]


def pdf_with_a_lost_page() -> bytes:
    """A two-page PDF whose first page's object was overwritten with zeros: the page tree still
    counts two pages, but PDFium cannot load the first (the reader would fail on it)."""
    data = pdf("Hilang")
    with pikepdf.open(io.BytesIO(data)) as doc:
        number = doc.pages[0].objgen[0]
    start = data.index(b"\n%d 0 obj" % number) + 1
    end = data.index(b"endobj", start) + len(b"endobj")
    return data[:start] + bytes(end - start) + data[end:]


def cut_tiff() -> bytes:
    """A two-page TIFF cut in the second page's picture data: both frames' tags are there."""
    data = tiff("Potong")
    return data[: len(data) * 3 // 4]
