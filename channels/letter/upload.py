"""Reading the front desk's upload (``multipart/form-data``), scans streamed to the file store.

Each file part is recognised by its first bytes, never by its name or the Content-Type the
browser sent: PDF ``%PDF-`` (ISO 32000-1 section 7.5.2), JPEG ``FF D8 FF`` (ITU-T T.81 B.1.1.2),
PNG's 8-byte signature (ISO/IEC 15948 section 5.2), TIFF ``II*\\0`` or ``MM\\0*`` (TIFF 6.0
section 2, little- and big-endian). It is then streamed in chunks to
:meth:`~gateway.filestore.FileStore.put_stream` and stored exactly as received; no scan is ever
whole in memory here.

The form's CSRF token must come before the first file (the page puts it first): a request
without a valid token is refused before anything is stored.

Once stored, each scan is checked where it lies (:func:`check_scan`, blocking: run it in a
thread), through the file store's seekable reader, never read whole (a PDF's largest object at
most is held at once): its pages are opened as the reader will open them
(:func:`channels.letter.ocr.check_document`), and a JPEG, PNG or PDF is run through what
``/files/`` does to serve it (:func:`gateway.media.check`, ``whole=True``: a picture cut short
is refused too). A scan that fails is named to the clerk; it never becomes a letter.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from aiohttp import BodyPartReader, MultipartReader
from aiohttp.http_exceptions import HttpProcessingError

from channels.letter.ocr import MAX_PAGES, LetterFormatError, TooManyPages, check_document
from channels.letter.parse import Scan
from gateway import media
from gateway.filestore import FileStore, FileTooLarge

CHUNK = 64 * 1024
MAX_FIELD = 4096
MAX_FIELDS = 16
MAX_FILENAME = 255
FILE_FIELD = "berkas"

MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "application/pdf"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
)
SNIFF_BYTES = 8
ACCEPT = "application/pdf,image/jpeg,image/png,image/tiff,.pdf,.jpg,.jpeg,.png,.tif,.tiff"

Message = tuple[str, str]  # (Indonesian, English)


def sniff(head: bytes) -> str | None:
    """The media type the first bytes show, or None for anything but PDF, JPEG, PNG, TIFF."""
    for magic, media_type in MAGIC:
        if head.startswith(magic):
            return media_type
    return None


log = logging.getLogger(__name__)


class UploadRejected(Exception):
    """The upload cannot be taken; ``message`` (Indonesian, English) names the file at fault."""

    def __init__(self, message: Message, status: int = 400) -> None:
        super().__init__(message[1])
        self.message = message
        self.status = status


@dataclass(slots=True)
class LetterUpload:
    """What the upload form sent: its text fields and the stored scans, in order."""

    fields: dict[str, str] = field(default_factory=dict)
    scans: list[Scan] = field(default_factory=list)


async def read_upload(
    reader: MultipartReader,
    files: FileStore,
    *,
    csrf_ok: Callable[[str], bool],
    max_files: int,
    max_file_size: int,
) -> LetterUpload:
    """Read every part; :class:`UploadRejected` naming the file or field at fault."""
    try:
        return await _read(reader, files, csrf_ok, max_files, max_file_size)
    except (HttpProcessingError, ValueError, AssertionError) as exc:
        raise UploadRejected(
            ("Format unggahan rusak.", f"Malformed upload ({type(exc).__name__}).")
        ) from None


class DamagedScan(UploadRejected):
    """A stored scan that cannot be read to its end or served; ``reason`` is for the log."""

    def __init__(self, message: Message, reason: str) -> None:
        super().__init__(message, 422)
        self.reason = reason


def check_scan(files: FileStore, scan: Scan) -> None:
    """Raise :class:`DamagedScan` naming the file when the stored scan's pages cannot be opened
    or ``/files/`` could not serve it whole. Blocking: call it in a thread."""
    label = scan.filename or scan.sha256[:12]
    with files.opened(scan.sha256) as fh:
        try:
            check_document(fh, scan.media_type)
        except TooManyPages as exc:
            raise DamagedScan(
                (
                    f"Berkas {label} memuat lebih dari {MAX_PAGES} halaman. Pisahkan menjadi "
                    f"beberapa berkas, masing-masing paling banyak {MAX_PAGES} halaman, lalu "
                    "unggah lagi.",
                    f"The file {label} has more than {MAX_PAGES} pages. Split it into files of "
                    f"at most {MAX_PAGES} pages each, then upload them again.",
                ),
                str(exc),
            ) from None
        except LetterFormatError as exc:
            raise DamagedScan(
                (
                    f"Berkas {label} rusak atau tidak dapat dibaca ({exc}). Pindai ulang lalu "
                    "unggah lagi.",
                    f"The file {label} is damaged or cannot be read ({exc}). Scan it again and "
                    "upload it again.",
                ),
                str(exc),
            ) from None
        if scan.media_type == "image/tiff":
            return  # served as stored: its frames were opened above
        try:
            media.check(fh, whole=True)
        except media.Unclean as exc:
            raise DamagedScan(
                (
                    f"Berkas {label} rusak atau tidak utuh. Pindai ulang atau unggah lagi "
                    "berkas aslinya.",
                    f"The file {label} is damaged or incomplete. Scan it again or upload the "
                    "original file again.",
                ),
                str(exc),
            ) from None


class CsrfRefused(UploadRejected):
    """The form's CSRF token is missing or wrong."""

    def __init__(self) -> None:
        super().__init__(
            (
                "Formulir kedaluwarsa atau tidak sah. Muat ulang halaman lalu unggah lagi.",
                "The form expired or is not valid. Reload the page and upload again.",
            ),
            403,
        )


