"""Reading letters: a reader stopped in the middle of a letter, documents taking turns in the
OCR pool, and why a reading failed said in the clerk's language."""

from __future__ import annotations

import asyncio
import io
import pickle
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from channels.letter import reading
from channels.letter.auth import Role, StaffStore
from channels.letter.drafts import DraftStatus, DraftStore
from channels.letter.ocr import OcrError, OcrPool, OcrUnavailable
from channels.letter.pages import error_text
from channels.letter.parse import Scan
from channels.letter.reading import LetterReader
from gateway.crypto import load_keys
from gateway.filestore import FileStore
from gateway.settings import Settings
from gateway.storage.database import create_engine
from tests.channels.letter.conftest import add_staff


def small_png(text: str = "Surat") -> bytes:
    from PIL import Image, ImageDraw

    img = Image.new("L", (320, 120), 255)
    ImageDraw.Draw(img).text((20, 50), text, fill=0)
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


@dataclass(frozen=True)
class _Page:
    number: int
    text: str
    confidence: float
    source: str
    image_png: bytes


class _StuckOcr:
    """Reads the first page of three, then waits until the reader is stopped."""

    def __init__(self) -> None:
        self.started = asyncio.Event()

    async def read_document(
        self, data: bytes, content_type: str, on_page: Callable[[int, int], None] | None = None
    ) -> list[_Page]:
        if on_page is not None:
            on_page(1, 3)
        self.started.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


class _FailingOcr:
    def __init__(self, error: Exception) -> None:
        self.error = error

    async def read_document(
        self, data: bytes, content_type: str, on_page: Callable[[int, int], None] | None = None
    ) -> list[_Page]:
        raise self.error


@pytest.fixture
async def parts(
    letter_settings: Settings, tmp_path: Path
) -> AsyncIterator[tuple[DraftStore, FileStore, str]]:
    engine = create_engine(letter_settings.database)
    budi = await add_staff(StaffStore(engine, letter_settings.letter), "budi", Role.CLERK)
    keys = load_keys(letter_settings)
    yield DraftStore(engine, keys), FileStore(tmp_path / "files", keys), budi.id
    await engine.dispose()


async def _one_letter(drafts: DraftStore, files: FileStore, staff_id: str) -> str:
    data = small_png()
    scan = Scan(await files.put_bytes(data), "image/png", len(data), "surat.png")
    batch, _ = await drafts.create_batch([[scan]], staff_id)
    return batch


# ---- a reader stopped in the middle of a letter ------------------------------------------------


@pytest.mark.integration
async def test_a_stopped_reader_gives_its_letter_back_not_counted_as_an_attempt(
    letter_settings: Settings, parts: tuple[DraftStore, FileStore, str]
) -> None:
    drafts, files, staff_id = parts
    batch = await _one_letter(drafts, files, staff_id)
    for _restart in range(4):  # more restarts than MAX_ATTEMPTS: never given up for them
        ocr = _StuckOcr()
        reader = LetterReader(drafts, files, ocr, letter_settings.letter)  # type: ignore[arg-type]
        reader.start()
        reader.wake()
        await asyncio.wait_for(ocr.started.wait(), 30)
        for _ in range(100):  # the first page's progress is written meanwhile
            [draft] = await drafts.batch(batch)
            if draft.pages_done:
                break
            await asyncio.sleep(0.05)
        assert draft.attempts == 1 and draft.pages_done == 1
        await reader.stop()
        [draft] = await drafts.batch(batch)
        assert draft.status is DraftStatus.READING
        assert draft.attempts == 0, "an interrupted reading counted as a failed attempt"
        assert draft.pages_done == 0, "the progress page still shows the stopped reading"
    taken = await drafts.claim("the-next-process", letter_settings.letter.reading_lease)
    assert taken is not None and taken.attempts == 1


