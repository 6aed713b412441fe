"""The SMS channel's ports on the gateway database: the reply outbox and the fragment buffer.

Tables of migration 0004 (``gateway/storage/schema.py``):

- ``sms_replies``: one row per inbound SMS that gets an answer, ``UNIQUE(raw_inbound_id)``. It is
  written in the MO's own intake transaction (a ``FollowUp`` of the intake port); a redelivered MO
  (same raw inbound id in its receipt) finds the row and queues nothing, so a reply is queued once
  even across restarts and replicas. Flood control counts one sender's replies (by keyed hash of the
  number) inside ``flood_window``; past ``flood_max_replies`` the row is written ``suppressed`` with
  the reason, unless it is a receipt naming a tracking ID that number was never told (at most
  :data:`NEW_ID_FACTOR` times ``flood_max_replies`` of those in the window). Status changes the
  gateway texts on its own (:class:`StatusPush`) neither count nor are suppressed by flood
  control (an older one still waiting gives way to a newer change of its complaint). Senders lease
  pending rows like the event relay does (``claimed_by`` / ``claim_expires``, ``FOR UPDATE SKIP
  LOCKED`` on PostgreSQL), so replicas never send one reply at the same time. The recipient number
  is stored AES-GCM encrypted under the data key.
- ``sms_fragments``: parts of long messages held until their set is complete or too old. Each
  row's sealed ``meta`` holds the sender, receiver and SMSC link, and, only when the part has
  one, the half of a surrogate pair split with its neighbour (``high_surrogate`` /
  ``low_surrogate``, code units as numbers): rows written before those were kept read the same.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, and_, bindparam, delete, exists, func, not_, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from channels.sms import replies
from channels.sms.message import FINAL_STATES, Bridge, DeliveryReport, SmsMessage
from channels.sms.ports import (
    ClaimedReply,
    FragmentSet,
    HeldPart,
    NewReply,
    OutboxCounts,
    ReplyDecision,
    ReplyStatus,
)
from gateway import sealing
from gateway.crypto import Keys
from gateway.grouping import GroupCommit
from gateway.intake import Clock, utcnow
from gateway.outbox import prune_cutoff
from gateway.queries import CLOSED_STATUSES, changed_since
from gateway.status_feed import Shown, StatusChange
from gateway.storage.schema import (
    UTCDateTime,
    complaints,
    raw_inbound,
    sms_fragments,
    sms_replies,
)

# Status changes told by SMS (gateway.status_feed): the row's key in sms_replies.raw_inbound_id
# is derived from the status message and the recipient, so one change is queued once per number.
STATUS_CHANGE_KIND = "status-change"
# The replies whose numbers are told of the complaint's status changes (see StatusPush): its
# receipt, the "quarantined" answer that gave the number the ID a replay keeps, the answer to a
# message added to the complaint it named (its number may have given the ID on a web form and
# never had an SMS about it), the changes since.
FOLLOWED_KINDS = ("receipt", "quarantined", "followup", STATUS_CHANGE_KIND)

# The halves of a split surrogate pair, per part in its meta (the rest of the meta is the set's).
_HALVES = ("high_surrogate", "low_surrogate")
# Rows that count against a sender's flood allowance: replies that went or will go out (but
# not the status changes the gateway texts on its own: see _recent_counts).
_COUNTED = (ReplyStatus.PENDING, ReplyStatus.SENT, ReplyStatus.INLINE, ReplyStatus.FAILED)
# Rows that told their number the tracking ID they name, once they went or will go out (failed:
# given up, the number never got it).
_TOLD = (ReplyStatus.PENDING, ReplyStatus.SENT, ReplyStatus.INLINE)
# Replies whose text names their row's tracking ID to the sender: a complaint's receipt, a
# quarantined message's "we will look at it, No. lacak ..." (an empty message's row keeps the ID
# of its quarantine entry, but its text does not name it), a follow-up's "added to laporan ...".
RECEIPT_KINDS = ("receipt", "quarantined", "followup")
# Flood control (README, "Flood control"): past ``flood_max_replies`` replies in the window, a
# receipt naming a tracking ID its number has not been told yet still goes out, as long as that
# number was told fewer than NEW_ID_FACTOR x flood_max_replies tracking IDs in the window. A
# second complaint's ID is never hidden by the replies before it; a sender filing complaints by
# the dozen is still bounded.
NEW_ID_FACTOR = 4


class SqlReplyOutbox:
    """:class:`channels.sms.ports.ReplyOutbox` on SQLite or PostgreSQL."""

    def __init__(
        self,
        engine: AsyncEngine,
        keys: Keys,
        flood_max_replies: int,
        flood_window: float,
        clock: Clock = utcnow,
    ) -> None:
        self._engine = engine
        self._keys = keys
        self._flood_max = flood_max_replies
        self._flood_window = timedelta(seconds=flood_window)
        self._clock = clock
        self._postgres = engine.dialect.name == "postgresql"
        # Group commit, as in the intake port: writes arriving while a transaction is being
        # written go together in the next one (SQLite has one writer; a commit is the cost).
        self._enqueue = GroupCommit(engine, self.write_batch, "sms-reply-writer")
        self._sent = GroupCommit(engine, self._write_sent, "sms-reply-sent")
        self._reports = GroupCommit(engine, self._write_reports, "sms-delivery-reports")
        self._insert_new = (
            self._insert()
            .on_conflict_do_nothing(index_elements=["raw_inbound_id"])
            .returning(sms_replies.c.id, sms_replies.c.raw_inbound_id)
        )

    def _insert(self) -> Any:
        return (pg_insert if self._postgres else sqlite_insert)(sms_replies)

    async def idle(self) -> None:
        """Wait until none of the grouped writes is being committed."""
        for group in (self._enqueue, self._sent, self._reports):
            await group.idle()

    async def enqueue(self, reply: NewReply) -> ReplyDecision:
        """Write the reply unless its MO has one; suppress it past the sender's allowance."""
        return await self._enqueue(reply)

    async def write_batch(
        self, conn: AsyncConnection, batch: list[NewReply]
    ) -> list[ReplyDecision]:
        """One batch in three statements: known MOs, senders' recent counts, one insert."""
        now = self._clock()
        hashes = [self._keys.lookup_hash("phone", r.sender_key) for r in batch]
        known = await self._known(conn, [r.raw_inbound_id for r in batch])
        counts = await self._recent_counts(conn, set(hashes), now)
        told, new_ids = await self._told(conn, batch, hashes, counts, now)
        decided: dict[str, ReplyDecision] = {}
        rows: list[dict[str, Any]] = []
        for reply, sender_hash in zip(batch, hashes, strict=True):
            if reply.raw_inbound_id in known or reply.raw_inbound_id in decided:
                continue
            status, reason = ReplyStatus.PENDING, None
            tid = reply.tracking_id if reply.kind in RECEIPT_KINDS else None
            new_id = tid is not None and (sender_hash, tid) not in told
            if reply.unsendable is not None:
                status, reason = ReplyStatus.SUPPRESSED, reply.unsendable
            elif 0 < self._flood_max <= counts.get(sender_hash, 0) and not (
                new_id and new_ids.get(sender_hash, 0) < self._flood_max * NEW_ID_FACTOR
            ):
                status = ReplyStatus.SUPPRESSED
                reason = (
                    f"flood: {self._flood_max} replies to this sender within "
                    f"{self._flood_window.total_seconds():.0f} s"
                )
                if new_id:
                    reason += f" and {self._flood_max * NEW_ID_FACTOR} tracking IDs told to it"
            elif not reply.deliver:
                status = ReplyStatus.INLINE
            if status is not ReplyStatus.SUPPRESSED:
                counts[sender_hash] = counts.get(sender_hash, 0) + 1
                if new_id and tid is not None:
                    told.add((sender_hash, tid))
                    new_ids[sender_hash] = new_ids.get(sender_hash, 0) + 1
            rows.append(
                {
                    "raw_inbound_id": reply.raw_inbound_id,
                    "bridge": reply.bridge.value,
                    "recipient": self._keys.encrypt(reply.recipient),
                    "sender_hash": sender_hash,
                    "service_number": (reply.service_number or None) and reply.service_number[:32],
                    "smsc": (reply.smsc or None) and reply.smsc[:64],
                    "tracking_id": reply.tracking_id,
                    "kind": reply.kind,
                    "body": reply.body,
                    "status": status.value,
                    "reason": reason,
                    "created_at": now,
                    "next_attempt_at": now,
                    "sent_at": now if status is ReplyStatus.INLINE else None,
                }
            )
            decided[reply.raw_inbound_id] = ReplyDecision(0, status, reply.body, True, reason)
        if rows:
            # executemany: the statement compiles once and is cached ("insertmanyvalues"); a
            # multi-row VALUES would compile anew for every batch size.
            result = await conn.execute(self._insert_new, rows)
            ids = {r.raw_inbound_id: int(r.id) for r in result}
            for raw_id, decision in list(decided.items()):
                if raw_id in ids:
                    decided[raw_id] = replace(decision, reply_id=ids[raw_id])
                else:  # a replica racing on the same MO wrote it first
                    del decided[raw_id]
        missing = [r.raw_inbound_id for r in batch if r.raw_inbound_id not in decided]
        if missing:
            known |= await self._known(conn, missing)
        out: list[ReplyDecision] = []
        answered: set[str] = set()
        for reply in batch:
            raw_id = reply.raw_inbound_id
            decision = decided.get(raw_id) or known[raw_id]
            # The same MO twice in one batch: the second one is a redelivery of the first.
            out.append(replace(decision, created=False) if raw_id in answered else decision)
            answered.add(raw_id)
        return out

    async def _known(self, conn: AsyncConnection, raw_ids: list[str]) -> dict[str, ReplyDecision]:
        rows = (
            await conn.execute(
                select(
                    sms_replies.c.id,
                    sms_replies.c.raw_inbound_id,
                    sms_replies.c.status,
                    sms_replies.c.body,
                    sms_replies.c.reason,
                ).where(sms_replies.c.raw_inbound_id.in_(raw_ids))
            )
        ).all()
        return {
            r.raw_inbound_id: ReplyDecision(
                int(r.id), ReplyStatus(r.status), r.body, created=False, reason=r.reason
            )
            for r in rows
        }

    async def _recent_counts(
        self, conn: AsyncConnection, hashes: set[str], now: datetime
    ) -> dict[str, int]:
        """Each sender's replies in the window that count against its allowance."""
        if self._flood_max <= 0 or not hashes:
            return {}
        rows = (
            await conn.execute(
                select(sms_replies.c.sender_hash, func.count())
                .where(
                    sms_replies.c.sender_hash.in_(hashes),
                    sms_replies.c.created_at >= now - self._flood_window,
                    sms_replies.c.status.in_([s.value for s in _COUNTED]),
                    # Texted unasked (the routing core changed a complaint's status): not an
                    # answer to anything the sender sent, so not a reply of its allowance.
                    sms_replies.c.kind != STATUS_CHANGE_KIND,
                )
                .group_by(sms_replies.c.sender_hash)
            )
        ).all()
        return {r[0]: int(r[1]) for r in rows}

    async def _told(
        self,
        conn: AsyncConnection,
        batch: list[NewReply],
        hashes: list[str],
        counts: dict[str, int],
        now: datetime,
    ) -> tuple[set[tuple[str, str]], dict[str, int]]:
        """For the senders this batch may take past their allowance: which of the tracking IDs
        their receipts name each was told already (any time: a receipt, a status change), and
        how many tracking IDs each was told by receipt in the window. Nothing is read for
        the others (a sender's first messages): they stay within the allowance anyway."""
        if self._flood_max <= 0:
            return set(), {}
        in_batch: dict[str, int] = {}
        for sender_hash in hashes:
            in_batch[sender_hash] = in_batch.get(sender_hash, 0) + 1
        at_risk = {h for h, n in in_batch.items() if counts.get(h, 0) + n > self._flood_max}
        named = {
            (h, r.tracking_id)
            for r, h in zip(batch, hashes, strict=True)
            if h in at_risk and r.kind in RECEIPT_KINDS and r.tracking_id is not None
        }
        if not named:
            return set(), {}
        senders = sorted({h for h, _ in named})
        found = await conn.execute(
            select(sms_replies.c.sender_hash, sms_replies.c.tracking_id)
            .where(
                sms_replies.c.tracking_id.in_(sorted({t for _, t in named})),
                sms_replies.c.kind.in_((*RECEIPT_KINDS, STATUS_CHANGE_KIND)),
                sms_replies.c.sender_hash.in_(senders),
                sms_replies.c.status.in_([s.value for s in _TOLD]),
            )
            .distinct()
        )
        told = {(r.sender_hash, r.tracking_id) for r in found}
        recent = await conn.execute(
            select(sms_replies.c.sender_hash, func.count(sms_replies.c.tracking_id.distinct()))
            .where(
                sms_replies.c.sender_hash.in_(senders),
                sms_replies.c.created_at >= now - self._flood_window,
                sms_replies.c.kind.in_(RECEIPT_KINDS),
                sms_replies.c.tracking_id.is_not(None),
                # Told: a receipt given up (failed) told the number nothing.
                sms_replies.c.status.in_([s.value for s in _TOLD]),
            )
            .group_by(sms_replies.c.sender_hash)
        )
        return told, {r[0]: int(r[1]) for r in recent}

    async def claim(
        self, bridges: Iterable[Bridge], limit: int, lease_seconds: float, owner: str
    ) -> list[ClaimedReply]:
        """Lease up to ``limit`` due pending replies (oldest first) of ``bridges``."""
        now = self._clock()
        names = [b.value for b in bridges]
        if not names:
            return []
        free = and_(
            sms_replies.c.status == ReplyStatus.PENDING.value,
            sms_replies.c.next_attempt_at <= now,
            or_(sms_replies.c.claim_expires.is_(None), sms_replies.c.claim_expires < now),
            sms_replies.c.bridge.in_(names),
        )
        candidates = select(sms_replies.c.id).where(free).order_by(sms_replies.c.id).limit(limit)
        if self._postgres:
            candidates = candidates.with_for_update(skip_locked=True)
        stmt = (
            update(sms_replies)
            .where(sms_replies.c.id.in_(candidates.scalar_subquery()), free)
            .values(
                claimed_by=owner,
                claim_expires=now + timedelta(seconds=lease_seconds),
                attempts=sms_replies.c.attempts + 1,
            )
            .returning(
                sms_replies.c.id,
                sms_replies.c.bridge,
                sms_replies.c.recipient,
                sms_replies.c.body,
                sms_replies.c.attempts,
                sms_replies.c.service_number,
                sms_replies.c.smsc,
                sms_replies.c.created_at,
            )
        )
        async with self._engine.begin() as conn:
            rows = (await conn.execute(stmt)).all()
        claimed = [
            ClaimedReply(
                id=int(r.id),
                bridge=Bridge(r.bridge),
                recipient=self._keys.decrypt(r.recipient),
                body=r.body,
                attempts=int(r.attempts),
                service_number=r.service_number,
                smsc=r.smsc,
                created_at=r.created_at,
            )
            for r in rows
        ]
        return sorted(claimed, key=lambda c: c.id)

    async def mark_sent(self, reply_id: int, owner: str, provider_ref: str | None) -> None:
        """The bridge took the reply."""
        await self._sent((reply_id, owner, provider_ref))

    async def _write_sent(
        self, conn: AsyncConnection, batch: list[tuple[int, str, str | None]]
    ) -> list[None]:
        now = self._clock()
        await conn.execute(
            update(sms_replies)
            .where(
                sms_replies.c.id == bindparam("b_id"),
                sms_replies.c.claimed_by == bindparam("b_owner"),
            )
            .values(
                status=ReplyStatus.SENT.value,
                sent_at=now,
                provider_ref=bindparam("b_ref"),
                claimed_by=None,
                claim_expires=None,
                last_error=None,
            ),
            [{"b_id": rid, "b_owner": owner, "b_ref": ref} for rid, owner, ref in batch],
        )
        return [None] * len(batch)

    async def mark_failed(
        self, reply_id: int, owner: str, error: str, retry_at: datetime | None
    ) -> None:
        """Release for another attempt at ``retry_at``, or give up (status failed)."""
        values: dict[str, Any] = {
            "claimed_by": None,
            "claim_expires": None,
            "last_error": error[:1000],
        }
        if retry_at is None:
            values |= {"status": ReplyStatus.FAILED.value, "reason": error[:1000]}
        else:
            values["next_attempt_at"] = retry_at
        async with self._engine.begin() as conn:
            await conn.execute(
                update(sms_replies)
                .where(sms_replies.c.id == reply_id, sms_replies.c.claimed_by == owner)
                .values(**values)
            )

    async def record_report(self, report: DeliveryReport) -> bool:
        """Store the report; a final state is never replaced by an intermediate one.

        False when no reply matches it (our id, else the bridge's reference).
        """
        if report.reply_id is None and not report.provider_ref:
            return False
        return await self._reports(report)

    async def _write_reports(
        self, conn: AsyncConnection, batch: list[DeliveryReport]
    ) -> list[bool]:
        """One read of the replies named, one executemany of the updates, in arrival order."""
        ids = {r.reply_id for r in batch if r.reply_id is not None}
        refs = {r.provider_ref for r in batch if r.reply_id is None and r.provider_ref}
        found = await conn.execute(
            select(sms_replies.c.id, sms_replies.c.provider_ref, sms_replies.c.dlr_status).where(
                or_(sms_replies.c.id.in_(sorted(ids)), sms_replies.c.provider_ref.in_(sorted(refs)))
            )
        )
        state: dict[int, str | None] = {}
        by_ref: dict[str, int] = {}
        for row in found:
            state[row.id] = row.dlr_status
            if row.provider_ref:
                by_ref[row.provider_ref] = row.id
        final = {s.value for s in FINAL_STATES}
        now = self._clock()
        updates: dict[int, dict[str, Any]] = {}
        out: list[bool] = []
        for report in batch:
            rid = (
                report.reply_id
                if report.reply_id is not None
                else by_ref.get(report.provider_ref or "")
            )
            if rid is None or rid not in state:
                out.append(False)
                continue
            out.append(True)
            if state[rid] in final and report.state.value not in final:
                continue
            state[rid] = report.state.value
            updates[rid] = {
                "b_id": rid,
                "b_status": report.state.value,
                "b_detail": report.detail[:1000] or None,
            }
        if updates:
            await conn.execute(
                update(sms_replies)
                .where(sms_replies.c.id == bindparam("b_id"))
                .values(
                    dlr_status=bindparam("b_status"), dlr_at=now, dlr_detail=bindparam("b_detail")
                ),
                list(updates.values()),
            )
        return out

    async def counts(self) -> OutboxCounts:
        """Replies by status and the oldest pending one."""
        async with self._engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(sms_replies.c.status, func.count()).group_by(sms_replies.c.status)
                )
            ).all()
            oldest = (
                await conn.execute(
                    select(func.min(sms_replies.c.created_at, type_=UTCDateTime())).where(
                        sms_replies.c.status == ReplyStatus.PENDING.value
                    )
                )
            ).scalar_one()
        return OutboxCounts(by_status={r[0]: int(r[1]) for r in rows}, oldest_pending=oldest)


