"""The SMS keyword grammar, in Indonesian (pure, no IO).

What a citizen may type to 1708, case and punctuation tolerant::

    [REGION] CEK|STATUS ... <no. lacak> ...   status of a complaint -> NotAComplaint("status-query")
    [REGION] INFO | BANTUAN | HELP    how to use the service    -> NotAComplaint("help")
                                      (HELP, the English word, answered in English)
    [REGION] [RAHASIA] [ANONIM] [NIK|KTP <16 digit>] <isi laporan>  -> ComplaintDraft

* ``REGION`` is an optional leading keyword from a configurable table (``JABAR`` -> ``32``),
  kept as the complaint's ``location.region_code`` and removed from the body. Keywords may be
  several words (``Papua Barat``); the longest one in the table wins. A keyword followed by a
  word that continues a place name (:data:`PLACE_WORDS`: ``Papua Barat``, ``Jakarta Utara``,
  ``Aceh Besar``) is not taken at all unless the longer name is itself in the table: the
  region would be the wrong one, and the body would start with a stray ``Barat``.
* ``NIK 3201...`` or ``KTP 3201...`` (also glued, ``NIK3201...``) may appear anywhere: the
  labelled number is validated with :func:`normalizer.parse_nik`; a valid NIK becomes
  ``reporter.nik`` and is removed from the body (it is personal data and the body may be
  published); an invalid one is left in the text, not stored as a NIK, and the reply says so.
  An unlabelled 16-digit number is left alone, valid or not: a family card (KK) number has the
  same structure, and linking it as the reporter's NIK would be wrong.
* ``RAHASIA`` (confidential: never published) and ``ANONIM`` (identity hidden from the agency)
  set the privacy flags wherever they stand as words; as leading or trailing keywords they are
  removed from the body, inside a sentence they are left as written.
* ``CEK`` / ``STATUS`` is a status query when one of the next :data:`STATUS_WINDOW` words
  is a valid tracking ID (check symbol included), alone or as the two printed groups
  (``K7QM 4XRT9``, ``K7QM-4XRT9``): ``Cek status K7QM4XRT9``, ``cek no.lacak K7QM-4XRT9``,
  ``CEK K7QM4XRT9 terima kasih``. It is a query too when after the keyword there is nothing
  but the words of a query (:data:`QUERY_WORDS`: ``CEK``, ``Cek status laporan saya no
  lacak K7QM4XRT9``) and at most one ID-shaped word: 8 to 10 letters and digits with at least
  one digit, alone or as a group of 4 and the rest (the rest with a digit or without a vowel:
  ``Cek RT05 banjir`` is an address and a word). A valid ID there is found; anything else
  (no ID at all, ``CEK K7QM4XRT8``, ``Cek status K7QM-4XRT``, ``cek K70M4XRT9``: a wrong check
  symbol, a symbol left out or added, a 0 for a Q) is answered "not found": a citizen asking
  for a status never gets a new tracking ID for a "complaint" reading ``CEK``. Anything else
  (``Cek jalan rusak``, ``Status tanah saya``, ``Cek RT05 jalan rusak``, ``Cek RT05 banjir``)
  is a complaint, ``CEK`` included in its body.
* An empty message, or one with nothing but keywords, is a :class:`ParseError` (quarantined);
  so is a body without a single letter (a lone NIK, a bare number): there is nothing to report.
* A body of one word without a region keyword (``p``, ``tes``, ``halo``, ``Banjir``, an
  unknown command such as ``REG`` or ``STOP``) is no report either:
  ``NotAComplaint("too-short")``, recorded and answered with how to report, not filed for an
  agency. ``JABAR banjir`` says what and where: a complaint.
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
HELP_WORDS = frozenset({"INFO", "BANTUAN", "HELP"})
ENGLISH_HELP_WORDS = frozenset({"HELP"})  # the English option: how to report, in English
CONFIDENTIAL_WORD = "RAHASIA"
ANONYMOUS_WORD = "ANONIM"
NIK_LABELS = frozenset({"NIK", "KTP"})  # the words a NIK is read after (see _NIK)
# Every word the grammar reads as a command. A region keyword is read first, so a region
# keyword holding one of them would hide that command: gateway.settings refuses such a table.
COMMAND_WORDS = (
    STATUS_WORDS | HELP_WORDS | NIK_LABELS | frozenset({CONFIDENTIAL_WORD, ANONYMOUS_WORD})
)
# Fewer words than this in a complaint's body without a region keyword are no report ("p",
# "tes", "halo", "Banjir", an unknown command such as "REG"): recorded, answered with how to
# report, not filed. With a region it is ("JABAR banjir": what, and where).
MIN_WORDS = 2
# Words after CEK/STATUS searched for a tracking ID ("cek no. lacak K7QM-4XRT9": the third).
STATUS_WINDOW = 4
# Words of a status query around the ID ("Cek status laporan saya no. lacak ..."): with nothing
# else but an ID-shaped word after CEK/STATUS, the message asks for a status.
QUERY_WORDS = STATUS_WORDS | {"NO", "NOMOR", "NOMER", "LACAK", "NOLACAK", "LAPORAN", "SAYA"}
# Words that continue a place name after a region keyword (Papua Barat, Jakarta Utara, Aceh
# Besar, Maluku Barat Daya, Sulawesi Tenggara, Jakarta Raya). KOTA and KABUPATEN are not here:
# they come before a name ("JABAR Kota Bogor ..."), not after it.
PLACE_WORDS = frozenset(
    {"UTARA", "SELATAN", "BARAT", "TIMUR", "TENGAH", "TENGGARA", "BESAR", "DAYA", "LAUT", "RAYA"}
)

_WORD = re.compile(r"[^\W_]+")
_LETTER = re.compile(r"[^\W\d_]")
# A leading keyword: optional punctuation, the word, then punctuation/space up to the next word.
_LEADING = re.compile(r"^[\W_]*?([^\W_]+)(?:[\W_]+|$)")
_TRAILING = re.compile(r"(?:^|[\W_]+?)([^\W_]+)[\W_]*$")
# "NIK" or "KTP" as a word (or glued to the digits: "NIK3201..."), an optional separator, then
# digit groups joined by one space, dot or dash. "Nikah", "KTPnya" are not labels.
_NIK = re.compile(
    rf"(?<![^\W_])(?:{'|'.join(sorted(NIK_LABELS))})(?![^\W\d_])[\s:.=#-]*(\d+(?:[ .\-]\d+)*)",
    re.IGNORECASE,
)
_GROUP = re.compile(r"\d+")
_NIK_LENGTH = 16
# A tracking ID typed in the two groups it is printed in (tracking.display: 4 + 5 symbols).
_ID_FIRST_GROUP = 4
# Vowels: every Indonesian word has one; a group of an ID without a digit rarely does.
_VOWELS = frozenset("AEIOU")


class Intent(enum.StrEnum):
    """What an SMS asks for."""

    COMPLAINT = "complaint"
    STATUS = "status-query"
    HELP = "help"
    FRAGMENT = "fragment"
    TOO_SHORT = "too-short"  # one word ("p", "tes", "halo", "REG"): no report to file
    NOT_SUBSCRIBER = "not-a-subscriber"  # an operator's or a bank's message to a modem's SIM


@dataclass(frozen=True, slots=True)
class Interpretation:
    """The grammar's answer: the intent and what the reply needs."""

    intent: Intent
    draft: ComplaintDraft | None = None
    tracking_id: str | None = None  # STATUS: the canonical ID, None when it is not valid
    typed: str = ""  # STATUS: the ID as typed, without spaces and dashes ('' when none was)
    nik_rejected: bool = False  # COMPLAINT: a labelled NIK was not valid and was not stored
    english: bool = False  # HELP: asked in English

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
    min_words: int = MIN_WORDS,
) -> Interpretation:
    """Read one SMS; :class:`ParseError` when there is nothing to read. ``min_words``: the
    fewest words a body without a region keyword is a complaint with (a long message joined
    from its parts is one whatever arrived of it: 1)."""
    if not text.strip():
        raise ParseError("SMS kosong / empty SMS", stage="empty")
    table = {" ".join(keyword_words(k)): v for k, v in regions.items()}
    region_code, rest = _region(text, table)
    word, after = _leading(rest)
    if word is not None and word.upper() in HELP_WORDS and not _WORD.search(after):
        return Interpretation(Intent.HELP, english=word.upper() in ENGLISH_HELP_WORDS)
    if word is not None and word.upper() in STATUS_WORDS:
        words = _WORD.findall(after)
        found = _tracking_id(words)
        if found is not None:
            return Interpretation(Intent.STATUS, tracking_id=found, typed=found)
        typed = _query_rest(words)
        if typed is not None:  # a query; its ID may stand after more words than the window
            symbols = "".join(typed)
            return Interpretation(
                Intent.STATUS, tracking_id=tracking.normalize(symbols), typed=symbols
            )
    return _complaint(rest, sender, region_code, default_region, min_words)


