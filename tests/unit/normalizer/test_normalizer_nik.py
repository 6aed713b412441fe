from datetime import date

import pytest

from normalizer.nik import InvalidNik, NikError, Sex, ValidNik, find_niks, parse_nik

TODAY = date(2025, 6, 1)
FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
PERSIAN = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")


def valid(text: str) -> ValidNik:
    result = parse_nik(text, today=TODAY)
    assert isinstance(result, ValidNik), result
    return result


def invalid(text: str) -> InvalidNik:
    result = parse_nik(text, today=TODAY)
    assert isinstance(result, InvalidNik), result
    return result


@pytest.mark.parametrize(
    "text",
    [
        "3201014101900001",
        "3201 0141 0190 0001",
        "3201.0141.0190.0001",
        "3201-0141-0190-0001",
        "320101 410190 0001",
        "  3201014101900001\n",
        "NIK: 3201014101900001",
        "No. KTP 3201 0141 0190 0001",
        "3201014101900001".translate(FULL_WIDTH),  # full-width digits from a phone keyboard
        # Arabic-Indic and Persian digits (a phone keyboard set to Arabic): digits NFKC keeps.
        "3201014101900001".translate(ARABIC_INDIC),
        "NIK: 3201 0141 0190 0001".translate(PERSIAN),
        "32010141" + "01900001".translate(ARABIC_INDIC),
        # Invisible marks a copy from a chat or a contact card brings along.
        "\u2068\u200e3201014101900001\u2069",
        "3201\u200b0141\u200b0190\u200b0001",
    ],
)
def test_every_usual_way_of_writing_gives_the_same_nik(text: str) -> None:
    assert valid(text).nik == "3201014101900001"


def test_region_is_decoded_from_the_official_list() -> None:
    r = valid("3174071508950001")
    assert (r.province.code, r.province.name) == ("31", "Daerah Khusus Ibukota Jakarta")
    assert (r.regency.code, r.regency.name) == ("3174", "Kota Administrasi Jakarta Selatan")
    assert (r.district.code, r.district.name) == ("317407", "Kebayoran Baru")
    assert r.district.dotted == "31.74.07"
    assert not r.legacy_region and r.district.successor is None


@pytest.mark.parametrize(
    ("nik", "born", "sex"),
    [
        ("3174071508950001", date(1995, 8, 15), Sex.MALE),
        ("3174075508950001", date(1995, 8, 15), Sex.FEMALE),  # day 55 = 15 + 40
        ("3201014101900001", date(1990, 1, 1), Sex.FEMALE),  # day 41 = 1 + 40
        ("3201017112850002", date(1985, 12, 31), Sex.FEMALE),  # day 71 = 31 + 40
        ("3273013112990003", date(1999, 12, 31), Sex.MALE),
        ("3578010101100004", date(2010, 1, 1), Sex.MALE),  # 10 -> 2010, not 1910
        ("3578010101300005", date(1930, 1, 1), Sex.MALE),  # 30 -> 1930: 2030 is future
        ("5171016902000006", date(2000, 2, 29), Sex.FEMALE),  # 29 Feb exists in 2000
    ],
)
def test_birth_date_and_sex(nik: str, born: date, sex: Sex) -> None:
    r = valid(nik)
    assert r.birth_date == born
    assert r.sex is sex


def test_serial_is_kept() -> None:
    assert valid("3201014101900123").serial == "0123"


