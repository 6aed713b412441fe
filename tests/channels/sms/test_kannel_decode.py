"""The Kannel request decoder on requests recorded from a real Kannel 1.4.5."""

from __future__ import annotations

import re
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from channels.sms import fragments, kannel
from channels.sms.kannel import Fragment, decode_request
from channels.sms.message import Bridge
from channels.sms.ports import FragmentSet, HeldPart
from channels.sms.settings import SmsSettings
from gateway.errors import ParseError
from tests.channels.sms.http_fixtures import load

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "kannel"
LONG = ("Jalan Siliwangi rusak parah sejak bulan lalu, " * 8).strip()
SPLIT_PAIR = "Lampu jalan mati sudah 3 hari 😡 mohon diperbaiki"


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


@pytest.mark.parametrize("charset", ["UCS-2", "UCS2", "ucs-2be", "ISO-10646-UCS-2", "UTF-16"])
def test_ucs2_charset_names_and_bomless_utf16_are_big_endian(charset: str) -> None:
    # SMS UCS-2 is big-endian (3GPP TS 23.038); UTF-16 without a BOM is too (RFC 2781 4.3),
    # where Python's "utf-16" would read it in the machine's order: "Jalan" as "䨀愀氀愀渀".
    body = "".join(f"%{b:02X}" for b in "Jalan rusak".encode("utf-16-be")).encode()
    query = b"p=1&b=" + body + b"&c=2&C=" + charset.encode()
    assert decode_request(query).text == "Jalan rusak"


def test_utf16_with_a_bom_follows_the_bom() -> None:
    body = "".join(f"%{b:02X}" for b in "Jalan rusak".encode("utf-16-le")).encode()
    assert decode_request(b"p=1&b=%FF%FE" + body + b"&c=2&C=UTF-16").text == "Jalan rusak"


def test_8bit_that_is_not_utf8_is_read_as_latin1() -> None:
    assert decode_request(b"p=1&b=caf%E9&c=1&C=8-BIT").text == "café"


def test_binary_8bit_payload_is_refused() -> None:
    with pytest.raises(ParseError) as err:
        decode_request(b"p=1&b=%00%01%02%03&c=1&C=8-BIT")
    assert err.value.stage == "decode"


@pytest.mark.parametrize(
    "query",
    [
        b"p=1&b=jalan+rusak%00&c=0&C=UTF-8",
        b"p=1&b=jalan+rusak%00%00&c=1&C=8-BIT",
        b"p=1&b=%00j%00a%00l%00a%00n%00+%00r%00u%00s%00a%00k%00%00&c=2&C=UTF-16BE",
    ],
)
def test_trailing_nul_terminator_is_dropped_not_binary(query: bytes) -> None:
    # Some SMSCs send short_message as a C string: its terminating NUL is no content.
    assert decode_request(query).text == "jalan rusak"


def test_nul_inside_the_text_is_still_binary() -> None:
    with pytest.raises(ParseError):
        decode_request(b"p=1&b=jalan%00rusak&c=1&C=8-BIT")


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


# ---- a surrogate pair split between two UCS-2 parts -------------------------------------------
# The phone split the emoji's UTF-16 pair between parts 1 and 2 (3GPP TS 23.040 does not forbid
# it) and Kannel handed the parts over one by one. With mo-recode = no each part is UTF-16BE with
# its half of the pair; with mo-recode = yes smsbox drops the high half and sends the low one as
# the bytes ED B8 A1, which are not UTF-8 (see SOURCES.md).


def held(name: str) -> HeldPart:
    """A part decoded from its fixture, as the fragment buffer holds it."""
    mo = decode_request(fixture(name))
    assert mo.fragment is not None
    f, at = mo.fragment, datetime(2026, 12, 4, tzinfo=UTC)
    return HeldPart(name, f.sequence, mo.text, at, f.high_surrogate, f.low_surrogate)


