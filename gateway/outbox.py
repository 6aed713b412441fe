"""The outbox relay: publishes committed events to RabbitMQ, in order, exactly as stored.

Each loop claims a batch of unpublished rows (oldest first), publishes them with publisher
confirms and ``mandatory`` set, waits for the confirms of the whole batch together, and marks the
confirmed rows published. Claiming is a short transaction that stamps the rows with this relay's
name and a lease (``claim_expires``); on PostgreSQL the candidate rows are locked with ``FOR
UPDATE SKIP LOCKED``, so several replicas share the outbox without publishing a row twice in the
normal case. A relay that dies mid-batch leaves rows whose lease runs out; another relay then
publishes them again with the same ``message_id``, which consumers deduplicate on (at-least-once).

A relay running in the intake's own process takes new rows without claiming them again: while
it is caught up (its last claim found the outbox drained), the intake writes each event row
already leased to it (:meth:`OutboxRelay.lease`) and, after the commit, hands the rows over in
memory (:meth:`OutboxRelay.hand_over`). That saves the claim transaction, and on PostgreSQL an
update of every row. The lease is the same as a claim's, so a process that dies with rows in
hand leaves them to another relay once the lease runs out. On any failure the relay releases
what it holds and goes back to claiming from the table, oldest first.

While the broker is unreachable the rows simply wait: intake keeps committing, the relay retries
with exponential back-off, and ``/readyz`` and the metrics show the lag. Rows the broker refuses
(returned for want of a queue bound to their key, or nacked) while it confirms the others of the
batch are the broker's answer about those rows, not a sign it is away: they rest a few seconds,
pending, and the relay goes on at full speed, so that one row cannot throttle the whole outbox.

Published rows are kept ``outbox.keep_published`` seconds, for :func:`republish`, then deleted
(:func:`prune_published`, run by ``serve`` every ``outbox.prune_interval``).

An event no relay can open (damaged, or sealed under a data key no replica has any more) would
stay pending for ever, given back at each batch. The operator lists them
(:func:`stuck_events`, ``outbox unopenable``), with the complaint's tracking ID to tell the
routing core which complaints never reached it, and sets them aside (:func:`set_aside`): each
moves, in a transaction of its own, to the table ``outbox_set_aside``, out of the relays' way.
Nothing is lost: :func:`restore` puts one back, pending, with its ``message_id`` and body (once
the key that sealed it is among the previous data keys).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractConnection,
    AbstractExchange,
    AbstractQueue,
    DeliveryMode,
    ExchangeType,
)
from cryptography.exceptions import InvalidTag
from sqlalchemy import and_, case, delete, func, insert, or_, select, text, update
from sqlalchemy.engine import Row
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway import contract, periodic, sealing
from gateway.crypto import Keys
from gateway.domain import Event
from gateway.ids import worker_name
from gateway.intake import Clock, utcnow
from gateway.metrics import Metrics
from gateway.settings import BrokerSettings, OutboxSettings
from gateway.storage.schema import UTCDateTime, complaints, outbox, outbox_set_aside

log = logging.getLogger(__name__)


# The reason (and the last_error prefix) of events a relay cannot open.
UNOPENABLE = "data-key"

@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One claimed event (``id`` is None for a row handed over by the intake)."""

    id: int | None
    message_id: str
    event: str
    channel: str
    routing_key: str
    body: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class OutboxStatus:
    """How far publication is behind, for ``outbox status`` and ``/readyz``."""

    pending: int
    oldest_created_at: datetime | None
    published: int | None  # None: not counted (see outbox_status)
    by_channel: dict[str, tuple[int, datetime]]
    # Pending events a relay gave back because it could not open them (another data key, or
    # damaged): counted apart, not in the lag (see outbox_status).
    unopenable: int = 0
    # Events an operator set aside (``outbox set-aside``); None: not counted.
    set_aside: int | None = None

    def lag_seconds(self, now: datetime) -> float:
        """Age of the oldest unpublished event (0 when none wait)."""
        if self.oldest_created_at is None:
            return 0.0
        return max(0.0, (now - self.oldest_created_at).total_seconds())


async def outbox_status(
    engine: AsyncEngine, count_published: bool = False, count_set_aside: bool = False
) -> OutboxStatus:
    """Count the pending events (the partial index on pending rows: cheap however large the
    table grows), and with ``count_published`` the published ones too, which reads every row of
    the table: for the command line, never for ``/readyz`` or ``/metrics``, whose time limit a
    table of millions of rows would pass. ``count_set_aside`` counts the events set aside
    (:func:`set_aside`) as well.

    An event a relay could not open is counted as ``unopenable`` and left out of the lag: it
    waits for a relay holding its key (or an operator to set it aside, :func:`set_aside`, when
    its key is gone or it is damaged), which the relay's ``data-key`` errors and their alert
    report; it must not take every replica out of the load balancer through ``/readyz`` while
    every other event goes out.
    """
    given_back = outbox.c.last_error.like(f"{UNOPENABLE}:%")
    pending = outbox.c.published_at.is_(None)
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                select(
                    outbox.c.channel,
                    func.count(),
                    # A republished event waits since it was queued again, not since its commit.
                    func.min(
                        func.coalesce(outbox.c.queued_at, outbox.c.created_at),
                        type_=UTCDateTime(),
                    ),
                )
                .where(pending, or_(outbox.c.last_error.is_(None), ~given_back))
                .group_by(outbox.c.channel)
            )
        ).all()
        unopenable = (
            await conn.execute(select(func.count()).select_from(outbox).where(pending, given_back))
        ).scalar_one()
        published = (
            (await conn.execute(select(func.count()).select_from(outbox).where(~pending)))
            .scalar_one()
            if count_published
            else None
        )
        set_aside_count = (
            (await conn.execute(select(func.count()).select_from(outbox_set_aside))).scalar_one()
            if count_set_aside
            else None
        )
    by_channel = {r[0]: (int(r[1]), r[2]) for r in rows}
    oldest = min((v[1] for v in by_channel.values()), default=None)
    return OutboxStatus(
        pending=sum(v[0] for v in by_channel.values()),
        oldest_created_at=oldest,
        published=None if published is None else int(published),
        by_channel=by_channel,
        unopenable=int(unopenable),
        set_aside=None if set_aside_count is None else int(set_aside_count),
    )


