"""Decoding of a Kannel 1.4.5 smsbox ``get-url`` request (pure, no IO).

The request is the query string of the ``sms-service`` group's ``get-url`` (see this package's
README for the exact group): ``p=%p&P=%P&b=%b&c=%c&C=%C&I=%I&t=%t&u=%u&i=%i``. A ``post-url``
request (the text in the body, the rest in ``X-Kannel-*`` headers) is first turned into the
same query (:func:`post_url_query`).

Decoding follows what Kannel 1.4.5 does (measured, see the channel README):

* every value is percent-decoded to BYTES, ``+`` being a space; ``%b`` holds the payload's exact
  bytes (double spaces, CR/LF, ``%&"+`` intact);
* the payload's text comes from the charset ``%C`` (``UTF-8``, ``UTF-16BE``, ``8-BIT``) and,
  when it is missing, from the coding ``%c``: 0 (7-bit; smsbox converted it to UTF-8) -> UTF-8,
  2 (UCS-2) -> UTF-16BE, 1 (8-bit data) -> see below. ``UCS-2`` (a name Python does not know)
  and ``UTF-16`` without a BOM are read big-endian, as SMS and RFC 2781 have them;
* 8-bit data (coding 1, charset ``8-BIT``) has no charset of its own. It is decoded as UTF-8
  when the bytes are valid UTF-8 (phones and apps that send "8-bit text" send UTF-8 or ASCII,
  and fakesmsc's ``data`` messages land here), otherwise as ISO-8859-1, which maps each byte to
  one code point and never fails. NULs ending the text are dropped (some SMSCs end
  ``short_message`` like a C string). A payload with control characters other than TAB/CR/LF is
  binary (OTA settings, ringtones, WAP push), not a complaint: :class:`ParseError`
  (quarantined, the raw bytes are kept);
* a non-empty UDH ``%u`` with a concatenation element (IEI ``00``, 8-bit reference, or ``08``,
  16-bit reference) marks a fragment that Kannel could not reassemble in time (Kannel delivers
  reassembled messages with an empty ``%u``);
* a phone may split a UTF-16 surrogate pair (an emoji) between two UCS-2 parts, so such a part
  may start or end with a lone half: as UTF-16BE (``mo-recode = no``), or, recoded by smsbox,
  a low half as the three bytes ``ED B0..BF xx`` (smsbox drops a high half). A part's lone
  surrogates are U+FFFD in its text; the halves at its edges are kept in its
  :class:`~channels.sms.message.Fragment` for joining. A whole message with one is refused.
"""

from __future__ import annotations

import codecs
from collections.abc import Mapping
from dataclasses import dataclass, replace
from urllib.parse import quote, unquote_to_bytes

from channels.sms.message import Bridge, Fragment, SmsMessage
from gateway.errors import ParseError

# Query parameter names used in the get-url (one letter, the Kannel escape without "%").
FIELDS = {
    "p": "sender",
    "P": "receiver",
    "b": "payload",
    "c": "coding",
    "C": "charset",
    "I": "message_id",
    "t": "time",
    "u": "udh",
    "i": "smsc_id",
}

# Kannel's post-url (smsbox.c ``obey_request``, TRANSTYPE_POST_URL; measured on 1.4.5): the
# payload is the body, the rest comes in headers, each the get-url escape named here. The URL's
# escapes are expanded as for get-url; no header carries the message id (%I: in the URL only),
# and X-Kannel-From only with ``send-sender = true`` in the sms-service.
POST_URL_HEADERS = {
    "p": "X-Kannel-From",
    "P": "X-Kannel-To",
    "c": "X-Kannel-Coding",
    "u": "X-Kannel-UDH",
    "i": "X-Kannel-SMSC",
    "t": "X-Kannel-Time",
}

CODING_7BIT = 0
CODING_8BIT = 1
CODING_UCS2 = 2

_IEI_CONCAT_8 = 0x00
_IEI_CONCAT_16 = 0x08
_ALLOWED_CONTROLS = {"\t", "\r", "\n"}
_HIGH_SURROGATES = range(0xD800, 0xDC00)
_LOW_SURROGATES = range(0xDC00, 0xE000)
_UCS2_NAMES = frozenset({"UCS-2", "UCS2", "UCS-2BE", "UCS2BE", "ISO-10646-UCS-2", "CSUNICODE"})
_UTF16_BOMS = (codecs.BOM_UTF16_BE, codecs.BOM_UTF16_LE)


@dataclass(frozen=True, slots=True)
class KannelMO:
    """One mobile-originated message as smsbox delivered it."""

    sender: str
    receiver: str
    text: str
    payload: bytes
    coding: int | None
    charset: str
    message_id: str | None
    time: str | None
    udh: bytes
    smsc_id: str | None
    fragment: Fragment | None

    def message(self) -> SmsMessage:
        """The bridge-neutral view of this MO."""
        return SmsMessage(
            bridge=Bridge.KANNEL,
            sender=self.sender,
            receiver=self.receiver,
            text=self.text,
            message_id=self.message_id,
            fragment=self.fragment,
            smsc=self.smsc_id,
            time=self.time,
        )


