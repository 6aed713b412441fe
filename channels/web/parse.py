"""Pure parsers of the JSON API's bodies: a complaint (``POST /api/v1/complaints``) and a
follow-up (``POST /api/v1/complaints/{tracking_id}/followups``).

The body is a JSON object; ``body`` (the complaint text, "isi laporan") is required. Unknown
fields are refused so that a client's typo is not silently ignored. Messages for citizens come in
Indonesian first, then English.

A multipart submission stores its ``complaint`` JSON part as the body and the references of the
attachments it streamed to the file store in the transport metadata ``attachment_refs`` (a JSON
list written by the route, never by the client).
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from channels.dates import latest_today
from channels.web.form import attachment_of, refused_character
from gateway import tracking
from gateway.domain import (
    Attachment,
    ComplaintDraft,
    Kind,
    Location,
    Privacy,
    RawInbound,
    Reporter,
)
from gateway.errors import ParseError
from gateway.http import is_utf8_text
from normalizer import InvalidNik, normalize_email, normalize_phone, parse_nik

MAX_TITLE = 300
MAX_BODY = 20_000
_TOP = {"title", "body", "kind", "reporter", "privacy", "location", "agency"}
_REPORTER = {"nik", "name", "phone", "email"}
_PRIVACY = {"anonymous", "confidential"}
_LOCATION = {"text", "latitude", "longitude"}
_FOLLOWUP = {"body", "followup_code", "privacy", "location"}
MAX_CODE = 20
ATTACHMENT_REFS = "attachment_refs"
# The transport metadata of a follow-up: the tracking ID its request's path names.
FOLLOWUP_OF = "followup_of"


def parse_json_complaint(raw: RawInbound) -> ComplaintDraft:
    """Turn the API's JSON body into a complaint draft, or raise :class:`ParseError`."""
    data = _loads(raw.body)
    obj = _object(data, "", _TOP)
    body = _text(obj, "body", MAX_BODY, required=True)
    assert body is not None
    kind_text = obj.get("kind", Kind.PENGADUAN.value)
    try:
        kind = Kind(kind_text)
    except ValueError:
        raise ParseError(
            "kind harus pengaduan, aspirasi atau informasi / "
            "kind must be pengaduan, aspirasi or informasi"
        ) from None
    rep = _object(obj.get("reporter", {}), "reporter.", _REPORTER)
    return ComplaintDraft(
        body=body,
        kind=kind,
        title=_text(obj, "title", MAX_TITLE),
        reporter=_reporter(rep, latest_today(raw.received_at)),
        privacy=_privacy(obj),
        location=_location(obj),
        agency=_text(obj, "agency", 255),
        attachments=_attachments(raw),
    )


def parse_json_followup(raw: RawInbound) -> ComplaintDraft:
    """Turn a follow-up's JSON body (``POST /api/v1/complaints/{tracking_id}/followups``) into
    a draft about the complaint its path names (the route keeps the ID in the transport
    metadata ``followup_of``), with the follow-up code typed; or raise :class:`ParseError`.

    The intake adds it to that complaint when the code is the ID's; the route refuses a wrong
    code before, so only a complaint the database no longer has would make it one of its own.
    """
    obj = _object(_loads(raw.body), "", _FOLLOWUP)
    body = _text(obj, "body", MAX_BODY, required=True)
    code = _text(obj, "followup_code", MAX_CODE, required=True)
    about = tracking.normalize(raw.metadata.get(FOLLOWUP_OF, ""))
    if about is None:
        raise ParseError("nomor pelacakan tidak sah / invalid tracking ID")
    assert body is not None
    return ComplaintDraft(
        body=body,
        privacy=_privacy(obj),
        location=_location(obj),
        attachments=_attachments(raw),
        about=about,
        about_code=code,
    )


