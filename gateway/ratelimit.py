"""Rate limits counted in the database, so every gateway replica shares them.

A fixed window per bucket (``ip:<address>``, ``id:<kind>:<keyed hash>``…): the first request of a
window writes the bucket's row, each further request adds to it, in an upsert (``INSERT ...
SELECT ... ON CONFLICT DO UPDATE ... RETURNING``, on PostgreSQL and on SQLite 3.35+), so
replicas racing on the same bucket agree without a check-then-set. A request over any of its
limits is told how many seconds remain in the longest-waiting window (HTTP ``Retry-After``, RFC
9110 section 10.2.3).

Counting is grouped like the intake's commits: the requests that arrive while one statement is
being written go together in the next one, ONE statement and one short transaction for all their
buckets (a bucket named by several requests is added to once, by their number, and each request
learns the count it made). Rows are written in bucket order, so two replicas' statements sharing
buckets cannot deadlock. On PostgreSQL the transaction commits with ``synchronous_commit = off``:
a crash may forget the last fraction of a second of counts, which only lets a few requests more
through, and no request waits for a WAL flush to be counted.

Old rows would pile up (one per client ever seen). Every ``prune_every`` seconds the replica also
deletes, in a bounded batch, the rows not touched for longer than the longest window (they can no
longer refuse anything); when a batch was full the next statement is followed by another.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.errors import IntakeUnavailable
from gateway.intake import Clock, utcnow
from gateway.storage.schema import UTCDateTime, web_rate_limits

log = logging.getLogger(__name__)

MAX_BUCKET = 160  # the column's length
PRUNE_BATCH = 1000
MAX_GROUP = 500  # requests counted by one statement
_DB_ERRORS = (SQLAlchemyError, OSError, TimeoutError)


@dataclass(frozen=True, slots=True)
class Limit:
    """At most ``requests`` per ``window`` seconds; ``requests`` 0 turns the limit off."""

    requests: int
    window: float

    @property
    def enabled(self) -> bool:
        """False when the limit is 0."""
        return self.requests > 0


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether one request may go on; when not, which bucket refused and ``retry_after`` s."""

    allowed: bool
    hits: int = 0
    limit: int = 0
    retry_after: int = 0
    refused_by: str = ""  # the refusing bucket's prefix ("ip", "id:phone"…), never its value


ALLOWED = Decision(True)


# The group's rows come as arrays (PostgreSQL) or one JSON array (SQLite), so the statement
# text is the same whatever the group's size: compiled and prepared once, not once per size.
_UPSERT_PG = text(
    "INSERT INTO web_rate_limits (bucket, window_start, hits, updated_at) "
    "SELECT b, w, h, :now FROM unnest(CAST(:buckets AS varchar[]), CAST(:starts AS bigint[]), "
    "CAST(:adds AS integer[])) AS t(b, w, h) ORDER BY b "
    "ON CONFLICT (bucket) DO UPDATE SET "
    "hits = CASE WHEN web_rate_limits.window_start = excluded.window_start "
    "THEN web_rate_limits.hits + excluded.hits ELSE excluded.hits END, "
    "window_start = excluded.window_start, updated_at = excluded.updated_at "
    "RETURNING bucket, hits"
).bindparams(bindparam("now", type_=UTCDateTime()))
_UPSERT_SQLITE = text(
    "INSERT INTO web_rate_limits (bucket, window_start, hits, updated_at) "
    "SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), "
    "json_extract(value, '$[2]'), :now FROM json_each(:rows) "
    "WHERE true "  # SQLite's grammar needs a WHERE between INSERT ... SELECT and ON CONFLICT
    "ON CONFLICT (bucket) DO UPDATE SET "
    "hits = CASE WHEN web_rate_limits.window_start = excluded.window_start "
    "THEN web_rate_limits.hits + excluded.hits ELSE excluded.hits END, "
    "window_start = excluded.window_start, updated_at = excluded.updated_at "
    "RETURNING bucket, hits"
).bindparams(bindparam("now", type_=UTCDateTime()))
_ASYNC_COMMIT = text("SET LOCAL synchronous_commit TO OFF")


@dataclass(slots=True)
class _Waiting:
    buckets: dict[str, Limit]
    future: asyncio.Future[Decision] = field(repr=False)


def _window_start(epoch: float, limit: Limit) -> int:
    """The start of the window of ``limit`` that ``epoch`` falls in (seconds)."""
    return int(math.floor(epoch / limit.window) * limit.window)


def _refused(key: str, hits: int, limit: Limit, start: int, epoch: float) -> Decision:
    """The refusal of a request over ``limit`` in the window starting at ``start``: retry when
    that window ends, naming the bucket's kind (:func:`bucket_kind`)."""
    retry = max(1, math.ceil(start + limit.window - epoch))
    return Decision(False, hits, limit.requests, retry, bucket_kind(key))


def bucket_kind(key: str) -> str:
    """What a bucket counts, without its value: ``id:phone`` of ``id:phone:<hash>``, ``ip`` of
    ``ip:2001:db8::7`` (an IPv6 address has colons of its own: cutting at the last one would
    log most of the address)."""
    head, _, rest = key.partition(":")
    return f"{head}:{rest.partition(':')[0]}" if head == "id" else head