def split_query(query: bytes) -> dict[str, bytes]:
    """``a=b&c=d`` to ``{name: raw bytes}``, percent-decoded with ``+`` as space.

    A repeated parameter is refused: it would be ambiguous which one Kannel meant.
    """
    values: dict[str, bytes] = {}
    for pair in query.split(b"&"):
        if not pair:
            continue
        raw_name, _, raw_value = pair.partition(b"=")
        name = _unquote(raw_name).decode("ascii", "replace")
        if name in values:
            raise ParseError(f"parameter {name!r} diulang / repeated", stage="decode")
        values[name] = _unquote(raw_value)
    return values


def post_url_query(query: bytes, headers: Mapping[str, str], body: bytes) -> bytes:
    """A post-url request as the get-url query it stands for: ``query`` (the URL's, escapes
    expanded by smsbox) with each field it lacks taken from the request: ``b`` the body (the
    payload's exact bytes), ``p``, ``P``, ``c``, ``u``, ``i``, ``t`` from their ``X-Kannel-*``
    header (:data:`POST_URL_HEADERS`; ``X-Kannel-UDH`` is URL-encoded binary, as ``%u``), ``C``
    the charset of a ``text/plain`` body (smsbox sends 8-bit data as
    ``application/octet-stream``, with ``X-Kannel-Coding: 1`` and no charset). A field the URL
    has is kept as it is. The result is what :func:`decode_request` reads, and what is stored."""
    present = {_unquote(pair.partition(b"=")[0]) for pair in query.split(b"&") if pair}
    fields: list[bytes] = []

    def add(name: str, value: bytes) -> None:
        if name.encode() not in present:
            fields.append(name.encode() + b"=" + quote(value, safe="").encode("ascii"))

    for name, header in POST_URL_HEADERS.items():
        text = headers.get(header)
        if text is None:
            continue
        value = text.encode("utf-8", "surrogateescape").strip()
        add(name, _unquote(value) if name == "u" else value)
    charset = _content_charset(headers.get("Content-Type", ""))
    if charset:
        add("C", charset.encode("utf-8", "surrogateescape"))
    add("b", body)
    return b"&".join(part for part in (query, *fields) if part)


def _content_charset(content_type: str) -> str:
    """The ``charset`` parameter of a ``text/*`` Content-Type (smsbox quotes it), else ``""``."""
    media, _, params = content_type.partition(";")
    if not media.strip().lower().startswith("text/"):
        return ""
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"').strip()
    return ""


def _unquote(value: bytes) -> bytes:
    return unquote_to_bytes(value.replace(b"+", b" "))


def decode_request(query: bytes) -> KannelMO:
    """Decode a get-url query string; :class:`ParseError` when it cannot be understood."""
    values = split_query(query)
    sender = _ascii(values, "p")
    if not sender:
        raise ParseError("pengirim (%p) kosong / sender missing", stage="decode")
    coding_text = _ascii(values, "c")
    coding: int | None
    if coding_text and coding_text != "-1":  # -1: Kannel's "undefined" (an HTTP SMSC's MO)
        if coding_text not in {"0", "1", "2"}:
            raise ParseError(f"coding {coding_text!r} tidak dikenal / unknown", stage="decode")
        coding = int(coding_text)
    else:
        coding = None
    charset = _ascii(values, "C")
    payload = values.get("b", b"")
    udh = _udh(values.get("u", b""))
    fragment = parse_concatenation(udh)
    if fragment is None:
        text = decode_payload(payload, coding, charset)
    else:
        text, fragment = decode_part(payload, coding, charset, fragment)
    return KannelMO(
        sender=sender,
        receiver=_ascii(values, "P"),
        text=text,
        payload=payload,
        coding=coding,
        charset=charset,
        message_id=_ascii(values, "I") or None,
        time=_ascii(values, "t") or None,
        udh=udh,
        smsc_id=_ascii(values, "i") or None,
        fragment=fragment,
    )


def _ascii(values: dict[str, bytes], name: str) -> str:
    raw = values.get(name, b"")
    try:
        return raw.decode("ascii").strip()
    except UnicodeDecodeError:
        raise ParseError(f"parameter {name!r} bukan ASCII / not ASCII", stage="decode") from None


def _udh(value: bytes) -> bytes:
    """``%u`` is URL-encoded binary; some setups hand it over as hex text: accept both."""
    text = value.strip()
    if text and len(text) % 2 == 0 and all(c in b"0123456789abcdefABCDEF" for c in text):
        return bytes.fromhex(text.decode("ascii"))
    return text


