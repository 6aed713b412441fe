"""gateway.streaming: a worker thread's writes reach the event loop in order, a few at a time,
and the thread stops when the reader goes."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, BinaryIO

import pytest

from gateway.streaming import END, run_in_thread

CHUNK = 1024


async def test_everything_written_arrives_in_order_after_the_first_item() -> None:
    def produce(first: Any, out: BinaryIO) -> None:
        first("head")
        for i in range(50):
            out.write(bytes([i]) * 700)  # smaller than a chunk: gathered into chunks

    with ThreadPoolExecutor(1) as pool:
        pipe, done = run_in_thread(pool, produce, chunk=CHUNK)
        assert await pipe.get() == "head"
        got = b""
        while (item := await pipe.get()) is not END:
            assert len(item) <= CHUNK
            got += item
        pipe.abandon()
        await done
    assert got == b"".join(bytes([i]) * 700 for i in range(50))


async def test_the_writer_waits_for_the_reader_and_stops_when_it_goes() -> None:
    written = 0
    stopped = threading.Event()

    def produce(first: Any, out: BinaryIO) -> None:
        nonlocal written
        first("head")
        try:
            for _ in range(10_000):
                out.write(b"x" * CHUNK)
                written += 1
        finally:
            stopped.set()

    with ThreadPoolExecutor(1) as pool:
        pipe, done = run_in_thread(pool, produce, depth=3, chunk=CHUNK)
        assert await pipe.get() == "head"
        await pipe.get()
        await asyncio.sleep(0.2)  # room for the writer to run ahead, if it could
        assert written <= 3 + 3, "at most the pipe's depth (and one chunk in hand) ahead"
        pipe.abandon()
        await asyncio.wait_for(done, 2)  # not stuck behind a reader that is gone
    assert stopped.is_set() and written < 10_000


async def test_an_error_is_handed_to_the_reader() -> None:
    def produce(first: Any, out: BinaryIO) -> None:
        raise FileNotFoundError("gone")

    with ThreadPoolExecutor(1) as pool:
        pipe, done = run_in_thread(pool, produce)
        item = await pipe.get()
        pipe.abandon()
        await done
    with pytest.raises(FileNotFoundError):
        raise item
