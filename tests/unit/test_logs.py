import io
import json
import logging

import pytest

from gateway.logs import JsonFormatter, TextFormatter, mask_text

NIKS = ["3201014101900001", "3201 0141 0190 0001", "3201.0141.0190.0001"]
PHONES = ["+6281234567890", "081234567890", "0812-3456-7890", "62 812 3456 7890", "(0231) 123456"]


@pytest.mark.parametrize("nik", NIKS)
def test_nik_is_masked(nik: str) -> None:
    masked = mask_text(f"pelapor NIK {nik} mengadu")
    digits = "".join(c for c in masked if c.isdigit())
    assert "0141" not in masked and "0190" not in masked
    assert digits.startswith("320101") and "********" in masked


@pytest.mark.parametrize("phone", PHONES)
def test_phone_is_masked(phone: str) -> None:
    masked = mask_text(f"hubungi {phone} ya")
    assert phone not in masked
    assert "*" in masked
    # the last three digits stay, for an operator to tell numbers apart
    assert masked.rstrip(" ya").endswith(phone[-3:])


def test_other_numbers_are_left_alone() -> None:
    text = "tracking K7QM4XRT9, 12 rumah, tahun 2024, id 123456789012345678901"
    assert mask_text(text) == text


def _emit(formatter: logging.Formatter, *args: object, **extra: object) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    logger = logging.getLogger("test.masking")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    try:
        raise ValueError("NIK 3201014101900001 rejected")
    except ValueError:
        logger.exception("intake from %s nik=%s", *args, extra=extra)
    return stream.getvalue()


@pytest.mark.parametrize("formatter", [JsonFormatter(), TextFormatter()])
def test_every_part_of_a_log_line_is_masked(formatter: logging.Formatter) -> None:
    out = _emit(formatter, "+6281234567890", "3201014101900001", sender="081234567890",
                nik="3201 0141 0190 0001")
    for secret in ("81234567890", "3201014101900001", "0141 0190", "1234567"):
        assert secret not in out
    assert "intake from" in out


def test_json_lines_are_json_with_fields() -> None:
    out = _emit(JsonFormatter(), "x", "y", channel="sms")
    entry = json.loads(out)
    assert entry["channel"] == "sms"
    assert entry["level"] == "ERROR"
    assert "ValueError" in entry["exception"]
