"""Browser hardening and hostile bytes on every HTTP surface of the real application.

- Every answer carries the hardening headers (gateway.http.SECURITY_HEADERS and a
  Content-Security-Policy), whatever made it: the citizen pages, the API, Open311, the SMS
  bridges, the health routes, a streamed file, aiohttp's own 404; the staff pages keep theirs.
- Request headers and cookies holding bytes that are not UTF-8 (aiohttp decodes them with
  surrogateescape) are refused or ignored like any wrong value: never an HTTP 500 nor a 503
  (either fires an alert that pages the operator on call: LaporServerErrors,
  LaporIntakeUnavailable).
- The form's cookie is Secure when the citizen came over HTTPS through the trusted proxy.
"""

from __future__ import annotations

import asyncio
import io
import ipaddress
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pydantic import SecretStr

from gateway import bootstrap
from gateway.http import HTML_POLICY, OTHER_POLICY
from gateway.settings import Settings
from tests.support import free_port, with_section

pytestmark = pytest.mark.integration

Client = Callable[..., Awaitable[TestClient[Any, Any]]]
TOKEN = "fetch-t0ken"
COMPLAINT = {
    "title": "Jalan berlubang",
    "body": "Jalan Siliwangi depan pasar berlubang besar, sudah 2 bulan.",
    "reporter": {"name": "Siti", "phone": "+6281234567890"},
}
HARDENING = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def configure(settings: Settings, **web: Any) -> Settings:
    settings = with_section(settings, "storage", fetch_token=SecretStr(TOKEN))
    return with_section(settings, "web", csrf_key=SecretStr("test-csrf-key"), **web)


@pytest.fixture
async def gw(settings: Settings) -> AsyncIterator[bootstrap.Gateway]:
    gateway = bootstrap.build(configure(settings))
    yield gateway
    await gateway.close()


@pytest.fixture
async def client(gw: bootstrap.Gateway, aiohttp_client: Client) -> TestClient[Any, Any]:
    return await aiohttp_client(bootstrap.build_app(gw))


async def raw_request(client: TestClient[Any, Any], head: bytes, body: bytes = b"") -> int:
    """Send ``head`` (request line and headers, bytes as they are) and ``body`` on a socket of
    its own; the answer's status. aiohttp's client would refuse to send such headers."""
    server = client.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        length = f"Content-Length: {len(body)}\r\n".encode() if body else b""
        writer.write(head + length + b"Host: test\r\nConnection: close\r\n\r\n" + body)
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 10)
        await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    return int(status_line.split()[1])


def png() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (4, 4), "white").save(out, "PNG")
    return out.getvalue()


def server_errors(metrics: str) -> list[str]:
    """The lines of lapor_http_responses_total that count a 500 or a 503."""
    return [
        line for line in metrics.splitlines()
        if line.startswith("lapor_http_responses_total")
        and ('status="500"' in line or 'status="503"' in line)
    ]


