"""PDF pages: the text layer when the PDF has one, otherwise the scanned page as an image.

A letter arrives as a PDF in two ways. A word processor's export carries real text (a *text
layer*): reading it is exact and instant, and OCR could only make it worse. A scanner's PDF
carries one picture per page and no text: the picture is rendered at its own resolution (so no
detail is invented or thrown away) and goes through OCR like a JPEG would.

Text comes from PDFium (through ``pypdfium2``) as positioned runs. They are put back into
lines by their vertical position and into paragraphs by the gaps between lines, so the field
extractor sees the same shape of text as from OCR: ``"Perihal : Air PDAM"`` on one line even
when the label and the value are separate runs, and a blank line where the letter has one.

PDFium is not thread-safe and a broken PDF can make it fail hard, so pages are only read and
rendered in the OCR worker processes; the upload's check (:func:`open_pages`, every page
loaded but none rendered) runs in a thread of the web process, one PDF at a time.
"""

from __future__ import annotations

import statistics
import threading
from dataclasses import dataclass
from typing import BinaryIO

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
from PIL import Image

__all__ = ["PdfPage", "UnreadablePdf", "open_pages", "page_count", "read_page"]

# A page whose text layer has fewer letters than this is treated as a scan (a scanner's PDF may
# carry a stray page number or a stamp as text).
MIN_TEXT_LETTERS = 20
# Scanned pages are rendered at their picture's resolution, within these bounds.
MIN_RENDER_DPI, MAX_RENDER_DPI, DEFAULT_RENDER_DPI = 150.0, 400.0, 300.0
_MAX_RENDER_SIDE = 7000  # pixels


# PDFium keeps global state and is not thread-safe: in a process, one call at a time (the
# workers are single-threaded; this guards the upload's check and the reader's page count,
# called from the web process's threads).
_PDFIUM = threading.Lock()


class UnreadablePdf(ValueError):
    """The data is not a PDF PDFium can open (damaged, encrypted, not a PDF)."""


class TooManyPdfPages(UnreadablePdf):
    """A PDF with more pages than a letter may have (not damaged: to be split)."""


@dataclass(frozen=True, slots=True)
class PdfPage:
    """One page: its text layer (None for a scan) and its picture."""

    text: str | None
    image: Image.Image
    """The page rendered in grey: at the scan's resolution for a scan, for display otherwise."""
    dpi: float


def _open(data: bytes | BinaryIO) -> pdfium.PdfDocument:
    try:
        return pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        # PDFium says "Incorrect password error" for encrypted files, "Data format error" for
        # damaged ones: both are the sender's to fix.
        raise UnreadablePdf(f"cannot open the PDF: {exc}") from exc


def page_count(data: bytes) -> int:
    """Number of pages (cheap: PDFium reads the page tree only)."""
    with _PDFIUM:
        pdf = _open(data)
        try:
            return len(pdf)
        finally:
            pdf.close()


def open_pages(source: BinaryIO, max_pages: int | None = None) -> int:
    """Number of pages, each page loaded (its dictionary and content parsed, nothing rendered):
    a page PDFium cannot load is found now rather than when the letter is read. ``source`` is
    a seekable file, read in place (PDFium asks for the ranges it needs), never whole. More
    than ``max_pages`` is refused before any page is loaded (under the lock every PDF shares)."""
    with _PDFIUM:
        pdf = _open(source)
        try:
            count = len(pdf)
            if max_pages is not None and count > max_pages:
                raise TooManyPdfPages(f"the document has {count} pages, more than {max_pages}")
            for index in range(count):
                try:
                    page = pdf[index]
                except pdfium.PdfiumError as exc:
                    raise UnreadablePdf(
                        f"cannot read page {index + 1} of the PDF: {exc}"
                    ) from exc
                page.close()
            return count
        finally:
            pdf.close()


def _lines(textpage: pdfium.PdfTextPage) -> str:
    """The page's text as lines (runs side by side joined) and paragraphs (blank lines)."""
    runs: list[tuple[float, float, float, str]] = []  # (top, bottom, left, text)
    for i in range(textpage.count_rects()):
        left, bottom, right, top = textpage.get_rect(i)
        text = textpage.get_text_bounded(left, bottom, right, top).strip()
        if text:
            runs.append((top, bottom, left, text))
    # PDF y grows upwards: sort from the top of the page down, then left to right.
    runs.sort(key=lambda r: (-r[0], r[2]))
    lines: list[tuple[float, float, list[tuple[float, str]]]] = []  # (top, bottom, runs)
    for top, bottom, left, text in runs:
        middle = (top + bottom) / 2
        for k, (ltop, lbottom, parts) in enumerate(lines):
            if lbottom <= middle <= ltop:
                parts.append((left, text))
                lines[k] = (max(ltop, top), min(lbottom, bottom), parts)
                break
        else:
            lines.append((top, bottom, [(left, text)]))
    lines.sort(key=lambda line: -line[0])
    if not lines:
        return ""
    steps = [a[1] - b[1] for a, b in zip(lines, lines[1:], strict=False)]
    usual = statistics.median(steps) if steps else 0.0
    out: list[str] = []
    for k, (_, bottom, parts) in enumerate(lines):
        if k and usual and lines[k - 1][1] - bottom > 1.25 * usual:
            out.append("")
        out.append(" ".join(text for _, text in sorted(parts)))
    return "\n".join(out)


def _scan_dpi(page: pdfium.PdfPage) -> float:
    """The resolution of the largest picture on the page, as placed."""
    best = 0.0
    for obj in page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE], max_depth=2):
        assert isinstance(obj, pdfium.PdfImage)
        left, bottom, right, top = obj.get_bounds()
        px_w, px_h = obj.get_px_size()
        width_in = max(right - left, top - bottom) / 72.0
        if width_in > 0:
            best = max(best, max(px_w, px_h) / width_in)
    if not best:
        return DEFAULT_RENDER_DPI
    return min(MAX_RENDER_DPI, max(MIN_RENDER_DPI, best))


def read_page(data: bytes, index: int, *, display_dpi: float = 140.0) -> PdfPage:
    """Page ``index`` (0-based): its text layer, or its scanned picture for OCR."""
    with _PDFIUM:
        return _read_page(data, index, display_dpi)


def _read_page(data: bytes, index: int, display_dpi: float) -> PdfPage:
    pdf = _open(data)
    try:
        page = pdf[index]
        textpage = page.get_textpage()
        layer = _lines(textpage)
        text: str | None = layer
        if sum(c.isalpha() for c in layer) >= MIN_TEXT_LETTERS:
            dpi = display_dpi
        else:
            text, dpi = None, _scan_dpi(page)
        # A page drawn on a huge sheet would make a huge bitmap: cap the longest side.
        dpi = min(dpi, _MAX_RENDER_SIDE * 72.0 / max(page.get_size()))
        bitmap = page.render(scale=dpi / 72.0, grayscale=True)
        image = bitmap.to_pil().convert("L")
        return PdfPage(text, image, dpi)
    except pdfium.PdfiumError as exc:
        raise UnreadablePdf(f"cannot read page {index + 1} of the PDF: {exc}") from exc
    finally:
        pdf.close()
