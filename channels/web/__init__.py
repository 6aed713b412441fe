"""The web channel: the JSON complaint API (the citizen form and Open311 join it here)."""

from __future__ import annotations

from aiohttp import web

from channels.web.parse import parse_json_complaint
from channels.web.routes import WebChannel
from gateway.intake import IntakeService, Parser

JSON_PARSER = Parser("web.json", parse_json_complaint)
PARSERS = (JSON_PARSER,)

__all__ = ["JSON_PARSER", "PARSERS", "setup"]


def setup(app: web.Application, intake: IntakeService) -> None:
    """Mount the web channel's routes on ``app``."""
    WebChannel(intake, JSON_PARSER).register(app)
