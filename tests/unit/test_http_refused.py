"""What aiohttp's HTTP parser refuses before any route (a bad request line, a header with a
control character, a chunk size that is not hex, headers over the size limit), on a real server
built as the gateway builds its own (gateway.http.Runner) and a raw socket: one INFO line on
``aiohttp.server`` naming the peer and the reason, without a traceback and with personal data
masked, counted in ``lapor_http_responses_total`` (surface and method "other"). Random bytes from
the internet must not page the operator on call, whom ERROR lines page; an exception in a handler
still does."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from prometheus_client import generate_latest

from gateway import bootstrap
from gateway.http import Runner
from gateway.logs import JsonFormatter
from gateway.settings import load_settings
from gateway.storage import migrate
from tests.conftest import CONFIG
from tests.support import free_port

REFUSED = {
    "header-with-a-control-character": (
        b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\x01: 081234567890\r\n\r\n",
        "Invalid header token",
    ),
    "request-line-not-http": (b"GARBAGE / NOPE\r\n\r\n", "Bad"),
    "tls-on-the-http-port": (b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + b"\x00" * 16, ""),
    "control-character-in-the-path": (b"GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n", "url"),
    "chunk-size-not-hex": (
        b"POST /api/v1/complaints HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"zz\r\nabc\r\n0\r\n\r\n",
        "chunk size",
    ),
    "headers-over-the-limit": (
        b"GET / HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 10000 + b"\r\n\r\n",
        "Got more than",
    ),
    "content-length-not-a-number": (
        b"POST /api/v1/complaints HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n{}",
        "Content-Length",
    ),
}


@pytest.fixture
def server_lines() -> Iterator[io.StringIO]:
    """What aiohttp's server logger writes, through the gateway's (masking) JSON formatter."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("aiohttp.server")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield out
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[int, bootstrap.Gateway]]:
    """The gateway's application, with a route that fails, served by the gateway's Runner."""
    settings = load_settings(
        CONFIG, environ={},
        overrides={"database": {"url": f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"},
                   "storage": {"file_store": str(tmp_path / "files")},
                   "outbox": {"enabled": False}},
    )
    gateway = bootstrap.build(settings)
    await migrate.upgrade(gateway.engine)
    app = bootstrap.build_app(gateway)

    async def boom(_request: web.Request) -> web.Response:
        raise RuntimeError("a bug, reported by 081234567890")

    app.router.add_get("/boom", boom)
    runner = Runner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield port, gateway
    finally:
        await runner.cleanup()
        await gateway.close()


async def ask(port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 10)  # aiohttp closes after the answer
    finally:
        writer.close()


def lines(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]


def counted(gateway: bootstrap.Gateway, surface: str, method: str, status: str) -> float:
    value = gateway.metrics.registry.get_sample_value(
        "lapor_http_responses_total", {"surface": surface, "method": method, "status": status}
    )
    return value or 0.0


@pytest.mark.parametrize("what", list(REFUSED))
async def test_a_request_the_parser_refuses_is_one_info_line_and_is_counted(
    served: tuple[int, bootstrap.Gateway], server_lines: io.StringIO, what: str
) -> None:
    port, gateway = served
    request, reason = REFUSED[what]
    answer = await ask(port, request)
    assert answer.split(b" ", 2)[1] == b"400", answer[:80]
    await asyncio.sleep(0.05)  # the line is written as the answer goes
    written = lines(server_lines)
    assert len(written) == 1, written
    line = written[0]
    assert line["level"] == "INFO", line
    assert "exception" not in line and "Traceback" not in json.dumps(line)
    assert line["message"].startswith("request refused by the HTTP parser from 127.0.0.1: ")
    assert reason in line["message"], line
    assert counted(gateway, "other", "other", "400") == 1
    metrics = generate_latest(gateway.metrics.registry).decode()
    assert 'lapor_http_responses_total{method="other",status="400",surface="other"} 1.0' in metrics


async def test_what_the_client_sent_is_masked_in_the_line(
    served: tuple[int, bootstrap.Gateway], server_lines: io.StringIO
) -> None:
    port, _ = served
    await ask(port, REFUSED["header-with-a-control-character"][0])
    await asyncio.sleep(0.05)
    text = server_lines.getvalue()
    assert "081234567890" not in text
    assert "081******890" in text


async def test_an_exception_in_a_handler_is_still_an_error_with_its_traceback(
    served: tuple[int, bootstrap.Gateway], server_lines: io.StringIO
) -> None:
    port, gateway = served
    answer = await ask(port, b"GET /boom HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 500 ")
    await asyncio.sleep(0.05)
    written = lines(server_lines)
    assert [line["level"] for line in written] == ["ERROR"], written
    assert written[0]["message"].startswith("Error handling request")
    assert "RuntimeError: a bug, reported by 081******890" in written[0]["exception"]
    assert counted(gateway, "other", "GET", "500") == 1
    assert counted(gateway, "other", "other", "400") == 0


async def test_after_a_refused_request_the_next_connection_is_served_as_before(
    served: tuple[int, bootstrap.Gateway], server_lines: io.StringIO
) -> None:
    port, gateway = served
    await ask(port, REFUSED["request-line-not-http"][0])
    page = await ask(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert page.startswith(b"HTTP/1.1 200 ")
    answer = await ask(port, b"GET /boom HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 500 ")
    await asyncio.sleep(0.05)
    assert [line["level"] for line in lines(server_lines)] == ["INFO", "ERROR"]
    assert counted(gateway, "ops", "GET", "200") == 1
    assert counted(gateway, "other", "other", "400") == 1
