"""gateway.media: photos served without EXIF, XMP, IPTC, GPS or comments, pixels untouched.

Pillow (a test dependency only) makes real camera-like files and is the independent judge: it
decodes what is served, reads what metadata is left, and compares the pixels with the original.
"""

from __future__ import annotations

import io
import struct
import zlib

import pikepdf
import pytest
from PIL import Image, PngImagePlugin

from channels.web.exif import jpeg_gps, make_exif_jpeg
from gateway import media

GPS_IFD = 0x8825
XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-'
    b'syntax-ns#"><rdf:Description xmlns:exif="http://ns.adobe.com/exif/1.0/" '
    b'exif:GPSLatitude="6,45.67S"/></rdf:RDF></x:xmpmeta>'
)


def picture() -> Image.Image:
    img = Image.new("RGB", (48, 32))
    img.putdata([(x * 5 % 256, y * 7 % 256, (x * y) % 256) for y in range(32) for x in range(48)])
    return img


def camera_exif(orientation: int | None) -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "Samsung"  # Make
    exif[0x0110] = "SM-A155F"  # Model
    exif[0xA431] = "R58W90XYZ"  # BodySerialNumber
    if orientation is not None:
        exif[0x0112] = orientation
    gps = exif.get_ifd(GPS_IFD)
    gps.update({1: "S", 2: (6.0, 45.0, 40.32), 3: "E", 4: (108.0, 28.0, 48.36)})
    return exif


def camera_jpeg(orientation: int | None = 6, progressive: bool = False) -> bytes:
    out = io.BytesIO()
    picture().save(
        out, "JPEG", quality=92, exif=camera_exif(orientation), xmp=XMP,
        comment=b"Siti Aminah 0812-3456-7890", progressive=progressive,
    )
    data = out.getvalue()
    # An APP13 Photoshop/IPTC segment after SOI, and a phone's trailer after EOI.
    iptc = b"Photoshop 3.0\x008BIM\x04\x04\x00\x00\x00\x00\x00\x0c\x1c\x02\x50\x00\x07Siti A."
    app13 = b"\xff\xed" + struct.pack(">H", len(iptc) + 2) + iptc
    return data[:2] + app13 + data[2:] + b"MotionPhoto_Data\xff\xd8\xff\xe1secret-gps"


def camera_png() -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "Siti Aminah")
    info.add_itxt("XML:com.adobe.xmp", XMP.decode())
    out = io.BytesIO()
    picture().save(out, "PNG", pnginfo=info, exif=camera_exif(8))
    return out.getvalue()


def served(data: bytes) -> bytes:
    plan = media.plan(io.BytesIO(data))
    out = io.BytesIO()
    media.copy(io.BytesIO(data), plan, out)
    assert plan.size == len(out.getvalue())
    assert media.served(data) == (plan.media_type, out.getvalue())
    return out.getvalue()


@pytest.mark.parametrize("progressive", [False, True])
def test_jpeg_is_served_without_metadata_and_with_the_same_pixels(progressive: bool) -> None:
    original = camera_jpeg(orientation=6, progressive=progressive)
    with Image.open(io.BytesIO(original)) as before:
        assert before.getexif().get_ifd(GPS_IFD), "the fixture carries GPS"
        assert "xmp" in before.info and before.info.get("comment")
    clean = served(original)
    for secret in (b"Samsung", b"R58W90XYZ", b"GPSLatitude", b"Siti", b"8BIM", b"MotionPhoto"):
        assert secret in original and secret not in clean
    with Image.open(io.BytesIO(clean)) as after, Image.open(io.BytesIO(original)) as before:
        exif = after.getexif()
        assert dict(exif) == {0x0112: 6}, "only the orientation is left"
        assert not exif.get_ifd(GPS_IFD)
        assert "xmp" not in after.info and "comment" not in after.info
        assert after.tobytes() == before.tobytes(), "not re-encoded: the same pixels"
    assert jpeg_gps(clean) is None and jpeg_gps(original) is not None


