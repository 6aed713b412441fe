"""The intake port: the one call every channel makes.

``IntakeService.accept(raw, parser)`` stores the message exactly as received, runs the channel's
pure parser on it and, in ONE transaction, writes the raw inbound row, the canonical complaint and
its outbox row (or a quarantine row, when the parser fails or the database refuses a value). It
returns a :class:`~gateway.domain.Receipt` only after the commit, so a channel may acknowledge its
sender as soon as it has one. A message whose ``(channel, provider_message_id)`` was seen before
gets the first receipt back and creates nothing (dedup tier 1; the unique constraint decides, so
replicas racing on the same message agree).

When the database cannot commit, :class:`~gateway.errors.IntakeUnavailable` is raised and the
channel answers its protocol's "try again later".

A channel that owes its sender something durable once the receipt is known (the SMS reply with
the tracking ID) passes a :class:`FollowUp` to :meth:`IntakeService.accept_with`: its rows are
written in the same transaction, so the complaint and what the sender is promised commit
together or not at all.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Table, func, select, text, update
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, SQLAlchemyError, StatementError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway import contract, sealing, tracking
from gateway.crypto import Keys
from gateway.dedup import (
    Candidate,
    Decision,
    EarlierDuplicate,
    Tier,
    decide,
    load_earlier,
    tokens_hash,
)
from gateway.domain import (
    Channel,
    Complaint,
    ComplaintDraft,
    Event,
    ParseOutcome,
    Privacy,
    RawInbound,
    Receipt,
    ReceiptStatus,
)
from gateway.errors import IntakeUnavailable, ParseError, QuarantineNotFound
from gateway.filestore import FileStore
from gateway.grouping import to_the_end
from gateway.identity import (
    Identity,
    IdentityGraph,
    Resolution,
    holding_proof,
    identities_of,
    vouched_by,
)
from gateway.ids import new_id
from gateway.logs import mask_text
from gateway.metrics import Metrics
from gateway.queries import agencies_since, changed_since, complaint_ids_of
from gateway.settings import DedupSettings
from gateway.storage.schema import (
    complaints,
    dedup_decisions,
    identities,
    identity_conflicts,
    outbox,
    persons,
    quarantine,
    raw_inbound,
)
from normalizer import comparison_tokens

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Parser:
    """A channel's pure parser with the name it is registered under (``sms.kannel``)."""

    name: str
    parse: Callable[[RawInbound], ParseOutcome]


# Writes a channel's items in the intake's transaction; one result per item, in order.
FollowUpWriter = Callable[[AsyncConnection, list[Any]], Awaitable[list[Any]]]


@dataclass(frozen=True, slots=True)
class FollowUp:
    """What a channel writes in the intake's own transaction once a message's receipt is known.

    ``item_for`` makes the channel's item from the receipt (None: nothing to write); ``write``
    writes the items of a whole group commit in its transaction (a :data:`FollowUpWriter`,
    e.g. the SMS reply outbox's batch writer). A message answered with the receipt of an earlier
    delivery of itself (``provider_message_id`` seen before) writes nothing: the earlier
    delivery wrote its follow-up, and :meth:`IntakeService.accept_with` returns None for it.
    """

    write: FollowUpWriter
    item_for: Callable[[Receipt], Any | None]


class Handoff(Protocol):
    """The outbox relay of this process, when it takes committed event rows from memory."""

    def lease(self) -> tuple[str, datetime] | None:
        """(owner, expiry) to write event rows with, or None to leave them to be claimed."""

    def hand_over(self, rows: list[dict[str, Any]]) -> None:
        """Event rows committed with :meth:`lease`'s lease (the outbox table's columns, with the
        event JSON in the clear: the intake of this process has it, sealed or not)."""


class ParserRegistry:
    """Parsers by name, so a quarantined message can be parsed again after a fix."""

    def __init__(self, parsers: Iterable[Parser] = ()) -> None:
        self._parsers: dict[str, Parser] = {}
        for parser in parsers:
            self.add(parser)

    def add(self, parser: Parser) -> None:
        """Register ``parser``; names are unique."""
        if parser.name in self._parsers:
            raise ValueError(f"parser {parser.name!r} registered twice")
        self._parsers[parser.name] = parser

    def get(self, name: str) -> Parser | None:
        """The parser called ``name``, if any."""
        return self._parsers.get(name)


@dataclass(frozen=True, slots=True)
class TrackingStatus:
    """What anyone holding a tracking ID may learn: status and dates, nothing personal."""

    tracking_id: str
    status: str
    received_at: datetime
    kind: str | None
    # When the routing core last changed the status (None: as received), and the agency
    # handling it, when the routing core or the citizen named one (gateway.status_feed).
    updated_at: datetime | None = None
    agency: str | None = None


@dataclass(frozen=True, slots=True)
class _Quarantine:
    stage: str
    reason: str


@dataclass(slots=True)
class _Pending:
    """A parsed message waiting for the next group commit."""

    raw: RawInbound
    raw_id: str
    provider_id: str
    parser_name: str
    outcome: ParseOutcome | _Quarantine
    work: _Work | None  # for a complaint draft
    in_store: bool
    stored: dict[str, Any]  # the raw row's sealed body and transport metadata
    follow_up: FollowUp | None
    future: asyncio.Future[Receipt]
    follow_result: Any = None  # what the follow-up's writer returned, once committed
    joined: bool = False  # it joined an earlier complaint (dedup tier 2 or 3), once committed


@dataclass(frozen=True, slots=True)
class _Written:
    """What one message's rows were: its receipt, and whether an event was queued."""

    receipt: Receipt
    queued_event: bool
    tier: Tier | None
    follow_result: Any = None


def _settle(p: _Pending, receipt: Receipt | None = None, exc: BaseException | None = None) -> None:
    if p.future.done():  # the sender went away (its request was cancelled)
        return
    if exc is not None:
        p.future.set_exception(exc)
    elif receipt is not None:
        p.future.set_result(receipt)


# The database cannot answer or commit: the caller's retry signal, never a parse failure.
DB_UNAVAILABLE = (SQLAlchemyError, OSError, TimeoutError, ConnectionError)
_WRITE_ATTEMPTS = 5
# How long the outcome of a PostgreSQL transaction whose COMMIT raised is waited for while the
# server still has it in progress (its backend finishing the COMMIT the client gave up on).
COMMIT_OUTCOME_WAIT = 10.0


async def transaction_committed(engine: AsyncEngine, xid: int, wait: float) -> bool:
    """Whether PostgreSQL transaction ``xid`` (``pg_current_xact_id()``) committed, asked on a
    fresh connection, as the server documents for a client cut off during its COMMIT. While
    it is in progress (its backend still finishing) the question is asked again, for up to
    ``wait`` seconds; False when it aborted, is still in progress after that, or the
    database cannot be asked: the caller cannot count on it having committed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    delay = 0.02
    while True:
        try:
            async with engine.connect() as conn:
                status = await conn.scalar(
                    text("SELECT pg_xact_status(:xid)"), {"xid": xid}
                )
        except DB_UNAVAILABLE:
            return False
        now = loop.time()
        if status != "in progress" or now >= deadline:
            return bool(status == "committed")
        await asyncio.sleep(min(delay, deadline - now))
        delay = min(delay * 2, 0.5)


# What a status query shows of a complaint.
_SHOWN = (
    complaints.c.status,
    complaints.c.kind,
    complaints.c.status_changed_at,
    complaints.c.agency,
)


def _tracking_status(tid: str, row: Any) -> TrackingStatus:
    return TrackingStatus(
        tid, row.status, row.received_at, row.kind, row.status_changed_at, row.agency
    )


def _message_status(tid: str, row: Any, agency_since: str | None) -> TrackingStatus:
    """The status under a message's own ID (``raw_inbound.tracking_id``): a message quarantined
    (no complaint: received, waiting for an operator), or one that joined an earlier complaint
    (a duplicate told an ID of its own, or replayed from quarantine). Of that complaint only
    what changed since the message joined it: the status, agency and date it had before are the
    earlier complaint's, and would tell whoever holds this ID that there was one."""
    own = row.shown or {}  # a message told an ID of its own: its kind, the agency it asked
    kind = own.get("kind", row.kind)
    # Since it joined (``stored_at``), not since the transport received it (a letter read
    # before the clerk confirmed it, a long SMS's first part): a change between the two is
    # the earlier complaint's.
    if row.status is None or not changed_since(row.status_changed_at, row.stored_at):
        return TrackingStatus(tid, "received", row.received_at, kind, None, own.get("agency"))
    # The agency a change since it joined named (``agency_since``: one named before is the
    # earlier complaint's), else the one it asked for, as a new complaint keeps it; shown to
    # whoever holds the ID, as a new complaint's is, confidential or not.
    agency = agency_since or own.get("agency")
    return TrackingStatus(tid, row.status, row.received_at, kind, row.status_changed_at, agency)