def split_set(*names: str) -> FragmentSet:
    parts = tuple(held(n) for n in names)
    meta = {"sender": "+6281200000001", "receiver": "1708"}
    return FragmentSet("kannel:h:91:2", Bridge.KANNEL, 0x5B, 2, parts, meta)


def test_ucs2_parts_keep_the_halves_of_a_split_pair_and_show_fffd() -> None:
    first = decode_request(fixture("mo__ucs2_part1_split_pair"))
    assert first.text == "Lampu jalan mati sudah 3 hari \ufffd"
    assert first.fragment == Fragment(0x5B, 2, 1, high_surrogate=0xD83D)
    second = decode_request(fixture("mo__ucs2_part2_split_pair"))
    assert second.text == "\ufffd mohon diperbaiki"
    assert second.fragment == Fragment(0x5B, 2, 2, low_surrogate=0xDE21)
    recoded = decode_request(fixture("mo__recoded_part2_split_pair"))
    assert (recoded.text, recoded.fragment) == (second.text, second.fragment)


@pytest.mark.parametrize("order", [(1, 2), (2, 1)], ids=["in-order", "reversed"])
def test_a_pair_split_between_parts_is_whole_once_joined(order: tuple[int, int]) -> None:
    names = {1: "mo__ucs2_part1_split_pair", 2: "mo__ucs2_part2_split_pair"}
    joined = fragments.join(split_set(*(names[n] for n in order)))
    assert joined.text == SPLIT_PAIR and joined.title() is None
    joined.body().decode("utf-8")  # strict: valid UTF-8
    assert fragments.read(joined.body()) == joined


@pytest.mark.parametrize(
    ("names", "text"),
    [
        (["mo__ucs2_part1_split_pair"], "Lampu jalan mati sudah 3 hari \ufffd [...]"),
        (["mo__ucs2_part2_split_pair"], "[...] \ufffd mohon diperbaiki"),
        # mo-recode = yes: Kannel never passed the high half on, the low one has no partner.
        (
            ["mo__recoded_part1_split_pair", "mo__recoded_part2_split_pair"],
            "Lampu jalan mati sudah 3 hari \ufffd mohon diperbaiki",
        ),
    ],
    ids=["part-2-missing", "part-1-missing", "recoded"],
)
def test_a_half_without_its_partner_is_fffd_in_the_joined_text(names: list[str], text: str) -> None:
    joined = fragments.join(split_set(*names))
    assert joined.text == text
    joined.body().decode("utf-8")
    assert fragments.read(joined.body()) == joined


def test_8bit_and_gsm_parts_are_not_read_as_ucs2() -> None:
    # Octets that would be halves of a pair in UCS-2 are two characters each in 8-bit data.
    data = decode_request(b"p=1&b=%DE!+x+%D8%3D&c=1&C=8-BIT&u=050003050201")
    assert data.text == "Þ! x Ø=" and data.fragment == Fragment(5, 2, 1)
    gsm = decode_request(fixture("mo__fragment_timeout"))
    assert gsm.fragment == Fragment(0x28, 4, 1) and gsm.text.startswith("Jalan Siliwangi")


def test_lone_surrogate_inside_a_part_is_fffd_and_outside_a_part_an_error() -> None:
    part = decode_request(b"p=1&b=%00a%D8%3D%00b&c=2&u=050003050201")
    assert part.text == "a\ufffdb" and part.fragment == Fragment(5, 2, 1)
    with pytest.raises(ParseError):  # a whole message has no neighbour to complete the pair
        decode_request(b"p=1&b=%00a%D8%3D&c=2")


# ---- post-url (recorded from a real Kannel 1.4.5, fixtures/kannel/post_url__*.http) -------------


def post_url(name: str) -> bytes:
    """A recorded post-url request as the get-url query the route stores for it."""
    req = load(f"kannel/post_url__{name}")
    return kannel.post_url_query(req.query.encode(), req.headers, req.body)