@pytest.mark.parametrize(
    ("nik", "legacy_regency", "current_regency", "current_district", "old_name"),
    [
        # Merauke: 91.01 in Papua until 2022, now 93.01 in Papua Selatan.
        ("9101010101800001", "Kabupaten Merauke", "9301", "930101", "Merauke"),
        # Jayawijaya: 91.02 -> 95.01 (Papua Pegunungan); the district was renumbered too.
        ("9102034506880002", "Kabupaten Jayawijaya", "9501", "950102", "Kurulu"),
        # Mimika: 91.09 -> 94.04 (Papua Tengah).
        ("9109011203750003", "Kabupaten Mimika", "9404", "940401", None),
        # Kota Sorong: 92.71 in Papua Barat -> 96.71 (Papua Barat Daya).
        ("9271010101850004", "Kota Sorong", "9671", "967101", None),
        # Holuon (2019 spelling) in Yahukimo -> Holuwon, 95.03.34.
        ("9113361010900005", "Kabupaten Yahukimo", "9503", "950334", "Holuwon"),
    ],
)
def test_pre_2022_papua_codes_still_validate(
    nik: str,
    legacy_regency: str,
    current_regency: str,
    current_district: str,
    old_name: str | None,
) -> None:
    r = valid(nik)
    assert r.legacy_region
    assert r.regency.legacy and r.regency.name == legacy_regency
    assert r.regency.successor == current_regency
    assert r.district.legacy and r.district.successor == current_district
    assert r.province.code in {"91", "92"} and not r.province.legacy
    if old_name:
        assert r.district.name == old_name


def test_new_papua_codes_validate_too() -> None:
    r = valid("9301010101800001")
    assert r.province.name == "Papua Selatan"
    assert r.regency.name == "Kabupaten Merauke"
    assert not r.legacy_region


def test_papua_regency_that_did_not_move_keeps_its_code() -> None:
    r = valid("9103010101800001")
    assert r.regency.name == "Kabupaten Jayapura" and r.district.name == "Sentani"
    assert not r.legacy_region


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("320101410190001", NikError.WRONG_LENGTH),  # 15 digits
        ("32010141019000011", NikError.WRONG_LENGTH),  # 17 digits
        ("", NikError.WRONG_LENGTH),
        ("3201 0141 0190 00O1", NikError.NON_DIGIT),  # letter O for zero
        ("3201O14101900001", NikError.NON_DIGIT),
        ("+623201014101900001", NikError.NON_DIGIT),
        ("9901014101900001", NikError.UNKNOWN_PROVINCE),  # no province 99
        ("0001014101900001", NikError.UNKNOWN_PROVINCE),
        ("2001014101900001", NikError.UNKNOWN_PROVINCE),  # 20 is not used
        ("3200014101900001", NikError.UNKNOWN_REGENCY),  # no region is ever 00
        ("3201004101900001", NikError.UNKNOWN_DISTRICT),
        ("3201013102900001", NikError.INVALID_BIRTH_DATE),  # 31 February
        ("3201017202900001", NikError.INVALID_BIRTH_DATE),  # day 72: a woman born on the 32nd
        ("3201013502900001", NikError.INVALID_BIRTH_DATE),  # day 35: between men and women
        ("3201010001900001", NikError.INVALID_BIRTH_DATE),  # day 00
        ("3201011513900001", NikError.INVALID_BIRTH_DATE),  # month 13
        ("3201012902010001", NikError.INVALID_BIRTH_DATE),  # 29 Feb 2001 / 1901
        ("3201014101900000", NikError.SERIAL_ZERO),
    ],
)
def test_invalid_niks_have_a_reason(text: str, reason: NikError) -> None:
    r = invalid(text)
    assert r.reason is reason
    assert r.valid is False
    assert r.message_id and r.message_en
    assert r.message_id != r.message_en


@pytest.mark.parametrize(
    ("text", "regency_listed"),
    [
        ("6473014101900001", False),  # Kota Tarakan before Kalimantan Utara (2012): 65.71 now
        ("3207204101900001", True),  # a Ciamis district that went to Pangandaran in 2012
        ("3299014101900001", False),
        ("9101990101800001", True),  # old Merauke had no 91.01.99
    ],
)
def test_a_region_code_the_list_does_not_hold_is_a_valid_nik_with_an_unlisted_region(
    text: str, regency_listed: bool
) -> None:
    # A NIK is kept for life; the list holds today's codes and the 2019 Papua ones only.
    r = parse_nik(text)
    assert isinstance(r, ValidNik) and r.nik == text and not r.region_listed
    assert r.province.listed and r.regency.listed is regency_listed
    assert not r.district.listed and r.district.name == "" and r.district.dotted == (
        f"{text[:2]}.{text[2:4]}.{text[4:6]}"
    )
    assert parse_nik("3171014101900001").region_listed  # a listed one


