"""Media type from magic bytes, and the GPS position in a JPEG's EXIF data. Pure.

An attachment's type is what its first bytes say, never the name or the Content-Type the browser
sent: JPEG starts ``FF D8 FF`` (JFIF/EXIF, ITU-T T.81 B.1.1.2), PNG with its 8-byte signature
(RFC 2083 section 3.1), PDF with ``%PDF-`` (ISO 32000-1 section 7.5.2).

The GPS position of a photo is evidence of where the matter is, so it is kept in the
complaint's metadata. EXIF (CIPA DC-008) lives in a JPEG APP1 segment that starts with
``Exif\\0\\0`` and holds a TIFF structure; IFD0's tag 0x8825 points to the GPS IFD, whose tags
1-4 are latitude ref, latitude (3 RATIONALs: degrees, minutes, seconds), longitude ref and
longitude.

The photo is stored with its EXIF; :mod:`gateway.media` removes EXIF, XMP and the rest when a
stored photo is served again.
"""

from __future__ import annotations

import struct

from gateway.media import MAGIC, SNIFF_BYTES, sniff

__all__ = ["MAGIC", "SNIFF_BYTES", "jpeg_gps", "make_exif_jpeg", "sniff"]


def jpeg_gps(data: bytes) -> tuple[float, float] | None:
    """(latitude, longitude) from a JPEG's EXIF GPS tags, or None; never raises on bad input."""
    try:
        return _jpeg_gps(data)
    except (struct.error, IndexError, ValueError, ZeroDivisionError):
        return None


def _jpeg_gps(data: bytes) -> tuple[float, float] | None:
    if not data.startswith(b"\xff\xd8"):
        return None
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker in (0xD9, 0xDA):  # end of image, start of scan: no metadata after this
            return None
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        segment = data[pos + 4 : pos + 2 + length]
        if marker == 0xE1 and segment.startswith(b"Exif\x00\x00"):
            return _tiff_gps(segment[6:])
        pos += 2 + length
    return None


def _tiff_gps(tiff: bytes) -> tuple[float, float] | None:
    order = {b"II": "<", b"MM": ">"}.get(tiff[:2])
    if order is None:
        return None
    (ifd0,) = struct.unpack(order + "I", tiff[4:8])
    gps_ifd = _entries(tiff, order, ifd0).get(0x8825)
    if gps_ifd is None:
        return None
    gps = _entries(tiff, order, struct.unpack(order + "I", gps_ifd[2])[0])
    if not all(tag in gps for tag in (1, 2, 3, 4)):
        return None
    lat = _degrees(tiff, order, gps[2]) * (-1 if gps[1][2][:1] == b"S" else 1)
    lon = _degrees(tiff, order, gps[4]) * (-1 if gps[3][2][:1] == b"W" else 1)
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    return round(lat, 7), round(lon, 7)


# An IFD entry: (type, count, the 4 value/offset bytes).
_Entry = tuple[int, int, bytes]


def _entries(tiff: bytes, order: str, offset: int) -> dict[int, _Entry]:
    (count,) = struct.unpack(order + "H", tiff[offset : offset + 2])
    out: dict[int, _Entry] = {}
    for i in range(min(count, 256)):
        start = offset + 2 + 12 * i
        tag, kind, n = struct.unpack(order + "HHI", tiff[start : start + 8])
        out[tag] = (kind, n, tiff[start + 8 : start + 12])
    return out


def _degrees(tiff: bytes, order: str, entry: _Entry) -> float:
    kind, count, value = entry
    if kind != 5 or count != 3:  # 5 = RATIONAL
        raise ValueError("GPS coordinate is not 3 RATIONALs")
    (offset,) = struct.unpack(order + "I", value)
    nums = struct.unpack(order + "6I", tiff[offset : offset + 24])
    d, m, s = (nums[0] / nums[1], nums[2] / nums[3], nums[4] / nums[5])
    return float(d + m / 60 + s / 3600)


def make_exif_jpeg(latitude: float, longitude: float, pixels: bytes = b"") -> bytes:
    """A minimal JPEG header carrying EXIF GPS (for tests, examples and the demo)."""
    order = "<"

    def rational(value: float) -> bytes:
        value = abs(value)
        d = int(value)
        m = int((value - d) * 60)
        s = round(((value - d) * 60 - m) * 60 * 10000)
        return struct.pack(order + "6I", d, 1, m, 1, s, 10000)

    # TIFF header (8) + IFD0 with 1 entry (2 + 12 + 4) = 26; GPS IFD at 26 with 4 entries
    # (2 + 48 + 4) = 54 -> rationals at 80 and 104.
    ifd0 = struct.pack(order + "H", 1) + struct.pack(order + "HHII", 0x8825, 4, 1, 26)
    ifd0 += struct.pack(order + "I", 0)
    gps = struct.pack(order + "H", 4)
    gps += struct.pack(order + "HHI", 1, 2, 2) + (b"S" if latitude < 0 else b"N") + b"\0\0\0"
    gps += struct.pack(order + "HHII", 2, 5, 3, 80)
    gps += struct.pack(order + "HHI", 3, 2, 2) + (b"W" if longitude < 0 else b"E") + b"\0\0\0"
    gps += struct.pack(order + "HHII", 4, 5, 3, 104)
    gps += struct.pack(order + "I", 0)
    tiff = b"II*\x00" + struct.pack(order + "I", 8) + ifd0 + gps
    tiff += rational(latitude) + rational(longitude)
    app1 = b"Exif\x00\x00" + tiff
    segment = b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1
    return b"\xff\xd8" + segment + pixels + b"\xff\xd9"
