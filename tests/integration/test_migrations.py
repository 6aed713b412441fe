"""The Alembic migrations create exactly the tables the code declares, on both databases; the
upgrades that move rows keep them readable, and 0010 goes back only when that loses nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import delete, inspect, select
from sqlalchemy.engine import Connection

from gateway import bootstrap, contract
from gateway.domain import Channel, Complaint, ComplaintDraft, Event
from gateway.settings import DatabaseSettings, Settings
from gateway.storage import migrate
from gateway.storage.database import create_engine
from gateway.storage.schema import metadata, outbox, outbox_set_aside, quarantine, raw_inbound
from tests.support import drain, opened_events

pytestmark = pytest.mark.integration


async def test_migrated_database_matches_the_code(settings: Settings) -> None:
    engine = create_engine(settings.database)

    def diff(connection: Connection) -> list[object]:
        ctx = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(ctx, metadata))

    try:
        assert await migrate.current_revision(engine) == migrate.head_revision()
        async with engine.connect() as conn:
            assert await conn.run_sync(diff) == []
    finally:
        await engine.dispose()


OLD_COMPLAINT = "0b0e8f3c-4a1d-4f6e-9c2b-7d5a3e1f0a11"
OLD_MESSAGE = "5f2d7c1e-8b3a-4e9d-a6c4-2e1b0f9d8c77"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # settings: broker and keys
async def test_rows_written_before_sealing_still_read_after_the_upgrade(
    empty_url: str, settings: Settings
) -> None:
    # A database at 0005 holds a quarantined message and an unpublished event, stored in the
    # clear as the code before 0006 wrote them; after the upgrade both are read as they are.
    s = settings.model_copy(
        update={"database": settings.database.model_copy(update={"url": empty_url})}
    )
    engine = create_engine(s.database)
    await migrate.upgrade(engine, "0005")
    now = datetime.now(UTC)
    complaint = Complaint(
        OLD_COMPLAINT,
        "K7QM4XRT9",
        Channel.SMS,
        now,
        ComplaintDraft(body="Jalan rusak"),
        {"provider_message_id": "old-0", "raw_inbound_id": "raw-0"},
    )
    body = contract.encode(contract.event_body(complaint, Event.CREATED))
    async with engine.begin() as conn:
        await conn.execute(
            raw_inbound.insert().values(
                id="raw-old", channel="sms", provider_message_id="old-1", parser="sms.kannel",
                received_at=now, stored_at=now, content_type="application/x-www-form-urlencoded",
                sha256="0" * 64, size=11, body=b"b=rusak&c=0", transport_meta={"sender": "+62"},
                status="quarantined", tracking_id="K7QM4XRT9",
            )
        )
        await conn.execute(
            quarantine.insert().values(
                raw_inbound_id="raw-old", channel="sms", stage="parse", reason="old", created_at=now
            )
        )
        await conn.execute(
            outbox.insert().values(
                message_id=OLD_MESSAGE, event="created", channel="sms", complaint_id=OLD_COMPLAINT,
                routing_key="complaint.created.sms", body=body, created_at=now,
            )
        )
    await engine.dispose()
    gw = bootstrap.build(s)
    try:
        await migrate.upgrade(gw.engine)
        (entry,) = await gw.intake.list_quarantine()
        shown = await gw.intake.show_quarantine(entry["id"])
        assert shown["body"] == b"b=rusak&c=0" and shown["transport_meta"] == {"sender": "+62"}
        assert await opened_events(gw.engine, gw.keys) == [body]
        assert gw.relay is not None
        assert await gw.relay.publish_batch() == 1
        await gw.relay._close()
        [msg] = await drain(s.broker.queue, 1)
        assert msg.body.decode() == body and msg.message_id == OLD_MESSAGE
    finally:
        await gw.close()


async def test_0010_creates_outbox_set_aside_and_downgrades_only_when_it_is_empty(
    empty_url: str,
) -> None:
    engine = create_engine(DatabaseSettings(url=empty_url))

    async def tables() -> set[str]:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))

    try:
        await migrate.upgrade(engine, "0009")
        assert "outbox_set_aside" not in await tables()
        await migrate.upgrade(engine, "0010")
        assert await migrate.current_revision(engine) == "0010"
        now = datetime.now(UTC)
        async with engine.begin() as conn:
            await conn.execute(outbox_set_aside.insert().values(
                message_id=OLD_MESSAGE, id=7, event="created", channel="sms",
                routing_key="complaint.created.sms", complaint_id=OLD_COMPLAINT, body="c2VhbGVk",
                sealed=True, created_at=now, attempts=3, last_error="data-key: 1 event(s)",
                set_aside_at=now, reason="kunci hilang",
            ))
        # The events set aside exist nowhere else: the way back refuses to drop them.
        with pytest.raises(RuntimeError, match="outbox restore"):
            await migrate.downgrade(engine, "0009")
        assert await migrate.current_revision(engine) == "0010"
        async with engine.begin() as conn:
            assert (await conn.execute(select(outbox_set_aside.c.reason))).scalar_one() == (
                "kunci hilang")
            await conn.execute(delete(outbox_set_aside))
        await migrate.downgrade(engine, "0009")
        assert await migrate.current_revision(engine) == "0009"
        assert "outbox_set_aside" not in await tables()
        await migrate.upgrade(engine)
        assert "outbox_set_aside" in await tables()
    finally:
        await engine.dispose()


async def test_the_migration_check_says_what_the_operator_can_do(
    settings: Settings, empty_url: str
) -> None:
    # An empty database: nothing to name but the command that fills it.
    empty = create_engine(DatabaseSettings(url=empty_url))
    try:
        with pytest.raises(bootstrap.NotMigrated) as told:
            await bootstrap.check_engine_migrated(empty)
        assert str(told.value) == "the database has no tables yet: run `lapor-gateway migrate`"
    finally:
        await empty.dispose()
    engine = create_engine(settings.database)
    try:
        await bootstrap.check_engine_migrated(engine)  # at the code's head: nothing said
        # One migration behind: migrate brings it up.
        await migrate.downgrade(engine, "-1")
        with pytest.raises(bootstrap.NotMigrated) as told:
            await bootstrap.check_engine_migrated(engine)
        assert "the code needs" in str(told.value) and "run `lapor-gateway migrate`" in str(
            told.value
        )
        await migrate.upgrade(engine)
        # Migrated by a newer release: migrate knows that revision no more than the check does.
        async with engine.begin() as conn:
            await conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999_newer'")
        with pytest.raises(bootstrap.NotMigrated) as told:
            await bootstrap.check_engine_migrated(engine)
        assert "9999_newer, which this release does not know" in str(told.value)
        assert "run `lapor-gateway migrate`" not in str(told.value)
    finally:
        async with engine.begin() as conn:
            await conn.exec_driver_sql(
                f"UPDATE alembic_version SET version_num = '{migrate.head_revision()}'"
            )
        await engine.dispose()


@pytest.mark.parametrize("empty_url", ["postgresql"], indirect=True)
async def test_0013_builds_its_index_while_messages_keep_arriving(empty_url: str) -> None:
    # On PostgreSQL the index on raw_inbound is built CONCURRENTLY: a replica still running
    # keeps storing messages meanwhile. A plain CREATE INDEX would wait for the writer's open
    # transaction and hold every later insert behind it. A run cut short after the build (the
    # index there, 0012 recorded) is run again.
    import asyncio

    import asyncpg

    engine = create_engine(DatabaseSettings(url=empty_url))
    dsn = empty_url.replace("postgresql+asyncpg", "postgresql")
    try:
        await migrate.upgrade(engine, "0012")
        writer, other = await asyncpg.connect(dsn), await asyncpg.connect(dsn)
        try:

            async def insert(conn: asyncpg.Connection, n: int) -> None:
                await conn.execute(
                    "INSERT INTO raw_inbound (id, channel, provider_message_id, parser,"
                    " received_at, stored_at, content_type, sha256, size, transport_meta,"
                    " sealed, status) VALUES ($1, 'sms', $1, 'p', now(), now(), 'text/plain',"
                    " $2, 1, '{}', true, 'accepted')",
                    f"m-{n}", "0" * 64,
                )

            # A long transaction open while the migration starts (a report, an operator's
            # session), on a table the migration does not alter.
            open_commit = writer.transaction(isolation="repeatable_read")
            await open_commit.start()
            await writer.execute("INSERT INTO persons (id, created_at) VALUES ('p-1', now())")
            upgrading = asyncio.create_task(migrate.upgrade(engine, "0013"))
            await asyncio.sleep(0.5)
            assert not upgrading.done()  # the build waits for the transaction before it...
            await asyncio.wait_for(insert(other, 1), 5)  # ...but holds no insert meanwhile
            await open_commit.commit()
        finally:
            await writer.close()
            await other.close()
        await asyncio.wait_for(upgrading, 30)
        assert await migrate.current_revision(engine) == "0013"

        async def index_valid() -> list[bool]:
            conn = await asyncpg.connect(dsn)
            try:
                rows = await conn.fetch(
                    "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
                    " WHERE c.relname IN ('ix_raw_inbound_complaint_id', 'ix_raw_inbound_own_ids')"
                )
                return [r["indisvalid"] for r in rows]
            finally:
                await conn.close()

        assert await index_valid() == [True, True]
        # Cut short after a column and an index were made: the version still 0012.
        await migrate.downgrade(engine, "0012")
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("CREATE INDEX ix_raw_inbound_complaint_id ON raw_inbound (complaint_id)")
            await conn.execute("ALTER TABLE raw_inbound ADD COLUMN shown JSON")
        finally:
            await conn.close()
        await migrate.upgrade(engine)
        assert await index_valid() == [True, True]
    finally:
        await engine.dispose()


async def test_a_database_a_newer_release_migrated_is_refused_before_alembic_runs(
    empty_url: str,
) -> None:
    # Alembic's own answer was a ResolutionError traceback; `lapor-gateway migrate` prints
    # this one line (tests/integration/test_cli.py).
    engine = create_engine(DatabaseSettings(url=empty_url))
    try:
        await migrate.upgrade(engine)
        async with engine.begin() as conn:
            await conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999_newer'")
        for step in (migrate.upgrade(engine), migrate.downgrade(engine, "0012")):
            with pytest.raises(migrate.UnknownRevision) as told:
                await step
            assert "9999_newer, which this release does not know" in str(told.value)
        assert await migrate.current_revision(engine) == "9999_newer"
    finally:
        await engine.dispose()


@pytest.mark.parametrize("empty_url", ["sqlite"], indirect=True)
async def test_sqlite_migrations_run_without_foreign_keys_and_check_them_after(
    empty_url: str,
) -> None:
    import sqlite3

    # Off for the run (a batch rebuild drops a table other rows refer to), on again for the
    # connection the pool hands out next, and PRAGMA foreign_key_check after: a row referring
    # to nothing from before the run (not the migration's doing) is logged and left, and the
    # migrations still go down and up.
    engine = create_engine(DatabaseSettings(url=empty_url))
    try:
        await migrate.upgrade(engine)
        async with engine.connect() as conn:
            assert (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar() == 1
        # A row referring to no message, written by a connection of its own (foreign keys are
        # off by default in sqlite3).
        orphan = sqlite3.connect(empty_url.removeprefix("sqlite+aiosqlite:///"))
        try:
            with orphan:
                orphan.execute(
                    "INSERT INTO quarantine (raw_inbound_id, channel, stage, reason, created_at)"
                    " VALUES ('no-such-message', 'web', 'parse', 'x', '2026-12-01 00:00:00')"
                )
        finally:
            orphan.close()
        await migrate.downgrade(engine, "-1")
        await migrate.upgrade(engine)
        async with engine.connect() as conn:
            assert (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar() == 1
            left = await conn.exec_driver_sql("SELECT count(*) FROM quarantine")
            assert left.scalar() == 1
    finally:
        await engine.dispose()


async def test_a_sqlite_migration_run_is_one_transaction(tmp_path: Path) -> None:
    # Alembic commits each migration on its own on SQLite unless the run is one transaction:
    # 0014 would stay applied when 0015 fails after it. All or nothing: the database stays at
    # 0013, without 0014's columns.
    import sqlite3

    db = tmp_path / "lapor.db"
    engine = create_engine(DatabaseSettings(url=f"sqlite+aiosqlite:///{db}"))
    try:
        await migrate.upgrade(engine, "0013")
        with sqlite3.connect(db) as conn:  # 0015's column, there already: 0015 fails
            conn.execute("ALTER TABLE dedup_decisions ADD COLUMN identity_hashes TEXT")
        with pytest.raises(Exception, match="identity_hashes"):
            await migrate.upgrade(engine)
        assert await migrate.current_revision(engine) == "0013"
        with sqlite3.connect(db) as conn:
            columns = {row[1] for row in conn.execute("PRAGMA table_info(dedup_decisions)")}
        assert "tokens_hash" not in columns  # 0014 rolled back with it
    finally:
        await engine.dispose()
