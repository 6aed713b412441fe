"""The staff pages against hostile requests, on both databases: bodies that cannot be read,
a ``next`` that would break the Location header, and the login form asked for without end."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from channels.letter.auth import PRE_LOGIN_SECONDS, Role, StaffStore
from channels.letter.staff import safe_next
from gateway import bootstrap
from gateway.settings import Settings
from gateway.storage.schema import staff_sessions
from tests.channels.letter.conftest import PASSWORD, add_staff, csrf_token, login
from tests.support import FixedClock

pytestmark = pytest.mark.integration

Client = Callable[..., Awaitable[TestClient[Any, Any]]]
FORM = "application/x-www-form-urlencoded"
# A multipart form whose one field is not UTF-8, and a form in a charset nobody knows.
NOT_UTF8 = (
    b'--XX\r\nContent-Disposition: form-data; name="username"\r\n\r\n\xff\xfe\r\n--XX--\r\n',
    "multipart/form-data; boundary=XX",
)
UNKNOWN_CHARSET = (b"csrf=x&username=ani&password=x", f"{FORM}; charset=no-such-charset")


@pytest.fixture
async def gw(letter_settings: Settings) -> AsyncIterator[bootstrap.Gateway]:
    gateway = bootstrap.build(letter_settings)
    yield gateway
    await gateway.close()


@pytest.fixture
async def client(gw: bootstrap.Gateway, aiohttp_client: Client) -> TestClient[Any, Any]:
    store = StaffStore(gw.engine, gw.settings.letter)
    await add_staff(store, "ani", Role.SUPERVISOR)
    await add_staff(store, "budi", Role.CLERK)
    return await aiohttp_client(bootstrap.build_app(gw))


async def sessions(gw: bootstrap.Gateway) -> int:
    async with gw.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(staff_sessions))).scalar_one())


@pytest.mark.parametrize("body", [NOT_UTF8, UNKNOWN_CHARSET], ids=["not-utf8", "unknown-charset"])
async def test_a_form_body_that_cannot_be_read_is_a_400_not_a_500(
    client: TestClient[Any, Any], body: tuple[bytes, str]
) -> None:
    data, content_type = body
    headers = {"Content-Type": content_type}
    login_form = await client.post("/staff/login", data=data, headers=headers)
    assert login_form.status == 400, await login_form.text()
    assert "frame-ancestors 'none'" in login_form.headers["Content-Security-Policy"]
    token = await login(client, "ani")
    for path in ("/staff/logout", "/staff/accounts", "/staff/letters/x", "/staff/letters/x/read-again"):
        resp = await client.post(path, data=data, headers=headers, allow_redirects=False)
        assert resp.status == 400, path
        assert "Isian formulir rusak" in await resp.text()
    # An upload without its multipart boundary.
    upload = await client.post(
        "/staff/letters", data=b"--XX--", headers={"Content-Type": "multipart/form-data"}
    )
    assert upload.status == 400 and "Format unggahan rusak" in await upload.text()
    # Still logged in: nothing of the above ended the session.
    assert csrf_token(await (await client.get("/staff/")).text()) == token


@pytest.mark.parametrize("target", ["/staff/\r\nX-Evil: 1", "/staff/\x00", "/staff/a b", "/staff/é"])
async def test_a_next_that_is_no_url_leads_home_and_the_login_still_works(
    client: TestClient[Any, Any], target: str
) -> None:
    # A line break or a NUL passed as a page of the staff area: the login succeeded, then aiohttp
    # refused to send the Location header (HTTP 500, the connection cut, the new session's
    # cookie never set). A space or a letter outside ASCII is no URL either.
    assert safe_next(target) == "/staff/"
    form = await client.get("/staff/login")
    resp = await client.post(
        "/staff/login",
        data={"csrf": csrf_token(await form.text()), "username": "budi", "password": PASSWORD,
              "next": target},
        allow_redirects=False,
    )
    assert resp.status == 303 and resp.headers["Location"] == "/staff/"
    assert "lapor_staff=" in resp.headers["Set-Cookie"]
    assert (await client.get("/staff/")).status == 200
    assert safe_next("/staff/letters/abc?lang=en") == "/staff/letters/abc?lang=en"


async def test_login_forms_asked_for_without_end_do_not_pile_up(gw: bootstrap.Gateway) -> None:
    # Each GET /staff/login stores a pre-login session. They were deleted only at a login, so
    # anyone could fill the table on a quiet night; now the expired ones go as new ones come.
    clock = FixedClock(datetime(2026, 12, 1, 1, 0, tzinfo=UTC))
    store = StaffStore(gw.engine, gw.settings.letter, clock)
    for _ in range(5):
        await store.new_session(None)
    assert await sessions(gw) == 5
    clock.now += timedelta(seconds=PRE_LOGIN_SECONDS + 1)
    await store.new_session(None)
    assert await sessions(gw) == 1
    # A logged-in session is no pre-login one: it is not deleted with them (a login clears out
    # those that ended, by their own limits).
    staff = await add_staff(store, "citra", Role.CLERK)
    await store.new_session(staff)
    clock.now += timedelta(seconds=PRE_LOGIN_SECONDS + 1)
    await store.new_session(None)
    assert await sessions(gw) == 2
    async with gw.engine.connect() as conn:
        owners = (await conn.execute(select(staff_sessions.c.staff_id))).scalars().all()
    assert sorted(owners, key=str) == sorted([staff.id, None], key=str)