@pytest.mark.integration
async def test_a_stopped_reader_gives_back_only_its_own_letters(
    letter_settings: Settings, parts: tuple[DraftStore, FileStore, str]
) -> None:
    drafts, files, staff_id = parts
    await _one_letter(drafts, files, staff_id)
    other = await drafts.claim("another-replica", 300)
    assert other is not None
    ocr = _StuckOcr()
    reader = LetterReader(drafts, files, ocr, letter_settings.letter)  # type: ignore[arg-type]
    reader.start()
    await asyncio.sleep(0.2)
    await reader.stop()
    again = await drafts.get(other.id)
    assert again is not None and again.attempts == 1
    assert await drafts.claim("a-third", 300) is None, "another replica's lease was taken"


class _AwayDrafts:
    """The draft store of a database that stopped answering (or refuses) as the reader stops."""

    def __init__(self, drafts: DraftStore, fail: bool) -> None:
        self._drafts = drafts
        self._fail = fail

    def __getattr__(self, name: str) -> Any:
        return getattr(self._drafts, name)

    async def give_back(self, reader: str) -> int:
        if self._fail:
            raise ConnectionRefusedError("the database is away")
        await asyncio.Event().wait()  # a connection that never answers
        return 0


@pytest.mark.integration
@pytest.mark.parametrize("fail", [False, True], ids=["hangs", "refuses"])
async def test_stopping_with_the_database_away_does_not_hold_up_the_shutdown(
    letter_settings: Settings,
    parts: tuple[DraftStore, FileStore, str],
    monkeypatch: pytest.MonkeyPatch,
    fail: bool,
) -> None:
    drafts, files, staff_id = parts
    await _one_letter(drafts, files, staff_id)
    monkeypatch.setattr(reading, "GIVE_BACK_TIMEOUT", 0.5)
    ocr = _StuckOcr()
    away = _AwayDrafts(drafts, fail)
    reader = LetterReader(away, files, ocr, letter_settings.letter)  # type: ignore[arg-type]
    reader.start()
    await asyncio.wait_for(ocr.started.wait(), 30)
    began = time.monotonic()
    await asyncio.wait_for(reader.stop(), 10)
    assert time.monotonic() - began < 3.0
    # The lease then runs out as after a crash.
    assert await drafts.claim("the-next-process", 300) is None


# ---- why a reading failed, in the clerk's language ---------------------------------------------


@pytest.mark.integration
@pytest.mark.parametrize(
    "error, indonesian",
    [
        (
            OcrError(
                "tesseract failed (1): Error opening data file. / Please make sure the "
                "TESSDATA_PREFIX environment variable is set",
                "tesseract berhenti karena kesalahan (kode 1)",
            ),
            "tesseract berhenti karena kesalahan (kode 1)",
        ),
        (
            OcrUnavailable("tesseract is not installed (Debian: tesseract-ocr)"),
            "belum terpasang",
        ),
        (OcrError("something unforeseen"), "kesalahan"),
    ],
    ids=["tesseract-failed", "not-installed", "unforeseen"],
)
async def test_a_failed_ocr_says_why_in_the_clerks_language(
    letter_settings: Settings,
    parts: tuple[DraftStore, FileStore, str],
    error: OcrError,
    indonesian: str,
) -> None:
    drafts, files, staff_id = parts
    batch = await _one_letter(drafts, files, staff_id)
    ocr = _FailingOcr(error)
    reader = LetterReader(drafts, files, ocr, letter_settings.letter)  # type: ignore[arg-type]
    assert await reader.run_once()
    [draft] = await drafts.batch(batch)
    assert draft.status is DraftStatus.FAILED
    shown_id = error_text(draft.error, "id")
    shown_en = error_text(draft.error, "en")
    assert shown_id.startswith("OCR gagal: ") and indonesian in shown_id
    english = str(error)
    for word in ("failed", "installed", "unforeseen", "Please", "environment"):
        assert word not in shown_id, f"{word!r} in the Indonesian message {shown_id!r}"
    assert shown_en == f"OCR failed: {english}; try reading it again."
    assert "gagal" not in shown_en


