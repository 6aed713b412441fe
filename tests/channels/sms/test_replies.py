"""Every reply fits one GSM-7 SMS (160 basic characters) with its longest inputs."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from channels.sms import gsm, replies
from gateway import queries, tracking

LONGEST_CODE = "9" * replies.MAX_SHORT_CODE
TID = "ZZZZZZZZ" + tracking._check_symbol("ZZZZZZZZ")
WHEN = datetime(2026, 12, 31, 23, 59, tzinfo=UTC)

ALL = [
    replies.accepted(TID, LONGEST_CODE, nik_rejected=True),
    replies.accepted(TID, LONGEST_CODE),
    replies.followup(TID, LONGEST_CODE),
    replies.followup(TID, LONGEST_CODE, nik_rejected=True),
    replies.quarantined(TID),
    replies.quarantined(None),
    replies.empty(LONGEST_CODE),
    replies.help_text(LONGEST_CODE),
    replies.help_text(LONGEST_CODE, english=True),
    replies.status_unknown(LONGEST_CODE),
    replies.status_unknown(LONGEST_CODE, TID),
    replies.status_unknown(LONGEST_CODE, "z" * 40 + "€ñ{}_@$"),  # cut to 10, cleaned
    *(replies.status_found(TID, s, WHEN) for s in replies.STATUS_NAMES),
    replies.status_found(TID, "some_future_status_with_a_long_name", WHEN),
    # The longest date: every date is dd-mm-yyyy; the year's last day in UTC is WIB's next year.
    replies.status_found(TID, "verified", datetime(9998, 12, 31, 23, 59, tzinfo=UTC)),
    *(replies.status_found(TID, s, WHEN) for s in queries.CLOSED_STATUSES),
    replies.accepted(TID, LONGEST_CODE + "€ñ{}" * 10),  # a bad short code is cleaned and cut
    *(replies.status_changed(TID, s, WHEN, LONGEST_CODE) for s in replies.STATUS_NAMES),
    replies.status_changed(TID, "some_future_status_with_a_long_name", WHEN, LONGEST_CODE),
    replies.status_changed(TID, "verified", datetime(9998, 12, 31, 23, 59, tzinfo=UTC), "1708"),
]


@pytest.mark.parametrize("text", ALL)
def test_every_reply_fits_one_gsm7_segment(text: str) -> None:
    assert len(text) <= replies.SEGMENT, (len(text), text)
    assert replies.is_gsm7_basic(text), [c for c in text if c not in replies.GSM7_BASIC]


@pytest.mark.parametrize("text", ALL)
def test_every_reply_reads_the_same_whatever_the_smscs_default_alphabet(text: str) -> None:
    # Kannel and Jasmin send replies with coding=0, the SMSC's default alphabet: GSM 03.38 on
    # most links, ASCII or Latin-1 on some, and Jasmin converts the content to GSM septets
    # where another hop passes the ASCII bytes on. A status the routing core names
    # "waiting_for_info" was sent as "WAITING_FOR_INFO": ASCII's "_" (0x5F) is GSM's "§", and
    # GSM's "_" (0x11) is a control character in Latin-1.
    assert replies.is_portable(text), [c for c in text if c not in replies.PORTABLE]
    septets = bytes(gsm.BASIC.index(c) for c in text)
    assert gsm.decode_unpacked(septets) == text
    assert septets.decode("latin-1") == text  # the same octets read as ASCII / Latin-1


def test_the_portable_characters_have_one_code_in_gsm_and_ascii() -> None:
    assert replies.PORTABLE == {
        c for c in map(chr, range(0x20, 0x7F)) if gsm.BASIC[ord(c)] == c
    }


def test_an_unknown_status_reads_in_words_without_underscores() -> None:
    assert replies.status_found(TID, "waiting_for_info", WHEN).endswith(
        "status WAITING FOR INFO."
    )
    changed = replies.status_changed("K7QM4XRT9", "on__hold_", WHEN, "1708")
    assert "kini berstatus ON HOLD (01-01-2027)." in changed


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


def test_a_status_change_says_the_new_status_and_its_day_in_indonesia() -> None:
    text = replies.status_changed("K7QM4XRT9", "forwarded", WHEN, "1708")
    assert text == (
        "LAPOR! Laporan K7QM-4XRT9 kini berstatus DITERUSKAN (01-01-2027). "
        "Cek: kirim CEK K7QM4XRT9 ke 1708."
    )


def test_extension_characters_are_not_basic() -> None:
    assert not replies.is_gsm7_basic("€") and not replies.is_gsm7_basic("[")
    assert replies.is_gsm7_basic("@£$¥ÄÖÑÜ§¿")


KANNEL_CONF = Path(__file__).resolve().parents[3] / "config" / "kannel" / "kannel.conf"


def test_the_texts_smsbox_itself_sends_fit_one_gsm7_segment_in_indonesian() -> None:
    # When the gateway stays unreachable past the retries, smsbox answers the citizen itself.
    texts = re.findall(r'^reply-\w+ = "(.*)"$', KANNEL_CONF.read_text(), re.MULTILINE)
    assert len(texts) == 2
    for text in texts:
        assert text.startswith("LAPOR! Maaf,") and len(text) <= replies.SEGMENT
        assert replies.is_gsm7_basic(text) and replies.is_portable(text)


@pytest.mark.parametrize("status", ["received", *queries.CLOSED_STATUSES])
def test_every_status_the_gateway_knows_reads_in_indonesian(status: str) -> None:
    # queries.CLOSED_STATUSES lists the routing core's closed statuses: "archived" came out as
    # "status ARCHIVED." (an English word) in the reply to CEK.
    text = replies.status_found(TID, status, WHEN)
    assert text.rsplit("status ", 1)[1].rstrip(".") in set(replies.STATUS_NAMES.values())


def test_help_shows_the_nik_label_the_grammar_needs() -> None:
    # "Boleh tambah NIK 16 digit" reads as "add your 16-digit NIK": a bare 16-digit number is
    # neither linked nor removed from the text (it may be a family card number), so the NIK
    # the citizen was told to add stays in the body of the complaint.
    assert replies.help_text("1708") == (
        "LAPOR! Kirim isi laporan ke 1708. Cek status: CEK no.lacak. Boleh tambah "
        "NIK<spasi>16digit. RAHASIA: tidak dipublikasikan. ANONIM: identitas disamarkan."
    )


def test_help_in_english_keeps_the_keywords_the_grammar_reads() -> None:
    assert replies.help_text("1708", english=True) == (
        "LAPOR! Send your report to 1708. Status: CEK tracking-no. Optional: NIK<space>16digits. "
        "RAHASIA: not published. ANONIM: name hidden."
    )


def test_the_empty_reply_does_not_call_a_message_with_only_a_nik_empty() -> None:
    # The same reply answers an empty SMS, a lone NIK, a lone region keyword or a bare number.
    text = replies.empty("1708")
    assert "kosong" not in text
    assert text == (
        "LAPOR! Pesan Anda belum berisi laporan. Tulis isi laporan lalu kirim ke 1708. "
        "Bantuan: kirim INFO ke 1708."
    )


async def test_the_letter_acknowledgement_is_the_receipt_in_one_segment() -> None:
    # channels/letter/ack.py: the SMS a citizen gets for a confirmed paper letter.
    from typing import cast

    from channels.letter.ack import SmsAck
    from channels.sms.message import Bridge
    from channels.sms.ports import NewReply, ReplyDecision, ReplyOutbox, ReplyStatus

    queued: list[NewReply] = []

    class Outbox:
        async def enqueue(self, reply: NewReply) -> ReplyDecision:
            queued.append(reply)
            return ReplyDecision(1, ReplyStatus.PENDING, reply.body, True)

    ack = SmsAck(cast(ReplyOutbox, Outbox()), Bridge.KANNEL, LONGEST_CODE)
    assert await ack.acknowledge("raw-1", TID, "+6281234567890") is not None
    assert await ack.acknowledge("raw-2", TID, "+62224231234") is None  # a landline: no SMS
    (reply,) = queued
    assert reply.body == replies.accepted(TID, LONGEST_CODE) and reply.kind == "receipt"
    assert len(reply.body) <= replies.SEGMENT and replies.is_portable(reply.body)
    assert "6281234567890" not in reply.body


def test_a_status_query_without_an_id_is_told_how_to_ask() -> None:
    # "CEK" alone, "Cek status laporan saya": nothing was looked for, so "not found, check the
    # number again" told the citizen about a number they never sent.
    text = replies.status_unknown("1708", "")
    assert text == (
        "LAPOR! Untuk cek status, kirim CEK<spasi>no.lacak ke 1708, contoh: CEK K7QM4XRT9. "
        "No. lacak ada di tanda terima laporan Anda."
    )
    assert not tracking.is_valid("K7QM4XRT9")  # the example is nobody's tracking ID


def test_an_id_not_found_is_shown_as_it_was_read() -> None:
    # The citizen sees the typo (a 0 for a Q, a symbol left out) beside the SMS that has the ID.
    assert replies.status_unknown("1708", "k70m4xrt9") == (
        "LAPOR! No. lacak K70M4XRT9 tidak ditemukan. Periksa lagi nomornya, "
        "lalu kirim CEK no.lacak ke 1708."
    )
    assert replies.status_unknown("1708", TID).startswith(
        f"LAPOR! No. lacak {tracking.display(TID)} tidak ditemukan."
    )
