"""Serving stored photos without their metadata. Pure planning over a file's bytes.

Attachments are stored exactly as received: the EXIF GPS position of a photo is evidence (the web
channel copies it into the message's metadata at upload). What leaves the gateway again must not
carry the citizen's metadata: GPS, camera serial numbers, owner names, XMP editing history,
IPTC captions, comments, embedded thumbnails (which keep the uncropped picture). Nothing is
re-encoded: the pixels are served bit for bit, only the segments around them are dropped.

:func:`plan` reads the file's structure and returns the byte ranges to serve, with small
generated segments in between (a JFIF header without its thumbnail, an orientation tag). It
reads a seekable file (the file store's :meth:`opened`), segment headers and the few segments
it looks into, never the file whole: only the scan of a JPEG is read through, in chunks, to find
where it ends.

- **JPEG** (ITU-T T.81 annex B): only the segments a decoder needs are kept: SOI, SOFn, DHT, DAC,
  DQT, DRI, DNL, SOS with its entropy-coded data (RSTn inside), EOI, plus APP0 JFIF (its
  densities, the thumbnail it may carry removed), APP2 ``ICC_PROFILE`` (colours) and APP14
  ``Adobe`` (colour transform). APP0 JFXX (thumbnail extensions), APP1 (EXIF,
  XMP, extended XMP), APP13 (Photoshop IRB / IPTC), every other APPn, COM and anything after the
  first EOI (MPF secondary images, phone "motion photo" trailers, which carry their own EXIF) are
  dropped.
- **PNG** (ISO/IEC 15948, PNG 3rd edition): the critical chunks and the ancillary chunks that
  change how the image looks are kept (IHDR, PLTE, IDAT, IEND, tRNS, gAMA, cHRM, sRGB, iCCP,
  cICP, mDCV, cLLI, sBIT, bKGD, pHYs, and APNG's acTL/fcTL/fdAT); eXIf, tEXt, zTXt, iTXt (XMP),
  tIME, every private chunk and anything after IEND are dropped.
- Orientation: a camera that stores the picture sideways says so in EXIF tag 0x0112. Dropping it
  would show the photo rotated, so when the original carries an orientation other than 1 a
  minimal EXIF block holding ONLY that tag (CIPA DC-008 4.6.4, IFD0) takes the place of the
  original one.
- **PDF** (ISO 32000): the document information dictionary (Author, Title, Subject, Keywords,
  Creator, Producer, dates), every XMP metadata stream (the document's and any page's or
  image's: creator tools, a phone scanner's GPS) and PieceInfo (application private data) are
  removed, and the file is written anew with qpdf (through pikepdf), which also drops earlier
  revisions kept by incremental updates. An image whose /Filter is exactly /DCTDecode holds a
  JPEG file (a photo-to-PDF app embeds the camera's, EXIF and GPS included): it is written back
  as the JPEG plan above serves it, same filter, the same scan bytes. So is the JPEG under a
  chain ending in /DCTDecode ([/FlateDecode /DCTDecode], [/ASCIIHexDecode /DCTDecode]): qpdf
  decodes the outer layers (Flate, LZW, ASCIIHex, ASCII85, RunLength, with their
  /DecodeParms) and, when something was dropped, it is written back as a bare /DCTDecode image;
  a chain whose outer layers cannot be decoded raises :class:`Unclean`. A /JPXDecode image
  (JPEG 2000) keeps only the boxes a decoder reads, its codestream without comments and
  without what follows its end (:func:`_served_jpx`). A JPEG written inline in a content
  stream (BI ... ID ... EI, /DCT) is served by the JPEG plan too, its content stream written
  anew (:func:`_strip_inline_images`); an inline JPEG under more filters, and a JPEG start
  with a metadata segment in a content stream that no inline JPEG holds (one without its EI,
  the raw data of another image), raise :class:`Unclean`. JPEG 2000 under other filters is
  not looked into. Otherwise pages, content streams and images are carried over as they are,
  not re-rendered.
- Anything else is served as stored: WebP is not accepted as an attachment, and a letter
  scan in TIFF is served as the scanner wrote it.

A JPEG, PNG or PDF whose structure cannot be followed raises :class:`Unclean`: such a file is
not served at all rather than served with its metadata. :func:`cleaned` decides, before a byte
is written, what will be served and how long it is (the PDF's length is known only once written);
its ``write`` then streams it out. The web channel (every attachment) and the letter desk
(every scan) run the same on a new file (:func:`check`) with ``whole=True``, so a file that
could not be served is refused when it is sent, and so is a JPEG or PNG cut short (no EOI, no
IEND), which ``/files/`` would serve as far as it goes, and a PNG chunk whose CRC does not
match.
"""

from __future__ import annotations

import functools
import io
import re
import struct
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO, cast

import pikepdf

JPEG_MAGIC = b"\xff\xd8\xff"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PDF_MAGIC = b"%PDF-"
MAGIC: tuple[tuple[bytes, str], ...] = (
    (JPEG_MAGIC, "image/jpeg"),
    (PNG_MAGIC, "image/png"),
    (PDF_MAGIC, "application/pdf"),
)
SNIFF_BYTES = 8
_OTHER = "application/octet-stream"
_COPY_CHUNK = 64 * 1024

