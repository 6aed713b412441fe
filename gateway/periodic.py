"""Maintenance that ``serve`` runs now and then (the file store's collection, the outbox's
pruning): one loop for all of them."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable

from prometheus_client import Counter

log = logging.getLogger(__name__)

# The first run comes at a random moment within this many seconds (or the interval, if shorter),
# so that replicas started together seldom run it at the same time.
FIRST_RUN_WITHIN = 3600.0


async def run_every(
    interval: float,
    stop: asyncio.Event,
    job: Callable[[], Awaitable[None]],
    *,
    what: str,
    runs: Counter,
) -> None:
    """Run ``job`` every ``interval`` seconds until ``stop``, the first time at a random moment
    within the first hour (or interval). Each run is counted in ``runs`` by outcome (``ok``,
    ``failed``); a failed one is logged as ``what`` failed and tried again at the next interval:
    the task, and the process, carry on."""
    delay = random.uniform(0, min(interval, FIRST_RUN_WITHIN))
    while not await stopped(stop, delay):
        delay = interval
        try:
            await job()
        except Exception as exc:  # the database, a key that does not open: next time
            runs.labels("failed").inc()
            log.warning("%s failed: %s", what, type(exc).__name__, extra={"error": str(exc)[:300]})
            continue
        runs.labels("ok").inc()


async def stopped(stop: asyncio.Event, seconds: float) -> bool:
    """Wait ``seconds`` or until ``stop``; whether it is set."""
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        return False
    return True