async def requeue_failed(
    engine: AsyncEngine, since: datetime, bridge: str | None, now: datetime, dry_run: bool = False
) -> int:
    """Queue again the replies given up (status failed) that were queued at ``since`` or
    later (of ``bridge`` only, when given): pending at once, their attempts from zero and
    queued now, so that they get ``sms.sender_give_up_after`` of tries again (their
    latency counts from now too); how many. A refusal the bridge called final (a wrong
    number) fails again at its next try."""
    where = [
        sms_replies.c.status == ReplyStatus.FAILED.value,
        sms_replies.c.created_at >= since,
    ]
    if bridge is not None:
        where.append(sms_replies.c.bridge == bridge)
    async with engine.begin() as conn:
        if dry_run:
            found = await conn.execute(select(func.count()).select_from(sms_replies).where(*where))
            return int(found.scalar_one())
        done = await conn.execute(
            update(sms_replies)
            .where(*where)
            .values(
                status=ReplyStatus.PENDING.value,
                attempts=0,
                created_at=now,
                next_attempt_at=now,
                last_error=None,
                reason=None,
                claimed_by=None,
                claim_expires=None,
            )
        )
        return int(done.rowcount)


PRUNE_BATCH = 1000


async def prune(
    engine: AsyncEngine,
    keep_replies: float,
    keep_fragments: float,
    now: datetime,
    dry_run: bool = False,
    batch: int = PRUNE_BATCH,
    stop: asyncio.Event | None = None,
) -> tuple[int, int]:
    """Delete the replies queued more than ``keep_replies`` seconds before ``now`` that are no
    longer pending (but the receipts and status messages of complaints still open), and the
    fragments joined more than ``keep_fragments`` seconds before it (0: keep); how many of each
    (``dry_run``: counted, not deleted). Each table is walked in id
    order, ``batch`` rows per short transaction, until a window holds only rows made after the
    cutoff (ids follow insertion); ``stop`` ends it between two batches."""
    replies = fragments = 0
    cutoff = prune_cutoff(keep_replies, now)
    if cutoff is not None:
        # A receipt or status message of a complaint still open is how StatusPush finds the
        # number to tell of its next change (and by which bridge): kept until it is closed.
        # Under the complaint's ID, or a message's that joined it with an ID of its own.
        open_complaint = complaints.c.status.not_in(CLOSED_STATUSES)
        still_followed = and_(
            sms_replies.c.kind.in_(FOLLOWED_KINDS),
            or_(
                exists().where(
                    complaints.c.tracking_id == sms_replies.c.tracking_id, open_complaint
                ),
                exists().where(
                    raw_inbound.c.tracking_id == sms_replies.c.tracking_id,
                    complaints.c.id == raw_inbound.c.complaint_id,
                    open_complaint,
                ),
            ),
        )
        replies = await _prune_walk(
            engine, sms_replies, sms_replies.c.created_at, cutoff,
            and_(
                sms_replies.c.status != ReplyStatus.PENDING.value,
                sms_replies.c.created_at < cutoff,
                not_(still_followed),
            ),
            dry_run, batch, stop,
        )
    cutoff = prune_cutoff(keep_fragments, now)
    if cutoff is not None:
        fragments = await _prune_walk(
            engine, sms_fragments, sms_fragments.c.created_at, cutoff,
            and_(sms_fragments.c.closed_at.is_not(None), sms_fragments.c.closed_at < cutoff),
            dry_run, batch, stop,
        )
    return replies, fragments


