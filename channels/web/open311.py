"""Open311 GeoReport v2 at ``/open311/v2/`` (https://wiki.open311.org/GeoReport_v2).

Every resource answers in both formats the specification defines, chosen by the extension:
``.xml`` (``text/xml; charset=utf-8``, the spec's element names, no namespace) and ``.json``
(the same data by the Spark convention: a list element becomes an array of its children).

- ``discovery.json|xml``: the Service Discovery document (changeset, contact, key service, the
  endpoint with its formats).
- ``services.json|xml``: the three LAPOR! classifications. Each has ``metadata`` true, and
  ``services/{service_code}.json|xml`` defines its attributes: the LAPOR! fields Open311 has no
  name for (title, date it happened, agency, NIK, and the two privacy choices *anonim* and
  *rahasia*). An unknown service code is 404.
- ``POST requests.json|xml``: the standard ``application/x-www-form-urlencoded`` parameters with
  the client's ``api_key`` and ``attribute[code]=value``; answered 200 after the commit with the
  tracking ID as ``service_request_id`` (the services are ``realtime``). The stored message's id
  is also given as ``token``, which ``tokens/{token}.json|xml`` turns into the request id.
- Reading (``requests.json|xml``, ``requests/{id}.json|xml``) shows what the status page shows:
  no reporter, no text; the title as ``description`` unless the complaint is confidential. Dates
  are UTC to the second, as the spec writes them (``2010-01-01T00:00:00Z``). The list's filters
  follow the spec: an argument sent empty is not sent, a repeated one is a comma list, and
  ``service_request_id`` overrides all the others.
- Errors are the spec's error list (``[{"code", "description"}]`` / ``<errors><error>``) with the
  spec's status codes: 403 for a wrong api_key, 404 for what does not exist, 400 otherwise (and
  429 with ``Retry-After`` over a rate limit, 503 when the database cannot take the request);
  also what aiohttp answers by itself under the prefix (:func:`spec_errors`). Descriptions are
  Indonesian, English with ``Accept-Language: en``.

:func:`parse_open311` is the pure parser of the stored body (the parameters without ``api_key``,
which is never stored).
"""

from __future__ import annotations

import hmac
import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit
from xml.sax.saxutils import escape

from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from channels.dates import latest_today
from channels.web.abuse import Guard
from channels.web.form import refused_character
from channels.web.parse import english
from channels.web.uploads import BAD_BODY
from gateway import queries, tracking
from gateway.domain import (
    Channel,
    ComplaintDraft,
    Kind,
    Location,
    Privacy,
    RawInbound,
    Reporter,
)
from gateway.errors import IntakeUnavailable, ParseError
from gateway.http import answer_language
from gateway.intake import Clock, IntakeService, Parser, utcnow
from gateway.ratelimit import Decision
from gateway.settings import WebSettings
from normalizer import InvalidNik, normalize_email, normalize_phone, parse_nik

log = logging.getLogger(__name__)

PREFIX = "/open311/v2"
SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
# Sortable date of the last change to the service list or the service definitions (Service
# Discovery "changeset"): clients refresh what they cached when it moves.
CHANGESET = "2026-11-23 00:00"
Format = Literal["json", "xml"]
FORMATS: tuple[Format, ...] = ("json", "xml")
Lang = Literal["id", "en"]

SERVICES: tuple[dict[str, Any], ...] = (
    {
        "service_code": "pengaduan",
        "service_name": "Pengaduan",
        "description": "Pengaduan tentang pelayanan publik (complaint about a public service).",
        "metadata": True,
        "type": "realtime",
        "keywords": "pengaduan, complaint, keluhan",
        "group": "LAPOR!",
    },
    {
        "service_code": "aspirasi",
        "service_name": "Aspirasi",
        "description": "Aspirasi atau saran untuk pemerintah (aspiration or suggestion).",
        "metadata": True,
        "type": "realtime",
        "keywords": "aspirasi, saran, suggestion",
        "group": "LAPOR!",
    },
    {
        "service_code": "informasi",
        "service_name": "Permintaan Informasi",
        "description": "Permintaan informasi publik (request for public information).",
        "metadata": True,
        "type": "realtime",
        "keywords": "informasi, information request",
        "group": "LAPOR!",
    },
)
_NAMES = {s["service_code"]: s["service_name"] for s in SERVICES}
_YES_NO = [{"key": "ya", "name": "Ya (yes)"}, {"key": "tidak", "name": "Tidak (no)"}]


