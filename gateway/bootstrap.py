"""The composition root: the one place that builds engines, clients and servers from settings.

Nothing in the gateway connects at import time. :func:`build` creates the parts (lazily
connecting engine, file store, metrics, intake service, relay, parsers) and
:func:`build_app` assembles the aiohttp application with every channel's routes.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta

from aiohttp import web
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from channels import sms as sms_channel
from channels import web as web_channel
from channels.letter import desk as letter_channel
from channels.letter.ocr import OcrPool
from gateway import filegc, periodic, sms_store
from gateway.crypto import Keys, fingerprint, load_keys
from gateway.filestore import FileStore
from gateway.http import HealthDeps, Runner, add_core_routes
from gateway.http import application as http_app
from gateway.intake import Clock, IntakeService, ParserRegistry, utcnow
from gateway.metrics import Metrics
from gateway.outbox import OutboxRelay, prune_every
from gateway.ratelimit import Limit, RateLimiter
from gateway.settings import Settings
from gateway.sms_store import SqlFragmentBuffer, SqlReplyOutbox
from gateway.status_feed import StatusConsumer
from gateway.storage import migrate
from gateway.storage.database import create_engine

log = logging.getLogger(__name__)


@dataclass
class Gateway:
    """Every long-lived part of one gateway process."""

    settings: Settings
    engine: AsyncEngine
    files: FileStore
    metrics: Metrics
    intake: IntakeService
    parsers: ParserRegistry
    relay: OutboxRelay | None
    clock: Clock
    keys: Keys  # lookup-hash and data keys, loaded once (the SQLite default reads them from files)
    # The SMS channel's service, reply outbox and reply sender (migration 0004's tables).
    sms: sms_channel.SmsRuntime | None = None
    # The letter channel's OCR worker processes (they start with the first page read).
    ocr: OcrPool | None = None
    letter_metrics: letter_channel.LetterMetrics | None = None
    # The routing core's status changes, consumed by every replica (status_feed.enabled).
    status_feed: StatusConsumer | None = None
    # What each application of build_app runs with the engine besides its requests (the rate
    # limiter's writes after an answer, the letter readers): settled before the pool closes.
    background: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    # Set by serve when it begins to stop (SIGTERM): /readyz then answers 503 "stopping".
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

    async def close(self) -> None:
        """Settle the applications' background work and the group commits (intake, SMS replies),
        close the SMS sender's HTTP session, stop the OCR workers, release the database pool.

        The pool is disposed last. ``engine.dispose()`` closes only the connections checked in:
        one that background work holds at that moment goes back to the discarded pool when the
        work ends, and one it takes afterwards lands in the engine's fresh pool, which nobody
        disposes. Either stays open until the garbage collector finds it (asyncpg's "unclosed
        connection" warning, in whatever runs then). So this does not rely on the caller having
        cleaned up the application first (``serve`` does; ``aiohttp_client`` does it after).
        """
        for settle in self.background:
            await settle()
        await self.intake.idle()
        if self.sms is not None and self.sms.outbox is not None:
            await self.sms.outbox.idle()
        if self.sms is not None and self.sms.sender is not None:
            await self.sms.sender.close()  # its run() does too; a test that stops early does not
        if self.ocr is not None:
            await self.ocr.close()
        await self.engine.dispose()


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop]:
    """What makes the event loop ``http.event_loop`` names: uvloop's, or Python's own (also
    when uvloop is not installed, as on Windows, with a warning)."""
    if name == "uvloop":
        try:
            import uvloop
        except ImportError:
            log.warning("http.event_loop = uvloop, but uvloop is not installed: using asyncio's")
        else:
            return uvloop.new_event_loop
    return asyncio.new_event_loop


def build(settings: Settings, clock: Clock = utcnow) -> Gateway:
    """Build the parts; nothing connects until first use."""
    engine = create_engine(settings.database)
    keys = load_keys(settings)
    files = FileStore(settings.storage.file_store, keys)
    metrics = Metrics()
    metrics.data_key.labels(fingerprint(keys.data_key)).set(1)
    relay = (
        OutboxRelay(engine, settings.broker, settings.outbox, metrics, keys, clock=clock)
        if settings.outbox.enabled
        else None
    )
    intake = IntakeService(
        engine,
        files,
        metrics,
        keys,
        settings.storage.inline_body_limit,
        clock=clock,
        on_commit=relay.wake if relay else None,
        dedup=settings.dedup,
        handoff=relay if settings.outbox.handoff else None,
    )
    parsers = ParserRegistry(
        (
            *web_channel.PARSERS,
            *sms_channel.parsers(sms_settings(settings)),
            *letter_channel.PARSERS,
        )
    )
    sms_config = sms_settings(settings)
    sms = sms_channel.build(
        intake,
        sms_config,
        SqlReplyOutbox(
            engine, keys, sms_config.flood_max_replies, sms_config.flood_window, clock=clock
        ),
        SqlFragmentBuffer(engine, keys, clock=clock),
        metrics.registry,
        clock,
    )
    letter = settings.letter
    ocr = OcrPool(letter.ocr_workers, letter.ocr_language) if letter.enabled else None
    letter_metrics = letter_channel.LetterMetrics(metrics.registry) if letter.enabled else None
    # A status change is told by SMS to whoever got the complaint's receipt by SMS, when the
    # channel has a durable outbox and a sender.
    sender = sms.sender if sms.outbox is not None else None
    push = sms_store.StatusPush(sms_config.short_code) if sender is not None else None
    status_feed = (
        StatusConsumer(
            engine,
            settings.broker,
            settings.status_feed,
            metrics,
            clock,
            notify=push,
            notified=sender.wake if sender is not None else None,
        )
        if settings.status_feed.enabled
        else None
    )
    return Gateway(
        settings, engine, files, metrics, intake, parsers, relay, clock, keys, sms, ocr,
        letter_metrics=letter_metrics, status_feed=status_feed,
    )


def build_app(gateway: Gateway) -> web.Application:
    """The HTTP application: core routes and every channel's routes."""
    app = http_app(client_max_size=gateway.settings.http.client_max_size)
    add_core_routes(
        app,
        HealthDeps(
            settings=gateway.settings,
            engine=gateway.engine,
            metrics=gateway.metrics,
            files=gateway.files,
            relay=gateway.relay,
            clock=gateway.clock,
            keys=gateway.keys,
            stopping=gateway.stopping,
        ),
    )
    # One rate limiter for the web channel and the staff logins, its rows kept for the longest
    # of their windows.
    keep = web_channel.rate_limit_keep(gateway.settings.web)
    if gateway.ocr is not None:  # the staff pages: their logins count in it too
        keep = max(keep, gateway.settings.letter.login_address_window)
    limiter = web_channel.setup(
        app,
        gateway.intake,
        gateway.files,
        gateway.engine,
        gateway.settings.web,
        gateway.keys,  # the per-identity rate limit hashes with the identity key
        gateway.clock,
        RateLimiter(gateway.engine, keep, gateway.clock),
        gateway.settings.sms.short_code,
    )
    gateway.background.append(limiter.idle)  # a prune runs after the answer it follows
    sms_channel.setup(app, gateway.intake, sms_settings(gateway.settings), gateway.sms)
    if gateway.ocr is not None:  # the staff pages; the letter reader runs with the app
        sms = gateway.sms
        letter = gateway.settings.letter
        trusted = tuple(gateway.settings.web.trusted_proxies)

        def client(request: web.Request) -> str:  # as the web form's rate limit finds it
            return web_channel.request_client(request, trusted)

        reader = letter_channel.setup(
            app,
            gateway.intake,
            gateway.files,
            gateway.engine,
            gateway.keys,
            gateway.settings.letter,
            gateway.ocr,
            gateway.settings.sms.short_code,
            gateway.clock,
            letter_channel.sms_ack(  # receipts also by SMS when a bridge can send
                sms.outbox if sms else None,
                sms_settings(gateway.settings),
                sms.sender.wake if sms and sms.sender else None,
            ),
            gateway.letter_metrics,
            letter_channel.AddressThrottle(
                limiter,
                Limit(letter.login_address_failures, letter.login_address_window),
                client,
                Limit(letter.login_address_forms, letter.login_address_window),
            ),
        )
        gateway.background.append(reader.stop)  # before the OCR workers and the pool close
    return app


def sms_settings(settings: Settings) -> sms_channel.SmsSettings:
    """The SMS channel's settings from the ``[sms]`` section (route and replay share them)."""
    section = settings.sms

    def secret(value: SecretStr | None) -> str | None:
        return value.get_secret_value() if value else None

    return sms_channel.SmsSettings(
        kannel_token=secret(section.kannel_token),
        short_code=section.short_code,
        regions=section.regions or sms_channel.SmsSettings().regions,
        default_region=section.default_region,
        reply_mode=section.reply_mode,
        callback_url=section.callback_url,
        kannel_sendsms_url=section.kannel_sendsms_url,
        kannel_sendsms_username=section.kannel_sendsms_username,
        kannel_sendsms_password=secret(section.kannel_sendsms_password),
        kannel_dlr_mask=section.kannel_dlr_mask,
        jasmin_token=secret(section.jasmin_token),
        jasmin_send_url=section.jasmin_send_url,
        jasmin_username=section.jasmin_username,
        jasmin_password=secret(section.jasmin_password),
        jasmin_coding0=section.jasmin_coding0,
        modem_secret=secret(section.modem_secret),
        gammu_token=secret(section.gammu_token),
        android_send_url=section.android_send_url,
        android_username=section.android_username,
        modem_password=secret(section.modem_password),
        flood_max_replies=section.flood_max_replies,
        flood_window=section.flood_window,
        fragment_timeout=section.fragment_timeout,
        sender_batch_size=section.sender_batch_size,
        sender_poll_interval=section.sender_poll_interval,
        sender_claim_timeout=section.sender_claim_timeout,
        sender_max_attempts=section.sender_max_attempts,
        sender_give_up_after=section.sender_give_up_after,
        sender_backoff_initial=section.sender_backoff_initial,
        sender_backoff_max=section.sender_backoff_max,
        send_timeout=section.send_timeout,
    )


class NotMigrated(RuntimeError):
    """The database is not at the newest migration."""


async def run_relay(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Run the outbox relay alone (``lapor-gateway relay``) until SIGINT/SIGTERM or ``stop``.

    For deployments that publish from their own process: the HTTP replicas set
    ``outbox.enabled = false`` and commit only; this process claims and publishes the rows
    (several may run: rows are claimed, not shared). It notices new rows at the next
    ``outbox.poll_interval``. ``/healthz``, ``/readyz`` and ``/metrics`` (publish latency,
    relay errors, outbox depth and age) are served on ``outbox.relay_port``.
    """
    gateway = build(settings)
    # Whatever outbox.enabled says (the replicas' setting): this process exists to publish.
    relay = gateway.relay or OutboxRelay(
        gateway.engine,
        settings.broker,
        settings.outbox,
        gateway.metrics,
        gateway.keys,
        clock=gateway.clock,
    )
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await check_migrated(gateway)
        app = http_app()
        add_core_routes(
            app,
            HealthDeps(
                settings=settings,
                engine=gateway.engine,
                metrics=gateway.metrics,
                files=gateway.files,
                relay=relay,
                clock=gateway.clock,
                keys=gateway.keys,
                stopping=stop,
            ),
        )
        runner = Runner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, settings.http.host, settings.outbox.relay_port)
        await site.start()
        log.info(
            "outbox relay running",
            extra={"host": settings.http.host, "port": settings.outbox.relay_port},
        )
        await relay.run(stop)
        await runner.cleanup()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await gateway.close()


async def check_migrated(gateway: Gateway) -> None:
    await check_engine_migrated(gateway.engine)


async def check_engine_migrated(engine: AsyncEngine) -> None:
    """Raise :class:`NotMigrated` unless the database is at the code's newest migration."""
    current, head = await migrate.current_revision(engine), migrate.head_revision()
    if current == head:
        return
    if current is None:
        raise NotMigrated("the database has no tables yet: run `lapor-gateway migrate`")
    if not migrate.known_revision(current):
        # Migrated by a newer release (a rollback of the code, not of the database):
        # `migrate` cannot help, it does not know that revision either.
        raise NotMigrated(str(migrate.UnknownRevision(current)))
    raise NotMigrated(
        f"database is at migration {current}, the code needs {head}: run `lapor-gateway migrate`"
    )


async def _prune_sms(gateway: Gateway, stop: asyncio.Event) -> None:
    sms = gateway.settings.sms
    replies, fragments = await sms_store.prune(
        gateway.engine, sms.keep_replies, sms.keep_fragments, gateway.clock(), stop=stop
    )
    log.info(
        "pruned %d SMS replies and %d joined fragments",
        replies,
        fragments,
        extra={"keep_replies": sms.keep_replies, "keep_fragments": sms.keep_fragments},
    )


def open_doors(settings: Settings) -> list[str]:
    """What anyone who reaches the server could do for want of a secret, when it listens
    beyond this machine: logged as warnings when ``serve`` starts."""
    try:
        local = ipaddress.ip_address(settings.http.host).is_loopback
    except ValueError:
        local = settings.http.host == "localhost"
    if local:
        return []
    doors = []
    if settings.sms.kannel_token is None:
        doors.append(
            "sms.kannel_token is not set (LAPOR_SMS__KANNEL_TOKEN): anyone who reaches"
            " /sms/kannel can file SMS complaints in any number's name"
        )
    if settings.http.metrics_token is None:
        doors.append(
            "http.metrics_token is not set (LAPOR_HTTP__METRICS_TOKEN): /metrics is open to"
            " anyone who reaches it (block it at the proxy)"
        )
    return doors


# Seconds `serve` waits at shutdown for HTTP requests still running.
SHUTDOWN_GRACE = 10.0


async def serve(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Run the HTTP server, the outbox relay and the status feed until SIGINT/SIGTERM or
    ``stop``."""
    gateway = build(settings)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await check_migrated(gateway)
        # Requests still running at shutdown get SHUTDOWN_GRACE (aiohttp's default is 60 s),
        # so the whole stop fits in docker-compose's stop_grace_period (30 s) and the database
        # is closed by us, not by a SIGKILL. A request cut there was never answered "received".
        # Runner: aiohttp's AppRunner whose HTTP parser's own 400s carry the hardening headers.
        runner = Runner(build_app(gateway), access_log=None, shutdown_timeout=SHUTDOWN_GRACE)
        await runner.setup()
        # A deep accept backlog: SMS gateways open hundreds of parallel connections at once.
        site = web.TCPSite(
            runner, settings.http.host, settings.http.port, backlog=2048, reuse_address=True
        )
        await site.start()
        for door in open_doors(settings):
            log.warning(door, extra={"host": settings.http.host})
        log.info(
            "listening",
            extra={
                "host": settings.http.host,
                "port": settings.http.port,
                "event_loop": type(asyncio.get_running_loop()).__module__.split(".")[0],
            },
        )
        relay_task = (
            asyncio.create_task(gateway.relay.run(stop), name="outbox-relay")
            if gateway.relay
            else None
        )
        status_task = (
            asyncio.create_task(gateway.status_feed.run(stop), name="status-feed")
            if gateway.status_feed
            else None
        )
        # Replies to SMS senders (and fragment sets that waited too long).
        sms_sender = gateway.sms.sender if gateway.sms else None
        sms_task = (
            asyncio.create_task(sms_sender.run(stop), name="sms-replies") if sms_sender else None
        )
        storage = settings.storage
        gc_task = (
            asyncio.create_task(
                filegc.run_every(
                    gateway.engine,
                    gateway.files,
                    gateway.keys,
                    gateway.metrics,
                    interval=storage.gc_interval,
                    grace=timedelta(seconds=storage.gc_grace),
                    stop=stop,
                ),
                name="file-store-gc",
            )
            if storage.gc_interval > 0
            else None
        )
        # Published events older than outbox.keep_published, whatever outbox.enabled says: every
        # deployment runs serve, and two replicas pruning at once are safe.
        box = settings.outbox
        prune_task = (
            asyncio.create_task(
                prune_every(
                    gateway.engine,
                    gateway.metrics,
                    keep=box.keep_published,
                    interval=box.prune_interval,
                    stop=stop,
                    clock=gateway.clock,
                ),
                name="outbox-prune",
            )
            if box.prune_interval > 0 and box.keep_published > 0
            else None
        )
        # The SMS channel's replies and joined fragments, on the same schedule.
        sms_prune_task = (
            asyncio.create_task(
                periodic.run_every(
                    box.prune_interval,
                    stop,
                    lambda: _prune_sms(gateway, stop),
                    what="sms prune",
                    runs=gateway.metrics.prune_runs,
                ),
                name="sms-prune",
            )
            if gateway.sms is not None and box.prune_interval > 0
            else None
        )
        await stop.wait()
        gateway.stopping.set()
        log.info("stopping")
        if gc_task is not None:
            # A collection in progress is not waited for (it may take minutes on a big store):
            # each file is renamed aside, checked and deleted or put back in one worker-thread
            # step, and that step finishes; the next run does the rest.
            gc_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await gc_task
        # A prune stops between two batches.
        for task in (relay_task, status_task, sms_task, prune_task, sms_prune_task):
            if task is not None:
                await task
        await runner.cleanup()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await gateway.close()