async def declare_topology(channel: AbstractChannel, settings: BrokerSettings) -> AbstractExchange:
    """Declare the exchange (always) and the routing core's default queue (unless disabled)."""
    exchange = await channel.declare_exchange(
        settings.exchange, ExchangeType.TOPIC, durable=True
    )
    if settings.declare_queue:
        await declare_quorum_queue(
            channel,
            exchange,
            contract.ROUTING_KEY_PATTERN,
            settings.queue,
            settings.dead_letter_exchange,
            settings.dead_letter_queue,
        )
    return exchange


async def declare_quorum_queue(
    channel: AbstractChannel,
    exchange: AbstractExchange,
    routing_key: str,
    queue: str,
    dead_letter_exchange: str,
    dead_letter_queue: str,
    at_least_once: bool = False,
) -> AbstractQueue:
    """A durable quorum queue bound to ``exchange`` with ``routing_key``, dead-lettering to the
    fanout exchange ``dead_letter_exchange`` and its quorum queue ``dead_letter_queue``: exactly
    the arguments contract/asyncapi.yaml gives (a queue declared with others is refused).
    ``at_least_once``: dead-lettering waits for the dead-letter queue's confirm (RabbitMQ's
    default for quorum queues is at most once: a message lost if that queue cannot take it)."""
    dlx = await channel.declare_exchange(dead_letter_exchange, ExchangeType.FANOUT, durable=True)
    dead = await channel.declare_queue(
        dead_letter_queue, durable=True, arguments={"x-queue-type": "quorum"}
    )
    await dead.bind(dlx)
    arguments: dict[str, Any] = {
        "x-queue-type": "quorum",
        "x-dead-letter-exchange": dead_letter_exchange,
    }
    if at_least_once:  # needs reject-publish overflow
        arguments |= {"x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish"}
    declared = await channel.declare_queue(queue, durable=True, arguments=arguments)
    await declared.bind(exchange, routing_key=routing_key)
    return declared