def decode_payload(payload: bytes, coding: int | None, charset: str, errors: str = "strict") -> str:
    """The payload's text, by charset first, then by coding (see the module docstring);
    ``errors`` as for :meth:`bytes.decode` (not for 8-bit data)."""
    name = charset.upper()
    if name == "8-BIT" or (not name and coding == CODING_8BIT):
        return eight_bit(payload)
    if not name:
        name = "UTF-16BE" if coding == CODING_UCS2 else "UTF-8"
    try:
        codec = _codec(name, payload)
    except LookupError:
        raise ParseError(f"charset {charset!r} tidak dikenal / unknown", stage="decode") from None
    try:
        text = payload.decode(codec, errors)
    except UnicodeDecodeError as exc:
        reason = f"isi bukan {name} yang sah / invalid {name}: {exc}"
        raise ParseError(reason, stage="decode") from None
    return sms_text(text)


def _codec(name: str, payload: bytes) -> str:
    """Python's codec for the charset ``name`` (upper case) of ``payload``.

    Python knows no ``UCS-2``: SMS UCS-2 is big-endian (3GPP TS 23.038). Its ``utf-16`` reads
    text without a BOM in the machine's byte order, where RFC 2781 (4.3) says big-endian.
    """
    if name in _UCS2_NAMES:
        return "utf-16-be"
    if name in {"UTF-16", "UTF16"} and payload[:2] not in _UTF16_BOMS:
        return "utf-16-be"
    return codecs.lookup(name).name


def decode_part(
    payload: bytes, coding: int | None, charset: str, fragment: Fragment
) -> tuple[str, Fragment]:
    """A part's text, lone surrogates as U+FFFD, and its fragment with the halves of a pair
    split at its edges (see the module docstring)."""
    return edge_halves(decode_payload(payload, coding, charset, "surrogatepass"), fragment)


def edge_halves(text: str, fragment: Fragment) -> tuple[str, Fragment]:
    """A part's text decoded with lone surrogates kept: the text with U+FFFD for each, and the
    fragment with the halves found at its edges."""
    high = ord(text[-1]) if text and ord(text[-1]) in _HIGH_SURROGATES else None
    low = ord(text[0]) if text and ord(text[0]) in _LOW_SURROGATES else None
    valid = text.encode("utf-16-be", "surrogatepass").decode("utf-16-be", "replace")
    return valid, replace(fragment, high_surrogate=high, low_surrogate=low)


def eight_bit(payload: bytes) -> str:
    """8-bit data as text: UTF-8 when valid, else ISO-8859-1; binary is refused."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        text = payload.decode("iso-8859-1")
    return sms_text(text)


def sms_text(text: str) -> str:
    """A decoded SMS text as every bridge files it: the NULs that end it dropped
    (:func:`drop_terminator`), and :class:`ParseError` when it holds other control characters
    (:func:`refuse_binary`: binary, quarantined). Kannel, Jasmin, the Android app, SMSSync and
    Gammu all pass their text through here, so the same text is treated the same way
    whichever bridge it came through."""
    text = drop_terminator(text)
    refuse_binary(text)
    return text


def drop_terminator(text: str) -> str:
    """``text`` without the NULs that end it. SMPP 3.4 defines ``short_message`` as octets, not
    a C string, yet some SMSCs end it with a NUL all the same: that is no content, and would
    otherwise make a citizen's text "binary". A NUL inside the text still does."""
    return text.rstrip("\x00")


def refuse_binary(text: str) -> None:
    """ParseError when ``text`` holds control characters other than TAB/CR/LF."""
    for char in text:
        if (ord(char) < 0x20 or 0x7F <= ord(char) < 0xA0) and char not in _ALLOWED_CONTROLS:
            raise ParseError(
                f"isi biner (karakter kontrol U+{ord(char):04X}) / binary payload",
                stage="decode",
            )


def parse_concatenation(udh: bytes) -> Fragment | None:
    """The concatenation element of a UDH (with its length octet), or None when there is none."""
    if not udh:
        return None
    length = udh[0]
    if length + 1 != len(udh):
        raise ParseError(f"UDH rusak (panjang) / malformed UDH: {udh.hex()}", stage="udh")
    pos = 1
    found: Fragment | None = None
    while pos < len(udh):
        if pos + 2 > len(udh):
            raise ParseError(f"UDH rusak / malformed UDH: {udh.hex()}", stage="udh")
        iei, iedl = udh[pos], udh[pos + 1]
        data = udh[pos + 2 : pos + 2 + iedl]
        if len(data) != iedl:
            raise ParseError(f"UDH rusak / malformed UDH: {udh.hex()}", stage="udh")
        if iei == _IEI_CONCAT_8 and iedl == 3:
            found = Fragment(reference=data[0], total=data[1], sequence=data[2])
        elif iei == _IEI_CONCAT_16 and iedl == 4:
            reference = int.from_bytes(data[:2], "big")
            found = Fragment(reference=reference, total=data[2], sequence=data[3])
        pos += 2 + iedl
    if found is not None and not 1 <= found.sequence <= found.total:
        raise ParseError(f"UDH: bagian {found.sequence}/{found.total} tidak sah", stage="udh")
    return found
