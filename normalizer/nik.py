"""Indonesian NIK (Nomor Induk Kependudukan): parsing, validation and discovery in free text.

The NIK is the 16-digit national identity number printed on the KTP and the
Kartu Keluarga.  It is issued once and kept for life (UU No. 24 Tahun 2013
tentang Perubahan atas UU No. 23 Tahun 2006 tentang Administrasi
Kependudukan, Pasal 13).  Its layout (PP No. 37 Tahun 2007, Pasal 37, and the
Dukcapil issuing practice that follows it) is::

    PP RR DD  ddmmyy  SSSS
    |  |  |   |       serial number of issue within the district, 0001-9999
    |  |  |   date of birth; women have 40 added to the day (41-71)
    |  |  district (kecamatan) code
    |  regency/city (kabupaten/kota) code
    province code

The six region digits are the code of the district *where the NIK was issued*,
using the Kemendagri code list in force at that moment.  Because a NIK never
changes, NIKs issued in Papua before the 2022 reorganisation still carry the
old 91.xx / 92.xx codes of regencies that now belong to the new provinces
93-96 (UU No. 14, 15, 16 and 29 Tahun 2022).  The shipped region list is the
current Kepmendagri No. 300.2.2-2138 Tahun 2025 plus those retired codes, which
are reported with ``legacy=True`` and the code that replaced them
(see ``normalizer/data/SOURCES.md``).

The region list cannot be complete for old NIKs: codes retired before 2019 (Kota
Tarakan's 64.73 before Kalimantan Utara was made in 2012, the Ciamis districts
that became Pangandaran's, districts renumbered when they split) are in no list
shipped here, and a citizen cannot change the number on their KTP.  So a regency
or district code the list does not hold, under a known province, does not make
the NIK invalid: its region is reported as not listed (``listed=False``,
:attr:`ValidNik.region_listed` false) and shown as such, while a code 00, which
no region ever had, is refused.  An unknown province is refused.

Only structure is checked: a NIK can pass every rule here and still not exist
in the Dukcapil register, which only Dukcapil can confirm.

``find_niks`` looks for NIKs in free text.  A candidate is a run of exactly
16 digits, possibly written in groups separated by spaces, dots or dashes,
that is not part of a longer digit run and does not follow a "+" (a phone
number in international form).  It must look like a NIK: a known province
code, a month 01-12 and a day 01-31 or 41-71; a KK (family card) number has
the same shape and is found too.  A candidate that passes those checks but
fails another rule (e.g. serial 0000) is still returned, so that the citizen
can be told what is wrong, unless ``valid_only`` is set.  When 16 digits can
only be cut out of a longer run of groups ("0812 3456 7890 3201 0141 0190
0001"), the cut is a guess and the candidate must be fully valid.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from functools import cache
from typing import Literal

from normalizer._resources import read_data_text

__all__ = [
    "InvalidNik",
    "NikError",
    "NikRegion",
    "NikResult",
    "Sex",
    "ValidNik",
    "find_niks",
    "parse_nik",
]

NIK_LENGTH = 16
# PP 37/2007 Pasal 37: women's birth day is written with 40 added.
_FEMALE_DAY_OFFSET = 40


class Sex(StrEnum):
    """Sex encoded in the NIK's day-of-birth digits."""

    MALE = "male"
    FEMALE = "female"


class NikError(StrEnum):
    """Machine-readable reason why a NIK was rejected."""

    WRONG_LENGTH = "wrong_length"
    NON_DIGIT = "non_digit"
    UNKNOWN_PROVINCE = "unknown_province"
    UNKNOWN_REGENCY = "unknown_regency"
    UNKNOWN_DISTRICT = "unknown_district"
    INVALID_BIRTH_DATE = "invalid_birth_date"
    SERIAL_ZERO = "serial_zero"


@dataclass(frozen=True, slots=True)
class NikRegion:
    """One level of the region encoded in a NIK (province, regency/city or district)."""

    code: str
    """Digits only: 2 for a province, 4 for a regency/city, 6 for a district."""
    name: str
    legacy: bool = False
    """True when the code was retired (pre-2022 Papua codes) but is still valid in NIKs."""
    successor: str | None = None
    """For a legacy code, the code the same region has today, when it could be matched."""
    listed: bool = True
    """False for a code the shipped list does not hold (``name`` is then empty)."""

    @property
    def dotted(self) -> str:
        """The code in the Kemendagri dotted notation (``32.01.01``)."""
        return ".".join(self.code[i : i + 2] for i in range(0, len(self.code), 2))


@dataclass(frozen=True, slots=True)
class ValidNik:
    """A structurally valid NIK and what its digits say."""

    nik: str
    province: NikRegion
    regency: NikRegion
    district: NikRegion
    birth_date: date
    sex: Sex
    serial: str
    valid: Literal[True] = field(default=True, init=False)

    @property
    def legacy_region(self) -> bool:
        """True when the NIK carries a retired region code (still a valid NIK)."""
        return self.district.legacy or self.regency.legacy

    @property
    def region_listed(self) -> bool:
        """False when its regency or district is not in the shipped list (an older code than
        the list knows, or a mistyped digit): still a valid NIK, its region unnamed."""
        return self.regency.listed and self.district.listed


