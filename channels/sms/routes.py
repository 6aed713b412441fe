"""HTTP route smsbox calls for every MO (transport only: no database, no broker).

``GET|POST /sms/kannel``: the request is stored as received, parsed, committed, and only then
answered ``200 text/plain; charset=utf-8`` with the reply SMS (an empty body sends nothing with
``omit-empty = yes``). Never JSON: smsbox would send the citizen "Result could not be
represented as an SMS message". When the intake cannot commit the answer is 503, so that
smsbox (``http-request-retry``) sends the identical request again later; the same ``%I`` then
gets the first receipt back and nothing is created twice.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging

from aiohttp import web

from channels.sms import grammar, replies
from channels.sms.kannel import split_query
from channels.sms.parse import interpret_request
from channels.sms.settings import SmsSettings
from gateway.domain import Channel, RawInbound, Receipt, ReceiptStatus
from gateway.errors import IntakeUnavailable, ParseError
from gateway.intake import IntakeService, Parser, utcnow

log = logging.getLogger(__name__)

PATH = "/sms/kannel"
TOKEN_PARAM = b"token"
_META = {"p": "sender", "P": "receiver", "c": "coding", "C": "charset", "i": "smsc", "t": "time"}


def text_reply(text: str, status: int = 200) -> web.Response:
    """A plain-text answer; smsbox sends a non-empty one as the reply SMS."""
    return web.Response(text=text, status=status, content_type="text/plain", charset="utf-8")


class KannelChannel:
    """The Kannel smsbox endpoint."""

    def __init__(self, intake: IntakeService, parser: Parser, settings: SmsSettings) -> None:
        self._intake = intake
        self._parser = parser
        self._settings = settings

    def register(self, app: web.Application) -> None:
        """Add the routes to ``app``."""
        app.router.add_get(PATH, self.receive)
        app.router.add_post(PATH, self.receive)

    async def receive(self, request: web.Request) -> web.Response:
        """One MO from smsbox."""
        query = request.raw_path.partition("?")[2].encode("utf-8", "surrogateescape")
        if request.method == "POST" and request.can_read_body:
            body = await request.read()
            if body:
                query = body
        query, token = _pop_token(query)
        if not self._authorized(request, token):
            return text_reply("forbidden", status=403)
        try:
            values = split_query(query)
        except ParseError:
            values = {}
        message_id = _text(values.get("I", b"")) or None
        raw = RawInbound(
            channel=Channel.SMS,
            body=query,
            received_at=utcnow(),
            provider_message_id=message_id,
            content_type="application/x-www-form-urlencoded",
            metadata={
                name: value for key, name in _META.items() if (value := _text(values.get(key, b"")))
            }
            | ({"udh": values["u"].hex()} if values.get("u") else {}),
        )
        # The pure parse runs again inside accept(); here it only chooses the reply.
        try:
            reading: grammar.Interpretation | ParseError = interpret_request(raw, self._settings)
        except ParseError as exc:
            reading = exc
        try:
            receipt = await self._intake.accept(raw, self._parser)
            reply = await self._reply(receipt, reading)
        except IntakeUnavailable:
            return text_reply("", status=503)
        return text_reply(reply)

    async def _reply(self, receipt: Receipt, reading: grammar.Interpretation | ParseError) -> str:
        code = self._settings.short_code
        if receipt.status is ReceiptStatus.QUARANTINED or isinstance(reading, ParseError):
            if isinstance(reading, ParseError) and reading.stage == "empty":
                return replies.empty(code)
            return replies.quarantined(receipt.tracking_id)
        if receipt.status in (ReceiptStatus.ACCEPTED, ReceiptStatus.DUPLICATE):
            tid = receipt.tracking_id
            if tid is None:
                return replies.quarantined(None)
            return replies.accepted(tid, code, reading.nik_rejected)
        if reading.intent is grammar.Intent.HELP:
            return replies.help_text(code)
        if reading.intent is grammar.Intent.STATUS:
            if reading.tracking_id is None:
                return replies.status_unknown(code)
            found = await self._intake.status(reading.tracking_id)
            if found is None:
                return replies.status_unknown(code)
            return replies.status_found(found.tracking_id, found.status, found.received_at)
        return ""  # a fragment: stored, nothing to say until the message is whole

    def _authorized(self, request: web.Request, token: bytes | None) -> bool:
        expected = self._settings.kannel_token
        if expected is None:
            return True
        offered = token if token is not None else _basic_password(request)
        return offered is not None and hmac.compare_digest(offered, expected.encode("utf-8"))


def _pop_token(query: bytes) -> tuple[bytes, bytes | None]:
    """Remove the ``token`` parameter (a secret must not be stored with the message)."""
    token: bytes | None = None
    kept: list[bytes] = []
    for pair in query.split(b"&"):
        name, _, value = pair.partition(b"=")
        if name == TOKEN_PARAM:
            token = split_query(b"t=" + value)["t"] if value else b""
        else:
            kept.append(pair)
    if token is None:
        return query, None
    return b"&".join(kept), token


def _basic_password(request: web.Request) -> bytes | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    return decoded.partition(b":")[2]


def _text(value: bytes) -> str:
    return value.decode("utf-8", "replace").strip()[:200]
