"""The background reader: uploaded letters → page images, text and fields, with progress.

Every gateway process runs one :class:`LetterReader` (started and stopped with the HTTP
application). It takes the oldest letter that nobody is reading (a lease in the draft row, see
:meth:`~channels.letter.drafts.DraftStore.claim`), reads its files through the OCR pool (worker
processes: Tesseract never runs on the event loop), stores each page's image in the file store,
writes the progress after every page (which also renews the lease), extracts the fields and
leaves the letter ``ready`` for the clerk. An upload wakes the reader at once; letters left
behind by a process that died are found by polling every ``letter.reader_poll_interval``
seconds once their lease has run out. A letter that cannot be read (a broken file) is marked
``failed`` with the reason, in Indonesian and English; one whose reading crashed the reader
:data:`~channels.letter.drafts.MAX_ATTEMPTS` times too. A reader that is stopped (a restart, a
deploy) gives the letters it was reading back at once, not counted as attempts, so the next
process or another replica reads them without waiting for their lease to run out.

Nothing about the letter's content is logged: only ids, page counts and timings.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Protocol

from sqlalchemy.exc import SQLAlchemyError

from channels.letter import metrics
from channels.letter.drafts import MAX_ATTEMPTS, Draft, DraftStore, FieldInfo, PageInfo
from channels.letter.extract import LetterFields, extract_fields
from channels.letter.metrics import LetterMetrics
from channels.letter.ocr import LetterFormatError, OcrError, PageResult, count_pages
from channels.letter.parse import EXTRACTED, Scan
from gateway.filestore import FileStore
from gateway.ids import worker_name
from gateway.settings import LetterSettings

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]

# How long a stopping reader tries to give its letters back: a database that cannot be reached
# must not hold up the shutdown (the leases then run out as after a crash).
GIVE_BACK_TIMEOUT = 5.0


class DocumentReader(Protocol):
    """The OCR port (:class:`channels.letter.ocr.OcrPool`)."""

    async def read_document(
        self, data: bytes, content_type: str, on_page: ProgressCallback | None = None
    ) -> list[PageResult]:
        """Every page of one file: image, text, confidence."""
        ...


Extract = Callable[[list[PageResult]], LetterFields]


def fields_of(extracted: LetterFields) -> dict[str, FieldInfo]:
    """The extracted fields as stored in the draft."""
    out: dict[str, FieldInfo] = {}
    for name in EXTRACTED:
        found = getattr(extracted, name, None)
        if found is None:
            continue
        value = found.value
        out[name] = FieldInfo(
            value=None if value is None else str(value),
            confidence=float(found.confidence),
            note=found.note or None,
        )
    return out


class _Progress:
    """Pages read so far, reported by the pool's callback, written by one task."""

    def __init__(self, offset: int, total: int) -> None:
        self.offset = offset
        self.total = total
        self.done = 0
        self.changed = asyncio.Event()

    def report(self, done: int, _total: int) -> None:
        self.done = self.offset + done
        self.changed.set()