async def _prune_walk(
    engine: AsyncEngine,
    table: Table,
    made_at: Any,
    cutoff: datetime,
    old: Any,
    dry_run: bool,
    batch: int,
    stop: asyncio.Event | None,
) -> int:
    removed = 0
    after: int | None = None
    while stop is None or not stop.is_set():
        span = [] if after is None else [table.c.id > after]
        window = select(table.c.id, made_at).where(*span).order_by(table.c.id).limit(batch)
        async with engine.begin() as conn:
            rows = (await conn.execute(window)).all()
            if not rows:
                break
            first, after = int(rows[0][0]), int(rows[-1][0])
            in_window = [table.c.id >= first, table.c.id <= after, old]
            if dry_run:
                found = await conn.execute(
                    select(func.count()).select_from(table).where(*in_window)
                )
                removed += int(found.scalar_one())
            else:
                removed += int((await conn.execute(delete(table).where(*in_window))).rowcount)
        if all(row[1] >= cutoff for row in rows):
            break
    return removed


class SqlFragmentBuffer:
    """:class:`channels.sms.ports.FragmentBuffer` on SQLite or PostgreSQL."""

    def __init__(self, engine: AsyncEngine, keys: Keys, clock: Clock = utcnow) -> None:
        self._engine = engine
        self._keys = keys
        self._clock = clock
        self._postgres = engine.dialect.name == "postgresql"

    def group_key(self, message: SmsMessage, sender_key: str) -> str:
        """The parts of one message share bridge, sender, reference and part count."""
        assert message.fragment is not None
        sender = self._keys.lookup_hash("phone", sender_key)
        f = message.fragment
        return f"{message.bridge.value}:{sender}:{f.reference}:{f.total}"

    async def hold(
        self, raw_inbound_id: str, message: SmsMessage, sender_key: str, received_at: datetime
    ) -> FragmentSet | None:
        """Keep the part (once per raw inbound id); return the set when it is complete."""
        fragment = message.fragment
        assert fragment is not None
        key = self.group_key(message, sender_key)
        halves = {
            "high_surrogate": fragment.high_surrogate,
            "low_surrogate": fragment.low_surrogate,
        }
        row = {
            "raw_inbound_id": raw_inbound_id,
            "bridge": message.bridge.value,
            "group_key": key,
            "reference": fragment.reference,
            "total": fragment.total,
            "sequence": fragment.sequence,
            **sealing.fragment_columns(
                self._keys,
                raw_inbound_id,
                message.text,
                {
                    "sender": message.sender,
                    "receiver": message.receiver,
                    "smsc": message.smsc or "",
                }
                | {name: unit for name, unit in halves.items() if unit is not None},
            ),
            "received_at": received_at,
            "created_at": self._clock(),
        }
        insert = (pg_insert if self._postgres else sqlite_insert)(sms_fragments)
        async with self._engine.begin() as conn:
            if self._postgres:
                # Parts of one message arrive at once (Jasmin throws 16-bit-reference parts on
                # parallel connections): under READ COMMITTED each hold would miss the other's
                # uncommitted part and neither would find the set complete, leaving it to the
                # fragment timeout. One hold per set at a time, until its commit. (SQLite
                # writes one transaction at a time already.)
                lock = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)
                await conn.execute(select(func.pg_advisory_xact_lock(lock)))
            await conn.execute(
                insert.values(**row).on_conflict_do_nothing(index_elements=["raw_inbound_id"])
            )
            sets = await self._open_sets(conn, sms_fragments.c.group_key == key)
        found = sets[0] if sets else None
        return found if found is not None and found.complete else None

    async def _open_sets(self, conn: AsyncConnection, where: Any) -> list[FragmentSet]:
        rows = (
            await conn.execute(
                select(sms_fragments)
                .where(sms_fragments.c.closed_at.is_(None), where)
                .order_by(sms_fragments.c.group_key, sms_fragments.c.id)
            )
        ).all()
        groups: dict[str, list[Any]] = {}
        for r in rows:
            groups.setdefault(r.group_key, []).append(r)
        keys = self._keys
        sets = []
        for key, parts in groups.items():
            metas = [sealing.fragment_meta(keys, p.raw_inbound_id, p.meta, p.sealed) for p in parts]
            sets.append(
                FragmentSet(
                    group_key=key,
                    bridge=Bridge(parts[0].bridge),
                    reference=int(parts[0].reference),
                    total=int(parts[0].total),
                    parts=tuple(
                        HeldPart(
                            p.raw_inbound_id,
                            int(p.sequence),
                            sealing.fragment_text(keys, p.raw_inbound_id, p.text, p.sealed),
                            p.received_at,
                            meta.get("high_surrogate"),
                            meta.get("low_surrogate"),
                        )
                        for p, meta in zip(parts, metas, strict=True)
                    ),
                    meta={k: str(v) for k, v in metas[0].items() if k not in _HALVES},
                )
            )
        return sets

    async def expired(self, older_than: datetime, limit: int) -> list[FragmentSet]:
        """At most ``limit`` open sets whose first part was stored before ``older_than``,
        oldest first."""
        first = func.min(sms_fragments.c.created_at, type_=UTCDateTime())
        async with self._engine.connect() as conn:
            keys = (
                (
                    await conn.execute(
                        select(sms_fragments.c.group_key)
                        .where(sms_fragments.c.closed_at.is_(None))
                        .group_by(sms_fragments.c.group_key)
                        .having(first < older_than)
                        .order_by(first, sms_fragments.c.group_key)
                        .limit(limit)
                    )
                )
                .scalars()
                .all()
            )
            if not keys:
                return []
            return await self._open_sets(conn, sms_fragments.c.group_key.in_(list(keys)))

    async def close(self, fragments: FragmentSet, joined_raw_inbound_id: str) -> None:
        """Mark the set's held parts as joined."""
        raw_ids = [p.raw_inbound_id for p in fragments.parts]
        async with self._engine.begin() as conn:
            await conn.execute(
                update(sms_fragments)
                .where(
                    sms_fragments.c.raw_inbound_id.in_(raw_ids),
                    sms_fragments.c.closed_at.is_(None),
                )
                .values(closed_at=self._clock(), joined_raw_inbound_id=joined_raw_inbound_id)
            )


