"""Reading an uploaded letter: pages out of the file, text out of each page, off the event loop.

A clerk uploads what the scanner or a phone produced: a PDF (exported with text, or scanned,
several pages), a JPEG or PNG, a multi-page TIFF. :meth:`OcrPool.read_document` turns it into
one :class:`PageResult` per page, each with its text, a confidence and the page image shown on
the review page:

* the file's type comes from its first bytes (never from its name or the browser's
  Content-Type, which are only used for the error message); anything else is refused with
  :class:`LetterFormatError`, whose message says why (for a 4xx answer);
* a PDF page with a text layer is read from it (confidence 100, no OCR); a scanned PDF page, an
  image, and each frame of a TIFF go through :func:`channels.letter.images.prepare` (EXIF
  orientation, scale, deskew, light and contrast) and then Tesseract with the Indonesian model;
* every page is one task in a pool of worker *processes*. A worker prepares its page and runs
  one ``tesseract`` process with ``OMP_THREAD_LIMIT=1``: on this project's 2-core machines
  Tesseract's own OpenMP threads made a page ~5 times slower (most of it spent in the kernel),
  so the parallelism is one single-threaded Tesseract per core instead. Processes, not threads,
  because the page preparation is CPU-bound Python/NumPy, PDFium is not thread-safe, and a
  malformed file that crashes a decoder takes one worker down, not the gateway.

Tesseract's TSV output is used rather than plain text: it carries each word's confidence, and
the text is rebuilt from it line by line (paragraphs separated by a blank line), so every line
of :attr:`PageResult.text` has a confidence in :attr:`PageResult.line_confidences`.

Nothing starts at import or construction: the worker processes start with the first page, and
:meth:`OcrPool.close` stops them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import csv
import functools
import io
import logging
import multiprocessing
import os
import shutil
import struct
import subprocess
import tempfile
import threading
import warnings
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, BinaryIO, TypeVar

from PIL import Image, UnidentifiedImageError

from channels.letter import images, pdf

__all__ = [
    "MAX_PAGES",
    "LetterFormatError",
    "OcrError",
    "OcrPool",
    "OcrUnavailable",
    "PageResult",
    "TooManyPages",
    "check_document",
    "count_pages",
    "sniff",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

# A letter, even with its attachments, is a few pages; a complaint-box batch should be split
# into letters before upload. More pages than this is refused rather than queued for an hour.
MAX_PAGES = 100
# Pixels per page (before any scaling). A 600 dpi A4 scan is 35 Mpx and a 50 Mpx phone exists;
# more than this is a decompression bomb rather than a letter.
MAX_PIXELS = 60_000_000
# Tesseract page segmentation mode 4 ("a single column of text of variable sizes"): a letter
# is one column, and mode 3 (the default, which looks for columns) sometimes read a form's
# labels as one column and their values as another. On the generated letter set mode 4 had the
# lowest character error rate of modes 3, 4 and 6.
DEFAULT_PSM = 4
# Tesseract re-reads every low-confidence word inverted (white on black) by default; letters
# never are, and on noisy scans that retry is wasted time.
_CONFIG = ("-c", "tessedit_do_invert=0")

# What the first bytes say (JPEG: ITU-T T.81 B.1.1.2; PNG: ISO/IEC 15948 5.2; PDF: ISO 32000-1
# 7.5.2, found within the first KiB as readers allow; TIFF: TIFF 6.0 section 2, both orders).
_KINDS: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "jpeg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
)
# Where a TIFF frame's picture is (TIFF 6.0 sections 3 and 15): StripOffsets/StripByteCounts,
# or TileOffsets/TileByteCounts for a tiled one.
_STRIPS = ((273, 279), (324, 325))
# What Pillow raises on a TIFF whose later frames are damaged (a frame without its dimensions
# is a TypeError).
_TIFF_ERRORS = (OSError, ValueError, SyntaxError, EOFError, TypeError, struct.error)
# Recognised but not accepted, so the clerk is told what the file is.
_OTHER: tuple[tuple[bytes, str], ...] = (
    (b"GIF8", "GIF image"),
    (b"BM", "BMP image"),
    (b"PK\x03\x04", "ZIP archive or Office document"),
    (b"\xd0\xcf\x11\xe0", "old Office document"),
    (b"{\\rtf", "RTF document"),
)


class LetterFormatError(Exception):
    """The upload is not a document this channel reads; the message says why (answer 4xx)."""


class TooManyPages(LetterFormatError):
    """More pages than one document may have (:data:`MAX_PAGES`): the file is not damaged, it
    is to be split."""


class OcrError(Exception):
    """OCR failed for a reason that is not the document's fault (answer 5xx, retry later).

    The message is English (logs, the English page); :attr:`indonesian` says the same to the
    clerk on the Indonesian page, without the technical detail (Tesseract's own words)."""

    default_indonesian = "kesalahan pada mesin OCR di server"

    def __init__(self, message: str, indonesian: str | None = None) -> None:
        super().__init__(message)
        self.indonesian = indonesian or self.default_indonesian

    def __reduce__(self) -> tuple[type[OcrError], tuple[str, str]]:
        # Raised in a worker process and pickled back: keep both languages.
        return type(self), (str(self), self.indonesian)


class OcrUnavailable(OcrError):
    """Tesseract or its language data is not installed."""

    default_indonesian = "Tesseract atau data bahasanya belum terpasang di server"


@dataclass(frozen=True, slots=True)
class PageResult:
    """One page of a document as read."""

    number: int
    """1-based page number within the document."""
    text: str
    """The page text: lines, paragraphs separated by a blank line."""
    confidence: float
    """0..100: mean word confidence from Tesseract; 100.0 for a text layer; 0.0 for no words."""
    source: str
    """``"ocr"`` or ``"text-layer"``."""
    image_png: bytes
    """The page as shown to the clerk: upright, deskewed, at most 1600 px, PNG."""
    line_confidences: tuple[float, ...] = ()
    """0..100 for each line of ``text`` (``text.split("\\n")``); a blank line has 100."""
    skew: float = 0.0
    """Degrees the scanned page was turned by (counter-clockwise positive) before correction."""


def sniff(data: bytes, content_type: str | None = None) -> str:
    """The document kind (``pdf``, ``jpeg``, ``png``, ``tiff``) or :class:`LetterFormatError`."""
    if not data:
        raise LetterFormatError("the file is empty")
    for magic, kind in _KINDS:
        if data.startswith(magic):
            return kind
    if b"%PDF-" in data[:1024]:
        return "pdf"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        what = "WebP image"
    elif data[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1"):
        what = "HEIC image"
    else:
        what = next((name for magic, name in _OTHER if data.startswith(magic)), "")
    said = f" (sent as {content_type})" if content_type else ""
    if what:
        raise LetterFormatError(
            f"a {what} is not accepted{said}: upload a PDF, JPEG, PNG or TIFF"
        )
    raise LetterFormatError(
        f"the file is not a PDF, JPEG, PNG or TIFF{said}: its first bytes are {data[:8].hex()}"
    )


def _open_image(data: bytes | BinaryIO) -> Image.Image:
    try:
        with warnings.catch_warnings():
            # Pillow warns between its own limits; MAX_PIXELS below is the limit here.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data) if isinstance(data, bytes) else data)
    except Image.DecompressionBombError as exc:
        raise LetterFormatError(f"the image is too large for a scanned page: {exc}") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise LetterFormatError(f"the image cannot be read: {exc}") from exc
    if img.width * img.height > MAX_PIXELS:
        raise LetterFormatError(
            f"the image is {img.width}x{img.height} pixels, more than a scanned page can be"
        )
    return img


def count_pages(data: bytes, content_type: str | None = None) -> int:
    """Number of pages, from the file's structure only (cheap; for progress and limits)."""
    kind = sniff(data, content_type)
    if kind == "pdf":
        try:
            return pdf.page_count(data)
        except pdf.UnreadablePdf as exc:
            raise LetterFormatError(str(exc)) from exc
    if kind == "tiff":
        img = _open_image(data)
        try:
            return int(getattr(img, "n_frames", 1))
        except _TIFF_ERRORS as exc:
            raise LetterFormatError(f"the TIFF cannot be read: {exc}") from exc
    _open_image(data)
    return 1


def check_document(fh: BinaryIO, content_type: str | None = None) -> int:
    """Number of pages of the file ``fh`` (seekable, read in place, never whole), every page
    opened on the way, for the upload's check: each page of a PDF loaded by PDFium (nothing
    rendered), each frame of a TIFF with its picture data inside the file, an image's header.
    :class:`LetterFormatError` says what is wrong. Nothing is decoded: a picture whose data is
    damaged inside (not cut short) is found only when it is read."""
    size = fh.seek(0, io.SEEK_END)
    fh.seek(0)
    kind = sniff(fh.read(1024), content_type)
    fh.seek(0)
    if kind == "pdf":
        try:
            return pdf.open_pages(fh, MAX_PAGES)
        except pdf.TooManyPdfPages as exc:
            raise TooManyPages(str(exc)) from exc
        except pdf.UnreadablePdf as exc:
            raise LetterFormatError(str(exc)) from exc
    with warnings.catch_warnings():
        # A damaged TIFF's tags make Pillow warn ("Corrupt EXIF data"); the checks below decide.
        warnings.simplefilter("ignore", UserWarning)
        img = _open_image(fh)
        if kind != "tiff":
            return 1
        try:
            return _tiff_frames(img, size)
        except _TIFF_ERRORS as exc:
            raise LetterFormatError(f"the TIFF cannot be read: {exc}") from exc


def _tiff_frames(img: Image.Image, size: int) -> int:
    """The frames of a TIFF of ``size`` bytes, each with its strips or tiles inside the file.

    Frames are visited one by one up to the page limit, never counted first: ``n_frames``
    walks every frame, and a TIFF of tiny frames holds a few hundred thousand in 25 MB."""
    frames = 0
    while True:
        try:
            img.seek(frames)
        except EOFError:
            return frames
        index, frames = frames, frames + 1
        if frames > MAX_PAGES:
            raise TooManyPages(f"the document has more than {MAX_PAGES} pages: split it")
        if img.width * img.height > MAX_PIXELS:
            raise LetterFormatError(
                f"page {index + 1} of the TIFF is {img.width}x{img.height} pixels, more than a "
                "scanned page can be"
            )
        tags = getattr(img, "tag_v2", {})
        for offsets_tag, counts_tag in _STRIPS:
            offsets, counts = _ints(tags.get(offsets_tag)), _ints(tags.get(counts_tag))
            if offsets or counts:
                break
        if not offsets or len(offsets) != len(counts):
            raise LetterFormatError(f"page {index + 1} of the TIFF has no picture data")
        if any(o + c > size for o, c in zip(offsets, counts, strict=True)):
            raise LetterFormatError(f"page {index + 1} of the TIFF is cut short")


def _ints(value: object) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,)
    if isinstance(value, tuple) and all(isinstance(v, int) for v in value):
        return value
    return ()


# --------------------------------------------------------------------------------------------
# Tesseract, run in a worker process.


@dataclass(frozen=True, slots=True)
class OcrText:
    """Tesseract's reading of one image."""

    text: str
    confidence: float
    line_confidences: tuple[float, ...]


def parse_tsv(tsv: str) -> OcrText:
    """Text and confidences from Tesseract's TSV output (one row per page/block/par/line/word)."""
    lines: list[tuple[tuple[int, int], list[tuple[str, float]]]] = []
    index: dict[tuple[int, int, int], int] = {}
    words: list[float] = []
    for row in csv.DictReader(io.StringIO(tsv), delimiter="\t", quoting=csv.QUOTE_NONE):
        if row.get("level") != "5":
            continue
        text = (row.get("text") or "").strip()
        conf = float(row.get("conf") or -1)
        if not text or conf < 0:
            continue
        key = (int(row["block_num"]), int(row["par_num"]), int(row["line_num"]))
        if key not in index:
            index[key] = len(lines)
            lines.append(((key[0], key[1]), []))
        lines[index[key]][1].append((text, conf))
        words.append(conf)
    out: list[str] = []
    confs: list[float] = []
    previous: tuple[int, int] | None = None
    for paragraph, line_words in lines:
        if previous is not None and paragraph != previous:
            out.append("")
            confs.append(100.0)
        previous = paragraph
        out.append(" ".join(w for w, _ in line_words))
        confs.append(round(sum(c for _, c in line_words) / len(line_words), 2))
    mean = round(sum(words) / len(words), 2) if words else 0.0
    return OcrText("\n".join(out), mean, tuple(confs))


def tesseract_command(image_path: str, language: str, psm: int = DEFAULT_PSM) -> list[str]:
    """The command line: the image file in, TSV on stdout."""
    exe = shutil.which("tesseract")
    if exe is None:
        raise _not_installed()
    return [exe, image_path, "stdout", "-l", language, "--psm", str(psm), *_CONFIG, "tsv"]


def tesseract_env() -> dict[str, str]:
    """The environment for tesseract: one OpenMP thread (see the module docstring)."""
    return {**os.environ, "OMP_THREAD_LIMIT": "1"}


def run_tesseract(
    image: Image.Image, dpi: int, language: str, timeout_s: float, psm: int = DEFAULT_PSM
) -> OcrText:
    """OCR one prepared grey image with the tesseract command (blocking; workers only)."""
    # An uncompressed TIFF file carrying the resolution: nothing to compress here, nothing for
    # Leptonica to decompress there. (Tesseract reads a pipe byte by byte: ~15 % slower.)
    with tempfile.NamedTemporaryFile(prefix="lapor-ocr-", suffix=".tif") as page:
        image.save(page, "TIFF", compression="raw", dpi=(dpi, dpi))
        page.flush()
        try:
            done = subprocess.run(  # noqa: S603 - fixed argument list, no shell
                tesseract_command(page.name, language, psm),
                capture_output=True,
                env=tesseract_env(),
                timeout=timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise OcrError(
                f"tesseract took more than {timeout_s:.0f} s on one page",
                f"tesseract membaca satu halaman lebih dari {timeout_s:.0f} detik",
            ) from exc
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise OcrError(
            f"tesseract failed ({done.returncode}): {' / '.join(message[-3:])}",
            f"tesseract berhenti karena kesalahan (kode {done.returncode})",
        )
    return parse_tsv(done.stdout.decode("utf-8", "replace"))


def _image_frame(data: bytes, kind: str, index: int) -> Image.Image:
    img = _open_image(data)
    if kind == "tiff":
        try:
            img.seek(index)
        except EOFError as exc:
            raise LetterFormatError(f"the TIFF has no page {index + 1}") from exc
    try:
        img.load()
    except (OSError, ValueError, SyntaxError) as exc:
        raise LetterFormatError(f"page {index + 1} cannot be decoded: {exc}") from exc
    return img


def read_page(
    data: bytes, kind: str, index: int, language: str = "ind", timeout_s: float = 120.0
) -> PageResult:
    """Read page ``index`` (0-based) of a document: text layer or prepared image + OCR."""
    if kind == "pdf":
        try:
            page = pdf.read_page(data, index)
        except pdf.UnreadablePdf as exc:
            raise LetterFormatError(str(exc)) from exc
        if page.text is not None:
            lines = page.text.split("\n")
            return PageResult(
                number=index + 1,
                text=page.text,
                confidence=100.0,
                source="text-layer",
                image_png=images.display_png(page.image),
                line_confidences=tuple(100.0 for _ in lines),
            )
        prepared = images.prepare(page.image, dpi=page.dpi)
    else:
        prepared = images.prepare(_image_frame(data, kind, index))
    ocr = run_tesseract(prepared.image, prepared.dpi, language, timeout_s)
    return PageResult(
        number=index + 1,
        text=ocr.text,
        confidence=ocr.confidence,
        source="ocr",
        image_png=images.display_png(prepared.image),
        line_confidences=ocr.line_confidences,
        skew=prepared.skew,
    )


def _not_installed() -> OcrUnavailable:
    return OcrUnavailable(
        "tesseract is not installed (Debian: tesseract-ocr)",
        "tesseract belum terpasang di server (Debian: tesseract-ocr)",
    )


def _worker_init() -> None:
    # Pillow's own bomb check warns (or fails) at other limits than MAX_PIXELS; ours is checked
    # explicitly in _open_image, so the warning is not needed in the workers.
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS * 2


# --------------------------------------------------------------------------------------------
# The pool, used from the event loop.


class _Job:
    """One call waiting for a worker: a page to read, or a file's pages to count."""

    __slots__ = ("args", "executor", "fn", "result", "suspect")

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.fn = fn
        self.args = args
        self.result: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self.executor: concurrent.futures.ProcessPoolExecutor | None = None
        self.suspect = False
        """It was in the pool when a worker died: it runs again alone."""


class OcrPool:
    """Tesseract ('ind') in a worker pool off the event loop; one single-threaded tesseract each.

    ``workers`` processes read pages in parallel (one per core is right: each runs one
    single-threaded tesseract). Documents take turns for the workers: pages wait here, per
    document, and only as many are handed to the processes as there are workers; a worker that
    is done takes the next page of the next document in the round, and a document that had
    nothing waiting (one just uploaded) comes first. So a one-page letter read while a
    60-page bundle is being read waits for one page of the bundle, not for all of it, and a
    document read alone keeps every worker busy. ``timeout_s`` bounds one page's OCR.

    A worker that dies (a decoder crashing, a process killed for memory) breaks the whole
    process pool: every job it held fails, whichever worker it was on, so the pages of other
    letters read at that moment fail with the one that crashed. Those jobs are *suspects*: they
    run again on a fresh pool, one at a time with nothing else in the pool, before any other
    job. A suspect that kills its worker again, alone, is the culprit and fails (its letter says
    so); the others are read, and the pool goes on taking turns.
    """

    def __init__(
        self,
        workers: int = 2,
        language: str = "ind",
        timeout_s: float = 120.0,
        max_pages: int = MAX_PAGES,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.workers = workers
        self.language = language
        self.timeout_s = timeout_s
        self.max_pages = max_pages
        self._executor: concurrent.futures.ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self._checked = False
        # The turns (under _turns_lock; a worker's result arrives on the executor's thread):
        # the jobs waiting per document, documents in the order they take their next turn,
        # and how many jobs the processes hold.
        self._turns_lock = threading.Lock()
        self._waiting: OrderedDict[object, deque[_Job]] = OrderedDict()
        self._running = 0
        # Jobs that were in the pool when a worker died, to run one at a time (see the class),
        # the one running alone, and whether close() is stopping the pool (nothing runs again).
        self._suspects: deque[_Job] = deque()
        self._alone: _Job | None = None
        self._closing = False

    def _pool(self) -> concurrent.futures.ProcessPoolExecutor:
        with self._lock:
            if self._executor is None:
                # "spawn": a fresh interpreter per worker, not a fork of a running event loop
                # with its threads, sockets and locks.
                self._executor = concurrent.futures.ProcessPoolExecutor(
                    max_workers=self.workers,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_worker_init,
                )
            return self._executor

    def _discard(self, broken: concurrent.futures.ProcessPoolExecutor | None) -> None:
        """A worker of ``broken`` died: the next job starts a fresh pool."""
        with self._lock:
            if broken is None or self._executor is not broken:
                return
            self._executor = None
        broken.shutdown(wait=False, cancel_futures=True)

    def _submit(self, document: object, fn: Callable[..., T], *args: Any) -> Awaitable[T]:
        """Queue ``fn(*args)`` as ``document``'s next job; its result, awaitable on this loop."""
        job = _Job(fn, args)
        with self._turns_lock:
            queue = self._waiting.get(document)
            if queue is None:
                # Nothing of this document was waiting: it takes the next free worker.
                self._waiting[document] = queue = deque()
                self._waiting.move_to_end(document, last=False)
            queue.append(job)
        self._dispatch()
        return asyncio.wrap_future(job.result)

    def _next_job(self) -> _Job | None:
        """The next job in turn (under _turns_lock), skipping those cancelled meanwhile."""
        while self._waiting:
            document, queue = self._waiting.popitem(last=False)
            job = queue.popleft()
            if queue:
                self._waiting[document] = queue  # its next job after the others' turn
            if not job.result.cancelled():
                return job
        return None

    def _dispatch(self) -> None:
        """Hand jobs to the processes while a worker is free; a suspect once none is busy."""
        while True:
            with self._turns_lock:
                if self._alone is not None:
                    return  # a suspect runs alone
                while self._suspects and self._suspects[0].result.cancelled():
                    self._suspects.popleft()  # given up meanwhile
                if self._suspects:
                    if self._running:
                        return  # its turn comes when the jobs in the pool are done
                    job: _Job | None = self._suspects.popleft()
                    self._alone = job
                elif self._running >= self.workers:
                    return
                else:
                    job = self._next_job()
                if job is None:
                    return
                self._running += 1
                alone = self._alone is job
            if alone:
                # Given up by its reader meanwhile, it holds the pool no longer (the worker
                # finishes the page; the others need not wait up to timeout_s for it). Out of
                # the lock: a callback of a future already settled runs at once, here.
                job.result.add_done_callback(functools.partial(self._given_up, job))
            started = None
            for _attempt in range(2):
                try:
                    executor = self._pool()
                except Exception as exc:  # the processes could not start (too many files...)
                    # This page fails (its letter says why and may be read again); the
                    # worker slot is free again, and the next page tries a new pool.
                    _settle(job.result, OcrError(f"the OCR pool cannot start: {exc}"))
                    break
                try:
                    started = executor.submit(job.fn, *job.args)
                    job.executor = executor
                    break
                except BrokenProcessPool:  # a worker died meanwhile: once on a fresh pool
                    self._discard(executor)
                except Exception as exc:  # the pool is closing
                    _settle(job.result, exc)
                    break
            if started is None:
                _settle(job.result, BrokenProcessPool("the OCR pool cannot start"))
                with self._turns_lock:
                    self._running -= 1
                    if self._alone is job:
                        self._alone = None
                continue
            started.add_done_callback(functools.partial(self._finished, job))

    def _given_up(self, job: _Job, result: concurrent.futures.Future[Any]) -> None:
        """A suspect running alone was settled: when its reader gave it up (cancelled), the
        pool takes other jobs again at once."""
        if not result.cancelled():
            return
        with self._turns_lock:
            if self._alone is not job:
                return
            self._alone = None
        self._dispatch()

    def _finished(self, job: _Job, started: concurrent.futures.Future[Any]) -> None:
        """A worker is done with ``job`` (on the executor's thread): pass the result on and
        give the worker the next job in turn."""
        exc = None if started.cancelled() else started.exception()
        broken = isinstance(exc, BrokenProcessPool)
        if broken:
            # A worker died (a decoder crashed, or it was killed for memory): the jobs still
            # waiting go to a fresh pool.
            self._discard(job.executor)
        with self._turns_lock:
            self._running -= 1
            if self._alone is job:
                self._alone = None
            again = broken and not (job.suspect or job.result.cancelled() or self._closing)
            if again:
                # Maybe it only shared the pool with the page that crashed: once more, alone.
                job.suspect = True
                job.executor = None
                self._suspects.append(job)
        if again:
            log.warning("OCR worker process died; a page that was in the pool is read again alone")
        elif started.cancelled():  # the pool was closed with the job still in its queue
            job.result.cancel()
        elif exc is not None:
            # An error of its own, or a suspect that broke the pool alone: the culprit.
            _settle(job.result, exc)
        else:
            _settle(job.result, None, started.result())
        self._dispatch()

    async def check(self) -> None:
        """Raise :class:`OcrUnavailable` unless tesseract and the language data are installed."""
        if self._checked:
            return
        exe = shutil.which("tesseract")
        if exe is None:
            raise _not_installed()
        proc = await asyncio.create_subprocess_exec(
            exe,
            "--list-langs",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=tesseract_env(),
        )
        out, err = await proc.communicate()
        installed = set((out + err).decode("utf-8", "replace").split())
        missing = [lang for lang in self.language.split("+") if lang not in installed]
        if missing:
            raise OcrUnavailable(
                f"tesseract has no language data for {', '.join(missing)} "
                f"(Debian: tesseract-ocr-{missing[0]})",
                f"data bahasa {', '.join(missing)} untuk tesseract belum terpasang di server "
                f"(Debian: tesseract-ocr-{missing[0]})",
            )
        self._checked = True

    async def start(self) -> None:
        """Check tesseract and start the workers now (otherwise they start with the first page)."""
        await self.check()
        pool = self._pool()
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(pool, _noop) for _ in range(self.workers)))

    async def read_document(
        self,
        data: bytes,
        content_type: str | None = None,
        on_page: Callable[[int, int], None] | None = None,
    ) -> list[PageResult]:
        """Split into pages (PDF text or scanned, multi-page TIFF, JPEG, PNG; phone photos rotated
        by EXIF, deskewed), OCR each page in the pool, call on_page(done, total) as pages finish;
        a text PDF page uses its text layer. The document takes turns with the others being
        read (see the class)."""
        kind = sniff(data, content_type)
        await self.check()
        document = object()
        # Counting pages parses the file (PDFium for a PDF): in a worker as well.
        total = await self._unbroken(self._submit(document, count_pages, data, content_type))
        if total < 1:
            raise LetterFormatError("the document has no pages")
        if total > self.max_pages:
            raise TooManyPages(
                f"the document has {total} pages, more than {self.max_pages}: split it"
            )
        futures = [
            asyncio.ensure_future(
                self._submit(document, read_page, data, kind, i, self.language, self.timeout_s)
            )
            for i in range(total)
        ]
        results: list[PageResult] = []
        try:
            for done, next_page in enumerate(asyncio.as_completed(futures), 1):
                results.append(await self._unbroken(next_page))
                if on_page is not None:
                    on_page(done, total)
        except BaseException:
            for future in futures:
                future.cancel()  # pages not yet handed to a worker are dropped
            raise
        results.sort(key=lambda page: page.number)
        return results

    async def _unbroken(self, awaitable: Awaitable[T]) -> T:
        try:
            return await awaitable
        except BrokenProcessPool as exc:
            # A worker died on one of this document's pages, also when it was read again alone
            # (_finished): the pool was started afresh for the other pages; this document is
            # reported as failed.
            log.error("OCR worker process died on a page of the document, also when read alone")
            raise OcrError(
                "an OCR worker process died while reading the document",
                "proses pembaca OCR berhenti mendadak saat membaca berkas ini",
            ) from exc

    async def close(self) -> None:
        """Stop the worker processes (pages still waiting are cancelled)."""
        with self._turns_lock:
            waiting = [job for queue in self._waiting.values() for job in queue]
            waiting += self._suspects
            self._waiting.clear()
            self._suspects.clear()
            self._closing = True
        for job in waiting:
            job.result.cancel()
        with self._lock:
            executor, self._executor = self._executor, None
        try:
            if executor is not None:
                await asyncio.to_thread(executor.shutdown, wait=True, cancel_futures=True)
        finally:
            with self._turns_lock:
                self._closing = False


def _settle(
    future: concurrent.futures.Future[Any], error: BaseException | None, result: Any = None
) -> None:
    """Pass a job's outcome on, unless its reader gave it up (cancelled) meanwhile."""
    with contextlib.suppress(concurrent.futures.InvalidStateError):
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)


def _noop() -> None:
    """A task that only makes a worker start."""