# JPEG markers kept with their segment (T.81 table B.1): SOF0-15 except DHT (C4), JPG (C8) and
# DAC (CC), which are listed on their own; DQT DB, DNL DC, DRI DD; APP0, APP2 (ICC only), APP14.
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_KEEP_JPEG = _SOF | {0xC4, 0xCC, 0xDB, 0xDC, 0xDD}
_SOS, _EOI, _APP0, _APP1, _APP2, _APP14 = 0xDA, 0xD9, 0xE0, 0xE1, 0xE2, 0xEE
# JFIF's APP0 up to its thumbnail's size (JFIF 1.02: identifier, version, units, densities).
_JFIF_HEAD = 5 + 2 + 1 + 2 + 2
# The end of entropy-coded data: 0xFF followed by anything but a stuffed 0x00 or RST0-7.
_SCAN_END = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")

_KEEP_PNG = {
    b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"iCCP", b"cICP",
    b"mDCV", b"cLLI", b"sBIT", b"bKGD", b"pHYs", b"acTL", b"fcTL", b"fdAT",
}
_ORIENTATION = 0x0112


class Unclean(ValueError):
    """The file claims to be a JPEG or PNG but its structure cannot be followed."""


# A part of the served file: a (offset, length) range of the stored file, or generated bytes.
Part = tuple[int, int] | bytes


@dataclass(frozen=True, slots=True)
class Plan:
    """What to send for one stored file: its media type and the parts, in order."""

    media_type: str
    parts: tuple[Part, ...]
    stripped: bool  # False: the file is served exactly as stored
    whole: bool = True  # False: a JPEG without its EOI or a PNG without IEND (cut short)

    @property
    def size(self) -> int:
        """The number of bytes served."""
        return sum(len(p) if isinstance(p, bytes) else p[1] for p in self.parts)


def sniff(head: bytes) -> str | None:
    """The media type the first bytes show, or None when it is not an accepted type."""
    for magic, media_type in MAGIC:
        if head.startswith(magic):
            return media_type
    return None


def plan(fh: BinaryIO) -> Plan:
    """The plan to serve the file ``fh`` (seekable) without metadata."""
    src = _Source(fh)
    media_type = sniff(src.at(0, SNIFF_BYTES))
    try:
        if media_type == "image/jpeg":
            parts, whole = _jpeg_parts(src)
            return Plan(media_type, tuple(parts), True, whole)
        if media_type == "image/png":
            parts, whole = _png_parts(src)
            return Plan(media_type, tuple(parts), True, whole)
    except (struct.error, IndexError) as exc:
        raise Unclean(f"{media_type}: {exc}") from None
    return Plan(media_type or _OTHER, ((0, src.size),), False)


def copy(fh: BinaryIO, plan: Plan, out: BinaryIO) -> None:
    """Write the served bytes of ``fh`` under ``plan`` to ``out``, a chunk at a time."""
    for part in plan.parts:
        if isinstance(part, bytes):
            out.write(part)
            continue
        offset, left = part
        fh.seek(offset)
        while left > 0 and (chunk := fh.read(min(left, _COPY_CHUNK))):
            out.write(chunk)
            left -= len(chunk)
        if left > 0:
            raise Unclean("the file is shorter than when it was planned")


@dataclass(frozen=True, slots=True)
class Cleaned:
    """What will be served of a file: decided before a byte is written."""

    media_type: str
    size: int | None  # None: known once written (a PDF is written anew)
    write: Callable[[BinaryIO], None]  # writes the served bytes; may raise Unclean (a PDF)


@contextmanager
def cleaned(fh: BinaryIO, strip: bool = True) -> Iterator[Cleaned]:
    """What to serve of the file ``fh`` (seekable, read in place, never whole): photos and PDFs
    without their metadata, anything else as stored. Raises :class:`Unclean` rather than leak
    metadata, before anything is written for a photo, and also while writing for a PDF whose
    later objects turn out broken. ``strip=False``: the file exactly as stored, typed by its
    first bytes."""
    if not strip:
        size = fh.seek(0, io.SEEK_END)
        whole = Plan(sniff(_Source(fh).at(0, SNIFF_BYTES)) or _OTHER, ((0, size),), False)
        yield Cleaned(whole.media_type, size, lambda out: copy(fh, whole, out))
        return
    found = plan(fh)
    if found.media_type != "application/pdf":
        yield Cleaned(found.media_type, found.size, lambda out: copy(fh, found, out))
        return
    fh.seek(0)
    _bound_decoding()
    try:
        pdf = pikepdf.open(fh)
    except pikepdf.PdfError as exc:
        raise Unclean(f"application/pdf: {exc}") from None
    with pdf:
        try:
            _strip_pdf(pdf)
        except pikepdf.PdfError as exc:
            raise Unclean(f"application/pdf: {exc}") from None
        yield Cleaned(found.media_type, None, lambda out: _save_pdf(pdf, out))


def check(fh: BinaryIO, *, whole: bool = False) -> str:
    """The media type of the file ``fh`` when it can be served (:func:`cleaned` runs through it,
    writing nowhere); raises :class:`Unclean` otherwise. ``whole=True`` (a letter scan, read to
    its end by OCR) also refuses what ``/files/`` would serve as far as it goes: a JPEG without
    its EOI, a PNG without IEND, and a PNG whose served chunks fail their CRC (each chunk read
    in pieces, never the file whole)."""
    if whole:
        found = plan(fh)
        if not found.whole:
            raise Unclean(f"{found.media_type}: cut short before its end")
        if found.media_type == "image/png":
            _check_png_crcs(_Source(fh), found.parts)
    with cleaned(fh) as what:
        what.write(cast(BinaryIO, _Nowhere()))
        return what.media_type


