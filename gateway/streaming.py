"""What a blocking function writes in a worker thread, handed to the event loop chunk by chunk.

Serving a stored file reads it, decrypts it and (for a PDF) writes it anew through qpdf: blocking
work that belongs in a thread, with output that should not be gathered whole before it is sent.
:func:`run_in_thread` runs such a function with a writable file whose chunks go through a
:class:`Pipe` of a few chunks' depth: the thread waits while the client is slow to read (so at
most ``depth`` chunks are in memory), and stops at its next write once the reader has gone
(:meth:`Pipe.abandon`), so a client that disconnects never leaves a thread blocked behind it.

The function's first item may be anything (the media type, the length); the rest are ``bytes``;
the end is :data:`END`, or the exception the function raised.
"""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any, BinaryIO, cast

END = object()
_WAIT = 0.25  # seconds between looks at whether the reader has gone


class Abandoned(Exception):
    """The reading side has gone; the writer stops."""


class Pipe:
    """Items from one worker thread to one coroutine, at most ``depth`` waiting at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop, depth: int = 4) -> None:
        self._loop = loop
        self._items: asyncio.Queue[Any] = asyncio.Queue()
        self._room = threading.Semaphore(depth)
        self._abandoned = threading.Event()

    def put(self, item: Any) -> None:
        """Hand ``item`` over (in the worker thread); waits while the pipe is full."""
        while not self._room.acquire(timeout=_WAIT):
            if self._abandoned.is_set():
                raise Abandoned
        if self._abandoned.is_set():
            raise Abandoned
        try:
            self._loop.call_soon_threadsafe(self._items.put_nowait, item)
        except RuntimeError:  # the loop is closed
            raise Abandoned from None

    async def get(self) -> Any:
        """The next item (in the event loop)."""
        item = await self._items.get()
        self._room.release()
        return item

    def abandon(self) -> None:
        """The reader is done: the writer's next put raises :class:`Abandoned`."""
        self._abandoned.set()


class _PipeWriter(io.RawIOBase):
    def __init__(self, pipe: Pipe) -> None:
        super().__init__()
        self._pipe = pipe

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        self._pipe.put(bytes(data))
        return len(data)


Produce = Callable[[Callable[[Any], None], BinaryIO], None]


def run_in_thread(
    executor: Executor, produce: Produce, depth: int = 4, chunk: int = 64 * 1024
) -> tuple[Pipe, asyncio.Future[None]]:
    """Start ``produce(first, out)`` in ``executor``: ``first(item)`` sends the first item,
    ``out`` is a buffered file whose writes reach the pipe in chunks of ``chunk`` bytes. The
    caller reads the pipe and calls :meth:`Pipe.abandon` when it stops reading, in any case."""
    loop = asyncio.get_running_loop()
    pipe = Pipe(loop, depth)

    def work() -> None:
        try:
            with io.BufferedWriter(_PipeWriter(pipe), buffer_size=chunk) as out:  # type: ignore[type-var]
                produce(pipe.put, cast(BinaryIO, out))
            pipe.put(END)
        except Abandoned:
            pass
        except Exception as exc:  # handed to the reader, whose answer depends on it
            try:
                pipe.put(exc)
            except Abandoned:
                pass

    return pipe, loop.run_in_executor(executor, work)
