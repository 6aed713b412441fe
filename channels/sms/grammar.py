"""The SMS keyword grammar, in Indonesian (pure, no IO).

What a citizen may type to 1708, case and punctuation tolerant::

    [REGION] CEK <no. lacak>          status of a complaint     -> NotAComplaint("status-query")
    [REGION] INFO | BANTUAN           how to use the service    -> NotAComplaint("help")
    [REGION] [RAHASIA] [ANONIM] [NIK <16 digit>] <isi laporan>  -> ComplaintDraft

* ``REGION`` is an optional leading keyword from a configurable table (``JABAR`` -> ``32``),
  kept as the complaint's ``location.region_code`` and removed from the body.
* ``NIK 3201...`` may appear anywhere: the labelled number is validated with
  :func:`normalizer.parse_nik`; a valid NIK becomes ``reporter.nik`` and is removed from the
  body (it is personal data and the body may be published); an invalid one is left in the
  text, not stored as a NIK, and the reply says so.
* ``RAHASIA`` (confidential: never published) and ``ANONIM`` (identity hidden from the agency)
  set the privacy flags wherever they stand as words; as leading or trailing keywords they are
  removed from the body, inside a sentence they are left as written.
* ``CEK`` is a status query only when what follows is short (at most 12 letters and digits once
  punctuation is dropped); ``Cek jalan di depan rumah ...`` is a complaint.
* An empty message, or one with nothing but keywords, is a :class:`ParseError` (quarantined).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass

from gateway import tracking
from gateway.domain import (
    ComplaintDraft,
    Location,
    NotAComplaint,
    ParseOutcome,
    Privacy,
    Reporter,
)
from gateway.errors import ParseError
from normalizer import ValidNik, normalize_phone, parse_nik

STATUS_WORDS = frozenset({"CEK", "CEKSTATUS", "STATUS"})
HELP_WORDS = frozenset({"INFO", "BANTUAN"})
CONFIDENTIAL_WORD = "RAHASIA"
ANONYMOUS_WORD = "ANONIM"
MAX_QUERY_SYMBOLS = 12

_WORD = re.compile(r"[^\W_]+")
# A leading keyword: optional punctuation, the word, then punctuation/space up to the next word.
_LEADING = re.compile(r"^[\W_]*?([^\W_]+)(?:[\W_]+|$)")
_TRAILING = re.compile(r"(?:^|[\W_]+?)([^\W_]+)[\W_]*$")
# "NIK" as a word, an optional separator, then digit groups joined by one space, dot or dash.
_NIK = re.compile(r"(?<![^\W_])NIK(?![^\W_])[\s:.=#-]*(\d+(?:[ .\-]\d+)*)", re.IGNORECASE)
_GROUP = re.compile(r"\d+")
_NIK_LENGTH = 16


class Intent(enum.StrEnum):
    """What an SMS asks for."""

    COMPLAINT = "complaint"
    STATUS = "status-query"
    HELP = "help"
    FRAGMENT = "fragment"


@dataclass(frozen=True, slots=True)
class Interpretation:
    """The grammar's answer: the intent and what the reply needs."""

    intent: Intent
    draft: ComplaintDraft | None = None
    tracking_id: str | None = None  # STATUS: the canonical ID, None when it is not valid
    nik_rejected: bool = False  # COMPLAINT: a labelled NIK was not valid and was not stored

    @property
    def outcome(self) -> ParseOutcome:
        """The parse outcome for the intake port."""
        if self.intent is Intent.COMPLAINT:
            assert self.draft is not None
            return self.draft
        return NotAComplaint(self.intent.value)


def interpret(
    text: str,
    sender: str,
    regions: Mapping[str, str],
    default_region: str = "ID",
) -> Interpretation:
    """Read one SMS; :class:`ParseError` when there is nothing to read."""
    if not text.strip():
        raise ParseError("SMS kosong / empty SMS", stage="empty")
    table = {k.upper(): v for k, v in regions.items()}
    rest = text
    region_code: str | None = None
    word, after = _leading(rest)
    if word is not None and word.upper() in table:
        region_code = table[word.upper()]
        rest = after
    word, after = _leading(rest)
    if word is not None and word.upper() in HELP_WORDS and not _WORD.search(after):
        return Interpretation(Intent.HELP)
    if word is not None and word.upper() in STATUS_WORDS:
        symbols = "".join(_WORD.findall(after))
        if len(symbols) <= MAX_QUERY_SYMBOLS:
            return Interpretation(Intent.STATUS, tracking_id=tracking.normalize(symbols))
    return _complaint(rest, sender, region_code, default_region)


def _leading(text: str) -> tuple[str | None, str]:
    match = _LEADING.match(text)
    if match is None:
        return None, text
    return match.group(1), text[match.end() :]


def _complaint(
    text: str, sender: str, region_code: str | None, default_region: str
) -> Interpretation:
    body, nik, nik_rejected = _take_nik(text)
    confidential = anonymous = False
    # Leading and trailing privacy keywords, in any order, are removed from the body.
    while True:
        word, after = _leading(body)
        upper = word.upper() if word else None
        if upper == CONFIDENTIAL_WORD:
            confidential, body = True, after
        elif upper == ANONYMOUS_WORD:
            anonymous, body = True, after
        else:
            break
    while True:
        match = _TRAILING.search(body)
        upper = match.group(1).upper() if match else None
        if match is not None and upper == CONFIDENTIAL_WORD:
            confidential, body = True, body[: match.start()]
        elif match is not None and upper == ANONYMOUS_WORD:
            anonymous, body = True, body[: match.start()]
        else:
            break
    words = {w.upper() for w in _WORD.findall(body)}
    confidential = confidential or CONFIDENTIAL_WORD in words
    anonymous = anonymous or ANONYMOUS_WORD in words
    body = body.strip()
    if not _WORD.search(body):
        raise ParseError("isi laporan kosong / no complaint text", stage="empty")
    return Interpretation(
        Intent.COMPLAINT,
        draft=ComplaintDraft(
            body=body,
            reporter=Reporter(nik=nik, phone=normalize_phone(sender, default_region)),
            privacy=Privacy(anonymous=anonymous, confidential=confidential),
            location=Location(region_code=region_code) if region_code else None,
        ),
        nik_rejected=nik_rejected,
    )


def _take_nik(text: str) -> tuple[str, str | None, bool]:
    """The text without its first valid labelled NIK, the NIK, and whether one was refused."""
    rejected = False
    for match in _NIK.finditer(text):
        digits = ""
        end = match.start(1)
        for group in _GROUP.finditer(text, match.start(1), match.end(1)):
            digits += group.group()
            end = group.end()
            if len(digits) >= _NIK_LENGTH:
                break
        result = parse_nik(digits) if len(digits) == _NIK_LENGTH else None
        if isinstance(result, ValidNik):
            return _cut(text, match.start(), end), result.nik, False
        rejected = True
    return text, None, rejected


def _cut(text: str, start: int, end: int) -> str:
    """``text`` without ``[start, end)``, joining the two sides with one space at most."""
    left, right = text[:start], text[end:]
    left = left.rstrip(" \t,;:-")
    right = right.lstrip(" \t,;:.-")
    if left and right and not left[-1].isspace() and not right[0].isspace():
        return f"{left} {right}"
    return left + right