def served(data: bytes) -> tuple[str, bytes]:
    """The media type and the served bytes of ``data`` (:func:`cleaned`, in memory)."""
    out = io.BytesIO()
    with cleaned(io.BytesIO(data)) as what:
        what.write(out)
        return what.media_type, out.getvalue()


# The most memory qpdf may take to decode one Flate, RunLength or PNG-predicted stream (see
# _bound_decoding): far above a scanned page's image (an A4 page at 300 dpi in colour is 26 MB),
# far below what a small "bomb" of zeros expands to (a 25 MB upload, to 25 GB).
DECODE_LIMIT = 256 * 1024 * 1024


@functools.cache
def _bound_decoding() -> None:
    """Bound, once per process, the memory qpdf takes to decode one stream (its own default is
    no bound): a JPEG under Flate is decoded here to strip it (_strip_pdf_jpeg_chain), and a
    stream a few kilobytes long can expand to gigabytes. qpdf's limits are process-wide; the
    gateway opens PDFs only through this module and pypdfium2 (which has its own decoders)."""
    pikepdf.settings.set_qpdf_limits(
        flate_max_memory=DECODE_LIMIT,
        run_length_max_memory=DECODE_LIMIT,
        png_max_memory=DECODE_LIMIT,
    )


# Keys of any PDF dictionary or stream that carry metadata rather than content.
_PDF_METADATA = ("/Metadata", "/PieceInfo")


def _strip_pdf(pdf: pikepdf.Pdf) -> None:
    """Remove the information dictionary and every metadata stream and PieceInfo, and the
    metadata of every JPEG image: embedded as it is (:func:`_strip_pdf_jpeg`) or inside outer
    layers (:func:`_strip_pdf_jpeg_chain`)."""
    if "/Info" in pdf.trailer:
        del pdf.trailer["/Info"]
    for obj in pdf.objects:
        if isinstance(obj, (pikepdf.Dictionary, pikepdf.Stream)):
            for key in _PDF_METADATA:
                if key in obj:
                    del obj[key]
        if isinstance(obj, pikepdf.Stream):
            filters = obj.get("/Filter")
            if _is_dct_only(filters):
                _strip_pdf_jpeg(obj)
            elif _is_dct_chain(filters):
                _strip_pdf_jpeg_chain(obj)
            elif _is_only(filters, pikepdf.Name.JPXDecode):
                _strip_pdf_jpx(obj)
    _strip_inline_images(pdf)


def _strip_inline_images(pdf: pikepdf.Pdf) -> None:
    """The metadata of JPEG images written inline in content streams (``BI ... ID ... EI``,
    /Filter /DCTDecode or its abbreviation /DCT), dropped as an image object's is
    (:func:`_served_jpeg`): in every content stream something draws (:func:`_drawn`) and every
    form XObject or tiling pattern of the file. A content stream is written anew only when one
    of its images lost something; one that cannot be parsed raises :class:`Unclean`."""
    for page in pdf.pages:
        new = _served_content(page.obj)
        if new is not None:
            page.Contents = pdf.make_stream(new)
    streams = _drawn(pdf)
    known = {s.objgen for s in streams}
    for obj in pdf.objects:
        if not isinstance(obj, pikepdf.Stream) or obj.objgen in known:
            continue
        if obj.get("/Subtype") == pikepdf.Name.Form or obj.get("/PatternType") == 1:
            streams.append(obj)
    for stream in streams:
        if (new := _served_content(stream)) is not None:
            stream.write(new)


def _drawn(pdf: pikepdf.Pdf) -> list[pikepdf.Stream]:
    """The content streams drawn with the pages, whatever their dictionaries say: the form
    XObjects and tiling patterns of every resource dictionary reached (nested ones too), the
    glyphs of Type 3 fonts (direct dictionaries included), annotations' appearances (a stream
    without /Subtype /Form draws all the same)."""
    found: dict[tuple[int, int], pikepdf.Stream] = {}

    def add(stream: object) -> None:
        if isinstance(stream, pikepdf.Stream) and stream.objgen not in found:
            if stream.get("/Subtype") == pikepdf.Name.Image:
                return
            found[stream.objgen] = stream
            resources(stream.get("/Resources"))

    def values(holder: object, key: str) -> list[pikepdf.Object]:
        inner = holder.get(key) if isinstance(holder, pikepdf.Dictionary) else None
        return list(inner.values()) if isinstance(inner, pikepdf.Dictionary) else []

    def resources(res: object) -> None:
        for item in values(res, "/XObject") + values(res, "/Pattern"):
            add(item)
        for font in values(res, "/Font"):
            if isinstance(font, pikepdf.Dictionary) and font.get("/Subtype") == pikepdf.Name.Type3:
                for glyph in values(font, "/CharProcs"):
                    add(glyph)
                resources(font.get("/Resources"))

    for page in pdf.pages:
        resources(page.obj.get("/Resources"))
        for annot in page.obj.get("/Annots", pikepdf.Array()):
            appearance = annot.get("/AP") if isinstance(annot, pikepdf.Dictionary) else None
            for key in ("/N", "/R", "/D"):
                shown = appearance.get(key) if isinstance(appearance, pikepdf.Dictionary) else None
                for stream in [shown] if isinstance(shown, pikepdf.Stream) else values(
                    appearance, key
                ):
                    add(stream)
    return list(found.values())


