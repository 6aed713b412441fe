"""Telephone numbers as Indonesians write them, normalised to E.164.

One subscriber is written many ways: ``0812-3456-7890`` (national, trunk
prefix 0), ``+62 812 3456 7890``, ``62812...`` (the WhatsApp habit: country
code without "+"), ``0062812...`` (the international call prefix 00 spelled
out), ``(0231) 123456`` (landline with area code), ``+62-21-5551234``,
``+62 (0) 812...``.  All of them become the single E.164 string
``+6281234567890`` (ITU-T Recommendation E.164), which is what the rest of
the gateway stores and compares.

Parsing and validity come from ``phonenumbers``, the Python port of Google's
libphonenumber, whose metadata knows Indonesia's numbering plan (mobile
prefixes, area codes, lengths).  This module only adds the Indonesian habits
that the library does not resolve on its own, each marked where it is done.
A number is accepted only when libphonenumber says it is *valid* (right
length and a prefix in use), not merely *possible*.
"""

from __future__ import annotations

import functools
import re
import unicodedata

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat

__all__ = ["find_phones", "mask_phone", "normalize_phone"]

# Indonesia's country calling code (ITU-T E.164 assigned codes list).
_ID_CC = "62"
# International call prefixes as written from Indonesia.  libphonenumber's
# metadata for ID lists only 008/009 ("00[89]"), so "0062..." and "001 65 ..."
# fail there.  We also accept the operators' other IDD access codes 001 and
# 007, and the bare 00 that ITU-T Recommendation E.164 (and most of the world)
# uses and that people type; longer prefixes are tried first.
_IDD_PREFIXES = ("001", "007", "008", "009", "00")


def _parse_valid(candidate: str, region: str) -> str | None:
    try:
        number = phonenumbers.parse(candidate, region)
    except NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


# An Indonesian number written as bare digits: "+62812...", "62812..." or "0812...". The part
# after the country code or trunk 0 is the national significant number as it stands.
_PLAIN_ID = re.compile(r"(?:\+?62|0)([1-9][0-9]{5,12})")


@functools.lru_cache(maxsize=8192)
def normalize_phone(text: str, default_region: str = "ID") -> str | None:
    """Return the E.164 form of a written phone number, or None when it is not a valid number."""
    # Cached: the same sender writes again, and one web request needs its number twice (rate
    # limit and intake); libphonenumber's parse is the costly part of the intake's own work.
    if default_region == "ID":
        plain = _PLAIN_ID.fullmatch(text)
        if plain is not None:
            # What SMS gateways and the web form send (every SMS carries its sender like this):
            # libphonenumber's validity check on the number built directly, without its parse.
            # Only a valid number is answered here; anything else takes the general path.
            national = plain.group(1)
            number = phonenumbers.PhoneNumber(country_code=62, national_number=int(national))
            if phonenumbers.is_valid_number(number):
                return "+62" + national
    return _normalize(text, default_region, strict=False)


# A letter among the digits ("0812 34S6 7890", "08123456789O", "0812-3456-78l0": an S for a 5,
# an O for a 0, an l for a 1) is a mistyped digit, not a separator: libphonenumber drops it and
# answers a number one digit shorter, another subscriber's, whose person the identity graph would
# then link to this citizen. Such a number is refused (the web form asks for it again; a letter's
# reader corrects the look-alike digits itself), and so is one letter standing after it
# ("0812 3456 789 O"). Letters before the first digit lose none ("nohp0812...", "O812...": the
# digits after them are the number as written), nor do words after the number ("(WA)",
# "7890WA") or an extension at its end ("ext. 12", "x12").
_EXTENSION = re.compile(r"\s*(?:ext\.?|extn\.?|x)\s*\d{1,7}\s*$", re.I)
_LETTER_IN_NUMBER = re.compile(
    r"\d[^\W\d_](?![^\W\d_])|\d\W*[^\W\d_]\D*\d|\d\W*\b[^\W\d_]\b\W*$"
)


