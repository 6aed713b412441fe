import io
import json
import logging

import pytest

from gateway.logs import JsonFormatter, TextFormatter, mask_text

NIKS = [
    "3201014101900001",
    "3201 0141 0190 0001",
    "3201.0141.0190.0001",
    # Every way normalizer.parse_nik reads a NIK is masked too: the Kemendagri dotted region
    # code (32.01.01), separators with spaces around them, slashes and underscores.
    "32.01.01.410190.0001",
    "32 01 01 410190 0001",
    "3201 - 0141 - 0190 - 0001",
    "3201/0141/0190/0001",
    "3201_0141_0190_0001",
]
PHONES = [
    "+6281234567890",
    "081234567890",
    "0812-3456-7890",
    "62 812 3456 7890",
    "(0231) 123456",
    # Every way normalizer.normalize_phone reads an Indonesian number is masked too.
    "+62 (0) 812 3456 7890",
    "+62(0)81234567890",
    "(+62) 812-3456-7890",
    "812 3456 7890",
    "81234567890",
    "856-4123-4567",
]


@pytest.mark.parametrize("nik", NIKS)
def test_nik_is_masked(nik: str) -> None:
    masked = mask_text(f"pelapor NIK {nik} mengadu")
    digits = "".join(c for c in masked if c.isdigit())
    assert "0141" not in masked and "0190" not in masked
    assert digits.startswith("320101") and "********" in masked


@pytest.mark.parametrize("phone", PHONES)
def test_phone_is_masked(phone: str) -> None:
    masked = mask_text(f"hubungi {phone} ya")
    assert phone not in masked
    assert "*" in masked
    # the last three digits stay, for an operator to tell numbers apart
    assert masked.rstrip(" ya").endswith(phone[-3:])


