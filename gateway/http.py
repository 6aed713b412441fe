"""The HTTP application every channel's routes join: health, readiness, metrics, files.

- ``/healthz``: the process is alive (no dependency is checked).
- ``/readyz``: each dependency named with its state. 503 when the database cannot answer, the
  oldest unpublished event is older than ``outbox.ready_max_lag``, or most of the newest
  stored events do not open with this process's data key. A broker outage is reported
  but does not by itself take the replica out of the load balancer: intake still commits to the
  outbox, which is what the outbox is for. When the outage lasts, the lag check fails.
- ``/metrics``: Prometheus text format; outbox depth and age are read from the database. With
  ``http.metrics_token`` set, only for ``Authorization: Bearer <token>`` (401 otherwise).
- ``/files/{sha256}``: stored files for the routing core, behind a bearer token.
- ``/favicon.ico``: the small icon every browser asks for on every page (a red square with a
  white "!"), cached for a week, so that no page costs a citizen's phone a 404 round trip and
  the 404 counts stay what clients really got wrong.

Who may fetch a file: only a client presenting ``Authorization: Bearer <storage.fetch_token>``
(the routing core, which reads ``attachments[].href`` from the events). Without the token, with a
wrong one, or when no token is configured, the answer is 404, the same as for an unknown hash,
so the route neither serves nor confirms a citizen's file to anyone else. Photos (JPEG, PNG) and
PDFs are served without their metadata (EXIF, XMP, IPTC, GPS, comments, the PDF's information
dictionary: see :mod:`gateway.media`); the stored file keeps them as evidence. A file is streamed
(:func:`send_stored`): read, decrypted and cleaned a chunk at a time in a thread of
:data:`FILE_THREADS`, never whole in memory. Answers are ``Cache-Control: no-store``: personal
data must not stay in a shared cache.

Every answer of the application, whatever route or error made it (aiohttp's own 404 and 500
too, and streamed files; on a server built with :class:`Runner`, as the gateway's is, also the
400 aiohttp's HTTP parser answers before any route is found: :func:`harden_parser_errors`),
gets the browser-hardening headers of :data:`SECURITY_HEADERS` unless its route set its own
(the staff pages set stricter ones): no MIME sniffing, no referrer (a tracking ID in
``/cek?id=`` never leaves in a Referer), no framing (``X-Frame-Options`` and the policy's
``frame-ancestors``: the citizen form cannot be clickjacked), and a Content-Security-Policy:
for HTML :data:`HTML_POLICY` (the pages' own inline style, images and forms of this site, no
script at all), for anything else :data:`OTHER_POLICY` (nothing). An HTML page is also
``Cache-Control: no-store`` unless its route said otherwise: what a citizen typed or looked up
stays out of shared caches and the back-button cache of a shared computer.

What aiohttp's HTTP parser refuses (a bad request line, a header with a control character, a
chunk size that is not hex, headers over the size limit, bytes that are not HTTP at all) is
answered 400 by aiohttp before any route or middleware runs. On a server built with
:class:`Runner` that answer is counted in ``lapor_http_responses_total`` with surface and method
"other" (neither was read), and logged as one INFO line naming the peer and the parser's
reason, without a traceback (:class:`ServerLog`): aiohttp logs it at ERROR, and the operator on
call, whom ERROR lines page, must not be paged by random bytes from the internet. An exception in
a handler, logged by aiohttp in the same words, stays an ERROR with its traceback.

A request body that cannot be decoded (``Content-Encoding: gzip`` over bytes that are not gzip)
is the client's fault, answered 400 by the route that read it: :func:`unreadable_body` then
closes the connection after the answer (aiohttp's parser cannot go on after such a body, so the
answer says ``Connection: close``) and marks the body ended, so that aiohttp does not read it
again once the answer is sent (its "lingering close", which re-raised the decoding error and
logged it as "Unhandled exception" at ERROR). When the bad bytes come only after the answer (a
route that answered without reading, a slow upload), that read still fails: the server's
logger (:func:`application`, :class:`ServerLog`) logs exactly that failure, a
``RequestPayloadError`` found by the lingering read, at INFO; everything else aiohttp logs keeps
its level.

Request headers are text decoded by aiohttp with ``surrogateescape``: bytes that are not UTF-8
become lone surrogates that cannot be encoded again. :func:`header_text` gives such a header
with them replaced, so that no value a client chose can turn into an HTTP 500 further on.
"""