class OutboxRelay:
    """Moves outbox rows to RabbitMQ. Run one per replica; they share the work safely."""

    def __init__(
        self,
        engine: AsyncEngine,
        broker: BrokerSettings,
        settings: OutboxSettings,
        metrics: Metrics,
        keys: Keys,
        clock: Clock = utcnow,
        name: str | None = None,
    ) -> None:
        self._engine = engine
        self._keys = keys  # event bodies are stored sealed (gateway.sealing)
        self._broker = broker
        self._settings = settings
        self._metrics = metrics
        self._clock = clock
        self.name = name or worker_name()
        self._connection: AbstractConnection | None = None
        self._channel: AbstractChannel | None = None
        self._exchange: AbstractExchange | None = None
        self._connecting = asyncio.Lock()
        self._postgres = engine.dialect.name == "postgresql"
        self._wakeup = asyncio.Event()
        self.last_error: str | None = None
        # Rows the intake of this process committed already leased to this relay, with the end
        # of their lease.
        self._handed: deque[tuple[OutboxRow, datetime]] = deque()
        self._caught_up = False
        self._last_claim = 0.0
        # This process committed event rows without a lease (see wake): claim before publishing
        # anything handed over after them.
        self._unclaimed = False

    def lease(self) -> tuple[str, datetime] | None:
        """(owner, expiry) for event rows about to be committed in this process, when this
        relay will take them from :meth:`hand_over`; None while it claims from the table."""
        if not self._caught_up or not self.connected:
            return None
        if self._settings.claim_timeout <= _LEASE_MARGIN:
            # A lease that would end before a publication could be confirmed: publish_batch
            # drops such rows from its hands, and they would wait in the table until it ended.
            return None
        if len(self._handed) >= _HANDED_BATCHES * self._settings.batch_size:
            # Publishing lags behind the intake: the rows wait in the table (claimed by whoever
            # is free, this relay too) rather than in this process's memory.
            return None
        return self.name, self._clock() + timedelta(seconds=self._settings.claim_timeout)

    def hand_over(self, rows: list[dict[str, Any]]) -> None:
        """Rows committed with :meth:`lease`'s lease, their event JSON in the clear: publish them
        without claiming them."""
        self._handed.extend(
            (
                OutboxRow(
                    None,
                    r["message_id"],
                    r["event"],
                    r["channel"],
                    r["routing_key"],
                    r["body"],
                    r["created_at"],
                ),
                r["claim_expires"],
            )
            for r in rows
        )
        self._wakeup.set()

    def wake(self) -> None:
        """Look at the outbox now (called after an intake commit in the same process).

        The intake calls it for event rows it committed without a lease (:meth:`lease` said
        None: the relay was catching up, or had enough in hand): they wait in the table, so the
        next batch claims from it, and rows handed over after them go out after them.
        """
        self._unclaimed = True
        self._wakeup.set()

    @property
    def _refused_rest(self) -> float:
        """Seconds a row the broker refused rests: never longer than the relay's own back-off
        would have made it wait."""
        return min(_REFUSED_REST, self._settings.backoff_max)

    @property
    def connected(self) -> bool:
        """True while the relay holds an open channel to the broker."""
        return (
            self._connection is not None
            and not self._connection.is_closed
            and self._channel is not None
            and not self._channel.is_closed
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Publish until ``stop`` is set, backing off while the broker or database fails."""
        delay = self._settings.backoff_initial
        try:
            while not stop.is_set():
                try:
                    try:
                        published = await self.publish_batch()
                    except _RelayFailure:
                        raise
                    except Exception as exc:
                        # Not foreseen (a bug, a library's surprise): the relay must not die
                        # silently while the intake goes on filling the outbox.
                        log.exception("outbox relay: unexpected error", extra={"relay": self.name})
                        raise _RelayFailure("internal", type(exc).__name__) from exc
                except _RelayFailure as exc:
                    self._caught_up = False
                    self._metrics.relay_errors.labels(exc.reason).inc()
                    log.warning(
                        "outbox relay failed, retrying in %.1fs",
                        delay,
                        extra={"reason": exc.reason, "error": str(exc)[:300], "relay": self.name},
                    )
                    if exc.reason not in ("database", UNOPENABLE):
                        # The broker's trouble (or an unforeseen one): a new connection next.
                        # A database failure, or events this process cannot open, leave the
                        # broker's channel as it was: its gauge and /readyz's `broker` keep
                        # telling the broker's own state.
                        self.last_error = str(exc)
                        await self._close()
                    await periodic.stopped(stop, delay)
                    delay = min(delay * 2, self._settings.backoff_max)
                    continue
                delay = self._settings.backoff_initial
                self.last_error = None
                if published == 0:
                    # Sleep until this process commits something or the poll interval passes
                    # (rows committed by other replicas are seen at the next poll).
                    await _wait_any(stop, self._wakeup, self._settings.poll_interval)
                    self._wakeup.clear()
        finally:
            await self.close()

    async def close(self) -> None:
        """Give back the rows in hand and close the broker connection: what :meth:`run` does
        when it stops, for a caller that drove :meth:`publish_batch` itself."""
        try:
            await self._give_back()
        except _RelayFailure:
            log.warning(
                "rows in hand not released; another relay takes them when their lease ends",
                extra={"relay": self.name},
            )
        await self._close()

    async def _give_back(self) -> None:
        """Release the rows in hand to the table, to be claimed again in their order."""
        stale = [row for row, _ in self._handed]
        self._handed.clear()
        self._caught_up = False
        if stale:
            await self._finish([], stale, None)

    async def publish_batch(self) -> int:
        """Claim, publish and confirm one batch; return how many rows were confirmed."""
        if self._handed and not self._caught_up:
            # Handed over while this relay was failing or catching up: they go back to the
            # table and out in their order (also while the broker is away, so that another
            # replica's relay may take them).
            await self._give_back()
        exchange = await self._ensure_exchange()
        # While caught up, rows come from the intake's hands; the table is still read every
        # poll interval, for rows nobody handed over (other replicas' intake, quarantine
        # replays, rows released by a relay), and those go first.
        rows: list[OutboxRow] = []
        due = time.monotonic() - self._last_claim >= self._settings.poll_interval
        if due or self._unclaimed or not self._caught_up:
            self._unclaimed = False
            self._last_claim = time.monotonic()
            rows, claimed = await self._claim()
            # Counted as claimed, rows given back as unopenable too: a full claim means more wait.
            self._caught_up = claimed < self._settings.batch_size
        if self._unclaimed:
            # Committed here without a lease while the claim ran, perhaps after its snapshot:
            # the rows handed over since wait for the next claim, so as not to overtake them.
            return await self._publish(exchange, rows)
        # A row whose lease ends before its publication could be confirmed may be claimed by
        # another relay meanwhile: it is left to the table (where this relay claims it too),
        # never published from here as well.
        soon = self._clock() + timedelta(seconds=_LEASE_MARGIN)
        while self._handed and self._handed[0][1] <= soon:
            self._handed.popleft()
        room = min(self._settings.batch_size - len(rows), len(self._handed))
        rows.extend(self._handed.popleft()[0] for _ in range(room))
        return await self._publish(exchange, rows)

    async def _publish(self, exchange: AbstractExchange, rows: list[OutboxRow]) -> int:
        """Publish ``rows`` (claimed, then handed over), confirm them together and mark them;
        return how many were confirmed."""
        if not rows:
            return 0
        confirmed: list[OutboxRow] = []
        failed: list[OutboxRow] = []
        failure: _RelayFailure | None = None
        started = self._clock()
        results = await asyncio.gather(
            *(self._publish_one(exchange, row) for row in rows), return_exceptions=True
        )
        refused: list[tuple[OutboxRow, _RelayFailure]] = []
        for row, result in zip(rows, results, strict=True):
            if not isinstance(result, BaseException):
                confirmed.append(row)
                continue
            why = _classify(result)
            failure = failure or why
            if why.reason in _REFUSED:
                refused.append((row, why))
            else:
                failed.append(row)
        # The broker refused some rows (returned: no queue bound to their key; or nacked) and
        # confirmed the others: the channel is fine and those rows are the broker's answer about
        # them, not a sign it is away. They rest (see _finish) and the relay goes on at full
        # speed, without a back-off nor a new connection, so that one row the broker keeps
        # refusing cannot throttle the whole outbox to one batch per back-off.
        refused_only = bool(confirmed) and not failed
        if failure is not None and not refused_only:
            # Back to the table, oldest first: what is in hand is released with the failures.
            self._caught_up = False
            failed.extend(row for row, _ in self._handed)
            self._handed.clear()
        try:
            await self._finish(confirmed, failed, failure, refused)
        except _RelayFailure:
            if failure is not None:  # the broker failed too: a new connection next time
                self.last_error = str(failure)
                await self._close()
            raise
        now = self._clock()
        by_channel = Counter(row.channel for row in confirmed)
        for channel, count in by_channel.items():
            self._metrics.published.labels(channel).inc(count)
        for row in confirmed:
            self._metrics.publish_latency.observe((now - row.created_at).total_seconds())
        if confirmed:
            log.debug(
                "published %d events in %.3fs",
                len(confirmed),
                (now - started).total_seconds(),
                extra={"relay": self.name},
            )
        if failure is not None and refused_only:
            for reason, count in Counter(why.reason for _, why in refused).items():
                self._metrics.relay_errors.labels(reason).inc(count)
            log.warning(
                "outbox rows refused by the broker rest %.1fs; the others went out",
                self._refused_rest,
                extra={"reason": failure.reason, "error": str(failure)[:300], "relay": self.name,
                       "rows": len(refused)},
            )
            return len(confirmed)
        if failure is not None:
            raise failure
        return len(confirmed)

    async def _publish_one(self, exchange: AbstractExchange, row: OutboxRow) -> None:
        message = aio_pika.Message(
            row.body.encode(),
            content_type=contract.CONTENT_TYPE,
            content_encoding="utf-8",
            delivery_mode=DeliveryMode.PERSISTENT,
            message_id=row.message_id,
            type=contract.message_type(Event(row.event)),
            timestamp=row.created_at,
            app_id="lapor-gateway",
            headers={"schema_version": contract.SCHEMA_VERSION},
        )
        await exchange.publish(
            message, routing_key=row.routing_key, mandatory=True, timeout=_PUBLISH_TIMEOUT
        )

    async def _ensure_exchange(self) -> AbstractExchange:
        if self.connected and self._exchange is not None:
            return self._exchange
        # One connection at a time: a second caller (publish_batch is public) waits for the
        # first one's connection instead of finding it half made or opening another.
        async with self._connecting:
            if self.connected and self._exchange is not None:
                return self._exchange
            return await self._connect()

    async def _connect(self) -> AbstractExchange:
        await self._close()
        try:
            self._connection = await aio_pika.connect(
                self._broker.effective_url(),
                timeout=self._broker.connect_timeout,
                client_properties={"connection_name": f"lapor-gateway relay {self.name}"},
            )
            self._channel = await self._connection.channel(
                publisher_confirms=True, on_return_raises=True
            )
            self._exchange = await declare_topology(self._channel, self._broker)
        except aio_pika.exceptions.ChannelPreconditionFailed as exc:
            # The broker is up, but holds the exchange or a queue declared with other arguments
            # (a consumer declared the queue itself, or a name is shared): retrying cannot help
            # until someone changes one side.
            await self._close()
            raise _RelayFailure(
                "topology-mismatch",
                f"{exc}; declare the same arguments as contract/asyncapi.yaml, or set "
                "broker.declare_queue = false when the routing core owns its queues",
            ) from exc
        except Exception as exc:
            await self._close()
            raise _RelayFailure("broker-unreachable", f"{type(exc).__name__}: {exc}") from exc
        self._metrics.broker_connected.set(1)
        log.info("outbox relay connected to the broker", extra={"relay": self.name})
        return self._exchange

    async def _close(self) -> None:
        connection, self._connection = self._connection, None
        self._channel = self._exchange = None
        self._metrics.broker_connected.set(0)
        if connection is not None and not connection.is_closed:
            try:
                await asyncio.wait_for(connection.close(), timeout=5)
            except Exception:  # already broken; nothing more to release
                log.debug("closing a broken broker connection failed", exc_info=True)

    async def _claim(self) -> tuple[list[OutboxRow], int]:
        """The claimed rows this relay can open, and how many rows it claimed in all."""
        now = self._clock()
        free = and_(
            outbox.c.published_at.is_(None),
            or_(outbox.c.claim_expires.is_(None), outbox.c.claim_expires < now),
        )
        # Oldest first; rows some relay could not open after the others, so that they never
        # fill a batch while openable rows wait behind them.
        given_back = case((outbox.c.last_error.like(f"{UNOPENABLE}:%"), 1), else_=0)
        candidates = (
            select(outbox.c.id)
            .where(free)
            .order_by(given_back, outbox.c.id)
            .limit(self._settings.batch_size)
        )
        chosen: Any = candidates.scalar_subquery()
        if self._postgres:
            # A MATERIALIZED CTE runs the locking subquery once. As a plain ``IN (subquery)``
            # PostgreSQL may plan a nested-loop semi join that runs it again for every outer
            # row (it does on a small table), each run locking the next rows: one claim then
            # took the whole outbox instead of ``batch_size`` rows.
            picked = (
                candidates.with_for_update(skip_locked=True)
                .cte("candidates")
                .prefix_with("MATERIALIZED")
            )
            chosen = select(picked.c.id).scalar_subquery()
        # ``free`` is repeated outside the subquery: PostgreSQL re-checks it on the latest row
        # version if another relay claimed the row meanwhile.
        claim = (
            update(outbox)
            .where(outbox.c.id.in_(chosen), free)
            .values(
                claimed_by=self.name,
                claim_expires=now + timedelta(seconds=self._settings.claim_timeout),
                attempts=outbox.c.attempts + 1,
            )
            .returning(
                outbox.c.id,
                outbox.c.message_id,
                outbox.c.event,
                outbox.c.channel,
                outbox.c.routing_key,
                outbox.c.body,
                outbox.c.sealed,
                outbox.c.created_at,
            )
        )
        try:
            async with self._engine.begin() as conn:
                result = (await conn.execute(claim)).all()
        except (SQLAlchemyError, OSError, TimeoutError) as exc:
            raise _RelayFailure("database", f"{type(exc).__name__}: {exc}") from exc
        ordered = sorted(result, key=lambda r: int(r.id))
        rows = [
            OutboxRow(r.id, r.message_id, r.event, r.channel, r.routing_key, r.body, r.created_at)
            for r in ordered
        ]
        opened: list[OutboxRow] = []
        closed: list[OutboxRow] = []
        for row, r in zip(rows, ordered, strict=True):
            try:
                opened.append(
                    replace(row, body=sealing.open_event(self._keys, row.message_id, row.body,
                                                         r.sealed))
                )
            except (InvalidTag, ValueError):  # ValueError: base64 or text that is not sealed
                closed.append(row)
        if closed:
            # Sealed under a data key this process does not have (a replica started with
            # another key), or damaged: those rows go back at once, for a relay that can open
            # them, and the rest go out; one such row must not hold up every other event.
            failure = _RelayFailure(
                UNOPENABLE, f"{len(closed)} event(s) do not open with this process's data key"
            )
            await self._finish([], closed, failure)
            if not opened:
                raise failure  # run() counts it and backs off
            self._metrics.relay_errors.labels("data-key").inc()
            log.error("outbox rows this relay cannot open were given back; the others go out",
                      extra={"relay": self.name, "rows": len(closed)})
        return opened, len(ordered)

    async def _finish(
        self,
        confirmed: Sequence[OutboxRow],
        failed: Sequence[OutboxRow],
        failure: _RelayFailure | None,
        refused: Sequence[tuple[OutboxRow, _RelayFailure]] = (),
    ) -> None:
        now = self._clock()
        mine = outbox.c.claimed_by == self.name
        try:
            async with self._engine.begin() as conn:
                if confirmed:
                    await conn.execute(
                        update(outbox)
                        .where(outbox.c.message_id.in_([r.message_id for r in confirmed]), mine)
                        .values(published_at=now, claimed_by=None, claim_expires=None,
                                last_error=None)
                    )
                if failed:
                    # Release at once so the rows go out first, in order, when the broker is back;
                    # rows this relay cannot open rest a few seconds first (and are claimed after
                    # the others, see _claim), so that they neither head every claim of every
                    # relay nor fill the log; a relay with their key takes them then.
                    unopenable = failure is not None and failure.reason == UNOPENABLE
                    rest = now + timedelta(seconds=_UNOPENABLE_REST)
                    await conn.execute(
                        update(outbox)
                        .where(outbox.c.message_id.in_([r.message_id for r in failed]), mine)
                        .values(claimed_by=None, claim_expires=rest if unopenable else None,
                                last_error=f"{failure.reason}: {failure}"[:1000]
                                if failure else None)
                    )
                for why, rows in _by_reason(refused).items():
                    # Rows the broker itself refused (returned or nacked) rest too, so that one
                    # it keeps refusing neither heads every batch nor holds the others up (see
                    # _publish); each keeps its own reason.
                    await conn.execute(
                        update(outbox)
                        .where(outbox.c.message_id.in_([r.message_id for r in rows]), mine)
                        .values(claimed_by=None,
                                claim_expires=now + timedelta(seconds=self._refused_rest),
                                last_error=f"{why.reason}: {why}"[:1000])
                    )
        except (SQLAlchemyError, OSError, TimeoutError) as exc:
            # The broker has the confirmed messages; the lease will expire and they will be
            # published again with the same message_id, which consumers deduplicate.
            raise _RelayFailure("database", f"{type(exc).__name__}: {exc}") from exc


@dataclass(frozen=True, slots=True)
class Requeued:
    """What :func:`republish` put back in the outbox."""

    count: int
    first_created_at: datetime | None
    last_created_at: datetime | None


async def republish(
    engine: AsyncEngine,
    since: datetime,
    until: datetime | None,
    channel: str | None,
    now: datetime,
    dry_run: bool = False,
    keep: float = 0,
) -> Requeued:
    """Put the published events committed in ``[since, until)`` (of one channel, or all) back in
    the outbox, for when the routing core lost them. The relays publish them again at their next
    look at the table, oldest first and before newer pending rows, each with its own
    ``message_id`` and body, so a consumer that did get one the first time drops the copy. Their
    lag counts from ``now``. ``dry_run`` changes nothing and tells what would go. Only events
    last published within ``keep`` seconds (``outbox.keep_published``; 0: any) go: the routing
    core is told to remember a ``message_id`` that long after it last received it, and one
    published longer ago, still waiting for the next prune (:func:`prune_published`), would
    come to a consumer that may have forgotten it."""
    chosen = [outbox.c.published_at.is_not(None), outbox.c.created_at >= since]
    cutoff = prune_cutoff(keep, now)
    if cutoff is not None:
        chosen.append(outbox.c.published_at >= cutoff)
    if until is not None:
        chosen.append(outbox.c.created_at < until)
    if channel is not None:
        chosen.append(outbox.c.channel == channel)
    async with engine.begin() as conn:
        count, first, last = (
            await conn.execute(
                select(
                    func.count(),
                    func.min(outbox.c.created_at, type_=UTCDateTime()),
                    func.max(outbox.c.created_at, type_=UTCDateTime()),
                ).where(*chosen)
            )
        ).one()
        if count and not dry_run:
            done = await conn.execute(
                update(outbox)
                .where(*chosen)
                .values(published_at=None, claimed_by=None, claim_expires=None, last_error=None,
                        queued_at=now)
            )
            count = done.rowcount
    return Requeued(int(count), first, last)


# Rows a prune looks at, and so deletes at most, per transaction.
PRUNE_BATCH = 1000


def prune_cutoff(keep: float, now: datetime) -> datetime | None:
    """The publication time before which events go, ``keep`` seconds before ``now``; None when
    ``keep`` is 0 (kept for ever), or so long that no date is that far back."""
    if keep <= 0:
        return None
    try:
        return now - timedelta(seconds=keep)
    except OverflowError:
        return None


async def prune_published(
    engine: AsyncEngine,
    keep: float,
    now: datetime,
    dry_run: bool = False,
    batch: int = PRUNE_BATCH,
    stop: asyncio.Event | None = None,
) -> int:
    """Delete the events published more than ``keep`` seconds before ``now``
    (``outbox.keep_published``; 0 keeps everything) and return how many went; ``dry_run``
    deletes nothing and counts them. ``stop`` ends it between two batches.

    Only published rows go: a pending row (``published_at`` NULL), one queued again by
    :func:`republish` among them, stays whatever its age; a republished event counts from its
    new publication. The table is walked in ``id`` order, ``batch`` rows per short transaction
    that deletes the old ones among them. Ids follow commit times and a row is published after
    its commit, so the walk ends at the first window of rows all committed after the cutoff
    instead of reading the rest of the table; a row committed out of that order stays until the
    next prune. On PostgreSQL the rows to delete are locked ``SKIP LOCKED``: replicas pruning at
    the same time each delete the rows the others have not taken, without waiting or failing.
    """
    cutoff = prune_cutoff(keep, now)
    if cutoff is None:
        return 0
    old = and_(outbox.c.published_at.is_not(None), outbox.c.published_at < cutoff)
    postgres = engine.dialect.name == "postgresql"
    removed = 0
    after: int | None = None
    while stop is None or not stop.is_set():
        span = [] if after is None else [outbox.c.id > after]
        window = (
            select(outbox.c.id, outbox.c.created_at, outbox.c.published_at)
            .where(*span)
            .order_by(outbox.c.id)
            .limit(batch)
        )
        async with engine.begin() as conn:
            rows = (await conn.execute(window)).all()
            if not rows:
                break
            last = int(rows[-1].id)
            due = sum(1 for r in rows if r.published_at is not None and r.published_at < cutoff)
            if due and dry_run:
                removed += due
            elif due:
                chosen = select(outbox.c.id).where(*span, outbox.c.id <= last, old)
                if postgres:
                    chosen = chosen.with_for_update(skip_locked=True)
                done = await conn.execute(
                    delete(outbox).where(outbox.c.id.in_(chosen.scalar_subquery()), old)
                )
                removed += done.rowcount
        if len(rows) < batch or all(r.created_at >= cutoff for r in rows):
            break  # the end of the table, or only rows committed after the cutoff from here
        after = last
    return removed


async def prune_every(
    engine: AsyncEngine,
    metrics: Metrics,
    *,
    keep: float,
    interval: float,
    stop: asyncio.Event,
    clock: Clock = utcnow,
) -> None:
    """Prune every ``interval`` seconds until ``stop`` (``serve`` runs this; see
    :func:`gateway.periodic.run_every`)."""

    async def job() -> None:
        removed = await prune_published(engine, keep, clock(), stop=stop)
        metrics.pruned.inc(removed)
        log.info(
            "pruned %d published outbox events", removed, extra={"keep_published": keep}
        )

    await periodic.run_every(interval, stop, job, what="outbox prune", runs=metrics.prune_runs)


# ---- Events no relay can open: listed, set aside, restored (migration 0010) ------------------

# Pending rows :func:`stuck_events` reads per query (and set-aside rows per query of
# :func:`set_aside_events`).
SCAN_BATCH = 500
# Seconds :func:`set_aside` waits for a relay's lease on the event to end (the relay may be
# publishing it) before it refuses.
LEASE_WAIT = 10.0
# Seconds an operator's transaction waits for a row another transaction holds (PostgreSQL).
LOCK_WAIT = 5.0
_LEASE_POLL = 0.1


def event_opens(keys: Keys, message_id: str, body: str, sealed: bool) -> bool:
    """Whether ``keys`` (the current data key or one of the previous ones) open an outbox body,
    as a relay opens it to publish it."""
    try:
        sealing.open_event(keys, message_id, body, sealed)
    except (InvalidTag, ValueError):  # ValueError: base64 or text that is not sealed
        return False
    return True


def _given_back(last_error: str | None) -> bool:
    return last_error is not None and last_error.startswith(f"{UNOPENABLE}:")


@dataclass(frozen=True, slots=True)
class StuckEvent:
    """A pending event (or one set aside), with whether this process's data keys open it."""

    message_id: str
    event: str
    channel: str
    tracking_id: str | None  # its complaint's, read from the complaints table
    created_at: datetime
    attempts: int
    last_error: str | None
    opens: bool
    set_aside_at: datetime | None = None
    reason: str | None = None

    @property
    def given_back(self) -> bool:
        """A relay gave it back because it could not open it."""
        return _given_back(self.last_error)


def _stuck(r: Row[*tuple[Any, ...]], opens: bool, tracking_id: str | None) -> StuckEvent:
    columns = r._mapping
    return StuckEvent(
        message_id=r.message_id,
        event=r.event,
        channel=r.channel,
        tracking_id=tracking_id,
        created_at=r.created_at,
        attempts=int(r.attempts),
        last_error=r.last_error,
        opens=opens,
        set_aside_at=columns.get("set_aside_at"),
        reason=columns.get("reason"),
    )


async def stuck_events(
    engine: AsyncEngine, keys: Keys, batch: int = SCAN_BATCH
) -> AsyncIterator[StuckEvent]:
    """The pending events ``keys`` do not open (``opens`` false), oldest first, and among them
    the ones a relay gave back that do open with ``keys`` (``opens`` true: a replica with
    another data key gave them back, and a relay with these keys publishes them).

    Reads the pending rows ``batch`` at a time in ``id`` order, through the partial index on
    pending rows (never the published ones), each batch a short read of its own: no connection
    is held while the caller uses what it yields, and the table is never loaded whole.
    """
    after: int | None = None
    while True:
        span = [] if after is None else [outbox.c.id > after]
        query = (
            select(
                outbox.c.id,
                outbox.c.message_id,
                outbox.c.event,
                outbox.c.channel,
                outbox.c.body,
                outbox.c.sealed,
                outbox.c.created_at,
                outbox.c.attempts,
                outbox.c.last_error,
                complaints.c.tracking_id,
            )
            .select_from(outbox.outerjoin(complaints, complaints.c.id == outbox.c.complaint_id))
            .where(outbox.c.published_at.is_(None), *span)
            .order_by(outbox.c.id)
            .limit(batch)
        )
        async with engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        for r in rows:
            opens = event_opens(keys, r.message_id, r.body, r.sealed)
            if not opens or _given_back(r.last_error):
                yield _stuck(r, opens, r.tracking_id)
        if len(rows) < batch:
            return
        after = int(rows[-1].id)


async def set_aside_events(
    engine: AsyncEngine, keys: Keys, batch: int = SCAN_BATCH
) -> AsyncIterator[StuckEvent]:
    """The events set aside, in commit order, with whether ``keys`` open them now (when they
    do, :func:`restore` puts them back and a relay publishes them). ``batch`` rows a read."""
    after: tuple[datetime, str] | None = None
    aside = outbox_set_aside.c
    while True:
        span = (
            []
            if after is None
            else [
                or_(
                    aside.created_at > after[0],
                    and_(aside.created_at == after[0], aside.message_id > after[1]),
                )
            ]
        )
        query = (
            select(outbox_set_aside, complaints.c.tracking_id)
            .select_from(
                outbox_set_aside.outerjoin(complaints, complaints.c.id == aside.complaint_id)
            )
            .where(*span)
            .order_by(aside.created_at, aside.message_id)
            .limit(batch)
        )
        async with engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        for r in rows:
            yield _stuck(r, event_opens(keys, r.message_id, r.body, r.sealed), r.tracking_id)
        if len(rows) < batch:
            return
        after = (rows[-1].created_at, rows[-1].message_id)


class Refused(Exception):
    """An operator's command refused for one event: nothing was changed."""

    def __init__(self, message_id: str, why: str) -> None:
        super().__init__(f"{message_id}: {why}")
        self.message_id = message_id
        self.why = why


class _Leased(Exception):
    def __init__(self, relay: str, until: datetime) -> None:
        super().__init__(relay)
        self.relay = relay
        self.until = until


@contextlib.asynccontextmanager
async def _operator_transaction(
    engine: AsyncEngine, message_id: str
) -> AsyncIterator[AsyncConnection]:
    """A transaction that waits at most :data:`LOCK_WAIT` for a row another one holds (on
    PostgreSQL; SQLite's writers queue on its busy timeout), and then refuses."""
    try:
        async with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                await conn.execute(text(f"SET LOCAL lock_timeout = '{int(LOCK_WAIT * 1000)}ms'"))
            yield conn
    except DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) == "55P03":  # lock_not_available
            raise Refused(
                message_id,
                f"another transaction held it for more than {LOCK_WAIT:g} s; try again",
            ) from exc
        raise


