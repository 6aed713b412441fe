"""Front-desk staff: accounts with roles, argon2 password hashes, sessions in the database.

- **Accounts** have a role: ``clerk`` (uploads, reviews and confirms letters) or ``supervisor``
  (also manages accounts and sees every clerk's letters). Usernames are lowercase.
- **Passwords** are hashed with argon2id (argon2-cffi, RFC 9106 parameters of its default
  profile); hashing and verification run in a thread, never on the event loop. A hash made with
  older parameters is replaced at the next successful login.
- **Lockout**: ``lockout_threshold`` attempts without a successful login lock the account for
  ``lockout_minutes``. Each attempt is counted in the account row by an atomic ``UPDATE`` that
  also checks the lock, *before* its password is checked (so replicas share the count, and
  guesses sent in parallel are counted one by one: at most ``lockout_threshold`` of them are
  ever checked); a successful login resets the count. A locked account is refused without its
  password being checked.
- **Sessions** are random 256-bit tokens in an HttpOnly, SameSite=Strict cookie; the table keeps
  only their SHA-256, so a copy of the database opens no session. Each session carries its own
  random CSRF token (OWASP "synchronizer token"). A session ends at ``session_max_age`` after
  login or after ``session_idle_timeout`` without a request, and at logout. The login form has a
  pre-login session (no staff id) for its CSRF token, good for one attempt: it is ended when a
  login is tried with it, and a failed attempt gets a fresh one. Anyone may ask for the form:
  the pre-login sessions that expired are deleted each time one is made. A login always starts a new
  session, so a token planted before login is worthless after it (session fixation).

No secret is configured for any of this: tokens are random and live in the database, so every
replica recognises every session.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NoReturn

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Row, delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from channels.dates import WIB
from gateway.intake import Clock, utcnow
from gateway.settings import LetterSettings
from gateway.storage.schema import staff_accounts, staff_sessions

USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,63}")
MAX_PASSWORD = 1024
# A pre-login session (the login form's CSRF token) lives this long.
PRE_LOGIN_SECONDS = 3600.0
# ``last_seen_at`` is written at most this often (not on every request).
TOUCH_SECONDS = 60.0

_HASHER = PasswordHasher()
# Verified against when the username is unknown, so an unknown name takes as long as a known one.
_DUMMY_HASH = _HASHER.hash(secrets.token_urlsafe(16))

Message = tuple[str, str]  # (Indonesian, English)


class Role(enum.StrEnum):
    """What a staff member may do."""

    CLERK = "clerk"
    SUPERVISOR = "supervisor"


@dataclass(frozen=True, slots=True)
class Staff:
    """A logged-in staff member."""

    id: str
    username: str
    role: Role

    @property
    def is_supervisor(self) -> bool:
        """True for supervisors."""
        return self.role is Role.SUPERVISOR


@dataclass(frozen=True, slots=True)
class Session:
    """One browser's session: who (None before login) and its CSRF token."""

    token_hash: str
    staff: Staff | None
    csrf_token: str


@dataclass(frozen=True, slots=True)
class Account:
    """An account as the supervisor's page lists it."""

    id: str
    username: str
    role: Role
    created_at: datetime
    disabled: bool
    failed_logins: int
    locked_until: datetime | None
    last_login_at: datetime | None


class AuthError(Exception):
    """Base of the staff errors; ``message`` is (Indonesian, English)."""

    message: Message = ("Tidak diizinkan.", "Not allowed.")

    def __init__(self, message: Message | None = None) -> None:
        if message is not None:
            self.message = message
        super().__init__(self.message[1])


class LoginFailed(AuthError):
    """Unknown username, wrong password or a disabled account (never said which)."""

    message = ("Nama pengguna atau kata sandi salah.", "Wrong username or password.")


class AccountLocked(AuthError):
    """Too many wrong passwords: the account is locked until ``until``."""

    def __init__(self, until: datetime) -> None:
        self.until = until
        shown = until.astimezone(WIB)  # the desk's clock shows Indonesian time
        super().__init__(
            (
                f"Akun dikunci sementara karena terlalu banyak percobaan gagal, sampai "
                f"{shown:%H:%M} WIB.",
                f"The account is locked after too many failed attempts, until {shown:%H:%M} WIB.",
            )
        )


class InvalidAccount(AuthError):
    """An account could not be created as asked (name taken, weak password...)."""


