"""HTTP routes of the web channel (transport only: no database, no broker)."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from aiohttp import web

from gateway.contract import rfc3339
from gateway.domain import Channel, RawInbound
from gateway.errors import IntakeUnavailable, ParseError
from gateway.intake import IntakeService, Parser, utcnow

log = logging.getLogger(__name__)

PROBLEM = "application/problem+json"
MAX_IDEMPOTENCY_KEY = 200


def problem(status: int, title: str, detail: str, **extra: Any) -> web.Response:
    """An RFC 9457 problem document."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return web.json_response(body, status=status, content_type=PROBLEM)


class WebChannel:
    """``POST /api/v1/complaints``: JSON in, 202 with the tracking ID after the commit."""

    def __init__(self, intake: IntakeService, parser: Parser) -> None:
        self._intake = intake
        self._parser = parser

    def register(self, app: web.Application) -> None:
        """Add the routes to ``app``."""
        app.router.add_post("/api/v1/complaints", self.create)
        app.router.add_get("/api/v1/complaints/{tracking_id}", self.status)

    async def status(self, request: web.Request) -> web.Response:
        """Status and dates of one complaint; unknown and mistyped IDs answer alike."""
        try:
            found = await self._intake.status(request.match_info["tracking_id"])
        except IntakeUnavailable:
            return problem(503, "Service Unavailable", "Coba lagi sebentar lagi / try again later.")
        if found is None:
            return problem(
                404, "Not Found", "Nomor pelacakan tidak ditemukan / tracking ID not found."
            )
        return web.json_response(
            {
                "tracking_id": found.tracking_id,
                "status": found.status,
                "received_at": rfc3339(found.received_at),
                "kind": found.kind,
            }
        )

    async def create(self, request: web.Request) -> web.Response:
        """Validate, hand to intake, answer with the receipt."""
        if request.content_type != "application/json":
            return problem(415, "Unsupported Media Type", "Kirim application/json.")
        key = request.headers.get("Idempotency-Key")
        if key is not None and not 0 < len(key) <= MAX_IDEMPOTENCY_KEY:
            return problem(400, "Bad Request", "Idempotency-Key 1-200 karakter.")
        body = await request.read()
        raw = RawInbound(
            channel=Channel.WEB,
            body=body,
            received_at=utcnow(),
            provider_message_id=f"idem:{key}" if key else f"uuid:{uuid.uuid4()}",
            content_type="application/json",
            metadata={
                "remote": request.remote or "",
                "user_agent": request.headers.get("User-Agent", "")[:200],
            },
        )
        # Validate first: an API client is answered 4xx and keeps its message (nothing is lost).
        try:
            self._parser.parse(raw)
        except ParseError as exc:
            return problem(400, "Bad Request", exc.reason)
        try:
            receipt = await self._intake.accept(raw, self._parser)
        except IntakeUnavailable:
            resp = problem(503, "Service Unavailable", "Coba lagi sebentar lagi / try again later.")
            resp.headers["Retry-After"] = "5"
            return resp
        return web.json_response(
            {
                "tracking_id": receipt.tracking_id,
                "status": receipt.status.value,
                "status_url": f"/api/v1/complaints/{receipt.tracking_id}",
            },
            status=202,
        )
