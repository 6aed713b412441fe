"""Fixtures shared by every test: real PostgreSQL and RabbitMQ on this machine, real SQLite."""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.bootstrap import loop_factory
from gateway.settings import Settings, load_settings
from gateway.storage import migrate
from gateway.storage.database import create_engine
from tests.support import delete_topology, pg_admin, status_names

CONFIG = Path(__file__).resolve().parents[1] / "config" / "gateway.toml"
TEST_KEYS = {
    "identity_key": base64.b64encode(os.urandom(32)).decode(),
    "data_key": base64.b64encode(os.urandom(32)).decode(),
}
TABLES = (
    "sms_replies",
    "sms_fragments",
    "web_rate_limits",
    "dedup_decisions",
    "identity_conflicts",
    "identities",
    "persons",
    "quarantine",
    "complaint_status_events",
    "outbox_set_aside",
    "outbox",
    "complaints",
    "raw_inbound",
)


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict[str, Any]:
    """Every async test runs on the event loop the gateway runs on in production
    (``http.event_loop``'s default, uvloop)."""
    return {"uvloop": loop_factory("uvloop")}


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test run, migrated, dropped at the end."""
    import asyncio

    name = f"lapor_test_{uuid.uuid4().hex[:10]}"

    asyncio.run(pg_admin(f'CREATE DATABASE "{name}"'))
    url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"

    async def upgrade() -> None:
        engine = create_engine(load_settings(CONFIG, environ={}, overrides={"database": {"url": url}}).database)
        await migrate.upgrade(engine)
        await engine.dispose()

    asyncio.run(upgrade())
    yield url
    asyncio.run(pg_admin(f'DROP DATABASE "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each integration test runs on BOTH databases."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'lapor.db'}"
    url: str = request.getfixturevalue("pg_database")
    return url


@pytest.fixture
def broker_names() -> dict[str, str]:
    """Exchange and queue names of this test only, so tests never read each other's messages."""
    tag = uuid.uuid4().hex[:8]
    return {
        "exchange": f"test.{tag}.lapor.intake",
        "queue": f"test.{tag}.routing-core",
        "dead_letter_exchange": f"test.{tag}.dlx",
        "dead_letter_queue": f"test.{tag}.dead",
    }


@pytest.fixture
async def settings(
    database_url: str, broker_names: dict[str, str], tmp_path: Path
) -> AsyncIterator[Settings]:
    """Settings on the real services, with the database migrated and empty."""
    overrides: dict[str, dict[str, Any]] = {
        "database": {"url": database_url},
        "storage": {"file_store": str(tmp_path / "files"), "inline_body_limit": 1024},
        "broker": dict(broker_names),
        "outbox": {"poll_interval": 0.05, "backoff_initial": 0.1, "backoff_max": 0.5},
        "status_feed": {**status_names(broker_names), "backoff_initial": 0.1, "backoff_max": 0.5},
        "security": TEST_KEYS,
    }
    s = load_settings(CONFIG, environ={}, overrides=overrides)
    engine = create_engine(s.database)
    await migrate.upgrade(engine)
    async with engine.begin() as conn:
        for table in TABLES:
            await conn.exec_driver_sql(f"DELETE FROM {table}")
    await engine.dispose()
    yield s
    await delete_topology(broker_names)
    await delete_topology(status_names(broker_names))


@pytest.fixture(params=["sqlite", "postgresql"])
async def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database of each kind, not migrated."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/old.db"
        return
    name = f"lapor_upgrade_{uuid.uuid4().hex[:10]}"
    await pg_admin(f'CREATE DATABASE "{name}"')
    yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    await pg_admin(f'DROP DATABASE "{name}" WITH (FORCE)')