async def _tracking_id_of(conn: AsyncConnection, complaint_id: str | None) -> str | None:
    """The tracking ID of an event's complaint (None for an event without one)."""
    if complaint_id is None:
        return None
    query = select(complaints.c.tracking_id).where(complaints.c.id == complaint_id)
    return (await conn.execute(query)).scalar_one_or_none()


async def set_aside(
    engine: AsyncEngine,
    keys: Keys,
    message_id: str,
    *,
    reason: str | None = None,
    force: bool = False,
    clock: Clock = utcnow,
    lease_wait: float = LEASE_WAIT,
) -> StuckEvent:
    """Move the pending event ``message_id`` out of the outbox into ``outbox_set_aside``, in one
    transaction, so that no relay tries it any more; return it as it was.

    Refused (:class:`Refused`, nothing changed): no such event in the outbox (never, or already
    set aside), an event already published, and, unless ``force``, an event ``keys`` open: a
    relay publishes it, it is not the operator's to drop.

    Beside running relays: on PostgreSQL the row is locked ``FOR UPDATE``, waiting (at most
    :data:`LOCK_WAIT`) for a relay's claim or publication mark in progress to commit, and then
    reading the row as it left it: ``SKIP LOCKED`` would report an event that is there as
    missing, ``NOWAIT`` refuse it for a lock of a few milliseconds. On SQLite the transaction
    takes the one write lock first (``BEGIN IMMEDIATE``). A row leased to a relay may be on its
    way to the broker: it is taken only once the lease ends or the relay gives it back (a relay
    that cannot open it does so at once), after at most ``lease_wait`` seconds it is refused;
    a relay that published it meanwhile has marked it published, and it is refused as such.
    """
    deadline = time.monotonic() + lease_wait
    while True:
        try:
            return await _set_aside_once(engine, keys, message_id, reason, force, clock)
        except _Leased as leased:
            if time.monotonic() >= deadline:
                raise Refused(
                    message_id,
                    f"claimed by the relay {leased.relay} until {leased.until.isoformat()}: it"
                    " may be publishing it now; try again after that",
                ) from None
        await asyncio.sleep(_LEASE_POLL)