def test_upright_jpeg_keeps_no_exif_at_all() -> None:
    clean = served(camera_jpeg(orientation=1))
    assert b"Exif\x00\x00" not in clean
    with Image.open(io.BytesIO(clean)) as after:
        assert dict(after.getexif()) == {}


def test_a_file_that_only_starts_like_a_jpeg_is_not_served() -> None:
    # make_exif_jpeg: a real EXIF GPS header, then bytes that are no JPEG segment at all.
    original = make_exif_jpeg(-6.7612, 108.4801, b"\x00" * 100)
    assert jpeg_gps(original) == (-6.7612, 108.4801)
    with pytest.raises(media.Unclean):
        media.plan(io.BytesIO(original))


def test_png_is_served_without_text_xmp_and_exif() -> None:
    original = camera_png()
    clean = served(original)
    for secret in (b"Siti", b"xmpmeta", b"Samsung", b"tEXt", b"iTXt"):
        assert secret in original and secret not in clean
    with Image.open(io.BytesIO(clean)) as after, Image.open(io.BytesIO(original)) as before:
        assert dict(after.getexif()) == {0x0112: 8}
        assert after.tobytes() == before.tobytes()
        after.load()  # every chunk CRC checks out


def scanned_pdf() -> bytes:
    """A one-page PDF as a phone scanner app writes it: the citizen's name and NIK in the
    information dictionary and the XMP packet (with a GPS position), an image with its own XMP,
    and an earlier revision kept by an incremental update."""
    pdf = pikepdf.new()
    pdf.add_blank_page(page_size=(200, 300))
    page = pdf.pages[0]
    image = pikepdf.Stream(pdf, b"\xff" * 30)
    image.Type, image.Subtype = pikepdf.Name.XObject, pikepdf.Name.Image
    image.Width, image.Height, image.BitsPerComponent = 10, 3, 8
    image.ColorSpace = pikepdf.Name.DeviceGray
    image.Metadata = pdf.make_stream(b"<x:xmpmeta>Samsung SM-A125F</x:xmpmeta>")
    page.Resources = pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im0=image))
    page.Contents = pdf.make_stream(b"q 100 0 0 30 50 100 cm /Im0 Do Q")
    page.PieceInfo = pikepdf.Dictionary(Scanner=pikepdf.Dictionary(Owner="Siti Aminah"))
    pdf.docinfo["/Author"] = "Siti Aminah"
    pdf.docinfo["/Title"] = "KTP 3209014101900001"
    xmp = (
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-'
        b'rdf-syntax-ns#"><rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:exif='
        b'"http://ns.adobe.com/exif/1.0/" dc:creator="Siti Aminah" exif:GPSLatitude="6,45.672S"/>'
        b"</rdf:RDF></x:xmpmeta>"
    )
    pdf.Root.Metadata = pdf.make_stream(xmp, Type=pikepdf.Name.Metadata, Subtype=pikepdf.Name.XML)
    first = io.BytesIO()
    # Metadata streams left uncompressed, as ISO 32000 recommends and scanner apps do.
    pdf.save(first, object_stream_mode=pikepdf.ObjectStreamMode.disable, compress_streams=False)
    return incremental_update(first.getvalue(), b"<< /Subject (Jalan berlubang) >>")


def incremental_update(original: bytes, info: bytes) -> bytes:
    """``original`` with an appended revision (ISO 32000-1 7.5.6) giving it a new /Info: the
    old information dictionary stays in the file, unreferenced."""
    with pikepdf.open(io.BytesIO(original)) as pdf:
        size = int(pdf.trailer.Size)
        root = pdf.Root.objgen[0]
    prev = int(original.rsplit(b"startxref", 1)[1].split()[0])
    body = original + f"{size} 0 obj\n".encode() + info + b"\nendobj\n"
    xref = len(body)
    entry = f"{len(original):010d} 00000 n \n".encode()
    return body + (
        f"xref\n{size} 1\n".encode() + entry
        + f"trailer\n<< /Size {size + 1} /Root {root} 0 R /Info {size} 0 R /Prev {prev} >>\n"
        f"startxref\n{xref}\n%%EOF\n".encode()
    )


