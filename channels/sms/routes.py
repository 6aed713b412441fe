"""HTTP routes the SMS bridges call (transport only: no database, no broker).

Each route checks its bridge's authentication BEFORE decoding anything (a wrong or missing
secret is answered at once without reading the message), stores the request exactly as
received through :class:`~channels.sms.service.SmsService`, and answers only after the commit,
in the way its bridge understands:

| bridge | route | stored / acknowledged | retry signal |
|---|---|---|---|
| Kannel smsbox (get/post-url) | ``GET/POST /sms/kannel`` | ``200 text/plain``: reply | ``503`` |
| Kannel DLR | ``GET /sms/kannel/dlr?reply=..&type=%d`` | ``200 OK`` | ``503`` |
| Jasmin | ``POST/GET /sms/jasmin`` | ``200 ACK/Jasmin`` | ``503`` |
| Jasmin DLR | ``POST/GET /sms/jasmin/dlr?reply=..`` | ``200 ACK/Jasmin`` | ``503`` |
| SMS Gateway for Android | ``POST /sms/android`` (JSON webhook) | ``200`` | ``503`` |
| SMSSync | ``POST /sms/smssync`` (form) | ``{"payload": {"success": true}}`` + reply | 503 |
| Gammu SMSD | ``POST /sms/gammu`` (form) | ``200 text/plain``: the reply, or empty | ``503`` |

Never JSON to smsbox: it would send the citizen "Result could not be represented as an SMS
message".
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hmac
import logging
import time

from aiohttp import web

from channels.sms import android, gammu, jasmin, kannel, smssync
from channels.sms.kannel import split_query
from channels.sms.message import Bridge, DeliveryReport, DeliveryState
from channels.sms.metrics import SmsMetrics
from channels.sms.ports import ReplyOutbox
from channels.sms.service import SmsService
from gateway.domain import Channel, RawInbound
from gateway.errors import IntakeUnavailable, ParseError
from gateway.intake import utcnow

log = logging.getLogger(__name__)

PATH = "/sms/kannel"
KANNEL_DLR_PATH = "/sms/kannel/dlr"
JASMIN_PATH = "/sms/jasmin"
JASMIN_DLR_PATH = "/sms/jasmin/dlr"
ANDROID_PATH = "/sms/android"
SMSSYNC_PATH = "/sms/smssync"
GAMMU_PATH = "/sms/gammu"
TOKEN_PARAM = b"token"
# Our reply ids are BIGINTs: 18 digits always fit (a longer number is no id of ours).
_MAX_ID_DIGITS = 18
FORM = "application/x-www-form-urlencoded"
_KANNEL_META = {
    "p": "sender",
    "P": "receiver",
    "c": "coding",
    "C": "charset",
    "i": "smsc",
    "t": "time",
}
_JASMIN_META = {"from": "sender", "to": "receiver", "origin-connector": "smsc", "coding": "coding"}
_SMSSYNC_META = {"from": "sender", "sent_to": "receiver", "device_id": "smsc"}
_GAMMU_META = {"SMS_1_NUMBER": "sender", "PHONE_ID": "smsc", "SMS_MESSAGES": "parts"}
# Kannel DLR types (dlr-mask bits, userguide "Delivery reports").
_KANNEL_DLR = {
    1: DeliveryState.DELIVERED,
    2: DeliveryState.UNDELIVERED,
    4: DeliveryState.BUFFERED,
    8: DeliveryState.ACCEPTED,
    16: DeliveryState.REJECTED,
}


def text_reply(text: str, status: int = 200) -> web.Response:
    """A plain-text answer; smsbox sends a non-empty one as the reply SMS."""
    return web.Response(text=text, status=status, content_type="text/plain", charset="utf-8")


class SmsRoutes:
    """Every SMS bridge endpoint."""

    def __init__(
        self,
        service: SmsService,
        outbox: ReplyOutbox | None = None,
        metrics: SmsMetrics | None = None,
    ) -> None:
        self._service = service
        self._settings = service.settings
        self._outbox = outbox
        self._metrics = metrics

    def register(self, app: web.Application) -> None:
        """Add the routes to ``app``."""
        app.router.add_get(PATH, self.kannel)
        app.router.add_post(PATH, self.kannel)
        app.router.add_get(KANNEL_DLR_PATH, self.kannel_dlr)
        app.router.add_post(KANNEL_DLR_PATH, self.kannel_dlr)
        app.router.add_get(JASMIN_PATH, self.jasmin)
        app.router.add_post(JASMIN_PATH, self.jasmin)
        app.router.add_get(JASMIN_DLR_PATH, self.jasmin_dlr)
        app.router.add_post(JASMIN_DLR_PATH, self.jasmin_dlr)
        app.router.add_post(ANDROID_PATH, self.android)
        app.router.add_post(SMSSYNC_PATH, self.smssync)
        app.router.add_post(GAMMU_PATH, self.gammu)

    # ---- Kannel -------------------------------------------------------------------------------

    async def kannel(self, request: web.Request) -> web.Response:
        """One MO from smsbox."""
        query, token = _pop_token(_raw_query(request))
        post_url = request.method == "POST" and request.content_type != FORM
        # A form body replaces the URL's query; the token may be inside, else the URL's counts.
        if request.method == "POST" and not post_url and request.can_read_body:
            body = await request.read()
            if body:
                query, body_token = _pop_token(body)
                token = body_token if body_token is not None else token
        if not self._kannel_authorized(request, token):
            self._ignored(Bridge.KANNEL, "unauthorized")
            return text_reply("forbidden", status=403)
        if post_url:
            # Kannel's post-url: the escapes in the URL are expanded as for get-url, the text
            # is the body (text/plain or application/octet-stream) and the rest comes in
            # X-Kannel-* headers (smsbox.c, TRANSTYPE_POST_URL). Read as the get-url query it
            # stands for, so that every MO is stored with its own text and sender, and keyed
            # by them when the URL has no %I.
            query = kannel.post_url_query(query, request.headers, await request.read())
            if _param(query, "p") is None:
                log.warning(
                    "Kannel post-url request without the sender (stored, quarantined): add"
                    " send-sender = true to the sms-service group, or better use the get-url"
                    " of channels/sms/README.md"
                )
        raw = _raw(query, _form_meta(query, _KANNEL_META), _param(query, "I"))
        try:
            answer = await self._service.receive(
                raw, Bridge.KANNEL, inline=not self._settings.kannel_outbox
            )
        except IntakeUnavailable:
            return text_reply("", status=503)
        return text_reply(answer.text)

    async def kannel_dlr(self, request: web.Request) -> web.Response:
        """A delivery report smsbox fetched from our ``dlr-url`` (``reply`` and ``type``)."""
        query, token = _pop_token(_raw_query(request))
        if not self._kannel_authorized(request, token):
            self._ignored(Bridge.KANNEL, "unauthorized")
            return text_reply("forbidden", status=403)
        reply, kind = _reply_id(_param(query, "reply")), _reply_id(_param(query, "type"))
        if reply is None or kind is None:
            self._ignored(Bridge.KANNEL, "bad-dlr")
            return text_reply("bad request", status=400)
        state = _KANNEL_DLR.get(kind, DeliveryState.BUFFERED)
        detail = f"type={kind}" + (f" {answer}" if (answer := _param(query, "smsc_reply")) else "")
        report = DeliveryReport(state=state, reply_id=reply, detail=detail)
        if not await self._record(Bridge.KANNEL, report):
            return text_reply("", status=503)
        return text_reply("OK")

    def _kannel_authorized(self, request: web.Request, token: bytes | None) -> bool:
        expected = self._settings.kannel_token
        if expected is None:
            return True
        return _matches(token if token is not None else _basic_password(request), expected)

    # ---- Jasmin -------------------------------------------------------------------------------

    async def jasmin(self, request: web.Request) -> web.Response:
        """One MO from Jasmin's deliverSmHttpThrower; ``ACK/Jasmin`` only after the commit."""
        if not await self._jasmin_authorized(request):
            return text_reply("unauthorized", status=401)
        form = await _form(request)
        raw = _raw(form, _form_meta(form, _JASMIN_META), _param(form, "id"))
        try:
            await self._service.receive(raw, Bridge.JASMIN, inline=False)
        except IntakeUnavailable:
            return text_reply("retry", status=503)
        return text_reply(jasmin.ACK)

    async def jasmin_dlr(self, request: web.Request) -> web.Response:
        """A delivery report from Jasmin's DLRThrower (for a reply sent through ``/send``)."""
        if not await self._jasmin_authorized(request):
            return text_reply("unauthorized", status=401)
        try:
            report = jasmin.decode_dlr(await _form(request))
        except ParseError:
            self._ignored(Bridge.JASMIN, "bad-dlr")
            return text_reply(jasmin.ACK)  # acknowledged: Jasmin would resend it forever
        # Our id in the dlr-url (replies sent since it was added): it finds the reply even
        # when the report overtakes the storing of Jasmin's message id.
        reply = _reply_id(_param(_jasmin_query(request), "reply"))
        if reply is not None:
            report = dataclasses.replace(report, reply_id=reply)
        if not await self._record(Bridge.JASMIN, report):
            return text_reply("retry", status=503)
        return text_reply(jasmin.ACK)

    async def _jasmin_authorized(self, request: web.Request) -> bool:
        expected = self._settings.jasmin_token
        if expected is None:
            self._unconfigured(Bridge.JASMIN, "LAPOR_SMS__JASMIN_TOKEN")
            return False
        token = _param(_jasmin_query(request), "token")
        offered = token.encode() if token is not None else _basic_password(request)
        if not _matches(offered, expected):
            self._ignored(Bridge.JASMIN, "unauthorized")
            return False
        return True

    # ---- SMS Gateway for Android ----------------------------------------------------------------

    async def android(self, request: web.Request) -> web.Response:
        """A webhook of the Android app: an MO, or a report on one of our replies."""
        key = self._settings.modem_secret
        if key is None:
            self._unconfigured(Bridge.ANDROID, "LAPOR_SMS__MODEM_SECRET")
            return text_reply("unauthorized", status=401)
        signature = request.headers.get(android.SIGNATURE_HEADER, "")
        timestamp = request.headers.get(android.TIMESTAMP_HEADER, "")
        # The app sends hex and Unix seconds: ASCII. Anything else (bytes that are not UTF-8,
        # digits of another script, which int() takes) is refused here, unsigned.
        if not (signature.isascii() and timestamp.isascii() and timestamp.isdigit()):
            signature = ""
        if not signature or not timestamp:
            self._ignored(Bridge.ANDROID, "unauthorized")
            return text_reply("unauthorized", status=401)
        body = await request.read()
        # The signature covers the raw bytes; nothing is decoded before it is checked.
        if not android.signature_valid(key.encode(), body, timestamp, signature, time.time()):
            self._ignored(Bridge.ANDROID, "unauthorized")
            return text_reply("unauthorized", status=401)
        try:
            event = android.decode_event(body)
        except ParseError:
            event = None  # stored and quarantined below: nothing is dropped
        if event is not None and event.report is not None:
            if not await self._record(Bridge.ANDROID, event.report):
                return text_reply("retry", status=503)
            return text_reply("ok")
        if event is not None and event.name != android.RECEIVED:
            self._ignored(
                Bridge.ANDROID,
                "unused-event" if event.name in android.KNOWN_UNUSED else "unknown-event",
            )
            log.info("Android webhook event not used: %s", event.name[:64])
            return text_reply("ok")
        meta = {"event": "sms:received"}
        if event is not None and event.message is not None:
            meta |= {"sender": event.message.sender} | (
                {"smsc": event.message.smsc} if event.message.smsc else {}
            )
        raw = RawInbound(
            channel=Channel.SMS,
            body=body,
            received_at=utcnow(),
            provider_message_id=event.event_id if event is not None else None,
            content_type="application/json",
            metadata=meta,
        )
        try:
            await self._service.receive(raw, Bridge.ANDROID, inline=False)
        except IntakeUnavailable:
            return text_reply("retry", status=503)
        return text_reply("ok")

    # ---- SMSSync --------------------------------------------------------------------------------

    async def smssync(self, request: web.Request) -> web.Response:
        """One MO posted by SMSSync; the reply rides on the answer ("Get Reply from Server")."""
        expected = self._settings.modem_secret
        if expected is None:
            self._unconfigured(Bridge.SMSSYNC, "LAPOR_SMS__MODEM_SECRET")
            return _smssync_json(smssync.answer(False, "unauthorized"), 401)
        body, secret = smssync.pop_secret(await request.read())
        # Only the secret field has been looked at so far.
        if not _matches(secret, expected):
            self._ignored(Bridge.SMSSYNC, "unauthorized")
            return _smssync_json(smssync.answer(False, "unauthorized"), 401)
        raw = _raw(body, _form_meta(body, _SMSSYNC_META), _param(body, "message_id"))
        try:
            answer = await self._service.receive(raw, Bridge.SMSSYNC, inline=True)
        except IntakeUnavailable:
            return _smssync_json(smssync.answer(False, "temporarily unavailable"), 503)
        messages = []
        sender = raw.metadata.get("sender")
        if answer.text and sender:
            uuid = f"lapor-{answer.reply_id}" if answer.reply_id is not None else "lapor-reply"
            messages.append({"to": sender, "message": answer.text, "uuid": uuid})
        return _smssync_json(smssync.answer(True, None, messages))

    # ---- Gammu SMSD ---------------------------------------------------------------------------

    async def gammu(self, request: web.Request) -> web.Response:
        """One received message posted by ``lapor-onreceive``; the reply is the answer's text."""
        expected = self._settings.gammu_token
        if expected is None:
            self._unconfigured(Bridge.GAMMU, "LAPOR_SMS__GAMMU_TOKEN")
            return text_reply("unauthorized", status=401)
        # The basic-auth password, from the header alone: the body is not read before it.
        if not _matches(_basic_password(request), expected):
            self._ignored(Bridge.GAMMU, "unauthorized")
            return text_reply("unauthorized", status=401)
        body = await request.read()
        raw = _raw(body, _form_meta(body, _GAMMU_META), gammu.provider_id(body))
        try:
            answer = await self._service.receive(raw, Bridge.GAMMU, inline=True)
        except IntakeUnavailable:
            return text_reply("", status=503)
        return text_reply(answer.text)

    # ---- shared ---------------------------------------------------------------------------------

    async def _record(self, bridge: Bridge, report: DeliveryReport) -> bool:
        """Store a delivery report; False when the database did not take it (retry signal)."""
        if self._outbox is None:
            self._ignored(bridge, "no-outbox")
            return True
        try:
            found = await self._outbox.record_report(report)
        except Exception as exc:  # the database: the bridge retries the report
            log.warning(
                "delivery report not stored: %s",
                type(exc).__name__,
                extra={"error": str(exc)[:300]},
            )
            return False
        if self._metrics is not None:
            self._metrics.reports.labels(
                bridge.value, report.state.value if found else "unmatched"
            ).inc()
        if not found:
            log.info("delivery report for an unknown reply", extra={"bridge": bridge.value})
        return True

    def _unconfigured(self, bridge: Bridge, variable: str) -> None:
        """Count and log a request to a bridge whose secret is not set (it is refused)."""
        self._ignored(bridge, "not-configured")
        log.warning("%s request refused: set %s to enable the bridge", bridge.value, variable)

    def _ignored(self, bridge: Bridge, reason: str) -> None:
        if self._metrics is not None:
            self._metrics.ignored.labels(bridge.value, reason).inc()