def keyword_words(keyword: str) -> list[str]:
    """The words of a region keyword as the grammar matches them (upper case, punctuation
    dropped: ``"Papua-Barat"`` is ``["PAPUA", "BARAT"]``); none: it never matches."""
    return _WORD.findall(keyword.upper())


def _region(text: str, table: Mapping[str, str]) -> tuple[str | None, str]:
    """The region code of the longest leading keyword in ``table`` and the text after it.

    ``(None, text)`` when there is none, or when the word after it continues a place name.
    """
    longest = max((key.count(" ") + 1 for key in table), default=0)
    words: list[tuple[str, str]] = []  # each leading word, upper case, and the text after it
    rest = text
    while len(words) <= longest:
        word, rest = _leading(rest)
        if word is None:
            break
        words.append((word.upper(), rest))
    for n in range(min(longest, len(words)), 0, -1):
        key = " ".join(w for w, _ in words[:n])
        if key in table:
            if n < len(words) and words[n][0] in PLACE_WORDS:
                return None, text
            return table[key], words[n - 1][1]
    return None, text


def _tracking_id(words: list[str]) -> str | None:
    """The first valid tracking ID among the first words, alone or as its two printed groups."""
    for i, word in enumerate(words[:STATUS_WINDOW]):
        found = tracking.normalize(word)
        if found is None and len(word) == _ID_FIRST_GROUP and i + 1 < len(words):
            if len(words[i + 1]) == tracking.LENGTH - _ID_FIRST_GROUP:
                found = tracking.normalize(word + words[i + 1])
        if found is not None:
            return found
    return None


