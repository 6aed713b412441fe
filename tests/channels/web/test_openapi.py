"""The OpenAPI 3.1 document: committed file == rendered document == the app's routes; and
schemathesis generates requests from it against the running app: zero 5xx answers, and every
answer's status, content type and body as the document says."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
WEB_EXACT = {"/", "/cek", "/tambah", "/tanda-terima"}


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


def _resolved(doc: dict[str, object], response: dict[str, object]) -> dict[str, object]:
    ref = response.get("$ref")
    if not isinstance(ref, str):
        return response
    node: object = doc
    for key in ref.removeprefix("#/").split("/"):
        assert isinstance(node, dict)
        node = node[key]
    assert isinstance(node, dict)
    return node


def test_every_error_answer_is_documented_in_its_format_and_says_when_to_retry() -> None:
    # The 429 and 503 answers carry Retry-After, which the document did not name: a client
    # generated from it could not know to read it. Every error of /api/v1 is a problem
    # document, every error of /open311/v2 the spec's error list in the path's format.
    doc = document()
    seen = 0
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            for status, response in op["responses"].items():
                if int(status) < 400:
                    continue
                answer = _resolved(doc, response)
                content = answer["content"]
                assert isinstance(content, dict)
                where = (method, path, status)
                if path.startswith("/api/"):
                    assert list(content) == ["application/problem+json"], where
                elif path.startswith("/open311/"):
                    fmt = "application/json" if path.endswith(".json") else "text/xml"
                    assert list(content) == [fmt], where
                    if fmt == "application/json":
                        schema = content[fmt]["schema"]
                        assert schema == {"$ref": "#/components/schemas/Open311Errors"}, where
                if status in ("429", "503"):
                    headers = answer.get("headers")
                    assert isinstance(headers, dict) and "Retry-After" in headers, where
                    seen += 1
    assert seen >= 10  # the API's and Open311's 429 and 503 answers
    problem = doc["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail"} <= set(problem["required"])
    assert "field" in problem["properties"]  # named on a refused part or file


def _operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            yield method, path, op


def test_every_operation_documents_the_500_of_a_failure_nobody_expected() -> None:
    # api_errors answers what a handler did not expect as a problem document, spec_errors as
    # the GeoReport v2 error list, and aiohttp its own page for the citizen pages: the document
    # named none of them, so a client generated from it could not read the answer.
    doc = document()
    for method, path, op in _operations(doc):
        where = (method, path)
        assert "500" in op["responses"], where
        answer = _resolved(doc, op["responses"]["500"])
        content = answer["content"]
        assert isinstance(content, dict)
        if path.startswith("/api/"):
            assert op["responses"]["500"] == {"$ref": "#/components/responses/Problem"}, where
        elif path.startswith("/open311/"):
            fmt = "json" if path.endswith(".json") else "xml"
            ref = {"json": "Open311Error", "xml": "Open311ErrorXml"}[fmt]
            assert op["responses"]["500"] == {"$ref": f"#/components/responses/{ref}"}, where
        else:
            assert set(content) == {"text/html", "text/plain"}, where


# One request per documented operation, which reaches the database where the route reads it.
def _requests() -> dict[tuple[str, str], tuple[str, dict[str, Any]]]:
    o311 = {"api_key": "o311", "service_code": "pengaduan", "description": "Jalan rusak parah",
            "lat": "-6.9", "long": "107.6"}
    out: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {
        ("get", "/"): ("/", {}),
        ("post", "/"): ("/", {"data": {"judul": "Jalan rusak", "isi": "Jalan rusak parah"}}),
        ("get", "/cek"): ("/cek?id=G69P-5CAWW", {}),
        ("post", "/api/v1/complaints"): ("/api/v1/complaints", {"json": {"body": "Jalan rusak"}}),
        ("get", "/api/v1/complaints/{tracking_id}"): ("/api/v1/complaints/G69P5CAWW", {}),
        ("get", "/api/v1/openapi.json"): ("/api/v1/openapi.json", {}),
        ("post", "/tanda-terima"): ("/tanda-terima", {"data": {"csrf": "x"}}),
        ("get", "/tanda-terima"): ("/tanda-terima?lang=en", {}),
        ("get", "/tambah"): ("/tambah?id=G69P-5CAWW", {}),
        ("post", "/tambah"): ("/tambah", {"data": {"nomor": "G69P-5CAWW", "kode": "AAAA-AAAA",
                                                   "tambahan": "Makin parah"}}),
        ("post", "/api/v1/complaints/{tracking_id}/followups"): (
            "/api/v1/complaints/G69P5CAWW/followups",
            {"json": {"body": "Makin parah", "followup_code": "AAAA-AAAA"}},
        ),
    }
    for fmt in ("json", "xml"):
        base = "/open311/v2"
        out |= {
            ("get", f"{base}/discovery.{fmt}"): (f"{base}/discovery.{fmt}", {}),
            ("get", f"{base}/services.{fmt}"): (f"{base}/services.{fmt}", {}),
            ("get", f"{base}/services/{{service_code}}.{fmt}"):
                (f"{base}/services/pengaduan.{fmt}", {}),
            ("get", f"{base}/requests.{fmt}"): (f"{base}/requests.{fmt}", {}),
            ("post", f"{base}/requests.{fmt}"): (f"{base}/requests.{fmt}", {"data": o311}),
            ("get", f"{base}/requests/{{service_request_id}}.{fmt}"):
                (f"{base}/requests/G69P5CAWW.{fmt}", {}),
            ("get", f"{base}/tokens/{{token}}.{fmt}"): (f"{base}/tokens/01a24705-b241-7a08-b6f0-ff33ca61d0c4.{fmt}", {}),
        }
    return out


def _app(tmp_path: Path, database: Path) -> tuple[bootstrap.Gateway, web.Application]:
    settings = load_settings(
        CONFIG, environ={},
        overrides={"database": {"url": f"sqlite+aiosqlite:///{database}"},
                   "storage": {"file_store": str(tmp_path / "files")},
                   "outbox": {"enabled": False}},
    )
    settings = settings.model_copy(update={"web": settings.web.model_copy(update={
        "csrf_key": SecretStr("k"), "open311_api_key": SecretStr("o311")})})
    gateway = bootstrap.build(settings)
    return gateway, bootstrap.build_app(gateway)


async def test_an_unexpected_failure_is_answered_as_documented(
    tmp_path: Path, aiohttp_client: Any
) -> None:
    # Every handler fails (a middleware nearest to it raises): each operation's answer is the
    # 500 its document describes, in its format.
    gateway, app = _app(tmp_path, tmp_path / "lapor.db")
    await migrate.upgrade(gateway.engine)

    @web.middleware
    async def failing(request: web.Request, handler: Any) -> web.StreamResponse:
        raise RuntimeError("a failure nobody expected")

    app.middlewares.append(failing)
    client = await aiohttp_client(app)
    doc = document()
    requests = _requests()
    assert set(requests) == {(m, p) for m, p, _ in _operations(doc)}
    try:
        for (method, path), (url, kwargs) in requests.items():
            resp = await client.request(method.upper(), url, **kwargs)
            assert resp.status == 500, (method, path, resp.status)
            documented = _resolved(doc, doc["paths"][path][method]["responses"]["500"])
            assert resp.content_type in documented["content"], (method, path)
            if resp.content_type == "application/problem+json":
                assert (await resp.json())["status"] == 500
    finally:
        await gateway.close()


async def test_with_the_database_away_each_operation_answers_as_documented(
    tmp_path: Path, aiohttp_client: Any
) -> None:
    # Every operation that reads or writes the database answers 503 with Retry-After when it
    # cannot, and documents it; the others answer as without the outage.
    gateway, app = _app(tmp_path, tmp_path / "never-migrated.db")
    client = await aiohttp_client(app)
    doc = document()
    try:
        await client.get("/")  # the form's cookie, so that the form post reaches its check
        for (method, path), (url, kwargs) in _requests().items():
            resp = await client.request(method.upper(), url, **kwargs)
            responses = doc["paths"][path][method]["responses"]
            assert str(resp.status) in responses, (method, path, resp.status)
            if "503" in responses:
                assert resp.status == 503, (method, path, resp.status)
                assert int(resp.headers["Retry-After"]) > 0, (method, path)
            else:
                assert resp.status < 500, (method, path, resp.status)
    finally:
        await gateway.close()
