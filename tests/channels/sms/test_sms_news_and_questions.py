"""News about a complaint, or a question about it: an SMS naming its ID with new facts is filed,
one asking after it (with or without CEK, with or without the ID) is a status query, and a
customer number that passes the check symbol is no ID."""

from __future__ import annotations

import pytest

from channels.sms.grammar import Intent, interpret
from channels.sms.settings import DEFAULT_REGIONS
from gateway import tracking

SENDER = "+6281200000001"
TID = "K7QM4XRT" + tracking._check_symbol("K7QM4XRT")  # K7QM4XRTX
SHOWN = f"{TID[:4]}-{TID[4:]}"
# A 9-digit customer / account number that happens to pass the check symbol (as about 1 in
# 30 of the 9-digit numbers written with the digits 2-9 do).
NUMBER = "532987699"
assert tracking.normalize(NUMBER) == NUMBER


def read(text: str):
    return interpret(text, SENDER, DEFAULT_REGIONS)


@pytest.mark.parametrize(
    "text",
    [
        f"Tolong cek {TID}, lubangnya makin besar, kemarin 2 motor jatuh dan 1 org patah kaki",
        f"Mohon dicek {TID}, status selesai tp air PDAM masih mati sampai hari ini",
        f"Min, dicek {TID} ya, sekarang pelakunya mengancam saya",
        f"Bu tolong cek {TID} sekarang saya diancam kepala desa krn lapor",
        f"Mohon dicek {TID}, petugas PDAM malah minta uang 300rb",
    ],
)
def test_courtesy_led_cek_with_the_own_id_and_new_facts_is_filed_as_evidence(text: str) -> None:
    """The citizen names their complaint and reports NEW facts (more victims, the problem not
    fixed though marked SELESAI, threats, an officer asking for money): filed (dedup joins it),
    not answered with the status alone, the facts dropped."""
    result = read(text)
    assert result.intent is Intent.COMPLAINT
    assert result.maybe_status is None  # the ID exists: a look-up would answer the status


@pytest.mark.parametrize(
    "text",
    [
        f"Tolong cek meteran PDAM no {NUMBER}, tagihan naik 5x lipat padahal rumah kosong",
        f"Mohon dicek tagihan PDAM {NUMBER} bulan ini 2 juta, biasanya 80rb",
        f"Pak tolong cek no pelanggan {NUMBER} air tdk mengalir sejak senin",
        f"Mohon dicek nomor rekening {NUMBER} penipuan jual beli online",
    ],
)
def test_courtesy_led_cek_with_a_number_passing_the_check_symbol_is_a_complaint(
    text: str,
) -> None:
    """A water bill, no-water or fraud complaint quoting a 9-digit customer or account number
    that passes the check symbol (1 in 30 do): a complaint, not a status query answered "No.
    lacak ... tidak ditemukan"."""
    result = read(text)
    assert result.intent is Intent.COMPLAINT


def test_objection_to_a_closed_report_naming_its_id_is_filed() -> None:
    """"K7QM4XRTX ditutup sepihak, mohon dicek": the citizen objects to the closure, which is
    filed, not answered with the status they know already."""
    result = read(f"{TID} ditutup sepihak, mohon dicek")
    assert result.intent is Intent.COMPLAINT and result.maybe_status is None


@pytest.mark.parametrize(
    "text",
    [
        f"Info {TID}",
        f"Lacak {TID}",
        f"No lacak {SHOWN}",
        f"{SHOWN} gmn?",
        f"Laporan {TID} sampai mana?",
        f"Laporan sy {SHOWN} sdh sampai mana ya",
        f"Gimana laporan saya {TID}?",
        f"Mohon info laporan {TID}",
        f"Kapan laporan {TID} diproses?",
    ],
)
def test_status_query_with_the_id_but_without_cek_is_not_filed(text: str) -> None:
    """The citizen asks where their report is, quoting its ID, without typing CEK/STATUS: a
    status query, not a new complaint with a new tracking ID."""
    result = read(text)
    assert result.intent is Intent.STATUS or result.maybe_status == TID


def test_a_lone_tracking_id_asks_for_its_status() -> None:
    """Only the ID (copied from the receipt): the citizen asks its status."""
    result = read(SHOWN)
    assert result.intent is Intent.STATUS or result.maybe_status == TID


@pytest.mark.parametrize(
    "text",
    [
        "Cek laporan sy udah diproses blm",
        "Cek laporan saya udah diproses belum?",
        "Laporan saya sudah dicek belum?",
        "Sdh dicek blm pak?",
    ],
)
def test_status_query_without_id_asking_whether_yet_is_not_filed(text: str) -> None:
    """"Has my report been processed/checked yet?" without an ID: a status query (how to ask),
    not a new complaint."""
    assert read(text).intent is Intent.STATUS
