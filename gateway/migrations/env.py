"""Alembic environment: runs on the connection the gateway hands over, or builds its own.

On SQLite the migrations run with foreign keys off. A table SQLite cannot alter in place is
rebuilt in batch mode (copied, the old one dropped, the copy renamed), and with foreign keys on
(the engine turns them on for every connection) dropping a table other rows refer to fails
(``FOREIGN KEY constraint failed``: 0013's way back, as soon as one quarantine row refers to a
message). This is SQLite's own procedure for such changes
(https://www.sqlite.org/lang_altertable.html#otheralter): foreign keys off outside any
transaction (the pragma is a no-op inside one), the change, then ``PRAGMA foreign_key_check``,
which must report no row the run left referring to nothing (rows from before, a delete in the
sqlite3 shell, are logged and left), and foreign keys on again. The whole run is one
transaction: a run refused, or a migration that fails, leaves the database as it was.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from alembic import context
from sqlalchemy.engine import Connection

from gateway.settings import load_settings
from gateway.storage.database import create_engine
from gateway.storage.migrate import ForeignKeysBroken
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
        # Rows that referred to nothing before (a delete in the sqlite3 shell, where foreign
        # keys are off by default) are not the migration's doing: only new ones refuse it.
        before = _dangling(connection)
        if before:
            logging.getLogger("gateway.migrate").warning(
                "rows referring to rows that are not there, from before this run (left as they"
                " are): %s",
                ", ".join(f"{n} in {t} -> {parent}" for (t, parent), n in before.items()),
            )
        # One transaction for the whole run (Alembic commits each migration on its own on
        # SQLite otherwise), so a run the check refuses leaves nothing behind.
        with connection.begin():
            _migrate(connection)
            after = _dangling(connection)
            new = {k: n - before.get(k, 0) for k, n in after.items() if n > before.get(k, 0)}
            if new:
                shown = ", ".join(f"{n} in {t} -> {parent}" for (t, parent), n in new.items())
                raise ForeignKeysBroken(
                    f"the migration would leave rows referring to rows that are not there"
                    f" (PRAGMA foreign_key_check: {shown}); nothing was changed"
                )
    finally:
        if connection.in_transaction():
            connection.rollback()
        # The connection goes back to the pool: foreign keys on again, as the engine's connect
        # hook set them.
        _pragma(connection, "PRAGMA foreign_keys=ON")


def _dangling(connection: Connection) -> dict[tuple[str, str], int]:
    """How many rows of each table refer to rows of each parent that are not there (``PRAGMA
    foreign_key_check``), read on the driver's connection (within the run's transaction)."""
    cursor: Any = connection.connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_key_check")
        rows = cursor.fetchall()
    finally:
        cursor.close()
    found: dict[tuple[str, str], int] = {}
    for row in rows:  # (table, rowid, parent, foreign key index)
        found[(row[0], row[2])] = found.get((row[0], row[2]), 0) + 1
    return found


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
