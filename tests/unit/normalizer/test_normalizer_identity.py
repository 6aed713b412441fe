import pytest

from normalizer.identity import (
    email_mailbox,
    normalize_email,
    normalize_telegram_user_id,
    normalize_telegram_username,
    normalize_twitter_handle,
    normalize_twitter_user_id,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("budi.santoso@gmail.com", "budi.santoso@gmail.com"),
        ("Budi.Santoso@Gmail.COM", "budi.santoso@gmail.com"),
        ("  budi@yahoo.co.id \n", "budi@yahoo.co.id"),
        ("<budi@yahoo.co.id>", "budi@yahoo.co.id"),
        ("Budi Santoso <Budi@Yahoo.co.id>", "budi@yahoo.co.id"),
        ('"Santoso, Budi" <budi@kemenpan.go.id>', "budi@kemenpan.go.id"),
        ("mailto:budi@desa-sukamaju.id", "budi@desa-sukamaju.id"),
        ("MAILTO:Budi@Example.co.id?subject=Laporan", "budi@example.co.id"),
        ("budi@example.co.id.", "budi@example.co.id"),  # end of a sentence
        ("(budi@example.co.id)", "budi@example.co.id"),
        ("budi@münchen.de", "budi@xn--mnchen-3ya.de"),  # IDN domain in its ASCII form
        ("budi@xn--mnchen-3ya.de", "budi@xn--mnchen-3ya.de"),
        ("o'brien@example.com", "o'brien@example.com"),
        ("ＢＵＤＩ@ＧＭＡＩＬ.ＣＯＭ", "budi@gmail.com"),  # full-width letters
    ],
)
def test_email_canonical_form(text: str, expected: str) -> None:
    assert normalize_email(text) == expected


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("budi.santoso@gmail.com", "budisantoso@gmail.com"),
        ("budi+lapor@gmail.com", "budi@gmail.com"),
    ],
)
def test_gmail_dots_and_plus_tags_are_kept(a: str, b: str) -> None:
    # Provider-specific aliasing is not applied: these stay different addresses (replies go to
    # the one the citizen gave)...
    assert normalize_email(a) == a
    assert normalize_email(a) != normalize_email(b)
    # ...but they are one Gmail mailbox, and so one reporter.
    assert email_mailbox(a) == email_mailbox(b)


@pytest.mark.parametrize(
    ("address", "mailbox"),
    [
        ("budi.santoso85+lapor@gmail.com", "budisantoso85@gmail.com"),
        ("budi.santoso85@googlemail.com", "budisantoso85@gmail.com"),
        ("budisantoso85@gmail.com", "budisantoso85@gmail.com"),
        # Everywhere else dots and "+" may be other people's addresses: left as they are.
        ("budi.santoso@yahoo.co.id", "budi.santoso@yahoo.co.id"),
        ("budi+rt05@warnet-jaya.id", "budi+rt05@warnet-jaya.id"),
        ("budi.santoso@gmail.co.id", "budi.santoso@gmail.co.id"),
    ],
)
def test_email_mailbox(address: str, mailbox: str) -> None:
    assert email_mailbox(address) == mailbox


@pytest.mark.parametrize(
    "text",
    [
        "",
        "budi",
        "budi@",
        "@gmail.com",
        "budi@@gmail.com",
        "budi@gmail@com",
        "budi santoso@gmail.com",
        ".budi@gmail.com",
        "budi.@gmail.com",
        "bu..di@gmail.com",
        "budi@localhost",  # no dot in the domain
        "budi@gmail.c",  # one-letter top-level domain
        "budi@-gmail.com",
        "budi@gmail-.com",
        "budi@gmail..com",
        "budi@123.456",  # numeric top-level domain
        "email: budi@gmail.com",
        "a" * 65 + "@gmail.com",  # local part over 64 octets
        "budi@" + "a" * 64 + ".com",  # label over 63 octets
        "b@" + ".".join(["abcdefghij"] * 25) + ".com",  # address over 254 octets
    ],
)
def test_not_an_email(text: str) -> None:
    assert normalize_email(text) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("@LAPOR1708", "lapor1708"),
        ("lapor1708", "lapor1708"),
        ("  @Budi_Santoso ", "budi_santoso"),
        ("https://twitter.com/LAPOR1708", "lapor1708"),
        ("https://x.com/Budi_Santoso/status/1790000000000000000", "budi_santoso"),
        ("x.com/budi", "budi"),
        ("https://mobile.twitter.com/Budi?s=20", "budi"),
        ("www.twitter.com/#!/budi", "budi"),
        ("a", "a"),
        ("_", "_"),
        ("A" * 15, "a" * 15),
    ],
)
def test_twitter_handle(text: str, expected: str) -> None:
    assert normalize_twitter_handle(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "@",
        "A" * 16,  # longer than 15
        "budi-santoso",
        "budi.santoso",
        "budi santoso",
        "@@budi",
        "bü",
        "https://x.com/home",
        "https://twitter.com/search?q=lapor",
    ],
)
def test_not_a_twitter_handle(text: str) -> None:
    assert normalize_twitter_handle(text) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("783214", "783214"),
        (" 1790000000000000000 ", "1790000000000000000"),
        ("000123", "123"),
        (12, "12"),
        (2**64 - 1, str(2**64 - 1)),
    ],
)
def test_twitter_user_id(value: str | int, expected: str) -> None:
    assert normalize_twitter_user_id(value) == expected


@pytest.mark.parametrize("value", ["", "0", "-5", "12a", "1.5", 0, -1, 2**64, True, "@12"])
def test_not_a_twitter_user_id(value: str | int) -> None:
    assert normalize_twitter_user_id(value) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("@Budi_Santoso", "budi_santoso"),
        ("budisantoso", "budisantoso"),
        ("t.me/BudiSantoso", "budisantoso"),
        ("https://t.me/budisantoso", "budisantoso"),
        ("http://telegram.me/budisantoso/", "budisantoso"),
        ("https://t.me/budisantoso?start=lapor", "budisantoso"),
        ("tg://resolve?domain=Budi_S", "budi_s"),
        ("lapor", "lapor"),  # five characters: the minimum
        ("a" + "b" * 31, "a" + "b" * 31),  # 32: the maximum
    ],
)
def test_telegram_username(text: str, expected: str) -> None:
    assert normalize_telegram_username(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "@",
        "budi",  # four characters
        "a" * 33,
        "1budi",  # must start with a letter
        "_budi",
        "budi_",  # cannot end with an underscore
        "budi-santoso",
        "budi santoso",
        "t.me/",
    ],
)
def test_not_a_telegram_username(text: str) -> None:
    assert normalize_telegram_username(text) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [("123456789", "123456789"), (" 7012345678 ", "7012345678"), (987654321, "987654321")],
)
def test_telegram_user_id(value: str | int, expected: str) -> None:
    assert normalize_telegram_user_id(value) == expected


@pytest.mark.parametrize(
    "value",
    ["", "abc", "0", "-1001234567890", -1001234567890, 0, 2**52, str(2**52), False],
)
def test_not_a_telegram_user_id(value: str | int) -> None:
    # Negative ids are groups and channels; ids have at most 52 significant bits.
    assert normalize_telegram_user_id(value) is None