def _normalize(text: str, default_region: str, *, strict: bool) -> str | None:
    """normalize_phone; ``strict`` refuses a leading 62 read as a national number (free text)."""
    # NFKC folds full-width digits and plus signs typed on some phone keyboards.
    raw = unicodedata.normalize("NFKC", text).strip()
    raw = re.sub(r"^(?:tel|telp|hp|wa|sms)\s*[:.]?\s*", "", raw, flags=re.I)
    if not raw or len(raw) > 40:
        return None
    if _LETTER_IN_NUMBER.search(_EXTENSION.sub("", raw)):
        return None
    digits = re.sub(r"\D", "", raw)
    if not 5 <= len(digits) <= 17:
        return None
    if raw.startswith("+"):
        return _parse_valid(raw, default_region)
    if default_region == "ID":
        for idd in _IDD_PREFIXES:
            # "0062 812 ..." and "001 65 ...": an international prefix spelled out.
            if digits.startswith(idd):
                found = _parse_valid("+" + digits[len(idd) :], default_region)
                if found:
                    return found
        if digits.startswith(_ID_CC):
            # "62812..." without "+": Indonesians writing a national number always
            # keep the trunk 0 ("0622 ..." for Pematangsiantar), so a leading 62 is
            # the country code, even when the rest would also be a valid area code.
            found = _parse_valid("+" + digits, default_region)
            if found or strict:
                return found
    return _parse_valid(raw, default_region)


# A phone-like run: optional "+", digit groups joined by one separator (a
# space, or a dot or dash with optional spaces) and parentheses around an area
# code; not glued to a digit or "+" before, nor to a letter or digit after
# ("0812345678O" with a letter O is a mistyped number, not a shorter one).
_PHONE_RUN = re.compile(
    r"(?<![\d+])\+?\(?\d+\)?(?:(?:[ \u00a0]?[.\-][ \u00a0]?|[ \u00a0])\(?\d+\)?)*(?![^\W_])"
)
_GROUP = re.compile(r"\+?\(?\d+\)?")


def find_phones(text: str, default_region: str = "ID") -> list[str]:
    """Find phone numbers in free text and return their E.164 forms, in order, without repeats."""
    text = unicodedata.normalize("NFKC", text)
    found: list[str] = []
    for run in _PHONE_RUN.finditer(text):
        groups = _GROUP.findall(run.group())
        start = 0
        while start < len(groups):
            # Longest run of whole groups, from this group on, that is a valid
            # number: splits "0812 3456 7890 0813 1111 2222" into two numbers.
            best: tuple[int, str] | None = None
            digits = ""
            for end in range(start, len(groups)):
                digits += re.sub(r"\D", "", groups[end])
                if len(digits) > 17:
                    break
                head = groups[start]
                # Free text is full of numbers (dates, amounts, account and NIK
                # numbers): only a run written the way phone numbers are written,
                # starting with "+", "0" or "62", is considered.
                if not (head.startswith(("+", "0", "(0")) or digits.startswith(_ID_CC)):
                    break
                e164 = _normalize(" ".join(groups[start : end + 1]), default_region, strict=True)
                if e164:
                    best = (end, e164)
            if best is None:
                start += 1
                continue
            end, e164 = best
            if e164 not in found:
                found.append(e164)
            start = end + 1
    return found


def mask_phone(e164: str) -> str:
    """Mask the middle digits of an E.164 number for display and logs (+62812*****890)."""
    try:
        number = phonenumbers.parse(e164, None)
    except NumberParseException as exc:
        raise ValueError(f"not an E.164 number: {e164!r}") from exc
    country = str(number.country_code)
    national = phonenumbers.national_significant_number(number)
    if not e164.startswith("+") or e164[1:] != country + national:
        raise ValueError(f"not an E.164 number: {e164!r}")
    # Keep the operator / area prefix and the last three digits, as banks and
    # operators do on receipts; always hide at least three digits.
    size = len(national)
    hidden = max(3, size - 6)
    head = min(3, (size - hidden + 1) // 2)
    tail = size - hidden - head
    return f"+{country}{national[:head]}{'*' * hidden}{national[size - tail :]}"