def _query_rest(words: list[str]) -> list[str] | None:
    """The words after CEK/STATUS that are not query words, when they are at most one
    ID-shaped word (an ID maybe mistyped: wrong check symbol, a symbol left out or added, a 0
    for a Q, the group split); None when the message is not a query."""
    rest = [w for w in words if w.upper() not in QUERY_WORDS]
    if not rest:
        return rest
    if len(rest) > 2 or (len(rest) == 2 and len(rest[0]) != _ID_FIRST_GROUP):
        return None
    if len(rest) == 2 and not _id_part(rest[1]):  # "Cek RT05 banjir": an address and a word
        return None
    symbols = "".join(rest)
    if (
        tracking.LENGTH - 1 <= len(symbols) <= tracking.LENGTH + 1
        and symbols.isascii()
        and any(c.isdigit() for c in symbols)
    ):
        return rest
    return None


def _id_part(word: str) -> bool:
    """Whether ``word`` can be the second group of an ID: a digit in it, or no vowel (a word
    has one: "banjir", "macet" after "RT05" are a report, not "K7QM 4XRT9" mistyped)."""
    return any(c.isdigit() for c in word) or not any(c in _VOWELS for c in word.upper())


def _leading(text: str) -> tuple[str | None, str]:
    match = _LEADING.match(text)
    if match is None:
        return None, text
    return match.group(1), text[match.end() :]


def _complaint(
    text: str, sender: str, region_code: str | None, default_region: str, min_words: int
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
    if not _LETTER.search(body):
        raise ParseError("isi laporan kosong / no complaint text", stage="empty")
    if region_code is None and len(_WORD.findall(body)) < min_words:
        return Interpretation(Intent.TOO_SHORT)
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
