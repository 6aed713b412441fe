"""Group commit for small writes: calls that arrive while one transaction is being written go
together in the next one.

A commit is the expensive part of a small write (SQLite has one writer; PostgreSQL flushes its
WAL per commit), and a burst (an SMS gateway delivering hundreds of messages and their delivery
reports at once) would otherwise queue for the pool one transaction each. Every caller still
hears back only after the commit that holds its item, or gets the exception that stopped it.
The intake port has its own, richer version of the same idea (:mod:`gateway.intake`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

T = TypeVar("T")
R = TypeVar("R")

# Writes a batch in the given transaction; returns one result per item, in order.
BatchWriter = Callable[[AsyncConnection, list[T]], Awaitable[list[R]]]


async def to_the_end(work: Coroutine[Any, Any, None], name: str) -> None:
    """Run ``work`` (a batch's transaction) in a task of its own that a cancellation of the
    caller does not reach: cut short, a transaction whose COMMIT the database may already have
    carried out would be reported as not done. The caller, cancelled, still waits for it to end
    (``work`` settles its own senders with the true outcome), then is cancelled."""
    task = asyncio.create_task(work, name=name)
    try:
        await asyncio.shield(task)
    except BaseException:
        while not task.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait({task})
        raise


class GroupCommitStopped(ConnectionError):
    """The writer was stopped (cancelled) before this item was written: nothing of it was
    committed, and the caller should retry. A ``ConnectionError``, so callers that map a
    database they cannot reach to "try again" treat it the same way."""


class GroupCommit(Generic[T, R]):
    """``await group(item)``: ``item`` is written with whatever else is waiting, in one commit."""

    def __init__(
        self, engine: AsyncEngine, write: BatchWriter[T, R], name: str, max_batch: int = 200
    ) -> None:
        self._engine = engine
        self._write = write
        self._name = name
        self._max_batch = max_batch
        self._pending: deque[tuple[T, asyncio.Future[R]]] = deque()
        self._writer: asyncio.Task[None] | None = None

    async def __call__(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain(), name=self._name)
        return await future

    async def idle(self) -> None:
        """Wait until no batch is being written (before the engine's pool is closed)."""
        while self._writer is not None and not self._writer.done():
            await asyncio.wait({self._writer})

    async def _drain(self) -> None:
        # The loop ends in the same step that saw the queue empty (no await after the check),
        # so an item queued afterwards always finds this task done and starts a new one.
        while self._pending:
            count = min(len(self._pending), self._max_batch)
            batch = [self._pending.popleft() for _ in range(count)]
            try:
                await to_the_end(self._write_batch(batch), f"{self._name}-commit")
            except BaseException:  # cancelled: never leave a caller waiting
                # The batch in hand ended as it would have and settled its callers; the items
                # still queued were never written: they are told so at once instead of waiting
                # for the next call to start a writer.
                stopped = GroupCommitStopped(f"{self._name} stopped")
                for _, future in [*batch, *self._pending]:
                    if not future.done():
                        future.set_exception(stopped)
                self._pending.clear()
                raise

    async def _write_batch(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        """Write ``batch`` in one transaction and settle each of its callers, whatever happens."""
        try:
            async with self._engine.begin() as conn:
                results = await self._write(conn, [item for item, _ in batch])
        except BaseException as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():  # the caller went away (its request was cancelled)
                future.set_result(result)