from __future__ import annotations

import asyncio
import contextvars
import hmac
import logging
import struct
import time
import zlib
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, BinaryIO, Literal

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.http_parser import RawRequestMessage
from aiohttp.streams import StreamReader
from aiohttp.typedefs import Middleware
from aiohttp.web_protocol import ERROR as PARSER_ERROR
from aiohttp.web_protocol import RequestHandler
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from gateway import media, sealing
from gateway.crypto import Keys
from gateway.domain import Channel
from gateway.filestore import CorruptFile, FileStore
from gateway.intake import Clock
from gateway.logs import mask_text
from gateway.metrics import Metrics
from gateway.outbox import OutboxRelay, outbox_status
from gateway.settings import Settings
from gateway.streaming import END, run_in_thread

log = logging.getLogger(__name__)

CHECK_TIMEOUT = 2.0


@dataclass(frozen=True, slots=True)
class HealthDeps:
    """What the health and metrics routes look at."""

    settings: Settings
    engine: Any  # AsyncEngine
    metrics: Metrics
    files: FileStore
    relay: OutboxRelay | None
    clock: Clock
    keys: Keys
    # Set when the process begins to stop: /readyz answers 503 at once, so a load balancer
    # sends nothing more while the HTTP server finishes what it has.
    stopping: asyncio.Event | None = None


