"""The OpenAPI 3.1 document: committed file == rendered document == the app's routes; and
schemathesis generates requests from it against the running app: zero 5xx answers, and every
answer's status, content type and body as the document says."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web
from pydantic import SecretStr

from channels.web.openapi import TARGET, document, render
from gateway import bootstrap
from gateway.settings import load_settings
from gateway.storage import migrate
from tests.conftest import CONFIG
from tests.support import free_port

WEB_PREFIXES = ("/api/", "/open311/")
WEB_EXACT = {"/", "/cek"}


def web_routes(app: web.Application) -> set[tuple[str, str]]:
    out = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter")
        if route.method == "HEAD" or not path:
            continue
        if path in WEB_EXACT or path.startswith(WEB_PREFIXES):
            out.add((route.method.lower(), path))
    return out


def test_committed_document_is_the_rendered_one() -> None:
    assert TARGET.read_text(encoding="utf-8") == render(), "run: python -m channels.web.openapi"
    assert json.loads(render())["openapi"] == "3.1.0"


def test_routes_and_document_do_not_drift(tmp_path: Path) -> None:
    settings = load_settings(
        CONFIG, environ={},
        overrides={"database": {"url": f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"},
                   "web": {}},
    )
    gateway = bootstrap.build(settings.model_copy(update={
        "web": settings.web.model_copy(update={"csrf_key": SecretStr("k")})}))
    app = bootstrap.build_app(gateway)
    documented = {
        (method, path) for path, ops in document()["paths"].items() for method in ops
    }
    assert web_routes(app) == documented
    asyncio.run(gateway.engine.dispose())


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """The whole app on a free port, in its own thread and event loop (requests is blocking)."""
    settings = load_settings(
        CONFIG, environ={},
        overrides={
            "database": {"url": f"sqlite+aiosqlite:///{tmp_path / 'lapor.db'}"},
            "storage": {"file_store": str(tmp_path / "files")},
            "outbox": {"enabled": False},
            "web": {"rate_limit_requests": 0, "max_attachment_size": 4096},
        },
    )
    settings = settings.model_copy(update={"web": settings.web.model_copy(update={
        "csrf_key": SecretStr("k"), "open311_api_key": SecretStr("o311")})})
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    port = free_port()
    gateway = bootstrap.build(settings)
    runner = web.AppRunner(bootstrap.build_app(gateway), access_log=None)

    async def start() -> None:
        await migrate.upgrade(gateway.engine)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()

    async def stop() -> None:
        await runner.cleanup()
        await gateway.close()

    asyncio.run_coroutine_threadsafe(start(), loop).result(30)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def test_schemathesis_finds_no_server_error_and_answers_as_documented(served: str) -> None:
    import schemathesis
    from hypothesis import HealthCheck, given
    from hypothesis import settings as hsettings
    from schemathesis.checks import (
        content_type_conformance,
        not_a_server_error,
        response_schema_conformance,
        status_code_conformance,
    )

    checks = [not_a_server_error, status_code_conformance, content_type_conformance,
              response_schema_conformance]
    schema = schemathesis.openapi.from_dict(document())
    ran = 0
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @hsettings(max_examples=15, deadline=None, database=None,
                   suppress_health_check=list(HealthCheck))
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(base_url=served, timeout=10, checks=checks)

        check()
        ran += 1
    assert ran == sum(len(ops) for ops in document()["paths"].values())