@dataclass(frozen=True, slots=True)
class InvalidNik:
    """A rejected NIK with the reason, in machine and human (Indonesian, English) form."""

    text: str
    """The text that was given."""
    digits: str
    """The text with separators removed (what was checked)."""
    reason: NikError
    message_id: str
    message_en: str
    valid: Literal[False] = field(default=False, init=False)


NikResult = ValidNik | InvalidNik


@dataclass(frozen=True, slots=True)
class _RegionRow:
    name: str
    legacy: bool
    successor: str | None


@cache
def _regions() -> dict[str, _RegionRow]:
    """Province, regency and district codes -> names, read once from the shipped list."""
    reader = csv.DictReader(io.StringIO(read_data_text("regions.csv.gz")))
    return {
        row["code"]: _RegionRow(row["name"], row["legacy"] == "1", row["successor"] or None)
        for row in reader
    }


@cache
def place_names() -> frozenset[tuple[str, ...]]:
    """The words of every province's, regency's and city's name in the shipped list, upper
    case, without "Kabupaten", "Kota" or "Administrasi" (``("ACEH", "BESAR")``,
    ``("JAKARTA", "UTARA")``, ``("PAPUA", "PEGUNUNGAN")``)."""
    drop = {"KABUPATEN", "KOTA", "ADMINISTRASI"}
    return frozenset(
        tuple(w for w in re.findall(r"[^\W_]+", row.name.upper()) if w not in drop)
        for code, row in _regions().items()
        if len(code) <= 4
    )


def _region(code: str) -> NikRegion | None:
    row = _regions().get(code)
    if row is None:
        return None
    return NikRegion(code=code, name=row.name, legacy=row.legacy, successor=row.successor)


# Characters people put between digit groups when they write a NIK down.
_SEPARATORS = re.compile(r"[\s.\-_/]+")
# A label typed in front of the number in a NIK field ("NIK: ...", "No. KTP ...").
_LABEL = re.compile(r"^\s*(?:nik|no\.?\s*ktp|nomor\s*ktp|ktp|no\.?\s*nik)\s*[:.=]?\s*", re.I)


def _ascii_digits(text: str) -> str:
    """``text`` with its digits in ASCII, without the invisible marks a copy brings along.

    NFKC turns full-width and other compatibility digits into ASCII ones; the decimal digits
    it keeps (Arabic-Indic, Persian, Devanagari...: a phone keyboard set to another script)
    are mapped by their value. Format characters (zero-width space, direction and isolate
    marks that chat apps put around numbers) are dropped.
    """
    text = unicodedata.normalize("NFKC", text)
    if text.isascii():
        return text
    return "".join(
        str(unicodedata.decimal(ch)) if ch.isdecimal() else ch
        for ch in text
        if unicodedata.category(ch) != "Cf"
    )


def _clean(text: str) -> str:
    text = _LABEL.sub("", _ascii_digits(text))
    return _SEPARATORS.sub("", text)


_MESSAGES: dict[NikError, tuple[str, str]] = {
    NikError.WRONG_LENGTH: (
        "NIK harus terdiri dari 16 angka, yang diberikan {n} angka.",
        "A NIK has exactly 16 digits; {n} were given.",
    ),
    NikError.NON_DIGIT: (
        "NIK hanya boleh berisi angka.",
        "A NIK may contain digits only.",
    ),
    NikError.UNKNOWN_PROVINCE: (
        "Kode provinsi {code} pada NIK tidak dikenal.",
        "The NIK's province code {code} does not exist.",
    ),
    NikError.UNKNOWN_REGENCY: (
        "Kode kabupaten/kota {code} pada NIK tidak mungkin.",
        "The NIK's regency/city code {code} cannot exist.",
    ),
    NikError.UNKNOWN_DISTRICT: (
        "Kode kecamatan {code} pada NIK tidak mungkin.",
        "The NIK's district code {code} cannot exist.",
    ),
    NikError.INVALID_BIRTH_DATE: (
        "Tanggal lahir pada NIK (angka ke-7 sampai ke-12: {code}) tidak valid.",
        "The birth date in the NIK (digits 7 to 12: {code}) is not a valid date.",
    ),
    NikError.SERIAL_ZERO: (
        "Nomor urut NIK (4 angka terakhir) tidak boleh 0000.",
        "The NIK's serial number (last 4 digits) cannot be 0000.",
    ),
}


def _invalid(text: str, digits: str, reason: NikError, **fmt: object) -> InvalidNik:
    message_id, message_en = _MESSAGES[reason]
    return InvalidNik(
        text=text,
        digits=digits,
        reason=reason,
        message_id=message_id.format(**fmt),
        message_en=message_en.format(**fmt),
    )


