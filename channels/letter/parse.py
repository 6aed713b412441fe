"""The reviewed letter: its fields, their validation, and the pure parser ``letter.review``.

When the clerk confirms a letter, the route stores as the raw inbound message a JSON document
holding exactly what was confirmed: the field values as the clerk left them, the scans as stored
(file store references with their SHA-256) and who entered it::

    {"draft_id": "...", "entered_by": "siti", "pages": 2,
     "values": {"sender_name": "...", "nik": "...", "subject": "...", "body": "...", ...},
     "scans": [{"sha256": "...", "media_type": "application/pdf", "size": 1234,
                "filename": "surat.pdf"}]}

:func:`parse_review` turns those bytes, and nothing else, into a
:class:`~gateway.domain.ComplaintDraft`, so ``quarantine replay`` can parse a stored letter
again. :func:`validate` is the one place the rules live: the review page shows its messages next
to the fields (nothing is sent until they are right), the parser raises them as a
:class:`~gateway.errors.ParseError`. Every message comes in Indonesian and English.

Mapping to the canonical complaint: perihal (subject) is the title, the body of the letter is
the body, the addressee ("Kepada Yth. Bupati ...") is the agency, the sender is the reporter
(NIK, name, phone in E.164, e-mail), the scans are the attachments. The date and place of the
letter and the sender's postal address are not fields of the contract: the route puts them in
the message's transport metadata, which reaches the routing core as ``source``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from channels.fields import CHECKED as _CHECKED
from channels.fields import Message, check_identity
from channels.fields import text as _text
from gateway import tracking
from gateway.domain import Attachment, ComplaintDraft, Kind, Privacy, RawInbound, Reporter
from gateway.errors import ParseError

PARSER_NAME = "letter.review"
CONTENT_TYPE = "application/json"

# The fields the extraction gives (channels.letter.extract.LetterFields), in the order of the
# review page, then the ones only the clerk fills in.
EXTRACTED = (
    "sender_name",
    "nik",
    "address",
    "phone",
    "letter_date",
    "letter_place",
    "addressee",
    "subject",
    "body",
)
# about: the tracking ID of the citizen's earlier report this letter adds to (the clerk types it
# from the receipt or SMS the citizen shows): added to that report when the clerk checked the
# sender's NIK against the KTP and the report carries that NIK (README, "Follow-ups").
TEXT_FIELDS = (*EXTRACTED[:4], "email", *EXTRACTED[4:], "about")
# nik_checked: the clerk checked the NIK against the sender's KTP (the card at the desk, or the
# copy sent with the letter, as the SOP's paper form asks).
CHOICE_FIELDS = ("kind", "anonymous", "confidential", "nik_checked")
FIELDS = (*TEXT_FIELDS, *CHOICE_FIELDS)
LIMITS: Mapping[str, int] = {
    "sender_name": 200,
    "nik": 32,
    "address": 500,
    "phone": 32,
    "email": 254,
    "letter_date": 10,
    "letter_place": 100,
    "addressee": 255,
    "subject": 300,
    "body": 20_000,
    "about": 20,
}
MIN_BODY = 10
KINDS: Mapping[str, Kind] = {k.value: k for k in Kind}
_SHA256 = re.compile(r"[0-9a-f]{64}")
# The letter may be dated "today" in Indonesia (UTC+7 to +9) while it is still yesterday in UTC.
_DATE_SLACK = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Scan:
    """One scanned file of a letter, as stored in the file store."""

    sha256: str
    media_type: str
    size: int
    filename: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The reference as written into drafts and raw messages."""
        return {
            "sha256": self.sha256,
            "media_type": self.media_type,
            "size": self.size,
            "filename": self.filename,
        }

    @classmethod
    def from_json(cls, data: Any) -> Scan:
        """A reference read back; :class:`ParseError` when it is broken."""
        if not isinstance(data, Mapping):
            raise ParseError("referensi pindaian rusak / broken scan reference")
        sha, media_type, size = data.get("sha256"), data.get("media_type"), data.get("size")
        filename = data.get("filename")
        if not (
            isinstance(sha, str)
            and _SHA256.fullmatch(sha)
            and isinstance(media_type, str)
            and isinstance(size, int)
            and size >= 0
            and (filename is None or isinstance(filename, str))
        ):
            raise ParseError("referensi pindaian rusak / broken scan reference")
        return cls(sha, media_type, size, filename)


@dataclass(frozen=True, slots=True)
class ReviewedLetter:
    """A letter whose fields passed validation, identity values normalised."""

    body: str
    subject: str | None
    kind: Kind
    sender_name: str | None
    nik: str | None
    phone: str | None
    email: str | None
    address: str | None
    letter_date: date | None
    letter_place: str | None
    addressee: str | None
    anonymous: bool
    confidential: bool
    nik_checked: bool = False
    about: str | None = None  # the tracking ID of an earlier report it adds to


