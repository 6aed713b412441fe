"""Field extraction from letter text: table tests on typed-out letters and OCR-like mistakes."""

from __future__ import annotations

import pytest

from channels.letter.extract import LOW_CONFIDENCE, Field, LetterFields, extract_fields, parse_date
from channels.letter.ocr import PageResult

LETTER = """\
Bandung, 12 Maret 2026

Lampiran : -
Perihal : Jalan rusak di Jl. Raya Cinunuk

Kepada Yth.
Bapak Bupati Bandung
di
Tempat

Dengan hormat,

Melalui surat ini saya ingin menyampaikan pengaduan mengenai kondisi jalan di Jl. Raya
Cinunuk yang rusak parah sejak 4 bulan terakhir.

Kami mohon agar jalan tersebut segera diperbaiki.

Demikian surat pengaduan ini saya sampaikan. Atas perhatian Bapak, saya ucapkan
terima kasih.

Hormat saya,

Siti Nurhaliza
NIK : 3204054401970641
Alamat : Jl. Raya Cinunuk No. 86 RT 11/RW 11, Kel.
Cinunuk, Kec. Cileunyi, Kabupaten Bandung
No. HP : 0812-3456-7890
"""

BODY = (
    "Melalui surat ini saya ingin menyampaikan pengaduan mengenai kondisi jalan di Jl. Raya "
    "Cinunuk yang rusak parah sejak 4 bulan terakhir.\n\n"
    "Kami mohon agar jalan tersebut segera diperbaiki."
)

IDENTITY_BLOCK = """\
Kepada Yth. Ibu Wali Kota Surabaya di Tempat
Perihal : Air PDAM tidak mengalir
Dengan hormat,
Saya yang bertanda tangan di bawah ini:
Nama : Dewi Lestari
NIK : 3578044201880005
Alamat : Jl. Jagir Wonokromo No. 3, Kel. Jagir, Kec. Wonokromo, Kota Surabaya
No. HP/WA : 0857 1234 5678
Dengan ini menyampaikan pengaduan bahwa air PDAM tidak mengalir sejak Senin.
Hormat saya,
DEWI LESTARI
"""

KOP = """\
PENGURUS RUKUN WARGA 07
KELURAHAN SEKELOA KECAMATAN COBLONG
Sekretariat: Jl. Sekeloa Selatan No. 5
Telp. 0813-1111-2222
Bandung, 3 Mei 2026
Nomor : 012/RW/05/2026
Perihal : Lampu penerangan jalan mati
Kepada Yth.
Bapak Camat Coblong
di -
Tempat
Dengan hormat,
Lampu penerangan jalan di Jl. Sekeloa Selatan sudah mati selama tiga bulan.
Hormat kami,
Ketua RW 07
Asep Saepudin
No. HP : 0821 9876 5432
"""

FORM = """\
MAL PELAYANAN PUBLIK KABUPATEN SLEMAN
FORMULIR PENGADUAN MASYARAKAT
Tanggal : 17-02-2026
Nama Lengkap : Hotman Sitorus
NIK : 3404061704990013
Alamat : Jl. Magelang Km. 7 No. 5, Kel. Sinduadi, Kec. Mlati,
Kabupaten Sleman
No. HP : 081845544840
Perihal : Sampah menumpuk di Pasar
Isi Pengaduan:
Sampah di dekat pasar tidak diangkut selama tiga minggu.
Baunya sampai ke rumah warga.
Sleman, 17 Februari 2026
Pelapor,
( Hotman Sitorus )
"""


def test_letter_with_signature_block() -> None:
    f = extract_fields([LETTER])
    assert f.sender_name.value == "Siti Nurhaliza"
    assert f.nik.value == "3204054401970641"
    assert f.nik.note is not None and "Kab. Bandung" in f.nik.note and "Jawa Barat" in f.nik.note
    assert f.address.value == (
        "Jl. Raya Cinunuk No. 86 RT 11/RW 11, Kel. Cinunuk, Kec. Cileunyi, Kabupaten Bandung"
    )
    assert f.phone == Field("+6281234567890", f.phone.confidence, "0812-3456-7890")
    assert f.letter_date.value == "2026-03-12"
    assert f.letter_place.value == "Bandung"
    assert f.addressee.value == "Bapak Bupati Bandung"
    assert f.subject.value == "Jalan rusak di Jl. Raya Cinunuk"
    assert f.body.value == BODY
    assert all(not field.low for field in f.as_dict().values())


