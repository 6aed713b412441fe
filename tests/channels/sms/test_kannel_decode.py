"""The Kannel request decoder on requests recorded from a real Kannel 1.4.5."""

from __future__ import annotations

from pathlib import Path

import pytest

from channels.sms import kannel
from channels.sms.kannel import Fragment, decode_request
from gateway.errors import ParseError

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "kannel"
LONG = ("Jalan Siliwangi rusak parah sejak bulan lalu, " * 8).strip()


def fixture(name: str) -> bytes:
    return (FIXTURES / f"{name}.txt").read_bytes().rstrip(b"\n")


def test_every_fixture_is_documented() -> None:
    sources = (FIXTURES.parent / "SOURCES.md").read_text()
    for path in FIXTURES.glob("*.txt"):
        assert f"`{path.stem}`" in sources, path.name


def test_gsm_text_with_extension_characters_arrives_exact() -> None:
    mo = decode_request(fixture("mo__gsm_text"))
    assert mo.text == "Jalan rusak @£$€ {biaya} [RT 05] ~ tolong é"
    assert (mo.sender, mo.receiver, mo.coding, mo.charset) == ("+6281200000001", "1708", 0, "UTF-8")
    assert mo.smsc_id == "inject" and mo.message_id and mo.time and mo.fragment is None
    assert mo.udh == b""


def test_ucs2_with_emoji_and_skin_tone_arrives_exact() -> None:
    assert decode_request(fixture("mo__ucs2_emoji")).text == "Lampu jalan mati 😡👍🏽 sudah 3 hari"


def test_8bit_data_keeps_crlf_double_spaces_and_reserved_characters() -> None:
    mo = decode_request(fixture("mo__crlf_data"))
    assert (mo.coding, mo.charset) == (1, "8-BIT")
    assert mo.text == "Sampah menumpuk\r\ndi  Jl. Merdeka 10\r\n100% bau & kotor +"


@pytest.mark.parametrize("name", ["mo__long_3parts_in_order", "mo__long_3parts_reversed"])
def test_reassembled_long_message_is_whole_and_not_a_fragment(name: str) -> None:
    mo = decode_request(fixture(name))
    assert mo.text == LONG and mo.fragment is None and mo.udh == b""


def test_part_sent_alone_after_the_timeout_is_a_fragment() -> None:
    mo = decode_request(fixture("mo__fragment_timeout"))
    assert mo.udh == bytes.fromhex("050003280401")
    assert mo.fragment == Fragment(reference=0x28, total=4, sequence=1)


def test_empty_payload_is_a_space() -> None:
    assert decode_request(fixture("mo__empty")).text == " "


def test_ucs2_without_recode_is_utf16be() -> None:
    body = "Air PDAM mati 💧".encode("utf-16-be")
    query = (
        b"p=%2B6281200000001&b=" + "".join(f"%{b:02X}" for b in body).encode() + b"&c=2&C=UTF-16BE"
    )
    assert decode_request(query).text == "Air PDAM mati 💧"


def test_coding_alone_chooses_the_charset() -> None:
    assert decode_request(b"p=1&b=%00A%00B&c=2").text == "AB"
    assert decode_request(b"p=1&b=caf%C3%A9&c=0").text == "café"


def test_8bit_that_is_not_utf8_is_read_as_latin1() -> None:
    assert decode_request(b"p=1&b=caf%E9&c=1&C=8-BIT").text == "café"


def test_binary_8bit_payload_is_refused() -> None:
    with pytest.raises(ParseError) as err:
        decode_request(b"p=1&b=%00%01%02%03&c=1&C=8-BIT")
    assert err.value.stage == "decode"


@pytest.mark.parametrize(
    "query",
    [
        b"b=halo",  # no sender
        b"p=1&b=%FF%FE&c=0&C=UTF-8",  # not UTF-8
        b"p=1&b=halo&c=7",  # unknown coding
        b"p=1&b=halo&C=X-NOPE",  # unknown charset
        b"p=1&p=2&b=halo",  # repeated parameter
    ],
)
def test_undecodable_requests_are_parse_errors(query: bytes) -> None:
    with pytest.raises(ParseError):
        decode_request(query)


def test_16bit_reference_concatenation() -> None:
    frag = kannel.parse_concatenation(bytes.fromhex("06080412340302"))
    assert frag == Fragment(reference=0x1234, total=3, sequence=2)


def test_udh_without_concatenation_is_not_a_fragment() -> None:
    # application port addressing (IEI 05) only
    assert kannel.parse_concatenation(bytes.fromhex("0605040b8423f0")) is None


@pytest.mark.parametrize("udh", ["05000328", "0500032804", "050003280400", "050003280405"])
def test_malformed_concatenation_is_a_parse_error(udh: str) -> None:
    with pytest.raises(ParseError) as err:
        kannel.parse_concatenation(bytes.fromhex(udh))
    assert err.value.stage == "udh"


def test_hex_udh_is_accepted_too() -> None:
    assert decode_request(b"p=1&b=x&u=050003280402").fragment == Fragment(0x28, 4, 2)