class IntakeService:
    """Durable intake: raw inbound, complaint and outbox row in one transaction."""

    def __init__(
        self,
        engine: AsyncEngine,
        files: FileStore,
        metrics: Metrics,
        keys: Keys,
        inline_body_limit: int = 64 * 1024,
        clock: Clock = utcnow,
        on_commit: Callable[[], None] | None = None,
        dedup: DedupSettings | None = None,
        handoff: Handoff | None = None,
    ) -> None:
        self._engine = engine
        # Lookup hashes must stay the same across restarts: the caller passes the configured keys.
        self._keys = keys
        self._dedup = dedup or DedupSettings()
        self._postgres = engine.dialect.name == "postgresql"
        self._files = files
        self._metrics = metrics
        self._inline_limit = inline_body_limit
        self._clock = clock
        self._on_commit = on_commit
        self._handoff = handoff
        self._pending: deque[_Pending] = deque()
        self._writers: set[asyncio.Task[None]] = set()
        # SQLite has one writer; PostgreSQL commits several transactions in parallel.
        self._max_writers = 1 if engine.dialect.name == "sqlite" else 4
        # Bounded so one transaction never holds the database (SQLite's single pooled
        # connection, the person locks) for long while readers such as /readyz wait.
        self._max_batch = 64

    async def accept(
        self, raw: RawInbound, parser: Parser, parsed: ParseOutcome | ParseError | None = None
    ) -> Receipt:
        """Store ``raw``, parse it and queue its complaint; the receipt exists only after commit.

        ``parsed`` is what ``parser`` already returned (or the ParseError it raised) for this
        ``raw`` in a channel that had to read it first; parsers are pure, so it is not run again.
        """
        receipt, _ = await self.accept_with(raw, parser, parsed)
        return receipt

    async def accept_with(
        self,
        raw: RawInbound,
        parser: Parser,
        parsed: ParseOutcome | ParseError | None = None,
        follow_up: FollowUp | None = None,
    ) -> tuple[Receipt, Any]:
        """:meth:`accept`, with ``follow_up``'s rows in the same transaction; what its writer
        returned for this message (None when it wrote nothing, see :class:`FollowUp`)."""
        provider_id = stored_provider_id(raw)
        if parsed is None:
            outcome = _run_parser(parser, raw)
        elif isinstance(parsed, ParseError):
            outcome = _Quarantine(parsed.stage, parsed.reason)
        else:
            outcome = parsed
        raw_id = new_id()
        work = None
        if isinstance(outcome, ComplaintDraft):
            try:
                work = _Work.of(raw, outcome, raw_id, provider_id, self._keys)
            except Exception as exc:  # a normaliser bug must not lose the message either
                log.exception("normalising failed", extra={"channel": raw.channel.value})
                outcome = _Quarantine("normalize-crash", f"{type(exc).__name__}: {exc}")
        in_store = len(raw.body) > self._inline_limit
        stored = sealing.raw_columns(
            self._keys, raw_id, None if in_store else raw.body, dict(raw.metadata)
        )
        try:
            if in_store:
                await self._files.put_bytes(raw.body)
            future: asyncio.Future[Receipt] = asyncio.get_running_loop().create_future()
            pending = _Pending(
                raw,
                raw_id,
                provider_id,
                parser.name,
                outcome,
                work,
                in_store,
                stored,
                follow_up,
                future,
            )
            self._pending.append(pending)
            if len(self._writers) < self._max_writers:
                self._writers.add(asyncio.create_task(self._drain(), name="intake-writer"))
            receipt = await pending.future
        except (*DB_UNAVAILABLE, IntakeUnavailable) as exc:
            self._metrics.unavailable.labels(raw.channel.value).inc()
            log.warning(
                "intake could not commit: %s",
                type(exc).__name__,
                extra={"channel": raw.channel.value, "error": str(exc)[:500]},
            )
            if isinstance(exc, IntakeUnavailable):
                raise
            raise IntakeUnavailable(str(exc)) from exc
        if pending.joined and not receipt.redelivered and receipt.duplicate_of is None:
            # Told an ID of its own, as for a new complaint; counted as a duplicate (above),
            # not as a complaint accepted.
            log.info(
                "joined an earlier complaint under an ID of its own",
                extra={
                    "channel": raw.channel.value,
                    "raw_id": receipt.raw_id,
                    "tracking_id": receipt.tracking_id,
                },
            )
        elif receipt.status is ReceiptStatus.FOLLOWUP and not receipt.redelivered:
            log.info(
                "added to the complaint it names",
                extra={
                    "channel": raw.channel.value,
                    "raw_id": receipt.raw_id,
                    "tracking_id": receipt.tracking_id,
                },
            )
        elif receipt.redelivered or receipt.status is ReceiptStatus.DUPLICATE:
            log.info(
                "already known: answered with the first tracking ID",
                extra={
                    "channel": raw.channel.value,
                    "raw_id": receipt.raw_id,
                    "tracking_id": receipt.tracking_id,
                    "status": receipt.status.value,
                },
            )
        else:
            # The outcome as written: a draft the database refused was quarantined instead.
            self._count(raw.channel, receipt, pending.outcome)
        return receipt, pending.follow_result

    async def idle(self) -> None:
        """Wait until no group commit is being written (before the engine's pool is closed).

        A writer goes on when the sender that started it was cancelled (an HTTP client went
        away); its transaction must end before the pool is disposed, or its connection stays
        open outside any pool.
        """
        while self._writers:
            await asyncio.wait(set(self._writers))

    # Group commit: messages that arrive while a transaction is being written wait and go
    # together in the next one (one BEGIN/COMMIT and one executemany per table for the whole
    # batch). Each sender still hears back only after the commit that holds its message.

    async def _drain(self) -> None:
        try:
            while self._pending:
                count = min(len(self._pending), self._max_batch)
                batch = [self._pending.popleft() for _ in range(count)]
                # Written to the end even when this writer is cancelled: a transaction whose
                # COMMIT the database may already have carried out, answered "retry", would make
                # a sender without a transport id of its own send the complaint a second time.
                # (A sender going away cancels only its own wait; close() waits for the writers.)
                try:
                    await to_the_end(self._write_batch(batch), "intake-commit")
                except BaseException:  # cancelled: never leave a sender waiting forever
                    # The batch in hand ended as it would have, its senders told what was really
                    # committed; the messages still queued were never written: they retry.
                    last = self._writers <= {asyncio.current_task()}
                    # The queue too when no other writer is left to drain it.
                    for p in [*batch, *(self._pending if last else ())]:
                        _settle(p, exc=IntakeUnavailable("intake writer stopped"))
                    if last:
                        self._pending.clear()
                    raise
        finally:
            # Leave the writer set in the same step that saw the queue empty (no await in
            # between), so a message queued right after always finds a writer or starts one.
            task = asyncio.current_task()
            if task is not None:
                self._writers.discard(task)

    async def _write_batch(self, batch: list[_Pending]) -> None:
        """Write ``batch`` and settle each of its senders, whatever happens."""
        try:
            try:
                await self._flush(batch)
            except Exception as exc:
                # Not the database being away (that is settled in _flush): a fault of one
                # message's data or of the code. Each goes on its own, so one message cannot
                # fail the others, and the writer carries on.
                log.exception(
                    "intake batch failed unexpectedly; writing it one by one",
                    extra={"error": type(exc).__name__},
                )
                for p in batch:
                    await self._flush_alone(p)
        except BaseException:  # cancelled itself (the event loop closing): answer everyone
            for p in batch:
                _settle(p, exc=IntakeUnavailable("intake writer stopped"))
            raise

    async def _flush(self, batch: list[_Pending]) -> None:
        committing = False  # every statement ran: what fails now is the COMMIT (or after it)
        xid: int | None = None  # PostgreSQL's id of the transaction, to ask its outcome
        try:
            async with self._engine.begin() as conn:
                if self._postgres:
                    xid = int(await conn.scalar(text("SELECT pg_current_xact_id()::text")))
                written, events = await self._write(conn, batch)
                committing = True
        except DB_UNAVAILABLE as exc:
            if committing:
                await self._after_failed_commit(batch, written, events, exc, xid)
                return
            await self._flush_failed(batch, exc)
            return
        self._done(batch, written, events)

    async def _after_failed_commit(
        self,
        batch: list[_Pending],
        written: list[_Written],
        events: list[dict[str, Any]],
        exc: BaseException,
        xid: int | None,
    ) -> None:
        """Answer a batch whose COMMIT raised: a connection lost or a timeout while it ran
        leaves it unknown whether the database carried it out. Answered "retry" when it had, a
        sender without a transport id of its own (a JSON API call without Idempotency-Key)
        would file the complaint a second time. On PostgreSQL the server is asked what became
        of the transaction (``xid``), waiting while it is still in progress: a backend goes on
        with a COMMIT its client gave up on, so rows looked for too early would not be seen
        yet. On SQLite (in this process, nothing left half-way) the batch's raw rows are looked
        for on a fresh connection: found, the transaction committed (all of it: found one,
        found all). Committed, the senders get their receipts; otherwise nothing was stored
        and they retry, as before. A commit that succeeds costs no extra query on SQLite and
        one short one per batch on PostgreSQL (the transaction's id, asked before writing)."""
        ids = [p.raw_id for p in batch]
        if xid is not None:
            committed = await transaction_committed(self._engine, xid, COMMIT_OUTCOME_WAIT)
            found = set(ids) if committed else set()
        else:
            try:
                async with self._engine.connect() as conn:
                    query = select(raw_inbound.c.id).where(raw_inbound.c.id.in_(ids))
                    found = set((await conn.execute(query)).scalars())
            except DB_UNAVAILABLE:  # still away: nothing can be told, the senders retry
                found = set()
        if not found:
            await self._flush_failed(batch, exc)
            return
        log.warning(
            "intake COMMIT raised but was carried out: senders answered with their receipts",
            extra={"error": type(exc).__name__, "messages": len(batch)},
        )
        if len(found) < len(ids):  # never expected of one transaction: answer what is known
            log.error("a COMMIT stored part of its batch", extra={"messages": len(batch)})
            for p, w in zip(batch, written, strict=True):
                if p.raw_id in found:
                    _settle(p, w.receipt)
                else:
                    _settle(p, exc=exc)
            return
        self._done(batch, written, events)

    async def _flush_failed(self, batch: list[_Pending], exc: BaseException) -> None:
        """Answer a batch whose transaction did not commit (``exc``), or write it again."""
        if isinstance(exc, StatementError) and not isinstance(exc, DBAPIError):
            # Not from the database: a value refused while the statement was built (a column
            # type's check, e.g. a naive time). One message's fault, not the database being
            # away: _write_batch writes the batch one by one.
            raise exc
        if not isinstance(exc, DBAPIError):  # the database is away: the senders retry
            for p in batch:
                _settle(p, exc=exc)
            return
        refused = _refused_value(exc)
        if not refused and not _worth_retrying(exc):
            for p in batch:
                _settle(p, exc=exc)
            return
        if refused:
            log.error(
                "a message the database refuses; writing the batch one by one",
                extra={"error": type(exc.orig).__name__},
            )
        # A value the database refuses (too long for its column, out of range) is one
        # message's: the others must not share its fate. A redelivery (possibly racing on
        # another replica), an identity created meanwhile by another transaction, a taken
        # tracking ID or a deadlock between person locks: the same. Each message goes in a
        # transaction of its own.
        for p in batch:
            await self._flush_one(p)

    async def _flush_alone(self, p: _Pending) -> None:
        """:meth:`_flush_one`, and whatever it raises is this message's answer alone."""
        try:
            await self._flush_one(p)
        except Exception as exc:
            log.exception("a message could not be written", extra={"error": type(exc).__name__})
            _settle(
                p, exc=IntakeUnavailable(f"the message could not be written: {type(exc).__name__}")
            )

    async def _flush_one(self, p: _Pending) -> None:
        try:
            for _ in range(_WRITE_ATTEMPTS):
                try:
                    async with self._engine.begin() as conn:
                        (written,), events = await self._write(conn, [p])
                except DBAPIError as exc:
                    if _refused_value(exc) and not isinstance(p.outcome, _Quarantine):
                        # The database will never take this complaint as it is (a character
                        # it cannot store, a value too long): keep the message in quarantine,
                        # acknowledged, rather than answer "retry" for ever.
                        log.warning(
                            "a message the database refuses is quarantined",
                            extra={"error": type(exc.orig).__name__},
                        )
                        p.outcome = _Quarantine("store", _refusal(exc))
                        p.work = None
                        continue
                    if not _worth_retrying(exc):
                        raise
                    first = await self._receipt_for(p.raw.channel, p.provider_id)
                    if first is not None:
                        self._metrics.duplicates.labels(p.raw.channel.value, "redelivery").inc()
                        _settle(p, first)
                        return
                    # Write again: it now sees what the other transaction committed. New ids,
                    # in case the conflict was a tracking ID another complaint took.
                    if isinstance(p.outcome, ComplaintDraft):
                        p.work = _Work.of(p.raw, p.outcome, p.raw_id, p.provider_id, self._keys)
                    continue
                except StatementError as exc:
                    # Not from the database (a DBAPIError is caught above): a value refused
                    # while the statement was built, by a column type (SQLite's Date given a
                    # time, a naive time). As for a value the database refuses: the complaint
                    # is kept in quarantine, not answered "retry" for ever. When the message's
                    # own raw row is refused (a channel's bug in its transport facts), nothing
                    # can keep it: the sender is answered "retry".
                    if isinstance(p.outcome, _Quarantine):
                        raise
                    log.warning(
                        "a message refused before it reached the database is quarantined",
                        extra={"error": type(exc.orig).__name__},
                    )
                    p.outcome = _Quarantine("store", _refusal(exc))
                    p.work = None
                    continue
                self._done([p], [written], events)
                return
            _settle(p, exc=IntakeUnavailable("the message could not be written after retries"))
        except DB_UNAVAILABLE as exc:
            _settle(p, exc=exc)

    def _done(
        self, batch: list[_Pending], written: list[_Written], events: list[dict[str, Any]]
    ) -> None:
        if events and self._handoff is not None:
            self._handoff.hand_over(events)
        elif self._on_commit is not None and any(w.queued_event for w in written):
            self._on_commit()
        for p, w in zip(batch, written, strict=True):
            if w.tier in (Tier.RETRY, Tier.SIMILAR):
                self._metrics.duplicates.labels(p.raw.channel.value, w.tier.value).inc()
                p.joined = True
            elif w.tier is Tier.FOLLOWUP:
                self._metrics.followups.labels(p.raw.channel.value).inc()
            p.follow_result = w.follow_result
            _settle(p, w.receipt)

    async def _write(
        self, conn: AsyncConnection, batch: list[_Pending]
    ) -> tuple[list[_Written], list[dict[str, Any]]]:
        """Write the rows of ``batch`` in the transaction of ``conn``; say what each receipt is.

        The identity graph and the dedup candidates of the whole batch are read up front in a
        few statements, every message is then decided in memory in arrival order, and the rows
        go in with one multi-row insert per table. The second value is the event rows written
        leased to the relay of this process, to hand over after the commit (empty when there
        is no such relay or it is catching up).
        """
        now = self._clock()
        placer = _Placer(conn, self._keys, self._dedup, self._postgres, now)
        await placer.prepare([(p.raw_id, p.raw, p.work) for p in batch if p.work is not None])
        written = [self._rows_of(placer, p, now) for p in batch]
        await _join_after_changes(conn, placer.rows, self._postgres)
        lease = self._handoff.lease() if self._handoff is not None else None
        events: list[dict[str, Any]] = []
        if lease is not None:
            owner, expires = lease
            bodies = placer.rows.event_bodies
            for row in placer.rows.queued(outbox):
                row.update(claimed_by=owner, claim_expires=expires, attempts=1)
                events.append(row | {"body": bodies[row["message_id"]]})
        await placer.rows.flush(conn)
        return await _follow_ups(conn, batch, written), events

    def _rows_of(self, placer: _Placer, p: _Pending, now: datetime) -> _Written:
        """Queue one message's rows and say what its receipt is."""
        raw = p.raw
        raw_id = p.raw_id
        outcome = p.outcome
        row = {
            "id": raw_id,
            "channel": raw.channel.value,
            "provider_message_id": p.provider_id,
            "parser": p.parser_name,
            "received_at": raw.received_at,
            "stored_at": now,
            "content_type": raw.content_type,
            "sha256": raw.sha256,
            "size": len(raw.body),
            **p.stored,
        }
        rows = placer.rows
        if p.work is not None:
            placed = placer.place(raw, raw_id, p.work)
            rows.add(
                raw_inbound,
                {
                    **row,
                    "status": ReceiptStatus.DUPLICATE.value
                    if placed.tier in (Tier.RETRY, Tier.SIMILAR)
                    else placed.receipt.status.value,
                    "tracking_id": placed.receipt.tracking_id,
                    "complaint_id": placed.receipt.complaint_id,
                    "shown": _shown(placed, p.work.complaint.draft),
                },
            )
            placed.add_to(rows)
            return _Written(
                replace(placed.receipt, raw_sha256=raw.sha256),
                placed.outbox is not None,
                placed.tier,
            )
        tracking_id = tracking.new_tracking_id() if isinstance(outcome, _Quarantine) else None
        status = _status_of(outcome)
        rows.add(
            raw_inbound,
            {
                **row,
                "status": status.value,
                "tracking_id": tracking_id,
                "complaint_id": None,
                "shown": None,  # every row of one insert names the same columns
            },
        )
        if isinstance(outcome, _Quarantine):
            rows.add(
                quarantine,
                {
                    "raw_inbound_id": raw_id,
                    "channel": raw.channel.value,
                    "stage": outcome.stage,
                    # In the clear for the operator: NIK and phone numbers masked, as in logs;
                    # the sender's text it may quote kept storable (see _storable).
                    "reason": _storable(mask_text(outcome.reason)),
                    "created_at": now,
                },
            )
        receipt = Receipt(status, tracking_id, raw_id, raw_sha256=raw.sha256)
        return _Written(receipt, False, None)

    async def _receipt_for(self, channel: Channel, provider_id: str) -> Receipt | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(
                        raw_inbound.c.id,
                        raw_inbound.c.status,
                        raw_inbound.c.tracking_id,
                        raw_inbound.c.complaint_id,
                        raw_inbound.c.sha256,
                        raw_inbound.c.shown,
                    ).where(
                        raw_inbound.c.channel == channel.value,
                        raw_inbound.c.provider_message_id == provider_id,
                    )
                )
            ).first()
        if row is None:
            return None
        status = ReceiptStatus(row.status)
        if status is ReceiptStatus.DUPLICATE and row.shown is not None:
            # It joined a complaint under an ID of its own, answered as a new complaint's: so
            # again (a "duplicate" now would tell what the first answer did not).
            status = ReceiptStatus.ACCEPTED
        return Receipt(
            status=status,
            tracking_id=row.tracking_id,
            raw_id=row.id,
            complaint_id=row.complaint_id,
            redelivered=True,
            raw_sha256=row.sha256,
        )

    def followup_code(self, tracking_id: str) -> str:
        """The follow-up code of a tracking ID told to a web form's or an API client's sender
        (:meth:`gateway.crypto.Keys.followup_code`): with the ID, what adds to the complaint."""
        return self._keys.followup_code(tracking_id)

    def followup_code_matches(self, tracking_id: str, typed: str) -> bool:
        """Whether ``typed`` is the follow-up code of ``tracking_id`` (checked again in the
        transaction, for the ID the message names)."""
        return self._keys.followup_code_matches(tracking_id, typed)

    async def holds_complaint(self, tracking_id: str) -> bool:
        """Whether a complaint stands behind ``tracking_id`` (its own ID, or one told a message
        that joined it): what a follow-up naming the ID is added to. Not for a message still in
        quarantine (no complaint yet). :class:`IntakeUnavailable` when the database cannot
        say."""
        try:
            async with self._engine.connect() as conn:
                return bool(await _load_named(conn, [tracking_id]))
        except DB_UNAVAILABLE as exc:
            raise IntakeUnavailable(str(exc)) from exc

    async def earlier_receipt(self, channel: Channel, provider_message_id: str) -> Receipt | None:
        """The receipt a message of ``channel`` with this provider id was given, when one is
        stored (what :meth:`accept` answers its retry), else None: a channel's rate limit lets
        a retry through, since it adds nothing. :class:`IntakeUnavailable` when the database
        cannot say."""
        try:
            return await self._receipt_for(channel, _provider_key(provider_message_id))
        except DB_UNAVAILABLE as exc:
            raise IntakeUnavailable(str(exc)) from exc

    async def transport_meta(self, raw_id: str) -> dict[str, Any]:
        """The transport metadata raw inbound ``raw_id`` was stored with (an Idempotency-Key's
        first request: its attachments); :class:`IntakeUnavailable` when it cannot be read."""
        row = await self._raw_row(raw_id, raw_inbound.c.transport_meta)
        return sealing.raw_meta(self._keys, raw_id, row.transport_meta, row.sealed)

    async def raw_body(self, raw_id: str) -> bytes:
        """The body raw inbound ``raw_id`` was stored with, opened (inline or from the file
        store): what a channel sent when another of its requests committed first (the letter
        desk records the values actually sent); :class:`IntakeUnavailable` when it cannot be
        read."""
        row = await self._raw_row(raw_id, raw_inbound.c.body, raw_inbound.c.sha256)
        body = sealing.raw_body(self._keys, raw_id, row.body, row.sealed)
        if body is None:  # over the inline limit: the file store holds it
            try:
                body = await self._files.read(row.sha256)
            except OSError as exc:
                raise IntakeUnavailable(str(exc)) from exc
        return body

    async def _raw_row(self, raw_id: str, *columns: Any) -> Any:
        """``columns`` and ``sealed`` of raw inbound ``raw_id``; :class:`IntakeUnavailable` when
        the database cannot answer."""
        try:
            async with self._engine.connect() as conn:
                query = select(*columns, raw_inbound.c.sealed).where(raw_inbound.c.id == raw_id)
                return (await conn.execute(query)).one()
        except DB_UNAVAILABLE as exc:
            raise IntakeUnavailable(str(exc)) from exc

    def _count(
        self, channel: Channel, receipt: Receipt, outcome: ParseOutcome | _Quarantine
    ) -> None:
        labels = channel.value
        if isinstance(outcome, ComplaintDraft):
            self._metrics.accepted.labels(labels).inc()
            log.info(
                "complaint accepted",
                extra={
                    "channel": labels,
                    "tracking_id": receipt.tracking_id,
                    "raw_id": receipt.raw_id,
                },
            )
        elif isinstance(outcome, _Quarantine):
            self._metrics.quarantined.labels(labels).inc()
            log.warning(
                "message quarantined",
                extra={
                    "channel": labels,
                    "raw_id": receipt.raw_id,
                    "stage": outcome.stage,
                    "reason": outcome.reason,
                },
            )
        else:
            self._metrics.recorded.labels(labels, outcome.reason).inc()
            log.info(
                "message recorded, not a complaint",
                extra={"channel": labels, "raw_id": receipt.raw_id, "reason": outcome.reason},
            )

    # ---- quarantine -------------------------------------------------------------------------

    async def list_quarantine(self, include_resolved: bool = False) -> list[dict[str, Any]]:
        """Quarantine entries, oldest first, as plain rows for the CLI."""
        query = (
            select(quarantine, raw_inbound.c.parser, raw_inbound.c.received_at)
            .join(raw_inbound, raw_inbound.c.id == quarantine.c.raw_inbound_id)
            .order_by(quarantine.c.id)
        )
        if not include_resolved:
            query = query.where(quarantine.c.resolved_at.is_(None))
        async with self._engine.connect() as conn:
            return [dict(r._mapping) for r in await conn.execute(query)]

    async def show_quarantine(self, entry_id: int) -> dict[str, Any]:
        """One quarantine entry with its raw message (body and transport metadata)."""
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(
                        quarantine,
                        raw_inbound.c.parser,
                        raw_inbound.c.body,
                        raw_inbound.c.sha256,
                        raw_inbound.c.transport_meta,
                        raw_inbound.c.sealed,
                        raw_inbound.c.content_type,
                        raw_inbound.c.received_at,
                        raw_inbound.c.tracking_id,
                    )
                    .join(raw_inbound, raw_inbound.c.id == quarantine.c.raw_inbound_id)
                    .where(quarantine.c.id == entry_id)
                )
            ).first()
        if row is None:
            raise QuarantineNotFound(str(entry_id))
        entry = dict(row._mapping)
        raw_id, sealed = entry["raw_inbound_id"], entry.pop("sealed")
        entry["body"] = sealing.raw_body(self._keys, raw_id, entry["body"], sealed)
        entry["transport_meta"] = sealing.raw_meta(
            self._keys, raw_id, entry["transport_meta"], sealed
        )
        if entry["body"] is None:
            entry["body"] = await self._files.read(entry["sha256"])
        return entry

    async def replay(self, entry_id: int, parsers: ParserRegistry) -> Receipt:
        """Parse a quarantined message again; on success it becomes a complaint.

        The complaint keeps the tracking ID the sender was given when the message arrived.
        A replay that fails again leaves the entry open with the new reason recorded.
        """
        entry = await self.show_quarantine(entry_id)
        if entry["resolved_at"] is not None:
            raise QuarantineNotFound(f"{entry_id} is already resolved")
        parser = parsers.get(entry["parser"])
        channel = Channel(entry["channel"])
        raw = RawInbound(
            channel=channel,
            body=entry["body"],
            received_at=entry["received_at"],
            content_type=entry["content_type"],
            metadata=entry["transport_meta"],
        )
        now = self._clock()
        outcome: ParseOutcome | _Quarantine = (
            _Quarantine("replay", f"no parser registered as {entry['parser']!r}")
            if parser is None
            else _run_parser(parser, raw)
        )
        for attempt in range(_WRITE_ATTEMPTS):
            try:
                receipt = await self._replay_write(entry_id, entry, raw, outcome, now)
                break
            except DBAPIError as exc:
                # An identity or a tracking ID taken meanwhile by the live intake: again, seeing
                # what it committed.
                if not _worth_retrying(exc) or attempt == _WRITE_ATTEMPTS - 1:
                    raise
        if receipt.status is ReceiptStatus.QUARANTINED:
            return receipt
        if self._on_commit is not None:
            self._on_commit()
        status = receipt.status
        log.info("quarantine entry replayed", extra={"entry": entry_id, "status": status.value})
        return receipt

    async def _replay_write(
        self,
        entry_id: int,
        entry: dict[str, Any],
        raw: RawInbound,
        outcome: ParseOutcome | _Quarantine,
        now: datetime,
    ) -> Receipt:
        raw_id = entry["raw_inbound_id"]
        async with self._engine.begin() as conn:
            provider_id = (
                await conn.execute(
                    select(raw_inbound.c.provider_message_id).where(raw_inbound.c.id == raw_id)
                )
            ).scalar_one()
            # Only an entry still open: of two operators replaying it at once, one does it (the
            # other's update waits for the first's commit, then finds it resolved).
            base = update(quarantine).where(
                quarantine.c.id == entry_id, quarantine.c.resolved_at.is_(None)
            )
            if isinstance(outcome, _Quarantine):
                done = await conn.execute(
                    base.values(
                        replay_count=quarantine.c.replay_count + 1,
                        last_replay_at=now,
                        last_replay_error=_storable(
                            mask_text(f"{outcome.stage}: {outcome.reason}")
                        ),
                    )
                )
                if done.rowcount == 0:
                    raise QuarantineNotFound(f"{entry_id} is already resolved")
                return Receipt(ReceiptStatus.QUARANTINED, entry["tracking_id"], raw_id)
            done = await conn.execute(
                base.values(
                    replay_count=quarantine.c.replay_count + 1,
                    last_replay_at=now,
                    resolved_at=now,
                    last_replay_error=None,
                )
            )
            if done.rowcount == 0:
                raise QuarantineNotFound(f"{entry_id} is already resolved")
            receipt = Receipt(_status_of(outcome), None, raw_id)
            shown = None
            if isinstance(outcome, ComplaintDraft):
                # The sender already holds this tracking ID: the complaint keeps it.
                work = _Work.of(raw, outcome, raw_id, provider_id, self._keys, entry["tracking_id"])
                placer = _Placer(conn, self._keys, self._dedup, self._postgres, now)
                await placer.prepare([(raw_id, raw, work)])
                placed = placer.place(raw, raw_id, work)
                placed.add_to(placer.rows)
                joins = placed.tier in (Tier.RETRY, Tier.SIMILAR, Tier.FOLLOWUP)
                if joins and placed.receipt.complaint_id is not None:
                    # A status change takes turns with the replay: one applied after it finds
                    # the message under the complaint, and texts the quarantine's ID.
                    complaint = [placed.receipt.complaint_id]
                    await _lock_joined(conn, complaint, placer.rows, self._postgres)
                await placer.rows.flush(conn)
                receipt = placed.receipt
                if joins:
                    # Joined a complaint (or was added to the one it names): the ID it keeps
                    # (the quarantine's) is its own, whoever its sender, and shows the message
                    # as a new complaint would.
                    shown = _as_new(outcome)
                    receipt = replace(receipt, status=ReceiptStatus.DUPLICATE, redelivered=False)
            await conn.execute(
                update(raw_inbound)
                .where(raw_inbound.c.id == raw_id)
                .values(status=receipt.status.value, complaint_id=receipt.complaint_id, shown=shown)
            )
        return receipt

    async def status(self, tracking_id: str) -> TrackingStatus | None:
        """Status and dates for a tracking ID; never personal data or content."""
        tid = tracking.normalize(tracking_id)
        if tid is None:
            return None
        try:
            return await self._status(tid)
        except DB_UNAVAILABLE as exc:
            raise IntakeUnavailable(str(exc)) from exc

    async def _status(self, tid: str) -> TrackingStatus | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(*_SHOWN, complaints.c.received_at).where(
                        complaints.c.tracking_id == tid
                    )
                )
            ).first()
            if row is not None:
                return _tracking_status(tid, row)
            raw = (
                await conn.execute(
                    select(
                        raw_inbound.c.received_at,
                        raw_inbound.c.stored_at,
                        raw_inbound.c.shown,
                        raw_inbound.c.complaint_id,
                        *_SHOWN,
                    )
                    .select_from(
                        raw_inbound.outerjoin(
                            complaints, complaints.c.id == raw_inbound.c.complaint_id
                        )
                    )
                    .where(raw_inbound.c.tracking_id == tid)
                    # The first message told this ID (a retry of it, told it again, came later).
                    .order_by(raw_inbound.c.received_at, raw_inbound.c.id)
                    .limit(1)
                )
            ).first()
            if raw is None:
                return None
            agencies = (
                await agencies_since(conn, [(raw.complaint_id, raw.stored_at)])
                if raw.status is not None
                else {}
            )
        return _message_status(tid, raw, agencies.get((raw.complaint_id, raw.stored_at)))

    async def dedup_history(self, tracking_id: str) -> list[dict[str, Any]]:
        """Every dedup decision that created or joined the complaint with this tracking ID, or
        the complaint joined by the message told this ID (its own: see :class:`_Placer`).

        Each with ``conflicts``: what its message's identities clashed with (an identity
        already linked to another NIK's person, left there), as ``kind``, ``person_id`` (the
        person it stays with) and ``claimed_by_person_id`` (the message's person); never the
        identity's value. ``score`` of a ``new`` decision is the best similarity to the
        person's earlier open complaints (None without candidates); its
        ``matched_tracking_id``, a closed complaint of the same matter it repeats."""
        tid = tracking.normalize(tracking_id)
        if tid is None:
            return []
        complaint = complaint_ids_of(tid)
        query = (
            select(
                dedup_decisions.c.created_at,
                dedup_decisions.c.tier,
                dedup_decisions.c.identity_kind,
                dedup_decisions.c.score,
                dedup_decisions.c.candidates,
                dedup_decisions.c.matched_tracking_id,
                raw_inbound.c.channel,
                raw_inbound.c.id.label("raw_inbound_id"),
                raw_inbound.c.received_at,
            )
            .join(raw_inbound, raw_inbound.c.id == dedup_decisions.c.raw_inbound_id)
            .where(dedup_decisions.c.complaint_id.in_(complaint))
            .order_by(dedup_decisions.c.id)
        )
        async with self._engine.connect() as conn:
            found = [dict(r._mapping) | {"conflicts": []} for r in await conn.execute(query)]
            by_raw = {row["raw_inbound_id"]: row for row in found}
            if by_raw:
                clashes = await conn.execute(
                    select(
                        identity_conflicts.c.raw_inbound_id,
                        identity_conflicts.c.kind,
                        identity_conflicts.c.person_id,
                        identity_conflicts.c.claimed_by_person_id,
                    )
                    .where(identity_conflicts.c.raw_inbound_id.in_(sorted(by_raw)))
                    .order_by(identity_conflicts.c.id)
                )
                for c in clashes:
                    by_raw[c.raw_inbound_id]["conflicts"].append(
                        {
                            "kind": c.kind,
                            "person_id": c.person_id,
                            "claimed_by_person_id": c.claimed_by_person_id,
                        }
                    )
            return found

    async def count_complaints(self) -> int:
        """How many complaints are stored (for status output and tests)."""
        async with self._engine.connect() as conn:
            result = await conn.execute(select(func.count()).select_from(complaints))
            return int(result.scalar_one())