def test_messages_name_the_offending_part() -> None:
    assert "99" in invalid("9901014101900001").message_id
    assert "32.01.00" in invalid("3201004101900001").message_en
    assert "14 angka" in invalid("32010141019000").message_id
    assert invalid("3201014101900000").message_en.endswith("cannot be 0000.")


def test_checks_run_in_order_from_left_to_right() -> None:
    # Unknown province and an impossible date: the province is reported.
    assert invalid("9901019902900000").reason is NikError.UNKNOWN_PROVINCE
    # Valid region, impossible date and serial 0000: the date is reported.
    assert invalid("3201013102900000").reason is NikError.INVALID_BIRTH_DATE


def test_invalid_result_keeps_what_was_checked() -> None:
    r = invalid("NIK: 3201-0141-0190-0000")
    assert r.text == "NIK: 3201-0141-0190-0000"
    assert r.digits == "3201014101900000"


def test_century_depends_on_the_reference_date() -> None:
    nik = "3201010101240001"
    assert valid(nik).birth_date == date(2024, 1, 1)
    old = parse_nik(nik, today=date(2020, 1, 1))
    assert isinstance(old, ValidNik) and old.birth_date == date(1924, 1, 1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("NIK: 3201 0141 0190 0001", ["3201014101900001"]),
        ("nik3201014101900001 mohon dicek", ["3201014101900001"]),
        ("No. KTP 3201.0141.0190.0001, a.n. Budi", ["3201014101900001"]),
        ("nik saya 3201-0141-0190-0001.", ["3201014101900001"]),
        # A KK number has the NIK's shape (region, date of issue, serial): both are found.
        ("NIK:3174071508950001/KK:3174070101090012", ["3174071508950001", "3174070101090012"]),
        (
            "nik suami 3201014101900001 nik istri 3201015101920002 nik suami 3201014101900001",
            ["3201014101900001", "3201015101920002"],
        ),
        # A legacy Papua NIK is a NIK.
        ("KTP lama saya 9101010101800001", ["9101010101800001"]),
        # Inside a longer digit run: an account or reference number, not a NIK.
        ("no rek 32010141019000011234", []),
        ("ref 123201014101900001", []),
        ("kode bayar 32010141019000019", []),
        # Phone numbers are not NIKs.
        ("hp 0812 3456 7890, wa +62 812 3456 7890", []),
        ("telp 0062 8123 4567 8901", []),
        ("+62 3201 0141 0190 0001", []),
        # 16 digits that cannot be a NIK: no such province, or no such month.
        ("VA 8808 1234 5678 9012", []),
        ("kartu 4111 1111 1111 1111", []),
        ("3201011513900001", []),
        # A phone number and a NIK written side by side.
        ("081234567890 3201014101900001", ["3201014101900001"]),
        ("0812 3456 7890 3201 0141 0190 0001", ["3201014101900001"]),
        ("", []),
    ],
)
def test_find_niks_in_free_text(text: str, expected: list[str]) -> None:
    assert find_niks(text, today=TODAY) == expected


def test_find_niks_in_other_digits_gives_ascii_niks() -> None:
    text = "NIK saya " + "3201 0141 0190 0001".translate(ARABIC_INDIC) + " mohon dicek"
    assert find_niks(text, today=TODAY) == ["3201014101900001"]
    mixed = "nik 3201" + "014101900001".translate(PERSIAN)
    assert find_niks(mixed, today=TODAY) == ["3201014101900001"]
    assert find_niks(mixed, valid_only=True, today=TODAY) == ["3201014101900001"]


def test_find_niks_reports_a_mistyped_nik_unless_valid_only() -> None:
    text = "NIK 3201 0141 0190 0000"  # serial 0000: shaped like a NIK, but invalid
    assert find_niks(text, today=TODAY) == ["3201014101900000"]
    assert find_niks(text, valid_only=True, today=TODAY) == []


def test_find_niks_results_parse() -> None:
    text = "Saya Budi (NIK 3273 0131 1299 0003) melaporkan, istri 3578015101100004."
    found = find_niks(text, today=TODAY)
    assert found == ["3273013112990003", "3578015101100004"]
    assert all(parse_nik(n, today=TODAY).valid for n in found)