@pytest.mark.parametrize(
    "written",
    [
        "081234567890".translate(str.maketrans("0123456789", "０１２３４５６７８９")),
        "0812-3456-7890".translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")),
        "3201 0141 0190 0001".translate(str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")),
    ],
)
def test_numbers_in_other_digits_are_masked(written: str) -> None:
    # Full-width, Arabic-Indic or Persian digits: the normalizers read them as a phone or a NIK.
    masked = mask_text(f"hubungi {written} ya")
    shown = sum(c.isdigit() for c in masked)
    assert "*" in masked and shown <= sum(c.isdigit() for c in written) - 5


@pytest.mark.parametrize(
    "written",
    [
        # Zero-width and word-joiner marks a copy from a chat brings along: normalizer.parse_nik,
        # find_niks and normalize_phone drop them and read the number, so the masks must too.
        "3201\u200b0141\u200b0190\u200b0001",
        "3201014101\u200c900001",
        "0812\u200b3456\u200b7890",
        "0812\u20603456\u20607890",
    ],
)
def test_numbers_with_invisible_marks_are_masked(written: str) -> None:
    masked = mask_text(f"hubungi {written} ya")
    shown = sum(c.isdigit() for c in masked)
    assert "*" in masked and shown <= sum(c.isdigit() for c in written) - 5
    assert "0141" not in masked and "3456" not in masked


@pytest.mark.parametrize(
    ("stored", "hidden"),
    [
        # A Kannel or Jasmin request as stored (quarantine show prints it): "+" is %2B.
        ("p=%2B6281234567890&P=1708&b=cek", "12345"),
        ("from=%2B6281234567890&to=1708", "12345"),
        # A form body as stored (urlencode): spaces are "+".
        ("nik=3201+0141+0190+0001&body=jalan+rusak", "0141"),
        ("phone=%2B62+812+3456+7890&nama=Budi", "3456"),
        ("phone=0812+3456+7890&nama=Budi", "3456"),
        # ... also after a word: the "+" is the space between them.
        ("SMS_1_TEXT=lampu+mati+hubungi+081234567890+ya", "34567"),
        ("isi=telp+6281234567890", "34567"),
        ("isi=telp+81234567890", "34567"),
        # A Gammu inbox file named after its sender, as lapor-onreceive posts its ids.
        ("ids=IN20261204_135929_00_%2B6281234567890_00.txt", "34567"),
        ("IN20261204_135929_00_+6281234567890_00.txt", "34567"),
    ],
)
def test_numbers_in_a_url_encoded_body_are_masked(stored: str, hidden: str) -> None:
    masked = mask_text(stored)
    assert hidden not in masked and "*" in masked, masked


@pytest.mark.parametrize(
    "written",
    [
        # Non-breaking spaces a copy from a word processor or a web page leaves between the
        # groups: the NIK mask reads them as spaces, the phone masks must too.
        "0812\u00a03456\u00a07890",
        "+62\u00a0812\u00a03456\u00a07890",
        "812\u00a03456\u00a07890",
        # Dashes with a space either side, as the NIK mask reads them (normalizer.find_phones
        # reads this as a phone number).
        "0812 - 3456 - 7890",
        "+62 812 - 3456 - 7890",
        "812 - 3456 - 7890",
    ],
)
def test_phones_with_non_breaking_spaces_or_spaced_dashes_are_masked(written: str) -> None:
    masked = mask_text(f"hubungi {written} ya")
    assert "3456" not in masked and "*" in masked, masked


def test_the_fraction_of_a_second_of_a_time_is_no_phone_number() -> None:
    # A datetime field written by the JSON formatter ("…49.096123+00:00") came out as
    # "…49.096**3+00:00": read as 0 96 123 +0 0. A number after a time is still masked.
    line = "received_at 2026-12-05 08:58:49.096123+00:00, jam 10:30, 081234567890"
    assert mask_text(line) == "received_at 2026-12-05 08:58:49.096123+00:00, jam 10:30, 081******890"


def test_invisible_marks_outside_numbers_are_kept() -> None:
    # An emoji sequence's zero-width joiner is not a number's.
    text = "keluarga \U0001f468\u200d\U0001f469\u200d\U0001f467 di rumah"
    assert mask_text(text) == text


def test_other_numbers_are_left_alone() -> None:
    text = (
        "tracking K7QM4XRT9, 12 rumah, tahun 2024, id 123456789012345678901, "
        "rp 850.000.000, tgl 12/05/2024 jam 10.30, kode pos 45111, RT 003 RW 005"
    )
    assert mask_text(text) == text


def test_ids_are_left_as_written_and_a_nik_beside_one_is_masked() -> None:
    # Its last two groups all digits: a NIK with a dash to the masks, were ids not set apart.
    row = "0192f3a4-8123-7456-8912-345678901234"
    assert mask_text(f"raw {row} from 081234567890") == f"raw {row} from 081******890"
    assert mask_text(f"{row}:3201014101900001") == f"{row}:320101********01"


def _emit(formatter: logging.Formatter, *args: object, **extra: object) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    logger = logging.getLogger("test.masking")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    try:
        raise ValueError("NIK 3201014101900001 rejected")
    except ValueError:
        logger.exception("intake from %s nik=%s", *args, extra=extra)
    return stream.getvalue()


@pytest.mark.parametrize("formatter", [JsonFormatter(), TextFormatter()])
def test_every_part_of_a_log_line_is_masked(formatter: logging.Formatter) -> None:
    out = _emit(formatter, "+6281234567890", "3201014101900001", sender="081234567890",
                nik="3201 0141 0190 0001")
    for secret in ("81234567890", "3201014101900001", "0141 0190", "1234567"):
        assert secret not in out
    assert "intake from" in out
    # Each part is in the line, masked, not left out: the message's arguments, the extra
    # fields (the NIK in both) and the exception's text.
    assert "intake from +6281******890 nik=320101********01" in out
    assert "081******890" in out and "ValueError: NIK 320101********01 rejected" in out
    assert out.count("320101********01") == 4


def test_json_lines_are_json_with_fields() -> None:
    out = _emit(JsonFormatter(), "x", "y", channel="sms")
    entry = json.loads(out)
    assert entry["channel"] == "sms"
    assert entry["level"] == "ERROR"
    assert "ValueError" in entry["exception"]


def test_a_gammu_file_names_date_is_kept_and_its_sender_masked() -> None:
    # Its date, time and serial are 16 digits with underscores: a NIK to the masks, were the
    # name's head not set apart; the sender after it is still masked.
    for name, shown in [
        ("IN20261204_135929_00_+6281234567890_00.txt", "IN20261204_135929_00_+6281******890"),
        ("ids=IN20261204_135929_00_%2B6281234567890_00.txt", "IN20261204_135929_00_%2B6281***"),
    ]:
        assert shown in mask_text(name), mask_text(name)
    # Only a file name's head: the same digits inside a word are masked as before.
    assert "135929" not in mask_text("XIN20261204_135929_00_x")


@pytest.fixture
def root_logging():
    """Whatever a test's configure() sets up, put back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:], root.level = handlers, level


@pytest.mark.parametrize("level", ["INFO", "DEBUG"])
async def test_a_refused_broker_connection_is_not_an_error_line(
    level: str, capsys: pytest.CaptureFixture[str], root_logging: None
) -> None:
    # aiormq logs every refused connection at ERROR; the relay's own warning reports it with its
    # back-off, so the library's line is written at DEBUG, and only when DEBUG is on.
    import aio_pika

    from gateway.logs import configure
    from tests.support import free_port

    configure(level, "json")
    with pytest.raises(OSError):
        await aio_pika.connect(f"amqp://guest:guest@127.0.0.1:{free_port()}/", timeout=5)
    logging.getLogger("aiormq.connection").error("Unexpected frame %r", "x")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    transport = [e for e in lines if e["message"].startswith("error when creating transport")]
    if level == "INFO":
        assert transport == []
    else:
        assert [e["level"] for e in transport] == ["DEBUG"]
    # Other library errors keep their level.
    assert [e["level"] for e in lines if e["message"].startswith("Unexpected frame")] == ["ERROR"]


@pytest.mark.parametrize(
    "written",
    [
        # Digits written one by one, or in groups of any size, as normalizer.find_phones and
        # find_niks read them: left as written by the masks, which knew only the usual groups.
        "0 8 1 2 3 4 5 6 7 8 9 0",
        "0.8.1.2.3.4.5.6.7.8.9.0",
        "0-8-1-2-3-4-5-6-7-8-9-0",
        "+62 8 1 2 3 4 5 6 7 8 9 0",
        "08 12 34 56 78 90",
        "0812  3456  7890",
        "8 1 2 3 4 5 6 7 8 9 0",
    ],
)
def test_a_phone_written_digit_by_digit_is_masked(written: str) -> None:
    masked = mask_text(f"hubungi {written} ya")
    digits = "".join(c for c in masked if c.isdigit())
    assert "*" in masked and "34567" not in digits, masked
    assert digits.endswith("890")  # the last three digits stay, as for any phone number


@pytest.mark.parametrize(
    "written",
    [
        "3 2 0 1 0 1 4 1 0 1 9 0 0 0 0 1",
        "3.2.0.1.0.1.4.1.0.1.9.0.0.0.0.1",
        "3-2-7-1-0-1-4-1-0-1-9-0-0-0-0-1",
        "320 101 410 190 0001",
        "3201 01 41 01 90 0001",
        "32010 14101 900001",
        "3 2 0 1  0 1 4 1  0 1 9 0  0 0 0 1",
    ],
)
def test_a_nik_written_digit_by_digit_or_in_other_groups_is_masked(written: str) -> None:
    masked = mask_text(f"pelapor NIK {written} mengadu")
    digits = "".join(c for c in masked if c.isdigit())
    assert "*" in masked and "41019" not in digits and "4101" not in digits, masked


@pytest.mark.parametrize(
    "text",
    [
        # Durations, fractions and addresses: never a phone number or a NIK, however the masks
        # are widened (a duration came out as "0.0***456", an address list as "10.0.1**.***").
        "took 0.0123456 s",
        "ratio 0.81234567",
        '"duration": 0.004123456',
        "elapsed 62.1234567 s",
        "lag 0.00123456789",
        "xff 10.0.100.200 10.0.0.1",
        "xff 10.0.12.34 172.16.0.1",
        "ts 1733385600.123456",
        "periode 05-12-2024 - 06-12-2024",
        "periode 05.12.2024 06.12.2024",
        "rp 1.234.567.890.123.456",
        "ukuran 1 2 3 4 5 6 7 8 9 10 11 12 13",
        "jam 08.30.15.123456",
    ],
)
def test_durations_fractions_and_addresses_are_left_alone(text: str) -> None:
    assert mask_text(text) == text


@pytest.mark.parametrize("formatter", [JsonFormatter(), TextFormatter()])
def test_an_e_mail_address_in_an_exception_is_masked(formatter: logging.Formatter) -> None:
    # A citizen's e-mail address in an exception's text (a library's error repeating its
    # input) was written as it was; the domain stays, for an operator to tell providers apart.
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    logger = logging.getLogger("test.masking.email")
    logger.handlers[:] = [handler]
    logger.propagate = False
    try:
        raise ValueError("no reply to budi.santoso+lapor@mail.example.co.id")
    except ValueError:
        logger.exception("reply failed for %s", "siti_aminah@gmail.com", extra={"to": "a@b.id"})
    out = stream.getvalue()
    for secret in ("budi.santoso", "santoso+lapor", "siti_aminah", "a@b.id"):
        assert secret not in out, out
    assert "@mail.example.co.id" in out and "@gmail.com" in out
    assert "@b.id" in out  # the extra field is written, masked, not left out


@pytest.mark.parametrize(
    "text",
    [
        # A user in a URL, and addresses that are no e-mail, are left as written.
        "amqp://guest@127.0.0.1:5672/",
        "postgresql+asyncpg://lapor@db.internal:5432/lapor",
        "git@github",
        "harga @ 5.000",
    ],
)
def test_what_is_no_e_mail_address_is_left_alone(text: str) -> None:
    assert mask_text(text) == text


def test_json_masks_each_value_before_encoding_it() -> None:
    # A line break or a tab before a number is "\n" or "\t" in the JSON text, where the number
    # follows a letter: masked on the text, it stayed in the clear. Each value is masked first:
    # the message, an extra field (nested too), a number held as an int, the stack.
    record = logging.getLogger("gateway.test").makeRecord(
        "gateway.test", logging.WARNING, __file__, 1, "isi:\n%s\tlagi", ("081234567890",),
        None, extra={"body": "baris\t3201014101900001", "parts": ["\n812 3456 7890"],
                     "sender": 6281234567890, "count": 3},
        sinfo="Stack (most recent call last):\n081234567890",
    )
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "isi:\n081******890\tlagi"
    assert entry["body"] == "baris\t320101********01"
    assert "3456" not in entry["parts"][0]
    assert entry["sender"] == "6281******890" and entry["count"] == 3
    assert "1234567" not in entry["stack"]