def _run_parser(parser: Parser, raw: RawInbound) -> ParseOutcome | _Quarantine:
    """Run a pure parser; any failure becomes a quarantine outcome instead of a lost message."""
    try:
        return parser.parse(raw)
    except ParseError as exc:
        return _Quarantine(exc.stage, exc.reason)
    except Exception as exc:  # a parser bug must not lose the message: quarantine it
        log.exception("parser %s crashed", parser.name, extra={"channel": raw.channel.value})
        return _Quarantine("parser-crash", f"{type(exc).__name__}: {exc}")


def _status_of(outcome: ParseOutcome | _Quarantine) -> ReceiptStatus:
    if isinstance(outcome, ComplaintDraft):
        return ReceiptStatus.ACCEPTED
    if isinstance(outcome, _Quarantine):
        return ReceiptStatus.QUARANTINED
    return ReceiptStatus.RECORDED


def _source(raw: RawInbound, provider_id: str, raw_id: str) -> Mapping[str, str]:
    return {"provider_message_id": provider_id, "raw_inbound_id": raw_id, **raw.metadata}


def _flat(obj: Any) -> dict[str, Any]:
    """A flat dataclass's fields as a dict (``asdict`` without its recursive deep copy)."""
    return {f.name: getattr(obj, f.name) for f in fields(obj)}