async def _set_aside_once(
    engine: AsyncEngine,
    keys: Keys,
    message_id: str,
    reason: str | None,
    force: bool,
    clock: Clock,
) -> StuckEvent:
    async with _operator_transaction(engine, message_id) as conn:
        query = select(outbox).where(outbox.c.message_id == message_id)
        if engine.dialect.name == "postgresql":
            query = query.with_for_update()
        row = (await conn.execute(query)).one_or_none()
        if row is None:
            aside = (
                await conn.execute(
                    select(outbox_set_aside.c.set_aside_at).where(
                        outbox_set_aside.c.message_id == message_id
                    )
                )
            ).scalar_one_or_none()
            if aside is not None:
                raise Refused(
                    message_id,
                    f"already set aside at {aside.isoformat()} (`outbox restore` puts it back)",
                )
            raise Refused(message_id, "no such event in the outbox")
        if row.published_at is not None:
            raise Refused(
                message_id, f"not pending: published at {row.published_at.isoformat()}"
            )
        now = clock()
        if row.claimed_by is not None and row.claim_expires is not None and row.claim_expires > now:
            raise _Leased(row.claimed_by, row.claim_expires)
        opens = event_opens(keys, row.message_id, row.body, row.sealed)
        if opens and not force:
            raise Refused(
                message_id,
                "it opens with this process's data keys, so a relay publishes it: it is not"
                " unopenable (--force sets it aside all the same)",
            )
        tracking_id = await _tracking_id_of(conn, row.complaint_id)
        await conn.execute(
            insert(outbox_set_aside).values(**row._asdict(), set_aside_at=now, reason=reason)
        )
        gone = await conn.execute(
            delete(outbox).where(outbox.c.id == row.id, outbox.c.published_at.is_(None))
        )
        if gone.rowcount != 1:  # not under the lock; never leave a copy in both tables
            raise Refused(message_id, "changed while it was being set aside; try again")
    return replace(_stuck(row, opens, tracking_id), set_aside_at=now, reason=reason)


