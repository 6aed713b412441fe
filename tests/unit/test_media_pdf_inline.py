"""gateway.media: JPEG images written inline in a PDF's content streams (BI ... ID ... EI).

An app may put a small photo inline, the camera's JPEG as it is, EXIF and GPS included, in a
page's contents, a form XObject (an annotation's appearance) or a Type 3 glyph. The served PDF
holds each such JPEG without its metadata, the picture the same (pikepdf decodes the inline
image, Pillow the JPEG); content streams without one are left exactly as they were.
"""

from __future__ import annotations

import io

import pikepdf
import pytest

from gateway import media
from tests.unit.test_media import camera_jpeg

SECRETS = (b"Samsung", b"R58W90XYZ", b"GPSLatitude", b"Siti", b"8BIM")


def inline(jpeg: bytes, filters: bytes = b"/DCT") -> bytes:
    return b"BI /W 48 /H 32 /BPC 8 /CS /RGB /F " + filters + b" ID " + jpeg + b"\nEI"


def saved(pdf: pikepdf.Pdf) -> bytes:
    out = io.BytesIO()
    pdf.save(out, compress_streams=False)
    return out.getvalue()


def page_with(content: bytes) -> bytes:
    pdf = pikepdf.new()
    pdf.add_blank_page(page_size=(200, 300))
    pdf.pages[0].Contents = pdf.make_stream(content)
    return saved(pdf)


def inline_images(owner: pikepdf.Object) -> list[pikepdf.PdfInlineImage]:
    return [i.iimage for i in pikepdf.parse_content_stream(owner)
            if isinstance(i, pikepdf.ContentStreamInlineImage)]


def streams_of(pdf_bytes: bytes) -> bytes:
    """Every stream of a PDF as decoded (qpdf compresses content streams when it writes a
    file, so the file's own bytes do not show what they hold)."""
    out = []
    with pikepdf.open(io.BytesIO(pdf_bytes)) as pdf:
        for obj in pdf.objects:
            if isinstance(obj, pikepdf.Stream):
                try:
                    out.append(obj.read_bytes())
                except pikepdf.PdfError:  # an image filter qpdf does not decode
                    out.append(obj.read_raw_bytes())
    return b"".join(out)


def picture(image: pikepdf.PdfInlineImage) -> tuple[tuple[int, int], bytes]:
    pil = image.as_pil_image()
    return pil.size, pil.convert("RGB").tobytes()


@pytest.mark.parametrize("filters", [b"/DCT", b"/DCTDecode", b"[/DCT]"])
def test_an_inline_jpeg_on_a_page_is_served_without_its_metadata(filters: bytes) -> None:
    original = page_with(b"q 48 0 0 32 50 100 cm " + inline(camera_jpeg(), filters) + b" Q")
    assert all(secret in streams_of(original) for secret in SECRETS[:3])
    media_type, clean = media.served(original)
    assert media_type == "application/pdf"
    for secret in SECRETS:
        assert secret not in streams_of(clean), secret
    with pikepdf.open(io.BytesIO(original)) as before, pikepdf.open(io.BytesIO(clean)) as after:
        [old], [new] = inline_images(before.pages[0]), inline_images(after.pages[0])
        assert picture(new) == picture(old)
        # What is around the image is drawn as before.
        ops = [str(i.operator) for i in pikepdf.parse_content_stream(after.pages[0])]
        assert ops == ["q", "cm", "INLINE IMAGE", "Q"]


def test_inline_jpegs_in_a_form_xobject_and_a_type3_glyph_go_too() -> None:
    pdf = pikepdf.new()
    pdf.add_blank_page(page_size=(200, 300))
    form = pdf.make_stream(b"q 48 0 0 32 0 0 cm " + inline(camera_jpeg()) + b" Q")
    form.Type, form.Subtype = pikepdf.Name.XObject, pikepdf.Name.Form
    form.BBox = pikepdf.Array([0, 0, 48, 32])
    glyph = pdf.make_stream(b"1 0 0 0 1 1 d1 q 1 0 0 1 0 0 cm " + inline(camera_jpeg()) + b" Q")
    font = pdf.make_indirect(pikepdf.Dictionary(
        Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type3,
        FontBBox=pikepdf.Array([0, 0, 1, 1]), FontMatrix=pikepdf.Array([1, 0, 0, 1, 0, 0]),
        CharProcs=pikepdf.Dictionary(a=glyph), FirstChar=97, LastChar=97,
        Widths=pikepdf.Array([1]),
        Encoding=pikepdf.Dictionary(Differences=pikepdf.Array([97, pikepdf.Name.a])),
    ))
    pdf.pages[0].Resources = pikepdf.Dictionary(
        XObject=pikepdf.Dictionary(Fm0=form), Font=pikepdf.Dictionary(F0=font)
    )
    pdf.pages[0].Contents = pdf.make_stream(b"/Fm0 Do BT /F0 12 Tf (a) Tj ET")
    original = saved(pdf)
    assert streams_of(original).count(b"Samsung") == 2
    _, clean = media.served(original)
    for secret in SECRETS:
        assert secret not in streams_of(clean), secret
    with pikepdf.open(io.BytesIO(clean)) as after:
        resources = after.pages[0].Resources
        assert len(inline_images(resources.XObject.Fm0)) == 1
        assert len(inline_images(resources.Font.F0.CharProcs.a)) == 1


def test_content_streams_without_an_inline_jpeg_are_left_as_they_were() -> None:
    raw_rgb = bytes(range(256)) * 18  # 48 x 32 x 3 bytes, no filter
    for content in (
        b"BT /F1 12 Tf (BI and ID in a text) Tj ET",
        b"q 48 0 0 32 50 100 cm BI /W 48 /H 32 /BPC 8 /CS /RGB ID " + raw_rgb + b"\nEI Q",
    ):
        original = page_with(content)
        _, clean = media.served(original)
        with pikepdf.open(io.BytesIO(clean)) as after:
            assert after.pages[0].Contents.read_bytes() == content


def test_an_inline_jpeg_without_its_end_is_not_served() -> None:
    """An inline image without its EI: qpdf's parser drops it with what follows, but the bytes
    (the camera's EXIF among them) stay in the stream, and a lenient viewer may still show the
    picture. Not followed, so not served."""
    broken = page_with(b"q BI /W 48 /H 32 /BPC 8 /CS /RGB /F /DCT ID " + camera_jpeg())
    with pytest.raises(media.Unclean):
        media.served(broken)