def _complaint_row(complaint: Complaint, raw_id: str, keys: Keys) -> dict[str, Any]:
    """The complaint row; who the reporter is (NIK, name, contacts) is stored encrypted."""
    draft = complaint.draft
    reporter: dict[str, Any] = {
        field: {"enc": keys.encrypt(value)} if value else None
        for field, value in _flat(draft.reporter).items()
        if field != "handles"
    }
    reporter["handles"] = {
        kind: {"enc": keys.encrypt(value)} for kind, value in draft.reporter.handles.items()
    }
    return {
        "id": complaint.id,
        "tracking_id": complaint.tracking_id,
        "channel": complaint.channel.value,
        "kind": draft.kind.value,
        "status": "received",
        **sealing.complaint_columns(
            keys,
            complaint.id,
            draft.title,
            draft.body,
            _flat(draft.location) if draft.location else None,
            draft.privacy.confidential,
        ),
        "received_at": complaint.received_at,
        "created_at": None,  # the commit's time, set when the rows are placed
        "anonymous": draft.privacy.anonymous,
        "confidential": draft.privacy.confidential,
        "reporter": reporter,
        # A file's name may be the citizen's own ("KTP 3201...jpg"): encrypted like the reporter.
        "attachments": [
            {**_flat(a), "filename": {"enc": keys.encrypt(a.filename)} if a.filename else None}
            for a in draft.attachments
        ],
        "occurred_on": draft.occurred_on,
        "agency": draft.agency,
        "raw_inbound_id": raw_id,
    }


