"""The SQLite engine's connection settings (the embedded default)."""

from pathlib import Path

from gateway.settings import DatabaseSettings
from gateway.storage.database import create_engine


async def test_a_sqlite_commit_is_on_disk_before_it_returns(tmp_path: Path) -> None:
    # synchronous=NORMAL in WAL mode survives a crash of the process but may roll back the
    # last commits on a power loss: a citizen would hold a tracking ID the gateway lost.
    engine = create_engine(DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp_path / 'g.db'}"))
    try:
        async with engine.connect() as conn:
            mode = (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar()
            synchronous = (await conn.exec_driver_sql("PRAGMA synchronous")).scalar()
        assert (mode, synchronous) == ("wal", 2)  # 2: FULL
    finally:
        await engine.dispose()
