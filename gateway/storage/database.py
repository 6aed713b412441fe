"""The database engine: SQLite (embedded default) or PostgreSQL, both through SQLAlchemy async.

SQLite notes: WAL journal so readers never block the writer; ``synchronous=FULL``, so a commit
is on disk before a sender is told "received" (with NORMAL, WAL mode's default trade-off, a
commit survives a crash of the process but "might roll back following a power loss or system
crash", https://www.sqlite.org/pragma.html#pragma_synchronous: a citizen could hold a tracking ID
the gateway no longer knows; the group commit pays one fsync per batch); one pooled connection per
process and ``BEGIN IMMEDIATE`` so a transaction takes the write lock up front instead of failing
with SQLITE_BUSY when it upgrades (https://www.sqlite.org/lang_transaction.html); a busy timeout
for other processes (the CLI) holding the lock.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from gateway.settings import DatabaseSettings


def create_engine(settings: DatabaseSettings) -> AsyncEngine:
    """Build the engine for ``settings`` (connects lazily, on first use).

    ``echo`` is never given to SQLAlchemy: it would add a handler of its own writing every
    statement and its parameters to stdout, unmasked, in the middle of a command's output.
    The ``sqlalchemy.engine`` logger is set to INFO instead (before the engine is made, which
    reads it), so the statements go through the gateway's masking handler on stderr.
    """
    if settings.echo:
        logging.getLogger("sqlalchemy.engine").setLevel(logging.INFO)
    url = make_url(settings.effective_url())
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url.database or ":memory:", settings)
    return create_async_engine(
        url,
        pool_size=settings.pool_size,
        max_overflow=settings.pool_size,
        pool_timeout=settings.connect_timeout,
        connect_args={"timeout": settings.connect_timeout, "command_timeout": 30},
    )


def _sqlite_engine(database: str, settings: DatabaseSettings) -> AsyncEngine:
    if database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    busy_ms = int(settings.connect_timeout * 1000)
    engine = create_async_engine(
        f"sqlite+aiosqlite:///{database}",
        pool_size=1,
        max_overflow=0,
        pool_timeout=settings.connect_timeout,
        connect_args={"timeout": settings.connect_timeout},
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below issue BEGIN itself (pysqlite's own BEGIN is
        # DEFERRED and emitted lazily).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine
