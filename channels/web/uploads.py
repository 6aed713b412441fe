"""Reading a ``multipart/form-data`` request part by part, files streamed to the file store.

Text parts are read up to a size limit; each file part is checked by its first bytes (JPEG, PNG,
PDF: see :mod:`channels.web.exif`) and then streamed in chunks to
:meth:`~gateway.filestore.FileStore.put_stream`, so no attachment is ever whole in memory. Only
the first :data:`EXIF_WINDOW` bytes of a JPEG are kept, to read the GPS position from its EXIF
segment (which comes before the image data). Once stored, the file is run through what
``/files/`` will do to serve it (:func:`gateway.media.check`, reading it in place, ``whole=True``):
a photo or PDF that is damaged or cut short (a JPEG without its end, a PNG without IEND or with a
bad CRC) is refused now, naming the file, while the citizen can still send it again, rather
than found unservable later or served half.

A refused file (wrong type, too big, one too many) or a text field longer than
``max_field_size`` stops the API's request at once. The citizen form asks for ``keep_going``: the
refusal is recorded, the rest of that file or text is read and thrown away (a browser shows
nothing of an answer sent before its upload is finished), and the text fields after it are still
read, so the form comes back with everything else the citizen typed and the message next to the
attachment field, or next to the text that was too long. After a refused file later files are
not stored; after a refused text they are (the form carries them over, see
:mod:`channels.web.kept`). At most ``discard_limit`` bytes are thrown away; past that the request
is refused without its fields.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from aiohttp import BodyPartReader, MultipartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from channels.fields import header_text
from channels.web.exif import SNIFF_BYTES, jpeg_gps, sniff
from gateway import media
from gateway.domain import Attachment
from gateway.filestore import FileStore, FileTooLarge
from gateway.http import is_utf8_text

log = logging.getLogger(__name__)

CHUNK = 64 * 1024
EXIF_WINDOW = 128 * 1024
_MAX_FILENAME = 255


class UploadRejected(Exception):
    """A part of the request cannot be taken; ``message`` is (Indonesian, English)."""

    def __init__(self, field_name: str, message: tuple[str, str], status: int = 400) -> None:
        super().__init__(message[1])
        self.field_name = field_name
        self.message = message
        self.status = status


class StoreUnavailable(UploadRejected):
    """The file store cannot take the file now (its disk full or read-only): the server's
    trouble, answered 503 so that the sender tries again, never a 500."""

    def __init__(self, field_name: str, error: OSError) -> None:
        super().__init__(
            field_name,
            (
                "Lampiran belum dapat disimpan saat ini. Coba kirim lagi beberapa saat lagi.",
                "The attachments cannot be stored right now. Please send again in a moment.",
            ),
            503,
        )
        self.error = error


class FieldTooLong(UploadRejected):
    """A text field longer than ``max_field_size`` bytes."""

    def __init__(self, field_name: str, limit: int) -> None:
        super().__init__(
            field_name,
            (
                f"Isian {field_name} lebih dari {limit} bita.",
                f"Field {field_name} is longer than {limit} bytes.",
            ),
            413,
        )


@dataclass(slots=True)
class Upload:
    """What a multipart request held: its text fields in order, and the stored files."""

    fields: list[tuple[str, str]] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    # sha256 -> (latitude, longitude) read from the photo's EXIF: evidence of the place.
    gps: dict[str, tuple[float, float]] = field(default_factory=dict)
    # Files refused while the rest of the request was read (``keep_going``).
    rejected: list[UploadRejected] = field(default_factory=list)
    # Text fields refused as too long while the rest was read (``keep_going``): not in
    # ``fields``.
    too_long: list[FieldTooLong] = field(default_factory=list)
    # Names of the files read into the void (``store_files=False``).
    unread: list[str] = field(default_factory=list)


# A body aiohttp could not read: a Content-Encoding that does not decode, a broken chunked
# transfer coding.
BAD_BODY = (
    "Isi permintaan tidak dapat dibaca (Content-Encoding atau Transfer-Encoding rusak).",
    "The request body cannot be read (broken Content-Encoding or Transfer-Encoding).",
)
# A body whose files are only named, not stored, carried more than is worth reading.
UNREAD_TOO_BIG = (
    "Lampiran yang dipilih terlalu besar untuk dibaca saat mengganti bahasa.",
    "The attachments chosen are too large to be read while switching the language.",
)


async def read_multipart(
    reader: MultipartReader,
    files: FileStore,
    *,
    file_fields: frozenset[str],
    max_files: int,
    max_file_size: int,
    max_field_size: int,
    max_fields: int = 64,
    keep_going: bool = False,
    discard_limit: int = 0,
    store_files: bool = True,
    nameless_files: bool = False,
) -> Upload:
    """Read every part; raise :class:`UploadRejected` naming the field or file at fault.

    ``nameless_files``: a part of ``file_fields`` without a ``filename`` is a file too (RFC 7578
    makes the parameter optional; ``curl -F 'attachments=<photo.jpg'`` and many libraries send
    none); else it is skipped, as text posing as a file reference (the form, whose browsers
    always name a file).

    With ``keep_going`` a refused file is recorded in :attr:`Upload.rejected` instead, a text
    field too long in :attr:`Upload.too_long`, and the reading goes on (see the module's
    docstring). Without ``store_files`` (the form's language switch) no file is stored: each is
    read into the void, counted against ``discard_limit``, and named in :attr:`Upload.unread`.
    """
    limits = _Limits(
        file_fields, max_files, max_file_size, max_field_size, max_fields,
        discard_limit if keep_going else -1, store_files, nameless_files,
    )
    try:
        return await _read(reader, files, limits)
    except (HttpProcessingError, ValueError, AssertionError) as exc:
        # A malformed body (bad part headers, broken boundary): the client's fault, not ours.
        raise UploadRejected(
            "", ("Format multipart rusak.", f"Malformed multipart body: {type(exc).__name__}.")
        ) from None
    except web.RequestPayloadError:
        raise UploadRejected("", BAD_BODY) from None


@dataclass(frozen=True, slots=True)
class _Limits:
    file_fields: frozenset[str]
    max_files: int
    max_file_size: int
    max_field_size: int
    max_fields: int
    discard_limit: int  # -1: refuse at the first bad file
    store_files: bool
    nameless_files: bool


async def _read(reader: MultipartReader, files: FileStore, limits: _Limits) -> Upload:
    upload = Upload()
    discarded = 0
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):
            raise UploadRejected("", ("Multipart bersarang tidak didukung.", "Nested multipart."))
        name = header_text(part.name or "")
        if name in limits.file_fields and (part.filename is not None or limits.nameless_files):
            head = await part.read_chunk(CHUNK)
            if not head and not part.filename:
                continue  # a file input left empty: browsers send a part with no name and no body
            if not limits.store_files:
                upload.unread.append(header_text(part.filename or name)[-_MAX_FILENAME:])
                discarded += len(head)
                too_big = UploadRejected(name, UNREAD_TOO_BIG, 413)
                discarded += await _discard(part, limits.discard_limit - discarded, too_big)
                continue
            if upload.rejected:  # the submission is refused already: store no more files
                discarded += len(head)
                discarded += await _discard(
                    part, limits.discard_limit - discarded, upload.rejected[0]
                )
                continue
            try:
                if len(upload.attachments) >= limits.max_files:
                    raise UploadRejected(
                        name,
                        (
                            f"Paling banyak {limits.max_files} lampiran.",
                            f"At most {limits.max_files} attachments.",
                        ),
                        413,
                    )
                attachment, gps = await _store_file(part, head, files, name, limits.max_file_size)
            except UploadRejected as exc:
                if limits.discard_limit < 0:
                    raise
                upload.rejected.append(exc)
                discarded += await _discard(part, limits.discard_limit - discarded, exc)
                continue
            upload.attachments.append(attachment)
            if gps is not None:
                upload.gps[attachment.sha256] = gps
            continue
        if name in limits.file_fields:
            continue  # text posing as a file reference: only the gateway writes those
        if len(upload.fields) + len(upload.too_long) >= limits.max_fields:
            raise UploadRejected(name, ("Terlalu banyak isian.", "Too many fields."), 413)
        value = b""
        while len(value) <= limits.max_field_size and (chunk := await part.read_chunk(CHUNK)):
            value += chunk
        if len(value) > limits.max_field_size:
            too_long = FieldTooLong(name, limits.max_field_size)
            if limits.discard_limit < 0:
                raise too_long
            upload.too_long.append(too_long)
            discarded += len(value)
            if discarded > limits.discard_limit:
                raise too_long
            discarded += await _discard(part, limits.discard_limit - discarded, too_long)
            continue
        try:
            text = value.decode(part.get_charset("utf-8"))
        except (UnicodeDecodeError, LookupError):
            text = None
        # A charset like UTF-7 decodes to lone surrogates, which UTF-8 cannot take.
        if text is None or not is_utf8_text(text):
            raise UploadRejected(
                name, (f"Isian {name} bukan teks UTF-8.", f"Field {name} is not UTF-8 text.")
            )
        upload.fields.append((name, text))
    return upload


async def _discard(part: BodyPartReader, budget: int, reason: UploadRejected) -> int:
    """Read the rest of ``part`` into the void; past ``budget`` bytes give up with ``reason``."""
    thrown = 0
    while chunk := await part.read_chunk(CHUNK):
        thrown += len(chunk)
        if thrown > budget:
            raise reason
    return thrown


async def _store_file(
    part: BodyPartReader, head: bytes, files: FileStore, name: str, max_size: int
) -> tuple[Attachment, tuple[float, float] | None]:
    filename = header_text(part.filename or "")[-_MAX_FILENAME:] or None
    label = filename or name
    while len(head) < SNIFF_BYTES and (chunk := await part.read_chunk(CHUNK)):
        head += chunk
    media_type = sniff(head)
    if media_type is None:
        raise UploadRejected(
            name,
            (
                f"Berkas {label} bukan JPEG, PNG atau PDF.",
                f"The file {label} is not a JPEG, PNG or PDF.",
            ),
            415,
        )
    window = bytearray(head[:EXIF_WINDOW])

    async def chunks() -> AsyncIterator[bytes]:
        yield head
        while chunk := await part.read_chunk(CHUNK):
            if len(window) < EXIF_WINDOW:
                window.extend(chunk[: EXIF_WINDOW - len(window)])
            yield chunk

    try:
        sha, size = await files.put_stream(chunks(), max_size)
    except (ConnectionError, TimeoutError):
        raise  # the client went away mid-upload: nothing to answer
    except OSError as exc:  # FileTooLarge is not one
        log.error("file store cannot take a file: %s", exc, extra={"errno": exc.errno})
        raise StoreUnavailable(name, exc) from exc
    except FileTooLarge:
        raise UploadRejected(
            name,
            (
                f"Berkas {label} lebih dari {max_size // 1024} KB.",
                f"The file {label} is larger than {max_size // 1024} KB.",
            ),
            413,
        ) from None
    try:
        await asyncio.to_thread(_servable, files, sha)
    except media.Unclean:
        raise UploadRejected(
            name,
            (
                f"Berkas {label} rusak atau tidak utuh. Kirim ulang berkas aslinya.",
                f"The file {label} is damaged or incomplete. Please send the original again.",
            ),
            422,
        ) from None
    gps = jpeg_gps(bytes(window)) if media_type == "image/jpeg" else None
    return Attachment(sha256=sha, media_type=media_type, size=size, filename=filename), gps



def _servable(files: FileStore, sha: str) -> None:
    """Raise :class:`gateway.media.Unclean` when ``/files/`` could not serve the stored file."""
    with files.opened(sha) as fh:
        media.check(fh, whole=True)
