"""Server-rendered HTML of the front-desk pages (login, letters, upload progress, review,
accounts). Pure.

Plain HTML forms that work without JavaScript; ``/staff/static/staff.js`` only adds comforts
(a print button, a smoother progress display, typed corrections kept, the upload's limits told
as the files are chosen; see :mod:`channels.letter.static`). Indonesian by default, English
with ``?lang=en`` (kept in a cookie). Every value shown is escaped; every form carries the
session's CSRF token.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape
from typing import Literal

from channels.dates import WIB
from channels.letter.auth import Account, Role, Staff
from channels.letter.drafts import (
    SET_ASIDE_REASONS,
    Desk,
    Draft,
    DraftStatus,
    FieldInfo,
    values_version,
)
from channels.letter.parse import CHOICE_FIELDS, LIMITS, TEXT_FIELDS
from channels.letter.upload import ACCEPT, FILE_FIELD
from gateway import tracking

Lang = Literal["id", "en"]
Message = tuple[str, str]
PREFIX = "/staff"
# The upload form's own id, new at each rendering (what makes a second post of it the same).
UPLOAD_ID = "upload_id"
# The review form's version of the values it was drawn from (drafts.values_version).
BASED_ON = "based_on"
# After a confirmation the intake could not take: its hold (drafts.new_hold), which the form's
# next Save or Confirm may land over (DraftStore.save's ``failed``).
FAILED_HOLD = "failed_hold"
# Beside a field whose saved value another clerk changed: at most this much of that value.
THEIRS_SHOWN = 200

T: Mapping[str, tuple[str, str]] = {
    "site": ("LAPOR! Loket Surat", "LAPOR! Letter desk"),
    "switch": ("English", "Bahasa Indonesia"),
    "nav_letters": ("Surat", "Letters"),
    "nav_accounts": ("Akun petugas", "Staff accounts"),
    "logout": ("Keluar", "Log out"),
    "role_clerk": ("petugas", "clerk"),
    "role_supervisor": ("supervisor", "supervisor"),
    "login_title": ("Masuk petugas", "Staff login"),
    "username": ("Nama pengguna", "Username"),
    "password": ("Kata sandi", "Password"),
    "password2": ("Ulangi kata sandi", "Repeat the password"),
    "login": ("Masuk", "Log in"),
    "upload_title": ("Unggah surat", "Upload letters"),
    "upload_help": (
        "PDF, JPEG, PNG atau TIFF. Beberapa berkas sekaligus = beberapa surat (isi kotak "
        "pengaduan); satu berkas berisi semua halaman satu surat.",
        "PDF, JPEG, PNG or TIFF. Several files at once are several letters (a complaint box); "
        "one file holds all pages of one letter.",
    ),
    "files": ("Berkas pindaian", "Scanned files"),
    "one_letter": (
        "Semua berkas ini adalah halaman dari SATU surat (urut sesuai pilihan)",
        "All these files are pages of ONE letter (in the order chosen)",
    ),
    "upload_limits": (
        "Paling banyak {n} berkas sekali unggah, masing-masing paling besar {size}.",
        "At most {n} files in one upload, each at most {size}.",
    ),
    # Told by staff.js as files are chosen; it fills in {count} and {names} (doubled here).
    "upload_too_many": (
        "Terpilih {{count}} berkas, padahal paling banyak {n} berkas sekali unggah: unggahan "
        "ini akan ditolak. Pilih paling banyak {n} berkas, lalu unggah sisanya.",
        "{{count}} files are chosen, but one upload holds at most {n}: this upload would be "
        "refused. Choose at most {n} files, then upload the rest.",
    ),
    "upload_too_large": (
        "Lebih dari {size}, unggahan ini akan ditolak: {{names}}. Pindai ulang dengan resolusi "
        "lebih kecil atau bagi berkasnya.",
        "Larger than {size}, so this upload would be refused: {{names}}. Scan again at a lower "
        "resolution or split the file.",
    ),
    "upload": ("Unggah dan baca", "Upload and read"),
    "waiting_title": ("Surat belum terkirim", "Letters not sent yet"),
    "all_waiting": (
        "Surat semua petugas yang belum terkirim", "Every clerk's letters not sent yet"
    ),
    "waiting_help": (
        "Semua surat yang belum dikonfirmasi, berapa pun umurnya: yang paling lama menunggu "
        "diperiksa (atau dibaca ulang) di atas, lalu yang sedang dibaca.",
        "Every letter not confirmed yet, however old: the one waiting longest for review (or "
        "to be read again) on top, then those being read.",
    ),
    "no_waiting": ("Tidak ada surat yang menunggu.", "No letters waiting."),
    "sent_title": ("Surat terkirim terbaru", "Recently sent letters"),
    "aside_title": ("Surat yang disisihkan ({n})", "Letters set aside ({n})"),
    "aside_help": (
        "Tidak dikirim sebagai laporan, disimpan bersama pindaiannya; Kembalikan membawanya "
        "lagi ke daftar surat yang belum terkirim.",
        "Not sent as reports, kept with their scans; Put back returns one to the letters not "
        "sent yet.",
    ),
    "set_aside": ("Sisihkan", "Set aside"),
    "set_aside_why": ("Sisihkan surat ini karena", "Set this letter aside because"),
    "set_aside_done": (
        "Surat disisihkan: tidak dikirim, tercatat di daftar surat yang disisihkan.",
        "Letter set aside: not sent, listed among the letters set aside.",
    ),
    "set_aside_not": (
        "Surat ini tidak dapat disisihkan sekarang: sedang dibaca, sedang dikonfirmasi, atau "
        "sudah terkirim.",
        "This letter cannot be set aside now: it is being read, being confirmed, or sent.",
    ),
    "put_back": ("Kembalikan", "Put back"),
    "aside_note": ("Surat ini disisihkan: {why}.", "This letter was set aside: {why}."),
    "aside_by": ("Disisihkan oleh {u}, {t}", "Set aside by {u}, {t}"),
    "why_twice": ("terunggah dua kali", "uploaded twice"),
    "why_not_a_report": ("bukan laporan (kosong, brosur, dan sebagainya)",
                         "not a report (blank, a leaflet, and so on)"),
    "why_wrong_file": ("salah berkas", "the wrong file"),
    "st_set_aside": ("Disisihkan", "Set aside"),
    "all_sent": ("Surat terkirim terbaru, semua petugas", "Recently sent letters, every clerk"),
    "sent_cut": (
        "Hanya {n} surat terkirim terbaru yang ditampilkan; yang lebih lama tidak.",
        "Only the {n} most recently sent letters are shown; older ones are not.",
    ),
    "aside_cut": (
        "Hanya {n} surat yang terakhir disisihkan yang ditampilkan; yang lebih lama tidak.",
        "Only the {n} letters set aside last are shown; older ones are not.",
    ),
    "no_letters": ("Belum ada surat.", "No letters yet."),
    "col_file": ("Berkas", "File"),
    "col_status": ("Status", "Status"),
    "col_by": ("Diunggah oleh", "Uploaded by"),
    "col_when": ("Waktu", "When"),
    "col_tid": ("Nomor pelacakan", "Tracking ID"),
    "st_reading": ("Sedang dibaca", "Being read"),
    "st_ready": ("Siap diperiksa", "Ready for review"),
    "st_failed": ("Gagal dibaca", "Could not be read"),
    "st_confirmed": ("Terkirim", "Sent"),
    "progress": ("Halaman {done} dari {total} dibaca", "Page {done} of {total} read"),
    "progress_wait": ("Menunggu giliran dibaca", "Waiting to be read"),
    "batch_title": ("Membaca surat", "Reading letters"),
    "see_progress": ("Lihat kemajuannya", "See the progress"),
    "batch_help": (
        "Halaman ini diperbarui sendiri. Surat yang selesai dibaca dapat langsung diperiksa.",
        "This page updates itself. Letters that are read can be reviewed at once.",
    ),
    "review": ("Periksa", "Review"),
    "receipt": ("Tanda terima", "Receipt"),
    "read_again": ("Baca ulang", "Read again"),
    "review_title": ("Periksa surat", "Review the letter"),
    "review_help": (
        "Bandingkan setiap isian dengan pindaian dan perbaiki bila perlu. Isian berlatar kuning "
        "kurang yakin terbaca. Laporan baru dikirim setelah Anda menekan Konfirmasi.",
        "Compare every field with the scan and correct it where needed. Fields on yellow were "
        "read with low confidence. The complaint is sent only when you press Confirm.",
    ),
    "page": ("Halaman {n}", "Page {n}"),
    "page_conf": ("keyakinan OCR {c}%", "OCR confidence {c}%"),
    "page_text_layer": ("teks dari PDF", "text from the PDF"),
    "confidence": ("keyakinan {c}%", "confidence {c}%"),
    "low": ("Kurang yakin: periksa dengan pindaian.", "Low confidence: check against the scan."),
    "nik_region": ("Wilayah NIK", "NIK region"),
    "sender_name": ("Nama pengirim", "Sender's name"),
    "nik": ("NIK (16 angka)", "NIK (16 digits)"),
    "address": ("Alamat pengirim", "Sender's address"),
    "phone": ("Nomor HP/telepon", "Phone number"),
    "email": ("E-mail", "E-mail"),
    "letter_date": ("Tanggal surat", "Date of the letter"),
    "letter_place": ("Tempat surat ditulis", "Place the letter was written"),
    "addressee": ("Ditujukan kepada (instansi)", "Addressed to (agency)"),
    "subject": ("Perihal (judul laporan)", "Subject (title of the report)"),
    "body": ("Isi surat (isi laporan)", "Body of the letter (the report)"),
    "about": ("No. lacak laporan sebelumnya, bila surat ini tambahan untuk laporan itu (dari "
              "tanda terima atau SMS yang ditunjukkan pengirim)",
              "Tracking ID of an earlier report this letter adds to (from the receipt or SMS the "
              "sender shows)"),
    "kind": ("Klasifikasi", "Classification"),
    "pengaduan": ("Pengaduan", "Complaint"),
    "aspirasi": ("Aspirasi", "Aspiration"),
    "informasi": ("Permintaan informasi", "Request for information"),
    "anonymous": ("Anonim: nama pengirim tidak ditampilkan kepada instansi",
                  "Anonymous: the agency does not see the sender's name"),
    "confidential": ("Rahasia: isi laporan tidak dipublikasikan",
                     "Confidential: the report is never published"),
    "nik_checked": ("NIK sesuai KTP: sudah saya cocokkan dengan KTP (asli atau fotokopi)",
                    "NIK matches the KTP: I checked it against the KTP (the card or a copy)"),
    "save": ("Simpan draf", "Save draft"),
    "confirm": ("Konfirmasi dan kirim", "Confirm and send"),
    "saved": ("Draf disimpan.", "Draft saved."),
    "conflict": (
        "Surat ini diubah oleh {u} ({t}) setelah halaman ini Anda buka, jadi isian Anda belum "
        "disimpan. Isian di bawah adalah ketikan Anda; isian tersimpan yang berbeda ditulis di "
        "bawah kolomnya. Periksa, lalu tekan Simpan draf atau Konfirmasi lagi.",
        "{u} changed this letter ({t}) after you opened this page, so your values were not "
        "saved. The fields below hold what you typed; the saved value is shown under each "
        "field that differs. Check them, then press Save draft or Confirm again.",
    ),
    "conflict_own": (
        "Anda sendiri mengubah surat ini di halaman lain ({t}) setelah halaman ini dibuka, jadi "
        "isian ini belum disimpan. Isian di bawah adalah ketikan Anda di halaman ini; isian "
        "tersimpan yang berbeda ditulis di bawah kolomnya. Periksa, lalu tekan Simpan draf atau "
        "Konfirmasi lagi.",
        "You changed this letter yourself on another page ({t}) after this page was opened, so "
        "these values were not saved. The fields below hold what you typed on this page; the "
        "saved value is shown under each field that differs. Check them, then press Save draft "
        "or Confirm again.",
    ),
    "confirming": (
        "Surat ini sedang dikonfirmasi oleh {u} (paling lama sampai pukul {t}), jadi isian Anda "
        "belum disimpan. Isian di bawah adalah ketikan Anda; isian yang sedang dikirim ditulis "
        "di bawah kolomnya. Buka lagi surat ini sebentar lagi untuk melihat tanda terimanya.",
        "{u} is confirming this letter right now (until {t} at the latest), so your values were "
        "not saved. The fields below hold what you typed; the values being sent are shown under "
        "each field that differs. Open the letter again in a moment to see its receipt.",
    ),
    "confirming_own": (
        "Konfirmasi Anda sebelumnya (klik sebelumnya atau halaman lain) masih menahan surat ini, "
        "paling lama sampai pukul {t}, jadi isian ini belum disimpan. Isian di bawah adalah "
        "ketikan Anda; isian yang dikirim dengan konfirmasi itu ditulis di bawah kolomnya. Buka "
        "lagi surat ini sebentar lagi: bila sudah terkirim, tanda terimanya yang tampil; bila "
        "belum, kirim lagi isian Anda setelah pukul {t}.",
        "Your earlier confirmation (an earlier click, or another page) still holds this letter, "
        "until {t} at the latest, so these values were not saved. The fields below hold what "
        "you typed; the values sent with that confirmation are shown under each field that "
        "differs. Open the letter again in a moment: once it is sent, its receipt is shown; if "
        "not, send your values again after {t}.",
    ),
    "held": (
        "Surat ini sedang dikonfirmasi oleh {u}, paling lama sampai pukul {t}. Sampai saat itu "
        "perubahan tidak dapat disimpan. Muat ulang halaman ini sebentar lagi: bila sudah "
        "terkirim, tanda terimanya yang tampil.",
        "{u} is confirming this letter right now, until {t} at the latest. Until then changes "
        "cannot be saved. Reload this page in a moment: once it is sent, its receipt is shown.",
    ),
    "held_own": (
        "Konfirmasi Anda sebelumnya (klik sebelumnya atau halaman lain) masih menahan surat ini, "
        "paling lama sampai pukul {t}. Sampai saat itu perubahan tidak dapat disimpan. Muat "
        "ulang halaman ini sebentar lagi: bila sudah terkirim, tanda terimanya yang tampil.",
        "Your earlier confirmation (an earlier click, or another page) still holds this letter, "
        "until {t} at the latest. Until then changes cannot be saved. Reload this page in a "
        "moment: once it is sent, its receipt is shown.",
    ),
    "theirs": ("Tersimpan oleh petugas lain: {v}", "Saved by the other clerk: {v}"),
    "theirs_own": ("Tersimpan dari halaman Anda yang lain: {v}",
                   "Saved from your other page: {v}"),
    "theirs_confirming": ("Isian yang sedang dikonfirmasi: {v}", "Being confirmed: {v}"),
    "empty": ("(kosong)", "(empty)"),
    "ticked": ("dicentang", "ticked"),
    "not_ticked": ("tidak dicentang", "not ticked"),
    "restored": (
        "Isian yang belum tersimpan dimuat kembali dari browser ini. Periksa, lalu tekan Simpan "
        "draf atau Konfirmasi.",
        "Values that were not saved were brought back from this browser. Check them, then "
        "press Save draft or Confirm.",
    ),
    "not_added": (
        "Surat ini TIDAK ditambahkan ke laporan {id}: NIK pengirim tidak dicocokkan dengan "
        "KTP, atau laporan itu tidak memuat NIK ini. Surat dicatat sebagai laporan baru dengan "
        "nomor di bawah.",
        "This letter was NOT added to report {id}: the sender's NIK was not checked against "
        "the KTP, or that report does not carry this NIK. It is registered as a new report "
        "with the number below.",
    ),
    "not_sent": (
        "Surat ini sudah dikonfirmasi oleh {u} ({t}); isian yang baru Anda kirim TIDAK dipakai. "
        "Tanda terima di bawah memuat laporan yang tercatat.",
        "This letter was confirmed already by {u} ({t}); the values you just sent were NOT "
        "used. The receipt below shows the report as registered.",
    ),
    "unsent": (
        "Isian di bawah disimpan oleh {u} ({t}) setelah konfirmasi surat ini dimulai, dan TIDAK "
        "ikut terkirim: laporan tercatat dengan isian yang dikonfirmasi, seperti pada tanda "
        "terima. Bila isian yang tidak terkirim itu yang benar, laporan yang tercatat perlu "
        "dikoreksi; isian itu tetap tersimpan di sini.",
        "The values below were saved by {u} ({t}) after this letter's confirmation began, and "
        "were NOT sent: the report is registered with the values confirmed, as on the receipt. "
        "If the values not sent are the right ones, the registered report needs correcting; "
        "they stay recorded here.",
    ),
    "unsent_own": (
        "Isian di bawah Anda simpan ({t}) setelah konfirmasi surat ini dimulai, dan TIDAK ikut "
        "terkirim: laporan tercatat dengan isian yang dikonfirmasi, seperti pada tanda terima. "
        "Bila isian yang tidak terkirim itu yang benar, laporan yang tercatat perlu dikoreksi; "
        "isian itu tetap tersimpan di sini.",
        "You saved the values below ({t}) after this letter's confirmation began, and they were "
        "NOT sent: the report is registered with the values confirmed, as on the receipt. If "
        "the values not sent are the right ones, the registered report needs correcting; they "
        "stay recorded here.",
    ),
    "col_field": ("Isian", "Field"),
    "col_unsent": ("Tersimpan, tidak terkirim", "Saved, not sent"),
    "col_sent": ("Terkirim", "Sent"),
    "session_ended": (
        "Sesi Anda sudah berakhir (terlalu lama tidak aktif, atau sudah keluar), jadi yang "
        "baru Anda kirim belum disimpan. Masuk lagi untuk melanjutkan.",
        "Your session has ended (idle too long, or logged out), so what you just sent was not "
        "saved. Log in again to go on.",
    ),
    "errors": ("Periksa kembali isian yang ditandai.", "Please check the marked fields."),
    "reading_note": ("Surat ini masih dibaca.", "This letter is still being read."),
    "failed_note": ("Surat ini tidak dapat dibaca: {e}", "This letter could not be read: {e}"),
    "original": ("Berkas asli", "Original file"),
    "uploaded_by": ("Diunggah oleh {u}, {t}", "Uploaded by {u}, {t}"),
    "accounts_title": ("Akun petugas", "Staff accounts"),
    "new_account": ("Akun baru", "New account"),
    "role": ("Peran", "Role"),
    "create": ("Buat akun", "Create account"),
    "col_role": ("Peran", "Role"),
    "col_state": ("Keadaan", "State"),
    "col_last": ("Terakhir masuk", "Last login"),
    "active": ("aktif", "active"),
    "disabled": ("nonaktif", "disabled"),
    "locked": ("terkunci sampai {t}", "locked until {t}"),
    "unlock": ("Buka kunci", "Unlock"),
    "disable": ("Nonaktifkan", "Disable"),
    "enable": ("Aktifkan", "Enable"),
    "created": ("Akun {u} dibuat.", "Account {u} created."),
    "done": ("Selesai.", "Done."),
    "mismatch": ("Kedua kata sandi tidak sama.", "The two passwords differ."),
    "forbidden": ("Halaman ini hanya untuk supervisor.", "This page is for supervisors only."),
    "own_account": (
        "Anda tidak dapat menonaktifkan akun Anda sendiri. Bila akun ini memang harus "
        "dinonaktifkan, mintalah supervisor lain.",
        "You cannot disable your own account. If it must be disabled, ask another supervisor.",
    ),
    "not_yours": ("Surat ini diunggah petugas lain.", "Another clerk uploaded this letter."),
    "not_found": ("Tidak ditemukan.", "Not found."),
    "expired": ("Formulir kedaluwarsa atau tidak sah. Silakan ulangi.",
                "The form expired or is not valid. Please try again."),
    "forms_busy": (
        "Terlalu banyak permintaan halaman masuk dari alamat ini. Coba lagi dalam {m} menit.",
        "Too many login pages asked for from this address. Try again in {m} minutes.",
    ),
    "address_locked": (
        "Terlalu banyak percobaan masuk yang gagal dari alamat ini. Coba lagi dalam {m} menit.",
        "Too many failed logins from this address. Try again in {m} minutes.",
    ),
    "unavailable": ("Layanan sedang sibuk. Coba lagi beberapa saat lagi.",
                    "The service is busy. Please try again in a moment."),
    "unsaved": (
        "Layanan sedang sibuk, jadi isian Anda belum disimpan dan surat ini belum dikirim. Isian "
        "di bawah adalah ketikan Anda: tekan Simpan draf atau Konfirmasi lagi sebentar lagi.",
        "The service is busy, so your values were not saved and the letter was not sent. The "
        "fields below hold what you typed: press Save draft or Confirm again in a moment.",
    ),
    "unsaved_pages": (
        "Gambar halaman surat tampil lagi setelah isian tersimpan.",
        "The page images come back once the values are saved.",
    ),
    "sent_busy": (
        "Surat ini sudah terkirim dengan isian di bawah, tetapi layanan sedang sibuk sehingga "
        "tanda terimanya belum tercatat. Sebentar lagi tekan Konfirmasi dan kirim sekali lagi "
        "tanpa mengubah isian: surat tidak terkirim dua kali, dan tanda terimanya tampil.",
        "This letter was sent with the values below, but the service is busy, so its receipt "
        "is not recorded yet. In a moment press Confirm and send once more without changing "
        "anything: the letter is not sent twice, and its receipt is shown.",
    ),
    "recorded_busy": (
        "Surat ini sudah terkirim lewat konfirmasi lain (klik sebelumnya atau petugas lain), "
        "tetapi layanan sedang sibuk sehingga tanda terimanya belum dapat ditampilkan. Isian di "
        "bawah adalah ketikan Anda, belum tentu yang terkirim. Sebentar lagi tekan Konfirmasi "
        "dan kirim sekali lagi: surat tidak terkirim dua kali, dan tanda terima dengan isian "
        "yang tercatat tampil.",
        "This letter was already sent by another confirmation (an earlier click, or another "
        "clerk), but the service is busy, so its receipt cannot be shown yet. The fields below "
        "hold what you typed, not necessarily what was sent. In a moment press Confirm and send "
        "once more: the letter is not sent twice, and the receipt with the values registered "
        "is shown.",
    ),
    "bad_form": ("Isian formulir rusak dan tidak dapat dibaca.",
                 "The form's data is malformed and cannot be read."),
    "back": ("Kembali ke daftar surat", "Back to the letters"),
    "print": ("Cetak", "Print"),
}

CSS = """
*{box-sizing:border-box}body{margin:0;font:15px/1.45 system-ui,sans-serif;color:#1a1a1a;
background:#f4f5f7}header{background:#0d47a1;color:#fff;padding:.6rem 1rem;display:flex;
gap:1rem;flex-wrap:wrap;align-items:center}header a{color:#fff}header .who{margin-left:auto}
header form{display:inline;margin:0}header button{background:transparent;border:1px solid #fff;
color:#fff;padding:.2rem .6rem;width:auto;margin:0;font-size:.9rem}
main{max-width:72rem;margin:0 auto;padding:1rem}h1{font-size:1.35rem}
label{display:block;font-weight:600;margin:.8rem 0 .2rem}
input[type=text],input[type=password],input[type=email],input[type=tel],input[type=date],
select,textarea{width:100%;padding:.5rem;font:inherit;font-size:1rem;border:1px solid #888;
border-radius:4px;background:#fff}textarea{min-height:6rem}textarea#body{min-height:18rem}
button{padding:.6rem 1rem;font-size:1rem;background:#0d47a1;color:#fff;border:0;
border-radius:4px;cursor:pointer}button.secondary{background:#fff;color:#0d47a1;
border:1px solid #0d47a1}.actions{display:flex;gap:.8rem;margin-top:1rem;flex-wrap:wrap}
.alert{background:#fdecea;border-left:4px solid #b00020;padding:.6rem .8rem}
.ok{background:#e8f5e9;border-left:4px solid #2e7d32;padding:.6rem .8rem}
.err{color:#b00020;font-size:.9rem;margin:.2rem 0}.invalid{border-color:#b00020!important}
.note{color:#555;font-size:.85rem;margin:.15rem 0}.note.theirs{color:#7a3e00;font-weight:600}
.field.low input,.field.low textarea{
background:#fff8c4;border-color:#c79100}.field.low .note.lowconf{color:#8a6100;font-weight:600}
table{border-collapse:collapse;width:100%;background:#fff}td,th{border-bottom:1px solid #ddd;
padding:.45rem;text-align:left;vertical-align:top}progress{width:12rem}
.box{background:#fff;border:1px solid #ddd;border-radius:6px;padding:1rem;margin:1rem 0}
.review{display:grid;grid-template-columns:1fr;gap:1rem}
.scans{max-height:none}.scans figure{margin:0 0 1rem;background:#fff;border:1px solid #ccc;
padding:.4rem}.scans img{width:100%;height:auto;display:block}
figcaption{font-size:.85rem;color:#444}.check label{display:inline;font-weight:400}
.st-reading{color:#0d47a1}.st-ready{color:#2e7d32;font-weight:600}.st-failed{color:#b00020}
@media (min-width:60rem){.review{grid-template-columns:minmax(0,1fr) minmax(0,1fr)}
.scans{position:sticky;top:0;max-height:100vh;overflow:auto}}
"""


@dataclass(frozen=True, slots=True)
class Context:
    """What every staff page needs: language, who is logged in, the CSRF token, the path."""

    lang: Lang
    staff: Staff | None
    csrf: str
    path: str


def t(key: str, lang: Lang, **fmt: object) -> str:
    """The text ``key`` in ``lang``."""
    text = T[key][0 if lang == "id" else 1]
    return text.format(**fmt) if fmt else text


def msg(message: Message, lang: Lang) -> str:
    """One (Indonesian, English) message in ``lang``."""
    return message[0] if lang == "id" else message[1]


def when(moment: datetime | None) -> str:
    """A timestamp as staff read it: WIB, the national service's time, to the minute."""
    return "-" if moment is None else moment.astimezone(WIB).strftime("%Y-%m-%d %H:%M WIB")


def until(moment: datetime | None) -> str:
    """The end of a confirmation's hold (at most minutes away): the time of day in WIB, to
    the second."""
    return "-" if moment is None else moment.astimezone(WIB).strftime("%H:%M:%S WIB")


def csrf_input(ctx: Context) -> str:
    """The hidden CSRF field of every form."""
    return f'<input type="hidden" name="csrf" value="{escape(ctx.csrf)}">'


def page(
    ctx: Context, title: str, body: str, *, head: str = "", body_class: str = ""
) -> str:
    """A whole HTML document around ``body``."""
    lang = ctx.lang
    other = "en" if lang == "id" else "id"
    nav = ""
    if ctx.staff is not None:
        accounts = (
            f'<a href="{PREFIX}/accounts">{t("nav_accounts", lang)}</a>'
            if ctx.staff.is_supervisor
            else ""
        )
        role = t(f"role_{ctx.staff.role.value}", lang)
        nav = (
            f'<a href="{PREFIX}/">{t("nav_letters", lang)}</a>{accounts}'
            f'<span class="who" id="who">{escape(ctx.staff.username)} ({role})</span>'
            f'<form method="post" action="{PREFIX}/logout">{csrf_input(ctx)}'
            f'<button type="submit" id="logout">{t("logout", lang)}</button></form>'
        )
    cls = f' class="{body_class}"' if body_class else ""
    return (
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        '<meta name="robots" content="noindex,nofollow">'
        f"<title>{escape(title)} · {t('site', lang)}</title><style>{CSS}</style>{head}"
        f'<script src="{PREFIX}/static/staff.js" defer></script></head><body{cls}>'
        f'<header><strong>{t("site", lang)}</strong>{nav}'
        f'<a href="{escape(ctx.path)}?lang={other}" hreflang="{other}" id="lang-switch">'
        f'{t("switch", lang)}</a></header><main>{body}</main></body></html>'
    )


def alert_box(text: str | None, ok: bool = False) -> str:
    """A message above a form."""
    if not text:
        return ""
    role = "status" if ok else "alert"
    return f'<p class="{"ok" if ok else "alert"}" role="{role}">{escape(text)}</p>'


# ---- login ------------------------------------------------------------------------------------


def login_page(ctx: Context, username: str = "", alert: str | None = None, nxt: str = "") -> str:
    """The login form."""
    lang = ctx.lang
    body = (
        f'<h1>{t("login_title", lang)}</h1>{alert_box(alert)}'
        f'<form method="post" action="{PREFIX}/login" class="box" style="max-width:24rem">'
        f"{csrf_input(ctx)}"
        f'<input type="hidden" name="next" value="{escape(nxt)}">'
        f'<label for="username">{t("username", lang)}</label>'
        f'<input type="text" id="username" name="username" value="{escape(username)}" '
        f'autocomplete="username" autocapitalize="none" required{"" if username else " autofocus"}>'
        f'<label for="password">{t("password", lang)}</label>'
        '<input type="password" id="password" name="password" autocomplete="current-password" '
        f'required{" autofocus" if username else ""}><div class="actions">'
        f'<button type="submit">{t("login", lang)}</button></div></form>'
    )
    return page(ctx, t("login_title", lang), body)


# ---- letters ----------------------------------------------------------------------------------


def status_text(draft: Draft, lang: Lang) -> str:
    """The status of a draft in words (with the page progress while reading)."""
    if draft.status is DraftStatus.READING:
        if draft.pages_total:
            return t("progress", lang, done=draft.pages_done, total=draft.pages_total)
        return t("progress_wait", lang)
    return t(f"st_{draft.status.value}", lang)


def error_text(error: str | None, lang: Lang) -> str:
    """Why a letter could not be read, in ``lang``: the reader stores "Indonesian. / English."
    (the technical reason inside stays as the library said it)."""
    if not error:
        return "-"
    indonesian, sep, english = error.partition(". / ")
    if not sep:
        return error
    return indonesian + "." if lang == "id" else english


def _progress(draft: Draft) -> str:
    if draft.status is not DraftStatus.READING:
        return ""
    total = draft.pages_total or 0
    value = f' value="{draft.pages_done}"' if total else ""
    return f' <progress max="{max(total, 1)}"{value}></progress>'


def _action(ctx: Context, draft: Draft) -> str:
    lang = ctx.lang
    if draft.status is DraftStatus.READY:
        return (
            f'<a href="{PREFIX}/letters/{draft.id}" class="review-link">{t("review", lang)}</a>'
            + set_aside_form(ctx, draft)
        )
    if draft.status is DraftStatus.CONFIRMED:
        return f'<a href="{PREFIX}/letters/{draft.id}/receipt">{t("receipt", lang)}</a>'
    if draft.status is DraftStatus.FAILED:
        return (
            f'<form method="post" action="{PREFIX}/letters/{draft.id}/read-again">'
            f'{csrf_input(ctx)}<button type="submit" class="secondary">'
            f'{t("read_again", lang)}</button></form>' + set_aside_form(ctx, draft)
        )
    if draft.status is DraftStatus.SET_ASIDE:
        return (
            f'<form method="post" action="{PREFIX}/letters/{draft.id}/put-back">'
            f'{csrf_input(ctx)}<button type="submit" class="secondary">'
            f'{t("put_back", lang)}</button></form>'
        )
    return ""


def set_aside_form(ctx: Context, draft: Draft) -> str:
    """A letter that is no report to send (uploaded twice, blank, the wrong file) is set aside
    with the reason chosen from a list, behind a disclosure so that it is not clicked by
    mistake; it works without JavaScript."""
    lang = ctx.lang
    options = "".join(
        f'<option value="{r}">{escape(t("why_" + r, lang))}</option>' for r in SET_ASIDE_REASONS
    )
    return (
        f'<details class="set-aside"><summary>{t("set_aside", lang)}</summary>'
        f'<form method="post" action="{PREFIX}/letters/{draft.id}/set-aside">{csrf_input(ctx)}'
        f'<label for="why-{draft.id}">{t("set_aside_why", lang)}</label> '
        f'<select id="why-{draft.id}" name="reason">{options}</select> '
        f'<button type="submit" class="secondary">{t("set_aside", lang)}</button></form>'
        "</details>"
    )


def set_aside_reason(draft: Draft, lang: Lang) -> str:
    """Why a letter set aside was set aside, in ``lang``."""
    code = (draft.error or "").split(":", 1)[0]
    return t("why_" + code, lang) if code in SET_ASIDE_REASONS else "-"


def _row(ctx: Context, draft: Draft, show_by: bool) -> str:
    status = draft.status.value
    tid = tracking.display(draft.tracking_id) if draft.tracking_id else ""
    error = (
        f'<p class="err">{escape(error_text(draft.error, ctx.lang))}</p>'
        if draft.status is DraftStatus.FAILED and draft.error
        else ""
    )
    if draft.status is DraftStatus.SET_ASIDE:
        by = t("aside_by", ctx.lang, u=draft.updated_by_name or "-", t=when(draft.updated_at))
        error = (
            f'<p class="note">{escape(set_aside_reason(draft, ctx.lang))}. {escape(by)}</p>'
        )
    by = f"<td>{escape(draft.created_by_name)}</td>" if show_by else ""
    return (
        f'<tr id="d-{draft.id}" data-draft="{draft.id}"><td>{escape(draft.label)}</td>'
        f'<td><span class="st st-{status}" data-status="{status}">'
        f"{escape(status_text(draft, ctx.lang))}</span>{_progress(draft)}{error}</td>{by}"
        f"<td>{when(draft.created_at)}</td><td>{escape(tid)}</td>"
        f'<td class="next">{_action(ctx, draft)}</td></tr>'
    )


def drafts_table(
    ctx: Context,
    drafts: Sequence[Draft],
    show_by: bool,
    table_id: str = "letters",
    empty: str = "no_letters",
) -> str:
    """The table of letters with their status, progress and next step (``empty``: the text
    when there is none)."""
    lang = ctx.lang
    if not drafts:
        return f'<p id="no-{table_id}">{t(empty, lang)}</p>'
    by = f'<th>{t("col_by", lang)}</th>' if show_by else ""
    return (
        f'<table id="{table_id}"><thead><tr><th>{t("col_file", lang)}</th>'
        f'<th>{t("col_status", lang)}</th>{by}<th>{t("col_when", lang)}</th>'
        f'<th>{t("col_tid", lang)}</th><th></th></tr></thead><tbody>'
        + "".join(_row(ctx, d, show_by) for d in drafts)
        + "</tbody></table>"
    )


def size_text(size: int, lang: Lang) -> str:
    """``25 MB``, ``1,5 MB`` (Indonesian decimal comma) or ``512 KB``."""
    if size < 1_048_576:
        return f"{max(1, size // 1024)} KB"
    number = f"{size / 1_048_576:.1f}".removesuffix(".0")
    return f'{number.replace(".", ",") if lang == "id" else number} MB'


def _letter_lists(ctx: Context, desk: Desk) -> str:
    """The desk's list: every letter not sent yet (what needs the clerk first), then the newest
    sent ones and, folded, the letters set aside last, saying so when older ones are left
    out."""
    lang = ctx.lang
    supervisor = ctx.staff is not None and ctx.staff.is_supervisor
    cut = (
        f'<p class="note" id="sent-cut">{t("sent_cut", lang, n=len(desk.sent))}</p>'
        if desk.more_sent
        else ""
    )
    aside_count = f"{len(desk.set_aside)}+" if desk.more_set_aside else len(desk.set_aside)
    aside_cut = (
        f'<p class="note" id="set-aside-cut">'
        f'{t("aside_cut", lang, n=len(desk.set_aside))}</p>'
        if desk.more_set_aside
        else ""
    )
    return (
        f'<h2>{t("all_waiting" if supervisor else "waiting_title", lang)}</h2>'
        f'<p class="note">{t("waiting_help", lang)}</p>'
        + drafts_table(ctx, desk.waiting, supervisor, "letters-waiting", "no_waiting")
        + f'<h2>{t("all_sent" if supervisor else "sent_title", lang)}</h2>'
        + drafts_table(ctx, desk.sent, supervisor, "letters-sent", "no_letters")
        + cut
        + (
            f'<details id="set-aside"><summary>'
            f'{t("aside_title", lang, n=aside_count)}</summary>'
            f'<p class="note">{t("aside_help", lang)}</p>'
            + drafts_table(ctx, desk.set_aside, supervisor, "letters-set-aside", "no_letters")
            + aside_cut
            + "</details>"
            if desk.set_aside
            else ""
        )
    )


def home_page(
    ctx: Context,
    desk: Desk,
    alert: str | None = None,
    status_ok: bool = False,
    uploaded: tuple[str, str] | None = None,
    *,
    max_files: int | None = None,
    max_file_size: int | None = None,
) -> str:
    """The upload form (with its limits, when given: files per upload, bytes per file) and the
    desk's list (:class:`Desk`); ``uploaded`` (text, progress page) says what of an upload
    went in when some of its files were refused (``alert``)."""
    lang = ctx.lang
    limits = checks = ""
    if max_files is not None and max_file_size is not None:
        size = size_text(max_file_size, lang)
        limits = (
            f'<p class="note" id="upload-limits">'
            f'{t("upload_limits", lang, n=max_files, size=size)}</p>'
        )
        # For staff.js, which tells the clerk before anything is sent (the server checks
        # again: the form works without it).
        checks = (
            f' data-max-files="{max_files}" data-max-size="{max_file_size}"'
            f' data-too-many="{escape(t("upload_too_many", lang, n=max_files))}"'
            f' data-too-large="{escape(t("upload_too_large", lang, size=size))}"'
        )
    described = ' aria-describedby="upload-limits"' if limits else ""
    went_in = (
        f'<p class="ok" role="status" id="uploaded">{escape(uploaded[0])} '
        f'<a href="{escape(uploaded[1])}" id="uploaded-progress">{t("see_progress", lang)}</a></p>'
        if uploaded
        else ""
    )
    body = (
        f'<h1>{t("upload_title", lang)}</h1>{alert_box(alert, status_ok)}{went_in}'
        f'<form method="post" action="{PREFIX}/letters" enctype="multipart/form-data" '
        f'class="box" id="upload-form"{checks}>{csrf_input(ctx)}'
        # New at each rendering: the same form sent twice makes one batch (create_batch).
        f'<input type="hidden" name="{UPLOAD_ID}" value="{uuid.uuid4()}">'
        f'<p class="note">{t("upload_help", lang)}</p>'
        f'<label for="{FILE_FIELD}">{t("files", lang)}</label>'
        f'<input type="file" id="{FILE_FIELD}" name="{FILE_FIELD}" multiple required '
        f'accept="{ACCEPT}"{described}>{limits}'
        '<div class="check"><input type="checkbox" id="one_letter" name="one_letter" value="1"> '
        f'<label for="one_letter">{t("one_letter", lang)}</label></div>'
        f'<div class="actions"><button type="submit" id="upload">{t("upload", lang)}</button>'
        "</div></form>" + _letter_lists(ctx, desk)
    )
    return page(ctx, t("upload_title", lang), body)


def batch_page(ctx: Context, drafts: Sequence[Draft]) -> str:
    """The progress of one upload; refreshes itself while a letter is being read."""
    lang = ctx.lang
    reading = any(d.status is DraftStatus.READING for d in drafts)
    # Without JavaScript the page reloads itself; staff.js polls progress.json instead.
    head = '<noscript><meta http-equiv="refresh" content="2"></noscript>' if reading else ""
    body = (
        f'<h1>{t("batch_title", lang)}</h1><p class="note">{t("batch_help", lang)}</p>'
        + drafts_table(ctx, drafts, show_by=False)
        + f'<p><a href="{PREFIX}/">{t("back", lang)}</a></p>'
    )
    return page(ctx, t("batch_title", lang), _polled(body, drafts, reading), head=head)


def _polled(body: str, drafts: Sequence[Draft], reading: bool) -> str:
    """``body`` in a box that staff.js keeps up to date while a letter is being read."""
    if not reading or not drafts:
        return f'<div id="batch">{body}</div>'
    url = f"{PREFIX}/uploads/{drafts[0].batch_id}/progress.json"
    return f'<div id="batch" data-progress="{escape(url)}">{body}</div>'


def _confidence(info: FieldInfo | None) -> int | None:
    return None if info is None else round(info.confidence * 100)


def _theirs(
    ctx: Context, name: str, theirs: Mapping[str, str] | None, label: str = "theirs"
) -> str:
    """Under a field: the value saved meanwhile (``label`` says by whom, or that it is being
    confirmed), when it differs."""
    if theirs is None or name not in theirs:
        return ""
    value, lang = theirs[name], ctx.lang
    shown = _shown(name, value, lang)
    return f'<p class="note theirs" id="{name}-theirs">{t(label, lang, v=escape(shown))}</p>'


def _shown(name: str, value: str, lang: Lang, limit: int | None = THEIRS_SHOWN) -> str:
    """A field's value in a sentence or a table (not escaped): a choice in words, nothing as
    "(empty)", a long text cut to ``limit`` characters."""
    if name in CHOICE_FIELDS and name != "kind":
        return t("ticked" if value else "not_ticked", lang)
    if name == "kind" and value in T:
        return t(value, lang)
    if not value:
        return t("empty", lang)
    return value if limit is None or len(value) <= limit else value[:limit] + "…"


def unsent_box(ctx: Context, draft: Draft) -> str:
    """On a confirmed letter's receipt page, for the staff only (never printed): the values
    saved after its confirmation began that were not sent, beside the ones sent, or nothing."""
    if draft.unsent is None:
        return ""
    lang = ctx.lang
    differ = [
        n for n in (*TEXT_FIELDS, *CHOICE_FIELDS)
        if draft.unsent.get(n, "") != draft.values.get(n, "")
    ]
    if not differ:
        return ""
    who = draft.unsent_by_name or "-"
    own = ctx.staff is not None and ctx.staff.username == who
    alert = (
        t("unsent_own", lang, t=when(draft.unsent_at))
        if own
        else t("unsent", lang, u=who, t=when(draft.unsent_at))
    )
    rows = "".join(
        f'<tr id="{n}-unsent"><th scope="row">{escape(t(n, lang))}</th>'
        f"<td>{escape(_shown(n, draft.unsent.get(n, ''), lang, None))}</td>"
        f"<td>{escape(_shown(n, draft.values.get(n, ''), lang, None))}</td></tr>"
        for n in differ
    )
    return (
        f'<div class="noprint" id="unsent">{alert_box(alert)}<table><thead><tr>'
        f'<th scope="col">{t("col_field", lang)}</th><th scope="col">{t("col_unsent", lang)}</th>'
        f'<th scope="col">{t("col_sent", lang)}</th></tr></thead><tbody>{rows}</tbody></table>'
        "</div>"
    )


def _field(
    ctx: Context,
    name: str,
    value: str,
    info: FieldInfo | None,
    low: bool,
    error: Message | None,
    extra_note: str = "",
    *,
    focus: bool = False,
    theirs: str = "",
) -> str:
    lang = ctx.lang
    classes = "field low" if low else "field"
    invalid = ' class="invalid" aria-invalid="true"' if error else ""
    if focus:  # the first field to put right: the keyboard is there, and the page scrolled to it
        invalid += " autofocus"
    described = f' aria-describedby="{name}-notes"'
    limit = LIMITS.get(name)
    maxlength = f' maxlength="{limit}"' if limit else ""
    if name in ("body", "address", "addressee"):
        control = (
            f'<textarea id="{name}" name="{name}"{invalid}{described}{maxlength}>'
            f"{escape(value)}</textarea>"
        )
    else:
        kind = {"letter_date": "date", "email": "email", "phone": "tel"}.get(name, "text")
        control = (
            f'<input type="{kind}" id="{name}" name="{name}" value="{escape(value)}"'
            f"{invalid}{described}{maxlength}>"
        )
    notes = []
    if error:
        notes.append(f'<p class="err" id="{name}-err">{escape(msg(error, lang))}</p>')
        if name == "nik":
            extra_note = ""  # the region line would only say the error again
    if theirs:
        notes.append(theirs)
    if low:
        notes.append(f'<p class="note lowconf">{t("low", lang)}</p>')
    conf = _confidence(info)
    if conf is not None:
        notes.append(f'<p class="note">{t("confidence", lang, c=conf)}</p>')
    if extra_note:  # (the NIK's region from the current value replaces the reader's note)
        notes.append(extra_note)
    elif info is not None and info.note and not (error and name == "nik"):
        notes.append(f'<p class="note">{escape(info.note)}</p>')
    return (
        f'<div class="{classes}" id="f-{name}" data-confidence="{"" if conf is None else conf}">'
        f'<label for="{name}">{t(name, lang)}</label>{control}'
        f'<div id="{name}-notes">{"".join(notes)}</div></div>'
    )


def review_page(
    ctx: Context,
    draft: Draft,
    values: Mapping[str, str],
    low: frozenset[str],
    nik_region: str | None,
    errors: Mapping[str, Message] | None = None,
    alert: str | None = None,
    saved: bool = False,
    version: str = "",
    theirs: Mapping[str, str] | None = None,
    failed_hold: str | None = None,
    *,
    theirs_label: str = "theirs",
    held: str | None = None,
) -> str:
    """The scans beside the extracted fields, every field editable.

    ``version`` is the version of the saved values the form builds on (sent back as
    ``based_on``); ``theirs`` the values saved meanwhile, shown under the fields that differ
    (``theirs_label``: the text that says whose they are); ``failed_hold`` the hold of this
    clerk's confirmation that the intake could not take (sent back as ``failed_hold``);
    ``held`` says that a confirmation holds the letter right now (who, until when). With
    ``errors`` the first field in error has the focus.
    """
    lang = ctx.lang
    errors = errors or {}
    figures = "".join(
        f'<figure><img src="{PREFIX}/letters/{draft.id}/pages/{p.number}" '
        f'alt="{escape(t("page", lang, n=p.number))}" loading="lazy">'
        f'<figcaption>{t("page", lang, n=p.number)} · '
        + (
            t("page_text_layer", lang)
            if p.source == "text-layer"
            else t("page_conf", lang, c=round(p.confidence))
        )
        + "</figcaption></figure>"
        for p in draft.pages
    )
    originals = " · ".join(
        f'<a href="{PREFIX}/letters/{draft.id}/files/{i}">{escape(f.filename or str(i + 1))}</a>'
        for i, f in enumerate(draft.files)
    )
    uploaded = t("uploaded_by", lang, u=draft.created_by_name, t=when(draft.created_at))
    top = alert_box(alert) or (alert_box(t("errors", lang)) if errors else "")
    if saved and not top:
        top = alert_box(t("saved", lang), ok=True)
    if held:
        top += f'<p class="alert" role="status" id="held">{escape(held)}</p>'
    form = _review_form(
        ctx, draft.id, values, draft.fields, low, nik_region, errors, version, theirs,
        failed_hold, theirs_label,
    )
    body = (
        f'<h1>{t("review_title", lang)}: {escape(draft.label)}</h1>'
        f'<p class="note">{escape(uploaded)} · {t("original", lang)}: {originals}</p>'
        f'<p class="note">{t("review_help", lang)}</p>{top}'
        f'<div class="review"><section class="scans" aria-label="scan">{figures}</section>'
        f"<section>{form}</section></div>"
    )
    return page(ctx, t("review_title", lang), body)


def unsaved_page(
    ctx: Context,
    draft_id: str,
    values: Mapping[str, str],
    nik_region: str | None,
    version: str,
    failed_hold: str | None,
) -> str:
    """The review form given back with what was typed when the letter could not even be read
    from the database (the session or the draft): no scans, the fields as typed, and the form's
    ``based_on`` and ``failed_hold`` as they were sent, so sending it again is the same Save or
    Confirm."""
    lang = ctx.lang
    form = _review_form(
        ctx, draft_id, values, {}, frozenset(), nik_region, {}, version, None, failed_hold,
        keep=False,
    )
    body = (
        f'<h1>{t("review_title", lang)}</h1>{alert_box(t("unsaved", lang))}'
        f'<p class="note">{t("unsaved_pages", lang)}</p><section>{form}</section>'
    )
    return page(ctx, t("review_title", lang), body)


def _box(
    ctx: Context,
    name: str,
    values: Mapping[str, str],
    theirs: Mapping[str, str] | None,
    theirs_label: str,
) -> str:
    """A tick box of the review form, with the value saved meanwhile when it differs."""
    checked = " checked" if values.get(name) else ""
    return (
        f'<div class="check"><input type="checkbox" id="{name}" name="{name}" value="1"'
        f'{checked}> <label for="{name}">{t(name, ctx.lang)}</label>'
        f"{_theirs(ctx, name, theirs, theirs_label)}</div>"
    )


def _review_form(
    ctx: Context,
    draft_id: str,
    values: Mapping[str, str],
    fields: Mapping[str, FieldInfo],
    low: frozenset[str],
    nik_region: str | None,
    errors: Mapping[str, Message],
    version: str,
    theirs: Mapping[str, str] | None,
    failed_hold: str | None,
    theirs_label: str = "theirs",
    *,
    keep: bool = True,
) -> str:
    """The review form: every field with ``values``; ``keep``: staff.js keeps what is typed."""
    lang = ctx.lang
    first_error = next((n for n in (*TEXT_FIELDS, *CHOICE_FIELDS) if n in errors), None)
    region = (
        f'<p class="note" id="nik-region"><strong>{t("nik_region", lang)}:</strong> '
        f"{escape(nik_region)}</p>"
        if nik_region
        else ""
    )
    inputs = "".join(
        _field(
            ctx,
            name,
            values.get(name, ""),
            fields.get(name),
            name in low,
            errors.get(name),
            region if name == "nik" else "",
            focus=name == first_error,
            theirs=_theirs(ctx, name, theirs, theirs_label),
        )
        # Whether the NIK was checked against the KTP, right under it.
        + (_box(ctx, "nik_checked", values, theirs, theirs_label) if name == "nik" else "")
        for name in TEXT_FIELDS
    )
    chosen = values.get("kind") or "pengaduan"
    options = "".join(
        f'<option value="{k}"{" selected" if k == chosen else ""}>{t(k, lang)}</option>'
        for k in ("pengaduan", "aspirasi", "informasi")
    )
    kind_error = (
        f'<p class="err" id="kind-err">{escape(msg(errors["kind"], lang))}</p>'
        if "kind" in errors
        else ""
    )
    boxes = "".join(
        _box(ctx, n, values, theirs, theirs_label)
        for n in CHOICE_FIELDS
        if n not in ("kind", "nik_checked")  # under the NIK, above
    )
    # staff.js keeps what is typed in this tab until it is saved (a reload, a session that ran
    # out): per account and letter, dropped once the values it built on are saved over.
    # data-unsaved: the values shown are not the saved ones the form builds on (a 409, a 503
    # while saving): what was typed, so staff.js keeps them rather than put older ones back.
    kept = (
        f' data-draft="{draft_id}" data-user="{escape(ctx.staff.username if ctx.staff else "")}" '
        f'data-restored="{escape(t("restored", lang))}"'
        + (" data-unsaved" if values_version(values) != version else "")
        if keep
        else ""
    )
    # novalidate: the browser's own checks (type=email, maxlength on an OCR'd text already
    # longer) never block a Save, nor a Confirm or Enter: the server checks every field and
    # says what is wrong next to it, in the page's language. maxlength still stops typing.
    return (
        f'<form method="post" action="{PREFIX}/letters/{escape(draft_id)}" id="review-form"'
        f"{kept} novalidate>{csrf_input(ctx)}"
        f'<input type="hidden" name="{BASED_ON}" value="{escape(version)}">'
        + (
            f'<input type="hidden" name="{FAILED_HOLD}" value="{escape(failed_hold)}">'
            if failed_hold
            else ""
        )
        + f"{inputs}"
        f'<label for="kind">{t("kind", lang)}</label><select id="kind" name="kind"'
        f'{" autofocus" if first_error == "kind" else ""}>{options}'
        f"</select>{kind_error}{_theirs(ctx, 'kind', theirs, theirs_label)}{boxes}"
        f'<div class="actions"><button type="submit" name="action" value="save" '
        f'class="secondary" id="save">{t("save", lang)}</button>'
        f'<button type="submit" name="action" value="confirm" id="confirm">'
        f'{t("confirm", lang)}</button></div></form>'
    )


def waiting_page(ctx: Context, draft: Draft) -> str:
    """The review address of a letter that is still being read or could not be read."""
    lang = ctx.lang
    if draft.status is DraftStatus.FAILED:
        note = alert_box(t("failed_note", lang, e=error_text(draft.error, lang)))
        head = ""
    elif draft.status is DraftStatus.SET_ASIDE:
        note = alert_box(t("aside_note", lang, why=set_aside_reason(draft, lang)))
        head = ""
    else:
        note = f'<p>{t("reading_note", lang)} {escape(status_text(draft, lang))}</p>'
        head = '<noscript><meta http-equiv="refresh" content="2"></noscript>'
    body = (
        f'<h1>{t("review_title", lang)}: {escape(draft.label)}</h1>{note}'
        + drafts_table(ctx, [draft], show_by=False)
        + f'<p><a href="{PREFIX}/">{t("back", lang)}</a></p>'
    )
    reading = draft.status is DraftStatus.READING
    return page(ctx, t("review_title", lang), _polled(body, [draft], reading), head=head)


# ---- accounts ---------------------------------------------------------------------------------


def accounts_page(
    ctx: Context,
    accounts: Sequence[Account],
    now: datetime,
    alert: str | None = None,
    ok: bool = False,
    username: str = "",
) -> str:
    """Supervisors: every account, unlock/disable, and a form for a new one."""
    lang = ctx.lang

    def row(a: Account) -> str:
        locked = a.locked_until is not None and a.locked_until > now
        state = t("disabled", lang) if a.disabled else t("active", lang)
        if locked:
            state += " · " + t("locked", lang, t=when(a.locked_until))
        buttons = []
        if locked:
            buttons.append(("unlock", t("unlock", lang)))
        if ctx.staff is not None and a.id != ctx.staff.id:
            buttons.append(("enable", t("enable", lang)) if a.disabled else
                           ("disable", t("disable", lang)))
        forms = "".join(
            f'<form method="post" action="{PREFIX}/accounts/{a.id}/{action}" '
            f'style="display:inline">{csrf_input(ctx)}<button type="submit" class="secondary" '
            f'id="{action}-{escape(a.username)}">{label}</button></form> '
            for action, label in buttons
        )
        return (
            f'<tr><td>{escape(a.username)}</td><td>{t("role_" + a.role.value, lang)}</td>'
            f"<td>{escape(state)}</td><td>{when(a.last_login_at)}</td><td>{forms}</td></tr>"
        )

    roles = "".join(
        f'<option value="{r.value}">{t("role_" + r.value, lang)}</option>' for r in Role
    )
    body = (
        f'<h1>{t("accounts_title", lang)}</h1>{alert_box(alert, ok)}'
        f'<table id="accounts"><thead><tr><th>{t("username", lang)}</th>'
        f'<th>{t("col_role", lang)}</th><th>{t("col_state", lang)}</th>'
        f'<th>{t("col_last", lang)}</th><th></th></tr></thead><tbody>'
        + "".join(row(a) for a in accounts)
        + f'</tbody></table><h2>{t("new_account", lang)}</h2>'
        f'<form method="post" action="{PREFIX}/accounts" class="box" style="max-width:24rem">'
        f"{csrf_input(ctx)}"
        f'<label for="username">{t("username", lang)}</label>'
        f'<input type="text" id="username" name="username" value="{escape(username)}" '
        'autocomplete="off" required>'
        f'<label for="role">{t("role", lang)}</label><select id="role" name="role">{roles}</select>'
        f'<label for="password">{t("password", lang)}</label>'
        '<input type="password" id="password" name="password" autocomplete="new-password" required>'
        f'<label for="password2">{t("password2", lang)}</label>'
        '<input type="password" id="password2" name="password2" autocomplete="new-password" '
        f'required><div class="actions"><button type="submit">{t("create", lang)}</button></div>'
        "</form>"
    )
    return page(ctx, t("accounts_title", lang), body)


def message_page(ctx: Context, title: str, text: str) -> str:
    """A short page for refusals and errors (403, 404, 503)."""
    body = (
        f"<h1>{escape(title)}</h1>{alert_box(text)}"
        f'<p><a href="{PREFIX}/">{t("back", ctx.lang)}</a></p>'
    )
    return page(ctx, title, body)
