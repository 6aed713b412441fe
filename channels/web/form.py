"""The citizen form: its fields, their validation, and the pure parser of a stored submission.

The route stores a submission as ``application/x-www-form-urlencoded`` text: the text fields as
the citizen typed them, in the order received, and one ``lampiran`` field per attachment holding
a JSON reference ``{"sha256", "media_type", "size", "filename"}`` to the file already streamed to
the file store (the route drops any ``lampiran`` text the client itself sends, so only it writes
them). :func:`parse_form` turns those bytes, and nothing else, into a
:class:`~gateway.domain.ComplaintDraft`, so a stored submission can be parsed again at any time.

:func:`validate` is the one place the rules live: the route shows its messages next to the
fields, the parser raises them as a :class:`~gateway.errors.ParseError`. Every message comes in
Indonesian and English.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import parse_qsl, urlencode

from channels.dates import latest_today
from channels.fields import CHECKED as _CHECKED
from channels.fields import Message, check_identity
from channels.fields import text as _text
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

# (Indonesian, English)

FIELDS = (
    "judul",
    "isi",
    "klasifikasi",
    "tanggal",
    "lokasi",
    "instansi",
    "nama",
    "nik",
    "hp",
    "email",
    "anonim",
    "rahasia",
)
ATTACHMENT_FIELD = "lampiran"
CONTENT_TYPE = "application/x-www-form-urlencoded"

# The form's classification values and the canonical kind each stands for.
CLASSIFICATIONS: Mapping[str, Kind] = {
    "pengaduan": Kind.PENGADUAN,
    "aspirasi": Kind.ASPIRASI,
    "permintaan-informasi": Kind.INFORMASI,
}
LIMITS: Mapping[str, int] = {
    "judul": 300,
    "isi": 20_000,
    "lokasi": 500,
    "instansi": 255,
    "nama": 200,
    "nik": 32,
    "hp": 32,
    "email": 254,
}
MIN_BODY = 10
_SHA256 = re.compile(r"[0-9a-f]{64}")
# A date as an Indonesian writes it, day first: what a browser without a date picker sends.
_DAY_FIRST = re.compile(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})")


def _date(text: str) -> date:
    """``2026-11-20`` (a date picker's value) or ``20/11/2026``; :class:`ValueError` if none."""
    if found := _DAY_FIRST.fullmatch(text):
        day, month, year = (int(part) for part in found.groups())
        return date(year, month, day)
    return date.fromisoformat(text)


@dataclass(frozen=True, slots=True)
class FormData:
    """A submission that passed validation, with normalised identity values."""

    title: str
    body: str
    kind: Kind
    occurred_on: date | None
    location: str | None
    agency: str | None
    name: str | None
    nik: str | None
    phone: str | None
    email: str | None
    anonymous: bool
    confidential: bool


def first_values(pairs: Sequence[tuple[str, str]]) -> dict[str, str]:
    """The first value of each known text field (a browser sends each once)."""
    out: dict[str, str] = {}
    for key, value in pairs:
        if key in FIELDS and key not in out:
            out[key] = value
    return out


def validate(fields: Mapping[str, str], today: date) -> tuple[FormData | None, dict[str, Message]]:
    """Check a submission; the data when valid, else a message for each wrong field.

    ``today`` is the latest date that is today anywhere in Indonesia
    (:func:`channels.dates.latest_today`): the date it happened may not be after it.
    """
    errors: dict[str, Message] = {}
    # A line break pasted from an office program may come as a vertical tab or a form feed
    # (PowerPoint's and Word's manual breaks): a line break to the citizen, never an error
    # naming a character they cannot see.
    fields = {k: v.translate(PASTED_BREAKS) for k, v in fields.items()}
    for name, limit in LIMITS.items():
        # A line break counts once, as the browser's maxlength counts it (see channels.fields).
        if len(fields.get(name, "").replace("\r\n", "\n")) > limit:
            errors[name] = (f"Paling banyak {limit} karakter.", f"At most {limit} characters.")
    title = _text(fields, "judul")
    if title is None:
        errors.setdefault("judul", ("Judul laporan wajib diisi.", "A title is required."))
    body = _text(fields, "isi")
    if body is None or len(body) < MIN_BODY:
        errors.setdefault(
            "isi",
            (
                f"Isi laporan wajib diisi, paling sedikit {MIN_BODY} karakter.",
                f"Describe the matter in at least {MIN_BODY} characters.",
            ),
        )
    kind = CLASSIFICATIONS.get(fields.get("klasifikasi", ""))
    if kind is None:
        errors["klasifikasi"] = (
            "Pilih klasifikasi: pengaduan, aspirasi atau permintaan informasi.",
            "Choose a classification: complaint, aspiration or request for information.",
        )
    occurred_on = None
    if when := _text(fields, "tanggal"):
        try:
            occurred_on = _date(when)
        except ValueError:
            errors["tanggal"] = ("Tanggal tidak valid (HH/BB/TTTT).", "Not a date (DD/MM/YYYY).")
        else:
            if occurred_on > today:
                errors["tanggal"] = (
                    "Tanggal kejadian tidak boleh di masa depan.",
                    "The date cannot be in the future.",
                )
    anonymous = fields.get("anonim", "").lower() in _CHECKED
    confidential = fields.get("rahasia", "").lower() in _CHECKED
    reporter_name = _text(fields, "nama")
    if reporter_name is None and not anonymous:
        errors.setdefault(
            "nama",
            (
                "Nama wajib diisi (atau centang Anonim).",
                "Your name is required (or tick Anonymous).",
            ),
        )
    who = check_identity(
        fields,
        errors,
        today,
        nik_field="nik",
        phone_field="hp",
        email_field="email",
        phone_label="Nomor HP",
    )
    nik, phone, email = who.nik, who.phone, who.email
    if who.phone_text is None and who.email_text is None:
        errors["hp"] = (
            "Isi nomor HP atau e-mail agar kami dapat mengabarkan tindak lanjut.",
            "Give a phone number or an e-mail address so that we can tell you what happens.",
        )
    for name in FIELDS:
        if "\x00" in fields.get(name, ""):
            # "%00" decodes to U+0000, which PostgreSQL's text columns cannot hold: the
            # complaint would be received and quarantined instead of filed.
            errors[name] = (
                "Teks berisi karakter yang tidak sah (NUL).",
                "The text holds a character that is not allowed (NUL).",
            )
        elif control := control_character(fields.get(name, "")):
            errors[name] = (
                f"Teks berisi karakter kontrol yang tidak sah ({control}).",
                f"The text holds a control character that is not allowed ({control}).",
            )
    if errors or title is None or body is None or kind is None:
        return None, errors
    return (
        FormData(
            title=title,
            body=body,
            kind=kind,
            occurred_on=occurred_on,
            location=_text(fields, "lokasi"),
            agency=_text(fields, "instansi"),
            name=reporter_name,
            nik=nik,
            phone=phone,
            email=email,
            anonymous=anonymous,
            confidential=confidential,
        ),
        errors,
    )


# C0 control characters but tab, line feed and carriage return: no text a citizen means to
# send holds them, and ESC (U+001B) and the like reach the staff's terminals and exports as they
# are. Refused naming the field, as NUL is, never silently removed from a complaint's text.
_CONTROL = re.compile("[\x01-\x08\x0b\x0c\x0e-\x1f]")
PASTED_BREAKS = str.maketrans({"\x0b": "\n", "\x0c": "\n"})


def control_character(text: str) -> str | None:
    """The first C0 control character of ``text`` other than NUL, tab, LF and CR, as
    ``U+001B``; None when it has none."""
    found = _CONTROL.search(text)
    return f"U+{ord(found.group()):04X}" if found else None


def refused_character(name: str, text: str) -> str | None:
    """Why field ``name`` of the API or Open311 is refused for a character in ``text`` ("NUL"
    or :func:`control_character`), Indonesian / English; None when it holds none. NUL
    ("\u0000", "%00") is valid JSON and form encoding, but PostgreSQL's text columns cannot
    hold it: the request was answered 2xx while the message went to quarantine, never filed."""
    if "\x00" in text:
        return f"{name} berisi karakter NUL / {name} contains a NUL character"
    if control := control_character(text):
        return (
            f"{name} berisi karakter kontrol {control} / {name} contains a control character"
            f" {control}"
        )
    return None


def attachment_fields(attachment: Attachment) -> dict[str, Any]:
    """The fields of a reference to a stored file (what :func:`attachment_ref` writes)."""
    return {
        "sha256": attachment.sha256,
        "media_type": attachment.media_type,
        "size": attachment.size,
        "filename": attachment.filename,
    }


def attachment_ref(attachment: Attachment) -> str:
    """The JSON reference to a stored file that the route writes into the stored body."""
    return json.dumps(attachment_fields(attachment), separators=(",", ":"), sort_keys=True)


def attachment_of(data: Any) -> Attachment:
    """The :class:`Attachment` of reference fields read back; :class:`ParseError` if broken."""
    try:
        sha, media_type, size = data["sha256"], data["media_type"], data["size"]
        filename = data.get("filename")
    except (TypeError, KeyError, AttributeError):
        raise ParseError("referensi lampiran rusak / broken attachment reference") from None
    if not (
        isinstance(sha, str)
        and _SHA256.fullmatch(sha)
        and isinstance(media_type, str)
        and isinstance(size, int)
        and size >= 0
        and (filename is None or isinstance(filename, str))
    ):
        raise ParseError("referensi lampiran rusak / broken attachment reference")
    return Attachment(sha256=sha, media_type=media_type, size=size, filename=filename)


def parse_attachment_ref(text: str) -> Attachment:
    """The :class:`Attachment` of a reference written by :func:`attachment_ref`."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        raise ParseError("referensi lampiran rusak / broken attachment reference") from None
    return attachment_of(data)


def encode_submission(pairs: Sequence[tuple[str, str]], attachments: Sequence[Attachment]) -> bytes:
    """The bytes stored as the raw inbound of one form submission."""
    fields = [(k, v) for k, v in pairs if k in FIELDS]
    fields += [(ATTACHMENT_FIELD, attachment_ref(a)) for a in attachments]
    return urlencode(fields).encode("ascii")


def parse_form(raw: RawInbound) -> ComplaintDraft:
    """Turn a stored form submission into a complaint draft, or raise :class:`ParseError`."""
    try:
        pairs = parse_qsl(raw.body.decode("ascii"), keep_blank_values=True, strict_parsing=True)
    except UnicodeDecodeError as exc:  # never Python's English in a reason
        at = exc.start + 1
        raise ParseError(
            f"isian formulir rusak: byte ke-{at} bukan ASCII"
            f" / malformed form body: byte {at} is not ASCII",
            "decode",
        ) from None
    except ValueError:
        raise ParseError(
            "isian formulir rusak: pasangan nama=nilai tidak sah"
            " / malformed form body: a name=value pair is not valid",
            "decode",
        ) from None
    data, errors = validate(first_values(pairs), latest_today(raw.received_at))
    if data is None:
        reasons = "; ".join(f"{name}: {msg[0]} / {name}: {msg[1]}" for name, msg in errors.items())
        raise ParseError(reasons)
    attachments = tuple(parse_attachment_ref(v) for k, v in pairs if k == ATTACHMENT_FIELD)
    return ComplaintDraft(
        body=data.body,
        kind=data.kind,
        title=data.title,
        reporter=Reporter(nik=data.nik, name=data.name, phone=data.phone, email=data.email),
        privacy=Privacy(anonymous=data.anonymous, confidential=data.confidential),
        location=Location(text=data.location) if data.location else None,
        attachments=attachments,
        occurred_on=data.occurred_on,
        agency=data.agency,
    )