def _served_content(owner: pikepdf.Object) -> bytes | None:
    """A page's or content stream's instructions with the JPEG of each inline image served by
    the JPEG plan; None when no inline image lost anything (or there is none)."""
    try:
        data = (
            b"".join(s.read_bytes() for s in _contents(owner))
            if isinstance(owner, pikepdf.Dictionary)
            else owner.read_bytes()
        )
    except pikepdf.PdfError as exc:
        raise Unclean(f"application/pdf: a content stream cannot be read: {exc}") from None
    if b"ID" not in data or b"BI" not in data:
        return None  # no inline image (the common case): not parsed
    try:
        instructions = pikepdf.parse_content_stream(owner)
    except pikepdf.PdfError as exc:
        raise Unclean(f"application/pdf: a content stream cannot be parsed: {exc}") from None
    out, changed, seen = [], False, 0
    for ins in instructions:
        written = pikepdf.unparse_content_stream([ins])
        if isinstance(ins, pikepdf.ContentStreamInlineImage):
            image = ins.iimage
            raw = image.read_raw_bytes()
            jpeg = image.filters in (["/DCTDecode"], ["/DCT"])
            if not jpeg and any(f in ("/DCTDecode", "/DCT") for f in image.filters):
                # A JPEG under more layers ([/AHx /DCT], [/Fl /DCT]): not followed inline.
                raise Unclean("application/pdf: an inline JPEG under other filters")
            if jpeg:
                seen += len(_JPEG_START.findall(raw))
                served = _served_jpeg(raw.rstrip(b" \t\r\n\f\x00")) if raw.strip() else None
                if served is not None:
                    if not written.endswith(raw + b"EI"):
                        raise Unclean("application/pdf: an inline image cannot be written again")
                    written = written[: len(written) - len(raw) - 2] + served + b"\nEI"
                    changed = True
        out.append(written)
    if len(_JPEG_START.findall(data)) > seen:
        # A JPEG with metadata segments that no inline JPEG image holds: one the parser did
        # not take as an inline image (without its EI, which qpdf drops with what follows, and
        # a lenient viewer may still show), or a camera's JPEG as the raw data of an image of
        # another kind. Not followed.
        raise Unclean("application/pdf: an inline image that cannot be followed")
    return b"\n".join(out) if changed else None


# A JPEG's start with a metadata segment first: SOI, then APPn (EXIF, XMP, JFIF...) or COM.
_JPEG_START = re.compile(b"\xff\xd8\xff[\xe0-\xef\xfe]")


def _contents(page: pikepdf.Object) -> list[pikepdf.Stream]:
    """A page's content streams (/Contents: one stream, an array of them, or none)."""
    contents = page.get("/Contents")
    if isinstance(contents, pikepdf.Stream):
        return [contents]
    if isinstance(contents, pikepdf.Array):
        return [c for c in contents if isinstance(c, pikepdf.Stream)]
    return []


# Bytes a /DCTDecode stream may hold before its JPEG's start marker (see _strip_pdf_jpeg).
_DCT_SLACK = 1024


def _is_only(filters: pikepdf.Object | None, name: pikepdf.Name) -> bool:
    """Whether a stream's /Filter is exactly ``name``: alone, or the one entry of an array."""
    if isinstance(filters, pikepdf.Array) and len(filters) == 1:
        filters = filters[0]
    return isinstance(filters, pikepdf.Name) and filters == name


def _is_dct_only(filters: pikepdf.Object | None) -> bool:
    """Whether a stream's /Filter is exactly /DCTDecode: alone, or the one entry of an array.
    Its raw bytes are then a JPEG file, which a photo-to-PDF app embeds as the camera wrote it,
    EXIF (maker, model, GPS) included. A chain ending in /DCTDecode such as [/FlateDecode
    /DCTDecode] holds one too, under outer layers: :func:`_is_dct_chain`. JPEG 2000 has its
    own (:func:`_served_jpx`), and so do inline images (:func:`_strip_inline_images`)."""
    return _is_only(filters, pikepdf.Name.DCTDecode)


def _is_dct_chain(filters: pikepdf.Object | None) -> bool:
    """Whether a stream's /Filter is a chain of two or more filters whose last is /DCTDecode:
    once the outer ones are decoded, a JPEG file (:func:`_strip_pdf_jpeg_chain`)."""
    if not isinstance(filters, pikepdf.Array) or len(filters) < 2:
        return False
    last = filters[len(filters) - 1]
    return isinstance(last, pikepdf.Name) and last == pikepdf.Name.DCTDecode


def _strip_pdf_jpeg(stream: pikepdf.Stream) -> None:
    """Serve the JPEG held by a /DCTDecode stream by the same plan as a JPEG file
    (:func:`_served_jpeg`). Written back raw, its /Filter and /DecodeParms as they were; only
    when something was dropped, so a scanner's plain JPEG stays in the file and is read again
    only when the PDF is written. One image is read at a time; a stripped one is held in memory
    until the PDF is written."""
    raw = stream.read_raw_bytes()
    if not raw:
        return  # nothing in it, nothing to leak
    data = _served_jpeg(raw)
    if data is None:
        return
    stream.write(
        data,
        filter=cast("pikepdf.Name | pikepdf.Array", stream.get("/Filter")),
        decode_parms=cast("pikepdf.Dictionary | pikepdf.Array | None", stream.get("/DecodeParms")),
        type_check=False,  # written back exactly as they were, [/DCTDecode] not made /DCTDecode
    )


