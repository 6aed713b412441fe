"""Published outbox events older than ``outbox.keep_published`` are deleted, on both databases;
pending events, republished ones among them, stay whatever their age."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway import bootstrap
from gateway.metrics import Metrics
from gateway.outbox import prune_every, prune_published, republish
from gateway.settings import DatabaseSettings, Settings
from gateway.storage import migrate
from gateway.storage.database import create_engine
from gateway.storage.schema import outbox
from tests.support import FixedClock, free_port, wait_until, with_section

pytestmark = pytest.mark.integration

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
KEEP = 90 * 86400.0
CUTOFF = NOW - timedelta(seconds=KEEP)
DAY = timedelta(days=1)


def event_row(
    created: datetime, published: datetime | None = None, queued: datetime | None = None
) -> dict[str, Any]:
    return {
        "message_id": str(uuid.uuid4()),
        "event": "created",
        "channel": "web",
        "routing_key": "complaint.created.web",
        "body": "{}",
        "created_at": created,
        "published_at": published,
        "queued_at": queued,
    }


def old_published(n: int, now: datetime = NOW) -> list[dict[str, Any]]:
    """``n`` events committed and published 100 days before ``now``, a second apart."""
    start = now - 100 * DAY
    return [event_row(start + timedelta(seconds=i), start + timedelta(seconds=i + 1))
            for i in range(n)]


async def insert(engine: AsyncEngine, rows: list[dict[str, Any]]) -> None:
    """In id order as given (ids follow commit times, as the intake writes them)."""
    async with engine.begin() as conn:
        for row in rows:
            await conn.execute(outbox.insert().values(row))


async def bulk_insert(engine: AsyncEngine, rows: list[dict[str, Any]]) -> None:
    async with engine.begin() as conn:
        await conn.execute(outbox.insert(), rows)


async def left(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        return set((await conn.execute(select(outbox.c.message_id))).scalars())


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(settings.database)
    yield engine
    await engine.dispose()


def transactions(engine: AsyncEngine) -> list[int]:
    """A list that grows by one at every commit of ``engine`` from now on."""
    commits: list[int] = []
    event.listen(engine.sync_engine, "commit", lambda _conn: commits.append(1))
    return commits


async def test_old_published_events_go_pending_and_requeued_ones_stay(
    engine: AsyncEngine,
) -> None:
    rows = {
        # Never published (a relay that cannot open it): the oldest, first in the walk.
        "pending old": event_row(NOW - 200 * DAY),
        # Queued again by `outbox republish` an hour ago, not yet sent again.
        "requeued old": event_row(NOW - 200 * DAY, queued=NOW - timedelta(hours=1)),
        "published 120 days ago": event_row(NOW - 120 * DAY, NOW - 120 * DAY + timedelta(minutes=1)),
        # Republished two days ago: it counts from its new publication.
        "republished, sent again": event_row(NOW - 110 * DAY, NOW - 2 * DAY, NOW - 2 * DAY),
        "published 91 days ago": event_row(NOW - 95 * DAY, NOW - 91 * DAY),
        "published just before the cutoff": event_row(
            CUTOFF - timedelta(hours=1), CUTOFF - timedelta(seconds=1)),
        "published just after the cutoff": event_row(
            CUTOFF - timedelta(hours=1), CUTOFF + timedelta(seconds=1)),
        "published 10 days ago": event_row(NOW - 10 * DAY, NOW - 10 * DAY),
        "pending new": event_row(NOW - timedelta(minutes=1)),
    }
    await insert(engine, list(rows.values()))
    ids = {name: row["message_id"] for name, row in rows.items()}
    gone = {ids["published 120 days ago"], ids["published 91 days ago"],
            ids["published just before the cutoff"]}

    assert await prune_published(engine, KEEP, NOW, dry_run=True) == 3
    assert await left(engine) == set(ids.values())  # the dry run deleted nothing

    assert await prune_published(engine, KEEP, NOW) == 3
    assert await left(engine) == set(ids.values()) - gone
    assert await prune_published(engine, KEEP, NOW) == 0

    # Whatever their age, pending rows stay: a year on, only the published ones have gone.
    assert await prune_published(engine, KEEP, NOW + 365 * DAY) == 3
    assert await left(engine) == {ids["pending old"], ids["requeued old"], ids["pending new"]}


async def test_republish_reaches_what_was_last_published_within_keep_published(
    engine: AsyncEngine,
) -> None:
    # What contract/asyncapi.yaml tells the routing core to remember a message_id for: at
    # least keep_published after it last received the event. Counted from the commit it would
    # not be enough: a republished event counts from its new publication. One published longer
    # ago, still waiting for the next prune, is not sent again: its id may be forgotten.
    rows = {
        "republished 80 days ago": event_row(NOW - 160 * DAY, NOW - 80 * DAY, NOW - 80 * DAY),
        "published 91 days ago, not pruned yet": event_row(NOW - 91 * DAY, NOW - 91 * DAY),
    }
    await insert(engine, list(rows.values()))
    since = NOW - 200 * DAY

    async def reached(now: datetime) -> int:
        return (await republish(engine, since, None, None, now, dry_run=True, keep=KEEP)).count

    assert await reached(NOW) == 1  # 160 days after its commit, 80 after its publication
    assert (await republish(engine, since, None, None, NOW, dry_run=True)).count == 2  # keep 0
    assert (await republish(engine, since, None, None, NOW, keep=KEEP)).count == 1
    async with engine.begin() as conn:  # a relay publishes them again
        await conn.execute(outbox.update().values(published_at=NOW + timedelta(seconds=1)))
    # Published again: reachable keep_published after that, whatever their commit.
    almost = NOW + timedelta(seconds=KEEP)
    assert await prune_published(engine, KEEP, almost) == 0
    assert await reached(almost) == 2
    # Then pruned, and nothing is left to send again.
    after = almost + timedelta(seconds=2)
    assert await prune_published(engine, KEEP, after) == 2
    assert await reached(after) == 0


async def test_zero_keeps_every_published_event(engine: AsyncEngine) -> None:
    rows = old_published(5) + [event_row(NOW - 1000 * DAY, NOW - 1000 * DAY)]
    await insert(engine, rows)
    assert await prune_published(engine, 0, NOW, dry_run=True) == 0
    assert await prune_published(engine, 0, NOW) == 0
    assert await prune_published(engine, 0, NOW + 10_000 * DAY) == 0
    assert await left(engine) == {r["message_id"] for r in rows}


async def test_more_rows_than_a_batch_go_in_short_transactions(engine: AsyncEngine) -> None:
    old = old_published(250)
    pending = event_row(NOW - 100 * DAY + timedelta(seconds=100))  # among the old ones
    recent = [event_row(NOW - DAY, NOW - DAY) for _ in range(3)]
    await bulk_insert(engine, old[:100] + [pending] + old[100:] + recent)
    stopped = asyncio.Event()
    stopped.set()  # serve is stopping: not one more batch
    assert await prune_published(engine, KEEP, NOW, batch=100, stop=stopped) == 0
    commits = transactions(engine)
    assert await prune_published(engine, KEEP, NOW, batch=100) == 250
    # 254 rows, 100 a transaction: three, each deleting at most its 100 rows.
    assert len(commits) == 3
    assert await left(engine) == {pending["message_id"]} | {r["message_id"] for r in recent}


async def test_the_walk_stops_at_the_events_committed_after_the_cutoff(
    engine: AsyncEngine,
) -> None:
    old = old_published(3)
    recent = [event_row(NOW - DAY, NOW - DAY) for _ in range(500)]
    await bulk_insert(engine, old + recent)
    commits = transactions(engine)
    assert await prune_published(engine, KEEP, NOW, batch=100) == 3
    # The window holding the old rows, then one of rows committed after the cutoff: not the
    # 90 days of events still kept.
    assert len(commits) == 2
    assert len(await left(engine)) == 500


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_two_replicas_pruning_at_once_both_finish_with_the_right_total(
    settings: Settings,
) -> None:
    engines = [create_engine(settings.database) for _ in range(2)]
    try:
        kept = [event_row(NOW - 300 * DAY), event_row(NOW - DAY, NOW - DAY)]
        await bulk_insert(engines[0], old_published(3000) + kept)
        for _ in range(3):  # three rounds of two replicas starting together on the same rows
            counts = await asyncio.gather(
                *(prune_published(e, KEEP, NOW, batch=100) for e in engines)
            )
            if all(counts):
                break
            await bulk_insert(engines[0], old_published(3000))
        assert sum(counts) == 3000
        # Each took rows the other had not locked, instead of one waiting behind the other.
        assert all(counts), f"one prune did all the work: {counts}"
        assert await left(engines[0]) == {r["message_id"] for r in kept}
    finally:
        for e in engines:
            await e.dispose()


async def test_a_failed_prune_is_retried_at_the_next_interval(empty_url: str) -> None:
    # A database without the gateway's tables: every run fails and the task carries on; once
    # it is migrated the next run prunes.
    engine = create_engine(DatabaseSettings(url=empty_url))
    metrics = Metrics()
    stop = asyncio.Event()
    task = asyncio.create_task(
        prune_every(engine, metrics, keep=KEEP, interval=0.05, stop=stop, clock=FixedClock(NOW))
    )
    try:
        failed = metrics.prune_runs.labels("failed")
        await wait_until(lambda: failed._value.get() >= 2, "two runs failed")
        assert not task.done()
        await migrate.upgrade(engine)
        recent = event_row(NOW - DAY, NOW - DAY)
        await insert(engine, [*old_published(5), recent])
        await wait_until(lambda: metrics.pruned._value.get() == 5, "a later run pruned")
        assert metrics.prune_runs.labels("ok")._value.get() >= 1
        assert not task.done()
        assert await left(engine) == {recent["message_id"]}
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await engine.dispose()


async def test_serve_prunes_on_its_own_and_stops_cleanly(settings: Settings) -> None:
    # The relay is off in this replica (another process publishes): serve still prunes.
    served = with_section(
        with_section(settings, "outbox", enabled=False, prune_interval=0.2),
        "http", host="127.0.0.1", port=free_port(),
    )
    now = datetime.now(UTC)
    engine = create_engine(settings.database)
    try:
        recent = event_row(now - DAY, now - DAY)
        await insert(engine, [*old_published(3, now), recent])
        stop = asyncio.Event()
        task = asyncio.create_task(bootstrap.serve(served, stop))
        try:

            async def pruned() -> bool:
                return await left(engine) == {recent["message_id"]}

            await wait_until(pruned, "serve pruned the old events", timeout=20)
            async with aiohttp.ClientSession() as http:
                url = f"http://127.0.0.1:{served.http.port}/metrics"
                lines = (await (await http.get(url)).text()).splitlines()
            assert "lapor_outbox_pruned_total 3.0" in lines
            assert any(line.startswith('lapor_outbox_prune_runs_total{outcome="ok"}')
                       for line in lines)
        finally:
            stop.set()
            await asyncio.wait_for(task, 20)
    finally:
        await engine.dispose()
