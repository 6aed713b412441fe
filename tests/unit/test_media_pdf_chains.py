"""gateway.media: a photo in a PDF image whose /Filter is a chain ending in /DCTDecode.

A photo-to-PDF app may wrap the camera's JPEG in more layers, [/FlateDecode /DCTDecode] or an
ASCII encoding: the JPEG inside, EXIF and GPS included, is what a PDF viewer decodes. The served
PDF must hold it without its metadata, the picture unchanged; a chain that cannot be decoded is
not served at all. pikepdf's own image extraction (PdfImage) is the independent judge of what
JPEG an image holds, Pillow of its pixels.
"""

from __future__ import annotations

import base64
import binascii
import io
import zlib

import pikepdf
import pytest
from PIL import Image

from channels.web.exif import jpeg_gps
from gateway import media
from tests.unit.test_media import camera_jpeg, pdf_with_images, picture, scan_of, served

SECRETS = (b"Samsung", b"R58W90XYZ", b"GPSLatitude", b"Siti", b"8BIM", b"MotionPhoto")
DCT, FLATE = pikepdf.Name.DCTDecode, pikepdf.Name.FlateDecode
HEX, A85, RL = pikepdf.Name.ASCIIHexDecode, pikepdf.Name.ASCII85Decode, pikepdf.Name.RunLengthDecode
LZW = pikepdf.Name.LZWDecode
COLUMNS = 16  # of the PNG predictor used on a Flate layer


def png_up(data: bytes) -> bytes:
    """``data`` in rows of COLUMNS bytes (zeros added to fill the last), each row PNG-filtered
    "Up" (type 2): what /FlateDecode with /Predictor 12 /Columns COLUMNS decodes to ``data``."""
    data += bytes(-len(data) % COLUMNS)
    rows = [data[i : i + COLUMNS] for i in range(0, len(data), COLUMNS)]
    out = bytearray()
    above = bytes(COLUMNS)
    for row in rows:
        out += b"\x02" + bytes((a - b) % 256 for a, b in zip(row, above, strict=True))
        above = row
    return bytes(out)


def run_length(data: bytes) -> bytes:
    """``data`` as RunLengthDecode literal runs (ISO 32000-1 7.4.5), with its EOD."""
    out = bytearray()
    for i in range(0, len(data), 128):
        chunk = data[i : i + 128]
        out += bytes([len(chunk) - 1]) + chunk
    return bytes(out + b"\x80")


def lzw(data: bytes) -> bytes:
    """``data`` as LZWDecode reads it by default (/EarlyChange 1, ISO 32000-1 7.4.4): codes of 9
    to 12 bits, most significant bit first, a clear-table code before the table fills."""
    out, acc, nbits = bytearray(), 0, 0

    def emit(code: int, j: int) -> None:  # the j-th code since the table was cleared
        nonlocal acc, nbits
        last = 258 + j - 2  # the last entry the decoder has made when it reads code j
        width = 9 + sum(last >= edge for edge in (510, 1022, 2046))
        acc, nbits = (acc << width) | code, nbits + width
        while nbits >= 8:
            nbits -= 8
            out.append((acc >> nbits) & 0xFF)

    def fresh() -> dict[bytes, int]:
        return {bytes([i]): i for i in range(256)}

    table, j, word = fresh(), 0, b""
    emit(256, 0)
    for byte in data:
        grown = word + bytes([byte])
        if grown in table:
            word = grown
            continue
        emit(table[word], j)
        table[grown] = 258 + j
        j, word = j + 1, bytes([byte])
        if 258 + j >= 4000:
            emit(256, j)
            table, j = fresh(), 0
    if word:
        emit(table[word], j)
        j += 1
    emit(257, j)
    if nbits:
        out.append((acc << (8 - nbits)) & 0xFF)
    return bytes(out)


Null = None
PREDICTED = pikepdf.Dictionary(Predictor=12, Columns=COLUMNS)
TRANSFORM = pikepdf.Dictionary(ColorTransform=1)

# (id, how the JPEG is wrapped, /Filter, /DecodeParms, the DCT's /DecodeParms once served)
CHAINS = [
    ("flate", zlib.compress, [FLATE, DCT], Null, Null),
    ("flate-one-parms", zlib.compress, [FLATE, DCT], [Null], Null),
    ("flate-predictor", lambda d: zlib.compress(png_up(d)), [FLATE, DCT], [PREDICTED], Null),
    (
        "flate-predictor-and-dct-parms",
        lambda d: zlib.compress(png_up(d)),
        [FLATE, DCT],
        [PREDICTED, TRANSFORM],
        TRANSFORM,
    ),
    ("hex", lambda d: binascii.hexlify(d) + b">", [HEX, DCT], Null, Null),
    ("hex-one-parms", lambda d: binascii.hexlify(d) + b">", [HEX, DCT], [Null], Null),
    ("hex-dct-parms", lambda d: binascii.hexlify(d) + b">", [HEX, DCT], [Null, TRANSFORM], TRANSFORM),
    ("a85-flate", lambda d: base64.a85encode(zlib.compress(d)) + b"~>", [A85, FLATE, DCT], Null, Null),
    ("runlength", run_length, [RL, DCT], Null, Null),
    ("lzw", lzw, [LZW, DCT], Null, Null),
]


