"""Reading the front desk's upload (``multipart/form-data``), scans streamed to the file store.

Each file part is recognised by its first bytes, never by its name or the Content-Type the
browser sent: PDF ``%PDF-`` (ISO 32000-1 section 7.5.2), JPEG ``FF D8 FF`` (ITU-T T.81 B.1.1.2),
PNG's 8-byte signature (ISO/IEC 15948 section 5.2), TIFF ``II*\\0`` or ``MM\\0*`` (TIFF 6.0
section 2, little- and big-endian). It is then streamed in chunks to
:meth:`~gateway.filestore.FileStore.put_stream` and stored exactly as received; no scan is ever
whole in memory here.

The form's CSRF token must come before the first file (the page puts it first): a request
without a valid token is refused before anything is stored. The files are counted as they
arrive: the first one over ``max_files`` refuses the upload at once, before any of its bytes is
stored, and nothing after it is stored either.

A file that cannot be a letter (empty, or not one of the four kinds: a phone's HEIC photo, a
Word file) does not refuse the upload: its bytes are read past and never stored, and it is
named to the clerk (:class:`RefusedFile`) beside the files that went in, as a damaged scan is.
A file name is only a label: lone surrogates (RFC 2231's ``filename*=utf-7''...``) become
U+FFFD (:func:`channels.fields.header_text`, as in the web channel). Log the refusals by
:attr:`RefusedFile.log_extra` and :attr:`UploadRejected.code`, never by their messages, which
name the file (often after the citizen).

Once stored, each scan is checked where it lies (:func:`check_scan`, blocking: run it in a
thread), through the file store's seekable reader, never read whole (a PDF's largest object at
most is held at once): its pages are opened as the reader will open them
(:func:`channels.letter.ocr.check_document`), and a JPEG, PNG or PDF is run through what
``/files/`` does to serve it (:func:`gateway.media.check`, ``whole=True``: a picture cut short
is refused too). A scan that fails is named to the clerk; it never becomes a letter.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import BodyPartReader, MultipartReader
from aiohttp.http_exceptions import HttpProcessingError

from channels.fields import Message, header_text
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
# A Content-Type as browsers send it, for the log ("image/heic"); anything else is not logged.
_MEDIA_TYPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+-]{0,62}/[A-Za-z0-9][A-Za-z0-9.+-]{0,62}")


def sniff(head: bytes) -> str | None:
    """The media type the first bytes show, or None for anything but PDF, JPEG, PNG, TIFF."""
    for magic, media_type in MAGIC:
        if head.startswith(magic):
            return media_type
    return None


log = logging.getLogger(__name__)


class UploadRejected(Exception):
    """The upload cannot be taken; ``message`` (Indonesian, English) names the file at fault,
    for the page only. ``code`` says why and ``index`` which file (1-based), for the log."""

    def __init__(
        self, message: Message, status: int = 400, *, code: str = "malformed",
        index: int | None = None,
    ) -> None:
        super().__init__(code)
        self.message = message
        self.status = status
        self.code = code
        self.index = index


@dataclass(frozen=True, slots=True)
class RefusedFile:
    """A file of the upload that is not made into a letter. ``message`` names it, for the
    page; ``code`` (``wrong_kind``, ``empty``, ``damaged``, ``unreadable``,
    ``too_many_pages``), ``index`` (its place among the upload's files, from 1), ``size``,
    the kind its bytes showed (``media_type``) and the Content-Type it was sent as are for the
    log (:attr:`log_extra`), never its name."""

    index: int
    message: Message
    status: int
    code: str
    size: int
    media_type: str | None = None
    sent_as: str | None = None

    @property
    def log_extra(self) -> dict[str, Any]:
        """What the log may say of the file: nothing the citizen or the clerk typed."""
        return {"code": self.code, "file": self.index, "size": self.size,
                "media_type": self.media_type, "sent_as": self.sent_as}


@dataclass(slots=True)
class LetterUpload:
    """What the upload form sent: its text fields, the stored scans in order (``indexes``:
    each one's place among the upload's files, from 1) and the files refused as they came."""

    fields: dict[str, str] = field(default_factory=dict)
    scans: list[Scan] = field(default_factory=list)
    indexes: list[int] = field(default_factory=list)
    refused: list[RefusedFile] = field(default_factory=list)


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
    """A stored scan that cannot be read to its end or served; ``reason`` (the reader's, which
    never names the file) and ``code`` are for the log."""

    def __init__(self, message: Message, reason: str, code: str = "damaged") -> None:
        super().__init__(message, 422, code=code)
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
                "too_many_pages",
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
                "unreadable",
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
            code="csrf",
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
    count = 0  # the upload's files so far, stored or refused
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):
            raise UploadRejected(
                ("Multipart bersarang tidak didukung.", "Nested multipart."), code="nested"
            )
        name = header_text(part.name or "")
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
            count += 1
            if count > max_files:
                raise _too_many(count, max_files, _label(part))
            stored = await _store(part, head, files, max_file_size, count)
            if isinstance(stored, RefusedFile):
                upload.refused.append(stored)
            else:
                upload.scans.append(stored)
                upload.indexes.append(count)
            continue
        if len(upload.fields) >= MAX_FIELDS:
            raise UploadRejected(
                ("Terlalu banyak isian.", "Too many fields."), 413, code="too_many_fields"
            )
        value = b""
        while len(value) <= MAX_FIELD and (chunk := await part.read_chunk(CHUNK)):
            value += chunk
        if len(value) > MAX_FIELD:
            raise UploadRejected(
                (f"Isian {name} terlalu panjang.", f"Field {name} is too long."),
                code="field_too_long",
            )
        upload.fields.setdefault(name, value.decode("utf-8", errors="replace"))
    if not checked and not csrf_ok(upload.fields.get("csrf", "")):
        raise CsrfRefused()
    return upload


def _label(part: BodyPartReader) -> str:
    """The file's name as the page may show it (a lone surrogate cannot be encoded)."""
    return header_text(part.filename or "")[-MAX_FILENAME:]


def _too_many(index: int, max_files: int, label: str) -> UploadRejected:
    """The upload refused at its first file over ``max_files``: nothing after it is stored."""
    named = f" ({label})" if label else ""
    return UploadRejected(
        (
            f"Paling banyak {max_files} berkas sekali unggah. Berkas ke-{index}{named} sudah "
            f"lebih dari itu, jadi unggahan ini tidak diterima dan belum ada surat yang dibuat. "
            f"Unggah paling banyak {max_files} berkas sekali, lalu sisanya.",
            f"At most {max_files} files in one upload. File {index}{named} was one too many, "
            f"so this upload was not taken and no letter was made. Upload at most {max_files} "
            "files at a time, then the rest.",
        ),
        413,
        code="too_many_files",
        index=index,
    )


def _too_large(label: str, max_size: int, index: int) -> UploadRejected:
    mb = max_size // (1024 * 1024)
    return UploadRejected(
        (f"Berkas {label} lebih dari {mb} MB.", f"The file {label} is larger than {mb} MB."),
        413,
        code="too_large",
        index=index,
    )


def _sent_as(part: BodyPartReader) -> str | None:
    """The Content-Type the browser sent for the file, when it looks like one (for the log)."""
    sent = part.headers.get("Content-Type", "").split(";")[0].strip().lower()
    return sent if _MEDIA_TYPE.fullmatch(sent) else None


async def _store(
    part: BodyPartReader, head: bytes, files: FileStore, max_size: int, index: int
) -> Scan | RefusedFile:
    filename = _label(part) or None
    label = filename or FILE_FIELD
    while len(head) < SNIFF_BYTES and (chunk := await part.read_chunk(CHUNK)):
        head += chunk
    if not head:
        return RefusedFile(
            index,
            (
                f"Berkas {label} kosong (0 bita). Pindai ulang lalu unggah lagi.",
                f"The file {label} is empty (0 bytes). Scan it again, then upload it again.",
            ),
            422,
            "empty",
            0,
            sent_as=_sent_as(part),
        )
    media_type = sniff(head)
    if media_type is None:
        # Read past, never stored, as far as a scan may go: the next files still go in.
        size = len(head)
        while chunk := await part.read_chunk(CHUNK):
            size += len(chunk)
            if size > max_size:
                raise _too_large(label, max_size, index)
        return RefusedFile(
            index,
            (
                f"Berkas {label} bukan PDF, JPEG, PNG atau TIFF. Pindai ulang ke salah satu "
                "format itu.",
                f"The file {label} is not a PDF, JPEG, PNG or TIFF. Scan it again to one of "
                "those formats.",
            ),
            415,
            "wrong_kind",
            size,
            sent_as=_sent_as(part),
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
            code="store_unavailable",
            index=index,
        ) from exc
    except FileTooLarge:
        raise _too_large(label, max_size, index) from None
    return Scan(sha256=sha, media_type=media_type, size=size, filename=filename)