async def restore(
    engine: AsyncEngine,
    keys: Keys,
    message_id: str,
    *,
    force: bool = False,
    clock: Clock = utcnow,
) -> StuckEvent:
    """Put the event set aside as ``message_id`` back in the outbox, pending, with its
    ``message_id`` and body, in one transaction; return it.

    Refused (:class:`Refused`, nothing changed): no event set aside under that id, and unless
    ``force`` one ``keys`` still do not open: every relay would give it back again (add the key
    that sealed it to ``LAPOR_SECURITY__PREVIOUS_DATA_KEYS`` on every replica first). It goes
    after the events pending now (a new ``id``), its lag counts from now (``queued_at``, as for
    :func:`republish`), its attempts are kept and its last error cleared.
    """
    aside = outbox_set_aside.c
    async with _operator_transaction(engine, message_id) as conn:
        query = select(outbox_set_aside).where(aside.message_id == message_id)
        if engine.dialect.name == "postgresql":
            query = query.with_for_update()
        row = (await conn.execute(query)).one_or_none()
        if row is None:
            there = (
                await conn.execute(
                    select(outbox.c.published_at).where(outbox.c.message_id == message_id)
                )
            ).one_or_none()
            if there is None:
                raise Refused(message_id, "no event set aside under this message_id")
            state = (
                "pending"
                if there.published_at is None
                else f"published at {there.published_at.isoformat()}"
            )
            raise Refused(message_id, f"not set aside: it is in the outbox, {state}")
        opens = event_opens(keys, row.message_id, row.body, row.sealed)
        if not opens and not force:
            raise Refused(
                message_id,
                "it still opens with none of this process's data keys, and every relay would"
                " give it back again: add the key that sealed it to"
                " LAPOR_SECURITY__PREVIOUS_DATA_KEYS on every replica first (--force restores"
                " it all the same)",
            )
        now = clock()
        await conn.execute(
            insert(outbox).values(
                message_id=row.message_id,
                event=row.event,
                channel=row.channel,
                routing_key=row.routing_key,
                complaint_id=row.complaint_id,
                body=row.body,
                sealed=row.sealed,
                created_at=row.created_at,
                attempts=row.attempts,
                queued_at=now,
            )
        )
        await conn.execute(delete(outbox_set_aside).where(aside.message_id == message_id))
        tracking_id = await _tracking_id_of(conn, row.complaint_id)
    return _stuck(row, opens, tracking_id)