async def test_every_answer_carries_the_hardening_headers(
    client: TestClient[Any, Any], gw: bootstrap.Gateway
) -> None:
    receipt = await (await client.post("/api/v1/complaints", json=COMPLAINT)).json()
    stored = await gw.files.put_bytes(png())
    html_pages = {
        "/": 200,
        "/?lang=en": 200,
        "/cek": 200,
        f"/cek?id={receipt['tracking_id']}": 200,  # the ID is in the address: no Referer
        "/cek?id=AAAA-BBBBB": 404,
    }
    for path, status in html_pages.items():
        resp = await client.get(path)
        assert resp.status == status, path
        for name, value in HARDENING.items():
            assert resp.headers.get(name) == value, (path, name)
        assert resp.headers["Content-Security-Policy"] == HTML_POLICY, path
        assert resp.headers["Cache-Control"] == "no-store", path
        assert "<script" not in await resp.text()  # the policy allows no script at all
    # A form post (here refused: no CSRF cookie): the form comes back, hardened the same.
    refused = await client.post("/", data={"judul": "x"})
    assert refused.status in (400, 403)
    assert refused.headers["X-Frame-Options"] == "DENY"
    assert refused.headers["Content-Security-Policy"] == HTML_POLICY
    others = {
        f"/api/v1/complaints/{receipt['tracking_id']}": 200,
        "/api/v1/complaints/XXXX": 404,
        "/api/v1/openapi.json": 200,
        "/open311/v2/services.xml": 200,
        "/open311/v2/nothing.json": 404,
        "/healthz": 200,
        "/readyz": 200,
        "/metrics": 200,
        "/sms/kannel/dlr": 400,
        "/no/such/page": 404,  # aiohttp's own answer
        "/files/" + "0" * 64: 404,
    }
    for path, status in others.items():
        resp = await client.get(path)
        assert resp.status in (status, 503 if path == "/readyz" else status), path
        for name, value in HARDENING.items():
            assert resp.headers.get(name) == value, (path, name)
        assert resp.headers["Content-Security-Policy"] == OTHER_POLICY, path
    # A streamed file: its headers are sent before the handler returns.
    streamed = await client.get(f"/files/{stored}", headers={"Authorization": f"Bearer {TOKEN}"})
    assert streamed.status == 200 and streamed.content_type == "image/png"
    assert streamed.headers["Content-Security-Policy"] == OTHER_POLICY
    assert streamed.headers["X-Frame-Options"] == "DENY"
    assert streamed.headers["Cache-Control"] == "no-store"
    # The staff pages keep their own, stricter set (their script, their no-store).
    staff = await client.get("/staff/login")
    assert "script-src 'self'" in staff.headers["Content-Security-Policy"]
    assert staff.headers["X-Frame-Options"] == "DENY"


API = json.dumps(COMPLAINT).encode()
FORM = "application/x-www-form-urlencoded"
# (what, request line and headers, body, the answer expected)
HOSTILE: list[tuple[str, bytes, bytes, int]] = [
    # A form cookie the client wrote itself: a fresh one is issued, the form is served.
    ("form-cookie-get", b"GET / HTTP/1.1\r\nCookie: lapor_csrf=\xff\xfe\r\n", b"", 200),
    (
        "form-cookie-post",
        b"POST / HTTP/1.1\r\nCookie: lapor_csrf=\xff\xfe\r\nContent-Type: " + FORM.encode()
        + b"\r\n",
        b"csrf=1.abc.def&judul=x",
        403,
    ),
    (
        "form-csrf-mac-not-ascii",  # a fresh issue time, so that the MAC is compared
        b"POST / HTTP/1.1\r\nCookie: lapor_csrf=abcdef\r\nContent-Type: " + FORM.encode()
        + b"\r\n",
        b"",  # filled in with the time of the run
        403,
    ),
    ("staff-cookie", b"GET /staff/ HTTP/1.1\r\nCookie: lapor_staff=\xff\r\n", b"", 303),
    (
        "staff-login-cookie",
        b"POST /staff/login HTTP/1.1\r\nCookie: lapor_staff_login=\xff\r\nContent-Type: "
        + FORM.encode() + b"\r\n",
        b"csrf=x&username=ani&password=x",
        403,
    ),
    (
        "fetch-token",
        b"GET /files/" + b"0" * 64 + b" HTTP/1.1\r\nAuthorization: Bearer \xff\xfe\r\n",
        b"",
        404,
    ),
    (
        "user-agent",
        b"POST /api/v1/complaints HTTP/1.1\r\nUser-Agent: \xff\xfe\r\n"
        b"Content-Type: application/json\r\n",
        API,
        202,
    ),
    (
        # Was a 503 (the intake could not store the key): LaporIntakeUnavailable, critical.
        "idempotency-key",
        b"POST /api/v1/complaints HTTP/1.1\r\nIdempotency-Key: \xff\xfe\r\n"
        b"Content-Type: application/json\r\n",
        API,
        400,
    ),
]


