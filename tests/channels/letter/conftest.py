"""Fixtures of the letter desk's tests: settings on the real services, staff, logging in."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pydantic import SecretStr

from channels.letter.auth import Role, Staff, StaffStore
from gateway import bootstrap
from gateway.settings import LetterSettings, Settings
from gateway.storage.database import create_engine
from tests.support import with_section

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
PASSWORD = "kata-sandi-rahasia-1"
# The staff tables are not in tests/conftest.py's list; PostgreSQL's database lives for the
# whole run, so each test starts from empty ones.
STAFF_TABLES = ("letter_drafts", "staff_sessions", "staff_accounts")


def letter_overrides(settings: Settings, **letter: Any) -> Settings:
    """``settings`` with ``[letter]`` overrides (quick lockout, a public base URL)."""
    values: dict[str, Any] = {
        "lockout_threshold": 3,
        "lockout_minutes": 15.0,
        "public_base_url": "https://lapor.example.go.id",
        "reader_poll_interval": 0.5,
        **letter,
    }
    return settings.model_copy(
        update={"letter": LetterSettings.model_validate({**settings.letter.model_dump(), **values})}
    )


@pytest.fixture
async def letter_settings(settings: Settings) -> AsyncIterator[Settings]:
    """Settings for the letter desk, with the staff and draft tables empty (before and after:
    no letter is left for another test's reader)."""
    await empty_letter_tables(settings)
    yield letter_overrides(settings)
    await empty_letter_tables(settings)


async def empty_letter_tables(settings: Settings) -> None:
    """Delete the staff and letter draft rows (PostgreSQL's test database lives for the run)."""
    engine = create_engine(settings.database)
    async with engine.begin() as conn:
        for table in STAFF_TABLES:
            await conn.exec_driver_sql(f"DELETE FROM {table}")
    await engine.dispose()


@pytest.fixture
async def staff_store(letter_settings: Settings) -> AsyncIterator[StaffStore]:
    engine = create_engine(letter_settings.database)
    yield StaffStore(engine, letter_settings.letter)
    await engine.dispose()


async def add_staff(store: StaffStore, username: str, role: Role = Role.CLERK) -> Staff:
    """An account with the test password."""
    return await store.create_account(username, role.value, PASSWORD)


def csrf_token(html: str) -> str:
    found = CSRF.search(html)
    assert found, "the page carries a CSRF token"
    return found.group(1)


async def login(client: TestClient[Any, Any], username: str, password: str = PASSWORD) -> str:
    """Log in through the form; the CSRF token of the new session (from the home page)."""
    form = await client.get("/staff/login")
    assert form.status == 200
    resp = await client.post(
        "/staff/login",
        data={"csrf": csrf_token(await form.text()), "username": username, "password": password},
        allow_redirects=False,
    )
    assert resp.status == 303, await resp.text()
    home = await client.get("/staff/")
    assert home.status == 200
    return csrf_token(await home.text())


# The desk's gateway over HTTP, with a CSRF key of its own, and its staff (a test module may
# define its own ``gw`` with other settings: ``client`` and ``staff`` then take that one).
@pytest.fixture
async def gw(letter_settings: Settings) -> AsyncIterator[bootstrap.Gateway]:
    settings = with_section(letter_settings, "web", csrf_key=SecretStr("test-csrf-key"))
    gateway = bootstrap.build(settings)
    yield gateway
    await gateway.close()


@pytest.fixture
async def client(gw: bootstrap.Gateway, aiohttp_client: Any) -> TestClient[Any, Any]:
    return await aiohttp_client(bootstrap.build_app(gw))


@pytest.fixture
async def staff(gw: bootstrap.Gateway) -> StaffStore:
    """A supervisor (ani) and two clerks (budi, citra)."""
    store = StaffStore(gw.engine, gw.settings.letter)
    await add_staff(store, "ani", Role.SUPERVISOR)
    await add_staff(store, "budi", Role.CLERK)
    await add_staff(store, "citra", Role.CLERK)
    return store