def everything_in(pdf_bytes: bytes) -> bytes:
    """The file's bytes and every stream of it decoded (compression would hide a leak)."""
    with pikepdf.open(io.BytesIO(pdf_bytes)) as pdf:
        streams = [o.read_bytes() for o in pdf.objects if isinstance(o, pikepdf.Stream)]
    return pdf_bytes + b"".join(streams)


def test_pdf_is_served_without_its_metadata_and_with_the_same_pages() -> None:
    original = scanned_pdf()
    media_type, clean = media.served(original)
    assert media_type == "application/pdf"
    for secret in (b"Siti", b"3209014101900001", b"Samsung", b"GPS", b"xmpmeta"):
        assert secret in original and secret not in everything_in(clean), secret
    with pikepdf.open(io.BytesIO(clean)) as after:
        assert "/Info" not in after.trailer and "/Metadata" not in after.Root
        [page] = after.pages
        assert page.Contents.read_bytes() == b"q 100 0 0 30 50 100 cm /Im0 Do Q"
        image = page.Resources.XObject.Im0
        assert image.read_bytes() == b"\xff" * 30 and "/Metadata" not in image
        assert "/PieceInfo" not in page


def test_unknown_files_are_served_as_stored_and_a_broken_pdf_not_at_all() -> None:
    assert media.served(b"hello") == ("application/octet-stream", b"hello")
    with pytest.raises(media.Unclean):
        media.served(b"%PDF-1.7\n" + b"1" * 100)


