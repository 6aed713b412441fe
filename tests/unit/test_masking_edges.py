"""Masking at the edges: a NIK or phone number typed, as people write them, where a quarantine
entry id goes; log values whose ``str()`` fails, held in bytes, or named like the line's own
time."""

from __future__ import annotations

import io
import logging

import pytest

from gateway.cli import main
from gateway.logs import JsonFormatter

NIK = "3201014101900001"


@pytest.mark.parametrize(
    ("argv", "typed", "digits"),
    [
        (["quarantine", "show"], "3201 0141 0190 0001", "0141 0190"),
        (["quarantine", "replay"], "32.01.01.410190.0001", "410190"),
        (["quarantine", "show"], "+62 812-3456-7890", "3456"),
    ],
)
def test_a_grouped_nik_or_phone_typed_as_quarantine_id_is_masked_in_the_usage_error(
    argv: list[str], typed: str, digits: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # The usage error (exit 2) names what was typed, masked: only a NIK of 16 bare digits,
    # which argparse takes as a number, reached the command's own masking.
    with pytest.raises(SystemExit) as stop:
        main([*argv, typed])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "not a quarantine entry id" in err, err
    assert digits not in err, err


class _Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no text for this object")

    __repr__ = __str__


def test_a_log_value_whose_str_raises_writes_its_line_and_no_nik_in_clear(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A failing str() made format() raise: the line was lost, and logging's own report wrote
    # the call's arguments, the NIK among them, to stderr in clear.
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger("gateway.test.unprintable")
    log.handlers[:] = [handler]
    log.propagate = False
    log.setLevel(logging.INFO)
    try:
        log.warning("NIK %s", NIK, extra={"thing": _Unprintable()})
    finally:
        log.handlers[:] = []
    err = capsys.readouterr().err
    assert NIK not in err, err[-800:]
    assert "320101********01" in out.getvalue() and "<unprintable _Unprintable>" in out.getvalue()


@pytest.mark.parametrize(
    ("value", "clear"),
    [("reply to 081234567890", "081234567890"), (NIK, NIK)],
)
def test_an_extra_field_named_time_is_masked_like_every_other_value(
    value: str, clear: str
) -> None:
    # It replaced the line's own time, and went out unmasked as that time was.
    record = logging.LogRecord("gateway.test", logging.INFO, __file__, 1, "received", None, None)
    record.time = value
    line = JsonFormatter().format(record)
    assert clear not in line and '"extra_time": ' in line, line
    assert line.startswith('{"time": "20'), line


def test_a_phone_number_after_a_line_break_in_a_bytes_value_is_masked() -> None:
    # Masked in its repr, the line break was again the two characters "\n": the number
    # followed the letter n, and the phone pattern took it for the middle of a word.
    record = logging.LogRecord("gateway.test", logging.INFO, __file__, 1, "sms", None, None)
    record.body = b"Lapor jalan rusak\n081234567890"
    line = JsonFormatter().format(record)
    assert "081234567890" not in line, line
