"""gateway.media: inline JPEGs where the first pass did not look: under more filters, as the raw
data of another image, in a Type 3 font given directly, in an appearance stream without
/Subtype /Form; and the drawing around a rewritten image unchanged."""

from __future__ import annotations

import io
import zlib

import pikepdf
import pytest

from gateway import media
from tests.unit.test_media import camera_jpeg
from tests.unit.test_media_pdf_inline import (
    SECRETS,
    inline,
    inline_images,
    page_with,
    saved,
    streams_of,
)


def _served_or_unclean(original: bytes) -> bytes | None:
    try:
        return media.served(original)[1]
    except media.Unclean:
        return None


@pytest.mark.parametrize("filters, encode, decode", [
    (b"[/AHx /DCT]", lambda j: j.hex().encode() + b">",
     lambda r: bytes.fromhex(r.rstrip(b">\n \r").decode())),
    (b"[/Fl /DCT]", zlib.compress, zlib.decompress),
])
def test_an_inline_jpeg_under_other_filters_is_not_served(filters, encode, decode) -> None:
    """An inline /F [/AHx /DCT] or [/Fl /DCT] image is a JPEG a viewer decodes and shows, its
    metadata hidden from a look at the content's bytes: not followed inline, so not served."""
    content = (b"q 48 0 0 32 50 100 cm BI /W 48 /H 32 /BPC 8 /CS /RGB /F " + filters + b" ID "
               + encode(camera_jpeg()) + b"\nEI Q")
    clean = _served_or_unclean(page_with(content))
    if clean is None:
        return  # refused: acceptable
    with pikepdf.open(io.BytesIO(clean)) as pdf:
        [image] = inline_images(pdf.pages[0])
        jpeg = decode(image.read_raw_bytes())
    for secret in SECRETS:
        assert secret not in jpeg, secret


def test_raw_inline_image_bytes_holding_a_camera_jpeg_are_not_served() -> None:
    """An unfiltered inline image whose bytes are a camera JPEG (EXIF, GPS, a comment): its
    metadata would be served byte for byte. A JPEG start with a metadata segment that no inline
    JPEG image holds is not followed."""
    content = (b"q 48 0 0 32 50 100 cm BI /W 48 /H 32 /BPC 8 /CS /RGB ID "
               + camera_jpeg() + b"\nEI Q")
    clean = _served_or_unclean(page_with(content))
    if clean is None:
        return
    for secret in SECRETS:
        assert secret not in streams_of(clean), secret


def test_an_inline_jpeg_in_a_type3_font_given_directly_goes() -> None:
    """A Type 3 font written as a direct dictionary in a page's resources (legal, and drawn
    alike) is no object of the file's list: its glyphs are found through the resources, and
    their inline JPEG loses its metadata."""
    pdf = pikepdf.new()
    pdf.add_blank_page(page_size=(200, 300))
    glyph = pdf.make_stream(b"1 0 d0 q 1 0 0 1 0 0 cm " + inline(camera_jpeg()) + b" Q")
    font = pikepdf.Dictionary(
        Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type3,
        FontBBox=pikepdf.Array([0, 0, 1, 1]), FontMatrix=pikepdf.Array([1, 0, 0, 1, 0, 0]),
        CharProcs=pikepdf.Dictionary(a=glyph), FirstChar=97, LastChar=97,
        Widths=pikepdf.Array([1]),
        Encoding=pikepdf.Dictionary(Differences=pikepdf.Array([97, pikepdf.Name.a])),
    )
    pdf.pages[0].Resources = pikepdf.Dictionary(Font=pikepdf.Dictionary(F0=font))
    pdf.pages[0].Contents = pdf.make_stream(b"BT /F0 100 Tf 50 100 Td (a) Tj ET")
    clean = _served_or_unclean(saved(pdf))
    if clean is None:
        return
    for secret in SECRETS:
        assert secret not in streams_of(clean), secret


def test_an_inline_jpeg_in_an_appearance_stream_without_subtype_goes() -> None:
    """An annotation's appearance stream without /Subtype /Form is drawn all the same (pdfium
    draws it): its inline JPEG loses its metadata."""
    pdf = pikepdf.new()
    pdf.add_blank_page(page_size=(200, 300))
    ap = pdf.make_stream(b"q 48 0 0 32 0 0 cm " + inline(camera_jpeg()) + b" Q")
    ap.BBox = pikepdf.Array([0, 0, 48, 32])
    annot = pdf.make_indirect(pikepdf.Dictionary(
        Type=pikepdf.Name.Annot, Subtype=pikepdf.Name.Stamp,
        Rect=pikepdf.Array([10, 10, 58, 42]), AP=pikepdf.Dictionary(N=ap),
    ))
    pdf.pages[0].Annots = pikepdf.Array([annot])
    clean = _served_or_unclean(saved(pdf))
    if clean is None:
        return
    for secret in SECRETS:
        assert secret not in streams_of(clean), secret


def _ops(pdf: pikepdf.Pdf, owner) -> list:
    out = []
    for ins in pikepdf.parse_content_stream(owner):
        if isinstance(ins, pikepdf.ContentStreamInlineImage):
            out.append(("INLINE", str(ins.iimage.obj)))
        else:
            out.append((str(ins.operator), [repr(o) for o in ins.operands]))
    return out


def test_the_rewritten_content_draws_the_same() -> None:
    """The operators and operands around an inline JPEG (reals, hex and escaped strings, a TJ
    array, a BDC dictionary) come out as they were when the content stream is written anew."""
    content = (b"q 0.12345678901 0 0 1.5 -3.25 7 cm /GS0 gs <48656c6c6f> Tj (a\\)b) Tj "
               b"[(A) -120.5 (B)] TJ /P <</MCID 0>> BDC EMC 1 0 0 RG 0.000001 w "
               + inline(camera_jpeg()) + b" Q")
    original = page_with(content)
    clean = media.served(original)[1]
    with pikepdf.open(io.BytesIO(original)) as b, pikepdf.open(io.BytesIO(clean)) as a:
        before, after = _ops(b, b.pages[0]), _ops(a, a.pages[0])
        assert [x for x in after if x[0] != "INLINE"] == [x for x in before if x[0] != "INLINE"]


