"""One message the database refuses does not take the rest of its group commit with it, and a
transport id longer than its column is stored all the same."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime, time
from typing import Any

import pytest

from gateway import bootstrap
from gateway.domain import Channel, ComplaintDraft, RawInbound, ReceiptStatus
from gateway.errors import IntakeUnavailable, ParseError
from gateway.intake import FollowUp, Parser, ParserRegistry
from gateway.settings import Settings
from tests.support import opened_raw

pytestmark = pytest.mark.integration


def parser_with_agency(agency: str | None) -> Parser:
    return Parser("test.agency", lambda r: ComplaintDraft(body=r.body.decode(), agency=agency))


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # SQLite has no lengths
async def test_a_refused_value_fails_its_own_message_only(settings: Settings) -> None:
    gateway = bootstrap.build(settings)
    try:
        good, bad = parser_with_agency("Dinas PU"), parser_with_agency("x" * 300)  # VARCHAR(255)

        async def send(i: int) -> object:
            raw = RawInbound(Channel.WEB, f"laporan {i}".encode(), datetime.now(UTC), f"iso-{i}")
            try:
                return (await gateway.intake.accept(raw, bad if i == 3 else good)).status
            except Exception as exc:
                return exc

        # Sent together, they share one group commit; the fourth is the one the database refuses.
        batches: list[list[str]] = []
        write = gateway.intake._write

        async def recording(conn: Any, batch: list[Any]) -> Any:
            batches.append([p.provider_id for p in batch])
            return await write(conn, batch)

        gateway.intake._write = recording  # type: ignore[method-assign]
        outcomes = await asyncio.gather(*(send(i) for i in range(8)))
        # The refused one was written with others first (else "its own only" proves nothing).
        assert any("iso-3" in b and len(b) > 1 for b in batches), batches
        assert [o for i, o in enumerate(outcomes) if i != 3] == [ReceiptStatus.ACCEPTED] * 7
        # It can never be stored as a complaint: it is kept, acknowledged, in quarantine, not
        # answered "retry" for ever.
        assert outcomes[3] is ReceiptStatus.QUARANTINED
        assert await gateway.intake.count_complaints() == 7
        [entry] = await gateway.intake.list_quarantine()
        assert entry["stage"] == "store" and "22001" in entry["reason"]
    finally:
        await gateway.close()


async def test_a_transport_id_longer_than_its_column_is_kept_as_its_hash(
    settings: Settings,
) -> None:
    gateway = bootstrap.build(settings)
    try:
        long_id = "gammu:modem-1:" + ",".join(f"IN20261204_1359{i:02d}_00_part_{i:02d}.txt"
                                               for i in range(12))
        assert len(long_id) > 255
        raw = RawInbound(Channel.SMS, b"laporan panjang", datetime.now(UTC), long_id)
        parser = parser_with_agency(None)
        first = await gateway.intake.accept(raw, parser)
        again = await gateway.intake.accept(raw, parser)  # the bridge posts it again
        assert first.status is ReceiptStatus.ACCEPTED and again.redelivered
        assert (again.tracking_id, again.raw_id) == (first.tracking_id, first.raw_id)
        [stored] = await opened_raw(gateway.engine, gateway.keys)
        expected = hashlib.sha256(long_id.encode()).hexdigest()
        assert stored["provider_message_id"] == f"id-sha256:{expected}"
    finally:
        await gateway.close()


@pytest.mark.parametrize("given", ["kannel\x00-7", "android-\ud83d-7"])
async def test_a_transport_id_no_database_can_store_is_kept_as_its_hash(
    settings: Settings, given: str
) -> None:
    # A bridge's id with a NUL character (PostgreSQL's text refuses it) or a lone surrogate
    # (no UTF-8 at all; refused by both): stored as it was, the message would be answered
    # "retry" at every delivery, for ever. Its hash is the same key for every redelivery.
    gateway = bootstrap.build(settings)
    try:
        raw = RawInbound(Channel.SMS, b"laporan", datetime.now(UTC), given)
        parser = parser_with_agency(None)
        first = await gateway.intake.accept(raw, parser)
        again = await gateway.intake.accept(raw, parser)  # the bridge posts it again
        assert first.status is ReceiptStatus.ACCEPTED and again.redelivered
        assert (again.tracking_id, again.raw_id) == (first.tracking_id, first.raw_id)
        [stored] = await opened_raw(gateway.engine, gateway.keys)
        expected = hashlib.sha256(given.encode("utf-8", "surrogatepass")).hexdigest()
        assert stored["provider_message_id"] == f"id-sha256:{expected}"
    finally:
        await gateway.close()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_character_postgresql_cannot_store_quarantines_the_message(
    settings: Settings,
) -> None:
    gateway = bootstrap.build(settings)
    try:
        nul = Parser("test.nul", lambda r: ComplaintDraft(body="isi", title="Jalan\x00rusak"))
        raw = RawInbound(Channel.WEB, b'{"title": "Jalan\\u0000rusak"}', datetime.now(UTC), "nul")
        receipt = await gateway.intake.accept(raw, nul)
        assert receipt.status is ReceiptStatus.QUARANTINED and receipt.tracking_id
        [stored] = await opened_raw(gateway.engine, gateway.keys)
        assert stored["body"] == raw.body  # the message as received, for a replay after a fix
    finally:
        await gateway.close()


async def test_a_value_refused_before_the_database_quarantines_the_message(
    settings: Settings,
) -> None:
    # A parser's bug: a time of day where the date of the events goes. SQLite's Date type
    # refuses it while the statement is built (no SQL sent), asyncpg before sending it: on
    # neither database can this complaint ever be stored, so answering "retry" would have the
    # channel's bridge redeliver it for ever. It is kept in quarantine (stage "store"), and
    # the message sent beside it in the same group commit is accepted.
    gateway = bootstrap.build(settings)
    try:
        draft = ComplaintDraft(body="isi", occurred_on=time(10))  # type: ignore[arg-type]
        wrong = Parser("test.occurred", lambda r: draft)
        first = RawInbound(Channel.WEB, b"laporan", datetime.now(UTC), "refused-1")
        beside = RawInbound(Channel.WEB, b"laporan lain", datetime.now(UTC), "beside-1")
        receipt, other = await asyncio.gather(
            gateway.intake.accept(first, wrong),
            gateway.intake.accept(beside, parser_with_agency(None)),
        )
        assert receipt.status is ReceiptStatus.QUARANTINED and receipt.tracking_id
        assert other.status is ReceiptStatus.ACCEPTED
        [entry] = await gateway.intake.list_quarantine()
        assert entry["stage"] == "store"
        again = await gateway.intake.accept(first, wrong)  # the bridge posts it again
        assert again.redelivered and again.tracking_id == receipt.tracking_id
        assert await gateway.intake.count_complaints() == 1
    finally:
        await gateway.close()


@pytest.mark.parametrize("quoted", ["kata\x00kunci", "emoji terpotong \ud83d"])
async def test_a_parse_failure_quoting_what_no_database_stores_is_quarantined(
    settings: Settings, quoted: str
) -> None:
    # A parser's reason quotes the sender's text: a NUL character (PostgreSQL refuses it) or
    # the half of an emoji an SMS was cut inside (a lone surrogate, refused by both). The
    # quarantine row must still be written, or the message is answered "retry" for ever.
    gateway = bootstrap.build(settings)
    try:

        def parse(_raw: RawInbound) -> ComplaintDraft:
            raise ParseError(f"kata kunci tidak dikenal: {quoted}", stage="grammar")

        raw = RawInbound(Channel.SMS, b"laporan", datetime.now(UTC), "quoted-1")
        receipt = await gateway.intake.accept(raw, Parser("test.quoting", parse))
        assert receipt.status is ReceiptStatus.QUARANTINED and receipt.tracking_id
        [entry] = await gateway.intake.list_quarantine()
        assert entry["stage"] == "grammar" and "kata kunci tidak dikenal" in entry["reason"]
        # A replay that fails the same way records its reason too.
        again = await gateway.intake.replay(entry["id"], ParserRegistry([Parser("test.quoting",
                                                                                 parse)]))
        assert again.status is ReceiptStatus.QUARANTINED
    finally:
        await gateway.close()


async def test_an_unexpected_fault_of_one_message_fails_that_one_and_the_writer_goes_on(
    settings: Settings,
) -> None:
    gateway = bootstrap.build(settings)
    try:
        parser = parser_with_agency(None)

        async def write(_conn: object, items: list[object]) -> list[object]:
            if "boom" in items:  # a channel's writer meeting something it did not expect
                raise RuntimeError("unexpected")
            return [None] * len(items)

        def send(i: int, item: str) -> Any:
            raw = RawInbound(Channel.SMS, f"sms {i}".encode(), datetime.now(UTC), f"u-{i}")
            return gateway.intake.accept_with(raw, parser, follow_up=FollowUp(write, lambda _r: item))

        outcomes = await asyncio.gather(
            *(send(i, "boom" if i == 2 else "ok") for i in range(6)), return_exceptions=True
        )
        assert isinstance(outcomes[2], IntakeUnavailable)  # that one: retry, as for a 503
        assert all(not isinstance(o, BaseException) for i, o in enumerate(outcomes) if i != 2)
        assert await gateway.intake.count_complaints() == 5
        # The writer is still there for what comes next.
        later = RawInbound(Channel.SMS, b"sms later", datetime.now(UTC), "u-later")
        assert (await gateway.intake.accept(later, parser)).status is ReceiptStatus.ACCEPTED
    finally:
        await gateway.close()
