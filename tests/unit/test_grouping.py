"""Group commit (gateway.grouping): a cancelled writer still settles every caller truthfully."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.grouping import GroupCommit, GroupCommitStopped


class _Engine:
    """Stands in for an AsyncEngine: ``begin()`` yields a connection and counts commits."""

    def __init__(self) -> None:
        self.commits = 0

    @contextlib.asynccontextmanager
    async def begin(self) -> AsyncIterator[Any]:
        yield object()
        self.commits += 1


async def test_items_queued_together_share_one_commit() -> None:
    engine = _Engine()

    async def write(conn: AsyncConnection, items: list[int]) -> list[int]:
        return [i * 2 for i in items]

    group: GroupCommit[int, int] = GroupCommit(cast(AsyncEngine, engine), write, "test")
    assert await asyncio.gather(*(group(i) for i in range(5))) == [0, 2, 4, 6, 8]
    assert engine.commits == 1
    await group.idle()


async def test_cancelling_the_writer_during_a_write() -> None:
    engine = _Engine()
    started = asyncio.Event()
    release = asyncio.Event()
    written: list[list[int]] = []

    async def write(conn: AsyncConnection, items: list[int]) -> list[int]:
        started.set()
        await release.wait()
        written.append(items)
        return [i * 10 for i in items]

    group: GroupCommit[int, int] = GroupCommit(cast(AsyncEngine, engine), write, "test")
    first = asyncio.create_task(group(1))
    await started.wait()  # batch [1] is being written
    queued = asyncio.create_task(group(2))
    await asyncio.sleep(0)
    writer = group._writer
    assert writer is not None
    writer.cancel()
    await asyncio.sleep(0.01)
    # The batch in hand is not cut short: its caller waits for the true outcome...
    assert not first.done()
    release.set()
    assert await first == 10
    assert engine.commits == 1 and written == [[1]]
    # ...and the queued item, never written, is told so at once (not left to the next call).
    with pytest.raises(GroupCommitStopped):
        await asyncio.wait_for(queued, 1)
    with pytest.raises(asyncio.CancelledError):
        await writer
    assert written == [[1]]
    # A later call starts a new writer.
    assert await group(3) == 30
    await group.idle()


async def test_a_failed_batch_reaches_its_callers_and_the_writer_goes_on() -> None:
    engine = _Engine()
    calls = 0

    async def write(conn: AsyncConnection, items: list[int]) -> list[int]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OSError("database away")
        return items

    group: GroupCommit[int, int] = GroupCommit(cast(AsyncEngine, engine), write, "test")
    with pytest.raises(OSError):
        await group(1)
    assert await group(2) == 2
    await group.idle()