def image_pdf(raw: bytes, filters: list[pikepdf.Name], parms: list[object] | None) -> bytes:
    decode_parms = None if parms is None else pikepdf.Array(parms)
    return pdf_with_images((raw, pikepdf.Array(filters), decode_parms))


def the_image(pdf: pikepdf.Pdf) -> pikepdf.Stream:
    image = pdf.pages[0].Resources.XObject["/Im0"]
    assert isinstance(image, pikepdf.Stream)
    return image


def jpeg_of(pdf_bytes: bytes) -> bytes:
    """The JPEG file the PDF's image holds, as pikepdf extracts it (its outer layers decoded)."""
    with pikepdf.open(io.BytesIO(pdf_bytes)) as pdf:
        out = io.BytesIO()
        assert pikepdf.PdfImage(the_image(pdf)).extract_to(stream=out) == ".jpg"
        return out.getvalue()


def pixels_of(pdf_bytes: bytes) -> bytes:
    with pikepdf.open(io.BytesIO(pdf_bytes)) as pdf:
        return pikepdf.PdfImage(the_image(pdf)).as_pil_image().tobytes()


def every_stream_decoded(pdf_bytes: bytes) -> bytes:
    """The file's bytes and every stream of it decoded as far as qpdf goes short of pixels: a
    JPEG image's data as its file bytes (compression would hide a leak)."""
    with pikepdf.open(io.BytesIO(pdf_bytes)) as pdf:
        found = [pdf_bytes]
        for obj in pdf.objects:
            if isinstance(obj, pikepdf.Stream):
                try:
                    found.append(obj.read_bytes(decode_level=pikepdf.StreamDecodeLevel.specialized))
                except pikepdf.PdfError:  # ends in /DCTDecode: the JPEG file as extracted
                    out = io.BytesIO()
                    pikepdf.PdfImage(obj).extract_to(stream=out)
                    found.append(out.getvalue())
        return b"".join(found)


@pytest.mark.parametrize(
    ("wrap", "filters", "parms", "dct_parms"),
    [case[1:] for case in CHAINS],
    ids=[case[0] for case in CHAINS],
)
def test_a_photo_in_a_chain_ending_in_dct_is_served_without_its_exif(
    wrap, filters, parms, dct_parms
) -> None:
    photo = camera_jpeg(orientation=6)
    original = image_pdf(wrap(photo), filters, parms)
    embedded = jpeg_of(original)  # the JPEG a viewer decodes: the photo (a predictor's padding)
    assert embedded.startswith(photo) and jpeg_gps(embedded) is not None
    for secret in SECRETS:
        assert secret in every_stream_decoded(original), "the fixture hides the EXIF in layers"
    media_type, clean = media.served(original)
    assert media_type == "application/pdf"
    decoded = every_stream_decoded(clean)
    for secret in SECRETS:
        assert secret not in decoded, secret
    with pikepdf.open(io.BytesIO(clean)) as pdf:
        image = the_image(pdf)
        # Written back as a bare JPEG: /DCTDecode alone, the DCT's own parameters kept.
        assert image.Filter == DCT
        assert image.get("/DecodeParms") == dct_parms
        jpeg = image.read_raw_bytes()
    # The same plan as a JPEG file: the very bytes /files/ serves for the photo itself.
    assert jpeg == served(embedded) == served(photo)
    assert jpeg_gps(jpeg) is None
    assert scan_of(jpeg) == scan_of(photo), "the pixel data is byte for byte the camera's"
    with Image.open(io.BytesIO(jpeg)) as after, Image.open(io.BytesIO(photo)) as before:
        assert dict(after.getexif()) == {0x0112: 6}, "only the orientation is left"
        assert after.tobytes() == before.tobytes()
    assert pixels_of(clean) == pixels_of(original), "the PDF's image decodes to the same pixels"


def scanner_jpeg() -> bytes:
    """A scanner's plain JPEG: no EXIF, nothing the JPEG plan would drop, and a whole number of
    predictor rows long (padding after its EOI would be dropped)."""
    for quality in range(60, 101):
        out = io.BytesIO()
        picture().save(out, "JPEG", quality=quality)
        if len(out.getvalue()) % COLUMNS == 0:
            return out.getvalue()
    raise AssertionError("no quality gives a JPEG of whole predictor rows")