@pytest.mark.parametrize(("what", "head", "body", "expected"), HOSTILE, ids=[h[0] for h in HOSTILE])
async def test_header_bytes_that_are_not_utf8_are_no_server_error(
    client: TestClient[Any, Any], what: str, head: bytes, body: bytes, expected: int
) -> None:
    if what == "form-csrf-mac-not-ascii":
        body = f"csrf={int(time.time())}.abc.%C3%A9&judul=x".encode()
    assert await raw_request(client, head, body) == expected
    metrics = await (await client.get("/metrics")).text()
    assert server_errors(metrics) == []


def _part(name: str, charset: str, value: bytes) -> bytes:
    return (
        f'--x\r\nContent-Disposition: form-data; name="{name}"\r\n'
        f"Content-Type: text/plain; charset={charset}\r\n\r\n".encode()
        + value + b"\r\n--x--\r\n"
    )


UTF7 = "application/x-www-form-urlencoded; charset=utf-7"
MULTIPART = "multipart/form-data; boundary=x"
# A body in a charset the client names, which Python decodes to a lone surrogate: UTF-7's
# "+2AA-" is U+D800 alone. Such text can be neither shown (the form echoes what was typed)
# nor hashed nor stored as UTF-8, so it is a body that cannot be read: 400, like one whose
# bytes are not in its charset.
SURROGATE_BODIES = [
    ("form", "/", UTF7, b"csrf=x&judul=%2B2AA-"),
    ("form-switch", "/?ganti_bahasa=1", UTF7, b"csrf=x&judul=%2B2AA-"),
    ("form-multipart", "/", MULTIPART, _part("judul", "utf-7", b"+2AA-")),
    ("form-switch-multipart", "/?ganti_bahasa=1", MULTIPART, _part("judul", "utf-7", b"+2AA-")),
    ("api-multipart", "/api/v1/complaints", MULTIPART, _part("complaint", "utf-7",
                                                               b'{"body": "Jalan rusak +2AA-"}')),
    ("staff-login", "/staff/login", UTF7, b"csrf=x&username=ani&password=%2B2AA-"),
    ("staff-login-multipart", "/staff/login", MULTIPART, _part("password", "utf-7", b"+2AA-")),
]


@pytest.mark.parametrize(
    ("what", "path", "content_type", "body"), SURROGATE_BODIES,
    ids=[b[0] for b in SURROGATE_BODIES],
)
async def test_a_body_whose_charset_decodes_to_a_lone_surrogate_is_a_bad_request(
    client: TestClient[Any, Any], what: str, path: str, content_type: str, body: bytes
) -> None:
    resp = await client.post(path, data=body, headers={"Content-Type": content_type})
    assert resp.status == 400, (what, resp.status)
    metrics = await (await client.get("/metrics")).text()
    assert server_errors(metrics) == []


async def test_a_part_or_file_name_that_decodes_to_a_lone_surrogate_is_no_server_error(
    client: TestClient[Any, Any],
) -> None:
    # RFC 2231 lets the client name the charset of a part's name and file name: UTF-7's
    # "+2AA-" decodes to U+D800 alone. A file name is only a label: it is kept with U+FFFD.
    def file_part(name: str) -> bytes:
        return (
            f"--x\r\nContent-Disposition: form-data; name=\"{name}\"; "
            "filename*=utf-7''%2B2AA-.png\r\nContent-Type: image/png\r\n\r\n"
        ).encode() + png() + b"\r\n"

    complaint = (
        b'--x\r\nContent-Disposition: form-data; name="complaint"\r\n'
        b"Content-Type: application/json\r\n\r\n" + API + b"\r\n"
    )
    multipart = {"Content-Type": MULTIPART}
    api = await client.post(
        "/api/v1/complaints", data=complaint + file_part("attachments") + b"--x--\r\n",
        headers=multipart,
    )
    assert api.status == 202 and (await api.json())["status"] == "accepted"
    form = file_part("lampiran") + b"--x--\r\n"
    named = b"--x\r\nContent-Disposition: form-data; name*=utf-7''%2B2AA-\r\n\r\nx\r\n--x--\r\n"
    for path, body in (("/", form), ("/?ganti_bahasa=1", form), ("/", named)):
        resp = await client.post(path, data=body, headers=multipart)
        assert resp.status == 403, (path, resp.status)  # no CSRF cookie: the form again
    metrics = await (await client.get("/metrics")).text()
    assert server_errors(metrics) == []


