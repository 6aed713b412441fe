"""The SMS grammar names the tracking ID a complaint says it is about (``ComplaintDraft.about``).

The intake adds such a message to that complaint when its sender holds the ID
(tests/integration/test_followups.py); the grammar only finds the ID, in one word or in its two
printed groups, and leaves it in the body as written.
"""

from __future__ import annotations

import pytest

from channels.sms.grammar import Intent, interpret
from gateway import tracking

SENDER = "+6281234567890"
TID = "K7QM4XRT" + tracking._check_symbol("K7QM4XRT")
SHOWN = tracking.display(TID)
CUSTOMER = "532987699"  # a PDAM customer number that passes the check symbol


@pytest.mark.parametrize(
    "text",
    [
        f"Laporan {TID} lubangnya makin besar, kemarin 2 motor jatuh",
        f"laporan {SHOWN.lower()} belum ada tindak lanjut sudah 2 minggu jalan makin parah",
        f"Tolong cek {SHOWN}, lubangnya makin besar, kemarin 2 motor jatuh",
        f"{TID} ditutup sepihak padahal jalan belum diperbaiki",
        f"NIK 3209014101900001 laporan {TID} sekarang makin parah jalannya",
        f"RAHASIA laporan no {SHOWN[:4]} {SHOWN[5:]} petugasnya minta uang lagi kemarin",
    ],
)
def test_a_complaint_naming_an_id_is_about_it(text: str) -> None:
    read = interpret(text, SENDER, {})
    assert read.intent is Intent.COMPLAINT and read.draft is not None
    assert read.draft.about == TID
    assert TID in read.draft.body.upper().replace("-", "").replace(" ", "")


@pytest.mark.parametrize(
    "text",
    [
        "Jalan Siliwangi depan pasar berlubang besar, motor sering jatuh",
        # An ID with a wrong check symbol is no ID.
        f"Laporan {TID[:-1]}{'2' if TID[-1] != '2' else '3'} lubangnya makin besar kemarin",
    ],
)
def test_a_complaint_without_a_valid_id_is_about_nothing(text: str) -> None:
    read = interpret(text, SENDER, {})
    assert read.draft is not None and read.draft.about is None


def test_a_status_query_is_no_complaint_about_its_id() -> None:
    read = interpret(f"Tolong cek {SHOWN} ya kak", SENDER, {})
    assert (read.intent, read.tracking_id, read.draft) == (Intent.STATUS, TID, None)


def test_ordinary_words_passing_for_an_id_are_about_it_and_maybe_a_query() -> None:
    # "PDAM TAMAN" passes the check symbol: the service looks it up (a status query if it
    # exists); filed, it names it, and the intake finds no complaint of its sender under it.
    read = interpret("Tolong cek PDAM Taman Sari air mati", SENDER, {})
    assert read.draft is not None
    assert read.maybe_status == read.draft.about == tracking.normalize("PDAMTAMAN")


@pytest.mark.parametrize(
    "text",
    [
        # The ID as printed, then a customer number (one word with digits) later on.
        f"Laporan {SHOWN} tagihan PDAM no pelanggan {CUSTOMER} sekarang naik jadi 2 juta",
        f"{SHOWN} belum diperbaiki padahal pipa PDAM {CUSTOMER} bocor lagi kemarin",
        # Ordinary words before the ID that pass the check symbol (no digit in them).
        f"Laporan PDAM Taman Sari {SHOWN} airnya masih mati sejak kemarin",
        f"Pungli di kejaksaan negeri, laporan {SHOWN}, kemarin diminta uang lagi 500 ribu",
    ],
)
def test_the_printed_id_is_what_a_followup_is_about(text: str) -> None:
    """Siti copies her ID from the receipt ("K7QM-4XRT9", two groups) into her news, beside a
    customer number or ordinary words that pass the check symbol too: the ID of letters and
    digits is the one her news is about."""
    # What makes these bite: each of these reads as a valid tracking ID.
    assert {tracking.normalize(w) for w in (CUSTOMER, "PDAMTAMAN", "KEJAKSAAN")} == {
        CUSTOMER, "PDAMTAMAN", "KEJAKSAAN"
    }
    read = interpret(text, SENDER, {})
    assert read.intent is Intent.COMPLAINT and read.draft is not None
    assert read.draft.about == TID
