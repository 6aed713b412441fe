"""Staff accounts, argon2 passwords, lockout and database sessions on both real databases."""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from channels.letter import auth
from channels.letter.auth import (
    AccountLocked,
    InvalidAccount,
    LoginFailed,
    Role,
    StaffStore,
    hash_token,
)
from gateway import cli
from gateway.settings import Settings
from gateway.storage.database import create_engine
from gateway.storage.schema import staff_accounts, staff_sessions
from tests.channels.letter.conftest import PASSWORD, add_staff
from tests.support import FixedClock

pytestmark = pytest.mark.integration


async def test_password_is_stored_as_argon2id_and_checked(staff_store: StaffStore) -> None:
    staff = await add_staff(staff_store, "Siti.Aminah", Role.SUPERVISOR)
    assert staff.username == "siti.aminah" and staff.is_supervisor
    async with staff_store._engine.connect() as conn:
        stored = (await conn.execute(select(staff_accounts.c.password_hash))).scalar_one()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    assert await staff_store.authenticate("SITI.AMINAH ", PASSWORD) == staff
    with pytest.raises(LoginFailed):
        await staff_store.authenticate("siti.aminah", PASSWORD + "x")
    with pytest.raises(LoginFailed):
        await staff_store.authenticate("nobody", PASSWORD)


@pytest.mark.parametrize(
    ("username", "role", "password", "expect"),
    [
        ("a", "clerk", PASSWORD, "2-64"),
        ("budi santoso", "clerk", PASSWORD, "2-64"),
        ("budi", "admin", PASSWORD, "clerk atau supervisor"),
        ("budi", "clerk", "pendek", "paling sedikit"),
        ("budi", "clerk", "aaaaaaaaaaaa", "terlalu lemah"),
    ],
)
async def test_bad_accounts_are_refused(
    staff_store: StaffStore, username: str, role: str, password: str, expect: str
) -> None:
    with pytest.raises(InvalidAccount) as caught:
        await staff_store.create_account(username, role, password)
    assert expect in caught.value.message[0]


async def test_username_is_unique(staff_store: StaffStore) -> None:
    await add_staff(staff_store, "budi")
    with pytest.raises(InvalidAccount) as caught:
        await add_staff(staff_store, "BUDI")
    assert "sudah dipakai" in caught.value.message[0]


async def test_wrong_passwords_lock_the_account_for_a_while(letter_settings: Settings) -> None:
    clock = FixedClock(datetime(2026, 11, 26, 2, 0, tzinfo=UTC))
    engine = create_engine(letter_settings.database)
    store = StaffStore(engine, letter_settings.letter, clock)
    try:
        await add_staff(store, "budi")
        for _ in range(letter_settings.letter.lockout_threshold - 1):
            with pytest.raises(LoginFailed):
                await store.authenticate("budi", "salah-salah-salah")
        with pytest.raises(AccountLocked) as caught:  # the one that reaches the threshold
            await store.authenticate("budi", "salah-salah-salah")
        assert caught.value.until == clock.now + timedelta(minutes=15)
        clock.now += timedelta(minutes=14)
        with pytest.raises(AccountLocked):  # even the right password, while locked
            await store.authenticate("budi", PASSWORD)
        clock.now += timedelta(minutes=2)
        staff = await store.authenticate("budi", PASSWORD)
        [account] = await store.accounts()
        assert account.failed_logins == 0 and account.last_login_at == clock.now
        # A success resets the count: two failures after it do not lock.
        for _ in range(2):
            with pytest.raises(LoginFailed):
                await store.authenticate("budi", "salah-salah-salah")
        assert await store.authenticate("budi", PASSWORD) == staff
    finally:
        await engine.dispose()


async def test_supervisor_unlocks_and_disables(staff_store: StaffStore) -> None:
    staff = await add_staff(staff_store, "budi")
    for _ in range(3):
        with pytest.raises((LoginFailed, AccountLocked)):
            await staff_store.authenticate("budi", "salah-salah-salah")
    with pytest.raises(AccountLocked):
        await staff_store.authenticate("budi", PASSWORD)
    assert await staff_store.unlock(staff.id)
    token, _ = await staff_store.new_session(await staff_store.authenticate("budi", PASSWORD))
    assert (await staff_store.session(token)) is not None
    assert await staff_store.set_disabled(staff.id, True)
    assert await staff_store.session(token) is None  # disabling ends its sessions
    with pytest.raises(LoginFailed):
        await staff_store.authenticate("budi", PASSWORD)
    assert not await staff_store.unlock("no-such-id")


async def test_sessions_are_random_tokens_stored_hashed_and_expire(
    letter_settings: Settings,
) -> None:
    clock = FixedClock(datetime(2026, 11, 26, 2, 0, tzinfo=UTC))
    engine = create_engine(letter_settings.database)
    store = StaffStore(engine, letter_settings.letter, clock)
    try:
        staff = await add_staff(store, "budi")
        token, session = await store.new_session(staff)
        assert len(token) >= 43 and session.staff == staff and len(session.csrf_token) >= 43
        async with engine.connect() as conn:
            stored = (await conn.execute(select(staff_sessions.c.token_hash))).scalars().all()
        assert stored == [hash_token(token)] and token not in stored
        again = await store.session(token)
        assert again is not None and again.staff == staff and again.csrf_token == session.csrf_token
        assert await store.session(token + "x") is None
        # Idle for longer than session_idle_timeout: gone.
        clock.now += timedelta(seconds=letter_settings.letter.session_idle_timeout + 1)
        assert await store.session(token) is None
        # Active, but past session_max_age (counted from the login): gone too.
        token, _ = await store.new_session(staff)
        created = clock.now
        expires = created + timedelta(seconds=letter_settings.letter.session_max_age)
        step = timedelta(minutes=55)  # a request now and then, within the idle timeout
        while clock.now + step < expires - timedelta(seconds=1):
            clock.now += step
            assert await store.session(token) is not None
        clock.now = expires - timedelta(seconds=1)
        assert await store.session(token) is not None  # still valid just before
        clock.now = expires + timedelta(seconds=1)
        assert await store.session(token) is None  # gone just after
        # Logout forgets it at once.
        token, session = await store.new_session(staff)
        await store.end_session(session.token_hash)
        assert await store.session(token) is None
    finally:
        await engine.dispose()


