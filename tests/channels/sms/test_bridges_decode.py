"""Each bridge's request, decoded by the pure parsers: fixtures of every bridge (see SOURCES.md)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote_from_bytes

import pytest

from channels.sms import android, fragments, gammu, gsm, jasmin, smssync
from channels.sms.message import Bridge, DeliveryState, Fragment, SmsMessage
from channels.sms.parse import PARSER_NAMES, decode, interpret, interpret_joined
from channels.sms.ports import FragmentSet, HeldPart
from channels.sms.settings import SmsSettings
from channels.web.parse import MAX_TITLE
from gateway.domain import Channel, ComplaintDraft, NotAComplaint, RawInbound
from gateway.errors import ParseError
from tests.channels.sms.http_fixtures import ANDROID_KEY, load

SETTINGS = SmsSettings()
T0 = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)


# ---- Jasmin --------------------------------------------------------------------------------


def test_jasmin_gsm_text_is_read_from_unpacked_septets() -> None:
    mo = jasmin.decode_request(load("jasmin/mo__gsm_text").body)
    assert mo.message == SmsMessage(
        bridge=Bridge.JASMIN,
        sender="6281200000001",
        receiver="1708",
        text="Lampu jalan mati @ Jl. Merdeka 10, sudah 3 hari",
        message_id="4a2b6f0e-3c1d-4e5f-8a9b-0c1d2e3f4a5b",
        smsc="smppc_telkomsel",
    )
    assert mo.coding == 0 and mo.priority == "0"
    draft = interpret(mo.message, SETTINGS).outcome
    assert isinstance(draft, ComplaintDraft) and draft.reporter.phone == "+6281200000001"


def test_jasmin_ucs2_with_emoji() -> None:
    mo = jasmin.decode_request(load("jasmin/mo__ucs2_emoji").body)
    assert mo.coding == 8 and mo.message.text == "Sampah menumpuk 😡 di pasar"


def test_jasmin_joins_ucs2_parts_as_octets_so_a_split_pair_arrives_whole() -> None:
    # Jasmin hands an HTTP connector only the joined message: the parts' short_message octets
    # after their UDH, concatenated (listeners.concatDeliverSMs), never a part on its own.
    octets = "Lampu jalan mati sudah 3 hari 😡 mohon diperbaiki".encode("utf-16-be")
    cut = octets.index("😡".encode("utf-16-be")) + 2  # the pair split between the parts
    part1 = b"\x05\x00\x03\x5b\x02\x01" + octets[:cut]
    part2 = b"\x05\x00\x03\x5b\x02\x02" + octets[cut:]
    body = f"id=j1&from=6281200000001&to=1708&coding=8&binary={(part1[6:] + part2[6:]).hex()}"
    mo = jasmin.decode_request(body.encode())
    assert mo.message.text == "Lampu jalan mati sudah 3 hari 😡 mohon diperbaiki"
    assert mo.message.fragment is None


def jasmin_part(octets: bytes, coding: int, mo_id: str) -> bytes:
    """A part as Jasmin throws it: the short_message octets, UDH included, as ``binary``."""
    return f"id={mo_id}&from=6281200000001&to=1708&coding={coding}&binary={octets.hex()}".encode()


def test_jasmin_part_with_a_16_bit_reference_is_a_fragment_and_joins_whole() -> None:
    # Jasmin joins only 8-bit-reference parts: a 16-bit one comes alone, its UDH in the octets.
    octets = "Lampu jalan mati sudah 3 hari 😡 mohon diperbaiki".encode("utf-16-be")
    cut = octets.index("😡".encode("utf-16-be")) + 2  # the pair split between the parts
    heads = (b"\x06\x08\x04\x12\x34\x02\x01", b"\x06\x08\x04\x12\x34\x02\x02")
    bodies = (heads[0] + octets[:cut], heads[1] + octets[cut:])
    messages = [
        jasmin.decode_request(jasmin_part(b, 8, f"j{n}")).message for n, b in enumerate(bodies)
    ]
    assert [m.fragment for m in messages] == [
        Fragment(0x1234, 2, 1, high_surrogate=0xD83D),
        Fragment(0x1234, 2, 2, low_surrogate=0xDE21),
    ]
    assert messages[0].text == "Lampu jalan mati sudah 3 hari \ufffd"
    held = FragmentSet(
        group_key="k",
        bridge=Bridge.JASMIN,
        reference=0x1234,
        total=2,
        meta={"sender": "6281200000001"},
        parts=tuple(
            HeldPart(f"raw{n}", f.sequence, m.text, T0, f.high_surrogate, f.low_surrogate)
            for n, m in enumerate(messages)
            if (f := m.fragment) is not None
        ),
    )
    assert fragments.join(held).text == "Lampu jalan mati sudah 3 hari 😡 mohon diperbaiki"
    assert interpret(messages[1], SETTINGS).intent.name == "FRAGMENT"
    # GSM text: unpacked septets after the header; an 8-bit reference is read the same way.
    gsm_part = jasmin.decode_request(
        jasmin_part(b"\x05\x00\x03\x5b\x03\x02jalan \x00 rusak", 0, "j3")
    ).message
    assert gsm_part.fragment == Fragment(0x5B, 3, 2) and gsm_part.text == "jalan @ rusak"


def test_jasmin_text_that_only_looks_like_a_header_stays_text() -> None:
    for octets, text in (
        (b"\x05\x00\x03\x5b\x01\x01Halo", "é@¥Ä££Halo"),  # one part of one
        (b"\x05\x00\x03\x5b\x02\x03Halo", "é@¥Ä$¥Halo"),  # part 3 of 2
        (b"\x09\x00\x03\x5b\x02\x01", "Ç@¥Ä$£"),  # a length longer than what follows
        (b"Jalan rusak", "Jalan rusak"),
    ):
        message = jasmin.decode_request(jasmin_part(octets, 0, "x")).message
        assert message.fragment is None and message.text == text


@pytest.mark.parametrize(
    ("fixture", "coding", "text"),
    [
        ("jasmin/mo__flash_gsm", 0x10, "Banjir @ Jl. Sudirman 5, air setinggi lutut sejak subuh"),
        ("jasmin/mo__flash_ucs2", 0x18, "Pohon tumbang 😡 menutup jalan di depan SDN 3"),
        (
            "jasmin/mo__class0_f0",
            0xF0,
            "Lampu lalu lintas mati di simpang Pasar Baru, rawan tabrakan",
        ),
    ],
)
def test_jasmin_flash_sms_is_read_in_the_alphabet_its_data_coding_names(
    fixture: str, coding: int, text: str
) -> None:
    # A flash SMS (message class 0) keeps the air interface's DCS in data_coding: 0x10 / 0x18
    # (general data coding group), 0xF0 (data coding/message class group), TS 23.038 section 4.
    mo = jasmin.decode_request(load(fixture).body)
    assert mo.coding == coding and mo.message.text == text
    assert isinstance(interpret(mo.message, SETTINGS).outcome, ComplaintDraft)


@pytest.mark.parametrize(
    ("coding", "octets", "text"),
    [
        # general data coding group, bits 3..2 the alphabet, bits 1..0 the class (bit 4 set)
        (0x10, b"Jalan \x00 rusak", "Jalan @ rusak"),
        (0x11, b"Jalan \x00 rusak", "Jalan @ rusak"),
        (0x13, b"Jalan \x1b\x65 rusak", "Jalan € rusak"),
        (0x14, "Jalan rusak 👍".encode(), "Jalan rusak 👍"),
        (0x15, b"Jalan rusak", "Jalan rusak"),
        (0x18, "Jalan rusak 😡".encode("utf-16-be"), "Jalan rusak 😡"),
        (0x1A, "Jalan rusak".encode("utf-16-be"), "Jalan rusak"),
        # message marked for automatic deletion: bits 5..0 as in the general group
        (0x40, b"Jalan \x00 rusak", "Jalan @ rusak"),
        (0x58, "Jalan rusak".encode("utf-16-be"), "Jalan rusak"),
        # data coding/message class group: bit 2 the alphabet, bits 1..0 the class
        *((c, b"Jalan \x00 rusak", "Jalan @ rusak") for c in range(0xF0, 0xF4)),
        *((c, b"Jalan rusak", "Jalan rusak") for c in range(0xF4, 0xF8)),
        # message waiting indication groups: GSM 7-bit (discard, store), UCS-2 (store)
        (0xC0, b"Jalan \x00 rusak", "Jalan @ rusak"),
        (0xD8, b"Jalan \x00 rusak", "Jalan @ rusak"),
        (0xE8, "Jalan rusak".encode("utf-16-be"), "Jalan rusak"),
    ],
)
def test_jasmin_data_coding_groups_of_ts_23_038(coding: int, octets: bytes, text: str) -> None:
    assert jasmin.decode_octets(octets, coding) == text


@pytest.mark.parametrize(
    ("coding", "reason"),
    [
        (0x30, "compressed"),  # bit 5: compressed (TS 23.042), not read here
        (0x1C, "coding 28"),  # general group, reserved alphabet
        (0x80, "coding 128"),  # reserved coding group
        (0x05, "coding 5"),  # SMPP JIS: an alphabet no Indonesian phone sends
    ],
)
def test_jasmin_codings_that_cannot_be_read_are_quarantined(coding: int, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        jasmin.decode_octets(b"Jalan rusak", coding)


def test_jasmin_coding_field_as_a_number_or_as_the_octet() -> None:
    assert [jasmin.read_coding(v) for v in (b"", b"0", b" 8 ", b"240")] == [0, 0, 8, 240]
    assert [jasmin.read_coding(v) for v in (b"\x00", b"\x08", b"\x10", b"\xf0")] == [
        0,
        8,
        0x10,
        0xF0,
    ]
    with pytest.raises(ParseError, match="coding"):
        jasmin.read_coding(b"UCS2")


def test_jasmin_flash_part_with_a_16_bit_reference_is_a_fragment() -> None:
    head = b"\x06\x08\x04\x12\x35\x02\x01"
    mo = jasmin.decode_request(jasmin_part(head + "Pohon 😡".encode("utf-16-be"), 0x18, "f1"))
    assert mo.message.fragment == Fragment(0x1235, 2, 1) and mo.message.text == "Pohon 😡"


def test_jasmin_gsm_flash_follows_the_coding0_setting_like_coding_0() -> None:
    # An SMSC that writes the GSM 7-bit alphabet as ISO-8859-1 does so for every DCS whose
    # alphabet it is, as Kannel's alt-charset does (gw/smsc/smsc_smpp.c, dcs_to_fields).
    assert jasmin.decode_octets("café @".encode("latin-1"), 0xF0, "latin1") == "café @"
    assert jasmin.decode_octets("café @".encode("latin-1"), 0x10, "latin1") == "café @"


def test_jasmin_status_query_is_not_a_complaint() -> None:
    message = jasmin.decode_request(load("jasmin/mo__cek_status").body).message
    assert interpret(message, SETTINGS).outcome == NotAComplaint("status-query")


def test_jasmin_coding0_as_latin1_and_other_codings() -> None:
    assert jasmin.decode_octets("café".encode("latin-1"), 0, "latin1") == "café"
    assert jasmin.decode_octets(b"Halo", 1) == "Halo"
    assert jasmin.decode_octets("Jalan né".encode("latin-1"), 3) == "Jalan né"
    assert jasmin.decode_octets("jalan 👍".encode(), 4) == "jalan 👍"
    with pytest.raises(ParseError, match="coding 5"):
        jasmin.decode_octets(b"x", 5)
    with pytest.raises(ParseError):
        jasmin.decode_octets(b"\x80\x81", 0)  # not GSM septets
    with pytest.raises(ParseError, match="biner"):
        jasmin.decode_octets(b"\x00\x01\x02", 4)  # binary octet data


@pytest.mark.parametrize(
    ("octets", "coding"),
    [
        (b"Jalan rusak\x00", 1),
        ("Jalan rusak".encode("latin-1") + b"\x00", 3),
        ("Jalan rusak".encode("utf-16-be") + b"\x00\x00", 8),
        (b"Jalan rusak\x00", 4),
    ],
)
def test_jasmin_trailing_nul_terminator_is_dropped_not_binary(octets: bytes, coding: int) -> None:
    # Some SMSCs end short_message with a C string's NUL; in GSM 03.38 0x00 is "@", kept.
    assert jasmin.decode_octets(octets, coding) == "Jalan rusak"
    assert jasmin.decode_octets(b"Jalan rusak\x00", 0) == "Jalan rusak@"


def test_jasmin_content_is_used_when_binary_is_absent() -> None:
    mo = jasmin.decode_request(b"id=x1&from=62812&to=1708&content=Jalan+rusak&coding=0")
    assert mo.message.text == "Jalan rusak"
    with pytest.raises(ParseError, match="sender"):
        jasmin.decode_request(b"id=x2&to=1708&content=a")
    with pytest.raises(ParseError, match="hex"):
        jasmin.decode_request(b"id=x3&from=62812&binary=zz")


def test_jasmin_delivery_reports() -> None:
    delivered = jasmin.decode_dlr(load("jasmin/dlr__delivered").body)
    assert delivered.state is DeliveryState.DELIVERED
    assert delivered.provider_ref == "07033084-5cfd-4812-90a4-e4d24ffb6e3d"
    assert delivered.detail == "DELIVRD level=3 err=000"
    accepted = jasmin.decode_dlr(load("jasmin/dlr__smsc_accepted").body)
    assert accepted.state is DeliveryState.ACCEPTED
    assert (
        jasmin.decode_dlr(b"id=a&message_status=ESME_RINVNUMDESTS&level=1").state
        is DeliveryState.REJECTED
    )
    assert (
        jasmin.decode_dlr(b"id=a&message_status=UNDELIV&level=2").state is DeliveryState.UNDELIVERED
    )


def test_jasmin_send_answer() -> None:
    assert jasmin.send_result(200, 'Success "07033084-5cfd"') == "07033084-5cfd"
    with pytest.raises(ValueError, match="412"):
        jasmin.send_result(412, 'Error "No route found"')


def test_gsm_extension_table() -> None:
    assert gsm.decode_unpacked(bytes([0x1B, 0x65, 0x20, 0x1B, 0x28, 0x41, 0x1B, 0x29])) == "€ {A}"
    assert gsm.decode_unpacked(bytes([0x00, 0x01, 0x02])) == "@£$"


# ---- SMS Gateway for Android ----------------------------------------------------------------


def test_android_fixture_signatures_are_valid_and_checked() -> None:
    req = load("android/sms_received__docs_example")
    ts, sig = req.headers["X-Timestamp"], req.headers["X-Signature"]
    now = float(ts) + 10
    assert android.signature_valid(ANDROID_KEY, req.body, ts, sig, now)
    assert not android.signature_valid(b"other-key", req.body, ts, sig, now)
    assert not android.signature_valid(ANDROID_KEY, req.body + b" ", ts, sig, now)
    assert not android.signature_valid(ANDROID_KEY, req.body, ts, sig, now + 600)  # replayed late
    assert not android.signature_valid(ANDROID_KEY, req.body, "soon", sig, now)


def test_android_docs_example_is_an_mo() -> None:
    event = android.decode_event(load("android/sms_received__docs_example").body)
    assert event.name == "sms:received" and event.event_id == "Ey6ECgOkVVFjz3CL48B8C"
    assert event.message == SmsMessage(
        bridge=Bridge.ANDROID,
        sender="6505551212",
        receiver="",
        text="Android is always a sweet treat!",
        message_id="Ey6ECgOkVVFjz3CL48B8C",
        smsc="sim1",
        time="2024-06-22T15:46:11.000+07:00",
    )


def test_android_region_and_nik() -> None:
    body = load("android/sms_received__region_nik").body
    message = decode(Bridge.ANDROID, body, SETTINGS)
    draft = interpret(message, SETTINGS).outcome
    assert isinstance(draft, ComplaintDraft)
    assert draft.body == "jalan desa rusak parah, mohon diperbaiki"
    assert draft.reporter.nik == "3201014101900001" and draft.reporter.phone == "+6281200000003"
    assert draft.location is not None and draft.location.region_code == "32"


def test_android_reports_name_our_reply() -> None:
    delivered = android.decode_event(load("android/sms_delivered__reply").body).report
    assert delivered is not None and delivered.state is DeliveryState.DELIVERED
    assert delivered.reply_id == 1 and delivered.provider_ref == "lapor-1"
    failed = android.decode_event(load("android/sms_failed__reply").body).report
    assert failed is not None and failed.state is DeliveryState.UNDELIVERED
    assert failed.detail == "sms:failed: RESULT_ERROR_GENERIC_FAILURE"


@pytest.mark.parametrize("message_id", ["lapor-" + "9" * 25, "lapor-\u0661\u0662"])
def test_android_report_on_an_id_that_is_not_ours_names_no_reply(message_id: str) -> None:
    # Not a reply id of ours (past BIGINT: the database refused it, a 503 the app retried; or
    # digits of another script, which int() reads: reply 12). Matched by reference: unmatched.
    body = json.dumps(
        {"event": "sms:failed", "id": "e1", "payload": {"messageId": message_id}}
    ).encode()
    report = android.decode_event(body).report
    assert report is not None and report.reply_id is None and report.provider_ref == message_id


def test_android_message_with_half_an_emoji_is_a_decode_error() -> None:
    # JSON's "\ud83d" is a lone surrogate: no text UTF-8 can hold. It went on to the normaliser,
    # which crashed on it (quarantined as "normalize-crash", an ERROR with a traceback).
    mo = load("android/sms_received__docs_example").body
    doc = json.loads(mo)
    doc["payload"]["message"] = "Jalan rusak \ud83d"
    with pytest.raises(ParseError) as refused:
        android.decode_event(json.dumps(doc).encode())
    assert refused.value.stage == "decode" and "surrogate" in refused.value.reason
    with pytest.raises(ParseError):
        decode(Bridge.ANDROID, json.dumps(doc).encode(), SETTINGS)


def test_android_ping_is_known_but_unused_and_garbage_is_refused() -> None:
    ping = android.decode_event(load("android/system_ping__docs").body)
    assert ping.name in android.KNOWN_UNUSED and ping.message is None and ping.report is None
    with pytest.raises(ParseError):
        android.decode_event(b"not json")
    with pytest.raises(ParseError):
        decode(Bridge.ANDROID, load("android/system_ping__docs").body, SETTINGS)


# ---- SMSSync ---------------------------------------------------------------------------------


def test_smssync_secret_is_taken_out_and_the_rest_decoded() -> None:
    body, secret = smssync.pop_secret(load("smssync/mo__rahasia").body)
    assert secret == b"SMSSYNC-SECRET" and b"secret" not in body
    message = smssync.decode_request(body)
    assert message.sender == "+6281200000004" and message.receiver == "+6281299990000"
    assert message.message_id == "8ee4b5a1-7c2d-4e0f-b1a3-5d6e7f8091a2"
    draft = interpret(message, SETTINGS).outcome
    assert isinstance(draft, ComplaintDraft) and draft.privacy.confidential
    assert draft.body == "Pungli di kantor kelurahan"
    doc = json.loads(smssync.answer(True, None, [{"to": "+62812", "message": "x", "uuid": "u"}]))
    assert doc == {
        "payload": {
            "success": True,
            "error": None,
            "task": "send",
            "messages": [{"to": "+62812", "message": "x", "uuid": "u"}],
        }
    }


# ---- Gammu SMSD (recorded from the real gammu-smsd, see SOURCES.md) -------------------------


def test_gammu_single_sms_is_read_from_smsd_variables() -> None:
    req = load("gammu/mo__gsm_text")
    mo = gammu.decode_request(req.body)
    assert mo == SmsMessage(
        bridge=Bridge.GAMMU,
        sender="+6281200000005",
        receiver="",
        text="Jalan rusak @£$ {biaya} [RT 05] ~ tolong",
        message_id=mo.message_id,
        smsc="modem-1",
    )
    assert (
        mo.message_id is not None and mo.message_id.startswith("IN") and "_00.txt" in mo.message_id
    )
    # The key is a hash of PhoneID, the inbox ids (they name the sender's number) and each
    # part's number and text.
    message = [[1, "+6281200000005", mo.text]]
    key = f"modem-1\n{mo.message_id}\n{json.dumps(message)}".encode()
    assert gammu.provider_id(req.body) == f"gammu:{hashlib.sha256(key).hexdigest()}"
    assert "6281200000005" in mo.message_id  # what would otherwise sit in the clear
    draft = interpret(mo, SETTINGS).outcome
    assert isinstance(draft, ComplaintDraft) and draft.reporter.phone == "+6281200000005"


def test_gammu_unicode_text_keeps_emoji_and_line_breaks() -> None:
    mo = gammu.decode_request(load("gammu/mo__ucs2_emoji").body)
    assert mo.text == "Lampu jalan mati 😡👍🏽 sudah 3 hari\nRT 05 € é"


def test_gammu_long_message_is_the_text_smsd_joined() -> None:
    body = load("gammu/mo__long_2parts").body
    mo = gammu.decode_request(body)
    assert mo.text == ("Jalan Siliwangi rusak parah sejak bulan lalu, " * 6).strip()
    assert mo.fragment is None  # SMSD joins the parts itself: never a fragment here
    ids = mo.message_id or ""
    assert ids.count(".txt") == 2  # both parts' inbox ids: one redelivery key
    # Without SMSD's decoded text, the parts are joined in their order.
    without = b"&".join(
        p for p in body.split(b"&") if not p.startswith((b"DECODED_1_TEXT=", b"DECODED_PARTS="))
    )
    assert gammu.decode_request(without).text == mo.text


def test_gammu_national_sender_and_keywords() -> None:
    mo = gammu.decode_request(load("gammu/mo__region_nik_rahasia").body)
    draft = interpret(mo, SETTINGS).outcome
    assert isinstance(draft, ComplaintDraft)
    assert draft.reporter.phone == "+6281200000006" and draft.reporter.nik == "3201014101900001"
    assert draft.privacy.confidential


def test_gammu_request_without_a_sender_is_a_parse_error() -> None:
    body = load("gammu/mo__info").body
    assert isinstance(interpret(gammu.decode_request(body), SETTINGS).outcome, NotAComplaint)
    stripped = b"&".join(p for p in body.split(b"&") if not p.startswith(b"SMS_1_NUMBER="))
    with pytest.raises(ParseError):
        gammu.decode_request(stripped)
    assert gammu.provider_id(b"SMS_1_NUMBER=%2B62812") is None


def test_gammu_key_tells_apart_a_new_sms_under_a_reused_inbox_id() -> None:
    # An SQL backend's inbox ids are row ids: an SMSD database created anew starts again at 1.
    # The key holds each part's number and text too, so a new SMS under an old id is new.
    body = load("gammu/mo__gsm_text").body
    reused = _with_field(body, "ids", b"1")
    other_sender = _with_field(reused, "SMS_1_NUMBER", b"+6281200000032")
    other_text = _with_field(reused, "SMS_1_TEXT", b"Sampah menumpuk di pasar")
    keys = {gammu.provider_id(b) for b in (body, reused, other_sender, other_text)}
    assert len(keys) == 4 and None not in keys
    # Nothing of the number or the text in the clear.
    assert all("6281200000" not in key for key in keys if key is not None)
    # A text that is no UTF-8 is keyed exactly too (two such texts differ).
    a = gammu.provider_id(_with_field(reused, "SMS_1_TEXT", b"\xff\xfe"))
    b = gammu.provider_id(_with_field(reused, "SMS_1_TEXT", b"\xff\xfd"))
    assert a is not None and a != b


def test_gammu_key_of_long_message_covers_every_part_and_old_keys_stay_as_0009_wrote_them() -> None:
    body = load("gammu/mo__long_2parts").body
    changed = _with_field(body, "SMS_2_TEXT", b"lain")
    assert gammu.provider_id(body) != gammu.provider_id(changed)
    # A form with PHONE_ID and ids alone keys as migration 0009 rewrote the keys of before.
    legacy = hashlib.sha256(b"modem-1\nIN1.txt IN2.txt").hexdigest()
    assert gammu.provider_id(b"PHONE_ID=modem-1&ids=IN1.txt+IN2.txt") == f"gammu:{legacy}"


# ---- fragments --------------------------------------------------------------------------------


def _set(parts: list[tuple[int, str]], total: int = 3) -> FragmentSet:
    return FragmentSet(
        group_key="kannel:h:7:3",
        bridge=Bridge.KANNEL,
        reference=7,
        total=total,
        parts=tuple(HeldPart(f"raw-{n}-{t}", n, t, T0) for n, t in parts),
        meta={"sender": "+6281200000001", "receiver": "1708", "smsc": "inject"},
    )


def test_join_orders_parts_and_marks_gaps() -> None:
    complete = fragments.join(_set([(3, "ga."), (1, "Jalan ru"), (2, "sak ju")]))
    assert (
        complete.text == "Jalan rusak juga." and complete.missing == [] and complete.title() is None
    )
    gap = fragments.join(_set([(1, "Jalan ru"), (3, "ga.")]))
    assert gap.text == "Jalan ru [...] ga." and gap.missing == [2]
    assert gap.title() == "SMS tidak lengkap: bagian 2 dari 3 tidak diterima"
    tail = fragments.join(_set([(1, "Jalan")], total=4))
    assert tail.text == "Jalan [...]" and tail.missing == [2, 3, 4]


def test_join_keeps_the_first_copy_and_is_deterministic() -> None:
    a = fragments.join(_set([(1, "A"), (1, "A again"), (2, "B"), (3, "C")]))
    assert a.text == "ABC"
    b = fragments.join(_set([(2, "B"), (1, "A"), (3, "C")]))
    assert a.provider_id() != "" and fragments.read(a.body()) == a
    assert b.provider_id() == fragments.join(_set([(1, "A"), (3, "C"), (2, "B")])).provider_id()


def test_joined_message_is_parsed_with_its_title() -> None:
    joined = fragments.join(_set([(1, "JABAR Jalan ru"), (3, "ga rusak.")]))
    raw = RawInbound(Channel.SMS, joined.body(), T0, joined.provider_id(), fragments.CONTENT_TYPE)
    draft = interpret_joined(raw, SETTINGS).outcome
    assert isinstance(draft, ComplaintDraft)
    assert draft.body == "Jalan ru [...] ga rusak."
    assert draft.title == "SMS tidak lengkap: bagian 2 dari 3 tidak diterima"
    assert draft.location is not None and draft.location.region_code == "32"
    with pytest.raises(ParseError):
        fragments.read(b"{}")


def test_a_long_message_of_which_one_word_arrived_is_still_filed() -> None:
    # A one-word SMS is no report, but a long one whose other parts never came is: what
    # arrived is filed, marked incomplete, not answered "too short".
    joined = fragments.join(_set([(3, "tolong.")]))
    raw = RawInbound(Channel.SMS, joined.body(), T0, joined.provider_id(), fragments.CONTENT_TYPE)
    draft = interpret_joined(raw, SETTINGS).outcome
    assert isinstance(draft, ComplaintDraft) and draft.body == "[...] tolong."
    assert draft.title == "SMS tidak lengkap: bagian 1 dan 2 dari 3 tidak diterima"


@pytest.mark.parametrize(
    ("arrived", "total", "title"),
    [
        ([1, 3], 3, "SMS tidak lengkap: bagian 2 dari 3 tidak diterima"),
        ([2], 3, "SMS tidak lengkap: bagian 1 dan 3 dari 3 tidak diterima"),
        ([1], 4, "SMS tidak lengkap: bagian 2 sampai 4 dari 4 tidak diterima"),
        ([1, 4], 7, "SMS tidak lengkap: bagian 2, 3, dan 5 sampai 7 dari 7 tidak diterima"),
        ([1], 255, "SMS tidak lengkap: bagian 2 sampai 255 dari 255 tidak diterima"),
        # every other part of 255 missing: the list would not fit, the count does
        (list(range(1, 256, 2)), 255, "SMS tidak lengkap: 127 dari 255 bagian tidak diterima"),
    ],
)
def test_an_incomplete_title_reads_as_indonesian_and_fits_the_title_limit(
    arrived: list[int], total: int, title: str
) -> None:
    # A UDH allows 255 parts (TS 23.040 9.2.3.24.1), and a part claiming so is one SMS away:
    # "bagian 2, 3, 4, ..., 255" made a title of 1 300 characters, past the 300 of a title.
    joined = fragments.join(_set([(n, "Jalan rusak ") for n in arrived], total=total))
    raw = RawInbound(Channel.SMS, joined.body(), T0, joined.provider_id(), fragments.CONTENT_TYPE)
    draft = interpret_joined(raw, SETTINGS).outcome
    assert isinstance(draft, ComplaintDraft) and draft.title == title
    assert len(title) <= MAX_TITLE


def test_a_fragment_is_only_a_fragment() -> None:
    message = SmsMessage(Bridge.KANNEL, "+62812", "1708", "Jalan", "id", Fragment(1, 3, 1))
    assert interpret(message, SETTINGS).outcome == NotAComplaint("fragment")
    assert set(PARSER_NAMES) == set(Bridge)


# ---- Control characters: the same text, the same treatment on every bridge -------------------


def _with_field(body: bytes, name: str, value: bytes) -> bytes:
    """``body`` (a form) with the field ``name`` set to ``value`` (percent-encoded)."""
    prefix = name.encode() + b"="
    fields = [
        prefix + quote_from_bytes(value, safe="").encode() if f.startswith(prefix) else f
        for f in body.split(b"&")
    ]
    assert fields != body.split(b"&"), name
    return b"&".join(fields)


def _kannel(text: str) -> bytes:
    body = (Path(__file__).parent / "fixtures/kannel/mo__ucs2_emoji.txt").read_bytes().strip()
    return _with_field(body, "b", text.encode("utf-8"))


def _jasmin(text: str) -> bytes:
    octets = text.encode("utf-16-be")
    body = _with_field(load("jasmin/mo__ucs2_emoji").body, "content", octets)
    return _with_field(body, "binary", octets.hex().encode())


def _android(text: str) -> bytes:
    doc = json.loads(load("android/sms_received__docs_example").body)
    doc["payload"]["message"] = text
    return json.dumps(doc).encode()


def _smssync(text: str) -> bytes:
    body, _ = smssync.pop_secret(load("smssync/mo__rahasia").body)
    return _with_field(body, "message", text.encode("utf-8"))


def _gammu(text: str) -> bytes:
    return _with_field(load("gammu/mo__gsm_text").body, "SMS_1_TEXT", text.encode("utf-8"))


BRIDGE_BODIES = [
    (Bridge.KANNEL, _kannel),
    (Bridge.JASMIN, _jasmin),
    (Bridge.ANDROID, _android),
    (Bridge.SMSSYNC, _smssync),
    (Bridge.GAMMU, _gammu),
]


@pytest.mark.parametrize(("bridge", "body_of"), BRIDGE_BODIES, ids=lambda v: getattr(v, "value", ""))
@pytest.mark.parametrize(
    "text", ["Jalan\x00rusak", "Jalan rusak\x07", "\x1b[31mJalan rusak", "Jalan rusak\x85"]
)
def test_control_characters_are_binary_on_every_bridge(
    bridge: Bridge, body_of: Any, text: str
) -> None:
    # A NUL inside the text, BEL, ESC, a C1 control: binary (quarantined), never a complaint
    # body, whichever bridge carried it (SMSSync, Gammu and the app once passed them through).
    with pytest.raises(ParseError) as refused:
        decode(bridge, body_of(text), SETTINGS)
    assert refused.value.stage == "decode" and "binary" in refused.value.reason


@pytest.mark.parametrize(("bridge", "body_of"), BRIDGE_BODIES, ids=lambda v: getattr(v, "value", ""))
def test_text_ending_in_nul_and_tab_cr_lf_are_the_same_text_on_every_bridge(
    bridge: Bridge, body_of: Any
) -> None:
    assert decode(bridge, body_of("Jalan rusak\x00"), SETTINGS).text == "Jalan rusak"
    text = "Jalan\trusak\r\ndi RT 05 😡"
    assert decode(bridge, body_of(text), SETTINGS).text == text