def test_identity_block_after_salutation_and_one_line_addressee() -> None:
    f = extract_fields([IDENTITY_BLOCK])
    assert f.sender_name.value == "Dewi Lestari"  # the labelled name, not the capitals below
    assert f.nik.value == "3578044201880005"
    assert f.phone.value == "+6285712345678"
    assert f.addressee.value == "Ibu Wali Kota Surabaya"
    assert f.subject.value == "Air PDAM tidak mengalir"
    assert f.body.value == (
        "Dengan ini menyampaikan pengaduan bahwa air PDAM tidak mengalir sejak Senin."
    )
    assert f.letter_date.value is None and f.letter_date.low


def test_letterhead_phone_is_not_the_senders() -> None:
    f = extract_fields([KOP])
    assert f.phone.value == "+6282198765432"
    assert f.sender_name.value == "Asep Saepudin"
    assert f.addressee.value == "Bapak Camat Coblong"
    assert f.subject.value == "Lampu penerangan jalan mati"
    assert f.body.value == (
        "Lampu penerangan jalan di Jl. Sekeloa Selatan sudah mati selama tiga bulan."
    )
    assert f.nik.value is None


def test_complaint_box_form() -> None:
    f = extract_fields([FORM])
    assert f.sender_name.value == "Hotman Sitorus"
    assert f.nik.value == "3404061704990013"
    assert f.phone.value == "+6281845544840"
    assert f.letter_date.value == "2026-02-17"
    assert f.letter_place.value == "Sleman"
    assert f.address.value == (
        "Jl. Magelang Km. 7 No. 5, Kel. Sinduadi, Kec. Mlati, Kabupaten Sleman"
    )
    assert f.subject.value == "Sampah menumpuk di Pasar"
    assert f.addressee.value is None
    assert f.body.value == (
        "Sampah di dekat pasar tidak diangkut selama tiga minggu. Baunya sampai ke rumah warga."
    )


@pytest.mark.parametrize(
    ("line", "nik", "corrected"),
    [
        ("NIK : 3204054401970641", "3204054401970641", False),
        ("NIK : 3204 0544 0197 0641", "3204054401970641", False),
        ("NIK: 32O4O544O197O641", "3204054401970641", True),  # O for 0
        ("NIK : 32040544Ol97O64l", "3204054401970641", True),  # O and l
        ("NIK 13204054401970641", "3204054401970641", True),  # the colon read as 1
        ("NlK : 3204054401970641", "3204054401970641", False),  # the label misread
        ("No. KTP - 3204054401970641", "3204054401970641", False),
    ],
)
def test_nik_ocr_confusions(line: str, nik: str, corrected: bool) -> None:
    f = extract_fields([f"Hormat saya,\nSiti Nurhaliza\n{line}"])
    assert f.nik.value == nik
    assert f.nik.note is not None and "Kec. Cileunyi" in f.nik.note
    assert ("dikoreksi" in f.nik.note) is corrected
    assert f.nik.confidence >= LOW_CONFIDENCE


def test_invalid_nik_is_kept_flagged_with_the_reason() -> None:
    f = extract_fields(["Nama : Budi\nNIK : 3204059913970641"])
    assert f.nik.value == "3204059913970641"
    assert f.nik.low
    assert f.nik.note is not None and "tanggal lahir" in f.nik.note.lower()


def test_an_old_nik_whose_region_is_not_listed_is_kept_and_flagged_for_the_clerk() -> None:
    # 64.73 was Kota Tarakan before 2012; a citizen's KTP keeps it for life.
    f = extract_fields(["Nama : Budi\nNIK : 6473014101900001\nAlamat : Kota Tarakan"])
    assert f.nik.value == "6473014101900001"
    assert f.nik.low and f.nik.note is not None and "64.73.01" in f.nik.note
    assert "tidak ada di daftar" in f.nik.note


def test_a_nik_found_without_its_label_whose_region_is_not_listed_is_flagged() -> None:
    # Found loose in the text, 16 digits naming no listed region may be an old NIK as much as
    # another number (a customer number): the clerk checks it, as for a labelled one.
    body = (
        "Nama : Budi\nAlamat : Kota Tarakan\n\nDengan hormat,\nSaya dengan nomor KTP "
        "6473014101900001 melaporkan jalan rusak di depan rumah saya.\n\nHormat saya,\nBudi"
    )
    f = extract_fields([body])
    assert f.nik.value == "6473014101900001"
    assert f.nik.low and f.nik.note is not None and "tidak ada di daftar" in f.nik.note
    listed = extract_fields([body.replace("6473014101900001", "3204054401970641")])
    assert listed.nik.value == "3204054401970641" and not listed.nik.low


def test_nik_region_far_from_the_address_is_flagged() -> None:
    # 1371 is Kota Padang; the address is in Makassar: a misread digit, or a citizen who moved.
    f = extract_fields(["NIK : 1371020903720850\nAlamat : Jl. Baji Gau No. 1, Kota Makassar"])
    assert f.nik.value == "1371020903720850"
    assert f.nik.low and f.nik.note is not None and "Kota Padang" in f.nik.note