def _raw_query(request: web.Request) -> bytes:
    return request.raw_path.partition("?")[2].encode("utf-8", "surrogateescape")


def _jasmin_query(request: web.Request) -> bytes:
    """The query of a Jasmin request. A GET connector appends ``?`` and its fields to the
    connector's baseurl as it is (``jasmin/routing/throwers.py``: ``baseurl += '?%s' %
    encodedArgs``), so a baseurl that has a query of its own (``?token=...``) gives
    ``token=...?id=...``. Jasmin's fields are URL-encoded (``?`` is ``%3F``): a raw ``?`` is
    that separator, and the last one is read as ``&``."""
    query = _raw_query(request)
    head, separator, fields = query.rpartition(b"?")
    return head + b"&" + fields if separator else query


async def _form(request: web.Request) -> bytes:
    """Jasmin's form as received: the POST body, or the query string of a GET (token
    removed)."""
    if request.method == "POST" and request.can_read_body:
        body = await request.read()
        if body:
            return body
    return _pop_token(_jasmin_query(request))[0]


def _raw(form: bytes, meta: dict[str, str], message_id: str | None) -> RawInbound:
    return RawInbound(
        channel=Channel.SMS,
        body=form,
        received_at=utcnow(),
        provider_message_id=message_id or None,
        content_type=FORM,
        metadata=meta,
    )