class RateLimiter:
    """Counts hits per bucket in ``web_rate_limits``; rows idle longer than ``keep`` are pruned."""

    def __init__(
        self,
        engine: AsyncEngine,
        keep: float,
        clock: Clock = utcnow,
        prune_every: float | None = None,
        prune_batch: int = PRUNE_BATCH,
    ) -> None:
        self._engine = engine
        self._keep = keep
        self._clock = clock
        self._prune_every = max(60.0, keep) if prune_every is None else prune_every
        self._prune_batch = prune_batch
        self._waiting: list[_Waiting] = []
        self._writer: asyncio.Task[None] | None = None
        self._next_prune: datetime | None = None  # None: at the first request

    async def hit(self, buckets: Iterable[tuple[str, Limit]]) -> Decision:
        """Count one request in each bucket; raises IntakeUnavailable when the DB fails."""
        wanted: dict[str, Limit] = {}
        for key, limit in buckets:
            if limit.enabled:
                wanted.setdefault(key[:MAX_BUCKET], limit)
        if not wanted:
            return ALLOWED
        future: asyncio.Future[Decision] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Waiting(wanted, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain(), name="rate-limit-writer")
        return await future

    async def peek(self, key: str, limit: Limit) -> Decision:
        """Whether ``key`` has already reached ``limit`` in its current window, counting
        nothing (for limits counted only on failures); raises IntakeUnavailable when the DB
        fails."""
        if not limit.enabled:
            return ALLOWED
        key = key[:MAX_BUCKET]
        epoch = self._clock().timestamp()
        start = _window_start(epoch, limit)
        query = select(web_rate_limits.c.hits).where(
            web_rate_limits.c.bucket == key, web_rate_limits.c.window_start == start
        )
        try:
            async with self._engine.connect() as conn:
                hits = int((await conn.execute(query)).scalar_one_or_none() or 0)
        except _DB_ERRORS as exc:
            raise IntakeUnavailable(str(exc)) from exc
        if hits < limit.requests:
            return Decision(True, hits, limit.requests)
        return _refused(key, hits, limit, start, epoch)

    async def idle(self) -> None:
        """Wait until nothing is being counted or pruned (tests; shutting down)."""
        while self._writer is not None and not self._writer.done():
            await asyncio.wait([self._writer])

    async def _drain(self) -> None:
        """Count the waiting requests, a group per statement, until none is left."""
        while self._waiting:
            group, self._waiting = self._waiting[:MAX_GROUP], self._waiting[MAX_GROUP:]
            try:
                decisions = await self._count(group)
            except _DB_ERRORS as exc:
                _fail(group, IntakeUnavailable(str(exc)))
                continue
            except BaseException as exc:  # cancelled, or a bug: no request may wait forever
                stranded, self._waiting = group + self._waiting, []
                _fail(stranded, exc if isinstance(exc, Exception) else None)
                raise
            for waiting, decision in zip(group, decisions, strict=True):
                if not waiting.future.done():  # its request may have been cancelled
                    waiting.future.set_result(decision)
            await self._maybe_prune(self._clock())

    async def _count(self, group: list[_Waiting]) -> list[Decision]:
        now = self._clock()
        epoch = now.timestamp()
        limits: dict[str, Limit] = {}
        for waiting in group:
            for key, limit in waiting.buckets.items():
                limits.setdefault(key, limit)
        starts = {key: _window_start(epoch, limit) for key, limit in limits.items()}
        adds = Counter(key for waiting in group for key in waiting.buckets)
        keys = sorted(limits)  # one lock order for every statement (no deadlock)
        postgres = self._engine.dialect.name == "postgresql"
        if postgres:
            params: dict[str, Any] = {
                "buckets": keys,
                "starts": [starts[k] for k in keys],
                "adds": [adds[k] for k in keys],
            }
        else:
            params = {"rows": json.dumps([[k, starts[k], adds[k]] for k in keys])}
        async with self._engine.begin() as conn:
            if postgres:
                await conn.execute(_ASYNC_COMMIT)
            result = await conn.execute(_UPSERT_PG if postgres else _UPSERT_SQLITE,
                                        {**params, "now": now})
            totals = {str(b): int(h) for b, h in result.all()}
        # The requests of the group count in arrival order: the first one made total - n + 1.
        seen = {key: totals[key] - adds[key] for key in limits}
        decisions: list[Decision] = []
        for waiting in group:
            worst = ALLOWED
            for key, limit in waiting.buckets.items():
                seen[key] += 1
                hits = seen[key]
                if hits <= limit.requests:
                    continue
                refused = _refused(key, hits, limit, starts[key], epoch)
                if worst.allowed or refused.retry_after > worst.retry_after:
                    worst = refused
            decisions.append(worst)
        return decisions

    async def prune(self, older_than: datetime, batch: int | None = None) -> int:
        """Delete at most ``batch`` rows not touched since ``older_than``; returns how many."""
        stale = (
            select(web_rate_limits.c.bucket)
            .where(web_rate_limits.c.updated_at < older_than)
            .limit(batch or self._prune_batch)
            .scalar_subquery()
        )
        async with self._engine.begin() as conn:
            result = await conn.execute(
                delete(web_rate_limits).where(web_rate_limits.c.bucket.in_(stale))
            )
        return int(result.rowcount or 0)

    async def _maybe_prune(self, now: datetime) -> None:
        if self._next_prune is not None and now < self._next_prune:
            return
        self._next_prune = now + timedelta(seconds=self._prune_every)
        try:
            deleted = await self.prune(now - timedelta(seconds=self._keep))
        except _DB_ERRORS as exc:  # the limit was counted; cleaning up can wait for next time
            log.warning("rate limit: pruning old rows failed: %s", type(exc).__name__)
            return
        if deleted >= self._prune_batch:
            self._next_prune = now  # more to delete: the next request takes another batch
        if deleted:
            log.debug("rate limit: pruned %s rows", deleted)


def _fail(group: list[_Waiting], error: Exception | None) -> None:
    """Wake every request of ``group`` with ``error`` (None: cancel them)."""
    for waiting in group:
        if waiting.future.done():
            continue
        if error is None:
            waiting.future.cancel()
        else:
            waiting.future.set_exception(error)
