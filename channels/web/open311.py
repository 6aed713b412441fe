"""Open311 GeoReport v2 at ``/open311/v2/`` (https://wiki.open311.org/GeoReport_v2).

Services are the three LAPOR! classifications. ``POST requests.json`` takes the standard
``application/x-www-form-urlencoded`` parameters with the client's ``api_key`` and answers with
the tracking ID as ``service_request_id`` after the commit (so a ``token`` is also given: the
stored message's id, which ``tokens/{token}.json`` turns into the request id). Reading
(``requests.json``, ``requests/{id}.json``) shows what the status page shows: no reporter, no
text; the title as ``description`` unless the complaint is confidential. Errors are the
GeoReport v2 error array ``[{"code": 400, "description": "..."}]``.

:func:`parse_open311` is the pure parser of the stored body (the parameters without ``api_key``,
which is never stored).
"""

from __future__ import annotations

import hmac
import logging
import uuid
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode
from xml.sax.saxutils import escape

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway import queries, tracking
from gateway.contract import rfc3339
from gateway.domain import (
    Channel,
    ComplaintDraft,
    Kind,
    Location,
    RawInbound,
    Reporter,
)
from gateway.errors import IntakeUnavailable, ParseError
from gateway.intake import Clock, IntakeService, Parser, utcnow
from gateway.ratelimit import RateLimiter
from gateway.settings import WebSettings
from normalizer import normalize_email, normalize_phone

log = logging.getLogger(__name__)

PREFIX = "/open311/v2"
SERVICES: tuple[dict[str, Any], ...] = (
    {
        "service_code": "pengaduan",
        "service_name": "Pengaduan",
        "description": "Pengaduan tentang pelayanan publik (complaint about a public service).",
        "metadata": False,
        "type": "realtime",
        "keywords": "pengaduan, complaint, keluhan",
        "group": "LAPOR!",
    },
    {
        "service_code": "aspirasi",
        "service_name": "Aspirasi",
        "description": "Aspirasi atau saran untuk pemerintah (aspiration or suggestion).",
        "metadata": False,
        "type": "realtime",
        "keywords": "aspirasi, saran, suggestion",
        "group": "LAPOR!",
    },
    {
        "service_code": "informasi",
        "service_name": "Permintaan Informasi",
        "description": "Permintaan informasi publik (request for public information).",
        "metadata": False,
        "type": "realtime",
        "keywords": "informasi, information request",
        "group": "LAPOR!",
    },
)
_NAMES = {s["service_code"]: s["service_name"] for s in SERVICES}
_KNOWN = {
    "jurisdiction_id", "service_code", "lat", "long", "address_string", "address_id", "email",
    "device_id", "account_id", "first_name", "last_name", "phone", "description", "media_url",
}
MAX_DESCRIPTION = 20_000


