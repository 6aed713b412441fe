"""Ushahidi SMSSync (an Android app) posting each SMS as a form (pure, no IO).

SMSSync POSTs ``application/x-www-form-urlencoded`` to its Sync URL (docs "Developers"):
``from``, ``message``, ``message_id`` (unique per SMS: our redelivery key), ``sent_to`` (the
SIM's number, or the device id set in the app), ``secret`` (the key set in the app),
``device_id`` and ``sent_timestamp`` (when the SMS was sent; Unix time, milliseconds in the app
versions seen in the wild).

It counts a message as synced only when the answer is JSON ``{"payload": {"success": true,
"error": null}}``; otherwise it keeps the message and tries again at its next sync. With "Get
Reply from Server" checked, messages in the same answer (``"task": "send"``, ``"messages":
[{"to", "message", "uuid"}]``) are sent by the phone at once: that is how the reply goes out.
"""

from __future__ import annotations

import json
from typing import Any

from channels.sms.kannel import sms_text, split_query
from channels.sms.message import Bridge, SmsMessage
from gateway.errors import ParseError

SECRET_FIELD = b"secret"


def pop_secret(body: bytes) -> tuple[bytes, bytes | None]:
    """``body`` without its ``secret`` field (never stored), and the secret's raw value."""
    secret: bytes | None = None
    kept: list[bytes] = []
    for pair in body.split(b"&"):
        name, _, value = pair.partition(b"=")
        if name == SECRET_FIELD:
            secret = split_query(b"s=" + value)["s"] if value else b""
        elif pair:
            kept.append(pair)
    return b"&".join(kept), secret


def decode_request(body: bytes) -> SmsMessage:
    """Decode the form SMSSync sent (secret already removed); :class:`ParseError` if unusable."""
    values = split_query(body)
    sender = values.get("from", b"").decode("utf-8", "replace").strip()
    if not sender:
        raise ParseError("pengirim (from) kosong / sender missing", stage="decode")
    try:
        text = values.get("message", b"").decode("utf-8")
    except UnicodeDecodeError:
        raise ParseError("isi bukan UTF-8 / message not UTF-8", stage="decode") from None
    text = sms_text(text)
    return SmsMessage(
        bridge=Bridge.SMSSYNC,
        sender=sender,
        receiver=values.get("sent_to", b"").decode("utf-8", "replace").strip(),
        text=text,
        message_id=values.get("message_id", b"").decode("utf-8", "replace").strip() or None,
        smsc=values.get("device_id", b"").decode("utf-8", "replace").strip() or None,
        time=values.get("sent_timestamp", b"").decode("ascii", "replace").strip() or None,
    )


def answer(
    success: bool, error: str | None = None, replies: list[dict[str, str]] | None = None
) -> str:
    """The JSON SMSSync expects, with the replies it should send (``to``, ``message``, ``uuid``)."""
    payload: dict[str, Any] = {"success": success, "error": error}
    if replies:
        payload["task"] = "send"
        payload["messages"] = replies
    return json.dumps({"payload": payload}, ensure_ascii=False)