@pytest.mark.parametrize(
    ("line", "phone"),
    [
        ("No. HP : 0812-3456-7890", "+6281234567890"),
        ("Telp : +62 812 3456 7890", "+6281234567890"),
        ("HP/WA : 0857 1234 5678 (WA)", "+6285712345678"),
        ("No. HP 10815 4269 3638", "+6281542693638"),  # the colon read as 1
        ("No. HP 1 462 878-4138-8485", "+6287841388485"),  # ": +62" read as "1 462"
        ("No. HP/W20852 0017 7385", "+6285200177385"),  # "WA : 0" read as "W2"
    ],
)
def test_phone_forms_and_ocr_damage(line: str, phone: str) -> None:
    assert extract_fields([f"Nama : Budi Santoso\n{line}"]).phone.value == phone


def test_phone_with_a_guessed_digit_is_flagged() -> None:
    f = extract_fields(["Nama : Budi Santoso\nNo. HP/W9877-4965-9994"])
    assert f.phone.value == "+6287749659994"
    assert f.phone.low


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("12 Maret 2026", "2026-03-12"),
        ("12 Marel 2026", "2026-03-12"),  # a misread letter
        ("1 Desember 2025", "2025-12-01"),
        ("26 Me1 2026", "2026-05-26"),
        ("12-03-2026", "2026-03-12"),
        ("12/3/2026", "2026-03-12"),
        ("5 Agt 2026", "2026-08-05"),
        ("31 Februari 2026", None),
        ("12 Bulan 2026", None),
    ],
)
def test_dates(text: str, iso: str | None) -> None:
    found = parse_date(text)
    assert (found.isoformat() if found else None) == iso


@pytest.mark.parametrize(
    ("line", "place", "iso"),
    [
        ("Bandung, 12 Maret 2026", "Bandung", "2026-03-12"),
        ("Sleman,:17 Februari 2026", "Sleman", "2026-02-17"),
        ("' Kab. Bandung, 4 Mei 2026", "Kab. Bandung", "2026-05-04"),
        ("Denpasar, 12-April 2026", "Denpasar", "2026-04-12"),
    ],
)
def test_place_and_date_line(line: str, place: str, iso: str) -> None:
    f = extract_fields([f"{line}\nKepada Yth.\nBapak Bupati\ndi Tempat\nDengan hormat,\nIsi."])
    assert (f.letter_place.value, f.letter_date.value) == (place, iso)


def test_body_over_pages_without_page_numbers_and_closing_formula() -> None:
    pages = [
        "Dengan hormat,\nJalan di depan pasar rusak parah dan\n\n- 1 -",
        "berlubang besar sejak bulan lalu.\n\nMohon segera diperbaiki.\nDemikian surat ini.\n"
        "Halaman 2 dari 2\nHormat saya,\nBudi Santoso",
    ]
    f = extract_fields(pages)
    assert f.body.value == (
        "Jalan di depan pasar rusak parah dan berlubang besar sejak bulan lalu.\n\n"
        "Mohon segera diperbaiki."
    )
    assert f.sender_name.value == "Budi Santoso"


def test_a_sentence_with_a_colon_stays_in_the_body() -> None:
    f = extract_fields(["Dengan hormat,\nSaya mohon: jalan segera diperbaiki.\nHormat saya,\nBudi"])
    assert f.body.value == "Saya mohon: jalan segera diperbaiki."


def test_wrapped_sentence_starting_with_kepada_is_not_an_addressee() -> None:
    text = (
        "Kepada Yth.\nBapak Bupati Sleman\ndi Tempat\nDengan hormat,\n"
        "Saya mengadukan pungutan\nkepada orang tua murid baru.\nHormat saya,\nBudi Santoso"
    )
    f = extract_fields([text])
    assert f.addressee.value == "Bapak Bupati Sleman"
    assert f.body.value == "Saya mengadukan pungutan kepada orang tua murid baru."


def test_ocr_confidence_lowers_field_confidence() -> None:
    text = "Nama : Budi Santoso\nAlamat : Jl. Pemuda No. 3, Kota Semarang"
    clean = PageResult(1, text, 95.0, "ocr", b"", (95.0, 95.0))
    smudged = PageResult(1, text, 60.0, "ocr", b"", (95.0, 45.0))
    assert not extract_fields([clean]).address.low
    assert extract_fields([smudged]).address.low
    assert extract_fields([smudged]).sender_name.value == "Budi Santoso"


def test_nothing_found() -> None:
    f = extract_fields([""])
    assert f == LetterFields()
    assert list(f.as_dict()) == [
        "sender_name", "nik", "address", "phone", "letter_date", "letter_place", "addressee",
        "subject", "body",
    ]  # fmt: skip
    assert all(field.value is None and field.low for field in f.as_dict().values())