def _strip_pdf_jpeg_chain(stream: pikepdf.Stream) -> None:
    """Serve the JPEG under the outer layers of a chain ending in /DCTDecode (such as
    [/FlateDecode /DCTDecode] or [/ASCIIHexDecode /DCTDecode]) by the same plan as a JPEG file
    (:func:`_served_jpeg`). qpdf decodes the outer filters with their own /DecodeParms (Flate
    and LZW predictors), every lossless filter it knows: Flate, LZW, ASCIIHex, ASCII85
    ("generalized") and RunLength ("specialized"); the JPEG itself is not decoded.

    Only when something was dropped, the stream is written back as a bare JPEG: /DCTDecode
    alone, with the /DecodeParms that were the JPEG's own (/ColorTransform). Not encoded
    again: Flate gains next to nothing on a JPEG's entropy-coded data, the ASCII layers only
    matter for 7-bit transport, which a PDF written by qpdf does not keep anyway, and a bare
    /DCTDecode image is what every PDF reader shows and what a photo-to-PDF app writes itself.
    When nothing is dropped, the stream is left exactly as it was, its layers included.

    A chain whose outer layers cannot be decoded (a filter qpdf does not know or cannot decode
    without loss, such as another /DCTDecode or /JPXDecode, parameters it does not take, data
    that is no Flate or hex at all) raises :class:`Unclean`, so is a JPEG inside whose segments
    cannot be followed: the PDF is not served (``/files/`` answers 422) and an upload carrying
    it is refused while the citizen can still send it again. Left as it is, it would be served
    with the camera's EXIF and GPS at the start of its JPEG, where a viewer that decodes such
    data as far as it can, or a tool that knows the filter, finds them. Data cut short (a
    Flate layer ending early) is decoded as far as it goes and kept so, as a JPEG file cut
    short is."""
    filters = cast(pikepdf.Array, stream.Filter)
    parms = stream.get("/DecodeParms")
    count = len(filters)
    outer = [filters[i] for i in range(count - 1)]
    # One set of parameters per filter: an array's entries (missing ones are none, as readers
    # take a short array), or one dictionary for each, as qpdf reads one given to a chain.
    if isinstance(parms, pikepdf.Array):
        each = [parms[i] if i < len(parms) else None for i in range(count)]
    elif isinstance(parms, pikepdf.Dictionary):
        each = [parms] * count
    else:
        each = [None] * count
    try:
        # qpdf decodes a chain whole or not at all: the stream is read with its outer filters
        # only, then given its own back.
        stream.Filter = pikepdf.Array(outer)
        stream.DecodeParms = pikepdf.Array(each[:-1])
        jpeg = stream.read_bytes(decode_level=pikepdf.StreamDecodeLevel.specialized)
    except pikepdf.PdfError as exc:
        layers = " ".join(str(f) for f in outer)
        raise Unclean(f"application/pdf: a JPEG image under {layers}: {exc}") from None
    finally:
        stream.Filter = filters
        if parms is not None:
            stream.DecodeParms = parms
        elif "/DecodeParms" in stream:
            del stream["/DecodeParms"]
    if not jpeg:
        return  # nothing in it, nothing to leak
    data = _served_jpeg(jpeg)
    if data is None:
        return
    dct_parms = each[-1]
    stream.write(
        data,
        filter=pikepdf.Name.DCTDecode,
        decode_parms=dct_parms if isinstance(dct_parms, pikepdf.Dictionary) else None,
    )


def _strip_pdf_jpx(stream: pikepdf.Stream) -> None:
    """Serve the JPEG 2000 image of a /JPXDecode stream without what is not the picture
    (:func:`_served_jpx`), written back raw under the same /Filter, only when something was
    dropped."""
    raw = stream.read_raw_bytes()
    if not raw:
        return
    data = _served_jpx(raw)
    if data is not None:
        stream.write(
            data,
            filter=cast("pikepdf.Name | pikepdf.Array", stream.get("/Filter")),
            decode_parms=cast(
                "pikepdf.Dictionary | pikepdf.Array | None", stream.get("/DecodeParms")
            ),
            type_check=False,
        )


