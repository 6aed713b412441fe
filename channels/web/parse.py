"""Pure parser of the JSON complaint API body (``POST /api/v1/complaints``).

The body is a JSON object; ``body`` (the complaint text, "isi laporan") is required. Unknown
fields are refused so that a client's typo is not silently ignored. Messages for citizens come in
Indonesian first, then English.

A multipart submission stores its ``complaint`` JSON part as the body and the references of the
attachments it streamed to the file store in the transport metadata ``attachment_refs`` (a JSON
list written by the route, never by the client).
"""

from __future__ import annotations

import json
from typing import Any

from channels.web.form import attachment_of
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

MAX_TITLE = 300
MAX_BODY = 20_000
_TOP = {"title", "body", "kind", "reporter", "privacy", "location", "agency"}
_REPORTER = {"nik", "name", "phone", "email"}
_PRIVACY = {"anonymous", "confidential"}
_LOCATION = {"text", "latitude", "longitude"}
ATTACHMENT_REFS = "attachment_refs"


def parse_json_complaint(raw: RawInbound) -> ComplaintDraft:
    """Turn the API's JSON body into a complaint draft, or raise :class:`ParseError`."""
    try:
        data = json.loads(raw.body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ParseError(f"JSON tidak valid / invalid JSON: {exc}", stage="decode") from None
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
    priv = _object(obj.get("privacy", {}), "privacy.", _PRIVACY)
    for key, value in priv.items():
        if not isinstance(value, bool):
            raise ParseError(f"privacy.{key} harus true/false / must be a boolean")
    loc = obj.get("location")
    location = None
    if loc is not None:
        loc = _object(loc, "location.", _LOCATION)
        location = Location(
            text=_text(loc, "text", 500),
            latitude=_number(loc, "latitude", -90, 90),
            longitude=_number(loc, "longitude", -180, 180),
        )
    return ComplaintDraft(
        body=body,
        kind=kind,
        title=_text(obj, "title", MAX_TITLE),
        reporter=Reporter(
            nik=_text(rep, "nik", 32),
            name=_text(rep, "name", 200),
            phone=_text(rep, "phone", 32),
            email=_text(rep, "email", 254),
        ),
        privacy=Privacy(
            anonymous=bool(priv.get("anonymous", False)),
            confidential=bool(priv.get("confidential", False)),
        ),
        location=location,
        agency=_text(obj, "agency", 255),
        attachments=_attachments(raw),
    )


def _attachments(raw: RawInbound) -> tuple[Attachment, ...]:
    refs = raw.metadata.get(ATTACHMENT_REFS)
    if not refs:
        return ()
    try:
        items = json.loads(refs)
    except json.JSONDecodeError:
        raise ParseError("referensi lampiran rusak / broken attachment reference") from None
    if not isinstance(items, list):
        raise ParseError("referensi lampiran rusak / broken attachment reference")
    return tuple(attachment_of(item) for item in items)


def _object(value: Any, prefix: str, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ParseError(f"{prefix or 'body'} harus objek JSON / must be a JSON object")
    unknown = sorted(set(value) - allowed)
    if unknown:
        names = ", ".join(prefix + k for k in unknown)
        raise ParseError(f"kolom tidak dikenal / unknown field: {names}")
    return value


def _text(obj: dict[str, Any], key: str, limit: int, required: bool = False) -> str | None:
    value = obj.get(key)
    if value is None:
        if required:
            raise ParseError(f"{key} wajib diisi / {key} is required")
        return None
    if not isinstance(value, str):
        raise ParseError(f"{key} harus teks / {key} must be a string")
    value = value.strip()
    if required and not value:
        raise ParseError(f"{key} wajib diisi / {key} is required")
    if len(value) > limit:
        raise ParseError(f"{key} lebih dari {limit} karakter / longer than {limit} characters")
    return value or None


def _number(obj: dict[str, Any], key: str, low: float, high: float) -> float | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ParseError(f"{key} harus angka {low}..{high} / must be a number in {low}..{high}")
    return float(value)