async def test_form_cookie_is_secure_when_the_citizen_came_over_https(
    settings: Settings, aiohttp_client: Client
) -> None:
    # The gateway is reached over HTTP from its TLS-terminating proxy: request.secure is always
    # false there, so the cookie was never Secure in production.
    gateway = bootstrap.build(configure(settings, trusted_proxies=(ipaddress.ip_network("127.0.0.1/32"),)))
    try:
        client = await aiohttp_client(bootstrap.build_app(gateway))
        https = await client.get(
            "/", headers={"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}
        )
        cookie = https.headers["Set-Cookie"]
        assert cookie.startswith("lapor_csrf=") and "; Secure" in cookie
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
        client.session.cookie_jar.clear()
        plain = await client.get("/", headers={"X-Forwarded-Proto": "http"})
        assert "Secure" not in plain.headers["Set-Cookie"]
    finally:
        await gateway.close()


# What aiohttp's HTTP parser refuses before any route (a request line and headers as sent).
PARSER_REFUSES = {
    "content-length-not-a-number": (
        b"POST /api/v1/complaints HTTP/1.1\r\nHost: test\r\nContent-Length: abc\r\n\r\n{}"
    ),
    "chunk-size-not-hex": (
        b"POST / HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"
    ),
    "header-without-colon": b"GET /cek HTTP/1.1\r\nHost: test\r\nNo colon here\r\n\r\n",
}


async def test_what_the_http_parser_refuses_carries_the_hardening_headers_too(
    settings: Settings,
) -> None:
    # aiohttp answers these itself, before any route, middleware or on_response_prepare runs:
    # its text/plain 400 came without the headers every answer of the gateway carries. Served
    # by `serve` itself: what matters is how the gateway builds its server.
    port = free_port()
    stop = asyncio.Event()
    served = asyncio.create_task(
        bootstrap.serve(with_section(configure(settings), "http", port=port), stop)
    )

    async def ask(request: bytes) -> bytes:
        for _ in range(200):  # until serve listens
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                break
            except OSError:
                assert not served.done(), served
                await asyncio.sleep(0.05)
        else:
            raise AssertionError("serve did not listen")
        try:
            writer.write(request)
            await writer.drain()
            return await asyncio.wait_for(reader.read(), 10)  # aiohttp closes after it
        finally:
            writer.close()

    try:
        for what, request in PARSER_REFUSES.items():
            head, _, _ = (await ask(request)).partition(b"\r\n\r\n")
            status, *lines = head.decode("latin-1").split("\r\n")
            headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in lines)}
            assert status.split()[1] == "400", (what, status)
            assert headers["content-type"].startswith("text/plain"), what  # still aiohttp's own
            for name, value in HARDENING.items():
                assert headers.get(name.lower()) == value, (what, name)
            assert headers.get("content-security-policy") == OTHER_POLICY, what
        # A request the parser takes is answered as before (by the routes, the same headers).
        page = await ask(b"GET /cek HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        assert page.startswith(b"HTTP/1.1 200 ") and b"text/html" in page
        assert f"Content-Security-Policy: {HTML_POLICY}".encode() in page
    finally:
        stop.set()
        await asyncio.wait_for(served, 30)