def _privacy(obj: dict[str, Any]) -> Privacy:
    priv = _object(obj.get("privacy", {}), "privacy.", _PRIVACY)
    for key, value in priv.items():
        if not isinstance(value, bool):
            raise ParseError(f"privacy.{key} harus true/false / privacy.{key} must be a boolean")
    return Privacy(
        anonymous=bool(priv.get("anonymous", False)),
        confidential=bool(priv.get("confidential", False)),
    )


def _location(obj: dict[str, Any]) -> Location | None:
    loc = obj.get("location")
    if loc is None:
        return None
    loc = _object(loc, "location.", _LOCATION)
    return Location(
        text=_text(loc, "text", 500, prefix="location."),
        latitude=_number(loc, "latitude", -90, 90, prefix="location."),
        longitude=_number(loc, "longitude", -180, 180, prefix="location."),
    )


def _reporter(rep: dict[str, Any], today: date) -> Reporter:
    """The reporter, each identity checked and normalised as on the form and in Open311: the
    NIK against the region list, the phone number to E.164, the e-mail address lower-cased
    where it may be; a wrong one is refused, naming its field (never passed on as typed)."""
    nik = _text(rep, "nik", 32, prefix="reporter.")
    if nik is not None:
        result = parse_nik(nik, today=today)
        if isinstance(result, InvalidNik):
            raise ParseError(
                f"reporter.nik: {result.message_id} / reporter.nik: {result.message_en}"
            )
        nik = result.nik
    phone = _text(rep, "phone", 32, prefix="reporter.")
    if phone is not None and (phone := normalize_phone(phone)) is None:
        raise ParseError(
            "reporter.phone bukan nomor telepon yang sah, contoh +6281234567890 / "
            "reporter.phone is not a valid phone number, e.g. +6281234567890"
        )
    email = _text(rep, "email", 254, prefix="reporter.")
    if email is not None and (email := normalize_email(email)) is None:
        raise ParseError(
            "reporter.email bukan alamat e-mail yang sah, contoh nama@contoh.id / "
            "reporter.email is not a valid e-mail address, e.g. name@example.id"
        )
    return Reporter(
        nik=nik, name=_text(rep, "name", 200, prefix="reporter."), phone=phone, email=email
    )


def _loads(body: bytes) -> Any:
    """The JSON value of ``body``; :class:`ParseError` for anything the decoder cannot take.

    A UTF-8 byte order mark in front is skipped (RFC 8259 section 8.1: some Windows clients
    send one). Besides malformed JSON (and bytes that are not UTF-8) that is JSON nested deeper
    than the decoder's recursion allows, and an integer longer than Python converts (4300
    digits): a client's mistake like any other, never the server's. The reasons are the
    gateway's own words in both languages, never Python's English; positions are numbers.
    """
    skipped = len(BOM) if body.startswith(BOM) else 0
    try:
        return json.loads(body[skipped:].decode("utf-8"))
    except UnicodeDecodeError as exc:
        at = skipped + exc.start + 1
        raise ParseError(
            f"JSON tidak valid: byte ke-{at} bukan UTF-8 / invalid JSON: byte {at} is not UTF-8",
            stage="decode",
        ) from None
    except json.JSONDecodeError as exc:
        raise ParseError(json_error(exc), stage="decode") from None
    except RecursionError:
        raise ParseError(
            "JSON tidak valid: terlalu dalam bersarang / invalid JSON: nested too deeply",
            stage="decode",
        ) from None
    except ValueError:  # int_max_str_digits
        raise ParseError(
            "JSON tidak valid: angka terlalu panjang / invalid JSON: a number is too long",
            stage="decode",
        ) from None