# How many batches the intake may hand over ahead of publication (see lease).
_HANDED_BATCHES = 4
# Seconds of lease a handed row must have left to be published from memory: more than a publish
# may take (its confirm timeout), so its lease cannot end while it is being published.
_PUBLISH_TIMEOUT = 30.0
# Seconds a row a relay could not open waits before it is claimed again.
_UNOPENABLE_REST = 5.0
# Seconds a row the broker refused (returned for want of a queue bound to its key, or nacked)
# waits before a relay tries it again; the rows behind it go out meanwhile.
_REFUSED_REST = 5.0
_REFUSED = ("unroutable", "nack")
_LEASE_MARGIN = _PUBLISH_TIMEOUT + 5.0


def _by_reason(
    refused: Sequence[tuple[OutboxRow, _RelayFailure]],
) -> dict[_RelayFailure, list[OutboxRow]]:
    """The refused rows under the first failure of each reason."""
    first: dict[str, _RelayFailure] = {}
    grouped: dict[_RelayFailure, list[OutboxRow]] = {}
    for row, why in refused:
        grouped.setdefault(first.setdefault(why.reason, why), []).append(row)
    return grouped


class _RelayFailure(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def _classify(exc: BaseException) -> _RelayFailure:
    if isinstance(exc, aio_pika.exceptions.PublishError):
        return _RelayFailure("unroutable", f"message returned by the broker: {exc}")
    if isinstance(exc, aio_pika.exceptions.DeliveryError):
        return _RelayFailure("nack", f"broker refused the message: {exc}")
    return _RelayFailure("broker-unreachable", f"{type(exc).__name__}: {exc}")


async def _wait_any(stop: asyncio.Event, wakeup: asyncio.Event, seconds: float) -> None:
    waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wakeup.wait())]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
