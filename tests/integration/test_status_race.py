"""A status change and an SMS that joins its complaint at the same time.

The status feed applies a change in one transaction that locks the complaint's row and texts
every number holding a receipt for it (``StatusPush``); the intake writes an SMS that joins the
complaint (a duplicate told the complaint's ID or one of its own, a follow-up) with its reply
row in its own transaction. PostgreSQL commits both in parallel. Whichever commits first, the
outcome is the one of the two one after the other: an SMS stored before the change is told of
it (and its ID shows it); one stored after it is not told (and its own ID, which shows only what
changed after its message was stored, does not show it either), and is told of the next. Each
interleaving is staged with a gate holding one transaction open while the other runs, on both
databases (SQLite has one writer: the other waits for it).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway import bootstrap, status_feed
from gateway.domain import Channel, RawInbound, ReceiptStatus
from gateway.errors import ParseError
from gateway.settings import Settings
from gateway.sms_store import STATUS_CHANGE_KIND, StatusPush
from gateway.status_feed import Shown, StatusChange
from gateway.storage.schema import raw_inbound, sms_replies
from tests.integration.test_identity_dedup import NIK_A, PARSER, ROAD, ROAD_SMS, WATER
from tests.integration.test_status_feed import Client
from tests.support import FixedClock, kannel_mo, wait_until, with_section

pytestmark = pytest.mark.integration

SITI = "+6281234567890"  # the phone the web form gave: it holds the complaint's ID
STRANGER = "+6285700002222"  # someone who knows Siti's NIK: told an ID of their own
NEWS = "lubangnya makin besar, kemarin 2 motor jatuh"

# The SMS that joins the complaint, by what its number is told: (sender, text).
JOINERS: dict[str, Callable[[str], tuple[str, str]]] = {
    "followup": lambda tid: (SITI, f"Laporan {tid} {NEWS}"),  # added to it, the complaint's ID
    "duplicate": lambda tid: (SITI, ROAD_SMS),  # joins it, told the complaint's ID
    "own-id": lambda tid: (STRANGER, f"NIK {NIK_A} {ROAD_SMS}"),  # joins it, an ID of its own
}


@dataclass
class Race:
    gateway: bootstrap.Gateway
    client: Any
    base: datetime  # the gateway's clock: every message is stored at this time
    complaint_id: str
    tracking_id: str

    @property
    def engine(self) -> AsyncEngine:
        return self.gateway.engine

    async def text(self, body: str, sender: str) -> None:
        resp = await self.client.get("/sms/kannel", params=kannel_mo(body, sender))
        assert resp.status == 200, await resp.text()

    def change(self, word: str, seconds: float) -> StatusChange:
        """The routing core's change to ``word``, ``seconds`` after the gateway's clock."""
        at = self.base + timedelta(seconds=seconds)
        return StatusChange(f"race-{word}", self.complaint_id, self.tracking_id, word, at, None)

    async def apply(self, change: StatusChange, notify: status_feed.Notify) -> None:
        now = change.changed_at + timedelta(seconds=1)
        outcome, _ = await status_feed.apply(self.engine, change, now, notify)
        assert outcome is status_feed.Outcome.APPLIED

    async def held_id(self, sender: str) -> str:
        """The ID the joining SMS's answer told its number."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(sms_replies.c.tracking_id, sms_replies.c.recipient)
                .where(sms_replies.c.kind != STATUS_CHANGE_KIND)
                .order_by(sms_replies.c.id)
            )
            held = [tid for tid, to in rows if self.gateway.keys.decrypt(to) == sender]
        assert len(held) == 1 and held[0], held
        return held[0]

    async def told(self) -> list[tuple[str, str, str]]:
        """The status SMS queued: (number, ID, text)."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(sms_replies.c.recipient, sms_replies.c.tracking_id, sms_replies.c.body)
                .where(sms_replies.c.kind == STATUS_CHANGE_KIND)
                .order_by(sms_replies.c.id)
            )
            return [(self.gateway.keys.decrypt(to), tid, body) for to, tid, body in rows]

    async def shown(self, tid: str) -> str:
        seen = await self.gateway.intake.status(tid)
        assert seen is not None
        return seen.status

    async def waiting(self, transactions: int = 1) -> bool:
        """Whether ``transactions`` wait for the one the gate holds open: on PostgreSQL, for a
        row lock; SQLite has one writer (and the gateway one connection to it), so the other
        can only wait: it is given a moment to try."""
        if self.engine.dialect.name != "postgresql":
            await asyncio.sleep(0.2)
            return True
        async with self.engine.connect() as conn:
            found = await conn.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE wait_event_type = 'Lock' AND datname = current_database()"
                )
            )
        return int(found or 0) >= transactions


@pytest.fixture
async def race(settings: Settings, aiohttp_client: Client) -> AsyncIterator[Race]:
    # Replies go out through a sender (never run here): queued, so a status change follows them.
    s = with_section(settings, "sms", kannel_sendsms_url="http://127.0.0.1:9/cgi-bin/sendsms")
    base = datetime.now(UTC).replace(microsecond=0)
    gateway = bootstrap.build(s, clock=FixedClock(base))
    try:
        client = await aiohttp_client(bootstrap.build_app(gateway))
        # Siti's complaint on the web form, with her NIK and phone: no SMS about it yet.
        form = {"body": ROAD, "title": "Jalan Siliwangi", "nik": NIK_A, "phone": "0812-3456-7890"}
        raw = RawInbound(
            Channel.WEB, json.dumps(form).encode(), base - timedelta(minutes=5), "race-form"
        )
        first = await gateway.intake.accept(raw, PARSER)
        assert first.complaint_id is not None and first.tracking_id is not None
        yield Race(gateway, client, base, first.complaint_id, first.tracking_id)
    finally:
        await gateway.close()


def _push(race: Race) -> StatusPush:
    return StatusPush(race.gateway.settings.sms.short_code)


@pytest.mark.parametrize("joiner", sorted(JOINERS))
async def test_a_status_change_while_an_sms_joins_the_complaint_is_told_to_its_number(
    race: Race, joiner: str
) -> None:
    sender, body = JOINERS[joiner](race.tracking_id)
    # The SMS's intake transaction is held open once its reply row is written.
    outbox = race.gateway.sms.outbox if race.gateway.sms else None
    assert outbox is not None
    write, gate, paused = outbox.write_batch, asyncio.Event(), asyncio.Event()

    async def held_open(conn: AsyncConnection, batch: list[Any]) -> Any:
        written = await write(conn, batch)
        paused.set()
        await gate.wait()
        return written

    outbox.write_batch = held_open  # type: ignore[method-assign]
    texting = asyncio.create_task(race.text(body, sender))
    await wait_until(paused.is_set, "the SMS written, not committed")
    # The routing core's change, made after the SMS was stored (the gateway's clock), comes
    # now: it waits for the SMS's transaction (or, applied before it commits, misses it).
    change = race.change("forwarded", 1)
    applying = asyncio.create_task(race.apply(change, _push(race)))
    await wait_until(lambda: applying.done() or race.waiting(), "the change applied or waiting")
    gate.set()
    await texting
    await applying

    held = await race.held_id(sender)
    assert (held == race.tracking_id) is (joiner != "own-id")
    # Told under the ID it holds, and that ID shows it.
    told = await race.told()
    assert [(to, tid) for to, tid, _ in told] == [(sender, held)], told
    assert "kini berstatus DITERUSKAN" in told[0][2]
    assert await race.shown(held) == "forwarded"


@pytest.mark.parametrize("joiner", sorted(JOINERS))
async def test_an_sms_joining_while_a_status_change_commits_is_told_the_next_one(
    race: Race, joiner: str
) -> None:
    sender, body = JOINERS[joiner](race.tracking_id)
    # The status change's transaction is held open once it texted whom it found.
    push, gate, paused = _push(race), asyncio.Event(), asyncio.Event()

    async def held_open(
        conn: AsyncConnection, change: StatusChange, now: datetime, before: Shown
    ) -> int:
        queued = await push(conn, change, now, before)
        paused.set()
        await gate.wait()
        return queued

    # Stamped a second after the gateway's clock (the routing core's clock a little ahead, or
    # the change made while the SMS's transaction was being written): still before the SMS is
    # stored, as it commits after the change.
    applying = asyncio.create_task(race.apply(race.change("forwarded", 1), held_open))
    await wait_until(paused.is_set, "the change applied, not committed")
    texting = asyncio.create_task(race.text(body, sender))
    await wait_until(lambda: texting.done() or race.waiting(), "the SMS stored or waiting")
    gate.set()
    await applying
    await texting

    held = await race.held_id(sender)
    assert (held == race.tracking_id) is (joiner != "own-id")
    # Not told of a change from before it joined; an ID of its own does not show it either (the
    # complaint's own ID does: it is the complaint's status).
    assert await race.told() == []
    assert await race.shown(held) == ("received" if joiner == "own-id" else "forwarded")
    # The next change is told to it, and shown.
    await race.apply(race.change("in_progress", 60), push)
    told = await race.told()
    assert [(to, tid) for to, tid, _ in told] == [(sender, held)], told
    assert "kini berstatus DIPROSES" in told[0][2]
    assert await race.shown(held) == "in_progress"


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # SQLite: one writer
async def test_a_status_change_while_a_replay_joins_the_complaint_is_told_to_its_number(
    race: Race, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An SMS from a stranger giving Siti's NIK could not be read: answered "quarantined" with an
    # ID. Replayed after a fix, it joins her complaint under that ID.
    from channels.sms import service

    def unreadable(*args: Any, **kwargs: Any) -> Any:
        raise ParseError("a reader bug", stage="grammar")

    with monkeypatch.context() as patched:
        patched.setattr(service, "interpret", unreadable)
        await race.text(JOINERS["own-id"](race.tracking_id)[1], STRANGER)
    [entry] = await race.gateway.intake.list_quarantine()
    held = await race.held_id(STRANGER)
    # The replay's transaction is held open at its last statement (the raw message's row is
    # locked by another transaction meanwhile), after it joined the complaint.
    async with race.engine.connect() as blocker:
        await blocker.begin()
        await blocker.execute(
            select(raw_inbound.c.id)
            .where(raw_inbound.c.id == entry["raw_inbound_id"])
            .with_for_update(key_share=True)
        )
        intake = race.gateway.intake
        replaying = asyncio.create_task(intake.replay(entry["id"], race.gateway.parsers))
        await wait_until(race.waiting, "the replay joined, not committed")
        applying = asyncio.create_task(race.apply(race.change("forwarded", 1), _push(race)))
        await wait_until(
            lambda: applying.done() or race.waiting(2), "the change applied or waiting"
        )
        await blocker.rollback()
    replayed = await replaying
    await applying
    assert (replayed.status, replayed.tracking_id) == (ReceiptStatus.DUPLICATE, held)
    told = await race.told()
    assert [(to, tid) for to, tid, _ in told] == [(STRANGER, held)], told
    assert await race.shown(held) == "forwarded"


async def test_an_sms_filing_a_new_complaint_locks_no_complaint(race: Race) -> None:
    # Taking turns with the status feed costs nothing (not a statement) to a message that joins
    # no complaint.
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(race.engine.sync_engine, "before_cursor_execute", seen)
    try:
        await race.text(WATER, "+6281300001234")
    finally:
        event.remove(race.engine.sync_engine, "before_cursor_execute", seen)
    assert any(s.startswith("INSERT INTO complaints") for s in statements), statements
    assert not [s for s in statements if "status_changed_at" in s or "SHARE" in s], statements