DEPS = web.AppKey("health_deps", HealthDeps)
# What a channel reads from the database for /metrics at each scrape (its backlog gauges).
ScrapeHook = Callable[[], Awaitable[None]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SCRAPE_HOOKS = web.AppKey("scrape_hooks", list[ScrapeHook])
# Threads that read, decrypt and clean files for /files/: their own, so that slow downloads wait
# for one another and never for the threads the intake writes files with.
FILE_THREADS = web.AppKey("file_threads", ThreadPoolExecutor)
FILE_THREAD_COUNT = 4
# Seconds one chunk of a download may wait for the client to take it.
WRITE_TIMEOUT = 60.0


# Headers every answer gets unless its route set its own (see the module's docstring).
HTML_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
OTHER_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"
SECURITY_HEADERS: Mapping[str, str] = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


# Which part of the gateway a path belongs to, for the HTTP metrics (first match wins). Adding
# to a report is a surface of its own, page and API alike: a rise of its 404s and 422s is
# someone trying follow-up codes.
_SURFACES = (
    ("/api/", "api"),
    ("/open311/", "open311"),
    ("/sms/", "sms"),
    ("/staff/", "staff"),
    ("/files/", "ops"),
    ("/healthz", "ops"),
    ("/readyz", "ops"),
    ("/metrics", "ops"),
    ("/favicon.ico", "ops"),
    ("/cek", "form"),
)


# Pages by their exact path (a scanner's /tambah.php is "other").
_PAGES = {"/": "form", "/tanda-terima": "form", "/tambah": "followup"}


# Methods counted by name; any other the HTTP parser lets through (WebDAV, PURGE...) is "other",
# so that no client can grow the metric's label set.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def surface(path: str) -> str:
    """The surface of ``path``: form, followup, api, open311, sms, staff, ops or other."""
    if path in _PAGES:
        return _PAGES[path]
    if path.startswith("/api/") and path.endswith("/followups"):
        return "followup"
    return next((name for prefix, name in _SURFACES if path.startswith(prefix)), "other")


def count_responses(metrics: Metrics) -> Middleware:
    """A middleware counting every answer by surface, method and status, with its duration."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        where = surface(request.path)
        status = 500  # what aiohttp answers for an exception that is not an HTTP answer
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        except asyncio.CancelledError:
            status = 499  # the client went away, or the server is stopping: not a server error
            raise
        finally:
            method = request.method if request.method in _METHODS else "other"
            metrics.http_responses.labels(where, method, str(status)).inc()
            metrics.http_seconds.labels(where).observe(time.perf_counter() - started)

    return middleware


@web.middleware
async def unreadable_body(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A body aiohttp could not decode: the answer closes the connection and the body counts as
    read (see the module's docstring), whatever route answered and however."""
    answer: web.StreamResponse | None = None
    try:
        answer = await handler(request)
        return answer
    except web.HTTPException as exc:
        answer = exc
        raise
    finally:
        if isinstance(request.content.exception(), web.RequestPayloadError):
            if answer is not None:
                answer.force_close()  # aiohttp's parser cannot read a next request after it
            request.content.feed_eof()  # nothing left for aiohttp to read after the answer


# True in the task answering a request aiohttp's HTTP parser refused (:func:`harden_parser_errors`
# sets it as the request is made; the task answering it runs in a copy of that context).
_REFUSED: contextvars.ContextVar[bool] = contextvars.ContextVar("parser_refused", default=False)
# The most of a parser's reason a log line quotes (aiohttp quotes up to a line of what was sent).
REASON_LIMIT = 300


class ServerLog(logging.LoggerAdapter[logging.Logger]):
    """aiohttp's server logger (``aiohttp.server``) as the gateway's HTTP server uses it:

    - what its HTTP parser refused (a bad request line, a header with a control character, a
      chunk size that is not hex, headers over the size limit; answered 400 before any route),
      which aiohttp logs as "Error handling request" with a traceback, at ERROR (DEBUG for bytes
      that are not HTTP at all), is one INFO line naming the peer and the parser's reason: the
      client's fault, and random bytes from the internet must not page anyone. Only on a server
      built with :class:`Runner`, which marks those requests; an exception in a handler, logged
      with the same words, stays an ERROR with its traceback;
    - a body that cannot be decoded, found by aiohttp's read after the answer, is logged at INFO,
      not as an "Unhandled exception" at ERROR (the client's bad request, already answered or
      cut off).

    Anything else keeps its level."""

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if msg == "Error handling request from %s" and _REFUSED.get():
            exc = kwargs.get("exc_info")
            reason = getattr(exc, "message", None) or str(exc)
            # Masked before it is cut, so that no cut leaves part of a number in the clear.
            reason = mask_text(" ".join(str(reason).split()))[:REASON_LIMIT]
            peer = args[0] if args else None
            name = type(exc).__name__ if isinstance(exc, BaseException) else "refused"
            self.logger.info(
                "request refused by the HTTP parser from %s: %s: %s", peer, name, reason
            )
            return
        super().log(level, msg, *args, **kwargs)

    def exception(self, msg: object, *args: object, exc_info: Any = True, **kwargs: Any) -> None:
        # Only what the read after the answer raises (aiohttp's web_protocol, "Unhandled
        # exception"): a route that let the same error escape answered 500, a real error
        # logged as such ("Error handling request").
        if msg == "Unhandled exception" and isinstance(exc_info, web.RequestPayloadError):
            self.logger.info(
                "request body that cannot be read, connection closed: %s",
                " ".join(str(exc_info).split()),
            )
            return
        super().exception(msg, *args, exc_info=exc_info, **kwargs)


SERVER_LOG = ServerLog(logging.getLogger("aiohttp.server"))


def application(**kwargs: Any) -> web.Application:
    """A ``web.Application`` (``kwargs`` as aiohttp takes them) whose server logs with
    :data:`SERVER_LOG`."""
    return web.Application(handler_args={"logger": SERVER_LOG}, **kwargs)


async def security_headers(_request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: the hardening headers of every answer, just before they are
    sent (so also on streamed answers and aiohttp's own error pages); a route's own win."""
    harden(response)


def harden(response: web.StreamResponse) -> None:
    """Give ``response`` the hardening headers it does not set itself."""
    headers = response.headers
    for name, value in SECURITY_HEADERS.items():
        headers.setdefault(name, value)
    html = response.content_type == "text/html"
    headers.setdefault("Content-Security-Policy", HTML_POLICY if html else OTHER_POLICY)
    if html:
        headers.setdefault("Cache-Control", "no-store")


class _Refused(web.BaseRequest):
    """The request aiohttp makes up for what its HTTP parser refused (a ``Content-Length`` that
    is no number, a chunk size that is not hex...), answered by aiohttp's own 400 before any
    route, middleware or ``on_response_prepare`` of the application runs. aiohttp calls this
    hook of the request just before the answer's headers are sent: it hardens that answer too
    (aiohttp offers no public hook there: aio-libs/aiohttp#6463), and counts it in
    ``lapor_http_responses_total`` with surface and method "other" (neither was read)."""

    ATTRS = web.BaseRequest.ATTRS | frozenset(["_metrics"])
    _metrics: Metrics | None = None

    async def _prepare_hook(self, response: web.StreamResponse) -> None:
        harden(response)
        if self._metrics is not None:
            self._metrics.http_responses.labels("other", "other", str(response.status)).inc()


def harden_parser_errors(server: web.Server, metrics: Metrics | None = None) -> None:
    """Make the answers aiohttp gives to what its HTTP parser refuses carry the hardening
    headers, count them in ``metrics`` and log them as :class:`ServerLog` says (one INFO line),
    by the request factory of ``server`` (before it serves any connection)."""
    make = server.request_factory

    def request_factory(
        message: RawRequestMessage,
        payload: StreamReader,
        protocol: RequestHandler,
        writer: AbstractStreamWriter,
        task: asyncio.Task[None],
    ) -> web.BaseRequest:
        refused = message is PARSER_ERROR
        # Read by ServerLog in the task aiohttp starts next to answer this request.
        _REFUSED.set(refused)
        if refused:
            loop = asyncio.get_running_loop()
            request = _Refused(message, payload, protocol, writer, task, loop)
            request._metrics = metrics
            return request
        return make(message, payload, protocol, writer, task)

    server.request_factory = request_factory


class Runner(web.AppRunner):
    """aiohttp's ``AppRunner`` whose server hardens, counts (in the metrics of the application's
    :data:`DEPS`, when it has them) and logs at INFO also the answers of its HTTP parser
    (:func:`harden_parser_errors`): the gateway's server is built with it."""

    async def setup(self) -> None:
        await super().setup()
        assert self.server is not None
        deps = self.app.get(DEPS)
        harden_parser_errors(self.server, deps.metrics if deps is not None else None)


def header_text(request: web.Request, name: str, default: str = "") -> str:
    """The request header ``name`` as text that can be stored and encoded again: bytes that
    were not UTF-8 are replaced by U+FFFD."""
    value = request.headers.get(name, default)
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def answer_language(request: web.Request) -> Literal["id", "en"]:
    """The language of an answer to a client of the API or Open311, by its ``Accept-Language``
    (RFC 9110 section 12.5.4): English when it weighs English above Indonesian (``fr,
    en;q=0.9`` too: a client that reads no Indonesian), Indonesian otherwise, also when the
    header is absent, says ``*`` or cannot be read. A weight of 0 refuses the language."""
    best: tuple[float, Literal["id", "en"]] = (0.0, "id")
    for item in header_text(request, "Accept-Language").split(","):
        tag, *params = (p.strip() for p in item.split(";"))
        primary = tag.lower().split("-")[0]
        if primary not in ("id", "en"):
            continue
        weight = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0  # unreadable: not taken
        if not 0.0 < weight <= 1.0:
            continue
        if weight > best[0]:
            best = (weight, "en" if primary == "en" else "id")
    return best[1]


def is_utf8_text(*texts: str) -> bool:
    """True when every one of ``texts`` can be encoded as UTF-8: a body decoded in a charset
    its client named can hold lone surrogates (Python's UTF-7 decodes "+2AA-" to U+D800), which
    no page, hash, database nor event can take."""
    try:
        for text in texts:
            text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def add_core_routes(app: web.Application, deps: HealthDeps) -> None:
    """Mount /healthz, /readyz, /metrics and /files on ``app``; count its answers; give every
    answer the :data:`SECURITY_HEADERS`."""
    app[DEPS] = deps
    app[SCRAPE_HOOKS] = []
    app.middlewares.append(unreadable_body)
    app.middlewares.append(count_responses(deps.metrics))
    app.on_response_prepare.append(security_headers)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/files/{sha256}", files)
    app.router.add_get("/favicon.ico", favicon)
    # Its threads start with the first download; they end with the application.
    app[FILE_THREADS] = ThreadPoolExecutor(FILE_THREAD_COUNT, thread_name_prefix="lapor-files")
    app.on_cleanup.append(_stop_file_threads)


async def _stop_file_threads(app: web.Application) -> None:
    await asyncio.to_thread(app[FILE_THREADS].shutdown, wait=True, cancel_futures=True)


def _icon_png(size: int = 16) -> bytes:
    """A ``size``-pixel PNG: LAPOR!'s red with a white exclamation mark."""
    red, white = b"\xc8\x10\x2e", b"\xff\xff\xff"
    mid = size // 2
    rows = []
    for y in range(size):
        bar = 3 <= y <= size - 7 or size - 5 <= y <= size - 4
        rows.append(
            b"\x00" + b"".join(white if bar and mid - 1 <= x <= mid else red for x in range(size))
        )

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"".join(rows), 9))
        + chunk(b"IEND", b"")
    )


