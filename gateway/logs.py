"""Structured logging with personal data masked in every line.

Whatever a log call passes (message, arguments, ``extra`` fields, exception text), the formatter
masks NIKs (16 digits, also written in groups or one by one), Indonesian phone numbers and
e-mail addresses before the line is written. Masking happens in the formatter, the last step,
so no handler can see the raw values.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import unicodedata
from datetime import UTC, datetime
from typing import Any

# A NIK: 16 digits, not part of a longer digit run, possibly grouped as people write it
# (3201 0141 0190 0001, 320101 410190 0001, the Kemendagri dotted region 32.01.01.410190.0001):
# a space, or a dot, dash, slash or underscore with a space either side or not, after the
# province, regency, district, birth day and birth date (digits 2, 4, 6, 8, 12) and digit 14.
# A "+" is a space too: a form body is stored URL-encoded (quarantine show prints it).
_SEP = r"(?:[ \u00a0+]?[.\-_/][ \u00a0+]?|[ \u00a0+]{1,2})?"
# Or the 16 digits in any other groups of one to six (3 2 0 1 0 1 4 1 …, 320 101 410 190 0001,
# 3.2.0.1…), as normalizer.find_niks reads them: at least three groups, one separator throughout
# and the shape of a NIK (no leading 0, a birth day and month), checked in _mask_nik, so that
# two dates or addresses side by side (05.12.2024 06.12.2024) are left alone.
_LSEP = _SEP[:-1]  # the same separators, one of them required
_NIK = re.compile(
    rf"(?=\d)(?<!\d)(?:(\d{{2}}){_SEP}(\d{{2}}){_SEP}(\d{{2}}){_SEP}\d{{2}}{_SEP}\d{{4}}{_SEP}\d{{2}}{_SEP}"
    rf"(\d{{2}})(?!\d)"
    rf"|(?<!\d[ \u00a0+.\-_/])\d{{1,6}}(?:{_LSEP}\d{{1,6}}){{2,15}}(?!\d|{_LSEP}\d))"
)
_NOT_DIGITS = re.compile(r"\D+")
# Indonesian phone numbers: +62 / (+62) / +62 (0) / 62 / 0062 / 0 followed by 8-13 digits,
# separators allowed; URL-encoded too, as a bridge's request or a form body is stored ("+" as
# %2B, a space as "+": "hubungi+0812…"), and after an underscore (a Gammu inbox file is named
# after its sender: IN20261204_135929_00_+6281234567890_00.txt); never after a letter or digit.
# A non-breaking space (a copy from a web page or a word processor) separates like a space, and
# a dash may have a space either side (0812 - 3456 - 7890), as normalizer.find_phones reads it.
# Never the fraction of a second of a time (08:58:49.096123+00:00, in a datetime field).
# Digits may also be written one by one (0 8 1 2 …, 0.8.1.2…, + 6 2 8 1 2 …) or, a mobile number
# (8, an operator digit), in groups of any size (08 12 34 56 78 90): normalizer.find_phones reads
# them. A decimal number is not a phone number, nor its fraction (took 0.0123456 s, 62.1234567),
# nor an address's part after a dot (10.0.100.200 10.0.0.1): a bare 0 or 62 after a digit and a
# dot starts no number.
_DASH = r"[ \u00a0]?-[ \u00a0]?"
_PSEP = rf"(?:{_DASH}|[ \u00a0]{{1,2}}|[\-.+])?"
_ONE = rf"(?:{_DASH}|[ \u00a0]{{1,2}}|[.+])"
_MSEP = rf"(?:{_DASH}|[ \u00a0])?"
_PHONE = re.compile(
    rf"(?=[(+%06])(?<![^\W_])(?<!:\d\d[.,])(\(?(?:\+|%2[Bb])62\)?(?:{_PSEP}\(0\))?"
    rf"|(?<!\d\.)(?!\d+\.\d+(?!\d|{_PSEP[:-1]}\d))(?:0062|62|0))"
    rf"(?:{_PSEP}\(?\d{{2,4}}\)?(?:{_PSEP}\d){{5,10}}"
    rf"|(?:{_ONE}\d){{9,13}}(?!{_ONE}\d)"
    rf"|{_MSEP}8{_MSEP}[1-35-9](?:{_MSEP}\d){{7,10}})(?!\d)"
)
# A mobile number written without its 0 or 62 (812 3456 7890): 8, an operator digit, then 7-10
# digits; spaces or dashes only (850.000.000 is an amount), never inside a word, an id or a
# decimal, nor after a "+" that is not a URL-encoded space after a word (+81 is Japan's code).
# Or one digit at a time, spaces between them (8 1 2 3 4 5 6 7 8 9 0), never inside a longer
# row of such digits.
_MOBILE = re.compile(
    rf"(?=8)(?<![\w*.\-])(?<![^\w]\+)(?<!^\+)()8(?:[1-35-9]\d(?:{_MSEP}\d){{6,9}}"
    r"|(?<!\d[ \u00a0]8)[ \u00a0][1-35-9](?:[ \u00a0]\d){8,10}(?![ \u00a0]\d))(?![\d*])"
)
# An e-mail address (also URL-encoded, "%40", as a form body is stored): its first character and
# its domain are kept. Never a user in a URL (amqp://guest@host), nor a host without a domain.
_EMAIL = re.compile(
    r"(?<![\w.+%/-])(\w)[\w.+%-]*(@|%40)"
    r"([A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,})(?![\w-])"
)

# What a number is written with: after one of these, a format mark is inside the number.
_IN_NUMBER = frozenset("0123456789 .-_/()+\u00a0")

_STANDARD_ATTRS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


# Left as written, never a NIK or a phone number though they look like one: row and message ids
# (UUIDs; one of all digits in its last groups looks like a NIK with a dash,
# …-8912-345678901234), and the date, time and serial that head a Gammu inbox file's name
# (IN20261204_135929_00_, 16 digits with underscores); the sender after them is masked.
_KEEP = re.compile(
    r"([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|(?<![0-9A-Za-z])IN\d{8}_\d{6}_\d{2}_)"
)


def mask_text(text: str) -> str:
    """``text`` with every NIK, phone number and e-mail address masked; ids (UUIDs, Gammu file
    names' dates) left as written."""
    # Cheap tests first: every line is masked, and nearly every one says "INFO".
    if ("-" in text or "IN2" in text) and _KEEP.search(text):
        pieces = _KEEP.split(text)  # text, id, text, id, ..., text
        return "".join(p if i % 2 else _mask(p) for i, p in enumerate(pieces))
    return _mask(text)


def _mask(text: str) -> str:
    text = _ascii_digits(text)
    text = _NIK.sub(_mask_nik, text)
    text = _PHONE.sub(_mask_phone, text)
    text = _MOBILE.sub(_mask_phone, text)
    if "@" in text or "%40" in text:
        text = _EMAIL.sub(r"\1***\2\3", text)
    return text


def _ascii_digits(text: str) -> str:
    """Digits of other scripts (full-width, Arabic-Indic...) as ASCII digits, and without the
    invisible format marks (zero-width space, word joiner...) a copy leaves inside a number: the
    normalizers read such text as a NIK or a phone number, so the masks must see it too. A mark
    elsewhere (an emoji sequence's joiner) is kept."""
    if text.isascii():
        return text
    out: list[str] = []
    for c in text:
        if c.isdecimal() and not c.isascii():
            c = str(unicodedata.decimal(c))
        elif out and out[-1] in _IN_NUMBER and unicodedata.category(c) == "Cf":
            continue  # after a digit or a separator: inside a number
        out.append(c)
    return "".join(out)


def _mask_nik(match: re.Match[str]) -> str:
    if match.group(1) is not None:
        return f"{match.group(1)}{match.group(2)}{match.group(3)}********{match.group(4)}"
    # Any other grouping: a NIK only when it has its 16 digits, one separator throughout and the
    # shape of one (province 11-99, birth day 1-31 or 41-71 for a woman, month 1-12).
    raw = match.group(0)
    digits = raw.replace(" ", "").replace("\u00a0", "").replace("+", "")
    separators = set(_NOT_DIGITS.findall(digits))
    digits = _NOT_DIGITS.sub("", digits)
    day, month = int(digits[6:8] or 0), int(digits[8:10] or 0)
    if (
        len(digits) != 16
        or len(separators) > 1
        or digits[0] == "0"
        or not (1 <= day <= 31 or 41 <= day <= 71)
        or not 1 <= month <= 12
    ):
        return raw
    return f"{digits[:6]}********{digits[14:]}"


def _mask_phone(match: re.Match[str]) -> str:
    raw = match.group(0)
    digits = [i for i, c in enumerate(raw) if c.isdigit()]
    keep_tail = set(digits[-3:])
    prefix_len = len(match.group(1)) + 2
    return "".join(
        c if (not c.isdigit() or i < prefix_len or i in keep_tail) else "*"
        for i, c in enumerate(raw)
    )


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS}