def _attribute(
    order: int, code: str, datatype: str, description: str, datatype_description: str | None,
    values: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    return {
        "variable": True,
        "code": code,
        "datatype": datatype,
        "required": False,
        "datatype_description": datatype_description,
        "order": order,
        "description": description,
        **({"values": values} if values else {}),
    }


# The service definition's attributes (the same for the three services), POSTed as
# attribute[code]=value.
ATTRIBUTES: tuple[dict[str, Any], ...] = (
    _attribute(1, "judul", "string", "Judul singkat laporan (a short title).",
               "Paling banyak 300 karakter (at most 300 characters)."),
    _attribute(2, "tanggal", "datetime", "Tanggal kejadian (the date it happened).",
               "TTTT-BB-HH, tidak di masa depan (YYYY-MM-DD, not in the future)."),
    _attribute(3, "instansi", "string", "Instansi tujuan (the agency concerned).", None),
    _attribute(4, "nik", "string", "NIK pelapor (the reporter's national ID number).",
               "16 angka (16 digits)."),
    _attribute(5, "anonim", "singlevaluelist",
               "Anonim: identitas pelapor tidak ditampilkan kepada instansi "
               "(anonymous: the agency does not see who reported).", None, _YES_NO),
    _attribute(6, "rahasia", "singlevaluelist",
               "Rahasia: isi laporan tidak dipublikasikan (confidential: never published).",
               None, _YES_NO),
)
_KNOWN = {
    "jurisdiction_id", "service_code", "lat", "long", "address_string", "address_id", "email",
    "device_id", "account_id", "first_name", "last_name", "phone", "description", "media_url",
}
_ATTRIBUTE = re.compile(r"attribute\[([A-Za-z0-9_.-]+)\](\[\])?")
MAX_DESCRIPTION = 20_000
MAX_ADDRESS = 500  # as the form's lokasi and the API's location.text
MAX_NAME = 200  # as the form's nama and the API's reporter.name
_LIMITS = {"judul": 300, "instansi": 255, "nik": 32}


def _float(params: Mapping[str, str], key: str, low: float, high: float) -> float | None:
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


def _attributes(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """The first value of each ``attribute[code]`` (codes this gateway does not define are
    ignored: a client may send a definition of another jurisdiction's, as the spec's example)."""
    out: dict[str, str] = {}
    for key, value in pairs:
        found = _ATTRIBUTE.fullmatch(key)
        if found:
            out.setdefault(found.group(1), value.strip())
    return out


def _yes(attrs: Mapping[str, str], code: str) -> bool:
    value = attrs.get(code, "")
    if value not in ("", "ya", "tidak"):
        raise ParseError(
            f"attribute[{code}] harus ya atau tidak / attribute[{code}] must be ya or tidak"
        )
    return value == "ya"


def _occurred_on(text: str, today: date) -> date | None:
    if not text:
        return None
    try:
        day = (
            datetime.fromisoformat(text.replace("Z", "+00:00")).date()
            if len(text) > len("YYYY-MM-DD")  # a date-time: "T" or, as GeoReporter for iOS, " "
            else date.fromisoformat(text)
        )
    except ValueError:
        raise ParseError(
            "attribute[tanggal] bukan tanggal (TTTT-BB-HH) / "
            "attribute[tanggal] is not a date (YYYY-MM-DD)"
        ) from None
    if day > today:
        raise ParseError(
            "attribute[tanggal] di masa depan / attribute[tanggal] is in the future"
        )
    return day


def parse_open311(raw: RawInbound) -> ComplaintDraft:
    """Turn a stored GeoReport v2 POST body into a complaint draft, or raise ParseError."""
    try:
        pairs = parse_qsl(raw.body.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError as exc:  # never Python's English in a reason
        at = exc.start + 1
        raise ParseError(
            f"parameter rusak: byte ke-{at} bukan UTF-8"
            f" / malformed parameters: byte {at} is not UTF-8",
            "decode",
        ) from None
    except ValueError:
        raise ParseError("parameter rusak / malformed parameters", "decode") from None
    params: dict[str, str] = {}
    for key, value in pairs:
        read = key in _KNOWN or _ATTRIBUTE.fullmatch(key)
        if read and (refusal := refused_character(key, value)):
            raise ParseError(refusal)
        if key in _KNOWN:
            params.setdefault(key, value)
    code = params.get("service_code", "")
    if code not in _NAMES:
        raise ParseError("service_code tidak dikenal / unknown service_code")
    description = params.get("description", "").strip()
    if not description:
        raise ParseError("description wajib diisi / description is required")
    if len(description) > MAX_DESCRIPTION:
        raise ParseError(
            f"description lebih dari {MAX_DESCRIPTION} karakter / "
            f"description is longer than {MAX_DESCRIPTION} characters"
        )
    lat = _float(params, "lat", -90, 90)
    lon = _float(params, "long", -180, 180)
    if (lat is None) != (lon is None):
        raise ParseError("lat dan long harus dikirim bersama / lat and long must be sent together")
    address = params.get("address_string", "").strip() or None
    if address is not None and len(address) > MAX_ADDRESS:
        raise ParseError(
            f"address_string lebih dari {MAX_ADDRESS} karakter / "
            f"address_string is longer than {MAX_ADDRESS} characters"
        )
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
    today = latest_today(raw.received_at)
    attrs = _attributes(pairs)
    for name, limit in _LIMITS.items():
        if len(attrs.get(name, "")) > limit:
            raise ParseError(
                f"attribute[{name}] lebih dari {limit} karakter / "
                f"attribute[{name}] is longer than {limit} characters"
            )
    nik = None
    if nik_text := attrs.get("nik"):
        result = parse_nik(nik_text, today=today)
        if isinstance(result, InvalidNik):
            raise ParseError(
                f"attribute[nik]: {result.message_id} / attribute[nik]: {result.message_en}"
            )
        nik = result.nik
    name = " ".join(
        p for p in (params.get("first_name", "").strip(), params.get("last_name", "").strip()) if p
    )
    if len(name) > MAX_NAME:
        raise ParseError(
            f"first_name dan last_name bersama lebih dari {MAX_NAME} karakter / "
            f"first_name and last_name together are longer than {MAX_NAME} characters"
        )
    return ComplaintDraft(
        body=description,
        kind=Kind(code),
        title=attrs.get("judul") or None,
        reporter=Reporter(nik=nik, name=name or None, phone=phone, email=email),
        privacy=Privacy(anonymous=_yes(attrs, "anonim"), confidential=_yes(attrs, "rahasia")),
        location=Location(text=address, latitude=lat, longitude=lon),
        occurred_on=_occurred_on(attrs.get("tanggal", ""), today),
        agency=attrs.get("instansi") or None,
    )


# ---- the two formats -------------------------------------------------------------------------

# Spark convention: the element name of each item of a list element.
_ITEM = {
    "services": "service",
    "service_requests": "request",
    "errors": "error",
    "attributes": "attribute",
    "values": "value",
    "endpoints": "endpoint",
    "formats": "format",
}
# Characters XML 1.0 does not allow at all (section 2.2), even escaped.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return escape(_NOT_XML.sub("", str(value)))


def _xml(name: str, value: Any) -> str:
    if value is None:
        return f"<{name}/>"
    if isinstance(value, dict):
        return f"<{name}>" + "".join(_xml(k, v) for k, v in value.items()) + f"</{name}>"
    if isinstance(value, list | tuple):
        item = _ITEM[name]
        return f"<{name}>" + "".join(_xml(item, v) for v in value) + f"</{name}>"
    return f"<{name}>{_xml_text(value)}</{name}>"


def render(fmt: Format, root: str, data: Any, status: int = 200) -> web.Response:
    """``data`` as GeoReport v2 JSON, or as XML under the element ``root``."""
    if fmt == "json":
        return web.json_response(data, status=status)
    text = '<?xml version="1.0" encoding="utf-8"?>' + _xml(root, data)
    return web.Response(text=text, status=status, content_type="text/xml", charset="utf-8")


def _lang(request: web.Request) -> Lang:
    return answer_language(request)


def errors(
    status: int, description: str | tuple[str, str], fmt: Format = "json", lang: Lang = "id"
) -> web.Response:
    """A GeoReport v2 error list; ``description`` may be (Indonesian, English)."""
    if isinstance(description, tuple):
        description = description[0] if lang == "id" else description[1]
    answer = render(fmt, "errors", [{"code": status, "description": description}], status)
    # Chosen by Accept-Language: a cache in between must not give one client another's.
    answer.headers["Vary"] = "Accept-Language"
    return answer


def _w3c(moment: datetime) -> str:
    """``moment`` in UTC as the spec writes a date-time, to the second: "2010-01-01T00:00:00Z"
    (clients read it with a fixed pattern, GeoReporter for iOS with no room for a fraction)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# A positive zone offset whose "+" reached the query unencoded, read as a space:
# "2026-11-01T08:00:00 07:00" is what "start_date=2026-11-01T08:00:00+07:00" becomes.
_SPACED_OFFSET = re.compile(r"(T\d\d:\d\d(?::\d\d(?:\.\d+)?)?) (\d\d(?::?\d\d)?)$")


def _parse_time(text: str) -> datetime | None:
    """``text`` as a UTC date-time, or None when it is no W3C date-time with a zone, or one
    whose UTC form lies outside years 1..9999 (``0001-01-01T00:00:00+14:00``): the database
    could not be asked about it (that was answered 503, as if it were down). A "+" of the
    offset sent unencoded (a space by then) is taken as the "+" it was: WIB, WITA and WIT are
    all east of UTC."""
    text = _SPACED_OFFSET.sub(r"\1+\2", text.strip())
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if value.tzinfo is None:
        return None
    try:
        return value.astimezone(UTC)
    except OverflowError:
        return None


JURISDICTION = ("jurisdiction_id tidak dikenal", "jurisdiction_id not found")
# raw_inbound.id, a UUID in its text form: what a token is.
RAW_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_DB_ERRORS = (SQLAlchemyError, OSError, TimeoutError)
Handler = Callable[[web.Request, Format], Awaitable[web.Response]]


class Open311:
    """The GeoReport v2 endpoints."""

    def __init__(
        self,
        intake: IntakeService,
        engine: AsyncEngine,
        settings: WebSettings,
        guard: Guard,
        parser: Parser,
        clock: Clock = utcnow,
        short_code: str = "1708",
    ) -> None:
        self._intake = intake
        self._engine = engine
        self._short_code = short_code
        self._settings = settings
        self._guard = guard
        self._parser = parser
        self._clock = clock

    def register(self, app: web.Application) -> None:
        """Add the routes to ``app``, each in both formats."""
        for fmt in FORMATS:
            get: list[tuple[str, Handler]] = [
                ("discovery", self.discovery),
                ("services", self.services),
                ("services/{service_code}", self.definition),
                ("requests", self.list),
                ("requests/{service_request_id}", self.one),
                ("tokens/{token}", self.token),
            ]
            for path, handler in get:
                app.router.add_get(f"{PREFIX}/{path}.{fmt}", _bind(handler, fmt))
            app.router.add_post(f"{PREFIX}/requests.{fmt}", _bind(self.create, fmt))
        app.middlewares.append(spec_errors)

    def _jurisdiction_ok(self, request: web.Request, params: Mapping[str, str]) -> bool:
        given = params.get("jurisdiction_id") or request.query.get("jurisdiction_id")
        return given in (None, "", self._settings.open311_jurisdiction)

    async def discovery(self, request: web.Request, fmt: Format) -> web.Response:
        """The Service Discovery document."""
        doc = {
            "changeset": CHANGESET,
            "contact": f"LAPOR! (SP4N-LAPOR!): SMS {self._short_code}, https://www.lapor.go.id",
            "key_service": "api_key diberikan oleh pengelola LAPOR! "
            "(ask the LAPOR! administrators for an api_key).",
            "endpoints": [
                {
                    "specification": SPECIFICATION,
                    # Partners are sent to this address: the operator's word, when given,
                    # never the Host a client wrote (which it is only without one).
                    "url": (self._settings.public_base_url or self._guard.origin(request))
                    + PREFIX,
                    "changeset": CHANGESET,
                    "type": "production",
                    "formats": ["text/xml", "application/json"],
                }
            ],
        }
        return render(fmt, "discovery", doc)

    async def services(self, request: web.Request, fmt: Format) -> web.Response:
        """The three services."""
        if not self._jurisdiction_ok(request, {}):
            return errors(404, JURISDICTION, fmt, _lang(request))
        return render(fmt, "services", list(SERVICES))

    async def definition(self, request: web.Request, fmt: Format) -> web.Response:
        """One service's definition: its attributes."""
        lang = _lang(request)
        if not self._jurisdiction_ok(request, {}):
            return errors(404, JURISDICTION, fmt, lang)
        code = request.match_info["service_code"]
        if code not in _NAMES:
            return errors(404, ("service_code tidak dikenal", "service_code not found"), fmt, lang)
        doc = {"service_code": code, "attributes": [dict(a) for a in ATTRIBUTES]}
        return render(fmt, "service_definition", doc)

    async def create(self, request: web.Request, fmt: Format) -> web.Response:
        """A new service request: validate, hand to intake, answer with the tracking ID."""
        lang = _lang(request)
        if request.content_type != "application/x-www-form-urlencoded":
            return errors(
                400,
                ("Kirim parameter application/x-www-form-urlencoded.",
                 "Send application/x-www-form-urlencoded parameters."),
                fmt, lang,
            )
        body = await request.read()
        try:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True)
        except (UnicodeDecodeError, ValueError):
            return errors(400, ("Parameter rusak.", "Malformed parameters."), fmt, lang)
        params = dict(reversed(pairs))  # the first value of each key
        expected = self._settings.open311_api_key
        given = params.get("api_key", "")
        if expected is None or not hmac.compare_digest(
            given.encode(), expected.get_secret_value().encode()
        ):
            return errors(
                403, ("api_key tidak ada atau tidak sah.", "api_key is missing or not valid."),
                fmt, lang,
            )
        if not self._jurisdiction_ok(request, params):
            return errors(404, JURISDICTION, fmt, lang)
        code = params.get("service_code", "")
        if not code:
            return errors(400, ("service_code wajib diisi.", "service_code is required."),
                          fmt, lang)
        if code not in _NAMES:
            return errors(404, ("service_code tidak dikenal.", "service_code not found."),
                          fmt, lang)
        stored = urlencode([(k, v) for k, v in pairs if k != "api_key"]).encode("utf-8")
        raw = RawInbound(
            channel=Channel.WEB,
            body=stored,
            received_at=self._clock(),
            content_type="application/x-www-form-urlencoded",
            # Each POST is a new request (the content hash alone would merge two alike).
            provider_message_id=f"open311:{uuid.uuid4()}",
            metadata={"remote": self._guard.client(request), "api": "open311"}
            | _media_url(params.get("media_url", "")),
        )
        refusal: web.Response | None = None
        buckets = [self._guard.address_bucket(request)]
        try:
            draft = self._parser.parse(raw)
        except ParseError as exc:
            reason = exc.reason if lang == "id" else english(exc.reason)
            refusal = errors(400, reason, fmt, lang)
        else:
            if isinstance(draft, ComplaintDraft):
                rep = draft.reporter
                buckets += self._guard.identity_buckets(rep.nik, rep.phone, rep.email)
        try:
            decision = await self._guard.check(buckets)
        except IntakeUnavailable:
            return _unavailable(fmt, lang)
        if not decision.allowed:
            return _too_many(decision, fmt, lang)
        if refusal is not None:
            return refusal
        try:
            receipt = await self._intake.accept(raw, self._parser, draft)
        except IntakeUnavailable:
            return _unavailable(fmt, lang)
        created = {
            "service_request_id": receipt.tracking_id,
            "token": receipt.raw_id,
            "service_notice": "Diverifikasi dalam 3 hari kerja / verified within 3 working days",
            "account_id": None,
        }
        return render(fmt, "service_requests", [created])

    async def one(self, request: web.Request, fmt: Format) -> web.Response:
        """One service request by its id (the tracking ID)."""
        lang = _lang(request)
        if not self._jurisdiction_ok(request, {}):
            return errors(404, JURISDICTION, fmt, lang)
        tid = tracking.normalize(request.match_info["service_request_id"])
        try:
            found = None if tid is None else await queries.public_request(self._engine, tid)
        except _DB_ERRORS:
            return _unavailable(fmt, lang)
        if found is None:
            return errors(
                404, ("service_request_id tidak ditemukan", "service_request_id not found"),
                fmt, lang,
            )
        return render(fmt, "service_requests", [self._public(found)])

    async def list(self, request: web.Request, fmt: Format) -> web.Response:
        """Service requests with the GeoReport v2 filters, newest first.

        As the spec has them: an argument sent empty is one not sent, one sent several times
        counts every time (like a comma list), and service_request_id overrides all the others.
        """
        query = request.query
        joined = {k: ",".join(v for v in query.getall(k) if v.strip()) for k in query}
        q = {k: v for k, v in joined.items() if v}
        lang = _lang(request)
        if not self._jurisdiction_ok(request, {}):
            return errors(404, JURISDICTION, fmt, lang)
        wanted = q.get("service_request_id", "").split(",")
        ids = [t for x in wanted if (t := tracking.normalize(x))]
        if "service_request_id" in q:
            if not ids:
                return render(fmt, "service_requests", [])
            q = {}
        codes = [c for c in q.get("service_code", "").split(",") if c]
        if any(c not in _NAMES for c in codes):
            return errors(400, ("service_code tidak dikenal", "unknown service_code"), fmt, lang)
        statuses = [s for s in q.get("status", "").split(",") if s]
        if any(s not in ("open", "closed") for s in statuses):
            return errors(400, ("status harus open atau closed", "status must be open or closed"),
                          fmt, lang)
        start = end = None
        w3c = ("harus tanggal-waktu W3C dengan zona waktu",
               "must be a W3C date-time with a time zone")
        if "start_date" in q and (start := _parse_time(q["start_date"])) is None:
            return errors(400, (f"start_date {w3c[0]}", f"start_date {w3c[1]}"), fmt, lang)
        if "end_date" in q and (end := _parse_time(q["end_date"])) is None:
            return errors(400, (f"end_date {w3c[0]}", f"end_date {w3c[1]}"), fmt, lang)
        if start is None and not ids:
            try:
                start = (end or self._clock()) - timedelta(days=self._settings.open311_default_days)
            except OverflowError:  # an end_date within the window of year 1: from the start
                start = None
        try:
            found = await queries.list_public_requests(
                self._engine,
                tracking_ids=ids,
                kinds=codes,
                start=start,
                end=end,
                statuses=statuses,
                limit=self._settings.open311_max_results,
            )
        except _DB_ERRORS:
            return _unavailable(fmt, lang)
        return render(fmt, "service_requests", [self._public(r) for r in found])

    async def token(self, request: web.Request, fmt: Format) -> web.Response:
        """The service request id a token (from POST requests) became."""
        lang = _lang(request)
        if not self._jurisdiction_ok(request, {}):
            return errors(404, JURISDICTION, fmt, lang)
        token = request.match_info["token"]
        try:
            # A stored message's id is a UUID: anything else is none of ours, answered without
            # asking the database (cut to 36, a longer one resolved and was echoed back whole;
            # a NUL character, which PostgreSQL refuses, was answered "try again").
            tid = (
                await queries.tracking_id_of_raw(self._engine, Channel.WEB.value, token)
                if RAW_ID.fullmatch(token)
                else None
            )
        except _DB_ERRORS:
            return _unavailable(fmt, lang)
        if tid is None:
            return errors(404, ("token tidak ditemukan", "token not found"), fmt, lang)
        return render(fmt, "service_requests", [{"service_request_id": tid, "token": token}])

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
            "requested_datetime": _w3c(r.received_at),
            "updated_datetime": _w3c(r.updated_at),
            "expected_datetime": None,
            "address": r.address,
            "address_id": None,
            "zipcode": None,
            "lat": r.latitude,
            "long": r.longitude,
            "media_url": None,
        }


def _bind(handler: Handler, fmt: Format) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def route(request: web.Request) -> web.Response:
        return await handler(request, fmt)

    route.__doc__ = handler.__doc__
    return route


# What aiohttp answers by itself, as (Indonesian, English).
_HTTP_ERRORS = {
    404: ("Sumber tidak ditemukan.", "No such resource."),
    405: ("Metode ini tidak dapat dipakai di sini.", "This method is not allowed here."),
    413: ("Permintaan terlalu besar.", "The request is too large."),
}


@web.middleware
async def spec_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """What aiohttp answers by itself under ``PREFIX`` (no such resource, a method the resource
    does not take, a body over ``http.client_max_size``, a body that cannot be read) as the
    spec's error list: 404 for what does not exist, 400 for the rest, in the format the path
    names (else XML, the required one); what a handler did not expect, 500 in that list too.
    """
    if not request.path.startswith(PREFIX + "/"):
        return await handler(request)
    fmt: Format = "json" if request.path.endswith(".json") else "xml"
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        status = 404 if exc.status == 404 else 400
        # aiohttp's reason phrase is English: the Indonesian answer says it in its own words.
        other = (f"Permintaan tidak dapat diproses (HTTP {exc.status}).", exc.reason)
        return errors(status, _HTTP_ERRORS.get(exc.status, other), fmt, _lang(request))
    except web.RequestPayloadError:  # a Content-Encoding that does not decode...
        return errors(400, BAD_BODY, fmt, _lang(request))
    except (ConnectionError, TimeoutError):
        raise  # the client went away (nobody to answer), or aiohttp's 504
    except Exception:
        log.exception("open311: unexpected error answering %s %s", request.method, request.path)
        return errors(500, ("Terjadi galat di server. Coba lagi nanti.",
                            "The server failed. Try again later."), fmt, _lang(request))


def _unavailable(fmt: Format, lang: Lang) -> web.Response:
    resp = errors(503, ("Coba lagi sebentar lagi.", "Try again later."), fmt, lang)
    resp.headers["Retry-After"] = "5"
    return resp


def _too_many(decision: Decision, fmt: Format, lang: Lang) -> web.Response:
    wait = decision.retry_after
    resp = errors(
        429, (f"Terlalu banyak permintaan, coba lagi dalam {wait} detik.",
              f"Too many requests, retry in {wait} s."), fmt, lang,
    )
    resp.headers["Retry-After"] = str(wait)
    return resp


MAX_MEDIA_URL = 2000


def _media_url(value: str) -> dict[str, str]:
    """``media_url`` (a photo the client stored elsewhere, how FixMyStreet sends one) for the
    event's ``source``, when it is an http(s) address; the gateway does not fetch it. Anything
    else stays in the stored message only."""
    value = value.strip()
    try:
        parts = urlsplit(value) if len(value) <= MAX_MEDIA_URL else None
    except ValueError:  # e.g. a broken IPv6 host
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        return {}
    return {"media_url": value}
