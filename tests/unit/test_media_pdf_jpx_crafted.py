"""gateway.media: JPEG 2000 images in a PDF, crafted where metadata may hide or lengths lie.

Metadata inside the header superboxes, comments in a tile-part cut short, a TLM that would
disagree once comments go, a comment longer than its tile-part, a fragmented JPX codestream,
labels in a compositing layer header, a trailer after the EOC. The rule of the module: what
cannot be followed raises media.Unclean (not served, never a 500, never served with its
metadata); only metadata changes, the picture decodes to the same pixels.
"""

from __future__ import annotations

import io
import struct

import pikepdf
import pytest
from PIL import Image, ImageFile

from gateway import media
from tests.unit.test_media import pdf_with_images, picture, served_images

JPX = pikepdf.Name.JPXDecode
XMP = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF><rdf:Description exif:GPSLatitude='
       b'"6,45.672S" dc:creator="Siti Aminah"/></rdf:RDF></x:xmpmeta>')
EXIF_UUID = bytes.fromhex("4a706754696666457869662d3e4a5032")  # "JpgTiffExif->JP2"
TEXT = b"KANTOR-SCANNER"
COM = b"\xff\x64" + struct.pack(">HH", 4 + len(TEXT), 1) + TEXT


def box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def j2k(tile: tuple[int, int] | None = None) -> bytes:
    out = io.BytesIO()
    picture().save(out, "JPEG2000", no_jp2=True, tile_size=tile)
    return out.getvalue()


def jp2() -> bytes:
    out = io.BytesIO()
    picture().save(out, "JPEG2000")
    return out.getvalue()


def pixels(data: bytes) -> list[object]:
    with Image.open(io.BytesIO(data)) as img:
        return [img.size, img.convert("RGB").tobytes()]


def tile_parts(code: bytes) -> list[tuple[int, int]]:
    """(offset of SOT, Psot) of each tile-part, following Psot from the first SOT."""
    pos, out = code.index(b"\xff\x90"), []
    while code[pos : pos + 2] == b"\xff\x90":
        psot = int.from_bytes(code[pos + 6 : pos + 10], "big")
        out.append((pos, psot))
        pos += psot
    return out


def with_comment_in_every_tile_part(code: bytes) -> bytes:
    parts = tile_parts(code)
    out = bytearray(code[: parts[0][0]])
    for pos, psot in parts:
        sot = bytearray(code[pos : pos + 12])
        sot[6:10] = (psot + len(COM)).to_bytes(4, "big")
        out += sot + COM + code[pos + 12 : pos + psot]
    out += code[parts[-1][0] + parts[-1][1] :]
    return bytes(out)


@pytest.mark.parametrize(
    "inner",
    [box(b"xml ", XMP), box(b"uuid", EXIF_UUID + b"Exif\x00\x00 GPSLatitude Siti Aminah")],
    ids=["xml-in-jp2h", "exif-uuid-in-jp2h"],
)
def test_metadata_inside_the_jp2_header_superbox_goes(inner: bytes) -> None:
    """An XML box (XMP: GPS, author) or an EXIF UUID box inside the JP2 header superbox,
    which decoders skip, goes like one at the top level: superboxes are gone through too."""
    original = jp2()
    at = original.index(b"jp2h") - 4
    length = struct.unpack(">I", original[at : at + 4])[0]
    crafted = (original[:at] + struct.pack(">I", length + len(inner))
               + original[at + 4 : at + length] + inner + original[at + length :])
    assert pixels(crafted) == pixels(original)  # a decoder reads it as the same picture
    [(raw, _, _)] = served_images(pdf_with_images((crafted, JPX, None)))
    assert b"Siti" not in raw and b"GPSLatitude" not in raw
    assert pixels(raw) == pixels(original)


def test_a_tile_part_cut_short_loses_its_comment() -> None:
    """A codestream cut short inside its last tile-part (a writer interrupted) is kept as far
    as it goes, as a JPEG cut short is, and still loses that tile-part's comment."""
    original = with_comment_in_every_tile_part(j2k((16, 16)))
    cut = original[: tile_parts(original)[-1][0] + 40]  # into the last tile-part's data
    ImageFile.LOAD_TRUNCATED_IMAGES = True
    try:
        assert pixels(cut)[0] == (48, 32)  # a decoder still shows it
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        [(raw, _, _)] = served_images(pdf_with_images((cut, JPX, None)))
    except media.Unclean:
        return  # refused: acceptable
    assert TEXT not in raw, "the last tile-part's comment is served"


