"""The Indonesian SMS grammar and the pure parser on recorded Kannel requests."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from channels.sms import PARSERS, grammar
from channels.sms.grammar import Intent, interpret
from channels.sms.settings import DEFAULT_REGIONS
from gateway import tracking
from gateway.domain import Channel, ComplaintDraft, NotAComplaint, RawInbound
from gateway.errors import ParseError

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "kannel"
SENDER = "+6281200000001"
NIK = "3201014101900001"
TID = "K7QM4XRT" + tracking._check_symbol("K7QM4XRT")


def read(text: str, sender: str = SENDER) -> grammar.Interpretation:
    return interpret(text, sender, DEFAULT_REGIONS)


def draft_of(text: str) -> ComplaintDraft:
    result = read(text)
    assert result.intent is Intent.COMPLAINT and result.draft is not None
    return result.draft


def raw(name: str) -> RawInbound:
    body = (FIXTURES / f"{name}.txt").read_bytes().rstrip(b"\n")
    return RawInbound(Channel.SMS, body, datetime(2026, 11, 23, tzinfo=UTC))


@pytest.mark.parametrize(
    "text",
    [
        f"CEK {TID}",
        f"cek {TID[:4]}-{TID[4:]}",
        f"Cek: {TID.lower()}.",
        f"  cek#{TID}!",
        f"CEK {TID[:4]} {TID[4:]}",
        f"jabar cek {TID}",
        f"STATUS {TID}",
    ],
)
def test_status_query(text: str) -> None:
    result = read(text)
    assert result.intent is Intent.STATUS and result.tracking_id == TID == result.typed
    assert result.outcome == NotAComplaint("status-query")


def test_status_query_with_a_mistyped_id_is_still_a_query() -> None:
    wrong = TID[:-1] + ("2" if TID[-1] != "2" else "3")
    result = read(f"CEK {wrong}")
    assert result.intent is Intent.STATUS and result.tracking_id is None


def test_cek_followed_by_a_sentence_is_a_complaint() -> None:
    draft = draft_of("Cek jalan di depan rumah saya, rusak parah")
    assert draft.body == "Cek jalan di depan rumah saya, rusak parah"


@pytest.mark.parametrize("text", ["INFO", "info", "Bantuan?", " BANTUAN ! ", "dki info"])
def test_help(text: str) -> None:
    result = read(text)
    assert result.intent is Intent.HELP and result.outcome == NotAComplaint("help")


def test_info_followed_by_text_is_a_complaint() -> None:
    assert draft_of("Info: lampu jalan mati di RT 03").body == "Info: lampu jalan mati di RT 03"


def test_plain_complaint_with_phone_in_e164() -> None:
    draft = draft_of("  Jalan berlubang di depan pasar Sumber.\r\nMohon segera diperbaiki.  ")
    assert draft.body == "Jalan berlubang di depan pasar Sumber.\r\nMohon segera diperbaiki."
    assert draft.reporter.phone == "+6281200000001"
    assert draft.reporter.nik is None and draft.location is None
    assert not draft.privacy.anonymous and not draft.privacy.confidential


def test_sender_in_national_form_becomes_e164() -> None:
    assert draft_of_sender("081200000001").reporter.phone == "+6281200000001"


def draft_of_sender(sender: str) -> ComplaintDraft:
    result = read("Sampah menumpuk", sender=sender)
    assert result.draft is not None
    return result.draft


def test_sender_that_is_not_a_phone_number_leaves_phone_empty() -> None:
    assert draft_of_sender("TELKOMSEL").reporter.phone is None


def test_region_keyword_rahasia_and_nik_are_taken_out_of_the_body() -> None:
    draft = draft_of(f"jabar RAHASIA nik {NIK} pungli di kantor kelurahan")
    assert draft.body == "pungli di kantor kelurahan"
    assert draft.location is not None and draft.location.region_code == "32"
    assert draft.reporter.nik == NIK
    assert draft.privacy.confidential and not draft.privacy.anonymous


@pytest.mark.parametrize(
    "text",
    [
        f"Pungli di kelurahan. NIK: {NIK[:4]} {NIK[4:8]} {NIK[8:12]} {NIK[12:]}",
        f"Pungli di kelurahan NIK.{NIK[:6]}.{NIK[6:12]}.{NIK[12:]}",
        f"Pungli di kelurahan, nik {NIK}",
    ],
)
def test_nik_anywhere_in_the_text(text: str) -> None:
    draft = draft_of(text)
    assert draft.reporter.nik == NIK
    assert NIK[:4] not in draft.body and draft.body.startswith("Pungli di kelurahan")


def test_nik_in_the_middle_keeps_the_sentence_readable() -> None:
    draft = draft_of(f"Saya NIK {NIK} melapor pungli")
    assert draft.body == "Saya melapor pungli"


def test_invalid_nik_is_not_stored_and_stays_in_the_text() -> None:
    result = read("Pungli di kelurahan NIK 9901014101900001")
    assert result.draft is not None and result.draft.reporter.nik is None
    assert result.nik_rejected and "9901014101900001" in result.draft.body


def test_nik_followed_by_a_number_takes_only_sixteen_digits() -> None:
    assert draft_of(f"NIK {NIK} 2 bulan jalan rusak").body == "2 bulan jalan rusak"


@pytest.mark.parametrize(
    ("text", "anonymous", "confidential", "body"),
    [
        ("ANONIM jalan rusak", True, False, "jalan rusak"),
        ("rahasia, anonim: jalan rusak", True, True, "jalan rusak"),
        ("jalan rusak. RAHASIA", False, True, "jalan rusak"),
        (
            "Kepala desa minta uang, mohon dirahasiakan",
            False,
            False,
            "Kepala desa minta uang, mohon dirahasiakan",
        ),
        (
            "Kepala desa minta uang, ini anonim ya tolong",
            True,
            False,
            "Kepala desa minta uang, ini anonim ya tolong",
        ),
    ],
)
def test_privacy_keywords(text: str, anonymous: bool, confidential: bool, body: str) -> None:
    draft = draft_of(text)
    assert (draft.privacy.anonymous, draft.privacy.confidential, draft.body) == (
        anonymous,
        confidential,
        body,
    )


def test_region_table_is_configurable_and_case_insensitive() -> None:
    result = interpret("cirebon jalan rusak", SENDER, {"Cirebon": "3209"})
    assert result.draft is not None and result.draft.location is not None
    assert result.draft.location.region_code == "3209" and result.draft.body == "jalan rusak"


def test_region_word_not_in_the_table_stays_in_the_body() -> None:
    assert draft_of("Cirebon banjir").body == "Cirebon banjir"


@pytest.mark.parametrize("text", ["", " ", "\r\n", "RAHASIA", "jabar", f"ANONIM NIK {NIK}", "..."])
def test_nothing_to_report_is_a_parse_error(text: str) -> None:
    with pytest.raises(ParseError) as err:
        read(text)
    assert err.value.stage == "empty"


# ---- the registered parser on recorded requests ---------------------------------------------

PARSER = PARSERS[0]


def test_parser_name() -> None:
    assert PARSER.name == "sms.kannel"


def test_parser_on_recorded_complaints() -> None:
    out = PARSER.parse(raw("mo__region_nik_rahasia"))
    assert isinstance(out, ComplaintDraft)
    assert out.reporter.nik == NIK and out.reporter.phone == SENDER
    out = PARSER.parse(raw("mo__ucs2_emoji"))
    assert isinstance(out, ComplaintDraft) and out.body == "Lampu jalan mati 😡👍🏽 sudah 3 hari"
    out = PARSER.parse(raw("mo__crlf_data"))
    assert isinstance(out, ComplaintDraft) and "\r\n" in out.body


def test_parser_on_recorded_non_complaints() -> None:
    assert PARSER.parse(raw("mo__cek_status")) == NotAComplaint("status-query")
    assert PARSER.parse(raw("mo__info")) == NotAComplaint("help")
    assert PARSER.parse(raw("mo__fragment_timeout")) == NotAComplaint("fragment")


def test_parser_on_recorded_empty_sms() -> None:
    with pytest.raises(ParseError):
        PARSER.parse(raw("mo__empty"))


# ---- review fixes: CEK/STATUS needs a valid ID, multi-word regions, NIK/KTP labels ------------

# Real IDs from the generator: a valid check symbol is what makes "CEK ..." a status query.
REAL_TID = tracking.new_tracking_id()


@pytest.mark.parametrize(
    "template",
    [
        "Cek status {tid}",
        "CEK STATUS {dashed}",
        "Cek laporan {tid}",
        "CEK {tid} terima kasih",
        "cek no.lacak {tid}",
        "status laporan saya {dashed} mohon info",
        "jabar cek status {dashed}",
    ],
)
def test_status_query_finds_a_valid_id_among_the_next_words(template: str) -> None:
    text = template.format(tid=REAL_TID, dashed=tracking.display(REAL_TID))
    result = read(text)
    assert result.intent is Intent.STATUS and result.tracking_id == REAL_TID


@pytest.mark.parametrize(
    "text", ["Cek jalan rusak", "cek lampu mati", "Status tanah saya", "CEK kesehatan balita"]
)
def test_cek_or_status_without_a_tracking_id_is_a_complaint(text: str) -> None:
    assert draft_of(text).body == text


def test_ten_letters_after_cek_are_not_read_as_a_mistyped_id() -> None:
    # "TANAHSAYA" happens to carry a valid check symbol; IDs are printed 4+5, not 5+4.
    assert tracking.is_valid("TANAHSAYA")
    assert draft_of("Status tanah saya").body == "Status tanah saya"


@pytest.mark.parametrize(
    ("text", "body"),
    [
        # (Papua Barat and Maluku Utara are keywords of their own: see the default table test.)
        ("Aceh Besar sekolah rusak", "Aceh Besar sekolah rusak"),
        ("Jakarta Utara banjir", "Jakarta Utara banjir"),
        ("JAKARTA timur: banjir", "JAKARTA timur: banjir"),
    ],
)
def test_region_keyword_followed_by_a_place_word_is_not_a_region(text: str, body: str) -> None:
    draft = draft_of(text)
    assert draft.body == body and draft.location is None


@pytest.mark.parametrize(
    ("text", "code", "body"),
    [
        ("Papua Barat listrik padam", "92", "listrik padam"),
        ("papua  barat, listrik padam", "92", "listrik padam"),
        ("Papua listrik padam", "91", "listrik padam"),
        ("Maluku Utara jalan rusak", "82", "jalan rusak"),
        ("Bandung Barat jalan rusak", "3217", "jalan rusak"),
        ("Kota Bandung macet total", "3273", "macet total"),
        ("Kota Tangerang Selatan banjir", "3674", "banjir"),
    ],
)
def test_longest_multi_word_region_keyword_wins(text: str, code: str, body: str) -> None:
    table = {
        "PAPUA": "91",
        "Papua Barat": "92",
        "MALUKU": "81",
        "maluku utara": "82",
        "BANDUNG BARAT": "3217",
        "kota bandung": "3273",
        "Kota Tangerang": "3671",
        "KOTA TANGERANG SELATAN": "3674",
    }
    result = interpret(text, SENDER, table)
    assert result.draft is not None and result.draft.location is not None
    assert (result.draft.location.region_code, result.draft.body) == (code, body)


def test_multi_word_region_keyword_followed_by_a_place_word_is_not_a_region() -> None:
    result = interpret("Kota Tangerang Utara banjir", SENDER, {"Kota Tangerang": "3671"})
    assert result.draft is not None and result.draft.location is None
    assert result.draft.body == "Kota Tangerang Utara banjir"


VALID_NIK = "3201011508900001"


@pytest.mark.parametrize(
    "text",
    [
        f"NIK{VALID_NIK} jalan rusak",
        f"KTP {VALID_NIK} jalan rusak",
        f"ktp:{VALID_NIK} jalan rusak",
        f"KTP{VALID_NIK[:6]}.{VALID_NIK[6:12]}.{VALID_NIK[12:]} jalan rusak",
    ],
)
def test_nik_or_ktp_label_glued_or_spaced_is_taken_out_and_linked(text: str) -> None:
    draft = draft_of(text)
    assert draft.body == "jalan rusak" and draft.reporter.nik == VALID_NIK


def test_words_starting_with_nik_or_ktp_are_not_labels() -> None:
    draft = draft_of("Nikah siri dipungut biaya, KTPnya ditahan")
    assert draft.body == "Nikah siri dipungut biaya, KTPnya ditahan"
    assert draft.reporter.nik is None


@pytest.mark.parametrize(
    "text", [VALID_NIK, f"KTP {VALID_NIK}", f"NIK{VALID_NIK} 3", f"RAHASIA {VALID_NIK}", "12345"]
)
def test_a_body_without_letters_is_empty(text: str) -> None:
    with pytest.raises(ParseError) as err:
        read(text)
    assert err.value.stage == "empty"


def test_unlabelled_nik_in_a_sentence_is_neither_removed_nor_linked() -> None:
    # A 16-digit number may be a family card (KK) number, which has the NIK's structure.
    draft = draft_of(f"No KK {VALID_NIK} tidak terdaftar bansos")
    assert draft.body == f"No KK {VALID_NIK} tidak terdaftar bansos"
    assert draft.reporter.nik is None


def test_the_default_table_knows_the_two_word_provinces_that_start_like_others() -> None:
    for text, region, body in (
        ("Papua Barat listrik padam", "92", "listrik padam"),
        ("Maluku Utara jalan rusak", "82", "jalan rusak"),
        ("Papua listrik padam", "91", "listrik padam"),
    ):
        result = interpret(text, SENDER, DEFAULT_REGIONS)
        assert result.draft is not None and result.draft.location is not None, text
        assert (result.draft.location.region_code, result.draft.body) == (region, body), text


# ---- review of the replies: a query that is not quite right is still a query ------------------


def _typo(tid: str, i: int, symbol: str) -> str:
    return tid[:i] + symbol + tid[i + 1 :]


@pytest.mark.parametrize(
    "text",
    [
        "CEK",
        "cek.",
        "STATUS",
        "CEK STATUS",
        "Cek status laporan saya",
        "cek no. lacak",
        "jabar cek",
    ],
)
def test_cek_or_status_with_no_id_at_all_is_a_query_not_a_complaint(text: str) -> None:
    # Filing "CEK" as a complaint gives the citizen a new tracking ID instead of an answer.
    result = read(text)
    assert result.intent is Intent.STATUS and result.tracking_id is None
    assert result.typed == ""  # the reply says how to ask, not "not found"


@pytest.mark.parametrize(
    "template",
    [
        "Cek status {wrong}",  # the wrong check symbol after the words the receipt uses
        "CEK No. lacak: {wrong_dashed}",
        "CEK {dropped}",  # a symbol left out
        "CEK {dropped_dashed}",
        "CEK {tid}7",  # one too many
        "CEK {zero}",  # 0, O, 1, I are not in the alphabet, but citizens type them
        "status laporan {oh}",
        "cek {one}",
    ],
)
def test_a_mistyped_id_in_any_query_form_is_still_a_query(template: str) -> None:
    wrong = _typo(TID, 8, "2" if TID[8] != "2" else "3")
    text = template.format(
        tid=TID,
        wrong=wrong,
        wrong_dashed=tracking.display(wrong),
        dropped=TID[:-1],
        dropped_dashed=tracking.display(TID)[:-1],
        zero=_typo(TID, 2, "0"),
        oh=_typo(TID, 2, "O"),
        one=_typo(TID, 1, "1"),
    )
    result = read(text)
    assert result.intent is Intent.STATUS and result.tracking_id is None, text
    # What the reply shows as read: the ID's symbols as typed, the two groups joined.
    assert result.typed.upper() == text.split()[-1].replace("-", "").split(":")[-1], text


@pytest.mark.parametrize(
    "template",
    ["Cek status laporan saya no lacak {tid}", "CEK STATUS LAPORAN NO. LACAK: {dashed}"],
)
def test_a_valid_id_after_more_query_words_than_the_window_is_found(template: str) -> None:
    text = template.format(tid=TID, dashed=tracking.display(TID))
    result = read(text)
    assert result.intent is Intent.STATUS and result.tracking_id == TID


@pytest.mark.parametrize(
    "text",
    [
        "Cek jalan rusak",
        "Status tanah saya",
        "Cek RT05 jalan rusak",
        "STATUS 2024",
        "Cek 3 hari lampu mati",
        "CEK kesehatan balita",
        "Cek jalan2 rusak",
    ],
)
def test_cek_or_status_before_a_sentence_stays_a_complaint(text: str) -> None:
    assert draft_of(text).body == text


@pytest.mark.parametrize("text", ["HELP", "help", "Help?", "jabar HELP"])
def test_the_english_help_word_is_help_too(text: str) -> None:
    # A lone "HELP" filed as a complaint gets a tracking ID for nothing, and no help; asked in
    # English, it is answered in English (the English option of the citizen's errors).
    reading = read(text)
    assert reading.intent is Intent.HELP and reading.english
    assert not read("INFO").english and not read("bantuan").english


@pytest.mark.parametrize(
    "text",
    [
        "cek RT05 banjir",
        "Cek RT12 macet",
        "CEK RT03 gelap",
        "Cek RW07 banjir",
        "Cek KM12 macet",
        "STATUS KK12 hilang",
    ],
)
def test_cek_before_an_address_and_a_word_stays_a_complaint(text: str) -> None:
    # An RT, RW or KM number and one word look like a split ID ("K7QM 4XRT") by their length
    # alone: read as a query, the report was answered "not found" and never filed.
    assert draft_of(text).body == text


@pytest.mark.parametrize("text", ["CEK K7QM XRTWZ", "cek K7QM-4XRT", "Cek RT05 RW02"])
def test_a_split_id_shaped_pair_is_still_a_query(text: str) -> None:
    result = read(text)
    assert result.intent is Intent.STATUS and result.tracking_id is None


# ---- review of the grammar: words that pass for an ID, polite queries, thanks, commands -------


@pytest.mark.parametrize(
    ("text", "candidate"),
    [
        # More than EVIDENCE_WORDS words of news: filed, no look-up.
        ("Cek PDAM Taman Sari, air mati sudah 3 hari tidak ada kabar", None),
        ("Status BPJS pasar Minggu tidak bisa dipakai berobat", None),
        ("Cek dana kapan cair? sudah 3 bulan belum diterima warga", None),
        # One Indonesian word of 9 letters passes the check symbol 1 time in 30.
        ("Cek kejaksaan negeri lambat mengurus berkas", None),
        # A few words: filed unless the service finds the ID (see test_routes).
        ("Tolong cek PDAM Taman Sari air mati", "PDAMTAMAN"),
        ("Cek kejaksaan lambat sekali", "KEJAKSAAN"),
    ],
)
def test_ordinary_words_passing_for_an_id_leave_a_complaint(
    text: str, candidate: str | None
) -> None:
    # A complaint is never lost.
    assert tracking.is_valid("PDAMTAMAN") and tracking.is_valid("KEJAKSAAN")
    result = read(text)
    assert result.intent is Intent.COMPLAINT and result.draft is not None
    assert result.draft.body == text
    assert result.maybe_status == candidate
    if candidate is not None:
        query = result.as_status_query()
        assert query.intent is Intent.STATUS and query.tracking_id == result.maybe_status


@pytest.mark.parametrize(
    "template",
    [
        "CEK {dashed} kok belum diproses juga",  # the printed groups, then a sentence
        "Laporan {tid} belum ditanggapi dinas, tolong cek",  # CEK not leading, a short message
        "Cek status laporan saya no lacak {tid} kok lama sekali",  # past the window
    ],
)
def test_an_id_in_a_sentence_is_a_query_only_if_it_exists(template: str) -> None:
    text = template.format(tid=TID, dashed=tracking.display(TID))
    result = read(text)
    assert result.intent is Intent.COMPLAINT and result.maybe_status == TID


@pytest.mark.parametrize(
    "template",
    [
        "CEK {tid} kok belum diproses",  # one word with a digit, right after CEK: surely an ID
        "CEK {dashed} kok belum diproses",  # nothing but query words around it
        "Laporan {tid} belum ditanggapi, tolong cek",
        "Tolong cek {tid}",
        "Tolong cek {dashed} ya kak",
        "Cek status laporan saya no lacak {tid} terima kasih",
        "Selamat siang pak, mohon cek status laporan saya no lacak {dashed}, terima kasih banyak",
        "Cek status laporan {dashed} sudah sampai mana ya?",
        "min, status {tid} gimana?",
    ],
)
def test_a_status_query_among_courtesies_is_a_query(template: str) -> None:
    result = read(template.format(tid=TID, dashed=tracking.display(TID)))
    assert result.intent is Intent.STATUS and result.tracking_id == TID == result.typed


@pytest.mark.parametrize(
    ("text", "typed"),
    [
        (f"CEK {TID[:-1]}2 terima kasih", f"{TID[:-1]}2"),
        (f"Tolong cek {TID[:-1]}2 ya", f"{TID[:-1]}2"),
        ("Cek status laporan saya dong", ""),
        ("Mohon cek laporan saya pak", ""),
        ("Cek status laporan saya sudah sampai mana?", ""),
        ("Tolong cek", ""),
    ],
)
def test_a_polite_query_without_a_valid_id_is_still_a_query(text: str, typed: str) -> None:
    if TID[-1] == "2":
        text, typed = text.replace(f"{TID[:-1]}2", f"{TID[:-1]}3"), typed.replace("2", "3")
    result = read(text)
    assert result.intent is Intent.STATUS and result.tracking_id is None
    assert result.typed == typed  # "not found" with the typo shown, or how to ask


@pytest.mark.parametrize(
    "text",
    [
        "Cek jalan rusak di depan pasar Sumber sudah 2 bulan",
        "Mohon cek jalan rusak di depan pasar",
        "Tolong cek lampu jalan mati",
        "Cek dong jalan rusak parah",
        "Status tanah saya belum jelas pak",
        "Cek RT05 sudah banjir",
        "Cek PDAM sudah mati",
    ],
)
def test_a_complaint_with_cek_and_courtesies_stays_a_complaint(text: str) -> None:
    result = read(text)
    assert result.intent is Intent.COMPLAINT and result.maybe_status is None
    assert result.draft is not None and result.draft.body == text


def test_a_long_message_with_cek_inside_is_no_query() -> None:
    text = f"Sudah lapor {TID} sebulan lalu tapi belum ada tindakan dari dinas, mohon cek lagi"
    assert draft_of(text).body == text


@pytest.mark.parametrize(
    "text",
    [
        "Terima kasih",
        "terimakasih",
        "Ok makasih min",
        "Baik, terima kasih pak",
        "siap pak",
        "OK",
        "Thank you",
        "sama-sama",
        "tks ya kak",
        "JABAR terima kasih",
        "RAHASIA terima kasih",
    ],
)
def test_thanks_and_acknowledgements_are_no_report(text: str) -> None:
    result = read(text)
    assert result.intent is Intent.THANKS and result.outcome == NotAComplaint("thanks")


@pytest.mark.parametrize("text", ["Halo min", "Selamat pagi pak", "Tolong pak", "hai kak"])
def test_greetings_alone_are_too_short(text: str) -> None:
    assert read(text).intent is Intent.TOO_SHORT


@pytest.mark.parametrize(
    "text",
    ["Terima kasih pak, jalan sudah diperbaiki tapi lampu masih mati", "Ok jalan rusak lagi"],
)
def test_thanks_with_a_report_is_a_complaint(text: str) -> None:
    assert draft_of(text).body == text


def test_a_joined_long_message_is_filed_whatever_part_of_it_arrived() -> None:
    # A lone part "Terima kasih." of a long message: what arrived is filed (min_words=1).
    for text in ("Terima kasih.", "STOP SMS"):
        result = interpret(text, SENDER, DEFAULT_REGIONS, min_words=1)
        assert result.intent is Intent.COMPLAINT, text


@pytest.mark.parametrize(
    ("text", "intent", "english"),
    [
        ("REG LAPOR", Intent.TOO_SHORT, False),
        ("unreg lapor", Intent.TOO_SHORT, False),
        ("STOP SMS", Intent.TOO_SHORT, False),
        ("Stop semua", Intent.TOO_SHORT, False),
        ("INFO LAPOR", Intent.HELP, False),
        ("bantuan sms", Intent.HELP, False),
        ("HELP LAPOR", Intent.HELP, True),
    ],
)
def test_a_service_command_with_the_service_name_is_no_report(
    text: str, intent: Intent, english: bool
) -> None:
    result = read(text)
    assert result.intent is intent and result.english is english


@pytest.mark.parametrize("text", ["Stop pungli", "Info banjir", "REG kendaraan dipungut biaya"])
def test_a_command_word_before_a_report_stays_a_complaint(text: str) -> None:
    assert draft_of(text).body == text


def test_the_service_commands_are_command_words() -> None:
    assert {"REG", "UNREG", "STOP"} <= grammar.COMMAND_WORDS


@pytest.mark.parametrize(
    ("text", "body"),
    [
        (f"Jalan rusak parah. NIK saya {VALID_NIK}", "Jalan rusak parah."),
        (f"NIK saya: {VALID_NIK} jalan rusak", "jalan rusak"),
        (f"Jalan rusak, no KTP saya {VALID_NIK}", "Jalan rusak"),
        (f"nomor NIK saya adalah {VALID_NIK} jalan rusak", "jalan rusak"),
        (f"No. KTP: {VALID_NIK} jalan rusak", "jalan rusak"),
        (f"KTP ku {VALID_NIK} jalan rusak", "jalan rusak"),
        (f"Saya NIK sy {VALID_NIK[:8]} {VALID_NIK[8:]} melapor pungli", "Saya melapor pungli"),
    ],
)
def test_a_nik_with_filler_words_after_its_label_is_taken_out(text: str, body: str) -> None:
    draft = draft_of(text)
    assert (draft.reporter.nik, draft.body) == (VALID_NIK, body)


def test_more_than_two_filler_words_are_not_a_label() -> None:
    text = f"NIK saya no nomor {VALID_NIK} jalan rusak"
    draft = draft_of(text)
    assert draft.reporter.nik is None and draft.body == text


@pytest.mark.parametrize(
    "text", ["KTP 3 bulan belum jadi", "KTP saya 3 bulan belum jadi", "NIK saya 2x ditolak"]
)
def test_a_short_number_after_a_label_is_no_nik_refused(text: str) -> None:
    result = read(text)
    assert result.draft is not None and result.draft.body == text
    assert result.draft.reporter.nik is None and not result.nik_rejected


def test_an_invalid_nik_after_filler_words_is_refused_and_left_in_the_text() -> None:
    result = read("Pungli di kelurahan, NIK saya 9901014101900001")
    assert result.draft is not None and result.draft.reporter.nik is None
    assert result.nik_rejected and "9901014101900001" in result.draft.body


@pytest.mark.parametrize(
    ("text", "code", "body"),
    [
        ("PAPUA PEGUNUNGAN jalan trans putus longsor", "95", "jalan trans putus longsor"),
        ("Papua Selatan banjir rob", "93", "banjir rob"),
        ("papua tengah: listrik padam", "94", "listrik padam"),
        ("Papua Barat Daya jalan rusak", "96", "jalan rusak"),
        ("Papua Barat jalan rusak", "92", "jalan rusak"),
        ("Papua jalan rusak", "91", "jalan rusak"),
    ],
)
def test_the_default_table_knows_the_provinces_of_2022(text: str, code: str, body: str) -> None:
    draft = draft_of(text)
    assert draft.location is not None
    assert (draft.location.region_code, draft.body) == (code, body)


def test_pegunungan_continues_a_place_name() -> None:
    # A table without Papua Pegunungan files no region rather than Papua's.
    result = interpret("Papua Pegunungan jalan putus", SENDER, {"PAPUA": "91"})
    assert result.draft is not None and result.draft.location is None
    assert result.draft.body == "Papua Pegunungan jalan putus"


def test_the_default_region_codes_are_provinces_of_the_official_list() -> None:
    import csv
    import gzip

    path = Path(grammar.__file__).resolve().parents[2] / "normalizer/data/regions.csv.gz"
    with gzip.open(path, "rt", encoding="utf-8") as f:
        names = {row[0]: row[1] for row in csv.reader(f) if row}
    for keyword in ("PAPUA SELATAN", "PAPUA TENGAH", "PAPUA PEGUNUNGAN", "PAPUA BARAT DAYA"):
        assert names[DEFAULT_REGIONS[keyword]].upper() == keyword


# ---- review: courtesies before CEK, SMS spellings, DICEK, a NIK in a query, thanks, help ------


@pytest.mark.parametrize(
    "template",
    [
        "Mohon cek laporan {tid} sudah 2 minggu belum ada tindak lanjut dari dinas",
        "Pak, tolong cek laporan saya {tid}, sudah 2 minggu belum ada kabar",
        "Selamat pagi bu, mohon dicek {tid} kok belum ada tindak lanjut dari dinas terkait ya",
    ],
)
def test_cek_after_courtesies_leads_a_long_message(template: str) -> None:
    # One word with a digit among the words after CEK: a query ("not found" when unknown).
    result = read(template.format(tid=TID))
    assert result.intent is Intent.STATUS and result.tracking_id == TID


def test_a_split_id_after_a_polite_cek_is_a_query_only_if_it_exists() -> None:
    text = f"Pak, tolong cek laporan saya {tracking.display(TID)}, sudah 2 minggu belum ada kabar"
    result = read(text)
    assert result.intent is Intent.COMPLAINT and result.maybe_status == TID


@pytest.mark.parametrize(
    "text",
    [
        "Gmn status laporan saya?",
        "Cek laporan sy dong kak",
        "cek status laporan sy gmn ya min",
        "Tlg cek laporannya dong",
        "Mohon dicek",
        "Tolong dicekin laporan saya ya min",
        f"Cek status laporan NIK saya {NIK}",
        f"cek laporan saya, nik {NIK}",
        "Cek status NIK 9901014101900001",  # an invalid NIK is no word of the query either
    ],
)
def test_sms_spellings_dicek_and_a_labelled_nik_leave_a_query_without_id(text: str) -> None:
    result = read(text)
    assert result.intent is Intent.STATUS and result.tracking_id is None and result.typed == ""


@pytest.mark.parametrize(
    "template", ["Mohon dicek {dashed}", "Tolong dicek laporan saya {tid} ya min", "dicekin {tid}"]
)
def test_dicek_is_a_status_word(template: str) -> None:
    result = read(template.format(tid=TID, dashed=tracking.display(TID)))
    assert result.intent is Intent.STATUS and result.tracking_id == TID


@pytest.mark.parametrize(
    "text",
    [
        "Info banjir di Cileunyi",
        "Tolong cek jalan rusak di depan pasar sudah 2 bulan",
        "Mohon dicek lampu jalan mati di gang mawar",
        "Mohon maaf pak, cek jalan rusak di depan pasar sudah 2 bulan tidak diperbaiki juga",
        "Pak tolong dicek jalan rusak di gang mawar sudah 3 bulan tidak diperbaiki oleh dinas",
        "Sudah dicek petugas tapi belum diperbaiki",
        "Gmn ini jalan rusak",
        "Bantuan sosial belum cair",
        "Mohon bantuan pak, jalan rusak",
        "Terima kasih pak, jalan rusak lagi",
        f"Laporan {TID} lubang makin besar, kemarin 2 motor jatuh, mohon cek",
    ],
)
def test_reports_with_query_help_or_thanks_words_stay_complaints(text: str) -> None:
    result = read(text)
    assert result.intent is Intent.COMPLAINT and result.maybe_status is None
    assert result.draft is not None and result.draft.body == text


@pytest.mark.parametrize(
    ("text", "english"),
    [("Info dong min", False), ("Info dong", False), ("Bantuan pak", False),
     ("Mohon bantuan", False), ("Help pls", True)],
)  # fmt: skip
def test_a_help_word_with_courtesies_is_help(text: str, english: bool) -> None:
    result = read(text)
    assert result.intent is Intent.HELP and result.english is english


@pytest.mark.parametrize(
    "text",
    [
        "Ok trm ksh min",
        "Makasih bnyk pak",
        "trmksh",
        f"Siap pak, terima kasih. {tracking.display(TID)}",
        f"Terima kasih, no lacak {TID}",
        f"{TID} ok",
    ],
)
def test_thanks_in_sms_spelling_or_quoting_the_id_is_thanks(text: str) -> None:
    assert read(text).intent is Intent.THANKS


@pytest.mark.parametrize("text", [f"Halo min {TID}", f"Terima kasih {TID} jalan rusak"])
def test_an_id_without_thanks_or_with_a_report_is_no_thank_you(text: str) -> None:
    assert read(text).intent is not Intent.THANKS


@pytest.mark.parametrize(
    ("text", "body"),
    [
        (f"Jalan rusak depan SDN 3. NIK saya, {VALID_NIK}", "Jalan rusak depan SDN 3."),
        (f"Lampu jalan mati, NIK, {VALID_NIK}", "Lampu jalan mati"),
        (f"NIK, {VALID_NIK}, jalan rusak", "jalan rusak"),
    ],
)
def test_a_comma_between_the_nik_label_and_its_digits(text: str, body: str) -> None:
    draft = draft_of(text)
    assert (draft.reporter.nik, draft.body) == (VALID_NIK, body)
    assert not read("KTP, 3 bulan belum jadi").nik_rejected
