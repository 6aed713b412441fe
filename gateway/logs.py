"""Structured logging with personal data masked in every line.

Whatever a log call passes (message, arguments, ``extra`` fields, exception text), the formatter
masks NIKs (16 digits, also written in groups) and Indonesian phone numbers before the line is
written. Masking happens in the formatter, the last step, so no handler can see the raw values.
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
_NIK = re.compile(
    rf"(?<!\d)(\d{{2}}){_SEP}(\d{{2}}){_SEP}(\d{{2}}){_SEP}\d{{2}}{_SEP}\d{{4}}{_SEP}\d{{2}}{_SEP}"
    rf"(\d{{2}})(?!\d)"
)
# Indonesian phone numbers: +62 / (+62) / +62 (0) / 62 / 0062 / 0 followed by 8-13 digits,
# separators allowed; URL-encoded too, as a bridge's request or a form body is stored ("+" as
# %2B, a space as "+": "hubungi+0812…"), and after an underscore (a Gammu inbox file is named
# after its sender: IN20261204_135929_00_+6281234567890_00.txt); never after a letter or digit.
# A non-breaking space (a copy from a web page or a word processor) separates like a space, and
# a dash may have a space either side (0812 - 3456 - 7890), as normalizer.find_phones reads it.
# Never the fraction of a second of a time (08:58:49.096123+00:00, in a datetime field).
_DASH = r"[ \u00a0]?-[ \u00a0]?"
_PSEP = rf"(?:{_DASH}|[ \u00a0\-.+])?"
_PHONE = re.compile(
    rf"(?<![^\W_])(?<!:\d\d[.,])(\(?(?:\+|%2[Bb])62\)?(?:{_PSEP}\(0\))?|0062|62|0){_PSEP}"
    rf"(\(?\d{{2,4}}\)?)(?:{_PSEP}\d){{5,10}}(?![\d])"
)
# A mobile number written without its 0 or 62 (812 3456 7890): 8, an operator digit, then 7-10
# digits; spaces or dashes only (850.000.000 is an amount), never inside a word, an id or a
# decimal, nor after a "+" that is not a URL-encoded space after a word (+81 is Japan's code).
_MOBILE = re.compile(
    rf"(?<![\w*.\-])(?<![^\w]\+)(?<!^\+)()8[1-35-9]\d(?:(?:{_DASH}|[ \u00a0])?\d){{6,9}}"
    r"(?![\d*])"
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
    """``text`` with every NIK and phone number masked; ids (UUIDs, Gammu file names' dates)
    left as written."""
    # Cheap tests first: every line is masked, and nearly every one says "INFO".
    if ("-" in text or "IN2" in text) and _KEEP.search(text):
        pieces = _KEEP.split(text)  # text, id, text, id, ..., text
        return "".join(p if i % 2 else _mask(p) for i, p in enumerate(pieces))
    return _mask(text)


def _mask(text: str) -> str:
    text = _ascii_digits(text)
    text = _NIK.sub(lambda m: f"{m.group(1)}{m.group(2)}{m.group(3)}********{m.group(4)}", text)
    text = _PHONE.sub(_mask_phone, text)
    return _MOBILE.sub(_mask_phone, text)


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


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the record's extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(_fields(record))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return mask_text(json.dumps(entry, ensure_ascii=False, default=str))


class TextFormatter(logging.Formatter):
    """Human-readable lines for a terminal, masked the same way."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extra = _fields(record)
        if extra:
            line += " " + " ".join(f"{k}={v}" for k, v in extra.items())
        return mask_text(line)


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
