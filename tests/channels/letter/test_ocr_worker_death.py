"""A worker of the OCR pool dying (a decoder crashing, a process killed for memory) breaks the
whole process pool, so every page in it at that moment fails: the pages of other letters read at
the same time are tried again, alone, and only the page that kills its worker again fails its
letter.

The pages here are read by :mod:`tests.channels.letter.dying_worker` (no Tesseract): each takes
a moment, one page of a marked document ends its worker process, and each run is written to a
journal the tests read.
"""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest

from channels.letter import ocr
from channels.letter.ocr import OcrError, OcrPool
from tests.channels.letter import dying_worker
from tests.channels.letter.damaged import page

DIES = "berhenti mendadak"


def tiff(pages: int, deadly: bool = False) -> bytes:
    """A TIFF of ``pages`` small pages; ``deadly``: its first page kills its worker."""
    out = io.BytesIO()
    frames = [page(f"Halaman {n + 1}", (200, 260)) for n in range(pages)]
    frames[0].save(out, "TIFF", save_all=True, append_images=frames[1:])
    return out.getvalue() + (dying_worker.MARKER if deadly else b"")


@pytest.fixture
def journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Pages read by the dying worker's stand-in, each run written to the returned file."""
    path = tmp_path / "journal"
    # The workers are spawned after this: they inherit the variable.
    monkeypatch.setenv("LAPOR_TEST_JOURNAL", str(path))
    monkeypatch.setattr(ocr, "read_page", dying_worker.read_page)
    return path


def starts(journal: Path, label: str) -> list[float]:
    return [when for who, what, when in dying_worker.runs(journal)
            if who == label and what == "start"]


def ran_alone(journal: Path, label: str, at: float) -> bool:
    """Whether nothing else ran in the pool while ``label``'s run started at ``at`` ran."""
    runs = dying_worker.intervals(journal)
    mine = next(end for who, start, end in runs if (who, start) == (label, at))
    return not any(
        start < mine and at < end for who, start, end in runs if (who, start) != (label, at)
    )


async def test_a_dying_worker_fails_only_the_letter_whose_page_killed_it(journal: Path) -> None:
    """Two letters read at once on two workers: a page of one kills its worker while a page of
    the other is being read. The other letter is read whole; the first fails (OcrError, "the
    OCR reader stopped suddenly") after its page killed a worker again with nothing else in the
    pool; the pool goes on reading letters."""
    innocent, deadly = tiff(6), tiff(2, deadly=True)
    pool = OcrPool(workers=2)
    try:
        await pool.start()
        # The innocent letter first, long enough to be read still when the other's turn comes.
        reading = asyncio.ensure_future(pool.read_document(innocent))
        for _ in range(1000):
            if starts(journal, "innocent-0"):
                break
            await asyncio.sleep(0.02)
        read, failed = await asyncio.wait_for(
            asyncio.gather(reading, pool.read_document(deadly), return_exceptions=True), 60
        )
        assert not isinstance(read, BaseException), f"the innocent letter failed: {read!r}"
        assert [p.text for p in read] == [f"halaman {n}" for n in range(1, 7)]
        assert isinstance(failed, OcrError), failed
        assert DIES in failed.indonesian

        # The killer was tried twice, the second time alone; nothing was read more than twice.
        tries = starts(journal, "deadly-0")
        assert len(tries) == 2, dying_worker.runs(journal)
        assert not ran_alone(journal, "deadly-0", tries[0]), "the other letter was not being read"
        assert ran_alone(journal, "deadly-0", tries[1]), dying_worker.runs(journal)
        for label in (f"innocent-{n}" for n in range(6)):
            assert 1 <= len(starts(journal, label)) <= 2, dying_worker.runs(journal)
        assert len(starts(journal, "deadly-1")) <= 2  # dropped once its letter failed

        # The pool still reads, both workers at once.
        again = await asyncio.wait_for(
            asyncio.gather(pool.read_document(innocent), pool.read_document(tiff(1))), 30
        )
        assert [len(pages) for pages in again] == [6, 1]
    finally:
        await pool.close()


async def test_a_letter_read_alone_whose_page_kills_its_worker_fails_once_tried_again(
    journal: Path,
) -> None:
    """A letter read alone whose page kills its worker fails with OcrError: the page is tried
    once more, alone, not again and again; the letter's other page, in the pool when the worker
    died, is read again. Then the pool reads the next letter."""
    pool = OcrPool(workers=2)
    try:
        await pool.start()
        with pytest.raises(OcrError) as died:
            await asyncio.wait_for(pool.read_document(tiff(2, deadly=True)), 60)
        assert DIES in died.value.indonesian
        assert len(starts(journal, "deadly-0")) == 2
        assert len(starts(journal, "deadly-1")) in (1, 2)
        pages = await asyncio.wait_for(pool.read_document(tiff(2)), 30)
        assert [p.number for p in pages] == [1, 2]
    finally:
        await pool.close()


async def test_pages_in_the_pool_when_it_broke_are_tried_again_one_at_a_time(
    tmp_path: Path,
) -> None:
    """Jobs of three documents on two workers; one kills its worker while another document's
    job is running. Every job in the pool at that moment is tried again alone (the pool's own
    job queue, ``_submit``), the culprit's error is the broken pool's, and the jobs waiting
    meanwhile are read afterwards, taking turns as before."""
    from concurrent.futures.process import BrokenProcessPool

    journal = str(tmp_path / "journal")
    pool = OcrPool(workers=2)
    try:
        await pool.start()
        killer = asyncio.ensure_future(
            pool._submit(object(), dying_worker.sleep_or_die, journal, "killer", 0.3, True)
        )
        first, second = object(), object()
        firsts = [asyncio.ensure_future(pool._submit(
            first, dying_worker.sleep_or_die, journal, f"first-{i}", 0.6)) for i in range(3)]
        seconds = [asyncio.ensure_future(pool._submit(
            second, dying_worker.sleep_or_die, journal, f"second-{i}", 0.2)) for i in range(2)]
        with pytest.raises(BrokenProcessPool):
            await asyncio.wait_for(killer, 60)
        assert await asyncio.wait_for(asyncio.gather(*firsts, *seconds), 60) == [
            "first-0", "first-1", "first-2", "second-0", "second-1"
        ]
        path = Path(journal)
        killed = starts(path, "killer")
        assert len(killed) == 2, dying_worker.runs(path)
        assert not ran_alone(path, "killer", killed[0]), dying_worker.runs(path)
        assert ran_alone(path, "killer", killed[1]), dying_worker.runs(path)
        # The job that shared the pool with the killer ran again, alone.
        again = [label for label in ("first-0", "second-0") if len(starts(path, label)) == 2]
        assert again, dying_worker.runs(path)
        for label in again:
            assert ran_alone(path, label, starts(path, label)[1]), dying_worker.runs(path)
    finally:
        await pool.close()
