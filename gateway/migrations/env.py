"""Alembic environment: runs on the connection the gateway hands over, or builds its own.

On SQLite the migrations run with foreign keys off. A table SQLite cannot alter in place is
rebuilt in batch mode (copied, the old one dropped, the copy renamed), and with foreign keys on
(the engine turns them on for every connection) dropping a table other rows refer to fails
(``FOREIGN KEY constraint failed``: 0013's way back, as soon as one quarantine row refers to a
message). This is SQLite's own procedure for such changes
(https://www.sqlite.org/lang_altertable.html#otheralter): foreign keys off outside any
transaction (the pragma is a no-op inside one), the change, then ``PRAGMA foreign_key_check``,
which must report nothing, and foreign keys on again.
"""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import context
from sqlalchemy.engine import Connection

from gateway.settings import load_settings
from gateway.storage.database import create_engine
from gateway.storage.schema import metadata


def _run(connection: Connection) -> None:
    if connection.dialect.name != "sqlite":
        _migrate(connection)
        return
    if connection.in_transaction():
        raise RuntimeError(
            "SQLite migrations need a connection outside a transaction: PRAGMA foreign_keys"
            " cannot be turned off inside one"
        )
    _pragma(connection, "PRAGMA foreign_keys=OFF")
    try:
        _migrate(connection)
        broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
        if broken:
            # (table, rowid, parent, foreign key index): rows referring to rows not there.
            shown = ", ".join(f"{r[0]} row {r[1]} -> {r[2]}" for r in broken[:10])
            raise RuntimeError(
                f"the migration left {len(broken)} row(s) referring to rows that are not there"
                f" (PRAGMA foreign_key_check: {shown}); what was not yet committed is rolled back"
            )
        connection.commit()
    finally:
        if connection.in_transaction():
            connection.rollback()
        # The connection goes back to the pool: foreign keys on again, as the engine's connect
        # hook set them.
        _pragma(connection, "PRAGMA foreign_keys=ON")


def _pragma(connection: Connection, sql: str) -> None:
    """``sql`` on the driver's connection itself: through ``connection`` it would begin a
    transaction first (the engine's BEGIN IMMEDIATE), inside which the pragma does nothing."""
    cursor: Any = connection.connection.cursor()
    try:
        cursor.execute(sql)
    finally:
        cursor.close()


def _migrate(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_own_engine() -> None:
    engine = create_engine(load_settings().database)
    try:
        async with engine.connect() as conn:
            await conn.run_sync(_run)
            await conn.commit()
    finally:
        await engine.dispose()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    asyncio.run(_run_own_engine())
