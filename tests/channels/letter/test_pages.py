"""The staff pages and the receipt as HTML (pure): highlighting, escaping, language, QR code."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import qrcode
import qrcode.constants

from channels.letter.auth import Role, Staff
from channels.letter.drafts import Draft, DraftStatus, FieldInfo, PageInfo
from channels.letter.pages import Context, batch_page, review_page
from channels.letter.parse import Scan
from channels.letter.receipt import ReceiptData, qr_svg, receipt_page, status_url
from channels.letter.routes import nik_region

CLERK = Staff("s-1", "budi", Role.CLERK)
WHEN = datetime(2026, 11, 26, 3, 4, tzinfo=UTC)


def ctx(lang: str = "id") -> Context:
    return Context(lang, CLERK, "tok<en>", "/staff/letters/d-1")  # type: ignore[arg-type]


def draft(status: DraftStatus = DraftStatus.READY, done: int = 2, total: int | None = 2) -> Draft:
    return Draft(
        id="d-1", batch_id="b-1", status=status,
        files=(Scan("ab" * 32, "application/pdf", 10, "surat <1>.pdf"),),
        pages_total=total, pages_done=done,
        pages=(PageInfo(1, "cd" * 32, 91.4, "ocr", "teks"), PageInfo(2, "ef" * 32, 100, "text-layer", "")),
        fields={
            "nik": FieldInfo("3209014101900001", 0.95, "Kec. Waled"),
            "subject": FieldInfo("Jalan <rusak>", 0.31, "dibaca dari baris yang kabur"),
        },
        values={"subject": "Jalan <rusak>", "nik": "3209014101900001"},
        error=None, created_by="s-1", created_by_name="budi", created_at=WHEN, updated_at=WHEN,
    )


def test_review_page_marks_low_confidence_fields_and_escapes_values() -> None:
    html = review_page(ctx(), draft(), draft().values, frozenset({"subject"}), "Waled, Cirebon")
    subject = re.search(r'<div class="field low" id="f-subject".*?</div></div>', html)
    assert subject is not None and "Kurang yakin" in subject.group(0)
    assert 'class="field" id="f-nik"' in html  # a sure field is not highlighted
    assert "keyakinan 31%" in html and "keyakinan 95%" in html
    assert "Jalan &lt;rusak&gt;" in html and "<rusak>" not in html
    assert "surat &lt;1&gt;.pdf" in html and 'value="tok&lt;en&gt;"' in html
    assert 'id="nik-region"' in html and "Waled, Cirebon" in html
    assert "Kec. Waled" not in html  # the region from the current value replaces the note
    assert "/staff/letters/d-1/pages/1" in html and "/staff/letters/d-1/pages/2" in html
    assert "keyakinan OCR 91%" in html and "teks dari PDF" in html
    assert 'value="confirm"' in html and 'value="save"' in html


def test_review_page_in_english() -> None:
    html = review_page(ctx("en"), draft(), draft().values, frozenset(), None)
    assert "Review the letter" in html and "Confirm and send" in html
    assert 'lang="en"' in html and "?lang=id" in html


def test_progress_page_refreshes_itself_only_while_reading() -> None:
    reading = batch_page(ctx(), [draft(DraftStatus.READING, 1, 3)])
    assert "Halaman 1 dari 3 dibaca" in reading and '<progress max="3" value="1">' in reading
    assert '<noscript><meta http-equiv="refresh" content="2"></noscript>' in reading
    assert 'data-progress="/staff/uploads/b-1/progress.json"' in reading
    waiting = batch_page(ctx(), [draft(DraftStatus.READING, 0, None)])
    assert "Menunggu giliran dibaca" in waiting
    ready = batch_page(ctx(), [draft()])
    assert "http-equiv" not in ready and "data-progress" not in ready
    assert 'class="review-link"' in ready


def test_receipt_has_the_tracking_id_a_qr_code_and_how_to_follow_up() -> None:
    data = ReceiptData("G69P5CAWW", WHEN, "Jalan rusak", 2, "budi", acks=("SMS +62812*****890",))
    html = receipt_page(ctx(), data, "https://lapor.example.go.id", "1708")
    assert 'id="tracking-id">G69P-5CAWW<' in html
    assert "CEK G69P5CAWW" in html and "<strong>1708</strong>" in html
    assert "https://lapor.example.go.id/cek" in html and "3 hari kerja" in html
    assert "<svg" in html and 'aria-label="Kode QR halaman status"' in html
    assert "@media print" in html and "SMS +62812*****890" in html
    assert status_url("https://x.id", "G69P5CAWW") == "https://x.id/cek?id=G69P-5CAWW"
    # The citizen's receipt is Indonesian whatever the clerk's pages are shown in; its switch
    # and buttons are in the clerk's language.
    clerk_en = receipt_page(ctx("en"), data, "https://x.id", "1708")
    assert "Tanda Terima Laporan" in clerk_en and "Send the SMS" not in clerk_en
    assert '<article class="receipt" id="receipt" lang="id"' in clerk_en
    assert '<a href="?receipt_lang=en" hreflang="en" id="receipt-lang">Receipt in English</a>' in (
        clerk_en
    )
    assert "Back to the letters" in clerk_en
    english = receipt_page(ctx(), data, "https://x.id", "1708", receipt_lang="en")
    assert "Report receipt" in english and "Send the SMS" in english
    assert 'lang="en"' in english and "Kembali ke daftar surat" in english
    assert ">Tanda terima dalam bahasa Indonesia</a>" in english


def test_qr_code_svg_draws_the_modules_of_the_status_url() -> None:
    url = "https://lapor.example.go.id/cek?id=G69P-5CAWW"
    svg = qr_svg(url)
    assert svg.startswith("<svg") and svg.count("<path") == 1
    # The dark modules the path draws (one unit square each, "M<x>,<y>H..V..H..z"), read back
    # into a grid, are the matrix of the URL encoded with error correction M.
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=0)
    code.add_data(url)
    code.make(fit=True)
    expected = {
        (x, y) for y, row in enumerate(code.get_matrix()) for x, dark in enumerate(row) if dark
    }
    size = len(code.get_matrix())
    view = re.search(r'viewBox="0 0 (\d+) (\d+)"', svg)
    assert view is not None and view.groups() == (str(size + 4),) * 2  # a quiet zone of 2
    path = re.search(r' d="([^"]*)"', svg)
    assert path is not None
    squares = re.findall(r"M(\d+),(\d+)H(\d+)V(\d+)H\1z", path.group(1))
    assert all(int(x1) == int(x) + 1 and int(y1) == int(y) + 1 for x, y, x1, y1 in squares)
    drawn = {(int(x) - 2, int(y) - 2) for x, y, _, _ in squares}
    assert len(squares) == len(drawn) == path.group(1).count("z")  # each square read, once
    assert drawn == expected
    # And it is a QR code: the three finder patterns' 7 x 7 dark rings in their corners.
    ring = {(i, j) for i in range(7) for j in range(7) if i in (0, 6) or j in (0, 6)}
    for dx, dy in ((0, 0), (size - 7, 0), (0, size - 7)):
        assert {(dx + i, dy + j) for i, j in ring} <= drawn


def test_the_review_names_a_nik_region_or_says_the_list_does_not_hold_it() -> None:
    today = WHEN.date()
    assert nik_region("3171014101900001", "id", today) == (
        "Gambir, Kota Administrasi Jakarta Pusat, Daerah Khusus Ibukota Jakarta (31.71.01)"
    )
    old = nik_region("6473014101900001", "id", today)
    assert old is not None and "64.73.01 tidak ada di daftar kode wilayah" in old
    assert "not in the region list" in (nik_region("6473014101900001", "en", today) or "")
    assert "16 angka" in (nik_region("12345", "id", today) or "")


def test_why_a_letter_could_not_be_read_is_said_in_the_pages_language() -> None:
    from dataclasses import replace

    from channels.letter.pages import waiting_page

    failed = replace(
        draft(DraftStatus.FAILED),
        error="Berkas surat ini tidak dapat dibaca (the image cannot be read). / "
              "This letter's file cannot be read (the image cannot be read).",
    )
    indonesian = batch_page(ctx(), [failed]) + waiting_page(ctx(), failed)
    assert indonesian.count("Berkas surat ini tidak dapat dibaca (the image cannot be read).") >= 2
    assert "This letter&#x27;s file" not in indonesian and " / " not in indonesian
    english = batch_page(ctx("en"), [failed])
    assert "This letter&#x27;s file cannot be read" in english and "Berkas surat" not in english


def test_the_form_given_back_without_its_letter_escapes_what_was_sent() -> None:
    # The database away before the letter could be read: what the browser sent comes back in
    # the form (hostile or not), never as markup.
    from channels.letter.pages import unsaved_page, until

    context = Context("id", None, '"><script>x</script>', "/staff/letters/d-1")
    html = unsaved_page(
        context, 'd"1', {"subject": '"><b>x</b>', "body": "</textarea><i>y</i>"}, None,
        'v"1', 'confirm:ab"cd:budi',
    )
    assert "<script>" not in html and "<b>x" not in html and "<i>y" not in html
    assert 'value="&quot;&gt;&lt;b&gt;x&lt;/b&gt;"' in html
    assert "&lt;/textarea&gt;&lt;i&gt;y&lt;/i&gt;</textarea>" in html
    assert 'action="/staff/letters/d&quot;1"' in html and 'name="based_on" value="v&quot;1"' in html
    assert 'name="failed_hold" value="confirm:ab&quot;cd:budi"' in html
    assert "data-draft" not in html  # staff.js keeps typed values only on the letter's own page
    assert "Layanan sedang sibuk, jadi isian Anda belum disimpan" in html
    assert until(WHEN) == "10:04:00 WIB" and until(None) == "-"