def hash_token(token: str) -> str:
    """The SHA-256 (hex) under which a session token is stored."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def normalize_username(text: str) -> str:
    """Usernames compare case-insensitively: stored lowercase, trimmed."""
    return text.strip().lower()


def check_new_account(username: str, role: str, password: str, min_length: int) -> Role:
    """The role, when the name, role and password are acceptable; else :class:`InvalidAccount`."""
    if not USERNAME.fullmatch(username):
        raise InvalidAccount(
            (
                "Nama pengguna 2-64 karakter: huruf kecil, angka, titik, minus atau garis bawah.",
                "Username: 2-64 characters, lowercase letters, digits, dot, dash or underscore.",
            )
        )
    try:
        parsed = Role(role)
    except ValueError:
        raise InvalidAccount(
            ("Peran harus clerk atau supervisor.", "The role must be clerk or supervisor.")
        ) from None
    if not min_length <= len(password) <= MAX_PASSWORD:
        raise InvalidAccount(
            (
                f"Kata sandi paling sedikit {min_length} karakter.",
                f"The password needs at least {min_length} characters.",
            )
        )
    if password.strip() != password or len(set(password)) < 4:
        raise InvalidAccount(
            (
                "Kata sandi terlalu lemah (tanpa spasi di awal/akhir, jangan satu huruf berulang).",
                "The password is too weak (no leading or trailing spaces, not one repeated "
                "character).",
            )
        )
    return parsed


def _verify(password_hash: str, password: str) -> tuple[bool, bool]:
    """(matches, needs a new hash)."""
    try:
        _HASHER.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False, False
    return True, _HASHER.check_needs_rehash(password_hash)


class StaffStore:
    """Accounts, logins and sessions in the database."""

    def __init__(
        self, engine: AsyncEngine, settings: LetterSettings, clock: Clock = utcnow
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._clock = clock

    # ---- accounts -------------------------------------------------------------------------

    async def create_account(self, username: str, role: str, password: str) -> Staff:
        """Add an account; :class:`InvalidAccount` when the name is taken or not acceptable."""
        username = normalize_username(username)
        parsed = check_new_account(username, role, password, self._settings.min_password_length)
        password_hash = await asyncio.to_thread(_HASHER.hash, password)
        staff = Staff(str(uuid.uuid4()), username, parsed)
        try:
            async with self._engine.begin() as conn:
                await conn.execute(
                    staff_accounts.insert().values(
                        id=staff.id,
                        username=username,
                        role=parsed.value,
                        password_hash=password_hash,
                        created_at=self._clock(),
                        failed_logins=0,
                    )
                )
        except IntegrityError:
            raise InvalidAccount(
                (f"Nama pengguna {username} sudah dipakai.", f"The username {username} is taken.")
            ) from None
        return staff

    async def accounts(self) -> list[Account]:
        """Every account, by username."""
        async with self._engine.connect() as conn:
            rows = await conn.execute(select(staff_accounts).order_by(staff_accounts.c.username))
            return [
                Account(
                    id=r.id,
                    username=r.username,
                    role=Role(r.role),
                    created_at=r.created_at,
                    disabled=r.disabled_at is not None,
                    failed_logins=r.failed_logins,
                    locked_until=r.locked_until,
                    last_login_at=r.last_login_at,
                )
                for r in rows
            ]

    async def unlock(self, staff_id: str) -> bool:
        """Lift a lockout; False when there is no such account."""
        return await self._update_account(staff_id, failed_logins=0, locked_until=None)

    async def set_disabled(self, staff_id: str, disabled: bool) -> bool:
        """Disable (ending its sessions) or enable an account; False when there is none."""
        found = await self._update_account(
            staff_id, disabled_at=self._clock() if disabled else None
        )
        if found and disabled:
            async with self._engine.begin() as conn:
                await conn.execute(
                    delete(staff_sessions).where(staff_sessions.c.staff_id == staff_id)
                )
        return found

    async def _update_account(self, staff_id: str, **values: Any) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(staff_accounts).where(staff_accounts.c.id == staff_id).values(**values)
            )
        return bool(result.rowcount)

    # ---- login ----------------------------------------------------------------------------

    async def authenticate(self, username: str, password: str) -> Staff:
        """The staff member, or :class:`LoginFailed` / :class:`AccountLocked`.

        The attempt is counted (and the lock checked) in the database *before* the password
        is: of any number of guesses sent at once, only those counted while the account was not
        locked, at most ``lockout_threshold``, have their password checked.
        """
        username = normalize_username(username)
        now = self._clock()
        if len(password) > MAX_PASSWORD:
            await asyncio.to_thread(_verify, _DUMMY_HASH, password)
            raise LoginFailed()
        attempt = await self._count_attempt(username, now)
        if attempt is None:
            await self._refuse(username, password, now)
        row, locked_until = attempt
        ok, rehash = await asyncio.to_thread(_verify, row.password_hash, password)
        if not ok:
            if locked_until is not None:  # this attempt reached the threshold
                raise AccountLocked(locked_until)
            raise LoginFailed()
        values: dict[str, Any] = {"failed_logins": 0, "locked_until": None, "last_login_at": now}
        if rehash:
            values["password_hash"] = await asyncio.to_thread(_HASHER.hash, password)
        await self._update_account(row.id, **values)
        return Staff(row.id, row.username, Role(row.role))

    async def _count_attempt(
        self, username: str, now: datetime
    ) -> tuple[Row[Any], datetime | None] | None:
        """Count one attempt on an enabled, unlocked account, in one transaction; None when
        there is no such account (unknown, disabled or locked).

        Returns the account row and, when this attempt reaches ``lockout_threshold``, the end
        of the lock it has just set (the count restarts from zero then). The ``UPDATE`` takes
        the row's write lock, so parallel attempts are counted one after the other and the ones
        after the lock find no row to count. Only a successful login resets the count.
        """
        accounts = staff_accounts.c
        async with self._engine.begin() as conn:
            row = (
                await conn.execute(
                    update(staff_accounts)
                    .where(
                        accounts.username == username,
                        accounts.disabled_at.is_(None),
                        or_(accounts.locked_until.is_(None), accounts.locked_until <= now),
                    )
                    .values(failed_logins=accounts.failed_logins + 1)
                    .returning(
                        accounts.id,
                        accounts.username,
                        accounts.role,
                        accounts.password_hash,
                        accounts.failed_logins,
                    )
                )
            ).first()
            if row is None:
                return None
            if row.failed_logins < self._settings.lockout_threshold:
                return row, None
            until = now + timedelta(minutes=self._settings.lockout_minutes)
            await conn.execute(
                update(staff_accounts)
                .where(accounts.id == row.id)
                .values(failed_logins=0, locked_until=until)
            )
        return row, until

    async def _refuse(self, username: str, password: str, now: datetime) -> NoReturn:
        """An attempt that was not counted: locked (said so, the password unchecked), or an
        unknown or disabled account (as slow as a wrong password)."""
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(staff_accounts.c.disabled_at, staff_accounts.c.locked_until).where(
                        staff_accounts.c.username == username
                    )
                )
            ).first()
        locked_until = row.locked_until if row is not None and row.disabled_at is None else None
        if locked_until is not None and locked_until > now:
            raise AccountLocked(locked_until)
        await asyncio.to_thread(_verify, _DUMMY_HASH, password)
        raise LoginFailed()

    # ---- sessions -------------------------------------------------------------------------

    async def new_session(self, staff: Staff | None) -> tuple[str, Session]:
        """A new session (pre-login when ``staff`` is None); returns (cookie token, session)."""
        now = self._clock()
        token = secrets.token_urlsafe(32)
        session = Session(hash_token(token), staff, secrets.token_urlsafe(32))
        lifetime = self._settings.session_max_age if staff is not None else PRE_LOGIN_SECONDS
        async with self._engine.begin() as conn:
            if staff is not None:  # a login: clear out what has expired meanwhile
                idle = now - timedelta(seconds=self._settings.session_idle_timeout)
                await conn.execute(
                    delete(staff_sessions).where(
                        or_(
                            staff_sessions.c.expires_at < now,
                            staff_sessions.c.last_seen_at < idle,
                        )
                    )
                )
            else:
                # Anyone may ask for the login form, as often as they like, without ever
                # logging in: the pre-login sessions that expired go as new ones come (through
                # the index on expires_at), so they are never more than one hour's worth.
                await conn.execute(
                    delete(staff_sessions).where(
                        staff_sessions.c.expires_at < now, staff_sessions.c.staff_id.is_(None)
                    )
                )
            await conn.execute(
                staff_sessions.insert().values(
                    token_hash=session.token_hash,
                    staff_id=staff.id if staff is not None else None,
                    csrf_token=session.csrf_token,
                    created_at=now,
                    last_seen_at=now,
                    expires_at=now + timedelta(seconds=lifetime),
                )
            )
        return token, session

    async def session(self, token: str | None) -> Session | None:
        """The live session of a cookie token, or None (unknown, expired, idle, disabled)."""
        if not token or len(token) > 128 or not token.isascii():
            return None  # ours are URL-safe base64; anything else (bytes not UTF-8...) is none
        now = self._clock()
        token_hash = hash_token(token)
        query = (
            select(
                staff_sessions.c.staff_id,
                staff_sessions.c.csrf_token,
                staff_sessions.c.last_seen_at,
                staff_sessions.c.expires_at,
                staff_accounts.c.username,
                staff_accounts.c.role,
                staff_accounts.c.disabled_at,
            )
            .select_from(
                staff_sessions.outerjoin(
                    staff_accounts, staff_accounts.c.id == staff_sessions.c.staff_id
                )
            )
            .where(staff_sessions.c.token_hash == token_hash)
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None or row.expires_at <= now:
            return None
        staff: Staff | None = None
        if row.staff_id is not None:
            idle = (now - row.last_seen_at).total_seconds()
            if row.disabled_at is not None or idle > self._settings.session_idle_timeout:
                return None
            staff = Staff(row.staff_id, row.username, Role(row.role))
            if idle > TOUCH_SECONDS:
                async with self._engine.begin() as conn:
                    await conn.execute(
                        update(staff_sessions)
                        .where(staff_sessions.c.token_hash == token_hash)
                        .values(last_seen_at=now)
                    )
        return Session(token_hash, staff, row.csrf_token)

    async def end_session(self, token_hash: str) -> bool:
        """Forget a session (logout, or a pre-login session spent on a login attempt); False
        when it was already gone (another request ended it first)."""
        async with self._engine.begin() as conn:
            result = await conn.execute(
                delete(staff_sessions).where(staff_sessions.c.token_hash == token_hash)
            )
        return bool(result.rowcount)
