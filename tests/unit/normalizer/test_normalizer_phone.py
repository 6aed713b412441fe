import pytest

from normalizer.phone import find_phones, mask_phone, normalize_phone

MOBILE = "+6281234567890"


@pytest.mark.parametrize(
    "text",
    [
        "081234567890",
        "0812-3456-7890",
        "0812 3456 7890",
        "0812.3456.7890",
        "(0812) 3456 7890",
        "+62 812 3456 7890",
        "+62-812-3456-7890",
        "+6281234567890",
        "+62 (0) 812 3456 7890",  # trunk 0 kept in brackets
        "+62 0812 3456 7890",  # trunk 0 kept by mistake
        "6281234567890",  # WhatsApp style: country code without "+"
        "62 812 3456 7890",
        "0062 812 3456 7890",  # international prefix spelled out
        "0062812-3456-7890",
        "  0812 3456 7890 ",
        "tel: 0812-3456-7890",
        "WA: 0812 3456 7890",
        "081234567890".translate(str.maketrans("0123456789", "０１２３４５６７８９")),
    ],
)
def test_every_usual_way_of_writing_a_mobile_number(text: str) -> None:
    assert normalize_phone(text) == MOBILE


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("(0231) 123456", "+62231123456"),  # Cirebon landline with area code
        ("0231-123456", "+62231123456"),
        ("+62-21-5551234", "+62215551234"),  # Jakarta
        ("(021) 555-1234", "+62215551234"),
        ("021 5551234", "+62215551234"),
        ("62-21-5551234", "+62215551234"),  # 62 is the country code, not area 0622
        ("0361 234567", "+62361234567"),  # Denpasar
        ("0811-1234-567", "+628111234567"),  # 11-digit mobile
        ("0856 4123 4567", "+6285641234567"),
        ("0813 1111 2222", "+6281311112222"),
        ("001 65 6123 4567", "+6561234567"),  # IDD 001 then Singapore
        ("+1 650 253 0000", "+16502530000"),  # foreign number in international form
    ],
)
def test_landlines_and_other_forms(text: str, expected: str) -> None:
    assert normalize_phone(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "abc",
        "08123",  # too short
        "0812345678901234567",  # too long
        "12345",
        "14045",  # short code, not a subscriber number
        "3201014101900001",  # a NIK
        "0000000000",
        "+62 123",
        "+999 1234 5678",  # no such country code
    ],
)
def test_not_a_valid_number(text: str) -> None:
    assert normalize_phone(text) is None


@pytest.mark.parametrize(
    "text",
    [
        "0812 34S6 7890",  # S for 5
        "08123456789O",  # O for 0 at the end
        "0812-3456-78l0",  # l for 1
        "0812 3456 789 O",
        "+62 812 3456 789O",
    ],
)
def test_a_letter_typed_among_the_digits_is_refused_not_dropped(text: str) -> None:
    # libphonenumber drops the letter and the rest is a valid number one digit shorter: another
    # subscriber, whose person the identity graph would link to this citizen.
    assert normalize_phone(text) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0812 3456 7890 (WA)", MOBILE),
        ("0812 3456 7890WA", MOBILE),
        ("HP/WA 0812-3456-7890", MOBILE),
        ("No. HP 0812 3456 7890", MOBILE),
        ("nohp08123456789", "+628123456789"),  # a label glued in front loses no digit
        ("+62 21 5551234 ext. 12", "+62215551234"),
        ("021 5551234 x12", "+62215551234"),
    ],
)
def test_words_around_a_number_and_its_extension_are_not_typos(text: str, expected: str) -> None:
    assert normalize_phone(text) == expected


def test_other_default_region() -> None:
    assert normalize_phone("020 7946 0018", default_region="GB") == "+442079460018"
    assert normalize_phone("0812 3456 7890", default_region="GB") is None


def test_find_phones_in_free_text() -> None:
    text = (
        "Hubungi saya di 0812-3456-7890 atau wa 6285712345678, kantor (0231) 123456 / "
        "+62-21-5551234. NIK 3201014101900001 dan 6201014101900001, no rek 1234567890123, "
        "0062 813 1111 2222. tgl 12-05-2024 jam 10.30 rp 150.000 hp:081311112233"
    )
    assert find_phones(text) == [
        "+6281234567890",
        "+6285712345678",
        "+62231123456",
        "+62215551234",
        "+6281311112222",
        "+6281311112233",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("nomor saya 0812 3456 7890 0813 1111 2222", ["+6281234567890", "+6281311112222"]),
        ("0812-3456-7890 / 0812 3456 7890 / +6281234567890", [MOBILE]),  # repeats once
        ("wa08123456789O", []),  # letter O at the end: not a number
        ("harga 2.500.000, tanggal 17-08-2024, jam 08.00", []),
        ("NIK 6201014101900001", []),  # Kalimantan Tengah NIK starts with 62
        ("kode pos 45111, RT 003 RW 005", []),
        ("", []),
    ],
)
def test_find_phones_cases(text: str, expected: list[str]) -> None:
    assert find_phones(text) == expected


@pytest.mark.parametrize(
    ("e164", "masked"),
    [
        ("+6281234567890", "+62812*****890"),
        ("+628111234567", "+62811****567"),
        ("+62231123456", "+62231***456"),
        ("+62215551234", "+62215***234"),
        ("+16502530000", "+1650****000"),
    ],
)
def test_mask_phone(e164: str, masked: str) -> None:
    out = mask_phone(e164)
    assert out == masked
    assert len(out) == len(e164)
    assert out.count("*") >= 3


@pytest.mark.parametrize("bad", ["081234567890", "+62 812 3456 7890", "phone", ""])
def test_mask_phone_requires_e164(bad: str) -> None:
    with pytest.raises(ValueError):
        mask_phone(bad)


def test_mask_of_normalized_number_roundtrip() -> None:
    e164 = normalize_phone("0812-3456-7890")
    assert e164 is not None
    assert mask_phone(e164).startswith("+62812") and mask_phone(e164).endswith("890")


def test_plain_digits_shortcut_agrees_with_the_general_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # normalize_phone answers "+62...", "62..." and "0..." written as bare digits without
    # libphonenumber's parse; every such string, valid or not, must get the general path's answer.
    from hypothesis import given
    from hypothesis import settings as hsettings
    from hypothesis import strategies as st

    from normalizer.phone import _normalize

    prefixes = st.sampled_from(["+62", "62", "0", "+620", "062", "00", "+6208"])
    digits = st.text("0123456789", min_size=0, max_size=14)

    @hsettings(max_examples=3000, deadline=None, derandomize=True)
    @given(prefixes, st.sampled_from(["1", "2", "8", "81", "85", "21", "22", "61"]), digits)
    def agree(prefix: str, lead: str, rest: str) -> None:
        text = prefix + lead + rest
        assert normalize_phone.__wrapped__(text) == _normalize(text, "ID", strict=False), text

    agree()
    # And the shortcut is taken for real (the agreement above holds as well when it never is):
    # a valid mobile and a valid Jakarta landline are answered without the general path.
    import normalizer.phone

    def general_path(text: str, default_region: str, *, strict: bool) -> str | None:
        raise AssertionError(f"{text!r} took the general path")

    monkeypatch.setattr(normalizer.phone, "_normalize", general_path)
    assert normalize_phone.__wrapped__("081234567890") == "+6281234567890"
    assert normalize_phone.__wrapped__("6281234567890") == "+6281234567890"
    assert normalize_phone.__wrapped__("+62215551234") == "+62215551234"
