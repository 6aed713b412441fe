"""Pure parts of the web channel: the form parser, magic bytes and EXIF GPS, CSRF tokens."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Literal

import pytest

from channels import dates
from channels.web.csrf import CsrfSigner
from channels.web.exif import jpeg_gps, make_exif_jpeg, sniff
from channels.web.form import (
    LIMITS,
    MIN_BODY,
    encode_submission,
    first_values,
    parse_form,
    validate,
)
from channels.web.kept import KeptFile, KeptFiles
from channels.web.pages import check_page, form_page, receipt_page, size_text
from gateway.domain import Attachment, Channel, Kind, RawInbound
from gateway.errors import ParseError

WHEN = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
FIELDS = [
    ("judul", "Lampu jalan mati"),
    ("isi", "Lampu jalan di Jl. Merdeka mati sejak seminggu."),
    ("klasifikasi", "permintaan-informasi"),
    ("tanggal", "2026-11-20"),
    ("nama", "Budi"),
    ("nik", "3209 0141 0190 0001"),
    ("hp", "0812 3456 7890"),
    ("email", "Budi@Contoh.ID"),
    ("anonim", "1"),
    ("csrf", "dropped"),
]


def raw(body: bytes) -> RawInbound:
    return RawInbound(Channel.WEB, body, WHEN, "form:n", "application/x-www-form-urlencoded")


def test_stored_submission_parses_again_to_the_same_draft() -> None:
    photo = Attachment("a" * 64, "image/jpeg", 1234, "foto.jpg")
    body = encode_submission(FIELDS, [photo])
    assert b"csrf" not in body
    draft = parse_form(raw(body))
    assert draft == parse_form(raw(body))  # pure: same bytes, same draft
    assert draft.kind is Kind.INFORMASI and draft.title == "Lampu jalan mati"
    assert draft.reporter.nik == "3209014101900001" and draft.reporter.phone == "+6281234567890"
    assert draft.reporter.email == "budi@contoh.id"
    assert draft.privacy.anonymous and not draft.privacy.confidential
    assert draft.occurred_on == date(2026, 11, 20) and draft.attachments == (photo,)


def test_parser_quarantines_what_fails_validation() -> None:
    with pytest.raises(ParseError, match=r"nik: .*0000\. / nik: .*0000") as refused:
        parse_form(raw(encode_submission([*FIELDS[:5], ("nik", "3209014101900000"),
                                          ("hp", "081234567890")], [])))
    assert refused.value.reason.count("nik: ") == 2  # the field named in both languages
    with pytest.raises(ParseError, match="attachment reference"):
        parse_form(raw(encode_submission(FIELDS, []) + b"&lampiran=%7B%7D"))


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("nik", "12345", "16 angka"),
        ("nik", "9909014101900001", "provinsi"),
        ("hp", "0812", "Nomor HP tidak valid"),
        ("email", "budi@", "e-mail tidak valid"),
        ("tanggal", "2027-01-01", "masa depan"),
        ("klasifikasi", "protes", "Pilih klasifikasi"),
        ("isi", "pendek", "paling sedikit"),
    ],
)
def test_each_rule_names_its_field_in_indonesian(field: str, value: str, fragment: str) -> None:
    fields = {**first_values(FIELDS), field: value}
    data, errors = validate(fields, WHEN.date())
    assert data is None and fragment in errors[field][0] and errors[field][1]


def test_an_old_nik_whose_region_code_was_retired_is_accepted() -> None:
    # Kota Tarakan's 64.73, before Kalimantan Utara (2012): the citizen's KTP still says it.
    data, errors = validate({**first_values(FIELDS), "nik": "6473014101900001"}, WHEN.date())
    assert not errors and data is not None and data.nik == "6473014101900001"


def test_line_breaks_count_once_as_the_browser_counts_them() -> None:
    # A textarea filled to its maxlength, with line breaks: the browser counts each as one
    # character and sends it as CR LF.
    lines = ["Jalan berlubang di depan SD Negeri 2."] * 600
    typed = "\n".join(lines)[: LIMITS["isi"]]
    assert len(typed) == LIMITS["isi"] and "\n" in typed
    sent = typed.replace("\n", "\r\n")
    data, errors = validate({**first_values(FIELDS), "isi": sent}, WHEN.date())
    assert data is not None, errors
    assert data.body == typed.strip()  # kept with plain line breaks


def test_name_is_required_unless_anonymous_and_a_contact_always() -> None:
    fields = {k: v for k, v in first_values(FIELDS).items() if k not in ("nama", "anonim")}
    assert "nama" in validate(fields, WHEN.date())[1]
    fields = {k: v for k, v in first_values(FIELDS).items() if k not in ("hp", "email")}
    assert "hp" in validate(fields, WHEN.date())[1]


def test_magic_bytes_and_exif_gps() -> None:
    assert sniff(b"\x89PNG\r\n\x1a\n....") == "image/png"
    assert sniff(b"%PDF-1.7") == "application/pdf"
    assert sniff(b"GIF89a") is None and sniff(b"") is None
    assert jpeg_gps(make_exif_jpeg(-6.2088, 106.8456)) == (-6.2088, 106.8456)
    assert jpeg_gps(b"\xff\xd8\xff\xe1\x00\x10Exif\x00\x00II*\x00") is None  # truncated
    assert jpeg_gps(b"\xff\xd8\xff\xdb\x00\x04\x00\x00\xff\xd9") is None  # no EXIF


def test_csrf_token_is_bound_to_client_key_and_age() -> None:
    signer = CsrfSigner(b"key", max_age=60)
    token = signer.issue("client-a", now=1000)
    nonce = signer.check(token, "client-a", now=1010)
    assert nonce is not None and nonce in token
    assert signer.check(token, "client-b", now=1010) is None
    assert signer.check(token, "client-a", now=1100) is None
    assert signer.check(token, None, now=1010) is None
    assert CsrfSigner(b"other", 60).check(token, "client-a", now=1010) is None
    assert signer.issue("client-a", now=1000) != token  # a fresh nonce per form


def test_a_kept_attachment_token_opens_only_in_its_browser_and_only_while_fresh() -> None:
    photo = Attachment(sha256="a" * 64, media_type="image/jpeg", size=200_000, filename="x.jpg")
    kept = KeptFiles(b"key", max_age=60)
    token = kept.token("client-a", KeptFile(photo, (-6.7612, 108.4801)), now=1000)
    assert kept.open(token, "client-a", now=1010) == KeptFile(photo, (-6.7612, 108.4801))
    assert kept.open(token, "client-b", now=1010) is None
    assert kept.open(token, None, now=1010) is None
    assert kept.open(token, "client-a", now=1100) is None  # older than the form's lifetime
    assert KeptFiles(b"other", 60).open(token, "client-a", now=1010) is None
    # The form's own CSRF signature under the same key does not make a kept-file token.
    assert kept.open(CsrfSigner(b"key", 60).issue("client-a", 1000), "client-a", 1010) is None
    issued, payload, mac = token.split(".")
    other = Attachment(sha256="b" * 64, media_type="image/jpeg", size=200_000, filename="x.jpg")
    forged = kept.token("client-a", KeptFile(other), now=1000).split(".")[1]
    assert kept.open(f"{issued}.{forged}.{mac}", "client-a", 1010) is None  # someone else's file
    assert kept.open("garbage", "client-a", 1010) is None
    no_gps = kept.token("client-a", KeptFile(photo), now=1000)
    assert kept.open(no_gps, "client-a", 1010) == KeptFile(photo, None)
    assert KeptFile(photo).label("id") == "x.jpg (195 KB)"
    big = KeptFile(replace(photo, size=3_200_000, filename=None))
    assert big.label("en") == "image/jpeg (3.1 MB)"
    assert big.label("id") == "image/jpeg (3,1 MB)"  # the Indonesian decimal comma


@pytest.mark.parametrize(
    ("when", "today"),
    [
        # 05:30 WIT, 04:30 WITA, 03:30 WIB: the UTC date is still the day before.
        (datetime(2026, 12, 4, 20, 30, tzinfo=UTC), date(2026, 12, 5)),
        (datetime(2026, 12, 4, 14, 59, tzinfo=UTC), date(2026, 12, 4)),  # 23:59 WIT
        (datetime(2026, 12, 4, 15, 0, tzinfo=UTC), date(2026, 12, 5)),  # 00:00 WIT
        (datetime(2026, 12, 5, 6, 0, tzinfo=timezone(timedelta(hours=7))), date(2026, 12, 5)),
        (datetime(2026, 12, 4, 20, 30), date(2026, 12, 5)),  # naive: UTC
    ],
)
def test_today_is_the_date_in_the_easternmost_indonesian_time_zone(
    when: datetime, today: date
) -> None:
    assert dates.latest_today(when) == today


def test_without_a_time_zone_database_wit_is_a_fixed_nine_hours(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def missing(key: str) -> None:
        raise dates.ZoneInfoNotFoundError(key)

    monkeypatch.setattr(dates, "ZoneInfo", missing)
    zone = dates._easternmost()
    assert zone.utcoffset(None) == timedelta(hours=9)
    monkeypatch.setattr(dates, "EASTERNMOST", zone)
    assert dates.latest_today(datetime(2026, 12, 4, 20, 30, tzinfo=UTC)) == date(2026, 12, 5)


def test_a_stored_form_dated_today_in_indonesia_parses_before_it_is_today_in_utc() -> None:
    early = replace(raw(b""), received_at=datetime(2026, 12, 4, 20, 30, tzinfo=UTC))
    today = [(k, "2026-12-05" if k == "tanggal" else v) for k, v in FIELDS]
    draft = parse_form(replace(early, body=encode_submission(today, [])))
    assert draft.occurred_on == date(2026, 12, 5)
    later = [(k, "2026-12-06" if k == "tanggal" else v) for k, v in FIELDS]
    with pytest.raises(ParseError, match="tanggal: .*masa depan"):
        parse_form(replace(early, body=encode_submission(later, [])))


def test_each_limited_field_of_the_form_carries_its_limit_as_maxlength() -> None:
    html = form_page("id", "token")
    for name, limit in LIMITS.items():
        tag = re.search(rf'<(?:input|textarea)[^>]* id="{name}"[^>]*>', html)
        assert tag and f'maxlength="{limit}"' in tag.group(0), name


@pytest.mark.parametrize("typed", ["20/11/2026", "20-11-2026", "20.11.2026", "20/11/2026 "])
def test_a_date_typed_the_indonesian_way_is_taken(typed: str) -> None:
    # A browser without a date picker (Opera Mini, an old Android browser) shows a text box,
    # and an Indonesian writes the day first.
    data, errors = validate({**first_values(FIELDS), "tanggal": typed}, WHEN.date())
    assert not errors and data is not None and data.occurred_on == date(2026, 11, 20)
    body = encode_submission([(k, typed if k == "tanggal" else v) for k, v in FIELDS], [])
    assert parse_form(raw(body)).occurred_on == date(2026, 11, 20)


@pytest.mark.parametrize("typed", ["31/02/2026", "2026/11/20", "20/11/26", "kemarin"])
def test_a_date_that_is_none_is_refused_with_the_format_to_write(typed: str) -> None:
    _, errors = validate({**first_values(FIELDS), "tanggal": typed}, WHEN.date())
    assert "HH/BB/TTTT" in errors["tanggal"][0] and "DD/MM/YYYY" in errors["tanggal"][1]


def test_every_error_is_tied_to_its_field() -> None:
    errors = {name: ("salah", "wrong") for name in ("klasifikasi", "lampiran", "nik")}
    html = form_page("id", "token", {"klasifikasi": "protes"}, errors)
    for name in errors:
        tag = re.search(rf'<(?:input|select|textarea)[^>]* id="{name}"[^>]*>', html)
        assert tag and f'aria-describedby="{name}-err"' in tag.group(0), name
        assert 'aria-invalid="true"' in tag.group(0), name
        assert f'<p class="err" id="{name}-err">salah</p>' in html, name


def test_the_language_switch_of_the_status_page_keeps_the_typed_id() -> None:
    assert 'href="/cek?lang=en&amp;id=K7QM-4XRT9"' in check_page("id", "K7QM-4XRT9")
    assert 'href="/cek?id=K7QM-4XRT9"' in check_page("en", "K7QM-4XRT9")
    assert 'href="/cek?lang=en"' in check_page("id")


def test_the_date_input_carries_the_latest_date_it_may_take_as_max() -> None:
    tag = re.search(r'<input type="date"[^>]*>', form_page("id", "token", today=date(2026, 12, 5)))
    assert tag and 'id="tanggal"' in tag.group(0) and 'max="2026-12-05"' in tag.group(0)
    tag = re.search(r'<input type="date"[^>]*>', form_page("en", "token"))
    assert tag and "max=" not in tag.group(0)  # no date given, no limit invented


def test_the_form_switches_language_with_a_button_of_its_own_after_its_submit_button() -> None:
    html = form_page("id", "token", {"judul": "Lampu"})
    buttons = re.findall(r"<button [^>]*>[^<]*</button>", html)
    assert buttons == [
        '<button type="submit">Kirim laporan</button>',  # first: the default button (Enter)
        '<button type="submit" id="ganti-bahasa" class="lang" name="ganti_bahasa" value="en" '
        'formaction="/?lang=en&amp;ganti_bahasa=1" formnovalidate lang="en">'
        "Show this form in English (what you typed is kept)</button>",
    ]
    assert html.index("</button></form>") > html.index('id="ganti-bahasa"')  # inside the form
    # The header leads to it rather than to a page that would lose what was typed.
    assert '<header><strong>LAPOR!</strong><a href="#ganti-bahasa" lang="en">English</a>' in html
    en = form_page("en", "token")
    assert ('name="ganti_bahasa" value="id" formaction="/?ganti_bahasa=1" formnovalidate '
            'lang="id">Tampilkan formulir ini dalam Bahasa Indonesia') in en
    # Pages without a form keep a plain link to the other language.
    assert '<a href="/cek?lang=en" hreflang="en" lang="en">English</a>' in check_page("id")


def test_files_chosen_before_a_switch_are_named_to_be_chosen_again() -> None:
    html = form_page("en", "token", reattach=["jalan.jpg", "<b>.pdf"])
    tag = re.search(r'<input type="file"[^>]*>', html)
    assert tag and 'aria-describedby="lampiran-note"' in tag.group(0)
    assert "aria-invalid" not in tag.group(0)  # nothing is wrong: a note, not an error
    assert ('<p class="note hint" id="lampiran-note">The attachments you chose were not sent: '
            "jalan.jpg, &lt;b&gt;.pdf. Choose them again before sending the report.</p>") in html
    both = form_page("id", "token", errors={"lampiran": ("hilang", "lost")}, reattach=["a.png"])
    tag = re.search(r'<input type="file"[^>]*>', both)
    assert tag and 'aria-describedby="lampiran-err lampiran-note"' in tag.group(0)
    assert "Pilih lagi sebelum mengirim laporan." in both
    many = form_page("id", "token", reattach=[f"{i}.jpg" for i in range(12)])
    assert "8.jpg, 9.jpg (+2). Pilih lagi" in many and "10.jpg" not in many


@pytest.mark.parametrize(
    ("body", "words"),
    [(b"judul=caf\xe9", ("byte ke-10 bukan ASCII", "byte 10 is not ASCII")),
     (b"judul", ("pasangan nama=nilai", "name=value pair"))],
)
def test_a_broken_stored_submission_is_refused_in_the_gateways_words(
    body: bytes, words: tuple[str, str]
) -> None:
    # The reason carried Python's English ("'ascii' codec can't decode byte 0xe9 ...", "bad
    # query field: 'judul'") into the Indonesian half too.
    with pytest.raises(ParseError) as info:
        parse_form(raw(body))
    indonesian, english = info.value.reason.split(" / ", 1)
    assert words[0] in indonesian and words[1] in english, info.value.reason
    assert not re.search(r"codec|can't|bad query", info.value.reason)


def test_the_error_summary_leads_to_each_wrong_field_in_the_forms_order() -> None:
    errors = {"nik": ("NIK harus 16 angka.", "16 digits."), "judul": ("Judul wajib.", "Needed."),
              "lampiran": ("Berkas <x>.gif ditolak.", "File <x>.gif refused.")}
    html = form_page("id", "token", {}, errors)
    summary = re.search(r'<div class="alert" id="error-summary" role="alert">(.*?)</div>', html)
    assert summary, "a summary on top, read out when the page opens"
    assert html.index('id="error-summary"') < html.index("<form")
    links = re.findall(r'<li><a href="#([a-z]+)">([^<]*)</a></li>', summary.group(1))
    assert links == [("judul", "Judul laporan: Judul wajib."),
                     ("lampiran", "Lampiran: Berkas &lt;x&gt;.gif ditolak."),
                     ("nik", "NIK: NIK harus 16 angka.")]
    for name, _ in links:  # each link leads to a field of the form
        assert re.search(rf'<(?:input|select|textarea)[^>]* id="{name}"', html), name
    en = form_page("en", "token", {}, errors)
    assert '<a href="#nik">NIK: 16 digits.</a>' in en and "Please check the marked fields" in en
    # A message on top of its own (the form expired) keeps the summary, and one alert only.
    expired = form_page("id", "token", {}, errors, alert="Formulir kedaluwarsa.")
    assert expired.count('role="alert"') == 1 and 'id="error-summary"' in expired
    assert 'id="error-summary"' not in form_page("id", "token", {"judul": "x"})


def _label(html: str, name: str) -> str:
    found = re.search(rf'<label for="{name}">([^<]+)</label>', html)
    assert found, name
    return found.group(1)


@pytest.mark.parametrize(("lang", "required", "optional"),
                         [("id", "(wajib", "tidak wajib"), ("en", "(required", "optional")])
def test_every_field_says_whether_it_must_be_filled_as_the_validation_has_it(
    lang: Literal["id", "en"], required: str, optional: str
) -> None:
    html = form_page(lang, "token")
    optional_fields = ("tanggal", "lokasi", "instansi", "lampiran", "nik")
    for name in ("judul", "isi", "nama"):
        assert required in _label(html, name), name
    for name in optional_fields:
        assert optional in _label(html, name) and required not in _label(html, name), name
    # What the labels say is what validation does: the optional ones may all be left empty...
    filled = {k: v for k, v in first_values(FIELDS).items() if k not in optional_fields}
    assert validate({**filled, "email": ""}, WHEN.date())[0] is not None
    # ... the required ones may not (the name unless Anonymous is ticked), and the text of the
    # report is as long as its label says.
    least = re.search(r"(\d+)", _label(html, "isi"))
    assert least and int(least.group(1)) == MIN_BODY
    assert "isi" in validate({**filled, "isi": "x" * (MIN_BODY - 1)}, WHEN.date())[1]
    assert validate({**filled, "isi": "x" * MIN_BODY}, WHEN.date())[0] is not None
    for name in ("judul", "isi", "nama"):
        assert name in validate({**filled, "anonim": "", name: ""}, WHEN.date())[1], name
    # One of phone and e-mail: said before them and read with each.
    note = re.search(r'<p class="note" id="kontak-note">([^<]+)</p>', html)
    assert note and ("salah satu" in note.group(1) or "at least one" in note.group(1))
    for name in ("hp", "email"):
        tag = re.search(rf'<input [^>]*id="{name}"[^>]*>', html)
        assert tag and 'aria-describedby="kontak-note"' in tag.group(0), name
    assert "hp" in validate({**filled, "hp": "", "email": ""}, WHEN.date())[1]
    # An error on one of them is read first, then the note.
    wrong = form_page(lang, "token", errors={"hp": ("salah", "wrong")})
    tag = re.search(r'<input [^>]*id="hp"[^>]*>', wrong)
    assert tag and 'aria-describedby="hp-err kontak-note"' in tag.group(0)


def test_the_privacy_choices_are_explained_in_plain_words_read_with_their_box() -> None:
    for lang, agency in (("id", "instansi"), ("en", "agency")):
        html = form_page(lang, "token", {"rahasia": "1"})  # type: ignore[arg-type]
        for name in ("anonim", "rahasia"):
            box = re.search(rf'<input type="checkbox" [^>]*id="{name}"[^>]*>', html)
            assert box and f'aria-describedby="{name}-note"' in box.group(0), name
            note = re.search(rf'<p class="note" id="{name}-note">([^<]+)</p>', html)
            # Who does not see what: the agency still handles the report either way.
            assert note and agency in note.group(1).lower(), (lang, name)
        assert 'id="rahasia" name="rahasia" value="1" checked>' in html


def test_the_receipts_other_language_shows_the_same_report_not_an_empty_form() -> None:
    # The header's "English" led to the empty form: the tracking ID left the screen.
    html = receipt_page("id", "K7QM-4XRT9", "1708")
    assert '<a href="/cek?lang=en&amp;id=K7QM-4XRT9" hreflang="en" lang="en">English</a>' in html
    en = receipt_page("en", "K7QM-4XRT9", "1708")
    assert '<a href="/cek?id=K7QM-4XRT9" hreflang="id" lang="id">Bahasa Indonesia</a>' in en
    assert '<a href="/cek?lang=en&amp;id=K7QM-4XRT9">Check a report' in en
    assert '<a href="/cek?id=K7QM-4XRT9">Cek status laporan</a>' in html


def test_the_receipt_says_to_text_the_configured_short_code() -> None:
    html = receipt_page("id", "K7QM-4XRT9", "17081")
    en = receipt_page("en", "K7QM-4XRT9", "17081")
    assert '<strong class="sms">CEK K7QM-4XRT9</strong> ke 17081.' in html
    assert '<strong class="sms">CEK K7QM-4XRT9</strong> to 17081.' in en


def test_a_tracking_id_not_found_is_marked_on_its_field() -> None:
    html = check_page("id", "K7QM-4XRT8", not_found=True)
    tag = re.search(r'<input type="text" id="id"[^>]*>', html)
    assert tag and 'aria-invalid="true"' in tag.group(0)
    assert 'aria-describedby="not-found"' in tag.group(0) and 'id="not-found"' in html
    busy = check_page("id", "K7QM-4XRT8", alert="Layanan sedang sibuk.")
    tag = re.search(r'<input type="text" id="id"[^>]*>', busy)
    assert tag and "aria-invalid" not in tag.group(0)  # the service's fault, not the ID's


def test_a_form_sent_back_says_in_its_title_that_the_report_was_not_sent() -> None:
    # The title is what a screen reader says first of a new page; it was the same as the
    # empty form's, so a refused post sounded like a fresh form.
    def title(html: str) -> str:
        found = re.search(r"<title>([^<]+)</title>", html)
        assert found
        return found.group(1)

    assert title(form_page("id", "token")) == "LAPOR! — Layanan Aspirasi dan Pengaduan Online Rakyat"
    wrong = form_page("id", "token", errors={"nik": ("salah", "wrong")})
    assert title(wrong).startswith("Laporan belum terkirim — LAPOR!")
    busy = form_page("en", "token", alert="The service is busy.")
    assert title(busy).startswith("Report not sent — LAPOR!")


def test_the_date_input_shows_the_format_to_type_where_there_is_no_date_picker() -> None:
    # Opera Mini and old Android browsers show a text box: the placeholder tells the format
    # the form takes (day first), the one its error message names.
    for lang, shown in (("id", "HH/BB/TTTT"), ("en", "DD/MM/YYYY")):
        tag = re.search(r'<input type="date"[^>]*>', form_page(lang, "token"))  # type: ignore[arg-type]
        assert tag and f'placeholder="{shown}"' in tag.group(0)
        _, errors = validate({**first_values(FIELDS), "tanggal": "kemarin"}, WHEN.date())
        assert shown in errors["tanggal"][0 if lang == "id" else 1]
        data, _ = validate({**first_values(FIELDS), "tanggal": "20/11/2026"}, WHEN.date())
        assert data is not None and data.occurred_on == date(2026, 11, 20)


def test_the_attachment_field_tells_the_limits_before_anything_is_sent() -> None:
    # Over a slow connection a photo too big was refused only after all of it was sent.
    html = form_page("id", "token", max_files=5, max_file_size=5 * 1_048_576)
    assert "paling banyak 5 berkas, masing-masing paling besar 5 MB</label>" in html
    en = form_page("en", "token", max_files=3, max_file_size=1_572_864)
    assert "at most 3 files of at most 1.5 MB each</label>" in en
    assert "paling besar" not in form_page("id", "token")  # unknown limits are not invented
    assert size_text(1_572_864, "id") == "1,5 MB" and size_text(50_000, "en") == "48 KB"


def test_the_pages_are_light_and_need_nothing_else_to_load() -> None:
    # A slow connection: each page is its HTML with a small stylesheet inside; no script, image,
    # font or stylesheet to fetch, nothing inlined as data.
    errors = {name: ("Isian ini salah.", "This is wrong.") for name in ("judul", "isi", "nik")}
    result = {"id": "K7QM-4XRT9", "status": "Diterima", "received_at": "05-12-2026 10:00 WIB",
              "kind": "Pengaduan"}
    for html in (form_page("id", "token"), form_page("en", "t", {"judul": "x"}, errors),
                 receipt_page("id", "K7QM-4XRT9", "1708"), check_page("en", "K7QM-4XRT9", result)):
        assert len(html.encode()) < 12_000
        assert not re.search(r"<script|<img|<link|<iframe|src=|url\(|@import|data:", html)
