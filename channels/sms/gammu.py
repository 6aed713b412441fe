"""Gammu SMSD (a GSM modem) posting each received SMS through its RunOnReceive program (pure).

SMSD runs a program for every received message (``RunOnReceive``) with the message's inbox ids
as arguments and the message in environment variables (Gammu manual, "RunOnReceive
directive"): ``SMS_MESSAGES`` (how many parts), ``SMS_<n>_NUMBER``, ``SMS_<n>_TEXT``,
``SMS_<n>_CLASS``, ``SMS_<n>_REFERENCE`` for each part, ``DECODED_PARTS`` and
``DECODED_<n>_TEXT`` (a long message SMSD has joined; 0 parts for a single SMS) and
``PHONE_ID`` (the ``PhoneID`` of that SMSD). The project's program,
``config/gammu/lapor-onreceive``, posts them form-encoded as they are, with the arguments in
``ids``. SMSD waits ``MultipartTimeout`` for the parts of a long message before it runs the
program once for all of them, so no fragment ever reaches the gateway on its own.

The answer is the reply text (``text/plain``, empty for none); the program hands it to
``gammu-smsd-inject``, which queues it on the same modem.
"""

from __future__ import annotations

import hashlib
import json
import re

from channels.sms.kannel import sms_text, split_query
from channels.sms.message import Bridge, SmsMessage
from gateway.errors import ParseError

IDS_FIELD = "ids"
_PART = re.compile(r"SMS_(\d+)_TEXT")
_PART_FIELD = re.compile(r"SMS_([0-9]{1,9})_(?:NUMBER|TEXT)")  # SMSD numbers parts from 1


def provider_id(body: bytes) -> str | None:
    """The redelivery key of a posted message: ``gammu:`` and the SHA-256 of ``PHONE_ID``, the
    inbox ids, and each part's sender number and text (``SMS_<n>_NUMBER``, ``SMS_<n>_TEXT``).

    The ids alone do not name a message for ever: an SQL backend's are row ids, and an SMSD
    database created anew (the modem box reinstalled, the inbox table truncated) starts again
    at 1, so a new SMS would be taken for a redelivery of an old one (nothing filed, and the new
    sender told a stranger's tracking ID). Running the program again for the same message posts
    the same ids, numbers and texts, so a redelivery still has the same key. A form without any
    number or text keys as migration 0009 wrote the keys of before (PHONE_ID and ids only).

    Nothing goes into the key in the clear: the files backend names each part after the sender
    (``IN20261204_135929_00_+6281234567890_00.txt``), the number and the text are personal
    data, and a long message's ids and texts outgrow the column.
    """
    try:
        values = split_query(body)
    except ParseError:
        return None
    ids = _text(values.get(IDS_FIELD, b""))
    if not ids:
        return None
    phone = _text(values.get("PHONE_ID", b""))
    key = f"{phone}\n{ids}".encode()
    parts = sorted(
        {int(m.group(1)) for name in values if (m := _PART_FIELD.fullmatch(name)) is not None}
    )
    if parts:
        message = [
            [n, _exact(values.get(f"SMS_{n}_NUMBER")), _exact(values.get(f"SMS_{n}_TEXT"))]
            for n in parts
        ]
        key += b"\n" + json.dumps(message).encode("ascii")
    return "gammu:" + hashlib.sha256(key).hexdigest()


def _exact(value: bytes | None) -> str | None:
    """A field's bytes as JSON can hold them exactly (bytes that are no UTF-8 included)."""
    return None if value is None else value.decode("utf-8", "surrogateescape")


def decode_request(body: bytes) -> SmsMessage:
    """Decode the form ``lapor-onreceive`` posted; :class:`ParseError` if it is unusable."""
    values = split_query(body)
    sender = _text(values.get("SMS_1_NUMBER", b""))
    if not sender:
        raise ParseError("pengirim (SMS_1_NUMBER) kosong / sender missing", stage="decode")
    try:
        text = _message_text(values)
    except UnicodeDecodeError:
        raise ParseError("isi bukan UTF-8 / text not UTF-8", stage="decode") from None
    text = sms_text(text)
    return SmsMessage(
        bridge=Bridge.GAMMU,
        sender=sender,
        receiver="",  # the modem's own number is not in what SMSD passes
        text=text,
        message_id=_text(values.get(IDS_FIELD, b"")) or None,
        smsc=_text(values.get("PHONE_ID", b"")) or None,
    )


def _message_text(values: dict[str, bytes]) -> str:
    """The joined text when SMSD decoded a long message, else the parts in their order."""
    if _count(values.get("DECODED_PARTS")) >= 1 and "DECODED_1_TEXT" in values:
        return values["DECODED_1_TEXT"].decode("utf-8")
    parts = sorted(
        (int(m.group(1)), value)
        for name, value in values.items()
        if (m := _PART.fullmatch(name)) is not None
    )
    return "".join(value.decode("utf-8") for _, value in parts)


def _count(value: bytes | None) -> int:
    text = (value or b"").decode("ascii", "replace").strip()
    return int(text) if text.isdigit() else 0


def _text(value: bytes) -> str:
    return value.decode("utf-8", "replace").strip()[:300]
