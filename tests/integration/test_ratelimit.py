"""gateway.ratelimit on the real databases: fixed windows, several buckets in one statement,
Retry-After from the window, concurrent hits that agree, and old rows pruned as it goes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from gateway.errors import IntakeUnavailable
from gateway.ratelimit import Limit, RateLimiter
from gateway.settings import Settings
from gateway.storage.database import create_engine
from gateway.storage.schema import web_rate_limits
from tests.support import FixedClock

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 23, 8, 0, 15, tzinfo=UTC)  # 15 s into a 60 s window


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(settings.database)
    yield eng
    await eng.dispose()


Limiters = Callable[..., RateLimiter]


@pytest.fixture
async def limiters(engine: AsyncEngine) -> AsyncIterator[Limiters]:
    """``limiters(keep=..., ...)``: a RateLimiter on ``engine``. After the test each one finishes
    what it is still writing before ``engine`` is disposed: a prune runs after the answer it
    follows, so a test can end while it still holds a pooled connection, and disposing the
    pool then leaves that connection open (garbage-collected, unclosed, in a later test)."""
    made: list[RateLimiter] = []

    def make(**kwargs: Any) -> RateLimiter:
        made.append(RateLimiter(engine, **kwargs))
        return made[-1]

    yield make
    for limiter in made:
        await limiter.idle()


async def rows(engine: AsyncEngine) -> dict[str, int]:
    async with engine.connect() as conn:
        found = await conn.execute(select(web_rate_limits.c.bucket, web_rate_limits.c.hits))
        return {b: h for b, h in found.all()}


async def test_fixed_window_and_retry_after(engine: AsyncEngine, limiters: Limiters) -> None:
    clock = FixedClock(T0)
    limiter = limiters(keep=60, clock=clock)
    per_minute = Limit(2, 60)
    assert (await limiter.hit([("ip:a", per_minute)])).allowed
    assert (await limiter.hit([("ip:a", per_minute)])).allowed
    refused = await limiter.hit([("ip:a", per_minute)])
    assert not refused.allowed and refused.retry_after == 45  # the window ends at 08:01:00
    assert (refused.hits, refused.limit, refused.refused_by) == (3, 2, "ip")
    clock.now = T0 + timedelta(seconds=45)  # the next window: counting starts again
    assert (await limiter.hit([("ip:a", per_minute)])).allowed
    assert (await rows(engine))["ip:a"] == 1


async def test_all_buckets_of_a_request_count_in_one_go_and_the_longest_wait_wins(
    engine: AsyncEngine, limiters: Limiters
) -> None:
    limiter = limiters(keep=3600, clock=FixedClock(T0))
    ip, ident = Limit(5, 60), Limit(1, 3600)
    first = await limiter.hit([("ip:a", ip), ("id:phone:h1", ident), ("id:email:h2", ident)])
    assert first.allowed
    second = await limiter.hit([("ip:b", ip), ("id:email:h2", ident)])
    assert not second.allowed and second.refused_by == "id:email"
    assert second.retry_after == 3600 - 15 and second.limit == 1
    assert await rows(engine) == {"ip:a": 1, "id:phone:h1": 1, "id:email:h2": 2, "ip:b": 1}
    # An IPv6 address is no kind: its groups were logged as one ("ip:2001:db8:").
    v6 = Limit(1, 60)
    assert (await limiter.hit([("ip:2001:db8::7", v6)])).allowed
    assert (await limiter.hit([("ip:2001:db8::7", v6)])).refused_by == "ip"
    assert (await limiter.hit([("staff-login:2001:db8::7", v6)])).allowed
    assert (await limiter.hit([("staff-login:2001:db8::7", v6)])).refused_by == "staff-login"
    # A limit of 0 is off: nothing is counted, nothing written.
    assert (await limiter.hit([("ip:c", Limit(0, 60))])).allowed
    assert "ip:c" not in await rows(engine)


async def test_concurrent_hits_on_shared_buckets_agree(
    engine: AsyncEngine, limiters: Limiters
) -> None:
    # Grouped into few statements, each request still sees the count it made.
    limiter = limiters(keep=60, clock=FixedClock(T0))
    limit = Limit(10, 60)

    async def one(i: int) -> bool:
        # Every request shares "ip:proxy"; the buckets come in different orders.
        buckets = [("ip:proxy", limit), (f"id:phone:{i % 3}", Limit(100, 60))]
        return (await limiter.hit(buckets if i % 2 else buckets[::-1])).allowed

    results = await asyncio.gather(*(one(i) for i in range(25)))
    assert sum(results) == 10  # exactly the limit got through, no deadlock, no lost update
    assert (await rows(engine))["ip:proxy"] == 25


async def test_rows_older_than_the_longest_window_are_pruned_as_it_goes(
    engine: AsyncEngine, limiters: Limiters
) -> None:
    clock = FixedClock(T0)
    limiter = limiters(keep=3600, clock=clock, prune_every=600, prune_batch=2)
    old = T0 - timedelta(hours=2)
    async with engine.begin() as conn:
        await conn.execute(insert(web_rate_limits), [
            {"bucket": f"ip:old{i}", "window_start": 0, "hits": 1, "updated_at": old}
            for i in range(5)
        ] + [{"bucket": "ip:recent", "window_start": 0, "hits": 1,
              "updated_at": T0 - timedelta(minutes=30)}])

    async def count() -> int:
        async with engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(web_rate_limits)))
                       .scalar_one())

    async def hit(bucket: str) -> None:
        assert (await limiter.hit([(bucket, Limit(5, 60))])).allowed
        await limiter.idle()  # pruning runs after the answer, off the request's path

    await hit("ip:a")  # the first statement of the process prunes: a batch of 2
    assert await count() == 5
    await hit("ip:a")  # the batch was full: the next statement is followed by 2 more
    await hit("ip:a")
    await hit("ip:a")  # 1 left (< batch): pruning rests until prune_every has passed
    assert set(await rows(engine)) == {"ip:recent", "ip:a"}
    clock.now = T0 + timedelta(minutes=5)
    await hit("ip:b")
    assert set(await rows(engine)) == {"ip:recent", "ip:a", "ip:b"}  # not due, not old
    clock.now = T0 + timedelta(minutes=40)  # "ip:recent" is now 70 min old, prune is due
    await hit("ip:b")
    assert set(await rows(engine)) == {"ip:a", "ip:b"}


async def test_a_database_failure_is_intake_unavailable_and_the_next_request_is_counted(
    tmp_path: Path,
) -> None:
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")
    limiter = RateLimiter(engine, keep=60, clock=FixedClock(T0))
    try:
        results = await asyncio.gather(
            *(limiter.hit([(f"ip:{i}", Limit(5, 60))]) for i in range(3)),
            return_exceptions=True,
        )
        assert all(isinstance(r, IntakeUnavailable) for r in results)  # no table: 503 upstream
        async with engine.begin() as conn:
            await conn.run_sync(web_rate_limits.create)
        assert (await limiter.hit([("ip:a", Limit(5, 60))])).hits == 0  # allowed: counted
        assert await rows(engine) == {"ip:a": 1}
    finally:
        await limiter.idle()  # the prune after that answer, before the pool closes
        await engine.dispose()