async def _read(
    reader: MultipartReader,
    files: FileStore,
    csrf_ok: Callable[[str], bool],
    max_files: int,
    max_file_size: int,
) -> LetterUpload:
    upload = LetterUpload()
    checked = False
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):
            raise UploadRejected(("Multipart bersarang tidak didukung.", "Nested multipart."))
        name = part.name or ""
        if part.filename is not None:
            if not checked:
                if not csrf_ok(upload.fields.get("csrf", "")):
                    raise CsrfRefused()
                checked = True
            head = await part.read_chunk(CHUNK)
            if not head and not part.filename:
                continue  # a file input left empty
            if name != FILE_FIELD:
                continue
            if len(upload.scans) >= max_files:
                raise UploadRejected(
                    (
                        f"Paling banyak {max_files} berkas sekali unggah.",
                        f"At most {max_files} files in one upload.",
                    ),
                    413,
                )
            upload.scans.append(await _store(part, head, files, max_file_size))
            continue
        if len(upload.fields) >= MAX_FIELDS:
            raise UploadRejected(("Terlalu banyak isian.", "Too many fields."), 413)
        value = b""
        while len(value) <= MAX_FIELD and (chunk := await part.read_chunk(CHUNK)):
            value += chunk
        if len(value) > MAX_FIELD:
            raise UploadRejected((f"Isian {name} terlalu panjang.", f"Field {name} is too long."))
        upload.fields.setdefault(name, value.decode("utf-8", errors="replace"))
    if not checked and not csrf_ok(upload.fields.get("csrf", "")):
        raise CsrfRefused()
    return upload


async def _store(part: BodyPartReader, head: bytes, files: FileStore, max_size: int) -> Scan:
    filename = (part.filename or "")[-MAX_FILENAME:] or None
    label = filename or FILE_FIELD
    while len(head) < SNIFF_BYTES and (chunk := await part.read_chunk(CHUNK)):
        head += chunk
    media_type = sniff(head)
    if media_type is None:
        raise UploadRejected(
            (
                f"Berkas {label} bukan PDF, JPEG, PNG atau TIFF. Pindai ulang ke salah satu "
                "format itu.",
                f"The file {label} is not a PDF, JPEG, PNG or TIFF. Scan it again to one of "
                "those formats.",
            ),
            415,
        )

    async def chunks() -> AsyncIterator[bytes]:
        yield head
        while chunk := await part.read_chunk(CHUNK):
            yield chunk

    try:
        sha, size = await files.put_stream(chunks(), max_size)
    except (ConnectionError, TimeoutError):
        raise  # the browser went away mid-upload: nothing to answer
    except OSError as exc:  # the file store's disk full or read-only: the server's, not a 500
        log.error("file store cannot take a scan: %s", exc, extra={"errno": exc.errno})
        raise UploadRejected(
            (
                "Pindaian belum dapat disimpan saat ini. Coba unggah lagi beberapa saat lagi; "
                "bila berulang, hubungi petugas teknis.",
                "The scans cannot be stored right now. Upload again in a moment; if it keeps "
                "happening, call the technical staff.",
            ),
            503,
        ) from exc
    except FileTooLarge:
        raise UploadRejected(
            (
                f"Berkas {label} lebih dari {max_size // (1024 * 1024)} MB.",
                f"The file {label} is larger than {max_size // (1024 * 1024)} MB.",
            ),
            413,
        ) from None
    return Scan(sha256=sha, media_type=media_type, size=size, filename=filename)
