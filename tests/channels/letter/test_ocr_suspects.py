"""The OCR pool's suspects (pages that were in the pool when a worker died, read again alone):
one given up by its reader frees the pool at once, and close() during such a run settles
everything and leaves a pool that reads on."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import pytest

from channels.letter.ocr import OcrPool
from tests.channels.letter import dying_worker


def starts(journal: Path, label: str) -> list[float]:
    return [when for who, what, when in dying_worker.runs(journal)
            if who == label and what == "start"]


async def wait_for_start(journal: Path, label: str, count: int, bound_s: float = 60) -> None:
    deadline = time.monotonic() + bound_s
    while len(starts(journal, label)) < count:
        assert time.monotonic() < deadline, dying_worker.runs(journal)
        await asyncio.sleep(0.02)


def job(pool: OcrPool, journal: Path, label: str, seconds: float, die: bool = False) -> Any:
    """A job of a document of its own in ``pool``: sleeps ``seconds`` in a worker (and kills
    it when ``die``), journalled under ``label``; its result, as a future on this loop."""
    return asyncio.ensure_future(pool._submit(
        object(), dying_worker.sleep_or_die, str(journal), label, seconds, *([True] * die)))


async def test_a_suspect_given_up_by_its_reader_frees_the_pool_at_once(
    tmp_path: Path,
) -> None:
    """A page in the pool when a worker died runs again alone: nothing else is handed out
    until it is done. When its reader gives it up meanwhile (its letter failed on another page,
    a request cancelled), the pool takes other jobs at once: a new letter does not wait, every
    worker idle, up to ``timeout_s`` for a page nobody wants."""
    journal = tmp_path / "journal"
    pool = OcrPool(workers=2)
    try:
        await pool.start()
        killer = job(pool, journal, "killer", 0.3, die=True)
        victim = job(pool, journal, "victim", 10.0)
        with pytest.raises(BrokenProcessPool):
            await asyncio.wait_for(killer, 60)
        await wait_for_start(journal, "victim", 2)  # the victim, read again alone
        victim.cancel()  # its reader gives it up
        await asyncio.sleep(0.1)
        began = time.monotonic()
        fresh = await asyncio.wait_for(pool._submit(
            object(), dying_worker.sleep_or_die, str(journal), "fresh", 0.1), 60)
        waited = time.monotonic() - began
        assert fresh == "fresh"
        assert waited < 4.0, f"a new letter waited {waited:.1f} s for a cancelled page"
    finally:
        await pool.close()


async def test_close_while_a_suspect_runs_alone_settles_everything_and_the_pool_reads_on(
    tmp_path: Path,
) -> None:
    """close() while a suspect runs alone waits for it (its result is delivered), cancels the
    job still waiting, leaves nothing alone, running or suspect behind, and the pool reads
    again afterwards."""
    journal = tmp_path / "journal"
    pool = OcrPool(workers=2)
    try:
        await pool.start()
        killer = job(pool, journal, "killer", 0.3, die=True)
        victim = job(pool, journal, "victim", 2.0)
        waiter = job(pool, journal, "waiter", 0.1)
        with pytest.raises(BrokenProcessPool):
            await asyncio.wait_for(killer, 60)
        await wait_for_start(journal, "victim", 2)
        await asyncio.wait_for(pool.close(), 30)
        assert victim.done() and victim.result() == "victim"
        assert waiter.cancelled()
        assert pool._alone is None and pool._running == 0 and not pool._suspects
        again = await asyncio.wait_for(pool._submit(
            object(), dying_worker.sleep_or_die, str(journal), "after", 0.1), 30)
        assert again == "after"
    finally:
        await pool.close()
