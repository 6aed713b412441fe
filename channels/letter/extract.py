"""The fields of an Indonesian complaint letter or complaint-box form, from its text. Pure.

Letters to a Bupati, a Wali Kota or a Dinas follow the *tata naskah* habits every Indonesian
learns at school, and the extractor reads them by those landmarks, not by position::

    PENGURUS RUKUN WARGA 07 ...              letterhead (kop surat): ignored, its phone too
                         Bandung, 12 Maret 2026     place and date
    Nomor    : 012/RW07/III/2026
    Perihal  : Jalan rusak di Jl. Cinunuk    subject (continues on the next line if wrapped)
    Kepada Yth.                              addressee: the lines up to "di" / "Tempat"
    Bapak Bupati Bandung
    di Tempat
    Dengan hormat,                           salutation: the body starts after it
    Saya yang bertanda tangan di bawah ini:  an identity block (labelled lines) may follow ...
    Nama : ...   NIK : ...   Alamat : ...
    <the complaint>                          body
    Demikian ... terima kasih.               closing formula: not part of the body
                     Hormat saya,            closing: the body ends before it
                     <signature>
                     Siti Nurhaliza          the name: the last name-like line before labels
                     NIK : ...  Alamat : ...  No. HP : ...   ... or the identity block here

A complaint-box form has the same labelled fields ("Nama Lengkap :", "NIK :", "No. HP :") and
the complaint under "Isi Pengaduan:". Labels are matched forgivingly, because OCR misreads them
("Perihai", "NlK", a colon read as "-"), and only at the start of a line.

Values are checked where a rule exists: the NIK with :func:`normalizer.parse_nik` (which also
gives the region, shown to the clerk), after undoing the usual OCR confusions (O→0, I/l→1,
S→5, B→8, ...) only when the corrected number then validates; the phone with
:func:`normalizer.normalize_phone` (E.164); the date with Indonesian month names, also when a
letter of the month was misread.

Every :class:`Field` has a confidence in 0..1: how the value was found (a label and a valid
value is strong; a number found loose in the text, weak; an invalid NIK, very weak) times what
OCR said about the line(s) it came from. Fields under :data:`LOW_CONFIDENCE` are for the clerk
to check first.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Protocol

from normalizer import find_niks, find_phones, normalize_phone, parse_nik

__all__ = [
    "LOW_CONFIDENCE",
    "Field",
    "LetterFields",
    "extract_fields",
]

LOW_CONFIDENCE: float = 0.6
"""Fields below this are highlighted on the review page."""

# How much a way of finding a value is worth before OCR confidence is taken into account.
_LABELLED_VALID = 0.95  # "NIK : <valid NIK>", a parsed date, a valid phone
_CORRECTED = 0.75  # valid only after undoing OCR confusions
_UNLISTED = 0.5  # a NIK whose region the list does not hold: an old one, or a digit misread
_FOUND_LOOSE = 0.7  # a valid NIK or phone in the text, without its label
_LABELLED_TEXT = 0.9  # "Nama : ...", "Alamat : ...", "Perihal : ..."
_SIGNATURE_NAME = 0.8  # the name under "Hormat saya,"
_INVALID = 0.25  # a labelled value that does not validate
_GUESSED = 0.55  # valid only after adding a digit OCR lost: always below LOW_CONFIDENCE


class _PageLike(Protocol):
    """What the extractor reads from a :class:`channels.letter.ocr.PageResult`."""

    @property
    def text(self) -> str: ...

    @property
    def confidence(self) -> float: ...

    @property
    def line_confidences(self) -> tuple[float, ...]: ...


@dataclass(frozen=True, slots=True)
class Field:
    """One extracted value with how sure the extractor is."""

    value: str | None
    confidence: float
    """0..1; under :data:`LOW_CONFIDENCE` the review page highlights the field."""
    note: str | None = None
    """For the clerk: the NIK's region, the phone as written, or why the confidence is low."""

    @property
    def low(self) -> bool:
        """True when the clerk should check this field first."""
        return self.confidence < LOW_CONFIDENCE


_MISSING = Field(None, 0.0)


@dataclass(frozen=True, slots=True)
class LetterFields:
    """Everything the review page shows, each field with its confidence."""

    sender_name: Field = _MISSING
    nik: Field = _MISSING
    address: Field = _MISSING
    phone: Field = _MISSING
    """E.164 (``+6281234567890``); the note has it as written."""
    letter_date: Field = _MISSING
    """ISO ``yyyy-mm-dd``."""
    letter_place: Field = _MISSING
    addressee: Field = _MISSING
    subject: Field = _MISSING
    body: Field = _MISSING
    """Paragraphs separated by a blank line."""

    def as_dict(self) -> dict[str, Field]:
        """Field name -> field, in the order of the review page."""
        return {
            "sender_name": self.sender_name,
            "nik": self.nik,
            "address": self.address,
            "phone": self.phone,
            "letter_date": self.letter_date,
            "letter_place": self.letter_place,
            "addressee": self.addressee,
            "subject": self.subject,
            "body": self.body,
        }


# --------------------------------------------------------------------------------------------
# Lines.


@dataclass(slots=True)
class _Line:
    text: str
    conf: float  # 0..1
    page: int
    label: str | None = None  # the field kind of a labelled line
    value: str = ""  # the text after the label
    used: bool = False  # consumed as a field (or a continuation) and so not body text


