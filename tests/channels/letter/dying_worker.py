"""Jobs for the OCR pool's worker processes that take their worker down on purpose.

The pool's workers are spawned (a fresh interpreter each): a job's function travels by name, so
these live in a module the workers can import. Each run writes lines to a journal file (who,
when it started, when it ended or ended its worker), which tells the tests how often a page was
tried and whether anything else was in the pool with it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from channels.letter.ocr import PageResult

# The bytes at the end of a document whose first page kills its worker.
MARKER = b"lapor-test-worker-dies-here"


def _journal(path: str, *words: object) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(" ".join(str(w) for w in words) + "\n")


def _await_company(journal: str, label: str, bound_s: float = 10.0) -> None:
    """On ``label``'s first run, wait until another run is going on in the pool (a worker busy
    elsewhere may take a moment to start its job on a loaded machine)."""
    lines = runs(Path(journal))
    if [who for who, what, _ in lines if what == "start"].count(label) > 1:
        return
    deadline = time.monotonic() + bound_s
    while time.monotonic() < deadline:
        last = {who: what for who, what, _ in runs(Path(journal))}
        if any(what == "start" and who != label for who, what in last.items()):
            return
        time.sleep(0.01)


def sleep_or_die(journal: str, label: str, seconds: float, die: bool = False) -> str:
    """Wait ``seconds`` (a page being read) and give ``label`` back; with ``die`` the worker
    process ends abruptly instead (a decoder crashing, a kill for memory), the first time once
    another job is running."""
    _journal(journal, label, "start", time.monotonic())
    if die:
        _await_company(journal, label)
    time.sleep(seconds)
    if die:
        _journal(journal, label, "dies", time.monotonic())
        os._exit(3)
    _journal(journal, label, "end", time.monotonic())
    return label


def read_page(
    data: bytes, kind: str, index: int, language: str = "ind", timeout_s: float = 120.0
) -> PageResult:
    """Stands in for :func:`channels.letter.ocr.read_page`: a page takes a moment; the first
    page of a document ending with ``MARKER`` kills its worker. The journal is the
    ``LAPOR_TEST_JOURNAL`` file when set (the workers inherit the environment); the first
    time, the deadly page waits for another page to be read with it."""
    deadly = data.endswith(MARKER) and index == 0
    journal = os.environ.get("LAPOR_TEST_JOURNAL")
    label = f"{'deadly' if data.endswith(MARKER) else 'innocent'}-{index}"
    if journal:
        _journal(journal, label, "start", time.monotonic())
        if deadly:
            _await_company(journal, label)
    time.sleep(0.25 if deadly else 0.8)
    if deadly:
        if journal:
            _journal(journal, label, "dies", time.monotonic())
        os._exit(3)
    if journal:
        _journal(journal, label, "end", time.monotonic())
    return PageResult(
        number=index + 1, text=f"halaman {index + 1}", confidence=90.0, source="ocr",
        image_png=b"",
    )


def runs(journal: Path) -> list[tuple[str, str, float]]:
    """The journal's lines: (label, ``start``, ``end`` or ``dies``, monotonic time)."""
    if not journal.exists():
        return []
    out = []
    for line in journal.read_text(encoding="utf-8").splitlines():
        label, what, when = line.split()
        out.append((label, what, float(when)))
    return out


def intervals(journal: Path) -> list[tuple[str, float, float]]:
    """Each run as (label, start, end). A run that neither ended nor died was stopped with the
    pool, when a worker died: it ends then (with a little time for the stop)."""
    lines = runs(journal)
    deaths = sorted(when for _, what, when in lines if what == "dies")
    out = []
    for i, (label, what, start) in enumerate(lines):
        if what != "start":
            continue
        own = next(((w, when) for who, w, when in lines[i + 1:] if who == label), None)
        if own is not None and own[0] != "start":
            out.append((label, start, own[1]))
        else:
            end = next((when for when in deaths if when > start), float("inf"))
            out.append((label, start, end + 0.05))
    return out
