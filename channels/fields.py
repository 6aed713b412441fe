"""Checks shared by the channels' forms: the citizen web form and the clerk's letter review.

Both take the reporter's identity as typed text and must answer the same way: a NIK checked
against the official region list (the normalizer's own Indonesian and English messages), a phone
number in E.164, an e-mail address, each error as an (Indonesian, English) message placed next
to its field. Empty fields are simply absent; which ones are required is the form's business.
Both also take files, whose names are only labels (:func:`header_text`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from normalizer import InvalidNik, normalize_email, normalize_phone, parse_nik

Message = tuple[str, str]  # (Indonesian, English)

_SURROGATES = re.compile("[\ud800-\udfff]")

# Values a browser sends for a ticked checkbox (and what an API client may write).
CHECKED = frozenset({"1", "on", "ya", "true"})


def text(values: Mapping[str, str], name: str) -> str | None:
    """The field's value without surrounding blanks, its line breaks as ``\n``; None when empty
    or absent. Browsers send a textarea's line breaks as CR LF (HTML, "form submission") but
    count them as one character against its ``maxlength``: counted here the same way, a text
    the browser let through is not refused as too long."""
    value = values.get(name, "").replace("\r\n", "\n").strip()
    return value or None


def header_text(value: str) -> str:
    """A multipart part's name or file name as text UTF-8 can take: RFC 2231's
    ``filename*=utf-7''...`` decodes to lone surrogates, which no page nor stored reference
    could hold (U+FFFD instead; a file name is only a label)."""
    return _SURROGATES.sub("\ufffd", value)


@dataclass(frozen=True, slots=True)
class Identity:
    """The reporter's identity fields as typed (``*_text``) and normalised (None if invalid)."""

    nik: str | None
    phone: str | None
    email: str | None
    phone_text: str | None
    email_text: str | None


def check_identity(
    values: Mapping[str, str],
    errors: dict[str, Message],
    today: date,
    *,
    nik_field: str,
    phone_field: str,
    email_field: str,
    phone_label: str,
) -> Identity:
    """Validate and normalise the NIK, phone and e-mail fields; add a message per wrong field.

    A field that already has an error (a length limit, say) is not checked again.
    """
    nik: str | None = None
    if (nik_text := text(values, nik_field)) and nik_field not in errors:
        result = parse_nik(nik_text, today=today)
        if isinstance(result, InvalidNik):
            errors[nik_field] = (result.message_id, result.message_en)
        else:
            nik = result.nik
    phone: str | None = None
    if (phone_text := text(values, phone_field)) and phone_field not in errors:
        phone = normalize_phone(phone_text)
        if phone is None:
            errors[phone_field] = (
                f"{phone_label} tidak valid, contoh 0812-3456-7890.",
                "Not a valid phone number, e.g. 0812-3456-7890.",
            )
    email: str | None = None
    if (email_text := text(values, email_field)) and email_field not in errors:
        email = normalize_email(email_text)
        if email is None:
            errors[email_field] = (
                "Alamat e-mail tidak valid, contoh nama@contoh.id.",
                "Not a valid e-mail address, e.g. name@example.id.",
            )
    return Identity(nik, phone, email, phone_text, email_text)