@pytest.mark.parametrize(
    ("name", "get_url"),
    [
        ("sender_id__gsm", "mo__gsm_text"),
        ("sender_id__ucs2", "mo__ucs2_emoji"),
        ("sender_id__data", "mo__crlf_data"),
        ("norecode__ucs2", "mo__ucs2_emoji"),
    ],
)
def test_post_url_request_reads_as_the_get_url_request_of_the_same_mo(
    name: str, get_url: str
) -> None:
    mo, expected = decode_request(post_url(name)), decode_request(fixture(get_url))
    assert (mo.sender, mo.receiver, mo.text, mo.payload, mo.smsc_id, mo.fragment) == (
        expected.sender,
        expected.receiver,
        expected.text,
        expected.payload if name != "norecode__ucs2" else expected.text.encode("utf-16-be"),
        expected.smsc_id,
        None,
    )
    assert mo.time is not None and re.fullmatch(r"2026-12-05 \d\d:\d\d:\d\d", mo.time)
    # The id only when the post-url's URL asks for it (%I): no header carries it.
    assert (mo.message_id is not None) == name.startswith("sender_id")


def test_post_url_8bit_data_and_ucs2_keep_their_coding() -> None:
    data = decode_request(post_url("sender_id__data"))
    assert (data.coding, data.charset) == (1, "")  # application/octet-stream: no charset
    ucs2 = decode_request(post_url("norecode__ucs2"))
    assert (ucs2.coding, ucs2.charset) == (2, "UTF-16BE")


def test_post_url_part_keeps_its_udh() -> None:
    mo = decode_request(post_url("sender_id__fragment"))
    assert mo.udh == bytes.fromhex("050003280401")
    assert mo.fragment == Fragment(reference=0x28, total=4, sequence=1)
    assert mo.text == "Jalan Siliwangi rusak parah"


def test_post_url_without_send_sender_has_no_sender_but_keeps_everything_else() -> None:
    query = post_url("bare__gsm")
    with pytest.raises(ParseError, match="sender"):
        decode_request(query)
    values = kannel.split_query(query)
    assert values["b"] == load("kannel/post_url__bare__gsm").body
    assert (values["P"], values["i"], values["c"], values["C"]) == (
        b"1708",
        b"inject",
        b"0",
        b"UTF-8",
    )


def test_post_url_fields_in_the_url_win_and_the_body_is_exact() -> None:
    body = b"100% bau & kotor +\r\n  spasi"
    headers = {"X-Kannel-From": "+62811", "X-Kannel-To": "1708", "Content-Type": "text/plain"}
    query = kannel.post_url_query(b"p=%2B62812&I=abc", headers, body)
    values = kannel.split_query(query)
    assert (values["p"], values["P"], values["I"], values["b"]) == (
        b"+62812",
        b"1708",
        b"abc",
        body,
    )
    assert "C" not in values  # no charset given: decoded by %c, as a get-url without %C
    # A GET-style URL with every escape (the README's) is left exactly as it is.
    full = fixture("mo__gsm_text")
    assert kannel.post_url_query(full, headers, b"other") == full


def test_shipped_fragment_timeout_is_well_above_kannels_combine_timeout() -> None:
    # Kannel hands a part over alone only after its own wait for the siblings, so a late
    # sibling reaches the gateway at least that long after the first part: at the same value
    # the gateway files the first part alone before the late one comes.
    root = Path(__file__).resolve().parents[3]
    conf = (root / "config" / "kannel" / "kannel.conf").read_text()
    combine = re.search(r"^sms-combine-concatenated-mo-timeout = (\d+)$", conf, re.M)
    assert combine is not None
    with open(root / "config" / "gateway.toml", "rb") as fh:
        shipped = tomllib.load(fh)["sms"]["fragment_timeout"]
    assert shipped >= 2 * int(combine.group(1)) == 3600
    assert SmsSettings().fragment_timeout == shipped