# A JP2 file's first box (ISO/IEC 15444-1 I.5.1), and the boxes a decoder reads (I.4, and
# JPX's in 15444-2 M.11), by the superbox they are in (b"" for the file): signature, file type,
# reader requirements, the header boxes and what they hold, the codestream. Anything else goes,
# at any depth: XML (XMP: creator tool, author, a scanner's GPS), UUID boxes (EXIF or XMP by
# UUID, GeoJP2 positions), UUID info, IPR, association and label boxes. A fragment table (a
# codestream spread over other boxes, JPX) is not followed: such an image is not served.
_JP2_SIGNATURE = b"\x00\x00\x00\x0cjP  \r\n\x87\n"
_JP2_HEADER = frozenset({b"ihdr", b"bpcc", b"colr", b"pclr", b"cmap", b"cdef", b"res "})
_JP2_KEEP: dict[bytes, frozenset[bytes]] = {
    b"": frozenset({b"jP  ", b"ftyp", b"rreq", b"jp2h", b"jpch", b"jplh", b"jp2c"}),
    b"jp2h": _JP2_HEADER,
    b"jpch": _JP2_HEADER,
    b"jplh": frozenset({b"cgrp", b"opct", b"creg", b"res "}),
    b"cgrp": frozenset({b"colr"}),
    b"res ": frozenset({b"resc", b"resd"}),
}
_J2K_SOC, _J2K_SOT, _J2K_SOD, _J2K_EOC = 0xFF4F, 0xFF90, 0xFF93, 0xFFD9
_J2K_COM, _J2K_TLM = 0xFF64, 0xFF55


def _served_jpx(raw: bytes) -> bytes | None:
    """What to serve of a /JPXDecode image: a JP2 file with only the boxes a decoder reads
    (:data:`_JP2_KEEP`), its codestream without comments; or a bare codestream without
    comments (:func:`_served_j2k`: COM segments name the encoder, sometimes the scanner or
    who scanned). None when nothing was dropped. What can be followed neither way raises
    :class:`Unclean`, as a JPEG that cannot be followed: the PDF is not served."""
    if raw.startswith(_JP2_SIGNATURE):
        served, dropped = _jp2_boxes(raw, b"")
        return served if dropped else None
    if raw[:2] == _J2K_SOC.to_bytes(2, "big"):
        return _served_j2k(raw)
    raise Unclean("application/pdf: a /JPXDecode image that is neither JP2 nor a codestream")


def _jp2_boxes(data: bytes, within: bytes) -> tuple[bytes, bool]:
    """The boxes of ``data`` (the file, or the content of the superbox ``within``) a decoder
    reads, the superboxes among them gone through the same way; and whether anything was
    dropped."""
    keep = _JP2_KEEP[within]
    out, pos, dropped = [], 0, False
    while pos < len(data):
        if pos + 8 > len(data):
            raise Unclean("application/pdf: a JPEG 2000 image's box is cut short")
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        head = 8
        if length == 1:
            if pos + 16 > len(data):
                raise Unclean("application/pdf: a JPEG 2000 image's box is cut short")
            length, head = struct.unpack(">Q", data[pos + 8 : pos + 16])[0], 16
        elif length == 0:  # the last box, to the end
            length = len(data) - pos
        if length < head or pos + length > len(data):
            raise Unclean("application/pdf: a JPEG 2000 image's box has a wrong length")
        if within == b"" and kind == b"ftbl":
            raise Unclean("application/pdf: a JPEG 2000 image in fragments (not followed)")
        content = data[pos + head : pos + length]
        if kind not in keep:
            dropped = True
        elif kind == b"jp2c" and (code := _served_j2k(content)) is not None:
            out.append(_jp2_box(kind, code))
            dropped = True
        elif kind in _JP2_KEEP and (inner := _jp2_boxes(content, kind))[1]:
            out.append(_jp2_box(kind, inner[0]))
            dropped = True
        else:
            out.append(data[pos : pos + length])
        pos += length
    return b"".join(out), dropped


def _jp2_box(kind: bytes, content: bytes) -> bytes:
    """A box of ``kind`` holding ``content``, its length in the header (XLBox when it needs
    more than 32 bits)."""
    if 8 + len(content) < 2**32:
        return struct.pack(">I4s", 8 + len(content), kind) + content
    return struct.pack(">I4sQ", 1, kind, 16 + len(content)) + content


