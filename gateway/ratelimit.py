"""Per-client rate limits counted in the database, so every gateway replica shares them.

A fixed window per ``(scope, client)``: the first request of a window writes its row with one
hit, each further request adds one, in ONE upsert (``INSERT ... ON CONFLICT DO UPDATE ...
RETURNING``, on PostgreSQL and on SQLite 3.35+), so replicas racing on the same client agree
without a check-then-set. A request over the limit is told how many seconds remain in the window
(HTTP ``Retry-After``, RFC 9110 section 10.2.3).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.errors import IntakeUnavailable
from gateway.intake import Clock, utcnow
from gateway.storage.schema import web_rate_limits

_MAX_BUCKET = 160


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether one request may go on; ``retry_after`` (seconds) when it may not."""

    allowed: bool
    hits: int
    limit: int
    retry_after: int = 0


class RateLimiter:
    """``limit`` requests per ``window`` seconds per bucket; ``limit`` 0 turns it off."""

    def __init__(
        self, engine: AsyncEngine, limit: int, window: float, clock: Clock = utcnow
    ) -> None:
        self._engine = engine
        self._limit = limit
        self._window = window
        self._clock = clock

    @property
    def enabled(self) -> bool:
        """False when the limit is 0."""
        return self._limit > 0

    async def hit(self, scope: str, client: str) -> Decision:
        """Count one request of ``client`` in ``scope``; raises IntakeUnavailable on DB failure."""
        if not self.enabled:
            return Decision(True, 0, 0)
        now = self._clock()
        start = int(math.floor(now.timestamp() / self._window) * self._window)
        bucket = f"{scope}:{client}"[:_MAX_BUCKET]
        insert = (
            postgresql.insert(web_rate_limits)
            if self._engine.dialect.name == "postgresql"
            else sqlite.insert(web_rate_limits)
        )
        stmt = insert.values(bucket=bucket, window_start=start, hits=1, updated_at=now)
        same_window = web_rate_limits.c.window_start == stmt.excluded.window_start
        upsert = stmt.on_conflict_do_update(
            index_elements=[web_rate_limits.c.bucket],
            set_={
                "hits": case((same_window, web_rate_limits.c.hits + 1), else_=1),
                "window_start": stmt.excluded.window_start,
                "updated_at": stmt.excluded.updated_at,
            },
        ).returning(web_rate_limits.c.hits)
        try:
            async with self._engine.begin() as conn:
                hits = int((await conn.execute(upsert)).scalar_one())
        except (SQLAlchemyError, OSError, TimeoutError) as exc:
            raise IntakeUnavailable(str(exc)) from exc
        if hits <= self._limit:
            return Decision(True, hits, self._limit)
        retry = max(1, math.ceil(start + self._window - now.timestamp()))
        return Decision(False, hits, self._limit, retry)

    async def prune(self, older_than: datetime) -> int:
        """Delete rows not touched since ``older_than``; returns how many."""
        async with self._engine.begin() as conn:
            result = await conn.execute(
                delete(web_rate_limits).where(web_rate_limits.c.updated_at < older_than)
            )
        return int(result.rowcount or 0)