def _outbox_row(
    complaint: Complaint, event: Event, keys: Keys, duplicate_of: str | None = None
) -> tuple[dict[str, Any], str]:
    """The outbox row of one event about ``complaint`` (its body sealed), and the event JSON."""
    message_id = new_id()
    body = contract.encode(contract.event_body(complaint, event, duplicate_of))
    row = {
        "message_id": message_id,
        "event": event.value,
        "channel": complaint.channel.value,
        "routing_key": contract.routing_key(event, complaint.channel),
        "complaint_id": complaint.id,
        "body": sealing.event_body(keys, message_id, body),
        "sealed": True,
        "created_at": None,  # the commit's time, set when the rows are placed
    }
    return row, body


@dataclass(slots=True)
class _Work:
    """A complaint draft's share of the intake that needs no database.

    Done when the message is accepted, outside the group-commit transaction, so that the
    transaction holds the database (SQLite's single writer, PostgreSQL's person locks) only for
    what needs it, and this work overlaps the database's work on the batch before: the
    normalised identities with their lookup hashes, the comparison tokens for dedup, and the
    rows of a new complaint (its ids, the complaint row, the ``created`` event). Which of those
    rows are written is decided in the transaction (:meth:`_Placer.place`).
    """

    identities: list[Identity]
    tokens: str
    sealed_tokens: str  # ``tokens`` as the complaint row stores them
    complaint: Complaint
    complaint_row: dict[str, Any]
    created_outbox: tuple[dict[str, Any], str]  # the row, and the event JSON it seals
    given_tracking_id: str | None = None  # a replay: the ID the sender was told on arrival

    @classmethod
    def of(
        cls,
        raw: RawInbound,
        draft: ComplaintDraft,
        raw_id: str,
        provider_id: str,
        keys: Keys,
        tracking_id: str | None = None,
    ) -> _Work:
        """The work for ``draft``; ``tracking_id`` is one the sender already holds (a replay)."""
        complaint = Complaint(
            new_id(),
            tracking_id or tracking.new_tracking_id(),
            raw.channel,
            raw.received_at,
            draft,
            _source(raw, provider_id, raw_id),
        )
        tokens = " ".join(comparison_tokens(f"{draft.title or ''} {draft.body}"))
        return cls(
            identities_of(raw.channel, draft, keys),
            tokens,
            sealing.complaint_tokens(keys, complaint.id, tokens),
            complaint,
            _complaint_row(complaint, raw_id, keys),
            _outbox_row(complaint, Event.CREATED, keys),
            tracking_id,
        )