BOM = b"\xef\xbb\xbf"
# The json module's messages (CPython 3.11 to 3.13), by how they start, in the gateway's words.
_JSON_ERRORS: tuple[tuple[str, str, str], ...] = (
    ("Expecting value", "nilai JSON diharapkan", "a JSON value was expected"),
    (
        "Expecting property name",
        "nama kolom dalam tanda kutip ganda diharapkan",
        "a property name in double quotes was expected",
    ),
    ("Expecting ':'", "tanda ':' diharapkan", "':' was expected"),
    ("Expecting ','", "tanda ',' diharapkan", "',' was expected"),
    ("Unterminated string", "teks tidak ditutup tanda kutip", "unterminated string"),
    (
        "Invalid control character",
        "karakter kontrol di dalam teks",
        "control character in a string",
    ),
    ("Invalid \\u", "escape \\u tidak sah", "invalid \\u escape"),
    ("Invalid \\escape", "escape '\\' tidak sah", "invalid '\\' escape"),
    ("Extra data", "ada data setelah nilai JSON", "extra data after the JSON value"),
    ("Unexpected UTF-8 BOM", "BOM UTF-8 berlebih", "one UTF-8 BOM too many"),
    ("Illegal trailing comma", "koma berlebih sebelum penutup", "trailing comma before the end"),
)


def json_error(exc: json.JSONDecodeError) -> str:
    """The "Indonesian / English" reason of a JSON syntax error, with its line and column."""
    words = next(
        ((id_, en) for start, id_, en in _JSON_ERRORS if exc.msg.startswith(start)),
        ("sintaks salah", "syntax error"),
    )
    return (
        f"JSON tidak valid: {words[0]} (baris {exc.lineno}, kolom {exc.colno})"
        f" / invalid JSON: {words[1]} (line {exc.lineno}, column {exc.colno})"
    )


def _attachments(raw: RawInbound) -> tuple[Attachment, ...]:
    refs = raw.metadata.get(ATTACHMENT_REFS)
    if not refs:
        return ()
    try:
        items = json.loads(refs)
    except (ValueError, RecursionError):
        raise ParseError("referensi lampiran rusak / broken attachment reference") from None
    if not isinstance(items, list):
        raise ParseError("referensi lampiran rusak / broken attachment reference")
    return tuple(attachment_of(item) for item in items)


# Every reason is "Indonesian / English" (:func:`english` keeps the second half), and both halves
# name the field at fault by its path in the body (``reporter.nik``).


def english(reason: str) -> str:
    """The English half of a parser's "Indonesian / English" reason (the whole reason when it
    has none). Split at the first separator only: what a client wrote (an unknown key, say) comes
    after it, and may not cut the reason anywhere else."""
    return reason.split(" / ", 1)[-1]


def _object(value: Any, prefix: str, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        if not prefix:
            raise ParseError(
                "isi permintaan harus objek JSON / the request body must be a JSON object"
            )
        name = prefix.rstrip(".")
        raise ParseError(f"{name} harus objek JSON / {name} must be a JSON object")
    unknown = sorted(set(value) - allowed)
    if unknown:
        names = ", ".join(prefix + k for k in unknown)
        raise ParseError(f"kolom tidak dikenal: {names} / unknown field: {names}")
    return value


def _text(
    obj: dict[str, Any], key: str, limit: int, required: bool = False, prefix: str = ""
) -> str | None:
    name = prefix + key
    value = obj.get(key)
    if value is None:
        if required:
            raise ParseError(f"{name} wajib diisi / {name} is required")
        return None
    if not isinstance(value, str):
        raise ParseError(f"{name} harus teks / {name} must be a string")
    if not is_utf8_text(value):
        # A lone surrogate ("\ud800") is valid JSON but no Unicode text: it could be neither
        # sealed nor published, and the client would get a 202 for a complaint quarantined.
        raise ParseError(f"{name} bukan teks Unicode yang sah / {name} is not valid Unicode text")
    if refusal := refused_character(name, value):
        raise ParseError(refusal)
    value = value.strip()
    if required and not value:
        raise ParseError(f"{name} wajib diisi / {name} is required")
    if len(value) > limit:
        raise ParseError(
            f"{name} lebih dari {limit} karakter / {name} is longer than {limit} characters"
        )
    return value or None


def _number(
    obj: dict[str, Any], key: str, low: float, high: float, prefix: str = ""
) -> float | None:
    name = prefix + key
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ParseError(
            f"{name} harus angka {low}..{high} / {name} must be a number in {low}..{high}"
        )
    return float(value)
