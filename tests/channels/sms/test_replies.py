"""Every reply fits one GSM-7 SMS (160 basic characters) with its longest inputs."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from channels.sms import replies
from gateway import tracking

LONGEST_CODE = "9" * replies.MAX_SHORT_CODE
TID = "ZZZZZZZZ" + tracking._check_symbol("ZZZZZZZZ")
WHEN = datetime(2026, 12, 31, 23, 59, tzinfo=UTC)

ALL = [
    replies.accepted(TID, LONGEST_CODE, nik_rejected=True),
    replies.accepted(TID, LONGEST_CODE),
    replies.quarantined(TID),
    replies.quarantined(None),
    replies.empty(LONGEST_CODE),
    replies.help_text(LONGEST_CODE),
    replies.status_unknown(LONGEST_CODE),
    *(replies.status_found(TID, s, WHEN) for s in replies.STATUS_NAMES),
    replies.status_found(TID, "some_future_status_with_a_long_name", WHEN),
    replies.accepted(TID, LONGEST_CODE + "€ñ{}" * 10),  # a bad short code is cleaned and cut
]


@pytest.mark.parametrize("text", ALL)
def test_every_reply_fits_one_gsm7_segment(text: str) -> None:
    assert len(text) <= replies.SEGMENT, (len(text), text)
    assert replies.is_gsm7_basic(text), [c for c in text if c not in replies.GSM7_BASIC]


def test_the_date_in_a_status_reply_is_the_date_in_indonesia() -> None:
    # Received at 05:00 WIB on 1 December: 22:00 UTC on 30 November.
    text = replies.status_found(TID, "received", datetime(2026, 11, 30, 22, 0, tzinfo=UTC))
    assert "(diterima 01-12-2026)" in text


def test_accepted_reply_reads_as_specified() -> None:
    assert replies.accepted("K7QM4XRT9", "1708") == (
        "LAPOR! Laporan diterima. No. lacak: K7QM-4XRT9. Cek status: kirim CEK K7QM4XRT9 ke 1708."
    )


def test_status_reply_has_no_content_only_status_and_date() -> None:
    text = replies.status_found(TID, "in_progress", WHEN)
    # 23:59 UTC on 31 December is already 1 January in WIB.
    assert text == f"LAPOR! Laporan {TID[:4]}-{TID[4:]} (diterima 01-01-2027): status DIPROSES."


def test_extension_characters_are_not_basic() -> None:
    assert not replies.is_gsm7_basic("€") and not replies.is_gsm7_basic("[")
    assert replies.is_gsm7_basic("@£$¥ÄÖÑÜ§¿")
