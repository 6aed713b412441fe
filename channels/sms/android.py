""" "SMS Gateway for Android" (capcom6/android-sms-gateway) webhooks (pure, no IO).

The app POSTs one JSON document per event to each registered webhook::

    {"deviceId": "...", "event": "sms:received", "id": "Ey6ECgOkVVFjz3CL48B8C",
     "payload": {"messageId": "abc123", "message": "...", "phoneNumber": "6505551212",
                 "simNumber": 1, "receivedAt": "2024-06-22T15:46:11.000+07:00"},
     "webhookId": "..."}

Events used here: ``sms:received`` (an MO), and for our replies ``sms:sent``, ``sms:delivered``
and ``sms:failed`` (their ``messageId`` is the id WE gave the message when sending it). Other
events (``system:ping``, ``mms:received``, ``sms:data-received``) are known but not used.

Authentication (docs "Webhooks", payload signing): ``X-Signature`` is the hex HMAC-SHA256, under
the app's signing key, of the raw body followed by the ``X-Timestamp`` value (Unix seconds). It is
checked on the raw bytes before any JSON is parsed, and a timestamp more than 5 minutes away is
refused (replay).

Redelivery: the app retries a webhook that did not get a 2xx within 30 s (10 s, 20 s, 40 s ...,
14 times by default) with the same event ``id``, our redelivery key. ``messageId`` of a received
SMS is derived from its content and is NOT unique.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from typing import Any

from channels.sms.kannel import sms_text
from channels.sms.message import Bridge, DeliveryReport, DeliveryState, SmsMessage
from gateway.errors import ParseError

SIGNATURE_HEADER = "X-Signature"
TIMESTAMP_HEADER = "X-Timestamp"
MAX_SKEW_SECONDS = 300
RECEIVED = "sms:received"
_SIM = re.compile(r"sim([1-9][0-9]?)")  # as the MO's smsc: sim1, sim2 ...
REPORTS = {
    "sms:sent": DeliveryState.ACCEPTED,
    "sms:delivered": DeliveryState.DELIVERED,
    "sms:failed": DeliveryState.UNDELIVERED,
}
KNOWN_UNUSED = frozenset({"system:ping", "mms:received", "sms:data-received"})
# The id the gateway gives each reply it sends through the app (see senders.AndroidSender).
# ASCII digits within a BIGINT: ``\d`` takes every script's digits, which int() reads, and a
# longer number no row has (the database refuses it: a 503, and the app retries 14 times).
_REPLY_ID = re.compile(r"^lapor-([0-9]{1,18})$")


def reply_message_id(reply_id: int) -> str:
    """The app's message id for our reply ``reply_id`` (the app deduplicates on it)."""
    return f"lapor-{reply_id}"


def sim_number(smsc: str | None) -> int | None:
    """The SIM (1-based ``simNumber``) a reply leaves through: the one the MO came in on, as
    its webhook named it (kept as the message's smsc, ``sim2``); None when not known."""
    match = _SIM.fullmatch(smsc or "")
    return int(match.group(1)) if match else None


def signature_valid(key: bytes, body: bytes, timestamp: str, signature: str, now: float) -> bool:
    """True when ``signature`` signs ``body + timestamp`` and the timestamp is recent."""
    try:
        sent = int(timestamp)
    except ValueError:
        return False
    if abs(now - sent) > MAX_SKEW_SECONDS:
        return False
    expected = hmac.new(key, body + timestamp.encode("ascii"), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature.strip().lower())


def sign(key: bytes, body: bytes, timestamp: str) -> str:
    """The ``X-Signature`` the app would send (for fixtures and tests)."""
    return hmac.new(key, body + timestamp.encode("ascii"), hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class Event:
    """One webhook call: its name and id, and what it carries."""

    name: str
    event_id: str | None
    message: SmsMessage | None = None
    report: DeliveryReport | None = None


def decode_event(body: bytes) -> Event:
    """Decode a webhook body; :class:`ParseError` when it is not one."""
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ParseError(f"bukan JSON / not JSON: {exc}", stage="decode") from None
    try:
        # A JSON escape can write half a surrogate pair ("\ud83d", half an emoji), which no
        # UTF-8 text holds: the message could be neither normalised nor stored as text.
        json.dumps(doc, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise ParseError(
            "teks berisi surrogate tunggal / text holds a lone surrogate", stage="decode"
        ) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("event"), str):
        raise ParseError("webhook tanpa event / no event", stage="decode")
    name: str = doc["event"]
    event_id = _text(doc.get("id")) or None
    payload = doc.get("payload")
    if not isinstance(payload, dict):
        payload = {}
    if name == RECEIVED:
        return Event(name, event_id, message=_received(payload, event_id))
    if name in REPORTS:
        return Event(name, event_id, report=_report(name, payload))
    return Event(name, event_id)


def _received(payload: dict[str, Any], event_id: str | None) -> SmsMessage:
    sender = _text(payload.get("phoneNumber"))
    if not sender:
        raise ParseError("pengirim (phoneNumber) kosong / sender missing", stage="decode")
    text = payload.get("message")
    if not isinstance(text, str):
        raise ParseError("isi (message) bukan teks / message missing", stage="decode")
    text = sms_text(text)
    sim = payload.get("simNumber")
    return SmsMessage(
        bridge=Bridge.ANDROID,
        sender=sender,
        receiver="",
        text=text,
        message_id=event_id,
        smsc=f"sim{sim}" if isinstance(sim, int) else None,
        time=_text(payload.get("receivedAt")) or None,
    )


def _report(name: str, payload: dict[str, Any]) -> DeliveryReport:
    message_id = _text(payload.get("messageId"))
    match = _REPLY_ID.match(message_id)
    detail = name + (f": {_text(payload.get('reason'))}" if payload.get("reason") else "")
    return DeliveryReport(
        state=REPORTS[name],
        reply_id=int(match.group(1)) if match else None,
        provider_ref=message_id or None,
        detail=detail,
    )


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""
