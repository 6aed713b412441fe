"""The SMS channel: MOs from HTTP bridges (Kannel, Jasmin, an Android gateway app, SMSSync,
Gammu SMSD on a GSM modem).

Pure parts: :mod:`channels.sms.kannel`, :mod:`~channels.sms.jasmin`,
:mod:`~channels.sms.android`, :mod:`~channels.sms.smssync`, :mod:`~channels.sms.gammu` (each
bridge's request),
:mod:`~channels.sms.grammar` (the keyword grammar), :mod:`~channels.sms.replies` (reply texts),
:mod:`~channels.sms.fragments` (joining parts). Transport: :mod:`~channels.sms.routes` (the
bridges call in), :mod:`~channels.sms.senders` (replies go out). Ports:
:mod:`~channels.sms.ports` (implemented on the database by :mod:`gateway.sms_store`).
Configuration of each bridge: this package's README.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CollectorRegistry

from channels.sms.metrics import SmsMetrics
from channels.sms.ports import FragmentBuffer, ReplyOutbox
from channels.sms.routes import SmsRoutes
from channels.sms.senders import ReplySender, clients
from channels.sms.service import SmsService, parsers
from channels.sms.settings import SmsSettings
from gateway.intake import Clock, IntakeService, utcnow

PARSER_NAME = "sms.kannel"
DEFAULT_SETTINGS = SmsSettings()
PARSERS = parsers(DEFAULT_SETTINGS)
KANNEL_PARSER = PARSERS[0]

__all__ = [
    "KANNEL_PARSER",
    "PARSERS",
    "SmsRuntime",
    "SmsSettings",
    "build",
    "parsers",
    "setup",
]


@dataclass
class SmsRuntime:
    """The channel's long-lived parts: the service the routes use and the reply sender."""

    settings: SmsSettings
    service: SmsService
    outbox: ReplyOutbox | None
    metrics: SmsMetrics | None
    sender: ReplySender | None


def build(
    intake: IntakeService,
    settings: SmsSettings,
    outbox: ReplyOutbox | None = None,
    buffer: FragmentBuffer | None = None,
    registry: CollectorRegistry | None = None,
    clock: Clock = utcnow,
) -> SmsRuntime:
    """The channel's parts; with ``outbox``, replies are durable and a sender sends them."""
    metrics = SmsMetrics(registry) if registry is not None else None
    holder: list[ReplySender] = []
    service = SmsService(
        intake,
        settings,
        outbox,
        buffer,
        metrics,
        clock,
        on_reply=lambda: holder[0].wake() if holder else None,
    )
    sender = None
    if outbox is not None:
        sender = ReplySender(outbox, service, clients(settings), settings, metrics, clock)
        holder.append(sender)
    return SmsRuntime(settings, service, outbox, metrics, sender)


def setup(
    app: web.Application,
    intake: IntakeService,
    settings: SmsSettings | None = None,
    runtime: SmsRuntime | None = None,
) -> None:
    """Mount the SMS channel's routes on ``app`` (replies in the answer without ``runtime``)."""
    if runtime is None:
        runtime = build(intake, settings or DEFAULT_SETTINGS)
    SmsRoutes(runtime.service, runtime.outbox, runtime.metrics).register(app)