@pytest.mark.parametrize(
    ("wrap", "filters", "parms", "dct_parms"),
    [case[1:] for case in CHAINS],
    ids=[case[0] for case in CHAINS],
)
def test_a_chain_whose_jpeg_has_nothing_to_drop_is_carried_over_as_it_is(
    wrap, filters, parms, dct_parms
) -> None:
    # Decoded to look into, but written back only when something was dropped.
    jpeg = scanner_jpeg()
    raw = wrap(jpeg)
    original = image_pdf(raw, filters, parms)
    assert jpeg_of(original) == jpeg
    _, clean = media.served(original)
    with pikepdf.open(io.BytesIO(clean)) as pdf:
        image = the_image(pdf)
        assert image.read_raw_bytes() == raw
        assert list(image.Filter) == filters
        assert image.get("/DecodeParms") == (None if parms is None else pikepdf.Array(parms))


def test_a_chain_cut_short_is_served_as_far_as_it_goes_without_its_exif() -> None:
    # As a JPEG file cut short is: a viewer shows what the Flate layer gives up to its cut.
    photo = camera_jpeg(orientation=1)
    flate = zlib.compress(photo)
    cut = flate[: len(flate) * 3 // 4]
    partial = zlib.decompressobj().decompress(cut)
    assert b"Samsung" in partial and not media.plan(io.BytesIO(partial)).whole
    _, clean = media.served(image_pdf(cut, [FLATE, DCT], None))
    with pikepdf.open(io.BytesIO(clean)) as pdf:
        image = the_image(pdf)
        assert image.Filter == DCT
        assert image.read_raw_bytes() == served(partial)
    assert b"Samsung" not in every_stream_decoded(clean)


# Chains ending in /DCTDecode whose outer layers cannot be decoded: a viewer that decodes them
# as far as it can (or a tool that knows the filter) would find the EXIF at the JPEG's start.
UNDECODABLE = [
    ("unknown-filter", lambda d: d, [pikepdf.Name.NoSuchDecode, DCT], Null),
    ("dct-twice", lambda d: d, [DCT, DCT], Null),
    ("jpx-then-dct", lambda d: d, [pikepdf.Name.JPXDecode, DCT], Null),
    ("bad-hex-digit", lambda d: binascii.hexlify(d)[:40] + b"zz" + binascii.hexlify(d)[40:], [HEX, DCT], Null),
    ("bad-zlib-header", lambda d: b"\x00\x00" + zlib.compress(d), [FLATE, DCT], Null),
    ("unknown-predictor", zlib.compress, [FLATE, DCT], [pikepdf.Dictionary(Predictor=99), Null]),
    ("not-a-jpeg-inside", lambda d: zlib.compress(b"Exif\x00\x00" * 300 + d), [FLATE, DCT], Null),
]


@pytest.mark.parametrize(
    ("wrap", "filters", "parms"), [case[1:] for case in UNDECODABLE], ids=[case[0] for case in UNDECODABLE]
)
def test_a_chain_that_cannot_be_decoded_is_not_served(wrap, filters, parms) -> None:
    original = image_pdf(wrap(camera_jpeg()), filters, parms)
    with pytest.raises(media.Unclean):
        media.served(original)
    with pytest.raises(media.Unclean):  # refused at upload, while the citizen can send again
        media.check(io.BytesIO(original), whole=True)


def test_a_chain_is_looked_into_in_a_pdf_with_other_images() -> None:
    # A bare /DCTDecode photo, a chained one and a Flate-only picture in the same PDF: each
    # handled as it would be alone.
    photo = camera_jpeg(orientation=6)
    pixels = Image.open(io.BytesIO(photo)).tobytes()
    original = pdf_with_images(
        (photo, DCT, None),
        (zlib.compress(photo), pikepdf.Array([FLATE, DCT]), None),
        (zlib.compress(pixels), FLATE, None),
    )
    _, clean = media.served(original)
    decoded = every_stream_decoded(clean)
    for secret in SECRETS:
        assert secret not in decoded, secret
    with pikepdf.open(io.BytesIO(clean)) as pdf:
        xobjects = pdf.pages[0].Resources.XObject
        assert xobjects["/Im0"].read_raw_bytes() == xobjects["/Im1"].read_raw_bytes() == served(photo)
        assert xobjects["/Im1"].Filter == DCT
        assert xobjects["/Im2"].read_raw_bytes() == zlib.compress(pixels)


def test_a_flate_layer_that_expands_past_the_decoding_limit_is_not_served() -> None:
    # A few hundred kilobytes of Flate that decode to more than media.DECODE_LIMIT (a "bomb"):
    # qpdf stops at the limit instead of taking memory without bound, and the PDF is not served.
    packer = zlib.compressobj(9)
    chunk = bytes(1 << 20)
    layers = [packer.compress(camera_jpeg())]
    layers += [packer.compress(chunk) for _ in range(media.DECODE_LIMIT // len(chunk) + 16)]
    bomb = b"".join([*layers, packer.flush()])
    assert len(bomb) < media.DECODE_LIMIT // 200
    original = pdf_with_images((bomb, pikepdf.Array([FLATE, DCT]), None))
    with pytest.raises(media.Unclean, match="memory limit"):
        media.served(original)