@dataclass(slots=True)
class _Doc:
    lines: list[_Line] = field(default_factory=list)

    def nonblank(self, start: int, stop: int | None = None) -> list[int]:
        stop = len(self.lines) if stop is None else min(stop, len(self.lines))
        return [i for i in range(start, stop) if self.lines[i].text]


# Page numbers: "- 2 -", "2", "Halaman 2 dari 3", "Hal. 2/3".
_PAGE_NUMBER = re.compile(
    r"^(?:[-–—~.\s]*\d{1,3}[-–—~.\s]*|(?:halaman|hal\.?|page)\s*\d{1,3}\s*(?:(?:dari|/|of)\s*\d{1,3})?)$",
    re.I,
)


def _clean(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    text = text.replace("\u2018", "'").replace("\u2019", "'").replace("\u201c", '"')
    text = text.replace("\u201d", '"').replace("\u2013", "-").replace("\u2014", "-")
    words = text.split()
    # Specks OCR reads as a quote, a dot or a bar before or after the text of a line.
    while words and all(c in "'\"`.,|" for c in words[0]):
        words.pop(0)
    while words and all(c in "'\"`,|" for c in words[-1]):
        words.pop()
    return " ".join(words)


def _lines(pages: Sequence[_PageLike] | Sequence[str]) -> _Doc:
    doc = _Doc()
    items: Sequence[_PageLike | str] = pages
    for number, page in enumerate(items, 1):
        confs: Sequence[float]
        if isinstance(page, str):
            texts, confs = page.split("\n"), ()
            default = 1.0
        else:
            texts, confs = page.text.split("\n"), page.line_confidences
            default = page.confidence / 100.0
        page_lines = []
        for k, raw in enumerate(texts):
            text = _clean(raw)
            conf = confs[k] / 100.0 if k < len(confs) else default
            if _PAGE_NUMBER.match(text) and text:
                continue
            page_lines.append(_Line(text, conf, number))
        # A page break is a line break, not a paragraph break: a paragraph may go on over it.
        while page_lines and not page_lines[-1].text:
            page_lines.pop()
        while page_lines and not page_lines[0].text:
            page_lines.pop(0)
        doc.lines += page_lines
    return doc


# --------------------------------------------------------------------------------------------
# Labels.


def _label_key(label: str) -> str:
    label = label.lower().replace(".", " ").replace("-", " ")
    label = re.sub(r"\s*/\s*", "/", label)
    return " ".join(label.split())


_LABELS: dict[str, str] = {}
for _kind, _names in {
    "name": ("nama", "nama lengkap", "nama pelapor", "nama pengadu", "nama pemohon"),
    "nik": ("nik", "no ktp", "nomor ktp", "no nik", "nomor nik", "nomor induk kependudukan",
            "nik/no ktp", "no ktp/nik", "ktp", "no induk kependudukan"),
    "address": ("alamat", "alamat lengkap", "alamat rumah", "alamat pelapor", "domisili",
                "alamat domisili"),
    "phone": ("no hp", "nomor hp", "hp", "telp", "telepon", "no telp", "nomor telepon",
              "no telepon", "no hp/wa", "no hp/telp", "hp/wa", "wa", "whatsapp", "no wa",
              "kontak", "no kontak", "telp/hp", "no tlp", "tlp", "handphone", "no handphone",
              "hp/telp", "no telp/hp", "nomor hp/wa", "telepon/hp", "no whatsapp"),
    "subject": ("perihal", "hal", "prihal", "judul", "judul pengaduan", "pokok pengaduan",
                "tentang"),
    "date": ("tanggal", "tgl", "tanggal pengaduan", "hari/tanggal", "tanggal surat"),
    "body": ("isi pengaduan", "uraian pengaduan", "uraian", "isi laporan", "isi", "keterangan",
             "pengaduan", "uraian singkat", "kronologi", "isi aduan", "uraian laporan"),
    "letter": ("nomor", "no", "lampiran", "lamp", "sifat", "nomor surat", "no surat"),
    "identity": ("pekerjaan", "tempat/tgl lahir", "tempat tanggal lahir", "tempat/tanggal lahir",
                 "ttl", "jenis kelamin", "agama", "email", "e mail", "rt/rw", "kelurahan",
                 "kecamatan", "desa/kelurahan", "umur", "usia", "kabupaten/kota", "status"),
}.items():  # fmt: skip
    for _name in _names:
        _LABELS[_name] = _kind

# The labelled-line shape: a short label, a separator (":" or ";", which OCR confuses; also
# " - " or "=" as OCR sometimes reads a colon), then the value.
_LABELLED = re.compile(
    r"^(?P<label>[A-Za-z][A-Za-z0-9./ ]{0,30}?)\s*(?:[:;]|\s[-=]\s|\s[-=](?=\S))\s*"
    r"(?P<value>.*)$"
)
# A phone label glued to its number by OCR: "No. HP/W20852 ..." ("HP/WA : 0852 ...").
_PHONE_PREFIX = re.compile(
    r"^(?:no\.?\s*|nomor\s*)?(?:hp|telp\.?|telepon|tlp|wa|handphone)(?:\s*/\s*[a-z]{0,3})?"
    r"(?P<value>[+(]?\d.*)$",
    re.I,
)
# A label followed straight by a number (colon lost): "NIK 3204...", "No. HP 0812...".
_NUMBER_LABEL = re.compile(r"^(?P<label>[A-Za-z][A-Za-z./ ]{0,20}?)\s+(?P<value>[+(]?\d.*)$")


def _distance(a: str, b: str, limit: int) -> int:
    """Levenshtein distance, or limit + 1 once it is certainly above ``limit``."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        if min(current) > limit:
            return limit + 1
        previous = current
    return previous[-1]


def _label_kind(label: str) -> str | None:
    key = _label_key(label)
    if key in _LABELS:
        return _LABELS[key]
    # OCR turns a letter of a label into another ("Perihai", "Alarnat"): one edit for short
    # labels, two for long ones; never for the 2-3 letter labels, where one edit is another word.
    if len(key) >= 5:
        limit = 1 if len(key) < 9 else 2
        best = min(_LABELS, key=lambda name: _distance(key, name, limit))
        if _distance(key, best, limit) <= limit:
            return _LABELS[best]
    return None


def _split_label(text: str) -> tuple[str, str] | None:
    """(kind, value) of a labelled line, or None."""
    m = _LABELLED.match(text)
    if m:
        label = m.group("label").strip()
        kind = _label_kind(label)
        if kind is None and _fixable_nik_label(label):
            kind = "nik"
        if kind is not None:
            return kind, m.group("value").strip()
        # An unknown short label ("Pekerjaan", "RT/RW") in an identity block: still a label.
        words = label.split()
        if 1 <= len(words) <= 3 and label[0].isupper() and m.group("value").strip():
            if not re.search(r"\b(?:ini|berikut|sebagai|yaitu|adalah)\b", label, re.I):
                return "other", m.group("value").strip()
        return None
    m = _PHONE_PREFIX.match(text)
    if m:
        return "phone", m.group("value").strip()
    m = _NUMBER_LABEL.match(text)
    if m:
        kind = _label_kind(m.group("label"))
        if kind is None and _fixable_nik_label(m.group("label")):
            kind = "nik"
        if kind in ("nik", "phone"):
            return kind, m.group("value").strip()
    return None


# A colon OCR misread as a character of its own ("Alamat 1 Jl. ...", "NIK | 3204...").
_MISREAD_COLON = {"1", "|", "!", "l", "i", "'", '"', ":", ";", ".", ",", "-", "=", "I"}


def _loose_label(text: str) -> tuple[str, str] | None:
    """(kind, value) of a line whose label lost its colon ("Perihal Banjir di ..."), or None.

    Only for lines among other labelled lines, in the heading or in the signature block: in
    the body, "Nama saya ..." is a sentence.
    """
    words = text.split()
    for n in (3, 2, 1):
        if len(words) <= n:
            continue
        label = " ".join(words[:n]).rstrip(":;.,'\"|!")
        kind = _label_kind(label)
        if kind is None and n == 1 and _fixable_nik_label(label):
            kind = "nik"
        if kind is None or kind in ("identity", "other"):
            continue
        rest = words[n:]
        if rest and rest[0] in _MISREAD_COLON and len(rest) > 1:
            rest = rest[1:]
        return kind, " ".join(rest)
    return None


def _fixable_nik_label(label: str) -> bool:
    # "NlK", "N1K", "NIK." as OCR writes it.
    return bool(re.fullmatch(r"[NnHM][Il1|!iL][KkX]\.?", label.strip()))


# --------------------------------------------------------------------------------------------
# Landmarks.

MONTHS = {
    "januari": 1, "februari": 2, "maret": 3, "april": 4, "mei": 5, "juni": 6, "juli": 7,
    "agustus": 8, "september": 9, "oktober": 10, "november": 11, "desember": 12,
    # English spellings and the usual abbreviations.
    "january": 1, "february": 2, "march": 3, "may": 5, "june": 6, "july": 7, "august": 8,
    "october": 10, "december": 12, "jan": 1, "feb": 2, "mar": 3, "apr": 4, "jun": 6, "jul": 7,
    "agu": 8, "agt": 8, "ags": 8, "aug": 8, "sep": 9, "sept": 9, "okt": 10, "oct": 10,
    "nov": 11, "des": 12, "dec": 12, "pebruari": 2, "nopember": 11,
}  # fmt: skip

# The month may carry OCR's 1-for-i and 0-for-o ("Me1", "Okt0ber").
_TEXT_DATE = re.compile(
    r"(?P<d>\d{1,2})[\s\-.]*(?P<m>[A-Za-z][A-Za-z10]{2,9})[\s\-.'`,]*(?P<y>\d{4})"
)
_NUM_DATE = re.compile(r"(?P<d>\d{1,2})\s*[-/.]\s*(?P<m>\d{1,2})\s*[-/.]\s*(?P<y>\d{4})")
# "Bandung, 12 Maret 2026": a short place, a comma, a date, nothing else of substance.
_PLACE_DATE = re.compile(
    r"^(?P<place>[A-Z][A-Za-z.'\- ]{1,40}?)\s*[,.][,.:;]?\s*(?:tanggal\s+)?"
    r"(?P<date>\d{1,2}[\sA-Za-z./\-]+\d{4})\s*\.?$"
)
# "Kepada Yth.", "Kepada Yang Terhormat", "Kepada:", "Yth." (never "kepada" inside a sentence
# that wrapped onto a new line: "... pungutan\nkepada orang tua murid").
_ADDRESSEE = re.compile(
    r"^(?:[Kk]epada\s*(?:[Yy][a-z]{1,2}h?\b\.?|[Yy]ang\s+[Tt]erhormat\b|[:,]|$)|Yth\b\.?"
    r"|Yang\s+[Tt]erhormat\b)\s*[:,.]?\s*(?P<rest>.*)$"
)
_ADDRESSEE_END = re.compile(r"^(?:di\s*[-.:]?\s*(?:tempat)?\.?|tempat\.?)$", re.I)
_TRAILING_DI = re.compile(r"\s+di\s*[-.:]?\s*(?:tempat)?\.?$", re.I)
# "Dengan hormat," also as OCR garbles its first word ("aa hormat,").
_SALUTATION = re.compile(
    r"^(?:dengan\s+h\S{3,5}t\b|(?!salam\b)\S{1,7}\s+h[o0]rm[ao]t\s*[,.]?\s*$|assalamu\S*"
    r"|salam\s+sejahtera)",
    re.I,
)
_CLOSING = re.compile(
    r"^(?:hormat\s+(?:saya|kami)|salam\s+hormat|pelapor|pengadu|yang\s+mengadukan"
    r"|yang\s+membuat\s+(?:pengaduan|laporan|pernyataan)|tertanda|wassalam\S*)\s*[,.:]?\s*$",
    re.I,
)
# "Demikian ..." (also "Dernikian"), "Atas perhatian ...".
_CLOSING_FORMULA = re.compile(r"^(?:d[ea][mnr]\w{2,6}an(?:lah)?|atas\s+perhatian)\b", re.I)
_IDENTITY_INTRO = re.compile(
    r"^(?:saya|kami)\s*(?:,\s*)?yang\s+bertanda\s*tangan\s+di\s*bawah\s+ini\b.*$", re.I
)
_FORM_TITLE = re.compile(r"\b(?:formulir|blanko|lembar)\s+(?:pengaduan|laporan|aduan)\b", re.I)


def _month(word: str) -> int | None:
    word = word.lower().replace("1", "i").replace("0", "o")
    if word in MONTHS:
        return MONTHS[word]
    # "Marel", "Desernber": a misread letter or two in a full month name.
    full = [name for name in MONTHS if len(name) >= 5]
    limit = 1 if len(word) < 7 else 2
    best = min(full, key=lambda name: _distance(word, name, limit))
    return MONTHS[best] if _distance(word, best, limit) <= limit else None


def parse_date(text: str) -> date | None:
    """A letter date ("12 Maret 2026", "12-03-2026", "12/3/2026") or None."""
    text = text.replace("O", "0") if re.search(r"\dO|O\d", text) else text
    m = _TEXT_DATE.search(text)
    if m:
        month = _month(m.group("m"))
        if month is not None:
            return _date(int(m.group("y")), month, int(m.group("d")))
    m = _NUM_DATE.search(text)
    if m:
        return _date(int(m.group("y")), int(m.group("m")), int(m.group("d")))
    return None


def _date(year: int, month: int, day: int) -> date | None:
    if not 1990 <= year <= 2100:
        return None
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _place_date(text: str) -> tuple[str, date] | None:
    m = _PLACE_DATE.match(text)
    if not m:
        return None
    place = m.group("place").strip(" .")
    if len(place.split()) > 4 or _label_kind(place) is not None:
        return None
    found = parse_date(m.group("date"))
    return (place, found) if found else None


# --------------------------------------------------------------------------------------------
# Values.

# What OCR reads in place of a digit (Tesseract's usual confusions in sans and serif faces).
_DIGIT_FOR = str.maketrans(
    {"O": "0", "o": "0", "D": "0", "Q": "0", "I": "1", "l": "1", "|": "1", "i": "1", "!": "1",
     "L": "1", "S": "5", "s": "5", "B": "8", "Z": "2", "z": "2", "G": "6", "b": "6", "g": "9",
     "q": "9", "T": "7", "A": "4"}
)  # fmt: skip
_NIK_CHARS = re.compile(r"^[0-9OoDQIl|i!LSsBZzGbgqTA][0-9OoDQIl|i!LSsBZzGbgqTA .\-]*")


def _ocr_factor(conf: float, validated: bool) -> float:
    # A validated value (a NIK that parses, a phone libphonenumber accepts) is less likely
    # wrong than OCR alone says; free text is only as good as the OCR.
    return 0.4 + 0.6 * conf if validated else conf


def _region_note(nik: str) -> str | None:
    result = parse_nik(nik)
    if not result.valid:
        return None
    if not result.region_listed:
        return (
            f"kode wilayah {result.district.dotted} tidak ada di daftar kode wilayah "
            "(NIK lama, atau angka salah baca: periksa)"
        )
    regency = result.regency.name.replace("Kabupaten ", "Kab. ")
    note = f"Kec. {result.district.name}, {regency}, {result.province.name}"
    if result.legacy_region:
        note += " (kode wilayah lama)"
    return note


def _region_elsewhere(nik: str, address: str) -> str | None:
    """A note when the address names a regency or city and it is not the NIK's."""
    result = parse_nik(nik)
    if not result.valid or not result.region_listed:
        return None
    if not re.search(r"\b(?:Kota|Kabupaten|Kab\.?)\s+[A-Z]", address):
        return None
    core = re.sub(r"^(?:Kabupaten|Kota Administrasi|Kota)\s+", "", result.regency.name)
    if core.casefold() in address.casefold():
        return None
    return f"wilayah NIK ({result.regency.name}) tidak sama dengan alamat"


def _nik_field(value: str, conf: float) -> Field:
    m = _NIK_CHARS.match(value)
    written = m.group().strip(" .-") if m else value
    digits = re.sub(r"[\s.\-]", "", written)
    result = parse_nik(digits)
    if result.valid and result.region_listed:
        confidence = _LABELLED_VALID * _ocr_factor(conf, True)
        return Field(result.nik, confidence, _region_note(result.nik))
    fixed = digits.translate(_DIGIT_FOR)
    tries = [fixed]
    if len(fixed) == 17 and written[:1] in _MISREAD_COLON | {"1"}:
        tries.append(fixed[1:])  # the label's colon read as "1" or "|": "NIK 13204..."
    for candidate in tries:
        if candidate == digits:
            continue
        corrected = parse_nik(candidate)
        if corrected.valid and corrected.region_listed:
            note = f"{_region_note(corrected.nik)}; dikoreksi dari hasil OCR '{written}'"
            return Field(corrected.nik, _CORRECTED * _ocr_factor(conf, True), note)
    if result.valid:  # a region the list does not hold: the clerk checks it on the letter
        return Field(result.nik, _UNLISTED * _ocr_factor(conf, True), _region_note(result.nik))
    shown = fixed if len(fixed) == 16 and fixed.isdigit() else (digits or value)
    failed = parse_nik(shown)
    reason = failed.message_id if not failed.valid else None
    return Field(shown or None, _INVALID * conf, f"NIK tidak valid: {reason}" if reason else None)


def _phone_field(value: str, conf: float, base: float = _LABELLED_VALID) -> Field | None:
    # An Indonesian number never starts with 1: a leading "1", "|" or ":" is the label's colon.
    value = value.lstrip(" :;|!1l'\".,")
    # Cut the number off what follows it ("0812-3456-7890 (WA)", "0812... / 0813...").
    m = re.match(r"^[+(]?[0-9OoIlSB|][0-9OoIlSB|+ ()./\-]{5,24}", value)
    written = m.group().strip(" ./-") if m else value
    e164 = normalize_phone(written)
    if e164 is not None:
        return Field(e164, base * _ocr_factor(conf, True), written)
    # OCR readings of a colon or a "+" before the number ("HP 10818 ...", "1 462 878-...",
    # "HP/W20852 ..."): drop up to two leading characters, keeping only what then starts the
    # way a written Indonesian number starts (0 or 62).
    digits = re.sub(r"\D", "", written.translate(_DIGIT_FOR))
    for cut in range(0, 3):
        rest = digits[cut:]
        if rest.startswith(("0", "62")):
            e164 = normalize_phone(rest)
            if e164 is not None:
                note = f"{written} (dikoreksi dari OCR)"
                return Field(e164, _CORRECTED * _ocr_factor(conf, True), note)
    for cut in range(0, 3):
        # The trunk 0 swallowed by the label ("HP/WA : 0877" read as "HP/W9877"): a guess,
        # kept below LOW_CONFIDENCE so the clerk checks it.
        rest = digits[cut:]
        if rest.startswith("8") and (e164 := normalize_phone("0" + rest)) is not None:
            note = f"{written} (angka 0 di depan ditambahkan, periksa)"
            return Field(e164, _GUESSED * _ocr_factor(conf, True), note)
    return None


_NAME_TOKEN = re.compile(
    r"^(?:[A-Z][A-Za-z'\-]*\.?|[A-Z]\.|(?:bin|binti|van|de|al|el)|H\.|Hj\.|Dr\.|Ir\.|Drs\.)$"
)
_DEGREE = re.compile(r",\s*(?:[A-Z][A-Za-z]{0,5}\.\s*)+[A-Za-z.]*$")


_PARTICLES = {"bin", "binti", "van", "de", "al", "el"}


def _clean_name(text: str) -> str:
    """The name without brackets and underlines; a name typed in capitals in title case."""
    text = text.strip().strip("()[]_'\"`,:;|").strip()
    text = re.sub(r"^\(\s*|\s*\)$", "", text)
    text = " ".join(text.split())
    # "Hj: Aminah", "H, Ahmad": a title's dot misread.
    text = re.sub(r"^(H|Hj|Dr|Ir|Drs|Prof)[:;,](?=\s)", r"\1.", text, flags=re.I)
    letters = [c for c in text if c.isalpha()]
    if len(letters) > 3 and all(c.isupper() for c in letters):
        text = " ".join(
            w.lower() if w.lower() in _PARTICLES else w[:1] + w[1:].lower() for w in text.split()
        )
    return text


def _is_name(text: str) -> bool:
    name = _DEGREE.sub("", _clean_name(text))
    tokens = name.split()
    if not 1 <= len(tokens) <= 6 or any(ch.isdigit() for ch in name):
        return False
    if _split_label(name) or _CLOSING.match(name) or _CLOSING_FORMULA.match(name):
        return False
    if len(tokens) == 1 and len(tokens[0]) < 3:
        return False
    return all(_NAME_TOKEN.match(t) for t in tokens)


# --------------------------------------------------------------------------------------------
# The extraction.


_ADDRESS_WORDS = re.compile(
    r"\b(?:Kel|Kec|Kab|Kabupaten|Kota|Desa|Kelurahan|Kecamatan|RT|RW|Provinsi|Prov|Kode\s+Pos)\b",
)


def _clean_value(text: str) -> str:
    """Trailing OCR specks off, and the digit O's and Jl.'s OCR gets wrong in addresses."""
    words = text.split()
    while words and not any(c.isalnum() for c in words[-1]):
        words.pop()  # "... Kabupaten Sleman '." : specks after the value
    text = " ".join(words).rstrip(",;:|_~-'\"`").lstrip(".,;:|_~-'\"` ")
    text = re.sub(r"\bKe[i1|]\.", "Kel.", text)
    # "Kel: Sinduadi", "RT'04", "RW.06": the abbreviations of an address, as OCR mangles them.
    text = re.sub(r"\b(Kel|Kec|Kab|Ds|No|Jl)[:;,](?=\s)", r"\1.", text)
    text = re.sub(r"\b(RT|RW)['.:;,`](?=\d)", r"\1 ", text)
    # "RT O9" and "No. 1O": a letter O inside a number is a zero.
    text = re.sub(r"\b[0-9O]*[0-9][0-9O]*\b", lambda m: m.group().replace("O", "0"), text)
    text = re.sub(r"\bO(?=\d)", "0", text)
    # "Ji." / "JI." for "Jl." (jalan), Tesseract's commonest misreading in an address.
    text = re.sub(r"\bJ[iI1|]\.(?=\s)", "Jl.", text)
    return " ".join(text.split())


def _continuation(doc: _Doc, i: int, kind: str, limit: int) -> list[int]:
    """Lines after labelled line ``i`` that continue its value (a wrapped address or subject)."""
    out: list[int] = []
    k = i + 1
    while k < len(doc.lines) and len(out) < limit:
        line = doc.lines[k]
        if not line.text:
            # A wrapped value is sometimes split into two paragraphs by OCR: look past one blank
            # line for an address, never for a subject (a blank line ends it).
            if kind != "address" or (k + 1 < len(doc.lines) and not doc.lines[k + 1].text):
                break
            k += 1
            continue
        if (
            line.label is not None
            or _SALUTATION.match(line.text)
            or _ADDRESSEE.match(line.text)
            or _CLOSING.match(line.text)
            or _place_date(line.text)
        ):
            break
        previous = doc.lines[out[-1] if out else i].text
        if kind == "address":
            after = doc.nonblank(k + 1, k + 3)[:1]
            looks = bool(
                _ADDRESS_WORDS.search(line.text)
                or previous.rstrip().endswith(",")
                or re.search(r"\b(?:Kel|Kec|Kab|RT|RW|No)\.?$", previous)
                or line.text[:1].islower()
                # Between the address and the next labelled line (the phone): the rest of it.
                or (len(line.text) < 60 and after and doc.lines[after[0]].label is not None)
            )
        else:
            looks = len(line.text) < 80 and not _CLOSING_FORMULA.match(line.text)
        if not looks:
            break
        out.append(k)
        k += 1
    return out


def _labelled_near(doc: _Doc, i: int) -> bool:
    """True when the nearest non-blank line before or after ``i`` has a known label."""
    near = doc.nonblank(max(0, i - 3), i)[-1:] + doc.nonblank(i + 1, i + 4)[:1]
    return any(doc.lines[k].label not in (None, "other", "body") for k in near)


def extract_fields(pages: Sequence[_PageLike] | Sequence[str]) -> LetterFields:
    """The letter's fields from its pages (``PageResult`` objects, or plain page texts)."""
    doc = _lines(pages)
    lines = doc.lines
    for line in lines:
        if line.text:
            split = _split_label(line.text)
            if split is not None:
                line.label, line.value = split
    # An unknown label ("Pekerjaan : ...") counts only inside a block of known ones; alone it
    # is more likely a sentence with a colon ("Saya mohon: ...").
    for i, line in enumerate(lines):
        if line.label == "other" and not _labelled_near(doc, i):
            line.label, line.value = None, ""
    # Labels whose colon OCR lost or misread: in the heading, the signature block, or next to
    # other labelled lines.
    first_salutation = next((i for i, ln in enumerate(lines) if _SALUTATION.match(ln.text)), None)
    first_closing = next((i for i, ln in enumerate(lines) if _CLOSING.match(ln.text)), None)
    for i, line in enumerate(lines):
        if line.label is not None or not line.text:
            continue
        loose = _loose_label(line.text)
        if loose is None:
            continue
        in_heading = first_salutation is not None and i < first_salutation
        in_signature = first_closing is not None and i > first_closing
        if in_heading or in_signature or _labelled_near(doc, i):
            line.label, line.value = loose

    # Landmarks.
    place_dates = [(i, pd) for i, line in enumerate(lines) if (pd := _place_date(line.text))]
    salutation_at = next((i for i, line in enumerate(lines) if _SALUTATION.match(line.text)), None)
    addressee_at = next(
        (i for i, line in enumerate(lines[: salutation_at])
         if _ADDRESSEE.match(line.text) and line.label is None),
        None,
    )  # fmt: skip
    form_at = next((i for i, line in enumerate(lines) if _FORM_TITLE.search(line.text)), None)

    # The letterhead: everything before the first landmark near the top of the first page.
    anchors = [i for i, _ in place_dates[:1]] + [
        i for i in (addressee_at, salutation_at, form_at) if i is not None
    ]
    anchors += [
        i for i, line in enumerate(lines)
        if line.label in ("letter", "subject", "date", "name", "nik")
    ][:1]  # fmt: skip
    head_end = min(anchors) if anchors else 0
    if len(doc.nonblank(0, head_end)) > 12:
        head_end = 0  # not a letterhead: a letter without landmarks at the top
    if form_at is not None and form_at < head_end + 3:
        head_end = max(head_end, form_at + 1)
    for line in lines[:head_end]:
        line.used = True
        line.label = None

    fields: dict[str, Field] = {}

    # Labelled fields: the first of each kind (a letter repeats nothing; a second "Alamat" is
    # usually the addressee's office).
    for i, line in enumerate(lines):
        kind = line.label
        if kind is None or line.used:
            continue
        line.used = kind in ("name", "nik", "address", "phone", "subject", "date", "letter",
                             "identity", "other")
        if kind in fields or kind in ("letter", "identity", "other", "body"):
            if kind in ("address", "subject"):
                for k in _continuation(doc, i, kind, 3 if kind == "address" else 2):
                    lines[k].used = True
            continue
        value, conf = line.value, line.conf
        if kind in ("address", "subject", "name") and not value:
            # The value went to the next line (a label in a narrow column).
            nxt = doc.nonblank(i + 1, min(len(lines), i + 3))
            if nxt and lines[nxt[0]].label is None:
                value, conf = lines[nxt[0]].text, lines[nxt[0]].conf
                lines[nxt[0]].used = True
        if kind == "nik":
            fields["nik"] = _nik_field(value, conf)
        elif kind == "phone":
            found = _phone_field(value, conf)
            if found is not None:
                fields["phone"] = found
        elif kind == "date":
            when = parse_date(value)
            if when is not None:
                fields["date"] = Field(when.isoformat(), _LABELLED_VALID * _ocr_factor(conf, True))
        elif kind in ("name", "address", "subject") and value:
            parts, confs = [value], [conf]
            if kind != "name":
                for k in _continuation(doc, i, kind, 3 if kind == "address" else 2):
                    parts.append(lines[k].text)
                    confs.append(lines[k].conf)
                    lines[k].used = True
            text = _join(parts)
            text = _clean_name(text) if kind == "name" else _clean_value(text)
            fields[kind] = Field(text, _LABELLED_TEXT * min(confs))

    # Place and date of the letter.
    letter_place = _MISSING
    letter_date = fields.get("date", _MISSING)
    if place_dates:
        i, (place, when) = next(
            ((i, pd) for i, pd in place_dates if i >= head_end), place_dates[0]
        )
        lines[i].used = True
        conf = lines[i].conf
        letter_place = Field(place, _LABELLED_TEXT * conf)
        labelled_date = letter_date
        letter_date = Field(when.isoformat(), _LABELLED_VALID * _ocr_factor(conf, True))
        if labelled_date.value not in (None, letter_date.value):
            # A form's "Tanggal :" and the date above the signature disagree: the latter has
            # no colon for OCR to merge into the day; the clerk decides.
            letter_date = Field(
                letter_date.value,
                min(letter_date.confidence, LOW_CONFIDENCE - 0.05),
                f"tanggal lain di surat: {labelled_date.value}",
            )

    # Addressee: the lines after "Kepada Yth." up to "di" / "Tempat".
    addressee = _MISSING
    addressee_end = addressee_at
    if addressee_at is not None:
        parts, confs = [], []
        rest = _ADDRESSEE.match(lines[addressee_at].text)
        if rest and rest.group("rest"):
            parts.append(rest.group("rest"))
            confs.append(lines[addressee_at].conf)
        k = addressee_at + 1
        while k < len(lines) and len(parts) < 4:
            text = lines[k].text
            if not text:
                if parts:
                    break
            elif _ADDRESSEE_END.match(text) or _SALUTATION.match(text) or lines[k].label:
                break
            else:
                parts.append(text)
                confs.append(lines[k].conf)
            k += 1
        # "di" and "Tempat" lines belong to the block too.
        while k < len(lines) and (not lines[k].text or _ADDRESSEE_END.match(lines[k].text)):
            if _SALUTATION.match(lines[k].text):
                break
            k += 1
        addressee_end = k - 1
        for j in range(addressee_at, k):
            lines[j].used = True
        if parts:
            text = _TRAILING_DI.sub("", _join(parts)).strip(" ,")
            addressee = Field(text, _LABELLED_TEXT * min(confs))

    # Closing and the signature block.
    body_from = salutation_at + 1 if salutation_at is not None else None
    closing_at = next(
        (i for i, line in enumerate(lines)
         if _CLOSING.match(line.text) and (body_from is None or i >= body_from)),
        None,
    )  # fmt: skip
    signature_name: tuple[str, float] | None = None
    if closing_at is not None:
        candidates: list[int] = []
        for k in range(closing_at + 1, min(len(lines), closing_at + 9)):
            line = lines[k]
            if line.label is not None or _place_date(line.text):
                if candidates:
                    break
                continue
            if line.text and _is_name(line.text) and line.conf >= 0.45:
                candidates.append(k)
        if candidates:
            k = candidates[-1]
            signature_name = (_DEGREE.sub("", _clean_name(lines[k].text)), lines[k].conf)
            lines[k].used = True

    if "name" in fields:
        name = fields["name"]
        if signature_name and signature_name[0].casefold() != (name.value or "").casefold():
            fields["name"] = Field(
                name.value, name.confidence * 0.85, f"tanda tangan: {signature_name[0]}"
            )
    elif signature_name:
        fields["name"] = Field(signature_name[0], _SIGNATURE_NAME * signature_name[1])

    # A NIK issued in another regency than the address is possible (a NIK never changes when
    # its holder moves) but is also what a misread region digit looks like: the clerk checks.
    nik, address = fields.get("nik"), fields.get("address")
    if nik and nik.value and address and address.value and nik.confidence >= LOW_CONFIDENCE:
        elsewhere = _region_elsewhere(nik.value, address.value)
        if elsewhere:
            fields["nik"] = Field(nik.value, nik.confidence * 0.6, f"{nik.note}; {elsewhere}")

    # Values found loose in the text when their label was not.
    outside_head = "\n".join(line.text for line in lines[head_end:])
    if "nik" not in fields:
        niks = find_niks(outside_head, valid_only=True)
        if niks:
            # A region the list does not hold: an old NIK, or another number; the clerk checks.
            loose_nik = parse_nik(niks[0])
            fields["nik"] = Field(
                niks[0],
                _FOUND_LOOSE if loose_nik.valid and loose_nik.region_listed else _UNLISTED,
                f"{_region_note(niks[0])}; tanpa label NIK",
            )
    if "phone" not in fields:
        phones = find_phones(outside_head)
        if phones:
            fields["phone"] = Field(phones[0], _FOUND_LOOSE * 0.8, "nomor ditemukan di isi surat")

    body = _body(doc, head_end, salutation_at, addressee_end, closing_at, place_dates)

    return _rounded(LetterFields(
        sender_name=fields.get("name", _MISSING),
        nik=fields.get("nik", _MISSING),
        address=fields.get("address", _MISSING),
        phone=fields.get("phone", _MISSING),
        letter_date=letter_date,
        letter_place=letter_place,
        addressee=addressee,
        subject=fields.get("subject", _MISSING),
        body=body,
    ))


def _rounded(found: LetterFields) -> LetterFields:
    def r(f: Field) -> Field:
        return Field(f.value, round(min(1.0, max(0.0, f.confidence)), 3), f.note)

    return LetterFields(*(r(f) for f in found.as_dict().values()))


def _join(parts: list[str]) -> str:
    out = ""
    for part in parts:
        if out.endswith("-") and part[:1].isalpha():
            out += part  # "gorong-" + "gorong": a word split at the line end keeps its hyphen
        else:
            out = f"{out} {part}" if out else part
    return out


def _body(
    doc: _Doc,
    head_end: int,
    salutation_at: int | None,
    addressee_end: int | None,
    closing_at: int | None,
    place_dates: list[tuple[int, tuple[str, date]]],
) -> Field:
    lines = doc.lines
    body_label = next(
        (i for i, line in enumerate(lines) if line.label == "body" and i >= head_end), None
    )
    found = 0.0
    if salutation_at is not None:
        start, found = salutation_at + 1, 0.5
    elif body_label is not None:
        start, found = body_label, 0.5
        lines[body_label].text = lines[body_label].value
    else:
        # No salutation: the body starts after the last heading element (place and date,
        # "Nomor/Lampiran/Perihal", the addressee) in the first part of the letter.
        heading = [i for i, _ in place_dates] + [
            i for i, line in enumerate(lines) if line.label in ("letter", "subject", "date")
        ]
        if addressee_end is not None:
            heading.append(addressee_end)
        heading = [i for i in heading if i < max(8, len(lines) * 2 // 5)]
        start = max(heading) + 1 if heading else head_end
    end = len(lines)
    for i in range(start, len(lines)):
        text = lines[i].text
        if (i == closing_at) or (_CLOSING.match(text) and i > start):
            end, found = i, found + 0.4
            break
        if any(i == k for k, _ in place_dates) and i > start:
            end, found = i, found + 0.3  # a form: the place and date above the signature
            break
    paragraphs: list[list[_Line]] = [[]]
    for i in range(start, end):
        line = lines[i]
        if not line.text:
            if paragraphs[-1]:
                paragraphs.append([])
            continue
        if line.used or line.label in ("name", "nik", "address", "phone", "identity", "other"):
            continue
        if _IDENTITY_INTRO.match(line.text):
            continue
        paragraphs[-1].append(line)
    paragraphs = [p for p in paragraphs if p]
    # The closing formula ("Demikian surat ini ...", "Atas perhatian ...") is not the complaint;
    # it starts a line of its own near the end, also when no blank line sets it apart.
    while paragraphs:
        last = paragraphs[-1]
        cut = next((k for k, ln in enumerate(last) if _CLOSING_FORMULA.match(ln.text)), None)
        tail = sum(len(ln.text) for ln in last[cut:]) if cut is not None else 0
        if cut is None or tail > 400 or (cut == 0 and len(paragraphs) == 1):
            break
        if cut == 0:
            paragraphs.pop()
        else:
            paragraphs[-1] = last[:cut]
    if not paragraphs:
        return _MISSING
    text = "\n\n".join(_join([line.text for line in p]) for p in paragraphs)
    confs = [line.conf for p in paragraphs for line in p]
    # Weighted by length: one garbled short line should not sink a long body.
    weights = [max(1, len(line.text)) for p in paragraphs for line in p]
    ocr = sum(c * w for c, w in zip(confs, weights, strict=True)) / sum(weights)
    method = 0.55 + 0.45 * min(1.0, found / 0.9)
    return Field(text, round(method * ocr, 3))
