"""The HTTP application: health, readiness, metrics, files and the JSON intake route."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, make_mocked_request
from pydantic import SecretStr
from sqlalchemy import event, insert

from gateway import bootstrap, http, tracking
from gateway.http import count_responses
from gateway.settings import Settings
from gateway.storage.schema import web_rate_limits
from tests.support import FixedClock, free_port, wait_until, with_section

pytestmark = pytest.mark.integration

Client = Callable[..., Awaitable[TestClient[Any, Any]]]
READER_TASK = "letter-reader-"  # the letter readers' tasks: letter-reader-0, letter-reader-1...


@pytest.fixture
async def gw(settings: Settings) -> AsyncIterator[bootstrap.Gateway]:
    gateway = bootstrap.build(with_section(settings, "storage", fetch_token=SecretStr("t0ken")))
    yield gateway
    await gateway.close()


COMPLAINT = {
    "title": "Jalan berlubang",
    "body": "Jalan Siliwangi depan pasar berlubang besar, sudah 2 bulan.",
    "kind": "pengaduan",
    "reporter": {"name": "Siti", "nik": "3209014101900001", "phone": "+6281234567890"},
    "privacy": {"anonymous": True, "confidential": False},
    "location": {"text": "Jl. Siliwangi, Sumber", "latitude": -6.76, "longitude": 108.48},
}


async def test_healthz_and_readyz_when_everything_is_up(
    gw: bootstrap.Gateway, aiohttp_client: Client
) -> None:
    client = await aiohttp_client(bootstrap.build_app(gw))
    assert (await client.get("/healthz")).status == 200
    assert gw.relay is not None
    await gw.relay.publish_batch()  # connects to the broker
    resp = await client.get("/readyz")
    body = await resp.json()
    assert resp.status == 200, body
    assert body["checks"]["database"]["ok"] and body["checks"]["broker"]["ok"]
    assert body["checks"]["outbox"] == {
        "ok": True, "pending": 0, "lag_seconds": 0.0, "max_lag_seconds": 300.0
    }
    await gw.relay._close()


async def test_every_page_finds_its_icon(gw: bootstrap.Gateway, aiohttp_client: Client) -> None:
    # Browsers ask for /favicon.ico on every page; a 404 was a wasted round trip for a phone.
    client = await aiohttp_client(bootstrap.build_app(gw))
    resp = await client.get("/favicon.ico")
    assert resp.status == 200 and resp.content_type == "image/png"
    assert "max-age=" in resp.headers["Cache-Control"]
    png = await resp.read()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and png[12:16] == b"IHDR"
    assert int.from_bytes(png[16:20], "big") == int.from_bytes(png[20:24], "big") == 16
    metrics = await (await client.get("/metrics")).text()
    assert 'lapor_http_responses_total{method="GET",status="200",surface="ops"}' in metrics


async def test_metrics_behind_a_token_when_one_is_set(
    settings: Settings, aiohttp_client: Client
) -> None:
    # The scrape reads the database: with http.metrics_token only Prometheus may cause it;
    # load balancers still probe /readyz and /healthz without it.
    gateway = bootstrap.build(with_section(settings, "http", metrics_token=SecretStr("m3trics")))
    try:
        client = await aiohttp_client(bootstrap.build_app(gateway))
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "m3trics"}):
            resp = await client.get("/metrics", headers=headers)
            assert resp.status == 401 and resp.headers["WWW-Authenticate"].startswith("Bearer")
            assert "lapor_" not in await resp.text()
        ok = await client.get("/metrics", headers={"Authorization": "Bearer m3trics"})
        assert ok.status == 200 and "lapor_outbox_depth" in await ok.text()
        assert (await client.get("/healthz")).status == 200
        assert (await client.get("/readyz")).status in (200, 503)  # answered, not refused
        assert (await client.get("/readyz")).status != 401
    finally:
        await gateway.close()


async def test_readyz_says_stopping_once_the_process_stops(
    gw: bootstrap.Gateway, aiohttp_client: Client
) -> None:
    # It answered 200 while serve stopped its tasks and let requests finish: a load balancer
    # went on sending new ones to a replica about to go.
    client = await aiohttp_client(bootstrap.build_app(gw))
    assert gw.relay is not None
    await gw.relay.publish_batch()  # connected: ready
    assert (await client.get("/readyz")).status == 200
    gw.stopping.set()
    resp = await client.get("/readyz")
    assert resp.status == 503 and (await resp.json())["status"] == "stopping"
    assert (await client.get("/healthz")).status == 200  # alive all the same


async def test_readyz_and_metrics_read_only_the_pending_rows(
    gw: bootstrap.Gateway, aiohttp_client: Client
) -> None:
    # The outbox keeps every published row: a probe that counted them would slow down with the
    # table's years until it passed its time limit and took every replica out at once.
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(" ".join(statement.split()))

    client = await aiohttp_client(bootstrap.build_app(gw))
    event.listen(gw.engine.sync_engine, "before_cursor_execute", record)
    try:
        assert (await client.get("/readyz")).status in (200, 503)
        assert (await client.get("/metrics")).status == 200
    finally:
        event.remove(gw.engine.sync_engine, "before_cursor_execute", record)
    outbox_reads = [s for s in statements if "FROM outbox" in s]
    assert outbox_reads, "the probes read the outbox"
    for read in outbox_reads:
        # The pending rows (their partial index), or the newest event alone (the keys check).
        assert "WHERE outbox.published_at IS NULL" in read or (
            "ORDER BY outbox.id DESC" in read and "LIMIT" in read
        ), read


async def test_readyz_names_the_database_when_it_is_down(
    settings: Settings, aiohttp_client: Client
) -> None:
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/none"
    gateway = bootstrap.build(with_section(settings, "database", url=url, connect_timeout=0.5))
    try:
        client = await aiohttp_client(bootstrap.build_app(gateway))
        resp = await client.get("/readyz")
        body = await resp.json()
        assert resp.status == 503
        assert body["checks"]["database"]["ok"] is False
        assert body["checks"]["outbox"]["ok"] is False
        # and the API answers "retry later", not 500
        resp = await client.post("/api/v1/complaints", json=COMPLAINT)
        assert resp.status == 503 and resp.headers["Retry-After"]
        assert resp.content_type == "application/problem+json"
        # reading too: the status route's 503 said nothing of when to try again
        tid = tracking.new_tracking_id()  # well-formed: looked up, not refused at sight
        resp = await client.get(f"/api/v1/complaints/{tid}")
        assert resp.status == 503 and resp.headers.get("Retry-After") == "5"
        assert (await resp.json(content_type=None))["status"] == 503
        resp = await client.get(f"/open311/v2/requests/{tid}.json")
        assert resp.status == 503 and resp.headers.get("Retry-After") == "5"
        # the pages too: the status page, and the form refused before it is counted
        resp = await client.get(f"/cek?id={tid}")
        assert resp.status == 503 and resp.headers.get("Retry-After") == "5"
        html = await (await client.get("/")).text()
        token = re.search(r'name="csrf" value="([^"]+)"', html)
        assert token is not None
        resp = await client.post("/", data={"csrf": token.group(1), "isi": "Jalan rusak"})
        assert resp.status == 503 and resp.headers.get("Retry-After") == "5"
    finally:
        await gateway.close()


async def test_readyz_reports_an_outbox_lag_over_the_limit_but_stays_ready(
    settings: Settings, aiohttp_client: Client
) -> None:
    outbox = settings.outbox.model_copy(update={"ready_max_lag": 0.2})
    clock = FixedClock(datetime(2026, 11, 26, 2, 0, tzinfo=UTC))
    gateway = bootstrap.build(settings.model_copy(update={"outbox": outbox}), clock=clock)
    try:
        client = await aiohttp_client(bootstrap.build_app(gateway))
        assert (await client.post("/api/v1/complaints", json=COMPLAINT)).status == 202
        fresh = (await (await client.get("/readyz")).json())["checks"]["outbox"]
        assert fresh["ok"] is True and fresh["pending"] == 1  # waiting, but not for long yet
        clock.now += timedelta(seconds=0.4)  # nobody publishes: the relay is not running here
        resp = await client.get("/readyz")
        body = await resp.json()
        # Named, but the replica stays in: it still takes complaints (the lag is every
        # replica's, and a load balancer must not take them all out for a broker outage).
        assert resp.status == 200 and body["status"] == "ready"
        assert body["checks"]["outbox"]["ok"] is False and body["checks"]["outbox"]["pending"] == 1
    finally:
        await gateway.close()


async def test_api_accepts_then_metrics_count_it(
    gw: bootstrap.Gateway, aiohttp_client: Client
) -> None:
    client = await aiohttp_client(bootstrap.build_app(gw))
    resp = await client.post("/api/v1/complaints", json=COMPLAINT, headers={"Idempotency-Key": "k1"})
    assert resp.status == 202
    receipt = await resp.json()
    again = await client.post("/api/v1/complaints", json=COMPLAINT, headers={"Idempotency-Key": "k1"})
    assert (await again.json())["tracking_id"] == receipt["tracking_id"]
    status = await client.get(receipt["status_url"])
    status_body = await status.json()
    assert status.status == 200 and status_body["status"] == "received"
    assert "reporter" not in status_body and "body" not in status_body
    text = await (await client.get("/metrics")).text()
    assert 'lapor_intake_accepted_total{channel="web"} 1.0' in text
    assert 'lapor_intake_duplicates_total{channel="web",tier="redelivery"} 1.0' in text
    assert 'lapor_outbox_depth{channel="web"} 1.0' in text
    assert 'lapor_outbox_depth{channel="sms"} 0.0' in text
    assert "lapor_outbox_oldest_age_seconds" in text
    assert "lapor_outbox_publish_latency_seconds_bucket" in text
    assert gw.relay is not None
    await gw.relay.publish_batch()
    await gw.relay._close()
    text = await (await client.get("/metrics")).text()
    assert 'lapor_outbox_depth{channel="web"} 0.0' in text
    assert 'lapor_outbox_published_total{channel="web"} 1.0' in text


async def test_wrong_or_mistyped_tracking_id_answers_alike(
    gw: bootstrap.Gateway, aiohttp_client: Client
) -> None:
    client = await aiohttp_client(bootstrap.build_app(gw))
    receipt = await (await client.post("/api/v1/complaints", json=COMPLAINT)).json()
    tid = receipt["tracking_id"]
    typo = tid[:-1] + ("2" if tid[-1] != "2" else "3")
    unknown = await client.get("/api/v1/complaints/ABCDEFGH2")
    mistyped = await client.get(f"/api/v1/complaints/{typo}")
    assert unknown.status == mistyped.status == 404
    assert (await unknown.json())["detail"] == (await mistyped.json())["detail"]


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        (b"{not json", "JSON"),
        (b'{"body": 5}', "body"),
        (b'{"body": "x", "nik": "1"}', "unknown field: nik"),
        (b'{"title": "x"}', "body wajib"),
        (b'{"body": "x", "kind": "protes"}', "kind"),
        (b'[]', "objek"),
    ],
)
async def test_api_refuses_bad_input_with_a_problem_document(
    gw: bootstrap.Gateway, aiohttp_client: Client, payload: bytes, fragment: str
) -> None:
    client = await aiohttp_client(bootstrap.build_app(gw))
    resp = await client.post(
        "/api/v1/complaints", data=payload, headers={"Content-Type": "application/json"}
    )
    assert resp.status == 400
    assert resp.content_type == "application/problem+json"
    assert fragment in (await resp.json())["detail"]


async def test_files_need_the_fetch_token(gw: bootstrap.Gateway, aiohttp_client: Client) -> None:
    data = b"lampiran: surat pengaduan"
    sha = await gw.files.put_bytes(data)
    assert sha == hashlib.sha256(data).hexdigest()
    client = await aiohttp_client(bootstrap.build_app(gw))
    assert (await client.get(f"/files/{sha}")).status == 404
    assert (await client.get(f"/files/{sha}", headers={"Authorization": "Bearer nope"})).status == 404
    ok = await client.get(f"/files/{sha}", headers={"Authorization": "Bearer t0ken"})
    assert ok.status == 200 and await ok.read() == data
    bad = await client.get("/files/..%2f..%2fetc", headers={"Authorization": "Bearer t0ken"})
    assert bad.status == 404


# Gateway.close() settles what the application runs besides its requests before it disposes the
# pool. ``engine.dispose()`` closes only the connections checked in: one checked out at that moment
# went back to the discarded pool later, one taken after it landed in the engine's fresh pool, and
# either stayed open until the garbage collector found it in some later test (asyncpg: "unclosed
# connection"). Here, as in every test using ``aiohttp_client``, the application's own cleanup
# runs only after the test, so the gateway is closed first.


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_close_waits_for_the_prune_that_follows_an_answer(
    settings: Settings, database_url: str, aiohttp_client: Client
) -> None:
    gateway = bootstrap.build(settings)
    client = await aiohttp_client(bootstrap.build_app(gateway))
    async with gateway.engine.begin() as conn:  # a row old enough to be pruned
        await conn.execute(
            insert(web_rate_limits),
            {"bucket": "ip:stale", "window_start": 0, "hits": 1,
             "updated_at": datetime(2000, 1, 1, tzinfo=UTC)},
        )
    dsn = database_url.replace("postgresql+asyncpg://", "postgresql://")
    locker, watcher = await asyncpg.connect(dsn), await asyncpg.connect(dsn)
    lock = locker.transaction()
    try:
        await lock.start()
        await locker.execute("SELECT 1 FROM web_rate_limits WHERE bucket = 'ip:stale' FOR UPDATE")
        # The first request of the process is counted, answered, then pruning starts: it waits
        # for the locked row on a connection of the pool.
        assert (await client.post("/api/v1/complaints", json=COMPLAINT)).status == 202
        for _ in range(200):
            waiting = await watcher.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock' AND query LIKE 'DELETE FROM web_rate_limits%'"
            )
            if waiting:
                break
            await asyncio.sleep(0.02)
        assert waiting == 1, "the prune is not waiting for the row lock"
        pool = gateway.engine.sync_engine.pool
        closing = asyncio.create_task(gateway.close())
        await asyncio.sleep(0.3)
        assert not closing.done(), "close() disposed the pool under a running prune"
        await lock.rollback()
        await asyncio.wait_for(closing, 10)
        assert pool.checkedin() == 0 and pool.checkedout() == 0  # nothing left in the old pool
    finally:
        if locker.is_in_transaction():  # only when an assertion failed before the rollback
            await lock.rollback()
        await locker.close()
        await watcher.close()
        await gateway.close()  # again: a no-op after the first (nothing runs, pools empty)


async def test_close_stops_the_letter_readers_before_it_disposes_the_pool(
    settings: Settings, aiohttp_client: Client
) -> None:
    letter = settings.letter.model_copy(update={"reader_poll_interval": 0.05})
    polls: list[str] = []

    def clock() -> datetime:
        # A reader asks the time each time it looks for a letter to claim.
        task = asyncio.current_task()
        if task is not None and task.get_name().startswith(READER_TASK):
            polls.append(task.get_name())
        return datetime.now(UTC)

    gateway = bootstrap.build(settings.model_copy(update={"letter": letter}), clock=clock)
    assert gateway.ocr is not None  # the letter desk is on: its readers start with the app
    client = await aiohttp_client(bootstrap.build_app(gateway))
    assert (await client.get("/healthz")).status == 200
    # The readers run: every one of them has looked for letters, twice (every 0.05 s).
    await wait_until(
        lambda: all(polls.count(f"{READER_TASK}{i}") >= 2 for i in range(letter.ocr_workers)),
        "every reader polled",
    )
    await gateway.close()
    # Nothing runs after close(): no reader task is left to poll or to take a connection.
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith(READER_TASK)]
    pool = gateway.engine.sync_engine.pool  # the fresh one dispose() left behind
    assert pool.checkedin() == 0 and pool.checkedout() == 0, "a reader ran after close()"


async def test_every_answer_is_counted_by_surface_method_and_status(
    gw: bootstrap.Gateway, aiohttp_client: Client
) -> None:
    app = bootstrap.build_app(gw)

    async def broken(_request: web.Request) -> web.Response:
        raise RuntimeError("a bug")

    app.router.add_get("/api/v1/broken", broken)
    client = await aiohttp_client(app)
    assert (await client.post("/api/v1/complaints", json=COMPLAINT)).status == 202
    malformed = {"Content-Type": "application/json"}
    bad = await client.post("/api/v1/complaints", data=b"{not json", headers=malformed)
    assert bad.status == 400
    assert (await client.post("/", data={"csrf": "forged"})).status == 403
    assert (await client.get("/cek")).status == 200
    # Adding to a report, page and API: a surface of its own (wrong codes show there).
    assert (await client.get("/tambah")).status == 200
    wrong = {"body": "Makin parah", "followup_code": "AAAA-AAAA"}
    assert (await client.post("/api/v1/complaints/G69P5CAWW/followups", json=wrong)).status == 404
    assert (await client.get("/nowhere")).status == 404
    assert (await client.get("/api/v1/broken")).status == 500
    for made_up in ("PROPFIND", "PURGE"):  # WebDAV, caches: they must not grow the label set
        assert (await client.request(made_up, "/api/v1/complaints")).status == 405
    text = await (await client.get("/metrics")).text()
    for line in (
        'lapor_http_responses_total{method="POST",status="202",surface="api"} 1.0',
        'lapor_http_responses_total{method="POST",status="400",surface="api"} 1.0',
        'lapor_http_responses_total{method="POST",status="403",surface="form"} 1.0',
        'lapor_http_responses_total{method="GET",status="200",surface="form"} 1.0',
        'lapor_http_responses_total{method="GET",status="404",surface="other"} 1.0',
        'lapor_http_responses_total{method="GET",status="200",surface="followup"} 1.0',
        'lapor_http_responses_total{method="POST",status="404",surface="followup"} 1.0',
        'lapor_http_responses_total{method="GET",status="500",surface="api"} 1.0',
        'lapor_http_responses_total{method="other",status="405",surface="api"} 2.0',
        'lapor_http_request_duration_seconds_count{surface="api"} 5.0',
    ):
        assert line in text.splitlines(), line


async def test_a_request_cut_off_is_counted_apart_from_server_errors(
    gw: bootstrap.Gateway,
) -> None:
    middleware = count_responses(gw.metrics)

    async def cut_off(_request: web.Request) -> web.StreamResponse:
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await middleware(make_mocked_request("POST", "/api/v1/complaints"), cut_off)
    counted = gw.metrics.http_responses
    assert counted.labels("api", "POST", "499")._value.get() == 1
    assert counted.labels("api", "POST", "500")._value.get() == 0


# ---- a body aiohttp cannot decode: the client's fault, never an ERROR -----------------------

NOT_GZIP = {"Content-Encoding": "gzip"}  # over a body that is not gzip


def server_errors(records: list[Any]) -> list[str]:
    """What aiohttp logged at ERROR or above: what pages the operator on call."""
    return [
        f"{r.name}: {r.getMessage()}" for r in records
        if r.name.startswith("aiohttp") and r.levelno >= logging.ERROR
    ]


async def test_a_body_that_cannot_be_decoded_is_answered_without_an_error_in_the_log(
    gw: bootstrap.Gateway, aiohttp_client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    # Answered 400 by the route, then aiohttp read the rest of the body after the answer, met
    # the decoding error again and logged "Unhandled exception" at ERROR, and closed the
    # connection the answer had said would stay open (the client's next request on it failed).
    caplog.set_level(logging.INFO, logger="aiohttp")
    client = await aiohttp_client(bootstrap.build_app(gw))
    json_type = {"Content-Type": "application/json"}
    form_type = {"Content-Type": "application/x-www-form-urlencoded"}
    cases = [
        ("/api/v1/complaints", json_type, b'{"body": "Jalan rusak"}', 400),
        ("/api/v1/complaints", {"Content-Type": "multipart/form-data; boundary=xx"}, b"--xx\r\n",
         400),
        ("/open311/v2/requests.json", form_type, b"description=Jalan+rusak", 400),
        ("/", form_type, b"csrf=x&isi=Jalan+rusak", 400),
        ("/tidak-ada", json_type, b"{}", 404),  # no route read it
    ]
    for path, headers, body, status in cases:
        caplog.clear()
        resp = await client.post(path, data=body, headers={**NOT_GZIP, **headers})
        await resp.read()
        assert resp.status == status, path
        # aiohttp's parser cannot read a next request after such a body: the answer says so.
        assert resp.headers.get("Connection") == "close", path
        assert not server_errors(caplog.records), (path, server_errors(caplog.records))
        # The same client's next request gets its answer (a new connection).
        assert (await client.get("/healthz")).status == 200, path


async def test_a_body_found_undecodable_only_after_the_answer_is_logged_at_info(
    gw: bootstrap.Gateway, aiohttp_client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    # The route answered before the body came (here: no such route); aiohttp reads the rest
    # after the answer, and that read is where the body turns out not to decode.
    caplog.set_level(logging.INFO, logger="aiohttp")
    client = await aiohttp_client(bootstrap.build_app(gw))
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    try:
        writer.write(
            b"POST /tidak-ada HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            b"Content-Encoding: gzip\r\nContent-Length: 64\r\n\r\n"
        )
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 404 ")
        writer.write(b"not gzip " * 7 + b"!")
        await writer.drain()
        await asyncio.wait_for(reader.read(), 10)  # the server closes the connection
    finally:
        writer.close()
    await wait_until(
        lambda: any("cannot be read" in r.getMessage() for r in caplog.records),
        "the unreadable body logged",
    )
    assert not server_errors(caplog.records), server_errors(caplog.records)
    [logged] = [r for r in caplog.records if "cannot be read" in r.getMessage()]
    assert logged.name == "aiohttp.server" and logged.levelno == logging.INFO
    assert "content-encoding" in logged.getMessage() and logged.exc_info is None


async def test_real_errors_of_the_server_are_still_logged_at_error(
    aiohttp_client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    # Neither the middleware nor the server's logger hides a route's own failure: a bug, or a
    # route that lets the decoding error escape (answered 500 by aiohttp: not the client's 400).
    caplog.set_level(logging.INFO, logger="aiohttp")
    app = http.application()
    app.middlewares.append(http.unreadable_body)

    async def bug(_request: web.Request) -> web.Response:
        raise RuntimeError("a bug")

    async def careless(request: web.Request) -> web.Response:
        await request.read()  # RequestPayloadError, not caught
        return web.Response(text="never")

    app.router.add_get("/bug", bug)
    app.router.add_post("/careless", careless)
    client = await aiohttp_client(app)
    assert (await client.get("/bug")).status == 500
    assert any("Error handling request" in e for e in server_errors(caplog.records))
    caplog.clear()
    resp = await client.post("/careless", data=b"{}", headers=NOT_GZIP)
    assert resp.status == 500 and resp.headers.get("Connection") == "close"
    [error] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert error.exc_info and isinstance(error.exc_info[1], web.RequestPayloadError)
