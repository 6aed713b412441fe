"""The SMS reply outbox on both databases: writes that arrive together are committed together."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import select

from channels.sms.message import Bridge, DeliveryReport, DeliveryState
from channels.sms.ports import NewReply, ReplyStatus
from gateway.crypto import Keys
from gateway.settings import Settings
from gateway.sms_store import SqlReplyOutbox
from gateway.storage.database import create_engine
from gateway.storage.schema import sms_replies

pytestmark = pytest.mark.integration

KEYS = Keys(b"i" * 32, b"d" * 32)


def _reply(n: int) -> NewReply:
    return NewReply(
        raw_inbound_id=str(uuid.uuid4()),
        bridge=Bridge.KANNEL,
        recipient=f"+62812555{n:05d}",
        sender_key=f"+62812555{n:05d}",
        kind="receipt",
        body=f"LAPOR! laporan diterima. No: ABC{n}",
        deliver=True,
    )


async def test_a_burst_of_sends_and_reports_is_recorded_in_order(settings: Settings) -> None:
    engine = create_engine(settings.database)
    outbox = SqlReplyOutbox(engine, KEYS, flood_max_replies=0, flood_window=3600)
    try:
        decisions = await asyncio.gather(*(outbox.enqueue(_reply(n)) for n in range(40)))
        assert {d.status for d in decisions} == {ReplyStatus.PENDING}
        claimed = await outbox.claim([Bridge.KANNEL], 100, 60, "sender-1")
        assert len(claimed) == 40
        # Every send confirmed at the same instant: grouped, none lost.
        await asyncio.gather(*(outbox.mark_sent(c.id, "sender-1", f"smsc-{c.id}") for c in claimed))
        first, second = claimed[0].id, claimed[1].id
        reports = [
            DeliveryReport(DeliveryState.ACCEPTED, reply_id=first),
            DeliveryReport(DeliveryState.DELIVERED, provider_ref=f"smsc-{first}"),
            # After a final state an intermediate one changes nothing.
            DeliveryReport(DeliveryState.BUFFERED, reply_id=first),
            DeliveryReport(DeliveryState.UNDELIVERED, reply_id=second, detail="absent"),
            DeliveryReport(DeliveryState.DELIVERED, reply_id=10_000_000),
            DeliveryReport(DeliveryState.DELIVERED, provider_ref="nobody"),
        ]
        found = await asyncio.gather(*(outbox.record_report(r) for r in reports))
        assert found == [True, True, True, True, False, False]
        async with engine.connect() as conn:
            rows = {
                r.id: r
                for r in await conn.execute(
                    select(
                        sms_replies.c.id,
                        sms_replies.c.status,
                        sms_replies.c.provider_ref,
                        sms_replies.c.dlr_status,
                        sms_replies.c.dlr_detail,
                    )
                )
            }
        assert {r.status for r in rows.values()} == {ReplyStatus.SENT.value}
        assert all(rows[c.id].provider_ref == f"smsc-{c.id}" for c in claimed)
        assert rows[first].dlr_status == DeliveryState.DELIVERED.value
        assert (rows[second].dlr_status, rows[second].dlr_detail) == ("undelivered", "absent")
        assert all(rows[c.id].dlr_status is None for c in claimed[2:])
    finally:
        await engine.dispose()


async def test_a_reply_whose_caller_went_away_is_committed_before_idle_returns(
    settings: Settings,
) -> None:
    engine = create_engine(settings.database)
    outbox = SqlReplyOutbox(engine, KEYS, flood_max_replies=0, flood_window=3600)
    try:
        caller = asyncio.create_task(outbox.enqueue(_reply(1)))
        await asyncio.sleep(0)  # queued, and its writer started
        caller.cancel()  # the bridge's request went away
        with pytest.raises(asyncio.CancelledError):
            await caller
        await outbox.idle()  # what Gateway.close() waits for before disposing the pool
        async with engine.connect() as conn:
            stored = (await conn.execute(select(sms_replies.c.body))).scalars().all()
        assert stored == ["LAPOR! laporan diterima. No: ABC1"]
    finally:
        await engine.dispose()


# Replicas share PostgreSQL; SQLite serves one process with one writer.
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_reply_another_replica_wrote_first_is_answered_with_that_replica_s_row(
    settings: Settings,
) -> None:
    engine, their_engine = create_engine(settings.database), create_engine(settings.database)
    ours = SqlReplyOutbox(engine, KEYS, flood_max_replies=0, flood_window=3600)
    theirs = SqlReplyOutbox(their_engine, KEYS, flood_max_replies=0, flood_window=3600)
    contested, fresh = _reply(1), _reply(2)
    real_known = ours._known
    calls = 0

    async def known_after_the_race(conn: Any, raw_ids: list[str]) -> Any:
        # The other replica commits its reply to the same MO right after our first look.
        nonlocal calls
        calls += 1
        found = await real_known(conn, raw_ids)
        if calls == 1:
            await theirs.enqueue(contested)
        return found

    try:
        their_decision = await theirs.enqueue(_reply(3))  # tables in use on both sides
        assert their_decision.created
        ours._known = known_after_the_race  # type: ignore[method-assign]
        async with engine.begin() as conn:
            decisions = await ours.write_batch(conn, [contested, fresh])
        async with engine.connect() as conn:
            rows = {
                r.raw_inbound_id: r.id
                for r in await conn.execute(
                    select(sms_replies.c.raw_inbound_id, sms_replies.c.id)
                )
            }
        assert len(rows) == 3  # one reply per MO, the contested one not written twice
        assert [d.reply_id for d in decisions] == [
            rows[contested.raw_inbound_id],
            rows[fresh.raw_inbound_id],
        ]
        assert [d.created for d in decisions] == [False, True]
        assert calls == 2  # the insert skipped the contested MO; its row was read again
    finally:
        await engine.dispose()
        await their_engine.dispose()


async def test_old_replies_and_joined_fragments_are_pruned_nothing_pending_or_open(
    settings: Settings,
) -> None:
    # Nothing else deleted them: both tables grew with every SMS for ever.
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import func, insert, update

    from gateway.sms_store import prune
    from gateway.storage.schema import sms_fragments

    engine = create_engine(settings.database)
    outbox = SqlReplyOutbox(engine, KEYS, flood_max_replies=0, flood_window=3600)
    now = datetime.now(UTC)
    old, recent = now - timedelta(days=91), now - timedelta(days=89)
    try:
        ids = [(await outbox.enqueue(_reply(n))).reply_id for n in range(5)]
        ages = [  # (status, created_at): the old ones no longer pending go
            ("sent", old), ("failed", old), ("pending", old), ("sent", recent), ("suppressed", old),
        ]
        async with engine.begin() as conn:
            for reply_id, (status, at) in zip(ids, ages, strict=True):
                await conn.execute(
                    update(sms_replies).where(sms_replies.c.id == reply_id)
                    .values(status=status, created_at=at)
                )
            for n, (created, closed) in enumerate([
                (now - timedelta(days=9), now - timedelta(days=8)),  # joined 8 days ago: goes
                (now - timedelta(days=9), None),  # still open (the timeout closes it): stays
                (now - timedelta(days=3), now - timedelta(days=3)),  # joined 3 days ago: stays
            ]):
                await conn.execute(insert(sms_fragments).values(
                    raw_inbound_id=str(uuid.uuid4()), bridge="kannel", group_key=f"g{n}",
                    reference=n, total=2, sequence=1, text="x", meta={}, sealed=False,
                    received_at=created, created_at=created, closed_at=closed,
                ))
        keep = (90 * 86400.0, 7 * 86400.0)
        assert await prune(engine, *keep, now, dry_run=True, batch=2) == (3, 1)
        assert await prune(engine, *keep, now, batch=2) == (3, 1)
        assert await prune(engine, *keep, now, batch=2) == (0, 0)
        async with engine.connect() as conn:
            left = {
                (r.status, r.created_at == recent)
                for r in await conn.execute(select(sms_replies.c.status, sms_replies.c.created_at))
            }
            fragments = (
                await conn.execute(select(func.count()).select_from(sms_fragments))
            ).scalar_one()
        assert left == {("pending", False), ("sent", True)} and fragments == 2
        assert await prune(engine, 0, 0, now + timedelta(days=999)) == (0, 0)  # 0 keeps
    finally:
        await engine.dispose()


async def test_two_parts_held_at_the_same_instant_complete_their_set(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Jasmin throws the parts of a long MO (16-bit reference) one by one, on parallel
    # connections. Each hold inserted its part and read the set in its own transaction: under
    # READ COMMITTED neither saw the other's uncommitted part, neither found the set complete,
    # and the message waited for the fragment timeout (30 min) with its receipt.
    from datetime import UTC, datetime

    from channels.sms.message import Fragment, SmsMessage
    from gateway.sms_store import SqlFragmentBuffer

    engine = create_engine(settings.database)
    buffer = SqlFragmentBuffer(engine, KEYS)
    read_sets = SqlFragmentBuffer._open_sets

    arrived: list[int] = []
    both = asyncio.Event()

    async def slow_read(self: SqlFragmentBuffer, conn: Any, where: Any) -> Any:
        # Each hold reads its set once the other has inserted its part too (or after 1 s,
        # when the other is kept waiting until this one commits).
        arrived.append(1)
        if len(arrived) == 2:
            both.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(both.wait(), 1.0)
        return await read_sets(self, conn, where)

    monkeypatch.setattr(SqlFragmentBuffer, "_open_sets", slow_read)

    def part(sequence: int) -> SmsMessage:
        return SmsMessage(
            bridge=Bridge.JASMIN,
            sender="+6281200000001",
            receiver="1708",
            text=f"bagian {sequence} ",
            message_id=f"part-{sequence}",
            fragment=Fragment(reference=0x1234, total=2, sequence=sequence),
        )

    now = datetime.now(UTC)
    try:
        found = await asyncio.gather(
            *(
                buffer.hold(str(uuid.uuid4()), part(n), "+6281200000001", now)
                for n in (1, 2)
            ),
            return_exceptions=True,
        )
        assert not any(isinstance(f, BaseException) for f in found), found
        complete = [f for f in found if f is not None]
        assert complete, "neither hold saw the set complete"
        assert {p.sequence for p in complete[0].parts} == {1, 2}  # type: ignore[union-attr]
    finally:
        await engine.dispose()


# ---- flood control: what counts, what may be suppressed ---------------------------------------

CITIZEN = "+6281299990001"


def _to_citizen(kind: str, tracking_id: str | None = None) -> NewReply:
    return NewReply(
        raw_inbound_id=str(uuid.uuid4()),
        bridge=Bridge.KANNEL,
        recipient=CITIZEN,
        sender_key=CITIZEN,
        kind=kind,
        body=f"LAPOR! {kind} {tracking_id or ''}",
        deliver=True,
        tracking_id=tracking_id,
    )


async def _status_changes(engine: Any, tracking_id: str, n: int) -> None:
    """``n`` status changes of one complaint, texted by the gateway as the status feed does."""
    from datetime import UTC, datetime, timedelta

    from gateway.sms_store import StatusPush
    from gateway.status_feed import Shown, StatusChange

    push = StatusPush("1708")
    now = datetime.now(UTC)
    for i, status in enumerate(["verified", "forwarded", "in_progress", "resolved", "closed"][:n]):
        change = StatusChange(
            key=f"status-{tracking_id}-{i}",
            complaint_id=str(uuid.uuid4()),
            tracking_id=tracking_id,
            status=status,
            changed_at=now + timedelta(minutes=i),
            agency=None,
        )
        async with engine.begin() as conn:
            assert await push(conn, change, now, Shown("received", None)) == 1


async def test_status_changes_texted_unasked_do_not_use_up_the_citizen_s_replies(
    settings: Settings,
) -> None:
    # A receipt, five quick status changes of that complaint, then the citizen's second
    # complaint: the status changes used up the allowance (5 an hour) and the second receipt
    # was suppressed, so the citizen never learnt that tracking ID. Asking for help was refused
    # the same way, although the citizen had been answered once.
    from gateway import tracking

    engine = create_engine(settings.database)
    outbox = SqlReplyOutbox(engine, KEYS, flood_max_replies=5, flood_window=3600)
    first, second = tracking.new_tracking_id(), tracking.new_tracking_id()
    try:
        assert (await outbox.enqueue(_to_citizen("receipt", first))).status is ReplyStatus.PENDING
        await _status_changes(engine, first, 5)
        help_reply = await outbox.enqueue(_to_citizen("help"))
        receipt = await outbox.enqueue(_to_citizen("receipt", second))
        assert (help_reply.status, receipt.status) == (ReplyStatus.PENDING, ReplyStatus.PENDING)
        # Three more answers fill the allowance (receipt, help, second receipt, and these):
        # the status changes counted for nothing, and still the allowance holds.
        more = [await outbox.enqueue(_to_citizen("status")) for _ in range(3)]
        assert [d.status for d in more] == [ReplyStatus.PENDING] * 2 + [ReplyStatus.SUPPRESSED]
        # The status changes themselves are never suppressed by flood control (a backlog's
        # older ones give way to the newest: only one of the five still waits).
        async with engine.connect() as conn:
            changes = (
                await conn.execute(
                    select(sms_replies.c.status, sms_replies.c.reason)
                    .where(sms_replies.c.kind == "status-change")
                    .order_by(sms_replies.c.id)
                )
            ).all()
        assert [c.status for c in changes] == ["suppressed"] * 4 + ["pending"]
        assert not [c for c in changes if c.reason and c.reason.startswith("flood")]
    finally:
        await engine.dispose()


async def test_a_receipt_naming_a_new_tracking_id_goes_past_the_allowance_within_a_bound(
    settings: Settings,
) -> None:
    # Flood control hid a new tracking ID: past the allowance every reply was suppressed, a
    # second complaint's receipt included. Now a receipt naming an ID the number was never told
    # goes out; the same ID again, CEK and INFO answers are still suppressed, and a sender
    # filing complaints by the dozen gets at most NEW_ID_FACTOR x the allowance of IDs.
    from gateway import tracking
    from gateway.sms_store import NEW_ID_FACTOR

    engine = create_engine(settings.database)
    outbox = SqlReplyOutbox(engine, KEYS, flood_max_replies=2, flood_window=3600)
    ids = [tracking.new_tracking_id() for _ in range(2 * NEW_ID_FACTOR + 2)]
    try:
        first = ids[0]
        assert (await outbox.enqueue(_to_citizen("receipt", first))).status is ReplyStatus.PENDING
        assert (await outbox.enqueue(_to_citizen("help"))).status is ReplyStatus.PENDING
        # The allowance (2) is used: answers that tell nothing new are suppressed.
        for kind, tid in [("status", None), ("help", None), ("receipt", first)]:
            decision = await outbox.enqueue(_to_citizen(kind, tid))
            assert decision.status is ReplyStatus.SUPPRESSED, kind
            assert decision.reason == "flood: 2 replies to this sender within 3600 s"
        # A new complaint's receipt, and a quarantined message's (its ID is new too), go out.
        second = await outbox.enqueue(_to_citizen("receipt", ids[1]))
        quarantined = await outbox.enqueue(_to_citizen("quarantined", ids[2]))
        assert second.status is quarantined.status is ReplyStatus.PENDING
        # Told once, the same ID is not told again past the allowance (a duplicate complaint).
        again = await outbox.enqueue(_to_citizen("receipt", ids[1]))
        assert again.status is ReplyStatus.SUPPRESSED
        # Up to 2 x NEW_ID_FACTOR IDs in the window, in one batch as well as one by one.
        async with engine.begin() as conn:
            batch = [_to_citizen("receipt", t) for t in ids[3:]]
            decisions = await outbox.write_batch(conn, batch)
        allowed = 2 * NEW_ID_FACTOR - 3
        assert [d.status for d in decisions] == (
            [ReplyStatus.PENDING] * allowed
            + [ReplyStatus.SUPPRESSED] * (len(batch) - allowed)
        )
        assert decisions[-1].reason == (
            f"flood: 2 replies to this sender within 3600 s and {2 * NEW_ID_FACTOR}"
            " tracking IDs told to it"
        )
        # Another number is not affected by any of it.
        other = replace(_to_citizen("help"), sender_key="+6281299990002")
        assert (await outbox.enqueue(other)).status is ReplyStatus.PENDING
    finally:
        await engine.dispose()


async def test_a_tracking_id_whose_receipt_failed_was_never_told(settings: Settings) -> None:
    # A receipt given up (the bridge never took it) told the citizen nothing: the same ID in a
    # later receipt (a duplicate complaint) goes past the allowance.
    from sqlalchemy import update

    from gateway import tracking

    engine = create_engine(settings.database)
    outbox = SqlReplyOutbox(engine, KEYS, flood_max_replies=1, flood_window=3600)
    lost = tracking.new_tracking_id()
    try:
        failed = await outbox.enqueue(_to_citizen("receipt", lost))
        async with engine.begin() as conn:
            await conn.execute(
                update(sms_replies)
                .where(sms_replies.c.id == failed.reply_id)
                .values(status=ReplyStatus.FAILED.value)
            )
        assert (await outbox.enqueue(_to_citizen("help"))).status is ReplyStatus.SUPPRESSED
        again = await outbox.enqueue(_to_citizen("receipt", lost))
        assert again.status is ReplyStatus.PENDING
        # Nor do given-up receipts count toward the bound of IDs told in the window: with
        # NEW_ID_FACTOR x 1 of them failed, one more new ID still goes out.
        from gateway.sms_store import NEW_ID_FACTOR

        for _ in range(NEW_ID_FACTOR):
            gone = await outbox.enqueue(_to_citizen("receipt", tracking.new_tracking_id()))
            assert gone.status is ReplyStatus.PENDING
            async with engine.begin() as conn:
                await conn.execute(
                    update(sms_replies)
                    .where(sms_replies.c.id == gone.reply_id)
                    .values(status=ReplyStatus.FAILED.value)
                )
        fresh = await outbox.enqueue(_to_citizen("receipt", tracking.new_tracking_id()))
        assert fresh.status is ReplyStatus.PENDING, fresh.reason
    finally:
        await engine.dispose()


async def test_a_number_told_its_id_in_a_quarantined_answer_is_told_the_status_too(
    settings: Settings,
) -> None:
    # The message was quarantined (answered "we will look at it, No. lacak Q"), then replayed
    # into a complaint of its own, which keeps Q: its status changes reach that number too.
    from gateway import tracking

    engine = create_engine(settings.database)
    outbox = SqlReplyOutbox(engine, KEYS, flood_max_replies=5, flood_window=3600)
    held = tracking.new_tracking_id()
    try:
        told = await outbox.enqueue(_to_citizen("quarantined", held))
        assert told.status is ReplyStatus.PENDING
        await _status_changes(engine, held, 2)  # each asserts one SMS queued
    finally:
        await engine.dispose()


async def test_a_backlog_of_status_changes_texts_only_the_newest(settings: Settings) -> None:
    # After a feed outage the changes are applied in order within seconds: one SMS per status,
    # all at once, where only the last still holds. The older ones still waiting give way; one
    # already sent, or held by a sender right now, is left as it is.
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import func, update

    from gateway import tracking
    from gateway.sms_store import StatusPush
    from gateway.status_feed import Shown, StatusChange

    engine = create_engine(settings.database)
    outbox = SqlReplyOutbox(engine, KEYS, flood_max_replies=5, flood_window=3600)
    tid = tracking.new_tracking_id()
    push = StatusPush("1708")
    now = datetime.now(UTC)

    async def change(i: int, status: str) -> None:
        async with engine.begin() as conn:
            assert await push(conn, StatusChange(
                key=f"backlog-{tid}-{i}", complaint_id=str(uuid.uuid4()), tracking_id=tid,
                status=status, changed_at=now + timedelta(minutes=i), agency=None,
            ), now, Shown("received", None)) == 1

    async def kept() -> list[Any]:
        async with engine.connect() as conn:
            return list((
                await conn.execute(
                    select(sms_replies.c.id, sms_replies.c.status, sms_replies.c.claimed_by)
                    .where(sms_replies.c.kind == "status-change")
                    .order_by(sms_replies.c.id)
                )
            ).all())

    try:
        await outbox.enqueue(_to_citizen("receipt", tid))
        await change(0, "verified")
        async with engine.begin() as conn:  # that SMS went out
            await conn.execute(
                update(sms_replies).where(sms_replies.c.kind == "status-change")
                .values(status="sent")
            )
        for i, status in enumerate(["forwarded", "in_progress", "resolved"], start=1):
            await change(i, status)
        async with engine.begin() as conn:  # a sender holds the newest right now
            newest = (await conn.execute(select(func.max(sms_replies.c.id)))).scalar_one()
            await conn.execute(
                update(sms_replies).where(sms_replies.c.id == newest)
                .values(claimed_by="sender-1", claim_expires=now + timedelta(minutes=1))
            )
        await change(4, "closed")  # one more arrives meanwhile
        rows = await kept()
        assert [r.status for r in rows] == ["sent", "suppressed", "suppressed", "pending", "pending"]
        assert rows[3].claimed_by == "sender-1"  # left to the sender holding it
    finally:
        await engine.dispose()