def _served_j2k(code: bytes) -> bytes | None:
    """A JPEG 2000 codestream (15444-1 annex A) without its COM segments, in the main header and
    in every tile-part's header (each tile-part's length, Psot, made shorter by what its header
    lost; the main header's TLM, a table of those lengths a reader may jump by, then goes: it is
    optional), ending at its EOC; None when there was nothing to drop. One cut short is kept as
    far as it goes (as a JPEG), comments still dropped; one whose markers cannot be followed
    raises :class:`Unclean`."""

    def marker(pos: int) -> int:
        if pos + 2 > len(code):
            raise Unclean("application/pdf: a JPEG 2000 codestream is cut short")
        return int.from_bytes(code[pos : pos + 2], "big")

    def segment_end(pos: int, limit: int) -> int:
        if pos + 4 > limit:
            raise Unclean("application/pdf: a JPEG 2000 codestream is cut short")
        length = int.from_bytes(code[pos + 2 : pos + 4], "big")
        if length < 2 or pos + 2 + length > limit:
            raise Unclean("application/pdf: a JPEG 2000 marker segment has a wrong length")
        return pos + 2 + length

    if marker(0) != _J2K_SOC:
        raise Unclean("application/pdf: a JPEG 2000 codestream without its SOC marker")
    main: list[tuple[int, bytes]] = []
    pos, dropped, shortened = 2, False, False
    # The main header, to the first tile-part.
    while (mark := marker(pos)) != _J2K_SOT:
        if mark >> 8 != 0xFF or mark == _J2K_EOC:
            raise Unclean("application/pdf: a JPEG 2000 main header that cannot be followed")
        end = segment_end(pos, len(code))
        if mark == _J2K_COM:
            dropped = True
        else:
            main.append((mark, code[pos:end]))
        pos = end
    # The tile-parts: SOT (with Psot, the tile-part's length from SOT on; 0: to the end of the
    # codestream), header segments to SOD, then the data.
    parts: list[bytes] = []
    while pos < len(code) and marker(pos) == _J2K_SOT:
        sot_end = segment_end(pos, len(code))
        if sot_end - pos != 12:
            raise Unclean("application/pdf: a JPEG 2000 SOT segment has a wrong length")
        psot = int.from_bytes(code[pos + 6 : pos + 10], "big")
        if psot and psot < sot_end - pos + 2:
            raise Unclean("application/pdf: a JPEG 2000 tile-part has a wrong length")
        # Psot 0, or one beyond what is there (cut short): to the end of what is there.
        tile_end = pos + psot if psot and pos + psot <= len(code) else len(code)
        header, at, lost = [], sot_end, 0
        while (mark := marker(at)) != _J2K_SOD:
            if mark >> 8 != 0xFF:
                raise Unclean("application/pdf: a JPEG 2000 tile-part that cannot be followed")
            end = segment_end(at, tile_end)
            if mark == _J2K_COM:
                lost += end - at
            else:
                header.append(code[at:end])
            at = end
        sot = bytearray(code[pos:sot_end])
        if lost:
            dropped = shortened = True
            if psot:
                sot[6:10] = (psot - lost).to_bytes(4, "big")
        parts.append(bytes(sot) + b"".join(header) + code[at:tile_end])
        pos = tile_end
    rest = code[pos:]
    if rest[:2] == _J2K_EOC.to_bytes(2, "big"):
        parts.append(rest[:2])
        dropped = dropped or len(rest) > 2  # a writer's trailer after the EOC
    elif rest:
        raise Unclean("application/pdf: a JPEG 2000 codestream that cannot be followed")
    if shortened and any(mark == _J2K_TLM for mark, _ in main):
        main = [(mark, seg) for mark, seg in main if mark != _J2K_TLM]
    if not dropped:
        return None
    return code[:2] + b"".join(seg for _, seg in main) + b"".join(parts)


def _served_jpeg(raw: bytes) -> bytes | None:
    """What to serve of the JPEG held by a /DCTDecode image, by the same plan as a JPEG file
    (:func:`_jpeg_parts`): the segments a decoder needs, bit for bit, the rest dropped (EXIF
    becomes a bare orientation tag when the photo was taken sideways, as in a JPEG file; a PDF
    viewer ignores it, the picture's placement on the page says how it shows). None when that
    is ``raw`` as it is: nothing to drop. Like a JPEG file: one whose segments cannot be
    followed raises :class:`Unclean` (the PDF is not served), one cut short is kept as far as
    it goes, and what follows its EOI goes."""
    # A JPEG file's first bytes. Some writers put a few bytes before them, which PDF readers
    # skip (poppler, pdf.js look for the marker): so here, and they go. A stream without the
    # marker near its start is no JPEG and cannot be followed.
    start = raw.find(b"\xff\xd8", 0, _DCT_SLACK + 2)
    if start < 0:
        raise Unclean("application/pdf: a /DCTDecode image that does not start as a JPEG")
    raw = raw[start:]
    src = _Source(io.BytesIO(raw))
    try:
        parts, _ = _jpeg_parts(src)
    except (Unclean, struct.error, IndexError) as exc:
        raise Unclean(f"application/pdf: a JPEG image: {exc}") from None
    data = b"".join(p if isinstance(p, bytes) else raw[p[0] : p[0] + p[1]] for p in parts)
    if data == raw and start == 0:
        return None
    return data


def _save_pdf(pdf: pikepdf.Pdf, out: BinaryIO) -> None:
    try:
        # Unreferenced objects (the metadata streams now) are not written.
        pdf.save(out, fix_metadata_version=False, deterministic_id=True)
    except pikepdf.PdfError as exc:
        raise Unclean(f"application/pdf: {exc}") from None


class _Nowhere(io.RawIOBase):
    """A sink: :func:`check` writes the served bytes here."""

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        return len(data)


class _Source:
    """A seekable file read in small ranges."""

    def __init__(self, fh: BinaryIO) -> None:
        self._fh = fh
        self.size = fh.seek(0, io.SEEK_END)

    def at(self, pos: int, length: int) -> bytes:
        self._fh.seek(pos)
        return self._fh.read(length)

    def byte(self, pos: int) -> int:
        got = self.at(pos, 1)
        if not got:
            raise IndexError(f"byte {pos} past the end")
        return got[0]

    def scan_end(self, pos: int) -> int:
        """Where the entropy-coded data from ``pos`` ends (the next marker), or the file's end."""
        while pos < self.size:
            # One byte more than the step: a marker across the edge is found in this chunk.
            chunk = self.at(pos, _COPY_CHUNK + 1)
            found = _SCAN_END.search(chunk)
            if found is not None:
                return pos + found.start()
            pos += _COPY_CHUNK
        return self.size