class _Placer:
    """Recognises senders and decides dedup tiers for the complaint drafts of one transaction."""

    def __init__(
        self, conn: AsyncConnection, keys: Keys, dedup: DedupSettings, lock: bool, now: datetime
    ) -> None:
        self._conn = conn
        self._keys = keys
        self._dedup = dedup
        self._now = now
        self.graph = IdentityGraph(keys, lock)
        self.rows = _RowBuffer(keys)
        self._who: dict[str, Resolution] = {}
        # Earlier complaints by person, newest first: read from the table for the persons the
        # batch meets, then extended with the batch's own complaints as they are placed.
        self._candidates: dict[str, list[Candidate]] = {}
        # Likewise the messages that joined a complaint within the dedup window, by person
        # (read for the batch's senders): a provider's retry of one is tier 2, and the ID its
        # sender was told is told again (see place()).
        self._duplicates: dict[str, list[EarlierDuplicate]] = {}
        # The complaints the batch's messages name as the one they are about, by the ID named.
        self._named: dict[str, _Named] = {}

    async def prepare(self, drafts: list[tuple[str, RawInbound, _Work]]) -> None:
        """Resolve every sender of the batch and read the dedup candidates they need."""
        if not drafts:
            return
        await self.graph.load(self._conn, [i for _, _, w in drafts for i in w.identities])
        for raw_id, raw, work in drafts:
            self._who[raw_id] = await self.graph.resolve(
                self._conn, raw.channel, work.identities, raw_id, self._now, self.rows
            )
        # A person first seen in this batch has no complaints in the table yet.
        known = {
            self.graph.current(w.person_id)
            for w in self._who.values()
            if w.person_id is not None and not w.created
        }
        since = min(raw.received_at for _, raw, _ in drafts) - timedelta(
            days=self._dedup.window_days
        )
        # Only a sender seen before can have sent a message that joined a complaint.
        senders = {
            w.sender_hash
            for w in self._who.values()
            if w.sender_hash is not None and w.person_id is not None and not w.created
        }
        # Their messages that joined a complaint: within the retry window, for tier 2; within
        # the dedup window, for the ID a sender was told when it joined one (see place()).
        earlier = await load_earlier(
            self._conn, self._dedup, known, since, self._keys, senders, since
        )
        self._candidates = earlier.complaints
        for person_id, found in earlier.duplicates.items():
            # By the surviving person, as the candidates (a merge of this batch moved the
            # complaints, whose person the rows carry, before they were read).
            self._duplicates.setdefault(self.graph.current(person_id), []).extend(found)
        about = {w.complaint.draft.about for _, _, w in drafts} - {None}
        if about:
            self._named = await _load_named(self._conn, about)

    def _raise_privacy(self, person_id: str, complaint_id: str, privacy: Privacy) -> None:
        """Queue ``privacy`` for the complaint's row, and give it to the complaint as a later
        message of this batch compares it."""
        self.rows.raise_privacy(complaint_id, privacy)
        self._candidates[person_id] = [
            replace(c, anonymous=privacy.anonymous, confidential=privacy.confidential)
            if c.id == complaint_id
            else c
            for c in self._candidates_of(person_id)
        ]
        self._duplicates[person_id] = [
            replace(d, anonymous=privacy.anonymous, confidential=privacy.confidential)
            if d.complaint_id == complaint_id
            else d
            for d in self._duplicates.get(person_id, [])
        ]

    def _candidates_of(self, person_id: str) -> list[Candidate]:
        # Keys are surviving persons: every merge of the batch happened in prepare(), before
        # the candidates were read and before any complaint of the batch was placed.
        return self._candidates.get(person_id, [])

    def place(self, raw: RawInbound, raw_id: str, work: _Work) -> _Placement:
        """Decide the dedup tier of a prepared draft and pick its rows (not yet inserted)."""
        who = self._who[raw_id]
        person_id = self.graph.current(who.person_id) if who.person_id is not None else None
        tokens = work.tokens
        duplicates = self._duplicates.get(person_id, []) if person_id is not None else []
        # Hashed only when compared or kept: most messages need neither.
        tokens_key = tokens_hash(self._keys, tokens) if duplicates else None
        vouched = vouched_by(raw.channel, work.identities)
        decision = (
            decide(
                self._dedup,
                self._candidates_of(person_id),
                who.sender_hash,
                tokens,
                raw.received_at,
                anonymous=work.complaint.draft.privacy.anonymous,
                confidential=work.complaint.draft.privacy.confidential,
                vouched=vouched,
                duplicates=duplicates,
                tokens_key=tokens_key,
            )
            if person_id is not None
            else Decision(Tier.NEW)
        )
        now = self._now
        decision_row = {
            "raw_inbound_id": raw_id,
            "tier": decision.tier.value,
            "complaint_id": decision.complaint_id,
            # A new complaint's: the closed one it repeats, if any (the event names it too).
            "matched_tracking_id": decision.tracking_id or decision.repeats_tracking_id,
            "person_id": person_id,
            "identity_kind": who.matched_kind,
            "score": decision.score,
            "candidates": decision.candidates,
            "created_at": now,
            "sender_hash": None,  # set for a message that joins a complaint (below)
            "tokens_hash": None,
            "identity_hashes": None,
        }
        # The receipt names the earlier complaint only to the sender it came from: the same
        # phone number, address or account, which the channel's transport vouches for. Anyone
        # else the identity graph takes for that person (through a NIK, a phone number or an
        # address typed on a form, in a text or a letter, which a stranger may know) is told an
        # ID of its own, as for a new complaint: the answer must not tell them that the person
        # whose NIK they typed complained of the same matter, nor that complaint's ID. Their
        # message still joins it for the routing core; their ID follows it from now on.
        named = self._named.get(work.complaint.draft.about or "")
        if named is not None and self._holds(raw, work, who, named):
            # It names a complaint whose ID its sender holds: added to that one, whatever its
            # words (dedup compares words; this sender said which complaint it means), unless
            # it is a provider's retry of such a message.
            key = tokens_key or tokens_hash(self._keys, tokens)
            return self._resent(raw, raw_id, work, who, named, decision_row, key) or self._follow(
                raw, raw_id, work, who, person_id, named, decision_row, key
            )
        own = decision.same_sender
        if decision.tier is Tier.RETRY:
            assert decision.tracking_id is not None
            told = decision.told_tracking_id
            if told is not None and told != decision.tracking_id and own:
                # A retry of a message that joined the complaint and was told an ID of its
                # own, from the same phone, address or account: that ID again (it shows
                # nothing of the complaint from before it). From a typed identity, another
                # sender's ID (and the place their message showed) is no more told than the
                # complaint's: an ID of its own (below). Sent again asking confidentiality
                # (the complaint asked it already, so this is still a retry), that ID shows
                # from now on what a confidential message's would.
                if work.complaint.draft.privacy.confidential:
                    self.rows.make_confidential(told)
                receipt = Receipt(
                    ReceiptStatus.ACCEPTED,
                    told,
                    raw_id,
                    complaint_id=decision.complaint_id,
                    redelivered=True,
                )
            elif not own:
                receipt = _own_id(work, decision, raw_id)
            elif told is not None:
                # ...that was told the complaint's ID, from a sender the transport vouches for
                # (as for the complaint's own retry): its receipt again.
                receipt = Receipt(
                    ReceiptStatus.DUPLICATE,
                    told,
                    raw_id,
                    complaint_id=decision.complaint_id,
                    duplicate_of=told,
                    redelivered=True,
                )
            else:
                receipt = Receipt(
                    ReceiptStatus.ACCEPTED,
                    decision.tracking_id,
                    raw_id,
                    complaint_id=decision.complaint_id,
                    redelivered=True,
                )
            # The identities it gave hold the ID it was told (a web form sent again, told an
            # ID of its own: the phone it gave may name that ID by SMS, see _load_named).
            decision_row["identity_hashes"] = (
                " ".join(sorted({i.value_hash for i in work.identities})) or None
            )
            return _Placement(receipt, decision.tier, decision_row)
        if decision.tier is Tier.SIMILAR:
            assert decision.tracking_id is not None and decision.complaint_id is not None
            # This phone, address or account joined this complaint before under an ID of its
            # own, or was given in a message told one: it is told that ID again, as the
            # complaint's sender is told the complaint's (a new ID each time would tell it that
            # it joined someone's complaint).
            told_before = (
                _told_before(duplicates, who.sender_hash, decision)
                if not own and work.given_tracking_id is None and who.sender_hash in vouched
                else None
            )
            source = work.complaint.source
            if work.given_tracking_id is not None or not own:
                # The sender holds another ID than the complaint's: a replayed message's,
                # given when it arrived, or one of its own (above), told now or before.
                given = told_before or work.complaint.tracking_id
                source = {**source, contract.GIVEN_TRACKING_ID: given}
            # The privacy the first complaint asked for holds for its new evidence too: an
            # identity hidden, or content kept unpublished, is not lifted by a later message.
            draft = work.complaint.draft
            privacy = Privacy(
                anonymous=draft.privacy.anonymous or decision.first_anonymous,
                confidential=draft.privacy.confidential or decision.first_confidential,
            )
            if (privacy.anonymous, privacy.confidential) != (
                decision.first_anonymous,
                decision.first_confidential,
            ):
                # It asks more than the complaint did: the complaint's row, which the public
                # pages and Open311 read and later messages inherit from, asks it from now on.
                assert person_id is not None
                self._raise_privacy(person_id, decision.complaint_id, privacy)
            first = replace(
                work.complaint,
                id=decision.complaint_id,
                tracking_id=decision.tracking_id,
                source=source,
                draft=replace(draft, privacy=privacy),
            )
            # The ID its sender holds for this complaint: the complaint's, or its own told
            # before; else it is told one of its own now.
            held = decision.tracking_id if own else told_before
            if told_before is not None and draft.privacy.confidential:
                # Its sender holds an ID of its own and now asks confidentiality: that ID shows
                # no more than a confidential message's, as the complaint's own would.
                self.rows.make_confidential(told_before)
            receipt = (
                Receipt(
                    ReceiptStatus.DUPLICATE,
                    held,
                    raw_id,
                    complaint_id=decision.complaint_id,
                    duplicate_of=held,
                )
                if held is not None
                else _own_id(work, decision, raw_id)
            )
            assert receipt.tracking_id is not None
            self._remember(
                raw, work, who, person_id, decision_row, tokens_key,
                (decision.complaint_id, decision.tracking_id, receipt.tracking_id), privacy,
            )
            return _Placement(
                receipt,
                decision.tier,
                decision_row,
                outbox=_outbox_row(
                    first, Event.DUPLICATE, self._keys, duplicate_of=decision.tracking_id
                ),
                now=now,
            )
        complaint = work.complaint
        decision_row["complaint_id"] = complaint.id
        complaint_row = work.complaint_row | {
            "created_at": now,
            "person_id": person_id,
            "sender_hash": who.sender_hash,
            "match_tokens": work.sealed_tokens,
            "identity_hashes": " ".join(i.value_hash for i in work.identities) or None,
        }
        if person_id is not None:
            # Newest first, like the candidates read from the table; with its privacy, so a
            # later message of the same batch joining it never lifts what it asked for.
            privacy = complaint.draft.privacy
            self._candidates.setdefault(person_id, []).insert(
                0,
                Candidate(
                    complaint.id,
                    complaint.tracking_id,
                    tokens,
                    who.sender_hash,
                    raw.received_at,
                    anonymous=privacy.anonymous,
                    confidential=privacy.confidential,
                    identity_hashes=frozenset(i.value_hash for i in work.identities),
                ),
            )
        receipt = Receipt(
            ReceiptStatus.ACCEPTED, complaint.tracking_id, raw_id, complaint_id=complaint.id
        )
        created = work.created_outbox
        if decision.repeats_tracking_id is not None:
            # The same matter as a complaint the routing core closed: a new complaint, whose
            # event names that one (rare: built again here, with the key added).
            repeats = {contract.REPEATS_TRACKING_ID: decision.repeats_tracking_id}
            source = {**complaint.source, **repeats}
            created = _outbox_row(replace(complaint, source=source), Event.CREATED, self._keys)
        return _Placement(
            receipt,
            decision.tier,
            decision_row,
            complaint=complaint_row,
            outbox=created,
            now=now,
        )


    def _holds(self, raw: RawInbound, work: _Work, who: Resolution, named: _Named) -> bool:
        """Whether the message's sender holds the ID it names: its phone number, address or
        account (or a letter's NIK checked against the KTP) sent or was given in a message
        told that ID, or it carries that ID's follow-up code (the web's and the API's)."""
        code = work.complaint.draft.about_code
        if code is not None and self._keys.followup_code_matches(named.id, code):
            return True
        proof = holding_proof(raw.channel, work.identities, raw.metadata)
        return who.sender_hash in proof and who.sender_hash in named.holders

    def _remember(
        self,
        raw: RawInbound,
        work: _Work,
        who: Resolution,
        person_id: str | None,
        decision_row: dict[str, Any],
        tokens_key: str | None,
        ids: tuple[str, str, str],
        privacy: Privacy,
    ) -> None:
        """Keep a message that joined a complaint (or followed it) for tier 2, as its sender's
        own words: a provider's retry of it is this message again, in a later group commit
        (its decision row: sender, words, identities) or in this one (the duplicates read for
        the batch). ``ids``: the complaint's id and tracking ID, and the ID its sender holds."""
        if who.sender_hash is None or person_id is None:
            return
        key = tokens_key or tokens_hash(self._keys, work.tokens)
        carried = frozenset(i.value_hash for i in work.identities)
        decision_row["sender_hash"] = who.sender_hash
        decision_row["tokens_hash"] = key
        decision_row["identity_hashes"] = " ".join(sorted(carried)) or None
        complaint_id, tracking_id, told = ids
        self._duplicates.setdefault(person_id, []).insert(
            0,
            EarlierDuplicate(
                complaint_id,
                tracking_id,
                told,
                who.sender_hash,
                key,
                raw.received_at,
                privacy.anonymous,
                privacy.confidential,
                carried,
            ),
        )

    def _resent(
        self,
        raw: RawInbound,
        raw_id: str,
        work: _Work,
        who: Resolution,
        named: _Named,
        decision_row: dict[str, Any],
        key: str,
    ) -> _Placement | None:
        """A provider's retry of a follow-up (tier 2: the same number and words, naming the
        same ID, within the retry window, asking no more privacy): answered as that follow-up
        was, nothing published again. Its earlier copy is looked for under every person: the
        number may be another person's than the complaint's (a phone a form gave)."""
        since = raw.received_at - timedelta(seconds=self._dedup.retry_window_seconds)
        asked = work.complaint.draft.privacy
        earlier = next(
            (
                d
                for found in self._duplicates.values()
                for d in found
                if d.sender_hash == who.sender_hash
                and d.complaint_id == named.complaint_id
                and d.told_tracking_id == named.id
                and d.tokens_hash == key
                and d.received_at >= since
                and (d.anonymous or not asked.anonymous)
                and (d.confidential or not asked.confidential)
            ),
            None,
        )
        if earlier is None:
            return None
        decision_row |= {
            "tier": Tier.RETRY.value,
            "complaint_id": named.complaint_id,
            "matched_tracking_id": named.id,
            "score": 1.0,
        }
        receipt = Receipt(
            ReceiptStatus.FOLLOWUP,
            named.id,
            raw_id,
            complaint_id=named.complaint_id,
            redelivered=True,
        )
        return _Placement(receipt, Tier.RETRY, decision_row)

    def _follow(
        self,
        raw: RawInbound,
        raw_id: str,
        work: _Work,
        who: Resolution,
        person_id: str | None,
        named: _Named,
        decision_row: dict[str, Any],
        key: str,
    ) -> _Placement:
        """A message about the complaint it names, from a sender holding that complaint's ID or
        an ID of its own for it: a ``followup`` event of that complaint, and the ID named told
        again. The message's privacy is its own with the complaint's added, as for a duplicate;
        asking more raises the complaint's (and an own ID's, as for a duplicate)."""
        draft = work.complaint.draft
        # The complaint's flags as read, with what an earlier message of this transaction asked.
        asked = self.rows.privacy_of(named.complaint_id) or Privacy()
        shown = Privacy(
            anonymous=named.anonymous or asked.anonymous,
            confidential=named.confidential or asked.confidential,
        )
        privacy = Privacy(
            anonymous=draft.privacy.anonymous or shown.anonymous,
            confidential=draft.privacy.confidential or shown.confidential,
        )
        if privacy != shown:
            owner = self.graph.current(named.person_id) if named.person_id else None
            if owner is not None and owner in self._candidates:
                self._raise_privacy(owner, named.complaint_id, privacy)
            else:
                self.rows.raise_privacy(named.complaint_id, privacy)
        own = named.id != named.tracking_id  # an ID of its own, told when it joined
        if own and draft.privacy.confidential:
            self.rows.make_confidential(named.id)
        source = work.complaint.source
        # The ID its sender holds for this message: given when it arrived (a replay), or the
        # one of its own it named.
        given = work.given_tracking_id or (named.id if own else None)
        if given is not None:
            source = {**source, contract.GIVEN_TRACKING_ID: given}
        followed = replace(
            work.complaint,
            id=named.complaint_id,
            tracking_id=named.tracking_id,
            source=source,
            draft=replace(draft, privacy=privacy),
        )
        decision_row |= {
            "tier": Tier.FOLLOWUP.value,
            "complaint_id": named.complaint_id,
            "matched_tracking_id": named.id,
            "score": None,
        }
        # Like a message that joined it: a provider's retry of it (same sender, same words) is
        # tier 2, told the same ID; and the ID it named stays this sender's.
        self._remember(
            raw, work, who, person_id, decision_row, key,
            (named.complaint_id, named.tracking_id, named.id), privacy,
        )
        receipt = Receipt(
            ReceiptStatus.FOLLOWUP, named.id, raw_id, complaint_id=named.complaint_id
        )
        return _Placement(
            receipt,
            Tier.FOLLOWUP,
            decision_row,
            outbox=_outbox_row(followed, Event.FOLLOWUP, self._keys),
            now=self._now,
        )