def _float(params: dict[str, str], key: str, low: float, high: float) -> float | None:
    text = params.get(key, "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise ParseError(f"{key} harus angka / {key} must be a number") from None
    if not low <= value <= high:
        raise ParseError(f"{key} di luar {low}..{high} / {key} outside {low}..{high}")
    return value


def parse_open311(raw: RawInbound) -> ComplaintDraft:
    """Turn a stored GeoReport v2 POST body into a complaint draft, or raise ParseError."""
    try:
        pairs = parse_qsl(raw.body.decode("utf-8"), keep_blank_values=True)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ParseError(f"parameter rusak / malformed parameters: {exc}", "decode") from None
    params: dict[str, str] = {}
    for key, value in pairs:
        if key in _KNOWN:
            params.setdefault(key, value)
    code = params.get("service_code", "")
    if code not in _NAMES:
        raise ParseError("service_code tidak dikenal / unknown service_code")
    description = params.get("description", "").strip()
    if not description:
        raise ParseError("description wajib diisi / description is required")
    if len(description) > MAX_DESCRIPTION:
        raise ParseError(f"description lebih dari {MAX_DESCRIPTION} karakter / too long")
    lat = _float(params, "lat", -90, 90)
    lon = _float(params, "long", -180, 180)
    address = params.get("address_string", "").strip()[:500] or None
    if (lat is None or lon is None) and address is None:
        raise ParseError(
            "lat dan long, atau address_string, wajib diisi / "
            "lat and long, or address_string, are required"
        )
    phone = None
    if phone_text := params.get("phone", "").strip():
        phone = normalize_phone(phone_text)
        if phone is None:
            raise ParseError("phone tidak valid / phone is not a valid number")
    email = None
    if email_text := params.get("email", "").strip():
        email = normalize_email(email_text)
        if email is None:
            raise ParseError("email tidak valid / email is not a valid address")
    name = " ".join(
        p for p in (params.get("first_name", "").strip(), params.get("last_name", "").strip()) if p
    )
    return ComplaintDraft(
        body=description,
        kind=Kind(code),
        title=None,
        reporter=Reporter(name=name[:200] or None, phone=phone, email=email),
        location=Location(text=address, latitude=lat, longitude=lon),
    )


def errors(status: int, description: str) -> web.Response:
    """A GeoReport v2 error answer."""
    return web.json_response([{"code": status, "description": description}], status=status)


def _parse_time(text: str) -> datetime | None:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo is not None else None


class Open311:
    """The GeoReport v2 endpoints."""

    def __init__(
        self,
        intake: IntakeService,
        engine: AsyncEngine,
        settings: WebSettings,
        limiter: RateLimiter,
        parser: Parser,
        clock: Clock = utcnow,
    ) -> None:
        self._intake = intake
        self._engine = engine
        self._settings = settings
        self._limiter = limiter
        self._parser = parser
        self._clock = clock

    def register(self, app: web.Application) -> None:
        """Add the routes to ``app``."""
        app.router.add_get(f"{PREFIX}/services.json", self.services_json)
        app.router.add_get(f"{PREFIX}/services.xml", self.services_xml)
        app.router.add_post(f"{PREFIX}/requests.json", self.create)
        app.router.add_get(f"{PREFIX}/requests.json", self.list)
        app.router.add_get(f"{PREFIX}/requests/{{service_request_id}}.json", self.one)
        app.router.add_get(f"{PREFIX}/tokens/{{token}}.json", self.token)

    def _jurisdiction_ok(self, request: web.Request, params: dict[str, str]) -> bool:
        given = params.get("jurisdiction_id") or request.query.get("jurisdiction_id")
        return given in (None, "", self._settings.open311_jurisdiction)

    async def services_json(self, request: web.Request) -> web.Response:
        """The three services."""
        if not self._jurisdiction_ok(request, {}):
            return errors(404, "jurisdiction_id not found")
        return web.json_response(list(SERVICES))

    async def services_xml(self, request: web.Request) -> web.Response:
        """The three services in the GeoReport v2 XML form."""
        if not self._jurisdiction_ok(request, {}):
            return errors(404, "jurisdiction_id not found")
        items = "".join(
            "<service>"
            + "".join(
                f"<{k}>{escape(str(v).lower() if isinstance(v, bool) else str(v))}</{k}>"
                for k, v in service.items()
            )
            + "</service>"
            for service in SERVICES
        )
        xml = f'<?xml version="1.0" encoding="utf-8"?><services>{items}</services>'
        return web.Response(text=xml, content_type="text/xml")

    async def create(self, request: web.Request) -> web.Response:
        """A new service request: validate, hand to intake, answer with the tracking ID."""
        if request.content_type != "application/x-www-form-urlencoded":
            return errors(400, "send application/x-www-form-urlencoded parameters")
        body = await request.read()
        try:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True)
        except (UnicodeDecodeError, ValueError):
            return errors(400, "malformed parameters")
        params = dict(reversed(pairs))  # the first value of each key
        expected = self._settings.open311_api_key
        given = params.get("api_key", "")
        if expected is None or not hmac.compare_digest(
            given.encode(), expected.get_secret_value().encode()
        ):
            return errors(403, "api_key is missing or not valid")
        if not self._jurisdiction_ok(request, params):
            return errors(404, "jurisdiction_id not found")
        try:
            decision = await self._limiter.hit("submit", request.remote or "unknown")
        except IntakeUnavailable:
            return errors(503, "try again later")
        if not decision.allowed:
            resp = errors(429, f"too many requests, retry in {decision.retry_after} s")
            resp.headers["Retry-After"] = str(decision.retry_after)
            return resp
        stored = urlencode([(k, v) for k, v in pairs if k != "api_key"]).encode("ascii")
        raw = RawInbound(
            channel=Channel.WEB,
            body=stored,
            received_at=self._clock(),
            content_type="application/x-www-form-urlencoded",
            # Each POST is a new request (the content hash alone would merge two alike).
            provider_message_id=f"open311:{uuid.uuid4()}",
            metadata={"remote": request.remote or "", "api": "open311"},
        )
        try:
            self._parser.parse(raw)
        except ParseError as exc:
            return errors(400, exc.reason)
        try:
            receipt = await self._intake.accept(raw, self._parser)
        except IntakeUnavailable:
            resp = errors(503, "try again later")
            resp.headers["Retry-After"] = "5"
            return resp
        return web.json_response(
            [
                {
                    "service_request_id": receipt.tracking_id,
                    "token": receipt.raw_id,
                    "service_notice": "Diverifikasi dalam 3 hari kerja / "
                    "verified within 3 working days",
                    "account_id": None,
                }
            ],
            status=201,
        )

    async def one(self, request: web.Request) -> web.Response:
        """One service request by its id (the tracking ID)."""
        tid = tracking.normalize(request.match_info["service_request_id"])
        found = None if tid is None else await queries.public_request(self._engine, tid)
        if found is None:
            return errors(404, "service_request_id not found")
        return web.json_response([self._public(found)])

    async def list(self, request: web.Request) -> web.Response:
        """Service requests with the GeoReport v2 filters, newest first."""
        q = request.query
        if not self._jurisdiction_ok(request, {}):
            return errors(404, "jurisdiction_id not found")
        wanted = q.get("service_request_id", "").split(",")
        ids = [t for x in wanted if (t := tracking.normalize(x))]
        if q.get("service_request_id") and not ids:
            return web.json_response([])
        codes = [c for c in q.get("service_code", "").split(",") if c]
        if any(c not in _NAMES for c in codes):
            return errors(400, "unknown service_code")
        statuses = [s for s in q.get("status", "").split(",") if s]
        if any(s not in ("open", "closed") for s in statuses):
            return errors(400, "status must be open or closed")
        start = end = None
        if "start_date" in q and (start := _parse_time(q["start_date"])) is None:
            return errors(400, "start_date must be a W3C date-time with a time zone")
        if "end_date" in q and (end := _parse_time(q["end_date"])) is None:
            return errors(400, "end_date must be a W3C date-time with a time zone")
        if start is None and not ids:
            start = (end or self._clock()) - timedelta(days=self._settings.open311_default_days)
        found = await queries.list_public_requests(
            self._engine,
            tracking_ids=ids,
            kinds=codes,
            start=start,
            end=end,
            statuses=statuses,
            limit=self._settings.open311_max_results,
        )
        return web.json_response([self._public(r) for r in found])

    async def token(self, request: web.Request) -> web.Response:
        """The service request id a token (from POST requests.json) became."""
        token = request.match_info["token"]
        tid = await queries.tracking_id_of_raw(self._engine, Channel.WEB.value, token[:36])
        if tid is None:
            return errors(404, "token not found")
        return web.json_response([{"service_request_id": tid, "token": token}])

    def _public(self, r: queries.PublicRequest) -> dict[str, Any]:
        return {
            "service_request_id": r.tracking_id,
            "status": "open" if r.open else "closed",
            "status_notes": r.status,
            "service_name": _NAMES.get(r.kind, r.kind),
            "service_code": r.kind,
            "description": r.title,
            "agency_responsible": r.agency,
            "service_notice": None,
            "requested_datetime": rfc3339(r.received_at),
            "updated_datetime": rfc3339(r.updated_at),
            "expected_datetime": None,
            "address": r.address,
            "address_id": None,
            "zipcode": None,
            "lat": r.latitude,
            "long": r.longitude,
            "media_url": None,
        }
