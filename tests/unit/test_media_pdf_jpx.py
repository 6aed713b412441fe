"""gateway.media: a JPEG 2000 image (/JPXDecode) in a PDF.

A JP2 file may carry XMP in an XML box, EXIF or a GeoJP2 position in UUID boxes, and its
codestream comments name the encoder or who scanned. The served PDF keeps the boxes a decoder
reads and the codestream without comments, the picture the same (Pillow decodes it, OpenJPEG
underneath, as the independent judge); what cannot be followed is not served.
"""

from __future__ import annotations

import io
import struct

import pikepdf
import pytest
from PIL import Image

from gateway import media
from tests.unit.test_media import pdf_with_images, picture, served_images

JPX = pikepdf.Name.JPXDecode
XMP = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF><rdf:Description exif:GPSLatitude='
       b'"6,45.672S" dc:creator="Siti Aminah"/></rdf:RDF></x:xmpmeta>')
EXIF_UUID = bytes.fromhex("4a706754696666457869662d3e4a5032")  # "JpgTiffExif->JP2"
SECRETS = (b"GPSLatitude", b"Siti", b"R58W90XYZ", b"KANTOR-SCANNER", b"OpenJPEG")


def box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def j2k(tile: tuple[int, int] | None = None) -> bytes:
    """A bare codestream of picture(), with a comment naming who scanned it."""
    out = io.BytesIO()
    picture().save(out, "JPEG2000", no_jp2=True, comment=b"Budi at KANTOR-SCANNER-01",
                   tile_size=tile)
    return out.getvalue()


def jp2() -> bytes:
    """A JP2 file of picture() as a scanner app writes it: XMP, EXIF and a GeoJP2 UUID box
    after the header, OpenJPEG's own comment in the codestream."""
    out = io.BytesIO()
    picture().save(out, "JPEG2000")
    data = out.getvalue()
    assert data.startswith(b"\x00\x00\x00\x0cjP  ")
    cut = data.index(b"jp2c") - 4
    extra = (
        box(b"xml ", XMP)
        + box(b"uuid", EXIF_UUID + b"Exif\x00\x00 Samsung R58W90XYZ")
        + box(b"uuid", bytes(16) + b"GeoJP2 GPSLatitude -6.7612")
    )
    return data[:cut] + extra + data[cut:]


def with_tile_comment(code: bytes) -> bytes:
    """``code`` with a COM segment in its first tile-part's header (its Psot made longer)."""
    sot = code.index(b"\xff\x90")
    psot = int.from_bytes(code[sot + 6 : sot + 10], "big")
    com = b"\xff\x64" + struct.pack(">HH", 4 + 14, 1) + b"KANTOR-SCANNER"
    head = bytearray(code[sot : sot + 12])
    head[6:10] = (psot + len(com)).to_bytes(4, "big")
    return code[:sot] + bytes(head) + com + code[sot + 12 :]


def pixels(data: bytes) -> list[object]:
    with Image.open(io.BytesIO(data)) as img:
        return [img.size, img.convert("RGB").tobytes()]


@pytest.mark.parametrize(
    "original",
    [jp2(), j2k(), with_tile_comment(j2k((16, 16)))],
    ids=["jp2-boxes", "codestream", "tile-part-comment"],
)
def test_a_jpeg_2000_image_is_served_without_its_metadata_and_with_the_same_picture(
    original: bytes,
) -> None:
    assert any(secret in original for secret in SECRETS), "the fixture carries metadata"
    [(raw, filters, parms)] = served_images(pdf_with_images((original, JPX, None)))
    assert filters == JPX and parms is None
    for secret in SECRETS:
        assert secret not in raw, secret
    assert pixels(raw) == pixels(original)
    # Nothing is left to drop the second time.
    assert media._served_jpx(raw) is None


def test_a_clean_jpeg_2000_image_is_left_as_it_was() -> None:
    clean = media._served_jpx(j2k())  # without its comment
    assert clean is not None
    [(raw, _, _)] = served_images(pdf_with_images((clean, JPX, None)))
    assert raw == clean


@pytest.mark.parametrize(
    "broken",
    [
        b"\x00\x00\x00\x0cjP  \r\n\x87\n" + struct.pack(">I4s", 400, b"ftyp") + b"jp2 ",
        j2k()[:40],  # cut in its main header
        b"GIF89a not a JPEG 2000 at all",
        b"\xff\x4f\xff\x51\x00\x01",  # a segment length shorter than its own field
    ],
    ids=["box-longer-than-file", "main-header-cut", "not-jpx", "bad-segment-length"],
)
def test_a_jpeg_2000_image_that_cannot_be_followed_is_not_served(broken: bytes) -> None:
    with pytest.raises(media.Unclean):
        media.served(pdf_with_images((broken, JPX, None)))