_STATUS_PUSH = uuid.UUID("6f1d7c1e-3b1a-5c55-9a63-4c4150f0a0b1")


class StatusPush:
    """When the routing core changes a complaint's status, an SMS to every number that got the
    complaint's receipt by SMS (an SMS complaint, a duplicate of it by SMS, a letter whose
    receipt went by SMS, a message quarantined and then replayed, which keeps the ID its
    "quarantined" answer gave), under the ID that number was told (a message that joined the
    complaint with an ID of its own: see gateway.intake; told only of changes since it
    joined), through the bridge and link that receipt went: run inside the status
    change's transaction (``gateway.status_feed.apply``'s ``notify``), so it is queued exactly
    when the change is kept. Receipts answered in the HTTP body, suppressed or failed are not
    followed (no sender could reach that number then). ``received`` is not told. Those rows
    outlive ``sms.keep_replies`` while their complaint is open (:func:`prune`). A message
    joining the complaint with its receipt at the same time takes turns with the change (the
    intake locks the complaint's row as the feed does): committed first, it is read here;
    after, it is stored after the change, which its ID does not show."""

    def __init__(self, short_code: str) -> None:
        self._short_code = short_code

    async def __call__(
        self, conn: AsyncConnection, change: StatusChange, now: datetime, before: Shown
    ) -> int:
        if change.status == "received":
            return 0
        # The IDs the complaint is known by, each told when the status word it shows changes:
        # its own (a newer change repeating the word, a new date or agency, would tell the
        # citizen "now X" again); and those of the messages that joined it with an ID of their
        # own (a sender the transport does not show to be the first one's, a message replayed
        # from quarantine), which show only what changed after they joined ("received" until
        # then: gateway.intake).
        ids = [change.tracking_id] if change.status != before.status else []
        held = await conn.execute(
            select(raw_inbound.c.tracking_id, raw_inbound.c.stored_at).where(
                raw_inbound.c.complaint_id == change.complaint_id,
                raw_inbound.c.tracking_id.is_not(None),
                raw_inbound.c.tracking_id != change.tracking_id,
            )
        )
        first: dict[str, datetime] = {}
        # Since each joined (stored): an ID told again (a retry) counts from its first message.
        for tid, arrived in held:
            first[tid] = min(arrived, first.get(tid, arrived))
        for tid, arrived in sorted(first.items()):
            if not changed_since(change.changed_at, arrived):
                continue
            showed = before.status if changed_since(before.changed_at, arrived) else "received"
            if change.status != showed:
                ids.append(tid)
        if not ids:
            return 0
        receipts = await conn.execute(
            select(
                sms_replies.c.tracking_id,
                sms_replies.c.sender_hash,
                sms_replies.c.recipient,
                sms_replies.c.bridge,
                sms_replies.c.service_number,
                sms_replies.c.smsc,
            )
            .where(
                sms_replies.c.tracking_id.in_(ids),
                # Receipts, and the status messages sent since (a closed complaint's receipt may
                # be gone when the routing core opens it again).
                sms_replies.c.kind.in_(FOLLOWED_KINDS),
                sms_replies.c.status.in_((ReplyStatus.PENDING.value, ReplyStatus.SENT.value)),
            )
            .order_by(sms_replies.c.id)
        )
        rows: dict[str, dict[str, Any]] = {}
        for r in receipts:
            who = r.sender_hash or r.recipient
            if who in rows:
                continue  # one SMS per number, however many receipts it got
            rows[who] = {
                "raw_inbound_id": str(uuid.uuid5(_STATUS_PUSH, f"{change.key}\n{who}")),
                "bridge": r.bridge,
                "recipient": r.recipient,  # as stored: encrypted under the data key
                "sender_hash": r.sender_hash,
                "service_number": r.service_number,
                "smsc": r.smsc,
                "tracking_id": r.tracking_id,  # the ID this number holds
                "kind": STATUS_CHANGE_KIND,
                "body": replies.status_changed(
                    r.tracking_id, change.status, change.changed_at, self._short_code
                ),
                "status": ReplyStatus.PENDING.value,
                "created_at": now,
                "next_attempt_at": now,
            }
        if rows:
            # An older change still waiting for a sender (a backlog applied in order after an
            # outage) no longer holds: the newest goes alone, not one SMS per status at once.
            # One a sender holds right now (its lease running) is left to it.
            await conn.execute(
                update(sms_replies)
                .where(
                    sms_replies.c.tracking_id.in_(ids),
                    sms_replies.c.kind == STATUS_CHANGE_KIND,
                    sms_replies.c.status == ReplyStatus.PENDING.value,
                    or_(
                        sms_replies.c.claim_expires.is_(None),
                        sms_replies.c.claim_expires < now,
                    ),
                )
                .values(
                    status=ReplyStatus.SUPPRESSED.value,
                    reason="superseded: a newer status change is texted instead",
                    claimed_by=None,
                    claim_expires=None,
                )
            )
            await conn.execute(sms_replies.insert(), list(rows.values()))
        return len(rows)