class LetterReader:
    """Reads uploaded letters in the background; any replica may read any letter."""

    def __init__(
        self,
        drafts: DraftStore,
        files: FileStore,
        ocr: DocumentReader,
        settings: LetterSettings,
        extract: Extract = extract_fields,
        metrics: LetterMetrics | None = None,
    ) -> None:
        self._drafts = drafts
        self._metrics = metrics
        self._files = files
        self._ocr = ocr
        self._settings = settings
        self._extract = extract
        self.name = worker_name(str(os.getpid()))
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def wake(self) -> None:
        """A letter was uploaded: look now."""
        self._wake.set()

    def start(self) -> None:
        """Run the reading loops (one per OCR worker) until :meth:`stop`."""
        if self._tasks:
            return
        self._stop.clear()
        self._tasks = [
            asyncio.create_task(self._loop(), name=f"letter-reader-{i}")
            for i in range(self._settings.ocr_workers)
        ]

    async def stop(self) -> None:
        """Stop reading; the letters being read are given back at once (their leases ended, the
        interrupted readings not counted as attempts), so that the next process or another
        replica reads them now rather than once the leases run out. When the database cannot
        be reached, this gives up after :data:`GIVE_BACK_TIMEOUT` seconds and the leases run
        out as after a crash."""
        self._stop.set()
        self._wake.set()
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if tasks:
            await self._give_back()

    async def _give_back(self) -> None:
        # By the reader's name (its own, random): also a letter whose claim was committed just
        # as its loop was cancelled, before the loop knew of it.
        try:
            given = await asyncio.wait_for(
                self._drafts.give_back(self.name), timeout=GIVE_BACK_TIMEOUT
            )
        except Exception as exc:  # the database is away: the leases run out instead
            log.warning(
                "letter reader stopped without giving its letters back: %s",
                type(exc).__name__,
                extra={"error": str(exc)[:300], "lease_s": self._settings.reading_lease},
            )
            return
        if given:
            log.info("letter reader stopped; letters given back to be read again",
                     extra={"letters": given})

    async def _loop(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            self._wake.clear()
            try:
                draft = await self._drafts.claim(self.name, self._settings.reading_lease)
                if draft is not None:
                    await self.read(draft)
                backoff = 0.5
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database is away: wait, the lease keeps the letter
                log.warning(
                    "letter reader: %s", type(exc).__name__, extra={"error": str(exc)[:300]}
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            if draft is None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self._wake.wait(), timeout=self._settings.reader_poll_interval
                    )

    async def run_once(self) -> bool:
        """Claim and read one letter now (tests, the CLI); False when there was none."""
        draft = await self._drafts.claim(self.name, self._settings.reading_lease)
        if draft is None:
            return False
        await self.read(draft)
        return True

    async def read(self, draft: Draft) -> None:
        """Read one claimed letter to the end (ready or failed)."""
        started = time.monotonic()
        outcome = await self._read(draft, started)
        if self._metrics is not None:
            self._metrics.reads.labels(outcome).inc()
            if outcome == metrics.READ:
                self._metrics.read_seconds.observe(time.monotonic() - started)

    async def _read(self, draft: Draft, started: float) -> str:
        """Read ``draft``; what became of it (a database error propagates: the lease brings the
        letter back)."""
        if draft.attempts > MAX_ATTEMPTS:
            await self._drafts.fail(
                draft.id,
                self.name,
                "Pembacaan gagal berulang kali; periksa berkasnya. / "
                "Reading failed repeatedly; check the file.",
            )
            log.warning("letter given up after repeated attempts", extra={"draft": draft.id})
            return metrics.GIVEN_UP
        try:
            pages, fields = await self._read_pages(draft)
        except (LetterFormatError, FileNotFoundError) as exc:
            await self._fail_unreadable(draft, exc)
            return metrics.UNREADABLE
        except SQLAlchemyError:
            raise  # the database: the loop waits and the lease brings the letter back
        except OcrError as exc:  # not the letter's fault (no Tesseract, a worker died)
            log.error("letter OCR failed: %s", exc, extra={"draft": draft.id})
            # Each half in its own language (the page shows one of them): the Indonesian
            # reason is the error's own translation, the technical detail stays in English.
            await self._drafts.fail(
                draft.id,
                self.name,
                f"OCR gagal: {exc.indonesian}; coba baca ulang. / "
                f"OCR failed: {exc}; try reading it again.",
            )
            return metrics.FAILED
        except Exception as exc:  # the OCR or the extraction broke on this letter
            log.exception("letter reading failed", extra={"draft": draft.id})
            await self._drafts.fail(
                draft.id,
                self.name,
                f"Pembacaan gagal ({type(exc).__name__}); coba baca ulang. / "
                f"Reading failed ({type(exc).__name__}); try reading it again.",
            )
            return metrics.FAILED
        values = {name: f.value or "" for name, f in fields.items()}
        if await self._drafts.finish(draft.id, self.name, pages, fields, values):
            log.info(
                "letter read",
                extra={
                    "draft": draft.id,
                    "pages": len(pages),
                    "seconds": round(time.monotonic() - started, 2),
                },
            )
            return metrics.READ
        log.warning("letter read but its lease was lost meanwhile", extra={"draft": draft.id})
        return metrics.LEASE_LOST

    async def _read_pages(self, draft: Draft) -> tuple[list[PageInfo], dict[str, FieldInfo]]:
        """Every page of the letter's files, in order, and the fields of them all.

        One file at a time: a letter may be 50 files of 25 MB. Each file is read from the
        store twice, once to count its pages (the total is shown before the first page is
        read) and once to read them, and dropped in between; a page's image is dropped once
        stored (the fields are extracted from the text). So a reader holds one file's bytes
        and the images of that file's pages at most.
        """
        total = 0
        for scan in draft.files:
            total += await self._count_pages(scan)
        await self._drafts.progress(draft.id, self.name, 0, total, self._settings.reading_lease)
        results: list[PageResult] = []
        pages: list[PageInfo] = []
        for index, scan in enumerate(draft.files):
            pages += await self._read_file(draft.id, index, scan, results, total)
            await self._drafts.progress(
                draft.id, self.name, len(results), total, self._settings.reading_lease
            )
        fields = fields_of(await asyncio.to_thread(self._extract, results))
        return pages, fields

    async def _count_pages(self, scan: Scan) -> int:
        data = await self._files.read(scan.sha256)
        return await asyncio.to_thread(count_pages, data, scan.media_type)

    async def _read_file(
        self, draft_id: str, index: int, scan: Scan, results: list[PageResult], total: int
    ) -> list[PageInfo]:
        """Read the pages of the letter's ``index``-th file; store their images, append them
        (numbered through the letter, without their images) to ``results``."""
        data = await self._files.read(scan.sha256)
        progress = _Progress(len(results), total)
        writer = asyncio.create_task(self._write_progress(draft_id, progress))
        try:
            found = await self._ocr.read_document(data, scan.media_type, on_page=progress.report)
        finally:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
        del data  # the file's bytes are not needed to store its pages
        pages: list[PageInfo] = []
        for page in found:
            number = len(results) + 1
            sha = await self._files.put_bytes(page.image_png)
            results.append(replace(page, number=number, image_png=b""))
            pages.append(PageInfo(number, sha, page.confidence, page.source, page.text, index))
        return pages

    async def _write_progress(self, draft_id: str, progress: _Progress) -> None:
        while True:
            await progress.changed.wait()
            progress.changed.clear()
            await self._drafts.progress(
                draft_id, self.name, progress.done, progress.total, self._settings.reading_lease
            )

    async def _fail_unreadable(self, draft: Draft, exc: Exception) -> None:
        # The files' names are not repeated here: the error is stored in the clear, a name may
        # be the citizen's own, and the desk shows the names (sealed) beside the error anyway.
        reason = str(exc)[:300] or type(exc).__name__
        await self._drafts.fail(
            draft.id,
            self.name,
            f"Berkas surat ini tidak dapat dibaca ({reason}). / "
            f"This letter's file cannot be read ({reason}).",
        )
        log.warning(
            "letter cannot be read: %s", type(exc).__name__, extra={"draft": draft.id}
        )