def test_a_tlm_that_would_disagree_with_the_shortened_tile_parts_goes() -> None:
    """A TLM marker lists the tile-parts' lengths (15444-1 A.7.1) for a reader that jumps to
    a tile. When comments leave tile-parts shorter, their Psot is rewritten and the TLM, an
    optional table, goes: a reader never lands on lengths that are no longer true."""
    original = with_comment_in_every_tile_part(j2k((16, 16)))
    parts = tile_parts(original)
    # Ztlm 0, Stlm: ST=1 (8-bit Ttlm), SP=1 (32-bit Ptlm).
    body = bytes([0, 0x50]) + b"".join(
        bytes([i]) + psot.to_bytes(4, "big") for i, (_, psot) in enumerate(parts))
    tlm = b"\xff\x55" + struct.pack(">H", 2 + len(body)) + body
    first = parts[0][0]
    crafted = original[:first] + tlm + original[first:]
    assert pixels(crafted) == pixels(j2k((16, 16)))
    [(raw, _, _)] = served_images(pdf_with_images((crafted, JPX, None)))
    assert TEXT not in raw
    assert b"\xff\x55" not in raw[: raw.index(b"\xff\x90")], "the TLM is gone"
    assert pixels(raw) == pixels(j2k((16, 16)))


def test_a_comment_longer_than_its_tile_part_is_unclean() -> None:
    """A tile-part whose Psot ends inside its own COM segment cannot be followed: Unclean
    (the file refused), not an OverflowError escaping as a server error."""
    code = j2k()
    sot = code.index(b"\xff\x90")
    head = bytearray(code[sot : sot + 12])
    head[6:10] = (14).to_bytes(4, "big")
    crafted = code[:sot] + bytes(head) + COM + code[sot + 12 :]
    with pytest.raises(media.Unclean):
        media.served(pdf_with_images((crafted, JPX, None)))


def test_a_codestream_in_fragments_is_not_served() -> None:
    """A JPX file may hold its codestream in fragments (a fragment table pointing into other
    boxes): not followed, so such an image is not served, rather than served with the
    fragments' boxes dropped and the picture lost."""
    code = j2k()
    head = jp2()
    head = head[: head.index(b"jp2c") - 4]  # signature, ftyp, jp2h
    before = head + box(b"xml ", XMP)
    # ftbl(flst(NF=1, OFF 8 bytes, LEN 4 bytes, DR 2 bytes)): its size is fixed, 8+8+2+14.
    ftbl_len = 8 + 8 + 2 + 14
    offset = len(before) + ftbl_len + 8  # the codestream, just inside mdat's header
    flst = box(b"flst", struct.pack(">HQIH", 1, offset, len(code), 0))
    crafted = before + box(b"ftbl", flst) + box(b"mdat", code)
    assert len(box(b"ftbl", flst)) == ftbl_len
    assert crafted[offset : offset + len(code)] == code
    try:
        [(raw, _, _)] = served_images(pdf_with_images((crafted, JPX, None)))
    except media.Unclean:
        return  # refused: acceptable
    at = raw.index(b"flst") + 4
    _, off, length, _ = struct.unpack(">HQIH", raw[at : at + 16])
    served = raw[off : off + length]
    assert served == code or media._served_j2k(code) == served, "fragments point elsewhere"


def test_a_label_inside_a_compositing_layer_header_goes() -> None:
    """A label box (free text) inside a JPX compositing layer header goes, as labels at the
    top level do."""
    original = jp2()
    at = original.index(b"jp2c") - 4
    layer = box(b"jplh", box(b"lbl ", b"scan by Siti Aminah, KANTOR-SCANNER"))
    crafted = original[:at] + layer + original[at:]
    assert pixels(crafted) == pixels(original)
    [(raw, _, _)] = served_images(pdf_with_images((crafted, JPX, None)))
    assert b"Siti" not in raw
    assert pixels(raw) == pixels(original)


def test_bytes_after_the_codestreams_end_go() -> None:
    """Bytes an app put after the codestream's EOC (a trailer with EXIF or GPS) go, as what
    follows a JPEG's EOI goes."""
    code = media._served_j2k(j2k())  # without OpenJPEG's own comment
    assert code is not None and b"\xff\x64" not in code and code.endswith(b"\xff\xd9")
    crafted = code + b"Exif\x00\x00MM GPSLatitude -6.7612 Samsung R58W90XYZ Siti Aminah"
    assert pixels(crafted) == pixels(code)
    try:
        [(raw, _, _)] = served_images(pdf_with_images((crafted, JPX, None)))
    except media.Unclean:
        return  # refused: acceptable
    assert b"GPSLatitude" not in raw and b"Siti" not in raw