async def test_pre_login_session_has_no_staff(staff_store: StaffStore) -> None:
    token, session = await staff_store.new_session(None)
    found = await staff_store.session(token)
    assert found is not None and found.staff is None and found.csrf_token == session.csrf_token


def test_cli_creates_an_account_with_the_password_from_stdin(
    letter_settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli, "load_settings", lambda: letter_settings)
    assert cli.main(["staff", "list"]) == 0  # none yet: said, with how to make the first
    assert "no accounts yet" in capsys.readouterr().out
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert cli.main(["staff", "create", "--username", "Ani", "--role", "supervisor"]) == 0
    assert "created supervisor ani" in capsys.readouterr().out
    monkeypatch.setattr("sys.stdin", io.StringIO("pendek\n"))
    assert cli.main(["staff", "create", "--username", "budi", "--role", "clerk"]) == 2
    assert "at least" in capsys.readouterr().err
    assert cli.main(["staff", "list"]) == 0
    listed = capsys.readouterr().out
    assert "ani" in listed and "supervisor" in listed and "budi" not in listed

    async def check() -> None:
        engine = create_engine(letter_settings.database)
        store = StaffStore(engine, letter_settings.letter)
        try:
            staff = await store.authenticate("ani", PASSWORD)
            assert staff.role is Role.SUPERVISOR
        finally:
            await engine.dispose()

    asyncio.run(check())


async def test_parallel_guesses_are_counted_before_any_password_is_checked(
    letter_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many guesses at once (one pre-login token, sent in parallel) all arrive before the first
    is checked; only ``lockout_threshold`` of them have their password checked, and the right
    password among the rest is refused like any attempt on a locked account."""
    limit = letter_settings.letter.lockout_threshold
    wrong_guesses = limit + 4
    # Cheap argon2 parameters: the test is about who is checked, not about argon2's cost.
    monkeypatch.setattr(auth, "_HASHER", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    real_verify = auth._verify
    checked: list[str] = []
    gate = threading.Event()  # every check waits here: all the guesses are in flight at once

    def counting_verify(password_hash: str, password: str) -> tuple[bool, bool]:
        if password_hash != auth._DUMMY_HASH:
            checked.append(password)
        assert gate.wait(10), "the test never opened the gate"
        return real_verify(password_hash, password)

    monkeypatch.setattr(auth, "_verify", counting_verify)
    clock = FixedClock(datetime(2026, 11, 26, 2, 0, tzinfo=UTC))
    engine = create_engine(letter_settings.database)
    store = StaffStore(engine, letter_settings.letter, clock)
    loop = asyncio.get_running_loop()
    threads = ThreadPoolExecutor(max_workers=wrong_guesses + 4)  # room for every guess at once
    loop.set_default_executor(threads)

    async def until(check: Callable[[], bool]) -> None:
        deadline = loop.time() + 10
        while not check():
            assert loop.time() < deadline, f"timed out ({len(checked)} checked)"
            await asyncio.sleep(0.01)

    try:
        await add_staff(store, "budi")
        guesses = [
            asyncio.create_task(store.authenticate("budi", f"tebakan-{i}-salah"))
            for i in range(wrong_guesses)
        ]
        await until(lambda: len(checked) >= limit)  # the first ones are being checked
        right = asyncio.create_task(store.authenticate("budi", PASSWORD))
        # Either the right password is refused at once, or it waits to be checked beside
        # every other guess (what a lock read before the check let through).
        await until(lambda: right.done() or len(checked) > wrong_guesses)
        gate.set()
        outcomes = await asyncio.gather(*guesses, right, return_exceptions=True)
        assert len(checked) <= limit and PASSWORD not in checked
        assert all(isinstance(o, LoginFailed | AccountLocked) for o in outcomes[:-1]), outcomes
        assert isinstance(outcomes[-1], AccountLocked), outcomes[-1]
        assert sum(isinstance(o, AccountLocked) for o in outcomes) >= wrong_guesses - limit + 1
        # Still locked afterwards, for the right password too, without checking it.
        with pytest.raises(AccountLocked) as caught:
            await store.authenticate("budi", PASSWORD)
        assert caught.value.until == clock.now + timedelta(minutes=15)
        assert len(checked) <= limit
        [account] = await store.accounts()
        assert account.locked_until == clock.now + timedelta(minutes=15)
        assert account.last_login_at is None
        # Once the lock has run out, the right password works and clears the count.
        clock.now += timedelta(minutes=16)
        await store.authenticate("budi", PASSWORD)
        [account] = await store.accounts()
        assert account.failed_logins == 0 and account.last_login_at == clock.now
    finally:
        gate.set()
        await engine.dispose()