def _jpeg_parts(src: _Source) -> tuple[list[Part], bool]:
    """The parts to serve, and whether the picture ends with its EOI."""
    parts: list[Part] = [(0, 2)]  # SOI
    pos = 2
    end = src.size
    oriented = False
    while pos < end:
        if src.byte(pos) != 0xFF:
            raise Unclean(f"jpeg: no marker at byte {pos}")
        while pos < end and src.byte(pos) == 0xFF:  # fill bytes (T.81 B.1.1.2)
            pos += 1
        if pos >= end:
            break
        marker = src.byte(pos)
        start = pos - 1
        pos += 1
        if marker == _EOI:
            parts.append(b"\xff\xd9")
            return parts, True  # anything after the first EOI is not this picture
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # RSTn / TEM: no length
            parts.append((start, 2))
            continue
        if pos + 2 > end:
            raise Unclean("jpeg: truncated segment header")
        (length,) = struct.unpack(">H", src.at(pos, 2))
        if length < 2 or pos + length > end:
            raise Unclean(f"jpeg: bad length of segment {marker:#x}")
        body = src.at(pos + 2, min(length, 64) - 2)
        seg_end = pos + length
        if marker == _SOS:
            scan_end = src.scan_end(seg_end)
            parts.append((start, scan_end - start))
            pos = scan_end
            continue
        if marker in _KEEP_JPEG or (
            (marker == _APP2 and body.startswith(b"ICC_PROFILE\x00"))
            or (marker == _APP14 and body.startswith(b"Adobe"))
        ):
            parts.append((start, seg_end - start))
        elif marker == _APP0 and body.startswith(b"JFIF\x00") and len(body) >= _JFIF_HEAD:
            # The densities are kept; the thumbnail (the picture again, small) is not: 0 x 0.
            payload = body[:_JFIF_HEAD] + b"\x00\x00"
            parts.append(b"\xff\xe0" + struct.pack(">H", len(payload) + 2) + payload)
        elif marker == _APP1 and body.startswith(b"Exif\x00\x00") and not oriented:
            value = _tiff_orientation(src.at(pos + 8, seg_end - pos - 8))
            if value is not None and value != 1:
                parts.append(_jpeg_orientation_segment(value))
                oriented = True
        pos = seg_end
    return parts, False  # no EOI: a truncated picture, served as far as it goes


def _png_parts(src: _Source) -> tuple[list[Part], bool]:
    """The parts to serve (the signature, then whole chunks), and whether IEND was reached."""
    parts: list[Part] = [(0, 8)]
    pos = 8
    end = src.size
    while pos + 12 <= end:
        header = src.at(pos, 8)
        (length,) = struct.unpack(">I", header[:4])
        kind = header[4:8]
        chunk_end = pos + 12 + length
        if chunk_end > end or not kind.isalpha():
            raise Unclean(f"png: broken chunk at byte {pos}")
        if kind in _KEEP_PNG:
            parts.append((pos, chunk_end - pos))
            if kind == b"IEND":
                return parts, True
        elif kind == b"eXIf":
            value = _tiff_orientation(src.at(pos + 8, length))
            if value is not None and value != 1:
                parts.append(_png_chunk(b"eXIf", _minimal_tiff(value)))
        pos = chunk_end
    if pos != end:
        raise Unclean("png: truncated chunk")
    return parts, False  # cut at a chunk's end: no IEND


def _check_png_crcs(src: _Source, parts: tuple[Part, ...]) -> None:
    """Raise :class:`Unclean` when a served chunk's CRC (over its type and data) does not match.
    ``parts`` is a PNG's plan: the signature, then each kept chunk as one range of the file."""
    for part in parts[1:]:
        if isinstance(part, bytes):
            continue  # generated here (an orientation eXIf): its CRC is computed
        offset, length = part
        pos, stop = offset + 4, offset + length - 4  # type and data; the CRC follows
        crc = 0
        while pos < stop:
            piece = src.at(pos, min(stop - pos, _COPY_CHUNK))
            if not piece:
                raise Unclean("png: the file is shorter than when it was planned")
            crc = zlib.crc32(piece, crc)
            pos += len(piece)
        if src.at(stop, 4) != struct.pack(">I", crc & 0xFFFFFFFF):
            raise Unclean(f"png: CRC of the chunk at byte {offset} does not match")


def _tiff_orientation(tiff: bytes) -> int | None:
    """IFD0's Orientation of an EXIF TIFF structure, or None (never raises)."""
    try:
        order = {b"II": "<", b"MM": ">"}[tiff[:2]]
        (ifd0,) = struct.unpack(order + "I", tiff[4:8])
        (count,) = struct.unpack(order + "H", tiff[ifd0 : ifd0 + 2])
        for i in range(min(count, 512)):
            entry = tiff[ifd0 + 2 + 12 * i : ifd0 + 14 + 12 * i]
            tag, kind, n = struct.unpack(order + "HHI", entry[:8])
            if tag == _ORIENTATION and kind == 3 and n == 1:  # SHORT
                (value,) = struct.unpack(order + "H", entry[8:10])
                return int(value) if 1 <= value <= 8 else None
    except (KeyError, struct.error):
        return None
    return None


def _minimal_tiff(orientation: int) -> bytes:
    """A TIFF structure whose IFD0 holds only the Orientation tag."""
    entry = struct.pack(">HHIHH", _ORIENTATION, 3, 1, orientation, 0)
    return b"MM\x00*" + struct.pack(">I", 8) + struct.pack(">H", 1) + entry + b"\x00" * 4


def _jpeg_orientation_segment(orientation: int) -> bytes:
    payload = b"Exif\x00\x00" + _minimal_tiff(orientation)
    return b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)
