"""The web channel: the citizen form, the status page, the JSON API and Open311 GeoReport v2.

Pure parts: :mod:`channels.web.parse` (API JSON), :mod:`channels.web.form` (the form),
:mod:`channels.web.open311` (``parse_open311``), :mod:`channels.web.exif` (magic bytes, EXIF GPS),
:mod:`channels.web.pages` (HTML). Transport: :mod:`channels.web.routes`,
:mod:`channels.web.uploads`, :mod:`channels.web.open311` (``Open311``), :mod:`channels.web.abuse`
(client address, rate limits). See this package's README.
"""

from __future__ import annotations

import logging
import secrets

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from channels.web.abuse import Guard, request_client
from channels.web.form import parse_form
from channels.web.open311 import Open311, parse_open311
from channels.web.parse import parse_json_complaint, parse_json_followup
from channels.web.routes import WebChannel
from gateway.crypto import Keys
from gateway.filestore import FileStore
from gateway.intake import Clock, IntakeService, Parser, utcnow
from gateway.ratelimit import RateLimiter
from gateway.settings import WebSettings

log = logging.getLogger(__name__)

JSON_PARSER = Parser("web.json", parse_json_complaint)
FOLLOWUP_PARSER = Parser("web.followup", parse_json_followup)
FORM_PARSER = Parser("web.form", parse_form)
OPEN311_PARSER = Parser("web.open311", parse_open311)
PARSERS = (JSON_PARSER, FOLLOWUP_PARSER, FORM_PARSER, OPEN311_PARSER)

__all__ = [
    "FOLLOWUP_PARSER", "FORM_PARSER", "JSON_PARSER", "OPEN311_PARSER", "PARSERS", "request_client",
    "rate_limit_keep", "setup",
]


def csrf_key(settings: WebSettings) -> bytes:
    """The configured CSRF key, or a random one for this process (with a warning)."""
    if settings.csrf_key is not None:
        return settings.csrf_key.get_secret_value().encode("utf-8")
    log.warning(
        "web.csrf_key is not set (LAPOR_WEB__CSRF_KEY): using a random key of this process; "
        "forms served before a restart, or by another replica, will be refused"
    )
    return secrets.token_bytes(32)


def rate_limit_keep(settings: WebSettings) -> float:
    """Seconds the web channel's rate-limit rows must be kept: its longest window."""
    return max(settings.rate_limit_window, settings.rate_limit_identity_window)


def setup(
    app: web.Application,
    intake: IntakeService,
    files: FileStore,
    engine: AsyncEngine,
    settings: WebSettings,
    keys: Keys,
    clock: Clock = utcnow,
    limiter: RateLimiter | None = None,
    short_code: str = "1708",
) -> RateLimiter:
    """Mount the web channel's routes on ``app``; ``keys`` hash the identities it rate-limits;
    ``short_code`` is the number citizens text (the receipt says to send ``CEK`` there).

    ``limiter`` is the gateway's rate limiter when other parts count in it too (its rows must
    then be kept for the longest of everyone's windows); without one, the channel makes its own.
    Returns the rate limiter: it prunes old rows after answering a request, so whoever closes
    ``engine`` first awaits its :meth:`~gateway.ratelimit.RateLimiter.idle` (the app's cleanup
    does; so does :meth:`gateway.bootstrap.Gateway.close`, whichever runs first).
    """
    if limiter is None:
        limiter = RateLimiter(engine, rate_limit_keep(settings), clock)
    guard = Guard(limiter, settings, keys)

    async def settle(_app: web.Application) -> None:
        await limiter.idle()  # a count or prune in flight finishes before the pool closes

    app.on_cleanup.append(settle)
    WebChannel(
        intake,
        files,
        settings,
        guard,
        JSON_PARSER,
        FORM_PARSER,
        FOLLOWUP_PARSER,
        csrf_key(settings),
        clock,
        short_code,
    ).register(app)
    Open311(intake, engine, settings, guard, OPEN311_PARSER, clock, short_code).register(app)
    return limiter
