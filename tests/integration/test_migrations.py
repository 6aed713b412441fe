"""The Alembic migrations create exactly the tables the code declares, on both databases."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection

from gateway.settings import Settings
from gateway.storage import migrate
from gateway.storage.database import create_engine
from gateway.storage.schema import metadata

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