def _birth_date(ddmmyy: str, today: date) -> tuple[date, Sex] | None:
    """Decode ddmmyy (day +40 for women); None when it is not a real date."""
    day, month, yy = int(ddmmyy[:2]), int(ddmmyy[2:4]), int(ddmmyy[4:])
    sex = Sex.MALE
    if day > _FEMALE_DAY_OFFSET:
        day -= _FEMALE_DAY_OFFSET
        sex = Sex.FEMALE
    # Only two year digits: take the most recent century that does not put the
    # birth in the future (a NIK is issued after birth).  Both centuries are
    # tried because 29 February exists in 2000 but not in 1900.
    for year in (2000 + yy, 1900 + yy):
        try:
            born = date(year, month, day)
        except ValueError:
            continue
        if born <= today:
            return born, sex
    return None


def parse_nik(text: str, *, today: date | None = None) -> NikResult:
    """Parse and validate a NIK written in any usual way (spaces, dots, dashes, "NIK:" label)."""
    today = today or date.today()
    digits = _clean(text)
    if digits and not (digits.isascii() and digits.isdigit()):
        return _invalid(text, digits, NikError.NON_DIGIT)
    if len(digits) != NIK_LENGTH:
        return _invalid(text, digits, NikError.WRONG_LENGTH, n=len(digits))
    province = _region(digits[:2])
    if province is None:
        return _invalid(text, digits, NikError.UNKNOWN_PROVINCE, code=digits[:2])
    if digits[2:4] == "00":
        return _invalid(text, digits, NikError.UNKNOWN_REGENCY, code=f"{digits[:2]}.00")
    if digits[4:6] == "00":
        return _invalid(
            text, digits, NikError.UNKNOWN_DISTRICT, code=f"{digits[:2]}.{digits[2:4]}.00"
        )
    # A code the list does not hold: older than the list, not invalid (module docstring).
    regency = _region(digits[:4]) or NikRegion(digits[:4], "", listed=False)
    district = (_region(digits[:6]) if regency.listed else None) or NikRegion(
        digits[:6], "", listed=False
    )
    decoded = _birth_date(digits[6:12], today)
    if decoded is None:
        return _invalid(text, digits, NikError.INVALID_BIRTH_DATE, code=digits[6:12])
    if digits[12:] == "0000":
        return _invalid(text, digits, NikError.SERIAL_ZERO)
    born, sex = decoded
    return ValidNik(
        nik=digits,
        province=province,
        regency=regency,
        district=district,
        birth_date=born,
        sex=sex,
        serial=digits[12:],
    )


# A maximal run of digit groups joined by one separator: a space, or a dot or
# dash with optional spaces around it.  It must not continue a phone number
# written with "+" ("+62 812...") nor a longer run to its left.
_SEP = r"(?:[ \u00a0]?[.\-][ \u00a0]?|[ \u00a0])"
_RUN = re.compile(rf"(?<![\d+])(?<!\+[ \u00a0])(?<!\d[ .\-\u00a0])\d+(?:{_SEP}\d+)*")
_GROUP = re.compile(r"\d+")


def _plausible(digits: str) -> bool:
    """Cheap shape test for free text: known province, month 1-12, day 1-31 or 41-71."""
    if digits[0] == "0" or digits[:2] not in _regions():
        return False
    day, month = int(digits[6:8]), int(digits[8:10])
    return 1 <= month <= 12 and (1 <= day <= 31 or 41 <= day <= 71)


def find_niks(text: str, *, valid_only: bool = False, today: date | None = None) -> list[str]:
    """Find NIKs in free text ("NIK: 3201 0141 ...", "nik3201...", "No. KTP 3201.0141...")."""
    text = _ascii_digits(text)
    found: list[str] = []
    for run in _RUN.finditer(text):
        groups = _GROUP.findall(run.group())
        whole = "".join(groups)
        if len(whole) == NIK_LENGTH:
            windows = [whole]
            exact = True
        else:
            # Several numbers written side by side ("0812 3456 7890 3201 0141 0190 0001"):
            # any run of whole groups adding up to 16 digits may be the NIK, but the
            # split is a guess, so such a candidate must pass every check.
            windows = []
            for start in range(len(groups)):
                total = ""
                for group in groups[start:]:
                    total += group
                    if len(total) >= NIK_LENGTH:
                        break
                if len(total) == NIK_LENGTH:
                    windows.append(total)
            exact = False
        for digits in windows:
            if not _plausible(digits):
                continue
            if valid_only or not exact:
                result = parse_nik(digits, today=today)
                # A guessed cut must name a listed region too: an unlisted one is too likely
                # to be the digits of two other numbers.
                if not result.valid or (not exact and not result.region_listed):
                    continue
            if digits not in found:
                found.append(digits)
    return found