@dataclass(frozen=True, slots=True)
class _Named:
    """A complaint a message names by a tracking ID (``ComplaintDraft.about``), and who holds
    that ID: the phone numbers, addresses and accounts that sent or were given in the messages
    told it (the complaint's first, or one that joined it under an ID of its own)."""

    id: str  # the ID named: the complaint's, or a message's own
    complaint_id: str
    tracking_id: str  # the complaint's
    person_id: str | None
    anonymous: bool
    confidential: bool
    holders: frozenset[str]


async def _load_named(conn: AsyncConnection, ids: Iterable[str | None]) -> dict[str, _Named]:
    """The complaints behind ``ids`` (tracking IDs named by messages), with their holders: one
    statement over ``raw_inbound (tracking_id)``, every message told one of them with its
    complaint and its dedup decision (the sender and identities of a message that joined).

    Not locked: a follow-up may come from another person than the complaint's (a phone a form
    gave), whose lock does not cover the complaint, so a message raising its flags may commit
    meanwhile; the complaints the transaction joins are locked together, and their flags read
    again, just before its rows are written (:func:`_lock_joined`)."""
    r, c, d = raw_inbound, complaints, dedup_decisions
    query = (
        select(
            r.c.tracking_id.label("named"),
            c.c.id,
            c.c.tracking_id,
            c.c.person_id,
            c.c.anonymous,
            c.c.confidential,
            c.c.sender_hash,
            c.c.identity_hashes,
            d.c.sender_hash.label("told_sender"),
            d.c.identity_hashes.label("told_identities"),
        )
        .select_from(
            r.join(c, c.c.id == r.c.complaint_id).outerjoin(d, d.c.raw_inbound_id == r.c.id)
        )
        .where(r.c.tracking_id.in_(sorted(i for i in ids if i)))
    )
    rows = await conn.execute(query)
    found: dict[str, _Named] = {}
    for row in rows:
        held = {row.told_sender, *(row.told_identities or "").split()}
        if row.named == row.tracking_id:  # the complaint's own ID: its first sender holds it
            held |= {row.sender_hash, *(row.identity_hashes or "").split()}
        held.discard(None)
        before = found.get(row.named)
        found[row.named] = _Named(
            row.named,
            row.id,
            row.tracking_id,
            row.person_id,
            bool(row.anonymous),
            bool(row.confidential),
            frozenset(held) | (before.holders if before is not None else frozenset()),
        )
    return found


def _told_before(
    duplicates: list[EarlierDuplicate], sender: str | None, decision: Decision
) -> str | None:
    """The ID of its own a sender holds for the complaint ``decision`` joins: the one its own
    messages were told (the newest), else the one told to the first message that gave it (a
    form naming this phone). Its own come first: a later message of someone else giving the
    same phone must not change the ID the phone holds."""
    joined = [
        d
        for d in duplicates  # newest first
        if d.complaint_id == decision.complaint_id and d.told_tracking_id != decision.tracking_id
    ]
    sent = next((d.told_tracking_id for d in joined if d.sender_hash == sender), None)
    if sent is not None:
        return sent
    return next((d.told_tracking_id for d in reversed(joined) if sender in d.identity_hashes), None)


def _shown(placed: _Placement, draft: ComplaintDraft) -> dict[str, Any] | None:
    """What the ID of a message told an ID of its own shows of it (``raw_inbound.shown``), as a
    new complaint's would: its kind, the agency it asked for, and its title and place unless it
    asked for confidentiality. None for every other message."""
    receipt = placed.receipt
    if placed.tier in (Tier.NEW, Tier.FOLLOWUP) or receipt.duplicate_of or receipt.redelivered:
        return None
    return _as_new(draft)


def _as_new(draft: ComplaintDraft) -> dict[str, Any]:
    """What a message shows under an ID of its own, as a new complaint would (see _shown)."""
    secret = draft.privacy.confidential
    return {
        "kind": draft.kind.value,
        "agency": draft.agency,  # its holder sees it; the public not, when it is confidential
        "confidential": secret,
        "title": None if secret else draft.title,
        "location": None if secret or draft.location is None else _flat(draft.location),
    }


def _own_id(work: _Work, decision: Decision, raw_id: str) -> Receipt:
    """The receipt of a message joining an earlier complaint that its sender is not known to
    have sent: the ID drawn for the message (for a replay, the one given when it arrived),
    answered as a new complaint's."""
    return Receipt(
        ReceiptStatus.ACCEPTED,
        work.complaint.tracking_id,
        raw_id,
        complaint_id=decision.complaint_id,
    )


@dataclass(slots=True)
class _Placement:
    """The rows a complaint draft writes, decided but not yet inserted."""

    receipt: Receipt
    tier: Tier
    decision: dict[str, Any]
    complaint: dict[str, Any] | None = None
    outbox: tuple[dict[str, Any], str] | None = None  # the event row and its JSON
    now: datetime | None = None  # the commit's time, the event row's created_at

    def add_to(self, rows: _RowBuffer) -> None:
        """Queue them (after the raw inbound row they refer to)."""
        if self.complaint is not None:
            rows.add(complaints, self.complaint)
        if self.outbox is not None:
            row, body = self.outbox
            row = row | {"created_at": self.now}
            rows.add(outbox, row)
            rows.event_bodies[row["message_id"]] = body
        rows.add(dedup_decisions, self.decision)