FAVICON = _icon_png()


async def favicon(_request: web.Request) -> web.Response:
    """The site's icon (see the module's docstring)."""
    return web.Response(
        body=FAVICON,
        content_type="image/png",
        headers={"Cache-Control": "public, max-age=604800"},
    )


async def healthz(_request: web.Request) -> web.Response:
    """Alive."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Each dependency by name; 503 when this replica should not take traffic."""
    deps = request.app[DEPS]
    if deps.stopping is not None and deps.stopping.is_set():
        return web.json_response({"status": "stopping", "checks": {}}, status=503)
    checks: dict[str, dict[str, Any]] = {}
    ready = True
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            async with deps.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        checks["database"] = {"ok": True}
    except Exception as exc:
        ready = False
        checks["database"] = {"ok": False, "error": type(exc).__name__}
    if deps.relay is None:
        checks["broker"] = {"ok": True, "relay": "disabled in this process"}
    else:
        checks["broker"] = {"ok": deps.relay.connected}
        if deps.relay.last_error:
            checks["broker"]["error"] = deps.relay.last_error[:200]
    if checks["database"]["ok"]:
        try:
            async with asyncio.timeout(CHECK_TIMEOUT):
                status = await outbox_status(deps.engine)
            lag = status.lag_seconds(deps.clock())
            # Reported, not a reason to take this replica out: the lag is the shared outbox's
            # (every replica reads the same), and intake goes on while the broker is away. A
            # load balancer dropping every replica would turn a broker outage into a citizens'
            # one (LaporOutboxLagging alerts on it instead).
            lag_ok = lag <= deps.settings.outbox.ready_max_lag
            checks["outbox"] = {
                "ok": lag_ok,
                "pending": status.pending,
                "lag_seconds": round(lag, 3),
                "max_lag_seconds": deps.settings.outbox.ready_max_lag,
            }
            if status.unopenable:  # reported, not counted in the lag (see outbox_status)
                checks["outbox"]["unopenable"] = status.unopenable
        except Exception as exc:
            ready = False
            checks["outbox"] = {"ok": False, "error": type(exc).__name__}
    else:
        checks["outbox"] = {"ok": False, "error": "database unavailable"}
    if checks["database"]["ok"]:
        try:
            async with asyncio.timeout(CHECK_TIMEOUT):
                opens = await sealing.newest_opens(deps.engine, deps.keys)
            checks["keys"] = {"ok": opens}
            if not opens:
                ready = False
                checks["keys"]["error"] = (
                    "most of the newest stored events do not open with this process's data key "
                    "(LAPOR_SECURITY__DATA_KEY differs from the one that sealed them)"
                )
        except Exception as exc:
            ready = False
            checks["keys"] = {"ok": False, "error": type(exc).__name__}
    body = {"status": "ready" if ready else "not ready", "checks": checks}
    return web.json_response(body, status=200 if ready else 503)