def test_an_ocr_error_keeps_both_languages_across_the_process_boundary() -> None:
    error = OcrError("tesseract took more than 9 s on one page", "lebih dari 9 detik")
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is OcrError
    assert str(back) == str(error) and back.indonesian == "lebih dari 9 detik"
    unavailable = pickle.loads(pickle.dumps(OcrUnavailable("tesseract is not installed")))
    assert type(unavailable) is OcrUnavailable and "terpasang" in unavailable.indonesian


async def test_a_page_taking_too_long_is_reported_in_indonesian_from_the_worker() -> None:
    pool = OcrPool(workers=1, timeout_s=0.001)
    try:
        try:
            await pool.read_document(small_png("Surat warga"), "image/png")
        except OcrUnavailable:
            pytest.skip("tesseract is not installed")
        except OcrError as exc:
            assert "took more than" in str(exc)
            assert exc.indonesian.startswith("tesseract membaca satu halaman lebih dari")
        else:
            raise AssertionError("a page read in a millisecond")
    finally:
        await pool.close()


# ---- documents taking turns in the pool --------------------------------------------------------


async def test_documents_take_turns_and_one_alone_keeps_every_worker_busy() -> None:
    """Jobs that only wait (no Tesseract): a document alone uses both workers; a document
    arriving meanwhile takes the next free worker, not the end of the first one's queue; a
    document given up drops its waiting pages."""
    pool = OcrPool(workers=2)
    try:
        await pool.start()
        # Alone: eight jobs of 0.3 s on two workers take ~1.2 s (one at a time: 2.4 s).
        began = time.monotonic()
        alone = object()
        await asyncio.gather(*(pool._submit(alone, time.sleep, 0.3) for _ in range(8)))
        assert time.monotonic() - began < 2.0, "a document alone does not use both workers"

        # A thick document, then a one-page one a moment later.
        order: list[str] = []

        async def job(document: object, label: str) -> None:
            await pool._submit(document, time.sleep, 0.4)
            order.append(label)

        thick, counter = object(), object()
        jobs = [asyncio.ensure_future(job(thick, f"thick-{i}")) for i in range(8)]
        await asyncio.sleep(0.1)
        await job(counter, "counter")
        await asyncio.gather(*jobs)
        assert order.index("counter") <= 3, order

        # A document given up (the reader stopped): its waiting pages are never read.
        given_up = object()
        waiting = [asyncio.ensure_future(pool._submit(given_up, time.sleep, 0.3))
                   for _ in range(10)]
        await asyncio.sleep(0.1)
        for future in waiting:
            future.cancel()
        began = time.monotonic()
        await pool._submit(object(), time.sleep, 0.0)
        assert time.monotonic() - began < 1.0, "waited for the pages of a document given up"
        await asyncio.gather(*waiting, return_exceptions=True)
    finally:
        await pool.close()


async def test_a_worker_dying_fails_its_own_document_not_the_ones_waiting() -> None:
    """A decoder crashing takes its worker down: the document on it fails, a document whose
    pages were still waiting is read on a fresh pool."""
    import os
    from concurrent.futures.process import BrokenProcessPool

    pool = OcrPool(workers=1)
    try:
        await pool.start()
        crashing = asyncio.ensure_future(pool._submit(object(), os._exit, 3))
        waiting = asyncio.ensure_future(pool._submit(object(), sum, (1, 2)))
        with pytest.raises(BrokenProcessPool):
            await asyncio.wait_for(crashing, 30)
        assert await asyncio.wait_for(waiting, 60) == 3
        with pytest.raises(OcrError) as died:
            await pool._unbroken(pool._submit(object(), os._exit, 3))
        assert "berhenti mendadak" in died.value.indonesian
        assert await asyncio.wait_for(pool._submit(object(), sum, (2, 2)), 60) == 4
    finally:
        await pool.close()
