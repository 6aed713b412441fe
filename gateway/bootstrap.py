"""The composition root: the one place that builds engines, clients and servers from settings.

Nothing in the gateway connects at import time. :func:`build` creates the parts (lazily
connecting engine, file store, metrics, intake service, relay, parsers) and
:func:`build_app` assembles the aiohttp application with every channel's routes.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from channels import sms as sms_channel
from channels import web as web_channel
from gateway.crypto import load_keys
from gateway.filestore import FileStore
from gateway.http import HealthDeps, add_core_routes
from gateway.intake import Clock, IntakeService, ParserRegistry, utcnow
from gateway.metrics import Metrics
from gateway.outbox import OutboxRelay
from gateway.settings import Settings
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

    async def close(self) -> None:
        """Release the database pool."""
        await self.engine.dispose()


def build(settings: Settings, clock: Clock = utcnow) -> Gateway:
    """Build the parts; nothing connects until first use."""
    engine = create_engine(settings.database)
    files = FileStore(settings.storage.file_store)
    metrics = Metrics()
    relay = (
        OutboxRelay(engine, settings.broker, settings.outbox, metrics, clock=clock)
        if settings.outbox.enabled
        else None
    )
    intake = IntakeService(
        engine,
        files,
        metrics,
        load_keys(settings),
        settings.storage.inline_body_limit,
        clock=clock,
        on_commit=relay.wake if relay else None,
        dedup=settings.dedup,
    )
    parsers = ParserRegistry((*web_channel.PARSERS, *sms_channel.parsers(sms_settings(settings))))
    return Gateway(settings, engine, files, metrics, intake, parsers, relay, clock)


def build_app(gateway: Gateway) -> web.Application:
    """The HTTP application: core routes and every channel's routes."""
    app = web.Application(client_max_size=gateway.settings.http.client_max_size)
    add_core_routes(
        app,
        HealthDeps(
            settings=gateway.settings,
            engine=gateway.engine,
            metrics=gateway.metrics,
            files=gateway.files,
            relay=gateway.relay,
            clock=gateway.clock,
        ),
    )
    web_channel.setup(
        app,
        gateway.intake,
        gateway.files,
        gateway.engine,
        gateway.settings.web,
        load_keys(gateway.settings),  # the per-identity rate limit hashes with the identity key
        gateway.clock,
    )
    sms_channel.setup(app, gateway.intake, sms_settings(gateway.settings))
    return app


def sms_settings(settings: Settings) -> sms_channel.SmsSettings:
    """The SMS channel's settings from the ``[sms]`` section (route and replay share them)."""
    section = settings.sms
    token = section.kannel_token
    return sms_channel.SmsSettings(
        kannel_token=token.get_secret_value() if token else None,
        short_code=section.short_code,
        regions=section.regions or sms_channel.SmsSettings().regions,
        default_region=section.default_region,
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
        gateway.engine, settings.broker, settings.outbox, gateway.metrics, clock=gateway.clock
    )
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await _check_migrated(gateway)
        app = web.Application()
        add_core_routes(
            app,
            HealthDeps(
                settings=settings,
                engine=gateway.engine,
                metrics=gateway.metrics,
                files=gateway.files,
                relay=relay,
                clock=gateway.clock,
            ),
        )
        runner = web.AppRunner(app, access_log=None)
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


async def _check_migrated(gateway: Gateway) -> None:
    current, head = await migrate.current_revision(gateway.engine), migrate.head_revision()
    if current != head:
        raise NotMigrated(
            f"database is at migration {current}, the code needs {head}: "
            "run `lapor-gateway migrate`"
        )


async def serve(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Run the HTTP server and the outbox relay until SIGINT/SIGTERM or ``stop``."""
    gateway = build(settings)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await _check_migrated(gateway)
        runner = web.AppRunner(build_app(gateway), access_log=None)
        await runner.setup()
        # A deep accept backlog: SMS gateways open hundreds of parallel connections at once.
        site = web.TCPSite(
            runner, settings.http.host, settings.http.port, backlog=2048, reuse_address=True
        )
        await site.start()
        log.info("listening", extra={"host": settings.http.host, "port": settings.http.port})
        relay_task = (
            asyncio.create_task(gateway.relay.run(stop), name="outbox-relay")
            if gateway.relay
            else None
        )
        await stop.wait()
        log.info("stopping")
        if relay_task is not None:
            await relay_task
        await runner.cleanup()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await gateway.close()