def _masked_value(value: Any) -> Any:
    """``value`` with every text in it masked, before it is encoded: in the JSON text a line
    break or a tab is ``\\n`` or ``\\t``, and a number right after one would follow a letter
    there, where the masks take it for the middle of a word. A number whose digits are masked
    (an extra field holding a phone number as an int) becomes the masked text; any other
    object, its ``str()``, masked."""
    if isinstance(value, str):
        return mask_text(value)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        shown = mask_text(str(value))
        return value if shown == str(value) else shown
    if isinstance(value, dict):
        return {mask_text(str(k)): _masked_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_masked_value(v) for v in value]
    if isinstance(value, bytes | bytearray):
        # Not its repr: a line break there is "\n", and a number after it would follow a letter.
        return mask_text(bytes(value).decode("utf-8", "backslashreplace"))
    return mask_text(_text(value))


def _text(value: object) -> str:
    """``str(value)``, or a word for a value whose ``str()`` fails: the line is still written
    (logging would otherwise print its own report, arguments in clear, to stderr)."""
    try:
        return str(value)
    except Exception:
        return f"<unprintable {type(value).__name__}>"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the record's extra fields, and
    the exception and stack when there are. Each value is masked before the line is encoded
    (:func:`_masked_value`)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "level": record.levelname,
            "logger": record.name,
            "message": _message(record),
        }
        entry.update(_fields(record))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        shown = {mask_text(k): _masked_value(v) for k, v in entry.items()}
        # The line's own time, first, after the fields: an extra field named "time" is masked
        # and kept under a name of its own below it ("extra_time", or "extra_extra_time"...
        # when a field holds that name too).
        moment = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        line: dict[str, Any] = {"time": moment}
        for key, value in shown.items():
            if key == "time":
                key = "extra_time"
                while key in shown:
                    key = "extra_" + key
            line[key] = value
        return json.dumps(line, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """Human-readable lines for a terminal, masked the same way."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        record.message = _message(record)
        if self.usesTime():
            record.asctime = self.formatTime(record, self.datefmt)
        line = self.formatMessage(record)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line += "\n" + record.exc_text
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        extra = _fields(record)
        if extra:
            line += " " + " ".join(f"{k}={_text(v)}" for k, v in extra.items())
        return mask_text(line)


def _message(record: logging.LogRecord) -> str:
    """The record's message, or its format and a word for arguments that do not fit it (or
    whose ``str()`` fails): the line is still written, masked (logging would otherwise print
    its own report, the arguments in clear, to stderr)."""
    try:
        return record.getMessage()
    except Exception:
        return f"{_text(record.msg)} <unformattable arguments>"


# Library lines our own code reports better, by (logger, message format): the level they are
# written at instead. aiormq logs every refused connection at ERROR, the relay's retries too,
# while the relay's own warning ("outbox relay failed, retrying in …s", reason
# broker-unreachable) already names the error and the back-off; a night of broker outage would
# otherwise page whoever watches ERROR lines once per retry.
_DEMOTED = {
    ("aiormq.connection", "error when creating transport: %r"): logging.DEBUG,
}


class LibraryNoise(logging.Filter):
    """Writes the lines of :data:`_DEMOTED` at their lower level, and only when the root
    logger's level lets that level through."""

    def filter(self, record: logging.LogRecord) -> bool:
        level = _DEMOTED.get((record.name, record.msg))
        if level is None or record.levelno <= level:
            return True
        record.levelno, record.levelname = level, logging.getLevelName(level)
        return logging.getLogger().isEnabledFor(level)


def configure(level: str = "INFO", fmt: str = "json") -> None:
    """Send every log line to stderr through the masking formatter."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(LibraryNoise())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
