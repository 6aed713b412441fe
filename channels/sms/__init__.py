"""The SMS channel: MOs from Kannel's smsbox (``get-url``), replies in the HTTP answer.

Pure parts: :mod:`channels.sms.kannel` (the request), :mod:`channels.sms.grammar` (the keyword
grammar), :mod:`channels.sms.replies` (the reply texts). Transport: :mod:`channels.sms.routes`.
Configuration of Kannel: this package's README.
"""

from __future__ import annotations

from aiohttp import web

from channels.sms.parse import kannel_parser
from channels.sms.routes import KannelChannel
from channels.sms.settings import SmsSettings
from gateway.intake import IntakeService, Parser

PARSER_NAME = "sms.kannel"


def parsers(settings: SmsSettings) -> tuple[Parser, ...]:
    """The channel's parsers for ``settings`` (the registry and the route must share them)."""
    return (Parser(PARSER_NAME, kannel_parser(settings)),)


DEFAULT_SETTINGS = SmsSettings()
PARSERS = parsers(DEFAULT_SETTINGS)
KANNEL_PARSER = PARSERS[0]

__all__ = ["KANNEL_PARSER", "PARSERS", "SmsSettings", "parsers", "setup"]


def setup(app: web.Application, intake: IntakeService, settings: SmsSettings | None = None) -> None:
    """Mount the SMS channel's routes on ``app``."""
    if settings is None:
        KannelChannel(intake, KANNEL_PARSER, DEFAULT_SETTINGS).register(app)
    else:
        KannelChannel(intake, parsers(settings)[0], settings).register(app)
