"""Status changes from the routing core: consumed from RabbitMQ, kept, shown to the citizen.

The routing core publishes one message per status change on the exchange ``lapor.status``
(``contract/complaint-status.v1.schema.json``, ``contract/asyncapi.yaml``). Every replica consumes
the same quorum queue. Each message is applied in one transaction:

- its AMQP ``message_id`` goes into ``complaint_status_events`` (unique): a redelivery finds it
  and changes nothing (outcome ``duplicate``);
- the complaint's ``status``, ``status_changed_at`` and (when given) ``agency`` change only when
  its ``changed_at`` is later than the one shown: consumers take messages in no set order, and
  the newest change wins (an older one is kept, ``applied`` false: outcome ``stale``); the
  complaint's row is locked first, so changes to one complaint on several replicas take turns;
- when it is shown, ``notify`` runs in the same transaction (the SMS channel queues a message to
  the numbers that got the complaint's receipt by SMS: ``gateway.sms_store.StatusPush``);
- a body that is not a valid status change, or one naming a complaint this database does not
  hold (or with another tracking ID), is rejected without requeueing: the broker dead-letters it
  to ``status_feed.dead_letter_queue``. Kept, never dropped.

The message is acknowledged after the commit. When the database fails, the consumer stops
taking messages (the unacknowledged ones go back to the queue as the connection closes, not
rejected, so no delivery limit counts them), backs off and checks the database before it
consumes again.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue, ExchangeType
from sqlalchemy import insert, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway import periodic, tracking
from gateway.intake import DB_UNAVAILABLE, Clock, storable_text, utcnow
from gateway.metrics import Metrics
from gateway.outbox import declare_quorum_queue
from gateway.settings import BrokerSettings, StatusFeedSettings
from gateway.storage.schema import complaint_status_events, complaints

log = logging.getLogger(__name__)

SCHEMA_VERSION = "1.0"
ROUTING_KEY_PATTERN = "status.#"
FIELDS = frozenset(
    {"schema_version", "complaint_id", "tracking_id", "status", "changed_at", "agency"}
)
REQUIRED = FIELDS - {"agency"}
MAX_MESSAGE_ID = 80  # complaint_status_events.message_id
MAX_AGENCY = 255
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_TRACKING = re.compile(f"[{tracking.ALPHABET}]{{{tracking.LENGTH}}}")
_STATUS = re.compile(r"^[a-z][a-z_]{1,23}$")
_RFC3339 = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$"
)
# A message that fails this many times in a row on something unforeseen (not the database's
# state, not its content as checked) is dead-lettered, so that it cannot stop the feed for ever.
POISON_ATTEMPTS = 5
# Seconds a lost or closing connection waits for the messages in hand to be settled.
SETTLE_TIMEOUT = 10.0


def _refused_values(exc: BaseException) -> bool:
    """The database refused the message's values, not its own state (SQLSTATE class 22, data
    exception, on PostgreSQL): retrying cannot help. A read-only database, a lost connection or
    a lock timeout are its state: the message waits."""
    code = getattr(getattr(exc, "orig", None), "sqlstate", None)
    return isinstance(code, str) and code.startswith("22")


class Refused(ValueError):
    """Not a status change this gateway can apply: dead-lettered, with this reason logged."""


class Outcome(StrEnum):
    APPLIED = "applied"
    STALE = "stale"
    DUPLICATE = "duplicate"


@dataclass(frozen=True, slots=True)
class StatusChange:
    """One status message, checked."""

    key: str  # the AMQP message_id (or a hash of the body when the publisher set none)
    complaint_id: str
    tracking_id: str
    status: str
    changed_at: datetime
    agency: str | None


def parse(body: bytes, message_id: str | None) -> StatusChange:
    """The status change a message carries (pure). Raises :class:`Refused` naming what is wrong,
    for exactly the bodies the schema refuses (tests/unit/test_status_feed.py checks both)."""
    try:
        data: Any = json.loads(body)
    # RecursionError: nested deeper than the parser goes ("[[[[..."): no status change, and not
    # a bug to retry either.
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise Refused(f"body is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise Refused("body is not a JSON object")
    if unknown := sorted(set(data) - FIELDS):
        raise Refused(f"unknown fields: {', '.join(unknown)[:200]}")
    if missing := sorted(REQUIRED - set(data)):
        raise Refused(f"missing fields: {', '.join(missing)}")
    if data["schema_version"] != SCHEMA_VERSION:
        raise Refused(f"schema_version is not {SCHEMA_VERSION}")
    complaint_id, tracking_id, status = data["complaint_id"], data["tracking_id"], data["status"]
    if not (isinstance(complaint_id, str) and _UUID.fullmatch(complaint_id)):
        raise Refused("complaint_id is not a UUID")
    if not (isinstance(tracking_id, str) and _TRACKING.fullmatch(tracking_id)):
        raise Refused("tracking_id is not a tracking ID")
    if not (isinstance(status, str) and _STATUS.fullmatch(status)):
        raise Refused("status is not a word of a-z and _, 2-24 characters")
    agency = data.get("agency")
    if agency is not None and not (
        isinstance(agency, str) and 0 < len(agency) <= MAX_AGENCY and storable_text(agency)
    ):
        raise Refused(f"agency is not text of 1 to {MAX_AGENCY} characters")
    return StatusChange(
        key=_key(body, message_id),
        complaint_id=complaint_id.lower(),
        tracking_id=tracking_id,
        status=status,
        changed_at=_instant(data["changed_at"]),
        agency=agency,
    )


def _instant(value: Any) -> datetime:
    if not (isinstance(value, str) and _RFC3339.fullmatch(value)):
        raise Refused("changed_at is not an RFC 3339 time with its offset")
    try:
        return datetime.fromisoformat(value).astimezone(UTC)
    except (ValueError, OverflowError) as exc:  # 0001-01-01T00:30+01:00 has no UTC time
        raise Refused("changed_at is not an RFC 3339 time with its offset") from exc


def _key(body: bytes, message_id: str | None) -> str:
    if message_id and len(message_id) <= MAX_MESSAGE_ID:
        return message_id
    # No id (the contract asks for one), or one too long to keep: the same bytes are the same
    # message.
    source = message_id.encode() if message_id else body
    return "sha256:" + hashlib.sha256(source).hexdigest()


# Run inside the transaction of a change that is shown: what else the change causes (the SMS
# channel queues a message to the citizen); returns how many replies it queued.
Notify = Callable[[AsyncConnection, StatusChange, datetime], Awaitable[int]]


async def apply(
    engine: AsyncEngine, change: StatusChange, now: datetime, notify: Notify | None = None
) -> tuple[Outcome, int]:
    """Keep the change and, when it is the newest, show it and run ``notify``: one transaction.
    The outcome, and what ``notify`` queued."""
    told = 0
    try:
        async with engine.begin() as conn:
            # The complaint's row is locked first (FOR UPDATE on PostgreSQL; SQLite has one
            # writer), so every statement below sees the changes committed before this one,
            # their events included: the agency's condition reads the events, and without the
            # lock it would be read from before a concurrent newer change committed, and an
            # older agency would be written over the newer one.
            found = (
                await conn.execute(
                    select(complaints.c.tracking_id)
                    .where(complaints.c.id == change.complaint_id)
                    .with_for_update()
                )
            ).first()
            if found is None:
                raise Refused("no complaint with this complaint_id")
            if found.tracking_id != change.tracking_id:
                raise Refused("tracking_id is not the complaint's")
            shown = {"status": change.status, "status_changed_at": change.changed_at}
            if change.agency is not None:
                shown["agency"] = change.agency
            # The row is locked: the condition is evaluated on it as committed, so of two
            # changes at once, the newer wins.
            newest = await conn.execute(
                update(complaints)
                .where(
                    complaints.c.id == change.complaint_id,
                    or_(
                        complaints.c.status_changed_at.is_(None),
                        complaints.c.status_changed_at < change.changed_at,
                    ),
                )
                .values(**shown)
            )
            applied = newest.rowcount == 1
            if not applied and change.agency is not None:
                # Older than the status shown, but naming the agency, after newer changes that
                # named none: the agency was assigned then and still is.
                named_later = (
                    select(complaint_status_events.c.id)
                    .where(
                        complaint_status_events.c.complaint_id == change.complaint_id,
                        complaint_status_events.c.agency.is_not(None),
                        complaint_status_events.c.changed_at > change.changed_at,
                    )
                    .exists()
                )
                await conn.execute(
                    update(complaints)
                    .where(complaints.c.id == change.complaint_id, ~named_later)
                    .values(agency=change.agency)
                )
            if applied and notify is not None:
                told = await notify(conn, change, now)
            await conn.execute(
                insert(complaint_status_events).values(
                    message_id=change.key,
                    complaint_id=change.complaint_id,
                    status=change.status,
                    agency=change.agency,
                    changed_at=change.changed_at,
                    received_at=now,
                    applied=applied,
                )
            )
    except IntegrityError:
        # Seen before: the transaction, update and notification included, rolled back.
        return Outcome.DUPLICATE, 0
    return (Outcome.APPLIED if applied else Outcome.STALE), told


async def history(engine: AsyncEngine, tracking_id: str) -> list[Any]:
    """Every change received for the complaint with this (normalised) tracking ID, oldest
    ``changed_at`` first: what ``lapor-gateway status show`` prints."""
    async with engine.connect() as conn:
        return list(
            await conn.execute(
                select(complaint_status_events)
                .join(complaints, complaints.c.id == complaint_status_events.c.complaint_id)
                .where(complaints.c.tracking_id == tracking_id)
                .order_by(complaint_status_events.c.changed_at, complaint_status_events.c.id)
            )
        )


async def declare_topology(channel: AbstractChannel, settings: StatusFeedSettings) -> AbstractQueue:
    """The routing core's status exchange, the gateway's queue on it and its dead letters."""
    exchange = await channel.declare_exchange(settings.exchange, ExchangeType.TOPIC, durable=True)
    return await declare_quorum_queue(
        channel,
        exchange,
        ROUTING_KEY_PATTERN,
        settings.queue,
        settings.dead_letter_exchange,
        settings.dead_letter_queue,
        at_least_once=True,
    )


class _Failure(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


class StatusConsumer:
    """Consumes the status queue until stopped, reconnecting with back-off."""

    def __init__(
        self,
        engine: AsyncEngine,
        broker: BrokerSettings,
        settings: StatusFeedSettings,
        metrics: Metrics,
        clock: Clock = utcnow,
        notify: Notify | None = None,
        notified: Callable[[], None] | None = None,
    ) -> None:
        self._notify = notify
        self._notified = notified  # after a commit that queued replies (wakes their sender)
        self._engine = engine
        self._broker = broker
        self._settings = settings
        self._metrics = metrics
        self._clock = clock
        self.name = f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
        self.consuming = False
        self._attempts: dict[str, int] = {}  # failures of unforeseen kinds, per message
        metrics.status_feed_enabled.set(1)

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set, backing off while the broker or database fails."""
        delay = self._settings.backoff_initial
        while not stop.is_set():
            try:
                await self._consume(stop)
                delay = self._settings.backoff_initial
            except _Failure as exc:
                log.warning(
                    "status feed failed, retrying in %.1fs",
                    delay,
                    extra={"reason": exc.reason, "error": str(exc)[:300], "consumer": self.name},
                )
                await periodic.stopped(stop, delay)
                delay = min(delay * 2, self._settings.backoff_max)

    async def _consume(self, stop: asyncio.Event) -> None:
        try:  # no message is taken while the database cannot keep it
            async with self._engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except DB_UNAVAILABLE as exc:
            raise _Failure("database", f"{type(exc).__name__}: {exc}") from exc
        try:
            connection = await aio_pika.connect(
                self._broker.effective_url(),
                timeout=self._broker.connect_timeout,
                client_properties={"connection_name": f"lapor-gateway status {self.name}"},
            )
        except Exception as exc:
            raise _Failure("broker-unreachable", f"{type(exc).__name__}: {exc}") from exc
        ended = asyncio.Event()
        failures: list[_Failure] = []

        def lost(*_: Any) -> None:
            ended.set()

        def cancelled(*_: Any) -> None:
            failures.append(_Failure("broker", "the broker cancelled the consumer (queue gone?)"))
            ended.set()

        async def settle(message: AbstractIncomingMessage) -> None:
            try:
                await self.handle(message)
            except _Failure as exc:
                failures.append(exc)
                ended.set()  # the connection closes: this and the unacknowledged go back
            except Exception as exc:  # settling it with the broker failed: the connection
                failures.append(_Failure("broker", f"{type(exc).__name__}: {exc}"))
                ended.set()

        # The channel cancels its callbacks when it closes. A message's transaction must not be
        # cut there: a connection cancelled on its way back to the pool is lost to it, and a
        # few lost ones starve the pool every part of the gateway shares. So each message is
        # handled in a task of its own, which the connection waits for before it closes.
        inflight: set[asyncio.Task[None]] = set()

        async def on_message(message: AbstractIncomingMessage) -> None:
            task = asyncio.create_task(settle(message))
            inflight.add(task)
            task.add_done_callback(inflight.discard)
            await asyncio.shield(task)

        try:
            connection.close_callbacks.add(lost)
            channel = await connection.channel()
            channel.close_callbacks.add(lost)
            await channel.set_qos(prefetch_count=self._settings.prefetch)
            queue = await declare_topology(channel, self._settings)
            # A plain channel does not notice the broker cancelling its consumer (the queue
            # deleted, a node lost): reconnect as after a lost connection.
            underlay = await channel.get_underlay_channel()
            underlay.on_consumer_cancel_callbacks.add(cancelled)
            await queue.consume(on_message)
            self.consuming = True
            self._metrics.status_feed_connected.set(1)
            log.info("status feed consuming", extra={"queue": queue.name, "consumer": self.name})
            stopping = asyncio.create_task(stop.wait())
            ending = asyncio.create_task(ended.wait())
            try:
                await asyncio.wait((stopping, ending), return_when=asyncio.FIRST_COMPLETED)
            finally:
                stopping.cancel()
                ending.cancel()
        except aio_pika.exceptions.ChannelPreconditionFailed as exc:
            raise _Failure(
                "topology-mismatch",
                f"{exc}; the queue exists with other arguments than contract/asyncapi.yaml"
                " gives: delete it (it is the gateway's) or change status_feed.queue",
            ) from exc
        except Exception as exc:
            raise _Failure("broker", f"{type(exc).__name__}: {exc}") from exc
        finally:
            self.consuming = False
            self._metrics.status_feed_connected.set(0)
            if inflight:  # their acks still reach the broker if the connection is open
                await asyncio.wait(set(inflight), timeout=SETTLE_TIMEOUT)
            if not connection.is_closed:
                try:
                    await asyncio.wait_for(connection.close(), timeout=5)
                except Exception:  # already broken; nothing more to release
                    log.debug("closing the status feed's connection failed", exc_info=True)
        if failures:
            raise failures[0]
        if not stop.is_set():
            raise _Failure("broker", "the broker closed the connection")

    async def handle(self, message: AbstractIncomingMessage) -> str:
        """Apply one message and settle it with the broker; the outcome, or ``refused``."""
        try:
            change = parse(message.body, message.message_id)
            outcome, told = await apply(self._engine, change, self._clock(), self._notify)
        except Refused as exc:
            return await self._refuse(message, str(exc))
        except DB_UNAVAILABLE as exc:
            if _refused_values(exc):
                return await self._refuse(message, f"the database refused its values: {exc}")
            raise _Failure("database", f"{type(exc).__name__}: {exc}") from exc
        except Exception as exc:
            # Not foreseen (a bug, a library's surprise): not acknowledged, so not lost, and
            # tried again after the back-off; a message that keeps failing is set aside.
            if len(self._attempts) > 1000:
                self._attempts.clear()
            key = _key(message.body, message.message_id)
            attempts = self._attempts[key] = self._attempts.get(key, 0) + 1
            log.exception(
                "status feed: unexpected error",
                extra={"consumer": self.name, "message_id": key, "attempts": attempts},
            )
            if attempts >= POISON_ATTEMPTS:
                del self._attempts[key]
                return await self._refuse(
                    message, f"failed {attempts} times: {type(exc).__name__}: {exc}"
                )
            raise _Failure("internal", type(exc).__name__) from exc
        self._attempts.pop(change.key, None)
        # Counted as committed: an acknowledgement lost with the connection brings the message
        # back, counted then as a duplicate, but the change was applied here.
        self._metrics.status_changes.labels(outcome).inc()
        if told and self._notified is not None:
            self._notified()
        await message.ack()
        log.info(
            "status change %s",
            outcome,
            extra={
                "message_id": change.key,
                "tracking_id": change.tracking_id,
                "status": change.status,
                "replies": told,
            },
        )
        return str(outcome)

    async def _refuse(self, message: AbstractIncomingMessage, reason: str) -> str:
        log.warning(
            "status message refused: %s",
            reason[:500],
            extra={"message_id": message.message_id, "routing_key": message.routing_key},
        )
        await message.reject(requeue=False)  # dead-lettered: kept for an operator
        self._metrics.status_changes.labels("refused").inc()
        return "refused"