def _form_meta(form: bytes, names: dict[str, str]) -> dict[str, str]:
    try:
        values = split_query(form)
    except ParseError:
        return {}
    meta = {name: value for key, name in names.items() if (value := _text(values.get(key, b"")))}
    if values.get("u"):
        meta["udh"] = values["u"].hex()
    return meta


def _param(form: bytes, name: str) -> str | None:
    try:
        value = split_query(form).get(name)
    except ParseError:
        return None
    return _text(value) or None if value is not None else None


def _reply_id(text: str | None) -> int | None:
    """One of our reply ids (or a DLR type) as written in a dlr-url: ASCII digits, within a
    BIGINT; else None."""
    if text is None or not (text.isascii() and text.isdigit()) or len(text) > _MAX_ID_DIGITS:
        return None
    return int(text)


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


def _matches(offered: bytes | None, expected: str) -> bool:
    return offered is not None and hmac.compare_digest(offered, expected.encode("utf-8"))


def _smssync_json(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type="application/json", charset="utf-8")


# Control characters (a NUL PostgreSQL's text refuses: an SMSC's answer may carry GSM "@" as
# %00) become spaces in what a bridge's report says.
_CONTROLS = {c: " " for c in range(32)} | {127: " "}


def _text(value: bytes) -> str:
    return value.decode("utf-8", "replace").translate(_CONTROLS).strip()[:200]


__all__ = ["SmsRoutes", "text_reply"]
