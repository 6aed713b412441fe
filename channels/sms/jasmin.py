"""Jasmin SMS gateway over HTTP (pure, no IO): the MO request, the DLR, the ``/send`` answer.

Jasmin's ``deliverSmHttpThrower`` calls an HTTP client connector's ``baseurl`` once per MO
(``jasmin/routing/throwers.py``; docs "Receiving SMS-MO"), with these form fields (POST body or
GET query, per the connector's ``method``):

``id`` (Jasmin's UUID for the MO: our redelivery key), ``from``, ``to``, ``origin-connector``
(the SMPP connector it came from), ``priority``, ``coding`` (the SMPP ``data_coding``: see
:func:`read_coding`), ``validity``, ``content`` (the ``short_message`` OCTETS, URL-encoded, not
decoded by Jasmin) and ``binary`` (the same octets as hex). Jasmin joins the parts of a long MO
that carry an 8-bit reference itself before the call; a part with a 16-bit reference (IEI
``08``) is thrown on its own with its UDH at the head of the octets, and nothing else says so
(the ``esm_class`` is not passed on). Octets that begin with a well-formed UDH holding a
concatenation element are read as such a part: a :class:`~channels.sms.message.Fragment` that
the channel holds until its set is whole. No text a person writes starts that way: a header must
hold a concatenation element with a total of at least 2 and parse exactly to its length (in GSM
03.38 the usual 8-bit one reads ``é@¥``, the 16-bit one ``ùòè``; other elements may come before
them).

Only a ``200`` whose body is exactly ``ACK/Jasmin`` acknowledges; anything else makes Jasmin
send the same message (same ``id``) again after ``deliversm-thrower.retry_delay`` (30 s), up to
``max_retries`` (3) times; a ``404`` is never retried.

Text from the octets, by ``coding`` (the ``data_coding`` as a decimal number). SMPP 3.4
section 5.2.19 defines 0x00-0x0F: 0 the SMSC default alphabet, read as GSM 03.38 unpacked
septets (or ISO-8859-1 when the operator's SMSC sends Latin-1: ``sms.jasmin_coding0``), 1
IA5/ASCII, 3 ISO-8859-1, 8 UCS-2 (UTF-16BE, surrogate pairs accepted), 2 and 4 octet data
(UTF-8 when valid, else ISO-8859-1). Above 0x0F the SMSC hands on the air interface's data
coding scheme (3GPP TS 23.038 section 4; SMPP 3.4 refers to it for the 0xC_-0xF_ groups), and
a flash SMS (message class 0) keeps it: 0x10 or 0xF0 for GSM 7-bit, 0x18 for UCS-2. The
alphabet it names is read as above (GSM 7-bit like coding 0, ``sms.jasmin_coding0`` included,
as Kannel applies its ``alt-charset`` to every 7-bit DCS; 8-bit data like coding 4; UCS-2 like
coding 8): the general data coding group 00xx and the automatic deletion group 01xx (bits 3..2:
GSM 7-bit, 8-bit, UCS-2), the message waiting groups 1100 and 1101 (GSM 7-bit) and 1110
(UCS-2), and the data coding/message class group 1111 (bit 2: GSM 7-bit or 8-bit). Compressed
text (bit 5 of 00xx/01xx, TS 23.042), reserved alphabets and groups, and the other SMPP
alphabets (JIS, Cyrillic, Hebrew, Kanji, KS C 5601): quarantined.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from channels.sms import gsm
from channels.sms.kannel import (
    edge_halves,
    eight_bit,
    parse_concatenation,
    sms_text,
    split_query,
)
from channels.sms.message import Bridge, DeliveryReport, DeliveryState, Fragment, SmsMessage
from gateway.errors import ParseError

ACK = "ACK/Jasmin"
Coding0 = Literal["gsm", "latin1"]

# DLR message_status (level 2/3: the SMSC's receipt stat; level 1: the submit_sm_resp status).
_DLR_STATES = {
    "DELIVRD": DeliveryState.DELIVERED,
    "UNDELIV": DeliveryState.UNDELIVERED,
    "EXPIRED": DeliveryState.UNDELIVERED,
    "DELETED": DeliveryState.UNDELIVERED,
    "REJECTD": DeliveryState.REJECTED,
    "ACCEPTD": DeliveryState.ACCEPTED,
    "ENROUTE": DeliveryState.BUFFERED,
    "UNKNOWN": DeliveryState.BUFFERED,
    "ESME_ROK": DeliveryState.ACCEPTED,
}
_UDH_MIN = 5  # the shortest UDH holding a concatenation element: 00 03 ref total seq

Alphabet = Literal["gsm", "ascii", "latin1", "octets", "ucs2"]
# SMPP 3.4 section 5.2.19, data_coding 0x00-0x0F: the ones read here.
_SMPP_ALPHABETS: dict[int, Alphabet] = {
    0x00: "gsm",  # SMSC default alphabet (or Latin-1: sms.jasmin_coding0)
    0x01: "ascii",  # IA5 (CCITT T.50) / ASCII
    0x02: "octets",  # octet unspecified (8-bit binary)
    0x03: "latin1",  # ISO-8859-1
    0x04: "octets",  # octet unspecified (8-bit binary)
    0x08: "ucs2",  # UCS-2 (ISO/IEC 10646)
}
# TS 23.038 section 4, bits 3..2 of the general data coding group: 11 is reserved.
_GENERAL_ALPHABETS: tuple[Alphabet, ...] = ("gsm", "octets", "ucs2")
_SEND_OK = re.compile(r'^Success "(?P<id>[^"]+)"')


@dataclass(frozen=True, slots=True)
class JasminMO:
    """One MO as Jasmin delivered it."""

    message: SmsMessage
    coding: int
    priority: str | None
    validity: str | None


def decode_request(body: bytes, coding0: Coding0 = "gsm") -> JasminMO:
    """Decode the form Jasmin sent; :class:`ParseError` when it cannot be understood."""
    values = split_query(body)
    sender = _ascii(values, "from")
    if not sender:
        raise ParseError("pengirim (from) kosong / sender missing", stage="decode")
    coding = read_coding(values.get("coding", b""))
    fragment, octets = leading_udh(_octets(values))
    if fragment is None:
        text = decode_octets(octets, coding, coding0)
    else:
        text, fragment = edge_halves(
            decode_octets(octets, coding, coding0, "surrogatepass"), fragment
        )
    return JasminMO(
        message=SmsMessage(
            bridge=Bridge.JASMIN,
            sender=sender,
            receiver=_ascii(values, "to"),
            text=text,
            message_id=_ascii(values, "id") or None,
            smsc=_ascii(values, "origin-connector") or None,
            fragment=fragment,
        ),
        coding=coding,
        priority=_ascii(values, "priority") or None,
        validity=_ascii(values, "validity") or None,
    )


def read_coding(value: bytes) -> int:
    """The ``data_coding`` in a ``coding`` field (0 when there is none).

    Jasmin's docs show a number (``8``), and so did its thrower until jookies/jasmin#607; since
    then it writes ``DataCodingEncoder().encode(data_coding)``, the octet itself, URL-encoded
    (``%00``, ``%08``, ``%F0``). Both are read: ASCII digits as the number, one other octet as
    itself (``0x30``-``0x39``, compressed text no handset sends, would read as digits).
    """
    digits = value.strip()
    if digits.isdigit():
        return int(digits)
    if len(value) == 1:
        return value[0]
    if not value:
        return 0
    shown = value.decode("latin-1")
    raise ParseError(f"coding {shown!r} tidak dikenal / unknown", stage="decode")


def _octets(values: dict[str, bytes]) -> bytes:
    """The short_message octets: ``binary`` (hex) when present and valid, else ``content``."""
    binary = values.get("binary", b"").strip()
    if binary:
        try:
            return bytes.fromhex(binary.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            raise ParseError(
                "binary bukan heksadesimal / binary is not hex", stage="decode"
            ) from None
    return values.get("content", b"")


def leading_udh(octets: bytes) -> tuple[Fragment | None, bytes]:
    """The concatenation element of a UDH at the head of ``octets`` and the octets after it;
    ``(None, octets)`` when they do not begin with a well-formed one (see the module docstring).
    """
    length = octets[0] if octets else 0
    if not _UDH_MIN <= length < len(octets):
        return None, octets
    try:
        found = parse_concatenation(octets[: length + 1])
    except ParseError:
        return None, octets
    if found is None or found.total < 2:
        return None, octets
    return found, octets[length + 1 :]


def alphabet(coding: int) -> Alphabet:
    """The alphabet SMPP ``data_coding`` ``coding`` names (see the module docstring);
    :class:`ParseError` for one not read here."""
    if coding in _SMPP_ALPHABETS:
        return _SMPP_ALPHABETS[coding]
    group = coding & 0xF0
    if 0x10 <= coding <= 0x7F:
        # 00xx general data coding, 01xx marked for automatic deletion: the same bits 5..0.
        if coding & 0x20:
            raise ParseError(
                f"coding {coding}: teks terkompresi (TS 23.042) tidak didukung / "
                "compressed text unsupported",
                stage="decode",
            )
        index = (coding >> 2) & 0x03
        if index < len(_GENERAL_ALPHABETS):
            return _GENERAL_ALPHABETS[index]
    elif group in (0xC0, 0xD0):  # message waiting indication: discard / store, GSM 7-bit
        return "gsm"
    elif group == 0xE0:  # message waiting indication: store, UCS-2
        return "ucs2"
    elif group == 0xF0:  # data coding/message class: bit 2 the alphabet, bit 3 reserved
        return "octets" if coding & 0x04 else "gsm"
    raise ParseError(f"coding {coding} tidak didukung / unsupported", stage="decode")


def decode_octets(
    octets: bytes, coding: int, coding0: Coding0 = "gsm", utf16_errors: str = "strict"
) -> str:
    """The text of ``octets`` in SMPP ``data_coding`` ``coding`` (see the module docstring);
    ``utf16_errors`` as for :meth:`bytes.decode`, for UCS-2."""
    name = alphabet(coding)
    if name == "octets":
        return eight_bit(octets)
    try:
        if name == "gsm":
            text = gsm.decode_unpacked(octets) if coding0 == "gsm" else octets.decode("latin-1")
        elif name == "ascii":
            text = octets.decode("ascii")
        elif name == "latin1":
            text = octets.decode("latin-1")
        else:
            text = octets.decode("utf-16-be", utf16_errors)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ParseError(f"isi tidak sah untuk coding {coding}: {exc}", stage="decode") from None
    return sms_text(text)  # GSM septets never hold a NUL (0x00 is "@")


def decode_dlr(body: bytes) -> DeliveryReport:
    """A Jasmin DLR callback (``id``, ``message_status``, ``level``, ``err``...)."""
    values = split_query(body)
    message_id = _ascii(values, "id")
    status = _ascii(values, "message_status").upper()
    if not message_id or not status:
        raise ParseError("DLR tanpa id / message_status", stage="decode")
    if status in _DLR_STATES:
        state = _DLR_STATES[status]
    elif status.startswith("ESME_"):
        state = DeliveryState.REJECTED  # the SMSC refused the submit_sm
    else:
        state = DeliveryState.BUFFERED
    err = _ascii(values, "err")
    detail = f"{status} level={_ascii(values, 'level')}" + (f" err={err}" if err else "")
    return DeliveryReport(state=state, provider_ref=message_id, detail=detail)


def send_result(status: int, body: str) -> str:
    """The message id of a ``/send`` answer; :class:`ValueError` with Jasmin's error otherwise."""
    match = _SEND_OK.match(body.strip())
    if status == 200 and match:
        return match.group("id")
    raise ValueError(f"Jasmin /send answered {status}: {body.strip()[:200]}")


def _ascii(values: dict[str, bytes], name: str) -> str:
    try:
        return values.get(name, b"").decode("ascii").strip()
    except UnicodeDecodeError:
        raise ParseError(f"parameter {name!r} bukan ASCII / not ASCII", stage="decode") from None