def _bearer_ok(request: web.Request, token: str) -> bool:
    """True when the request carries ``Authorization: Bearer <token>`` (compared in constant
    time, as bytes: a header that is not UTF-8 is a wrong token, not an error)."""
    given = request.headers.get("Authorization", "").encode("utf-8", "surrogateescape")
    return hmac.compare_digest(given, f"Bearer {token}".encode())


async def metrics(request: web.Request) -> web.Response:
    """Prometheus exposition, with outbox depth and age (and the channels' backlogs, by their
    :data:`SCRAPE_HOOKS`) read fresh from the database; behind ``http.metrics_token`` when one
    is set (401 without it, before the database is read)."""
    deps = request.app[DEPS]
    token = deps.settings.http.metrics_token
    if token is not None and not _bearer_ok(request, token.get_secret_value()):
        raise web.HTTPUnauthorized(headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            status = await outbox_status(deps.engine)
        now = deps.clock()
        for channel in Channel:
            count, oldest = status.by_channel.get(channel.value, (0, None))
            deps.metrics.outbox_depth.labels(channel.value).set(count)
            age = 0.0 if oldest is None else max(0.0, (now - oldest).total_seconds())
            deps.metrics.outbox_oldest_age.labels(channel.value).set(age)
    except Exception as exc:
        deps.metrics.relay_errors.labels("metrics-database").inc()
        log.warning("metrics: outbox status unavailable: %s", type(exc).__name__)
    for hook in request.app[SCRAPE_HOOKS]:
        try:
            async with asyncio.timeout(CHECK_TIMEOUT):
                await hook()
        except Exception as exc:  # the gauges keep their last values
            deps.metrics.relay_errors.labels("metrics-database").inc()
            log.warning("metrics: a channel's backlog unavailable: %s", type(exc).__name__)
    payload = generate_latest(deps.metrics.registry)
    resp = web.Response(body=payload)
    resp.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return resp


async def files(request: web.Request) -> web.StreamResponse:
    """A stored file, for a client presenting the fetch token; photos and PDFs without metadata,
    streamed: the file is read, decrypted and cleaned a chunk at a time, never whole."""
    deps = request.app[DEPS]
    token = deps.settings.storage.fetch_token
    if token is None or not _bearer_ok(request, token.get_secret_value()):
        raise web.HTTPNotFound()
    headers = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
    return await send_stored(request, deps.files, request.match_info["sha256"], headers)


async def send_stored(
    request: web.Request,
    files: FileStore,
    sha256: str,
    headers: dict[str, str],
    *,
    strip: bool = True,
) -> web.StreamResponse:
    """Stream the stored file ``sha256``: read, decrypted and (``strip``: photos and PDFs
    without metadata, :func:`gateway.media.cleaned`) a chunk at a time in a thread of the
    application's own, never whole. 404 when there is no such file, 500 when it is damaged, 422
    when its metadata could not be removed."""

    def produce(first: Callable[[Any], None], out: BinaryIO) -> None:
        with files.opened(sha256) as fh, media.cleaned(fh, strip=strip) as what:
            first(what)
            what.write(out)

    pipe, done = run_in_thread(request.app[FILE_THREADS], produce)
    try:
        first = await pipe.get()
        if isinstance(first, media.Unclean):
            # Never serve a file whose metadata could not be found and removed.
            log.warning("files: not served, cannot strip metadata: %s", first)
            raise web.HTTPUnprocessableEntity(
                text="stored file is not a well-formed image or PDF; not served", headers=headers
            )
        if isinstance(first, (ValueError, FileNotFoundError, IsADirectoryError)):
            raise web.HTTPNotFound()  # ValueError: not a SHA-256
        if isinstance(first, CorruptFile):
            log.error("files: not served: %s", first)
            raise web.HTTPInternalServerError(text="stored file is damaged; not served")
        if isinstance(first, BaseException):
            raise first
        what: media.Cleaned = first
        response = web.StreamResponse(headers={"Content-Type": what.media_type, **headers})
        if what.size is not None:
            response.content_length = what.size
        await response.prepare(request)
        if request.method == "HEAD":  # the headers only: what GET would send
            return response
        try:
            while (item := await pipe.get()) is not END:
                if isinstance(item, BaseException):
                    # The status is sent already: the connection is cut, the client sees the
                    # answer end early (short of Content-Length, or with no last chunk).
                    log.error("files: cut off while serving: %s", item)
                    raise FileCutOff(str(item)) from item
                # A client that stops reading without closing must not hold one of the few
                # file threads for ever.
                async with asyncio.timeout(WRITE_TIMEOUT):
                    await response.write(item)
            await response.write_eof()
        except (ConnectionError, TimeoutError) as exc:
            # The client went away or stopped reading: nothing more can be said to it, and the
            # status it was sent stands (not an error of the page that streamed the file).
            log.info("files: download ended by the client: %s", type(exc).__name__)
            if request.transport is not None:
                request.transport.close()
        return response
    finally:
        pipe.abandon()
        await asyncio.shield(done)


class FileCutOff(Exception):
    """A stored file turned out broken while it was being served (only a PDF can)."""