class _RowBuffer:
    """Rows of one transaction, inserted together: one multi-row insert per table."""

    # Parents before children (foreign keys to persons and raw_inbound).
    ORDER = (
        persons,
        identities,
        identity_conflicts,
        raw_inbound,
        complaints,
        outbox,
        quarantine,
        dedup_decisions,
    )

    # Statements are immutable: built once, not for every table of every batch.
    INSERTS = {t.name: t.insert() for t in ORDER}

    def __init__(self, keys: Keys) -> None:
        self._keys = keys
        self._rows: dict[str, list[dict[str, Any]]] = {t.name: [] for t in self.ORDER}
        # The event JSON of each queued outbox row, by message id (the rows hold it sealed).
        self.event_bodies: dict[str, str] = {}
        # Complaints a later message asked more privacy for: their flags, set after the inserts.
        self._privacy: dict[str, Privacy] = {}
        # IDs of their own whose holder asked confidentiality in a later message (see flush).
        self._confidential_ids: set[str] = set()

    def carry_privacy(self, complaint_id: str, privacy: Privacy) -> None:
        """Give the queued events of a complaint the flags ``privacy`` holds, with their own
        (an event never lifts a flag): rewritten only when that adds one."""
        if not (privacy.anonymous or privacy.confidential):
            return
        for row in self._rows[outbox.name]:
            if row["complaint_id"] != complaint_id:
                continue
            message_id = row["message_id"]
            event = json.loads(self.event_bodies[message_id])
            shown = event["privacy"]
            wanted = {
                "anonymous": shown["anonymous"] or privacy.anonymous,
                "confidential": shown["confidential"] or privacy.confidential,
            }
            if wanted == shown:
                continue
            body = contract.encode(event | {"privacy": wanted})
            self.event_bodies[message_id] = body
            row["body"] = sealing.event_body(self._keys, message_id, body)

    def privacy_of(self, complaint_id: str) -> Privacy | None:
        """The privacy queued for the complaint's row by this transaction, if any."""
        return self._privacy.get(complaint_id)

    def raise_privacy(self, complaint_id: str, privacy: Privacy) -> None:
        """Set the complaint's privacy flags to ``privacy`` (which holds what it had), with
        what an earlier message of the transaction asked for it."""
        before = self._privacy.get(complaint_id, privacy)
        self._privacy[complaint_id] = Privacy(
            anonymous=privacy.anonymous or before.anonymous,
            confidential=privacy.confidential or before.confidential,
        )

    def make_confidential(self, tracking_id: str) -> None:
        """The ID of its own ``tracking_id`` shows from now on what a confidential message's
        would: no title, no place, and Open311 lists it by date no more (its holder asked
        confidentiality in a later message told that ID, as a complaint's sender may)."""
        self._confidential_ids.add(tracking_id)

    def add(self, table: Table, row: dict[str, Any]) -> None:
        """Queue ``row`` for ``table``."""
        self._rows[table.name].append(row)

    def queued(self, table: Table) -> list[dict[str, Any]]:
        """The rows queued for ``table`` and not yet inserted."""
        return self._rows[table.name]

    def raises_privacy(self) -> bool:
        """Whether :meth:`flush` raises the privacy of a complaint (locking its row)."""
        return bool(self._privacy)

    async def flush(self, conn: AsyncConnection) -> None:
        """Insert everything queued so far."""
        for table in self.ORDER:
            pending = self._rows[table.name]
            if pending:
                await conn.execute(self.INSERTS[table.name], pending)
                pending.clear()
        for complaint_id, privacy in self._privacy.items():  # rare: two statements each
            await _raise_privacy(conn, self._keys, complaint_id, privacy)
        self._privacy.clear()
        for tracking_id in sorted(self._confidential_ids):  # rare too
            shown = await conn.execute(
                select(raw_inbound.c.id, raw_inbound.c.shown).where(
                    raw_inbound.c.tracking_id == tracking_id, raw_inbound.c.shown.is_not(None)
                )
            )
            for raw_id, before in shown.all():
                after = {**before, "confidential": True, "title": None, "location": None}
                await conn.execute(
                    update(raw_inbound).where(raw_inbound.c.id == raw_id).values(shown=after)
                )
        self._confidential_ids.clear()


async def _lock_joined(
    conn: AsyncConnection, complaint_ids: Iterable[str], rows: _RowBuffer, postgres: bool
) -> dict[str, Any]:
    """Lock the rows of the stored complaints a transaction's messages join or follow, read
    the time of the status change each shows (``status_changed_at``) and their privacy flags,
    and give the transaction's events of them the flags as they are now
    (:meth:`_RowBuffer.carry_privacy`): the flags the messages were placed with were read
    before the lock, and a transaction of another person (a follow-up naming the complaint's
    ID) may have raised them meanwhile. One statement, every complaint of the transaction in
    id order: the only complaint locks the intake takes, so two transactions never hold one
    each and wait for the other's.

    On PostgreSQL ``FOR KEY SHARE``, in id order: the status feed locks a complaint's row ``FOR
    UPDATE`` before it applies a change and texts the numbers holding a receipt for it
    (:func:`gateway.status_feed.apply`), so the two take turns. A change applied first is
    committed before this returns, and read; one applied after waits for this transaction's
    commit, and its texts find the messages and their replies. ``FOR UPDATE`` when the
    transaction raises a complaint's privacy (that locks the row so later in it): two holding
    the key share lock would deadlock as each asked for more. Called once the persons are locked
    (:class:`~gateway.identity.IdentityGraph`, id order too), never before: the status feed
    locks no person, and every transaction of the intake takes persons, then complaints. SQLite
    has one writer: the other transaction committed before this one began, or waits for it."""
    ids = sorted(set(complaint_ids))
    if not ids:
        return {}
    query = select(
        complaints.c.id,
        complaints.c.status_changed_at,
        complaints.c.anonymous,
        complaints.c.confidential,
    ).where(complaints.c.id.in_(ids))
    if postgres:
        share = not rows.raises_privacy()
        query = query.order_by(complaints.c.id).with_for_update(read=share, key_share=share)
    found = {row.id: row for row in await conn.execute(query)}
    for row in found.values():
        rows.carry_privacy(row.id, Privacy(bool(row.anonymous), bool(row.confidential)))
    return found


async def _join_after_changes(conn: AsyncConnection, rows: _RowBuffer, postgres: bool) -> None:
    """Lock the complaints the queued raw inbound rows join or follow (:func:`_lock_joined`),
    and store each such message after the status change its complaint shows: a message joins
    a complaint as it is when the transaction commits. An own ID shows only what changed after
    its message was stored (:func:`_message_status`), and the status feed texts a number of
    the changes its ID shows from then on: a change the feed applied before this transaction
    committed did not find this message, so it must not show under its ID either (a change
    applied while the transaction waited for the lock, or stamped by the routing core ahead of
    the gateway's clock). ``stored_at`` is the transaction's time, or just after that change
    when that is later. One statement, only for a batch that joins or follows a complaint
    stored before it (a complaint of this batch is seen by nobody else yet)."""
    joined = rows.queued(raw_inbound)
    created = {c["id"] for c in rows.queued(complaints)}
    shown = await _lock_joined(
        conn,
        {r["complaint_id"] for r in joined} - created - {None},
        rows,
        postgres,
    )
    for row in joined:
        locked = shown.get(row["complaint_id"])
        changed = None if locked is None else locked.status_changed_at
        if changed is not None and changed_since(changed, row["stored_at"]):
            row["stored_at"] = changed + timedelta(microseconds=1)


async def _raise_privacy(
    conn: AsyncConnection, keys: Keys, complaint_id: str, privacy: Privacy
) -> None:
    """Give the complaint's row the flags ``privacy`` adds. Made confidential, its title and
    place are sealed now, as a complaint confidential from the start has them (the public pages
    and ``keys reseal`` read them so); a row from before sealing stays as it is, for
    ``keys reseal`` to seal whole. The row is locked (PostgreSQL; SQLite has one writer): a
    follow-up naming the complaint's ID, from another person, may raise it at the same time."""
    row = (
        await conn.execute(
            select(
                complaints.c.title,
                complaints.c.location,
                complaints.c.sealed,
                complaints.c.anonymous,
                complaints.c.confidential,
            )
            .where(complaints.c.id == complaint_id)
            .with_for_update()
        )
    ).one()
    values: dict[str, Any] = {
        "anonymous": bool(row.anonymous) or privacy.anonymous,
        "confidential": bool(row.confidential) or privacy.confidential,
    }
    if values["confidential"] and not row.confidential and row.sealed:
        values |= sealing.confidential_columns(keys, complaint_id, row.title, row.location)
    await conn.execute(update(complaints).where(complaints.c.id == complaint_id).values(**values))


async def _follow_ups(
    conn: AsyncConnection, batch: list[_Pending], written: list[_Written]
) -> list[_Written]:
    """Write the batch's follow-ups (one call per writer) after its own rows; attach results."""
    groups: dict[FollowUpWriter, list[tuple[int, Any]]] = {}
    for i, (p, w) in enumerate(zip(batch, written, strict=True)):
        if p.follow_up is not None:
            try:
                item = p.follow_up.item_for(w.receipt)
            except Exception:  # a channel's bug must not hold up the batch's commit
                log.exception("follow-up not made", extra={"channel": p.raw.channel.value})
                item = None
            if item is not None:
                groups.setdefault(p.follow_up.write, []).append((i, item))
    if not groups:
        return written
    out = list(written)
    for write, entries in groups.items():
        results = await write(conn, [item for _, item in entries])
        for (i, _), result in zip(entries, results, strict=True):
            out[i] = replace(out[i], follow_result=result)
    return out


# raw_inbound.provider_message_id is a VARCHAR(255) (PostgreSQL enforces it).
PROVIDER_ID_MAX = 255


def stored_provider_id(raw: RawInbound) -> str:
    """The redelivery key stored for ``raw``: the transport's id, or one derived from the content
    when it has none. An id longer than the column (a bridge's list of ids, a hostile client),
    or one no database can store (a NUL character, PostgreSQL's text refuses; a lone surrogate,
    which is no UTF-8 at all), is stored as its SHA-256: still the same key for the same id, and
    never refused, so the message is not answered "retry" for ever."""
    given = raw.provider_message_id
    return _provider_key(given) if given else f"sha256:{raw.sha256}"


def _provider_key(given: str) -> str:
    if len(given) > PROVIDER_ID_MAX or not storable_text(given):
        return "id-sha256:" + hashlib.sha256(given.encode("utf-8", "surrogatepass")).hexdigest()
    return given


def _storable(text: str) -> str:
    """``text`` as both databases store it: a NUL character (PostgreSQL's text refuses it) and a
    lone surrogate (no UTF-8 at all) written as their escapes. A parser's reason may quote the
    sender's text (an SMS cut inside an emoji): refused, the message would be answered "retry"
    at every delivery instead of being quarantined."""
    if storable_text(text):
        return text
    return text.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")


def storable_text(text: str) -> bool:
    """Whether both databases store ``text`` as it is: UTF-8 without a NUL character (a value
    that is not must be refused or escaped before it is written, or the message comes back for
    ever)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return True


def _refusal(exc: StatementError) -> str:
    """A quarantine reason for a value the database refused: its error code and first line
    (for a value refused before it was sent, the error's class)."""
    orig = exc.orig
    code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    first_line = str(orig).splitlines()[0][:200] if str(orig) else ""
    if not isinstance(exc, DBAPIError):
        what = type(orig).__name__
        return f"a value refused before it reached the database ({what}): {first_line}"
    return f"the database refused a value ({code or type(orig).__name__}): {first_line}"


def _refused_value(exc: DBAPIError) -> bool:
    """A value the database will never take (SQLSTATE class 22, "data exception": too long for
    its column, out of range, not valid for its type), as opposed to the database being away."""
    if isinstance(exc, DataError):
        return True
    code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    return isinstance(code, str) and code.startswith("22")


def _worth_retrying(exc: DBAPIError) -> bool:
    """Unique violations, deadlocks and serialization failures: write the message again."""
    if isinstance(exc, IntegrityError):
        return True
    code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    return code in ("40P01", "40001")