def validate(
    values: Mapping[str, str], today: date
) -> tuple[ReviewedLetter | None, dict[str, Message]]:
    """Check the reviewed fields; the letter when valid, else a message for each wrong field."""
    errors: dict[str, Message] = {}
    for name, limit in LIMITS.items():
        if len(values.get(name, "")) > limit:
            errors[name] = (f"Paling banyak {limit} karakter.", f"At most {limit} characters.")
    body = _text(values, "body")
    if body is None or len(body) < MIN_BODY:
        errors.setdefault(
            "body",
            (
                f"Isi surat wajib diisi, paling sedikit {MIN_BODY} karakter.",
                f"The body of the letter is required, at least {MIN_BODY} characters.",
            ),
        )
    kind = KINDS.get(values.get("kind") or Kind.PENGADUAN.value)
    if kind is None:
        errors["kind"] = (
            "Pilih klasifikasi: pengaduan, aspirasi atau informasi.",
            "Choose a classification: pengaduan, aspirasi or informasi.",
        )
    anonymous = values.get("anonymous", "").lower() in _CHECKED
    confidential = values.get("confidential", "").lower() in _CHECKED
    sender_name = _text(values, "sender_name")
    if sender_name is None and not anonymous:
        errors.setdefault(
            "sender_name",
            (
                "Nama pengirim wajib diisi (atau centang Anonim untuk surat tanpa nama).",
                "The sender's name is required (or tick Anonymous for an unsigned letter).",
            ),
        )
    who = check_identity(
        values,
        errors,
        today,
        nik_field="nik",
        phone_field="phone",
        email_field="email",
        phone_label="Nomor telepon",
    )
    nik, phone, email = who.nik, who.phone, who.email
    nik_checked = values.get("nik_checked", "").lower() in _CHECKED
    if nik_checked and nik is None and "nik" not in errors:
        errors["nik"] = (
            "Isi NIK yang dicocokkan dengan KTP, atau hapus centang NIK sesuai KTP.",
            "Fill in the NIK checked against the KTP, or untick NIK matches the KTP.",
        )
    about = None
    if (typed := _text(values, "about")) and "about" not in errors:
        about = tracking.normalize(typed)
        if about is None:
            errors["about"] = (
                "Nomor lacak tidak valid: periksa lagi 9 hurufnya (contoh K7QM-4XRT9), atau "
                "kosongkan.",
                "Not a valid tracking ID: check its 9 characters (e.g. K7QM-4XRT9), or leave it "
                "empty.",
            )
    letter_date: date | None = None
    if (when := _text(values, "letter_date")) and "letter_date" not in errors:
        try:
            letter_date = date.fromisoformat(when)
        except ValueError:
            errors["letter_date"] = (
                "Tanggal tidak valid (TTTT-BB-HH).",
                "Not a date (YYYY-MM-DD).",
            )
        else:
            if letter_date > today + _DATE_SLACK:
                errors["letter_date"] = (
                    "Tanggal surat tidak boleh setelah surat diterima.",
                    "The letter cannot be dated after it was received.",
                )
    if errors or body is None or kind is None:
        return None, errors
    return (
        ReviewedLetter(
            body=body,
            subject=_text(values, "subject"),
            kind=kind,
            sender_name=sender_name,
            nik=nik,
            phone=phone,
            email=email,
            address=_text(values, "address"),
            letter_date=letter_date,
            letter_place=_text(values, "letter_place"),
            addressee=_text(values, "addressee"),
            anonymous=anonymous,
            confidential=confidential,
            nik_checked=nik_checked,
            about=about,
        ),
        errors,
    )


def clean_values(values: Mapping[str, str]) -> dict[str, str]:
    """Only the known fields, as text (what a draft saves and a confirmation stores)."""
    return {name: str(values.get(name, "")) for name in FIELDS if values.get(name) is not None}


def encode_review(
    draft_id: str,
    values: Mapping[str, str],
    scans: Sequence[Scan],
    entered_by: str,
    pages: int,
) -> bytes:
    """The bytes stored as the raw inbound message of a confirmed letter."""
    document = {
        "draft_id": draft_id,
        "entered_by": entered_by,
        "pages": pages,
        "values": clean_values(values),
        "scans": [s.as_json() for s in scans],
    }
    return json.dumps(document, ensure_ascii=False, sort_keys=True).encode("utf-8")


def decode_review(body: bytes) -> tuple[str, dict[str, str]]:
    """Who confirmed a letter and the values sent: the two of :func:`encode_review`'s fields
    the desk reads back (a confirmation committed but not recorded on its draft)."""
    document = json.loads(body.decode("utf-8"))
    return str(document.get("entered_by", "")), clean_values(document["values"])


def source_metadata(letter: ReviewedLetter) -> dict[str, str]:
    """What the letter says that the contract has no field for (goes into ``source``)."""
    extra = {
        "letter_date": letter.letter_date.isoformat() if letter.letter_date else None,
        "letter_place": letter.letter_place,
        "sender_address": letter.address,
        "nik_checked": "ktp" if letter.nik_checked else None,
    }
    return {k: v for k, v in extra.items() if v}


def parse_review(raw: RawInbound) -> ComplaintDraft:
    """Turn a stored confirmation into a complaint draft, or raise :class:`ParseError`."""
    try:
        document = json.loads(raw.body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ParseError(f"JSON tidak valid / invalid JSON: {exc}", "decode") from None
    values = document.get("values") if isinstance(document, dict) else None
    scans = document.get("scans") if isinstance(document, dict) else None
    if not isinstance(values, dict) or not isinstance(scans, list):
        raise ParseError("values dan scans wajib ada / values and scans are required", "decode")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in values.items()):
        raise ParseError("values harus teks / values must be text", "decode")
    letter, errors = validate(values, raw.received_at.date())
    if letter is None:
        raise ParseError("; ".join(f"{n}: {m[0]} / {m[1]}" for n, m in errors.items()))
    attachments = tuple(
        Attachment(s.sha256, s.media_type, s.size, s.filename)
        for s in (Scan.from_json(item) for item in scans)
    )
    return ComplaintDraft(
        body=letter.body,
        kind=letter.kind,
        title=letter.subject,
        reporter=Reporter(
            nik=letter.nik, name=letter.sender_name, phone=letter.phone, email=letter.email
        ),
        privacy=Privacy(anonymous=letter.anonymous, confidential=letter.confidential),
        attachments=attachments,
        agency=letter.addressee,
        about=letter.about,
    )