def test_a_broken_jpeg_is_refused_not_served_with_its_metadata() -> None:
    broken = b"\xff\xd8\xff\xe1\xff\xffExif\x00\x00truncated"
    with pytest.raises(media.Unclean):
        media.plan(io.BytesIO(broken))
    with pytest.raises(media.Unclean):
        media.plan(io.BytesIO(b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR\x00"))



class CountingReader(io.BytesIO):
    """A file that counts the bytes read from it."""

    taken = 0

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.taken += len(data)
        return data


def noisy_jpeg(side: int) -> bytes:
    import random

    rnd = random.Random(7)
    img = Image.frombytes("RGB", (side, side), bytes(rnd.getrandbits(8) for _ in range(side * side * 3)))
    out = io.BytesIO()
    img.save(out, "JPEG", quality=95, exif=camera_exif(3), restart_marker_blocks=1)
    return out.getvalue()


def test_a_scan_longer_than_a_read_chunk_is_followed_to_its_end() -> None:
    original = noisy_jpeg(640)  # hundreds of KB of scan with RST markers, several read chunks
    assert len(original) > 4 * 64 * 1024 and b"\xff\xd7" in original
    clean = served(original)
    assert b"Samsung" in original and b"Samsung" not in clean
    with Image.open(io.BytesIO(clean)) as after, Image.open(io.BytesIO(original)) as before:
        assert dict(after.getexif()) == {0x0112: 3}
        assert after.tobytes() == before.tobytes()


def test_planning_reads_headers_not_the_picture() -> None:
    img = Image.frombytes("L", (1500, 1500), (bytes(range(256)) * 8790)[: 1500 * 1500])
    out = io.BytesIO()
    img.save(out, "PNG", compress_level=0, pnginfo=camera_png_info())
    data = out.getvalue()
    assert len(data) > 2_000_000
    fh = CountingReader(data)
    plan = media.plan(fh)
    assert fh.taken < 64 * 1024, fh.taken
    sink = io.BytesIO()
    media.copy(io.BytesIO(data), plan, sink)
    assert b"Siti" in data and b"Siti" not in sink.getvalue() and len(sink.getvalue()) == plan.size


def camera_png_info() -> PngImagePlugin.PngInfo:
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "Siti Aminah")
    return info


def test_check_runs_the_whole_serving_path_writing_nowhere() -> None:
    assert media.check(io.BytesIO(scanned_pdf())) == "application/pdf"
    assert media.check(io.BytesIO(camera_jpeg())) == "image/jpeg"
    good = scanned_pdf()
    # A PDF whose cross-reference table points into nothing: qpdf cannot follow it.
    for broken in (b"%PDF-1.7\n" + b"1" * 100, good[: len(good) // 3]):
        with pytest.raises(media.Unclean):
            media.check(io.BytesIO(broken))


@pytest.mark.parametrize("at", [65_534, 65_535, 65_536, 65_537])
def test_the_end_of_a_scan_is_found_across_read_chunks(at: int) -> None:
    # SOS with its header, then entropy-coded bytes: a stuffed 0xFF00 and an RST marker just
    # before the end wherever it falls, the end (EOI) at ``at`` bytes into the scan.
    scan = bytearray(at)
    scan[at - 4 : at] = b"\xff\x00\xff\xd3"
    data = b"\xff\xd8" + b"\xff\xda\x00\x08" + bytes(6) + bytes(scan) + b"\xff\xd9" + b"trailer"
    plan = media.plan(io.BytesIO(data))
    assert plan.parts == ((0, 2), (2, 10 + at), b"\xff\xd9")


def test_jfif_thumbnails_are_not_served() -> None:
    out = io.BytesIO()
    picture().save(out, "JPEG", quality=90)
    original = out.getvalue()
    assert original[2:4] == b"\xff\xe0" and original[6:11] == b"JFIF\x00"
    length = struct.unpack(">H", original[4:6])[0]
    head = original[6:18]  # identifier, version, units, densities
    secret = bytes([200, 10, 10]) * 4  # a 2 x 2 thumbnail: the picture again, small
    jfif = head + b"\x02\x02" + secret
    jfxx = b"JFXX\x00\x13" + b"\x02\x02" + bytes([9, 9, 9]) * 4  # an RGB thumbnail extension
    photo = (
        original[:2]
        + b"\xff\xe0" + struct.pack(">H", len(jfif) + 2) + jfif
        + b"\xff\xe0" + struct.pack(">H", len(jfxx) + 2) + jfxx
        + original[4 + length :]
    )
    clean = served(photo)
    assert secret in photo and secret not in clean and b"JFXX" not in clean
    # The JFIF header stays, with its densities, and says it has no thumbnail.
    assert clean[2:4] == b"\xff\xe0" and clean[6:18] == head and clean[18:20] == b"\x00\x00"
    with Image.open(io.BytesIO(clean)) as after, Image.open(io.BytesIO(photo)) as before:
        assert after.tobytes() == before.tobytes()


def test_a_picture_cut_short_is_served_as_far_as_it_goes_but_not_whole() -> None:
    # A letter scan is read to its end: ``whole=True`` refuses what ``/files/`` serves as far as
    # it goes (a JPEG without its EOI, a PNG without IEND), the web's check keeps serving it.
    jpeg = noisy_jpeg(200)
    png = camera_png()
    iend = png.rindex(b"IEND") - 4
    for cut in (jpeg[: len(jpeg) // 2], jpeg[:-2], png[:iend]):
        assert media.check(io.BytesIO(cut)) in ("image/jpeg", "image/png")
        assert not media.plan(io.BytesIO(cut)).whole
        with pytest.raises(media.Unclean, match="cut short"):
            media.check(io.BytesIO(cut), whole=True)
    for good in (jpeg, png, camera_jpeg(), scanned_pdf()):
        assert media.plan(io.BytesIO(good)).whole
        assert media.check(io.BytesIO(good), whole=True) == media.check(io.BytesIO(good))


def test_a_png_whose_chunk_fails_its_crc_is_not_whole() -> None:
    img = Image.frombytes("L", (300, 300), bytes(range(256)) * 351 + bytes(144))
    out = io.BytesIO()
    img.save(out, "PNG", compress_level=0)  # chunks of 64 KiB: more than one read each
    png = bytearray(out.getvalue())
    idat = png.index(b"IDAT")
    assert struct.unpack(">I", png[idat - 4 : idat])[0] >= 64 * 1024
    png[idat + 40_000] ^= 0x20  # one bit of the picture flipped, the structure intact
    assert media.check(io.BytesIO(bytes(png))) == "image/png"
    with pytest.raises(media.Unclean, match="CRC"):
        media.check(io.BytesIO(bytes(png)), whole=True)


def pdf_with_images(*images: tuple[bytes, pikepdf.Object, pikepdf.Object | None]) -> bytes:
    """A one-page PDF showing each (raw stream bytes, /Filter, /DecodeParms) as an image
    XObject, its bytes put in the file as they are (as a photo-to-PDF app embeds a JPEG)."""
    pdf = pikepdf.new()
    pdf.add_blank_page(page_size=(200, 300))
    xobjects = pikepdf.Dictionary()
    for i, (raw, filters, parms) in enumerate(images):
        image = pikepdf.Stream(pdf, raw)
        image.Type, image.Subtype = pikepdf.Name.XObject, pikepdf.Name.Image
        image.Width, image.Height, image.BitsPerComponent = 48, 32, 8
        image.ColorSpace, image.Filter = pikepdf.Name.DeviceRGB, filters
        if parms is not None:
            image.DecodeParms = parms
        xobjects[f"/Im{i}"] = image
    pdf.pages[0].Resources = pikepdf.Dictionary(XObject=xobjects)
    pdf.pages[0].Contents = pdf.make_stream(b"q 48 0 0 32 50 100 cm /Im0 Do Q")
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


def served_images(pdf_bytes: bytes) -> list[tuple[bytes, pikepdf.Object, pikepdf.Object | None]]:
    """The (raw bytes, /Filter, /DecodeParms) of each image of the served PDF, by name."""
    media_type, clean = media.served(pdf_bytes)
    assert media_type == "application/pdf"
    with pikepdf.open(io.BytesIO(clean)) as pdf:
        xobjects = pdf.pages[0].Resources.XObject
        return [
            (xobjects[k].read_raw_bytes(), xobjects[k].Filter, xobjects[k].get("/DecodeParms"))
            for k in sorted(xobjects.keys())
        ]


def scan_of(jpeg: bytes) -> bytes:
    """A JPEG's pixel data: its first SOS segment through its EOI (every scan, and the tables
    of a progressive JPEG's later scans, in between)."""
    pos = 2
    while jpeg[pos + 1] != 0xDA:
        pos += 2 + struct.unpack(">H", jpeg[pos + 2 : pos + 4])[0]
    return jpeg[pos : jpeg.index(b"\xff\xd9", pos) + 2]


@pytest.mark.parametrize("progressive", [False, True])
@pytest.mark.parametrize("as_array", [False, True])
def test_a_photo_embedded_in_a_pdf_is_served_without_its_exif(
    progressive: bool, as_array: bool
) -> None:
    photo = camera_jpeg(orientation=6, progressive=progressive)
    dct = pikepdf.Name.DCTDecode
    filters: pikepdf.Object = pikepdf.Array([dct]) if as_array else dct
    parms = pikepdf.Dictionary(ColorTransform=1)
    original = pdf_with_images((photo, filters, parms))
    _, clean = media.served(original)
    [(jpeg, got_filters, got_parms)] = served_images(original)
    for secret in (b"Samsung", b"R58W90XYZ", b"GPSLatitude", b"Siti", b"8BIM", b"MotionPhoto"):
        assert secret in original and secret not in clean + jpeg, secret
    assert got_filters == filters and got_parms == parms, "the filter is written back unchanged"
    assert jpeg_gps(photo) is not None and jpeg_gps(jpeg) is None
    # The same plan as a JPEG file: the very bytes /files/ serves for the photo itself.
    assert jpeg == served(photo)
    assert scan_of(jpeg) == scan_of(photo), "the pixel data is byte for byte the camera's"
    with Image.open(io.BytesIO(jpeg)) as after, Image.open(io.BytesIO(photo)) as before:
        assert dict(after.getexif()) == {0x0112: 6}, "only the orientation is left"
        assert "xmp" not in after.info and "comment" not in after.info
        assert after.tobytes() == before.tobytes()


def test_images_with_nothing_to_drop_in_a_pdf_are_carried_over_as_they_are() -> None:
    pixels = picture().tobytes()
    flate = zlib.compress(pixels)
    plain = io.BytesIO()
    picture().save(plain, "JPEG", quality=90)  # a scanner's JPEG: nothing to drop
    # [/FlateDecode /DCTDecode] around it: looked into (tests/unit/test_media_pdf_chains.py),
    # nothing to drop, so left with its layers.
    chain = zlib.compress(plain.getvalue())
    images = [
        (flate, pikepdf.Name.FlateDecode, None),
        (chain, pikepdf.Array([pikepdf.Name.FlateDecode, pikepdf.Name.DCTDecode]), None),
        (plain.getvalue(), pikepdf.Name.DCTDecode, None),
    ]
    assert served_images(pdf_with_images(*images)) == images


def test_a_jpeg_in_a_pdf_is_handled_as_a_jpeg_file_is() -> None:
    # Cut short: served as far as it goes (its EXIF gone), as a JPEG file is.
    photo = noisy_jpeg(200)
    cut = photo[: len(photo) // 2]
    [(jpeg, _, _)] = served_images(pdf_with_images((cut, pikepdf.Name.DCTDecode, None)))
    assert b"Samsung" in cut and b"Samsung" not in jpeg
    assert jpeg == served(cut) and not media.plan(io.BytesIO(cut)).whole
    # Segments that cannot be followed, or no JPEG at all: not served, rather than with its EXIF.
    broken = make_exif_jpeg(-6.7612, 108.4801, b"\x00" * 100)
    for bad in (broken, b"Exif\x00\x00" + broken):
        with pytest.raises(media.Unclean):
            media.served(pdf_with_images((bad, pikepdf.Name.DCTDecode, None)))


def _scanner_jpeg() -> bytes:
    """A scanner's plain JPEG: no EXIF, nothing the JPEG plan would drop."""
    out = io.BytesIO()
    Image.new("RGB", (48, 32), (200, 120, 40)).save(out, "JPEG", quality=90)
    return out.getvalue()


@pytest.mark.parametrize("junk", [b"\n", b"\r\n", b"\x00\x00"], ids=["lf", "crlf", "nul"])
def test_a_pdf_whose_jpeg_has_bytes_before_its_start_marker_is_served(junk: bytes) -> None:
    # A few bytes before a /DCTDecode image's SOI: PDF readers skip to the first FF D8
    # (poppler, pdf.js), so a scanner's PDF with them is served (without them), not refused.
    jpeg = _scanner_jpeg()
    original = pdf_with_images((junk + jpeg, pikepdf.Name.DCTDecode, None))
    with pikepdf.open(io.BytesIO(original)) as pdf:  # a valid PDF, its image as embedded
        assert pdf.pages[0].Resources.XObject["/Im0"].read_raw_bytes() == junk + jpeg
    assert media.check(io.BytesIO(original), whole=True) == "application/pdf"
    [(served_jpeg, _, _)] = served_images(original)
    assert jpeg in served_jpeg
