"""Run the Alembic migrations on the gateway's own engine (``lapor-gateway migrate``)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config() -> Config:
    """Alembic configuration pointing at the packaged migrations."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


class ForeignKeysBroken(RuntimeError):
    """On SQLite, the migrations would leave rows referring to rows that are not there (they
    run with foreign keys off, checked after): refused, nothing changed."""


class UnknownRevision(RuntimeError):
    """The database is at a migration this release does not know (a newer release made it):
    Alembic cannot go up or down from there."""

    def __init__(self, current: str) -> None:
        # The words `serve` says for the same database (bootstrap.check_engine_migrated).
        super().__init__(
            f"database is at migration {current}, which this release does not know (a newer"
            f" release migrated it; this one needs {head_revision()}): run the newer release, or"
            " restore the database from before that migration"
        )
        self.current = current


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the database to ``revision`` (default: the newest); :class:`UnknownRevision`
    when a newer release migrated it."""
    await _run(engine, command.upgrade, revision)


async def downgrade(engine: AsyncEngine, revision: str) -> None:
    """Take the database back to ``revision`` (tests of a migration's way back)."""
    await _run(engine, command.downgrade, revision)


async def _run(engine: AsyncEngine, step: Callable[[Config, str], None], revision: str) -> None:
    # Checked first, on a connection of its own: Alembic would fail on it with a traceback of
    # its own (ResolutionError, "Can't locate revision"), and env.py wants a connection that
    # has not begun a transaction (SQLite's PRAGMA foreign_keys is a no-op inside one).
    current = await current_revision(engine)
    if current is not None and not known_revision(current):
        raise UnknownRevision(current)
    cfg = alembic_config()

    def run(connection: Connection) -> None:
        cfg.attributes["connection"] = connection
        step(cfg, revision)

    async with engine.connect() as conn:
        await conn.run_sync(run)
        await conn.commit()


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at, or None before the first migration.

    Quietly: Alembic logs its dialect ("Context impl SQLiteImpl.") at INFO whenever it looks,
    two lines of noise in every command that checks the database is migrated.
    """

    def _current(connection: Connection) -> str | None:
        alembic_log = logging.getLogger("alembic.runtime.migration")
        level = alembic_log.level
        alembic_log.setLevel(logging.WARNING)
        try:
            context = MigrationContext.configure(connection)
        finally:
            alembic_log.setLevel(level)
        return context.get_current_revision()

    async with engine.connect() as conn:
        return await conn.run_sync(_current)


def head_revision() -> str | None:
    """The newest revision the code knows."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def known_revision(revision: str) -> bool:
    """Whether ``revision`` is one of the code's migrations (not one of a newer release)."""
    try:
        return ScriptDirectory.from_config(alembic_config()).get_revision(revision) is not None
    except CommandError:  # "No such revision or branch"
        return False
