"""Status changes from the routing core: consumed from RabbitMQ, kept, shown to the citizen.

The routing core publishes one message per status change on the exchange ``lapor.status``
(``contract/complaint-status.v1.schema.json``, ``contract/asyncapi.yaml``). Every replica consumes
the same quorum queue. Each message is applied in one transaction:

- its AMQP ``message_id`` goes into ``complaint_status_events`` (unique): a redelivery finds it
  and changes nothing (outcome ``duplicate``); a message under a kept id that says something
  else (another status, time, agency or complaint) is refused, not taken for a copy;
- the complaint's ``status``, ``status_changed_at`` and (when given) ``agency`` change only when
  its ``changed_at`` is later than the one shown: consumers take messages in no set order, and
  the newest change wins (an older one is kept, ``applied`` false: outcome ``stale``); the
  complaint's row is locked first, so changes to one complaint on several replicas take turns;
- when it is shown and changes the status word, ``notify`` runs in the same transaction (the
  SMS channel queues a message to the numbers that got the complaint's receipt by SMS:
  ``gateway.sms_store.StatusPush``); the intake locks the complaints a transaction of its joins
  or follows (``FOR KEY SHARE``), so a message joining the complaint meanwhile commits with its
  reply before the change (and is told) or after it (and is stored after it);
- a body that is not a valid status change, one naming a complaint this database does not
  hold (or with another tracking ID), or one whose ``changed_at`` is more than
  :data:`MAX_AHEAD` ahead of the gateway's clock (shown, it would hide every real change until
  then), is rejected without requeueing: the broker dead-letters it to
  ``status_feed.dead_letter_queue``. Kept, never dropped.

The message is acknowledged after the commit. When the database fails, the consumer stops
taking messages (the unacknowledged ones go back to the queue as the connection closes, not
rejected), backs off and checks that the database can write (reachable, and on PostgreSQL not
read-only) before it consumes again: RabbitMQ before 4.3 counts every return towards a quorum
queue's delivery limit.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import aio_pika
import pamqp.decode
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue, ExchangeType
from sqlalchemy import insert, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway import periodic, tracking
from gateway.ids import worker_name
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
# A refused status named in the log: one word of letters, never digits (a NIK, a phone number)
# nor a name of several words.
_WORD = re.compile(r"[A-Za-z][A-Za-z_]{0,39}")
# RFC 3339's offset is hours 00-23 and minutes 00-59: Python reads "+07:99" as 8:39 ahead.
_RFC3339 = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
    r"(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
)
# How far a changed_at may be ahead of the gateway's clock (the two clocks' drift). One further
# ahead is refused: shown, it would hide every real change until that time came.
MAX_AHEAD = timedelta(minutes=5)
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


def parse(body: bytes, message_id: str | None, content_encoding: str | None = None) -> StatusChange:
    """The status change a message carries (pure). Raises :class:`Refused` naming what is wrong,
    for exactly the bodies the schema refuses (tests/unit/test_status_feed.py checks both).

    The body is JSON text in UTF-8 (a byte order mark, UTF-16 or UTF-32 are read too, as JSON
    allows); ``content_encoding``, the AMQP property, is only named when such a body cannot be
    read: a compressed one (``gzip``) is refused as it is, not taken apart."""
    try:
        data: Any = json.loads(body)
    # RecursionError: nested deeper than the parser goes ("[[[[..."): no status change, and not
    # a bug to retry either.
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        encoding = (content_encoding or "").strip()
        named = (
            ""
            if encoding.lower().replace("-", "").replace("_", "") in ("", "utf8")
            else f" (content_encoding {encoding[:40]!r}: bodies are JSON text in UTF-8)"
        )
        raise Refused(f"body is not JSON{named}: {exc}") from exc
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
        # Named when it is a plain word ("IN_PROGRESS", "Selesai"): what the routing core sends
        # instead, for the operator to tell them.
        shown = f" {status!r}" if isinstance(status, str) and _WORD.fullmatch(status) else ""
        raise Refused(f"status{shown} is not a word of a-z and _, 2-24 characters")
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
    if message_id and len(message_id) <= MAX_MESSAGE_ID and _utf8(message_id):
        return message_id
    # No id (the contract asks for one), one too long to keep, or octets that are no UTF-8
    # (see :func:`tolerate_raw_short_strings`): the same bytes are the same message.
    source = message_id.encode("utf-8", "surrogateescape") if message_id else body
    return "sha256:" + hashlib.sha256(source).hexdigest()


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _short_str(value: bytes) -> tuple[int, str]:
    """pamqp's short string decoder, but octets that are no UTF-8 are kept (as surrogates, the
    way ``surrogateescape`` reads them) instead of failing the whole frame."""
    try:
        length = value[0]
        return length + 1, value[1 : length + 1].decode("utf-8", "surrogateescape")
    except (IndexError, TypeError) as err:
        raise ValueError("Could not unpack short string value") from err


def _field_table(value: bytes) -> tuple[int, dict[str, Any]]:
    """pamqp's field table decoder (headers), but a key whose octets are no UTF-8 is kept as
    :func:`_short_str` keeps a value."""
    try:
        length = int.from_bytes(value[0:4], "big")
        offset, end = 4, 4 + length
        if len(value) < 4 or end > len(value):
            raise ValueError("Field table length exceeds available data")
        data: dict[str, Any] = {}
        while offset < end:
            key_length = value[offset]
            offset += 1
            if offset + key_length > end:
                raise ValueError("Field table key length exceeds data")
            key = value[offset : offset + key_length].decode("utf-8", "surrogateescape")
            offset += key_length
            consumed, result = pamqp.decode.embedded_value(value[offset:])
            offset += consumed
            data[key] = result
        return end, data
    except (IndexError, TypeError) as err:
        raise ValueError("Could not unpack data") from err


def tolerate_raw_short_strings() -> None:
    """Have the AMQP client read a property or a header name that is no UTF-8 (a message id, a
    content type: AMQP short strings are octets, RabbitMQ passes them on unchecked, and another
    client can send them) instead of failing to decode the delivery. pamqp raises there, which
    takes the whole connection down before the message reaches the gateway; the broker delivers
    it again, for ever, and no status change behind it is ever applied. Read, such a message is
    refused (its body, or its id kept under the hash of its octets) like any other. Replaces the
    short string and field table entries of pamqp's decoder tables, for the process: valid
    UTF-8 reads as before."""
    tolerant: dict[Any, Any] = {
        pamqp.decode.short_str: _short_str,
        pamqp.decode.field_table: _field_table,
    }
    tables: list[dict[Any, Any]] = [pamqp.decode.METHODS, pamqp.decode.TABLE_MAPPING]
    for table in tables:
        for name, decoder in list(table.items()):
            if decoder in tolerant:
                table[name] = tolerant[decoder]


# Run inside the transaction of a change that is shown: what else the change causes (the SMS
# channel queues a message to the citizen); returns how many replies it queued.
@dataclass(frozen=True, slots=True)
class Shown:
    """What a complaint showed before a change: its status word and when it was set (None: as
    received)."""

    status: str
    changed_at: datetime | None


# Run in the change's transaction when the change is shown (see :func:`apply`), with what the
# complaint showed before it; what it queued.
Notify = Callable[[AsyncConnection, StatusChange, datetime, Shown], Awaitable[int]]


async def apply(
    engine: AsyncEngine, change: StatusChange, now: datetime, notify: Notify | None = None
) -> tuple[Outcome, int]:
    """Keep the change and, when it is the newest, show it and run ``notify`` with what the
    complaint showed before (``notify`` decides whom a change tells: the status word may be the
    same for the complaint, and new under the ID of a message that joined it since): one
    transaction. The outcome, and what ``notify`` queued. Raises :class:`Refused` for a change
    that must not be applied."""
    if change.changed_at > now + MAX_AHEAD:
        raise Refused(
            f"changed_at is {_ahead(change.changed_at - now)} ahead of the gateway's clock"
        )
    told = 0
    try:
        async with engine.begin() as conn:
            # The complaint's row is locked first (FOR UPDATE on PostgreSQL; SQLite has one
            # writer), so every statement below sees the changes committed before this one,
            # their events included: the agency's condition reads the events, and without the
            # lock it would be read from before a concurrent newer change committed, and an
            # older agency would be written over the newer one. The intake's transactions that
            # join or follow the complaint hold its row too (gateway.intake._lock_joined): the
            # messages and replies ``notify`` reads are all committed, none in flight.
            found = (
                await conn.execute(
                    select(
                        complaints.c.tracking_id,
                        complaints.c.status,
                        complaints.c.status_changed_at,
                    )
                    .where(complaints.c.id == change.complaint_id)
                    .with_for_update()
                )
            ).first()
            if found is None:
                raise Refused("no complaint with this complaint_id")
            if found.tracking_id != change.tracking_id:
                raise Refused("tracking_id is not the complaint's")
            # Seen before: nothing changes (kept by another consumer meanwhile, the unique
            # message_id refuses the insert below, and it is read the same way).
            seen = await _seen(conn, change.key)
            if seen is not None:
                return _redelivered(seen, change), 0
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
                told = await notify(conn, change, now, Shown(found.status, found.status_changed_at))
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
        # The transaction, update and notification included, rolled back. Kept meanwhile by
        # another consumer (a redelivery racing its first delivery), or under the id of a
        # change of another complaint; anything else was not foreseen.
        async with engine.connect() as conn:
            seen = await _seen(conn, change.key)
        if seen is None:
            raise
        return _redelivered(seen, change), 0
    return (Outcome.APPLIED if applied else Outcome.STALE), told


def _ahead(delta: timedelta) -> str:
    minutes = round(delta.total_seconds() / 60)
    return f"{round(minutes / 1440)} days" if minutes >= 2880 else f"{minutes} minutes"


async def _seen(conn: AsyncConnection, key: str) -> Any:
    """The change kept under this message_id, if any."""
    return (
        await conn.execute(
            select(
                complaint_status_events.c.complaint_id,
                complaint_status_events.c.status,
                complaint_status_events.c.agency,
                complaint_status_events.c.changed_at,
            ).where(complaint_status_events.c.message_id == key)
        )
    ).first()


def _redelivered(seen: Any, change: StatusChange) -> Outcome:
    """A message whose id was kept before: a duplicate when it says the same, else refused (a
    message_id names one change; taking the second for a copy would drop it unseen)."""
    if (seen.complaint_id, seen.status, seen.agency, seen.changed_at) == (
        change.complaint_id,
        change.status,
        change.agency,
        change.changed_at,
    ):
        return Outcome.DUPLICATE
    other = "another complaint" if seen.complaint_id != change.complaint_id else "this complaint"
    raise Refused(
        f"message_id already kept with another change ({other}: status {seen.status},"
        f" changed_at {seen.changed_at:%Y-%m-%dT%H:%M:%S}Z): each change needs its own"
    )


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
        self.name = worker_name()
        self.consuming = False
        self._attempts: dict[str, int] = {}  # failures of unforeseen kinds, per message
        self._consuming_since: float | None = None  # loop time the current session began

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set, backing off while the broker or database fails."""
        # Set here, not when built: a process that builds the consumer and never runs it (the
        # relay's) does not run the status feed.
        self._metrics.status_feed_enabled.set(1)
        tolerate_raw_short_strings()
        delay = self._settings.backoff_initial
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            self._consuming_since = None
            try:
                await self._consume(stop)
                delay = self._settings.backoff_initial
            except _Failure as exc:
                since = self._consuming_since
                if since is not None and loop.time() - since >= self._settings.backoff_max:
                    # It had been consuming a while: a new outage starts its back-off afresh,
                    # not where the last one (hours ago) left it.
                    delay = self._settings.backoff_initial
                log.warning(
                    "status feed failed, retrying in %.1fs",
                    delay,
                    extra={"reason": exc.reason, "error": str(exc)[:300], "consumer": self.name},
                )
                await periodic.stopped(stop, delay)
                delay = min(delay * 2, self._settings.backoff_max)

    async def _consume(self, stop: asyncio.Event) -> None:
        # No message is taken while the database cannot keep it. A read-only PostgreSQL (a
        # standby after a failover, default_transaction_read_only) answers SELECT 1: each
        # message taken would fail and go back, and every return is a delivery to a quorum
        # queue's delivery limit (RabbitMQ 4 before 4.3), past which it is dead-lettered.
        try:
            async with self._engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
                read_only = (
                    conn.dialect.name == "postgresql"
                    and (await conn.scalar(text("SHOW transaction_read_only"))) == "on"
                )
        except DB_UNAVAILABLE as exc:
            raise _Failure("database", f"{type(exc).__name__}: {exc}") from exc
        if read_only:
            raise _Failure("database", "the database is read-only (transaction_read_only is on)")
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
            self._consuming_since = asyncio.get_running_loop().time()
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
        change: StatusChange | None = None
        try:
            change = parse(message.body, message.message_id, message.content_encoding)
            outcome, told = await apply(self._engine, change, self._clock(), self._notify)
        except Refused as exc:
            return await self._refuse(message, str(exc), change)
        except DB_UNAVAILABLE as exc:
            if _refused_values(exc):
                return await self._refuse(
                    message, f"the database refused its values: {exc}", change
                )
            if not isinstance(exc, IntegrityError):
                raise _Failure("database", f"{type(exc).__name__}: {exc}") from exc
            # A constraint no state of the database lifts: not foreseen.
            return await self._unforeseen(message, exc, change)
        except Exception as exc:
            return await self._unforeseen(message, exc, change)
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

    async def _unforeseen(
        self, message: AbstractIncomingMessage, exc: Exception, change: StatusChange | None
    ) -> str:
        """Not foreseen (a bug, a library's surprise): not acknowledged, so not lost, and tried
        again after the back-off; a message that keeps failing is set aside."""
        if len(self._attempts) > 1000:
            self._attempts.clear()
        key = _key(message.body, message.message_id)
        attempts = self._attempts[key] = self._attempts.get(key, 0) + 1
        log.error(
            "status feed: unexpected error",
            exc_info=exc,
            extra={"consumer": self.name, "message_id": key, "attempts": attempts},
        )
        if attempts >= POISON_ATTEMPTS:
            del self._attempts[key]
            return await self._refuse(
                message, f"failed {attempts} times: {type(exc).__name__}: {exc}", change
            )
        raise _Failure("internal", type(exc).__name__) from exc

    async def _refuse(
        self, message: AbstractIncomingMessage, reason: str, change: StatusChange | None = None
    ) -> str:
        # The message_id the operator finds in the dead-letter queue (or, without one, the key
        # the gateway gave its body), and, once read, the complaint it names: what an operator
        # asked about one complaint's status searches for.
        about = (
            {}
            if change is None
            else {
                "complaint_id": change.complaint_id,
                "tracking_id": change.tracking_id,
                "status": change.status,
            }
        )
        log.warning(
            "status message refused: %s",
            reason[:500],
            extra={
                "message_id": _key(message.body, message.message_id),
                "routing_key": message.routing_key,
                "consumer": self.name,
                **about,
            },
        )
        await message.reject(requeue=False)  # dead-lettered: kept for an operator
        self._metrics.status_changes.labels("refused").inc()
        return "refused"
