"""Server-rendered HTML of the citizen pages: the form, the receipt, the status check. Pure.

Plain HTML forms that work without JavaScript; a small inline stylesheet written for phones
first. Indonesian by default, English with ``?lang=en``. Every value shown is escaped.

The header's language switch is a link, except on the form: a link cannot carry what the citizen
typed, so there the header link leads to a submit button of the form itself (:data:`SWITCH`,
after the form's own submit button so that Enter still sends the report), which posts
everything to the other language's form and gets it back filled in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from html import escape
from typing import Literal
from urllib.parse import urlencode

from channels.fields import Message
from channels.web.form import LIMITS, MIN_BODY
from channels.web.kept import FIELD as KEPT_FIELD
from channels.web.kept import size_text

Lang = Literal["id", "en"]
# The form's language switch: the name of its button, and the query parameter of the address it
# posts to (known before the body is read, see channels.web.routes).
SWITCH = "ganti_bahasa"
RECEIPT_PATH = "/tanda-terima"  # the receipt again, in the other language (a post: see routes)
ADD_PATH = "/tambah"  # the page that adds information to a report (its follow-up code typed)
SWITCH_ID = "ganti-bahasa"
# File names the note after a language switch lists at most.
MAX_NAMES = 10

T: Mapping[str, tuple[str, str]] = {
    "site": ("LAPOR! — Layanan Aspirasi dan Pengaduan Online Rakyat",
             "LAPOR! — Indonesia's public complaint service"),
    "form_title": ("Sampaikan Laporan Anda", "Submit your report"),
    "hoax": (
        "Perhatian: sampaikan laporan yang benar. Laporan palsu atau hoaks dapat dikenai sanksi "
        "sesuai peraturan perundang-undangan (UU ITE). Laporan yang tidak dapat "
        "diverifikasi akan diarsipkan.",
        "Please report only what is true. False reports and hoaxes may be punished under "
        "Indonesian law (the ITE Law). Reports that cannot be verified are archived.",
    ),
    "judul": ("Judul laporan (wajib)", "Title (required)"),
    "isi": (f"Isi laporan (wajib, paling sedikit {MIN_BODY} karakter)",
            f"What happened (required, at least {MIN_BODY} characters)"),
    "klasifikasi": ("Klasifikasi", "Classification"),
    "pengaduan": ("Pengaduan", "Complaint"),
    "aspirasi": ("Aspirasi", "Aspiration"),
    "permintaan-informasi": ("Permintaan informasi", "Request for information"),
    "tanggal": ("Tanggal kejadian (tidak wajib)", "Date it happened (optional)"),
    "lokasi": ("Lokasi kejadian (tidak wajib)", "Where it happened (optional)"),
    "instansi": ("Instansi tujuan (tidak wajib)", "Agency concerned (optional)"),
    "lampiran": ("Lampiran (tidak wajib): foto JPEG/PNG atau PDF, boleh lebih dari satu",
                 "Attachments (optional): JPEG/PNG photos or PDF, several allowed"),
    "lampiran_limits": ("paling banyak {n} berkas, masing-masing paling besar {size}",
                        "at most {n} files of at most {size} each"),
    "identity": ("Identitas pelapor", "About you"),
    "nama": ("Nama lengkap (wajib, kecuali Anda memilih Anonim)",
             "Full name (required, unless you choose Anonymous)"),
    "nik": ("NIK (16 angka, tidak wajib)", "NIK, national ID number (16 digits, optional)"),
    "kontak": ("Isi nomor HP atau e-mail (paling sedikit salah satu) agar kami dapat "
               "mengabarkan tindak lanjut laporan Anda.",
               "Give a mobile number or an e-mail address (at least one) so that we can tell "
               "you what happens to your report."),
    "hp": ("Nomor HP", "Mobile number"),
    "email": ("E-mail", "E-mail"),
    "anonim": ("Anonim: identitas saya tidak ditampilkan kepada instansi",
               "Anonymous: the agency does not see who I am"),
    "anonim_note": ("Nama, NIK, nomor HP dan e-mail Anda tidak diperlihatkan kepada instansi; "
                    "admin LAPOR! tetap dapat menghubungi Anda. Jika dicentang, nama boleh "
                    "dikosongkan.",
                    "Your name, NIK, phone number and e-mail are not shown to the agency; LAPOR! "
                    "administrators can still contact you. When ticked, you may leave your name "
                    "empty."),
    "rahasia": ("Rahasia: isi laporan tidak dipublikasikan",
                "Confidential: the report is never published"),
    "rahasia_note": ("Isi laporan Anda tidak ditampilkan kepada umum. Instansi yang "
                     "menanganinya tetap dapat membacanya.",
                     "Your report is not shown to the public. The agency handling it can still "
                     "read it."),
    "submit": ("Kirim laporan", "Send report"),
    "not_sent": ("Laporan belum terkirim", "Report not sent"),
    # The date as a browser without a date picker (Opera Mini) lets it be typed: day first.
    "date_format": ("HH/BB/TTTT", "DD/MM/YYYY"),
    "errors": ("Periksa kembali isian yang ditandai:", "Please check the marked fields:"),
    "receipt_title": ("Laporan Anda telah diterima", "Your report has been received"),
    "your_id": ("Nomor pelacakan Anda", "Your tracking ID"),
    "keep_id": ("Simpan nomor ini untuk memantau laporan Anda.",
                "Keep this number to follow your report."),
    "your_code": ("Kode tambahan", "Follow-up code"),
    "keep_code": (
        "Dengan nomor dan kode ini Anda dapat menambah informasi ke laporan ini nanti. "
        "Jangan berikan kode ini kepada orang lain.",
        "With the number and this code you can add information to this report later. "
        "Do not give the code to anyone.",
    ),
    "add_link": ("Tambah informasi", "Add information"),
    "add_title": ("Tambah informasi ke laporan", "Add information to a report"),
    "add_intro": (
        "Ketik nomor pelacakan dan kode tambahan dari tanda terima laporan Anda (formulir web, "
        "aplikasi, atau surat di loket). Informasi ini ditambahkan ke laporan tersebut dan "
        "diteruskan bersama laporan itu.",
        "Type the tracking ID and the follow-up code from your report's receipt (the web form, "
        "an app, or a letter at the counter). The information is added to that report and "
        "goes with it.",
    ),
    "add_other": (
        "Melapor lewat SMS, e-mail, Telegram atau Twitter? Tidak perlu kode: kirim pesan yang "
        "menyebut nomor pelacakan dari nomor atau akun yang sama, misalnya SMS ke {code}: "
        "Laporan K7QM-4XRTX lubangnya makin besar.",
        "Reported by SMS, e-mail, Telegram or Twitter? No code needed: send a message naming "
        "the tracking ID from the same number or account, e.g. an SMS to {code}: "
        "Laporan K7QM-4XRTX lubangnya makin besar.",
    ),
    "nomor": ("Nomor pelacakan", "Tracking ID"),
    "kode": ("Kode tambahan", "Follow-up code"),
    "tambahan": ("Informasi tambahan", "Additional information"),
    "rahasia_add": ("Rahasiakan isi laporan ini", "Keep this report's content confidential"),
    "add_button": ("Kirim tambahan", "Send"),
    "add_wrong": (
        "Nomor pelacakan atau kode tambahan tidak cocok. Periksa tanda terima Anda.",
        "The tracking ID or the follow-up code does not match. Check your receipt.",
    ),
    "add_empty": ("Informasi tambahan wajib diisi.", "Type the information."),
    "add_long": ("Paling banyak {n} karakter.", "At most {n} characters."),
    "add_later": (
        "Laporan ini masih diperiksa petugas dan belum dapat ditambah. Coba lagi nanti; "
        "yang Anda ketik tetap di sini.",
        "This report is still being checked by an officer and cannot take additions yet. Try "
        "again later; what you typed is kept here.",
    ),
    "added_title": ("Informasi tambahan diterima", "Additional information received"),
    "added_text": (
        "Informasi Anda sudah ditambahkan ke laporan berikut dan diteruskan bersamanya.",
        "Your information was added to this report and goes with it.",
    ),
    "next": ("Apa selanjutnya?", "What happens next?"),
    "next_verify": (
        "Admin LAPOR! memverifikasi laporan Anda dalam 3 hari kerja, lalu meneruskannya kepada "
        "instansi yang berwenang.",
        "A LAPOR! administrator verifies your report within 3 working days and passes it to the "
        "agency in charge.",
    ),
    "next_follow": (
        "Pantau status laporan di halaman Cek Status atau kirim SMS CEK {id} ke {code}.",
        "Follow its status on the Check Status page or by sending the SMS CEK {id} to {code}.",
    ),
    "check_title": ("Cek Status Laporan", "Check a report's status"),
    "check_label": ("Nomor pelacakan", "Tracking ID"),
    "check_button": ("Cek", "Check"),
    "not_found": ("Nomor pelacakan tidak ditemukan. Periksa kembali nomor Anda.",
                  "Tracking ID not found. Please check the number."),
    "status": ("Status", "Status"),
    "received_at": ("Diterima", "Received"),
    "kind": ("Klasifikasi", "Classification"),
    "updated_at": ("Diperbarui", "Updated"),
    "agency": ("Instansi", "Agency"),
    "new_report": ("Buat laporan baru", "Make another report"),
    "check_link": ("Cek status laporan", "Check a report's status"),
    "switch": ("English", "Bahasa Indonesia"),
    # Labels of the form's language switch: written in the language it switches to.
    "receipt_gone": (
        "Tanda terima ini tidak dapat ditampilkan lagi. Laporan Anda sudah diterima: pantau "
        "dengan nomor pelacakannya di sini.",
        "This receipt can no longer be shown. Your report was received: follow it with its "
        "tracking ID here.",
    ),
    "switch_receipt": ("Show this receipt in English",
                       "Tampilkan tanda terima ini dalam Bahasa Indonesia"),
    "switch_form": ("Show this form in English (what you typed is kept)",
                    "Tampilkan formulir ini dalam Bahasa Indonesia (isian Anda tidak hilang)"),
    "switch_files": ("Lampiran yang Anda pilih belum terkirim: {names}. Pilih lagi sebelum "
                     "mengirim laporan.",
                     "The attachments you chose were not sent: {names}. Choose them again "
                     "before sending the report."),
    "unavailable": ("Layanan sedang sibuk. Coba lagi beberapa saat lagi.",
                    "The service is busy. Please try again in a moment."),
    "expired": ("Formulir kedaluwarsa atau tidak sah. Silakan kirim ulang.",
                "The form expired or is not valid. Please send it again."),
    "reattach": ("Isian Anda yang lain tetap terisi; pilih lagi lampiran yang sesuai.",
                 "Everything else you typed is still filled in; choose fitting attachments again."),
    "too_long": ("Teks ini terlalu panjang sehingga tidak diterima; persingkat, lalu isi lagi.",
                 "This text is too long and was not taken; shorten it and fill it in again."),
    "too_many": ("Terlalu banyak permintaan. Coba lagi dalam {n} detik.",
                 "Too many requests. Try again in {n} seconds."),
    "kept_legend": ("Lampiran yang sudah terkirim", "Attachments already received"),
    "kept_note": ("Tidak perlu diunggah lagi. Hapus centang untuk tidak menyertakannya.",
                  "No need to upload them again. Untick one to leave it out."),
    "kept_lost": ("{n} lampiran yang sudah terkirim tidak dapat disertakan lagi (kedaluwarsa).",
                  "{n} attachment(s) received earlier can no longer be included (expired)."),
    "kept_too_many": ("Paling banyak {n} lampiran; hapus centang yang tidak perlu.",
                      "At most {n} attachments; untick the ones you do not need."),
}
KIND_LABEL = {"pengaduan": "pengaduan", "aspirasi": "aspirasi", "informasi": "permintaan-informasi"}

CSS = """
*{box-sizing:border-box}body{margin:0;font:16px/1.5 system-ui,sans-serif;color:#1a1a1a;
background:#f4f5f7;overflow-wrap:break-word}header{background:#b71c1c;color:#fff;
padding:.25rem 1rem;display:flex;
justify-content:space-between;align-items:center}header a{color:#fff}main{max-width:40rem;
margin:0 auto;padding:1rem}h1{font-size:1.35rem}label{display:block;font-weight:600;
margin:.9rem 0 .25rem}input[type=text],input[type=email],input[type=tel],input[type=date],
select,textarea{width:100%;min-height:2.75rem;padding:.6rem;font-size:1rem;border:1px solid #888;
border-radius:4px}textarea{min-height:8rem}
header a,.nav a{display:inline-block;min-height:2.75rem;padding:.6rem 0}
.alert li a{display:block;min-height:2.75rem;padding:.6rem 0}
input[type=file]{width:100%;min-height:2.75rem;font-size:1rem}
input[type=file]::file-selector-button{min-height:2.75rem;padding:0 .8rem;font-size:1rem}
.check{display:flex;align-items:flex-start;gap:.6rem;margin:.3rem 0}
.check input{flex:none;width:1.5rem;height:1.5rem;margin:.6rem 0}.check label{flex:1;
min-width:0;font-weight:400;margin:0;padding:.6rem 0;min-height:2.75rem}
.check+.note{margin:0 0 .6rem 2.1rem}#kontak-note{margin-top:1rem}
.err{color:#b00020;font-size:.9rem;margin:.2rem 0}.invalid{border-color:#b00020!important}
.hoax{background:#fff4e5;border-left:4px solid #e65100;padding:.6rem .8rem}
.alert{background:#fdecea;border-left:4px solid #b00020;padding:.6rem .8rem}
.alert p{margin:0}.alert ul{margin:.2rem 0 0;padding-left:1.2rem}
button{margin-top:1.2rem;width:100%;padding:.8rem;font-size:1.1rem;background:#b71c1c;
color:#fff;border:0;border-radius:4px}button.lang{margin-top:.75rem;font-size:1rem;
background:#fff;color:#b71c1c;border:2px solid #b71c1c}.sms{white-space:nowrap}
.hint{background:#fff4e5;border-left:4px solid #e65100;padding:.4rem .6rem;font-size:.9rem}
.tid{font:700 2.4rem/1.2 ui-monospace,monospace;
letter-spacing:.08em;background:#fff;border:2px dashed #b71c1c;padding:1rem;text-align:center;
white-space:nowrap;-webkit-user-select:all;user-select:all}.code{font:700 1.4rem ui-monospace,
monospace;letter-spacing:.08em;white-space:nowrap;-webkit-user-select:all;user-select:all}
fieldset{border:1px solid #ccc;border-radius:4px;margin-top:1rem;min-width:0}.note{font-size:.9rem;
color:#444;margin:.2rem 0}dl{background:#fff;
padding:1rem}dt{font-weight:600}
@media (max-width:23rem){.tid{font-size:9vw}}@media (min-width:48rem){body{font-size:17px}}
"""


def t(key: str, lang: Lang, **fmt: object) -> str:
    """The text ``key`` in ``lang``."""
    text = T[key][0 if lang == "id" else 1]
    return text.format(**fmt) if fmt else text


def both(key: str, **fmt: object) -> Message:
    """The text ``key`` in Indonesian and in English."""
    return t(key, "id", **fmt), t(key, "en", **fmt)


def msg(message: Message, lang: Lang) -> str:
    """One (Indonesian, English) message in ``lang``."""
    return message[0] if lang == "id" else message[1]


def _q(lang: Lang) -> str:
    return "?lang=en" if lang == "en" else ""


def _other(lang: Lang) -> Lang:
    return "id" if lang == "en" else "en"


def page(title: str, body: str, lang: Lang, switch_to: str | None) -> str:
    """A whole HTML document around ``body``; the header links to ``switch_to`` in the other
    language, or (None) to the language switch of the form in ``body``."""
    other = _other(lang)
    if switch_to is None:  # the same page: no hreflang
        target = f'href="#{SWITCH_ID}"'
    else:
        target = f'href="{escape(switch_to)}" hreflang="{other}"'
    return (
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>"
        f'<header><strong>LAPOR!</strong><a {target} lang="{other}">{t("switch", lang)}</a>'
        f"</header><main>{body}</main></body></html>"
    )


def _invalid(name: str, err: Message | None, notes: Sequence[str] = ()) -> str:
    """A wrong field's marks: red, invalid, and its message (``{name}-err``) read with it, then
    the ``notes`` (ids of texts that explain the field) that are read with it always."""
    described = " ".join([f"{name}-err"] * bool(err) + list(notes))
    return (' class="invalid" aria-invalid="true"' if err else "") + (
        f' aria-describedby="{described}"' if described else ""
    )


def _input(
    name: str, kind: str, lang: Lang, values: Mapping[str, str],
    errors: Mapping[str, Message], extra: str = "", notes: Sequence[str] = (),
) -> str:
    err = errors.get(name)
    if name in LIMITS:  # the browser stops at the length the form's validation allows
        extra = f' maxlength="{LIMITS[name]}"{extra}'
    marks = _invalid(name, err, notes)
    field = (
        f'<textarea id="{name}" name="{name}"{marks}{extra}>'
        f"{escape(values.get(name, ''))}</textarea>"
        if kind == "textarea"
        else f'<input type="{kind}" id="{name}" name="{name}" '
        f'value="{escape(values.get(name, ""))}"{marks}{extra}>'
    )
    note = f'<p class="err" id="{name}-err">{escape(msg(err, lang))}</p>' if err else ""
    return f'<label for="{name}">{t(name, lang)}</label>{field}{note}'


def form_page(
    lang: Lang,
    csrf_token: str,
    values: Mapping[str, str] | None = None,
    errors: Mapping[str, Message] | None = None,
    alert: str | None = None,
    kept: Sequence[tuple[str, str]] = (),
    *,
    today: date | None = None,
    reattach: Sequence[str] = (),
    max_files: int | None = None,
    max_file_size: int | None = None,
) -> str:
    """The citizen form, with the typed values and a message next to each wrong field.

    ``kept`` are the files an earlier post already delivered, as (token, label): ticked
    checkboxes, so that they are sent again without being uploaded again. ``today`` is the
    latest date the date it happened may be (the date input's ``max``); ``reattach`` names the
    files chosen before a language switch, which were not taken and must be chosen again.
    ``max_files`` and ``max_file_size`` (bytes), when given, are told by the attachment field,
    so that nobody sends a photo over a slow connection only to have it refused.
    """
    values = values or {}
    errors = errors or {}
    chosen = values.get("klasifikasi", "pengaduan")
    options = "".join(
        f'<option value="{v}"{" selected" if v == chosen else ""}>{t(v, lang)}</option>'
        for v in ("pengaduan", "aspirasi", "permintaan-informasi")
    )
    k_err = errors.get("klasifikasi")
    l_err = errors.get("lampiran")
    l_note = ""
    if reattach:
        more = len(reattach) - MAX_NAMES
        names = ", ".join(reattach[:MAX_NAMES]) + (f" (+{more})" if more > 0 else "")
        l_note = (
            f'<p class="note hint" id="lampiran-note">'
            f'{escape(t("switch_files", lang, names=names))}</p>'
        )
    l_marks = _invalid("lampiran", l_err, ["lampiran-note"] if l_note else [])
    switch = _switch_button(lang)

    def box(name: str) -> str:
        # What the choice means, in plain words, under the box and read with it.
        checked = " checked" if values.get(name) else ""
        return (
            f'<div class="check"><input type="checkbox" aria-describedby="{name}-note" '
            f'id="{name}" name="{name}" value="1"{checked}> '
            f'<label for="{name}">{t(name, lang)}</label></div>'
            f'<p class="note" id="{name}-note">{t(f"{name}_note", lang)}</p>'
        )

    top = f'<p class="alert" role="alert">{escape(alert)}</p>' if alert else ""
    top += _summary(errors, lang, role="" if alert else ' role="alert"')
    body = (
        f'<h1>{t("form_title", lang)}</h1><p class="hoax" role="note">{t("hoax", lang)}</p>{top}'
        f'<form method="post" action="/{_q(lang)}" enctype="multipart/form-data" novalidate>'
        f'<input type="hidden" name="csrf" value="{escape(csrf_token)}">'
        + _input("judul", "text", lang, values, errors, " required")
        + _input("isi", "textarea", lang, values, errors, " required")
        + f'<label for="klasifikasi">{t("klasifikasi", lang)}</label>'
        f'<select id="klasifikasi" name="klasifikasi"{_invalid("klasifikasi", k_err)}>'
        f"{options}</select>"
        + (f'<p class="err" id="klasifikasi-err">{escape(msg(k_err, lang))}</p>' if k_err else "")
        + _input("tanggal", "date", lang, values, errors,
                 (f' max="{today.isoformat()}"' if today else "")
                 + f' placeholder="{t("date_format", lang)}"')
        + _input("lokasi", "text", lang, values, errors)
        + _input("instansi", "text", lang, values, errors)
        + _kept(kept, lang)
        + f'<label for="lampiran">{_attachment_label(lang, max_files, max_file_size)}</label>'
        '<input type="file" id="lampiran" name="lampiran" multiple '
        f'accept="image/jpeg,image/png,application/pdf"{l_marks}>'
        + (f'<p class="err" id="lampiran-err">{escape(msg(l_err, lang))}</p>' if l_err else "")
        + l_note
        + f'<fieldset><legend>{t("identity", lang)}</legend>'
        + _input("nama", "text", lang, values, errors, ' autocomplete="name"')
        + _input("nik", "text", lang, values, errors, ' inputmode="numeric"')
        # One of the two is required: said before them, and read with each.
        + f'<p class="note" id="kontak-note">{t("kontak", lang)}</p>'
        + _input("hp", "tel", lang, values, errors, ' autocomplete="tel"', ["kontak-note"])
        + _input("email", "email", lang, values, errors, ' autocomplete="email"',
                 ["kontak-note"])
        + box("anonim")
        + box("rahasia")
        + f'</fieldset><button type="submit">{t("submit", lang)}</button>{switch}</form>'
        f'<p class="nav"><a href="/cek{_q(lang)}">{t("check_link", lang)}</a></p>'
    )
    # The page's title is the first thing a screen reader says of it: a form sent back says it
    # was not sent before anything else.
    title = f'{t("not_sent", lang)} — {t("site", lang)}' if alert or errors else t("site", lang)
    return page(title, body, lang, None)


# The fields in the order the form shows them, with the name the error summary gives each.
SUMMARY_NAMES: Mapping[str, tuple[str, str]] = {
    "judul": ("Judul laporan", "Title"),
    "isi": ("Isi laporan", "What happened"),
    "klasifikasi": ("Klasifikasi", "Classification"),
    "tanggal": ("Tanggal kejadian", "Date it happened"),
    "lokasi": ("Lokasi kejadian", "Where it happened"),
    "instansi": ("Instansi tujuan", "Agency concerned"),
    "lampiran": ("Lampiran", "Attachments"),
    "nama": ("Nama lengkap", "Full name"),
    "nik": ("NIK", "NIK"),
    "hp": ("Nomor HP", "Mobile number"),
    "email": ("E-mail", "E-mail"),
}


def _summary(errors: Mapping[str, Message], lang: Lang, role: str) -> str:
    """The list of what is wrong, on top of the form: each message a link to its field, so a
    citizen at the top of a long page (or a screen reader) finds every one of them."""
    if not errors:
        return ""
    order = [n for n in SUMMARY_NAMES if n in errors]
    order += [n for n in errors if n not in SUMMARY_NAMES]
    items = "".join(
        f'<li><a href="#{escape(name)}">'
        f"{escape(msg(SUMMARY_NAMES.get(name, (name, name)), lang))}: "
        f"{escape(msg(errors[name], lang))}</a></li>"
        for name in order
    )
    return (
        f'<div class="alert" id="error-summary"{role}><p>{t("errors", lang)}</p>'
        f"<ul>{items}</ul></div>"
    )


def _attachment_label(lang: Lang, max_files: int | None, max_file_size: int | None) -> str:
    """The attachment field's label, with the limits when they are known."""
    label = t("lampiran", lang)
    if max_files is None or max_file_size is None:
        return label
    size = size_text(max_file_size, lang)
    return f'{label}; {t("lampiran_limits", lang, n=max_files, size=size)}'


def _switch_action(target: Lang, path: str = "/") -> str:
    """Where a form's language switch posts: the form (at ``path``) in ``target``, marked as a
    switch."""
    return f"{path}?lang=en&{SWITCH}=1" if target == "en" else f"{path}?{SWITCH}=1"


def _switch_button(lang: Lang, path: str = "/") -> str:
    """The button that shows the form at ``path`` in the other language, what was typed kept
    (the header's language link leads to it)."""
    other = _other(lang)
    return (
        f'<button type="submit" id="{SWITCH_ID}" class="lang" name="{SWITCH}" value="{other}" '
        f'formaction="{escape(_switch_action(other, path))}" formnovalidate lang="{other}">'
        f'{t("switch_form", lang)}</button>'
    )


def _kept(kept: Sequence[tuple[str, str]], lang: Lang) -> str:
    if not kept:
        return ""
    boxes = "".join(
        f'<div class="check"><input type="checkbox" id="kept-{i}" name="{KEPT_FIELD}" '
        f'value="{escape(token)}" checked> <label for="kept-{i}">{escape(label)}</label></div>'
        for i, (token, label) in enumerate(kept)
    )
    return (
        f'<fieldset id="kept"><legend>{t("kept_legend", lang)}</legend>{boxes}'
        f'<p class="note">{t("kept_note", lang)}</p></fieldset>'
    )


def _follow(lang: Lang, tracking_display: str, short_code: str) -> str:
    """How to follow the report, the SMS to send kept on one line (a phone breaks the ID)."""
    command = escape(f"CEK {tracking_display}")
    text = escape(t("next_follow", lang, id=tracking_display, code=short_code))
    return text.replace(command, f'<strong class="sms">{command}</strong>', 1)


def receipt_page(
    lang: Lang,
    tracking_display: str,
    short_code: str,
    followup_code: str | None = None,
    switch_token: str | None = None,
) -> str:
    """The receipt: the tracking ID, large, and what happens next (the SMS ``CEK`` to send to
    ``short_code``, the number citizens text); with ``followup_code`` (displayed), the code
    that adds to the report later, and the page where it is typed. With ``switch_token`` (the
    form's CSRF token) the language switch posts it back for this receipt in the other
    language; without, it leads to the report's status page (no code there)."""
    code = ""
    if followup_code is not None:
        more = _add_url(lang, tracking_display)
        code = (
            f'<p>{t("your_code", lang)}: <strong class="code" id="followup-code">'
            f'{escape(followup_code)}</strong></p>'
            f'<p>{t("keep_code", lang)}</p>'
            f'<p class="nav"><a href="{escape(more)}">{t("add_link", lang)}</a></p>'
        )
    body = (
        f'<h1>{t("receipt_title", lang)}</h1><p>{t("your_id", lang)}:</p>'
        f'<p class="tid" id="tracking-id">{escape(tracking_display)}</p>'
        f'<p>{t("keep_id", lang)}</p>{code}<h2>{t("next", lang)}</h2><ol>'
        f'<li>{t("next_verify", lang)}</li>'
        f"<li>{_follow(lang, tracking_display, short_code)}</li></ol>"
        f'<p class="nav"><a href="{escape(_check_url(lang, tracking_display))}">'
        f'{t("check_link", lang)}</a> · <a href="/{_q(lang)}">{t("new_report", lang)}</a></p>'
    )
    if switch_token is not None:
        # The receipt is the answer to a post and cannot be fetched again: its switch posts
        # the form's token back for the same receipt in the other language (the header's
        # link leads to this button).
        other = _other(lang)
        body += (
            f'<form method="post" action="{RECEIPT_PATH}{_q(other)}">'
            f'<input type="hidden" name="csrf" value="{escape(switch_token)}">'
            f'<button type="submit" id="{SWITCH_ID}" class="lang" lang="{other}">'
            f'{t("switch_receipt", lang)}</button></form>'
        )
        return page(t("receipt_title", lang), body, lang, None)
    # Without the form's token, the other language is the status page of the same report,
    # which shows its tracking ID (the empty form would take it off the screen).
    return page(t("receipt_title", lang), body, lang, _check_url(_other(lang), tracking_display))


def add_page(
    lang: Lang,
    csrf_token: str,
    values: Mapping[str, str] | None = None,
    errors: Mapping[str, Message] | None = None,
    alert: str | None = None,
    short_code: str = "1708",
) -> str:
    """The page that adds information to a report: its tracking ID and follow-up code (from
    the receipt), and the text; a message next to each wrong field, what was typed kept. It
    says how a report sent by SMS or from an account is added to instead (no code: the
    number ``short_code`` or the account holds the ID)."""
    values = values or {}
    errors = errors or {}
    top = f'<p class="alert" role="alert">{escape(alert)}</p>' if alert else ""
    checked = " checked" if values.get("rahasia") else ""
    body = (
        f'<h1>{t("add_title", lang)}</h1><p>{t("add_intro", lang)}</p>'
        f'<p class="note">{escape(t("add_other", lang, code=short_code))}</p>{top}'
        f'<form method="post" action="{ADD_PATH}{_q(lang)}" novalidate>'
        f'<input type="hidden" name="csrf" value="{escape(csrf_token)}">'
        + _input("nomor", "text", lang, values, errors,
                 ' required autocapitalize="characters" placeholder="K7QM-4XRT9"')
        + _input("kode", "text", lang, values, errors,
                 ' required autocapitalize="characters" autocomplete="off" '
                 'placeholder="ABCD-EFGH"')
        + _input("tambahan", "textarea", lang, values, errors, " required")
        + f'<div class="check"><input type="checkbox" id="rahasia" name="rahasia" value="1"'
        f'{checked}> <label for="rahasia">{t("rahasia_add", lang)}</label></div>'
        f'<button type="submit">{t("add_button", lang)}</button>'
        f"{_switch_button(lang, ADD_PATH)}</form>"
        f'<p class="nav"><a href="/cek{_q(lang)}">{t("check_link", lang)}</a> · '
        f'<a href="/{_q(lang)}">{t("new_report", lang)}</a></p>'
    )
    return page(t("add_title", lang), body, lang, None)


def added_page(lang: Lang, tracking_display: str) -> str:
    """The answer to information added to a report: the report's tracking ID, and its status
    page."""
    body = (
        f'<h1>{t("added_title", lang)}</h1><p>{t("added_text", lang)}</p>'
        f'<p class="tid" id="tracking-id">{escape(tracking_display)}</p>'
        f'<p class="nav"><a href="{escape(_check_url(lang, tracking_display))}">'
        f'{t("check_link", lang)}</a> · <a href="{escape(_add_url(lang, tracking_display))}">'
        f'{t("add_link", lang)}</a></p>'
    )
    return page(t("added_title", lang), body, lang, _check_url(_other(lang), tracking_display))


def _check_url(lang: Lang, tracking_display: str, path: str = "/cek") -> str:
    """The status page of one report, in ``lang`` (or the page at ``path`` for it)."""
    query = {"lang": "en", "id": tracking_display} if lang == "en" else {"id": tracking_display}
    return f"{path}?{urlencode(query)}"


def _add_url(lang: Lang, tracking_display: str) -> str:
    """The page that adds information to one report, in ``lang``."""
    return _check_url(lang, tracking_display, ADD_PATH)


# The routing core's statuses (contract/complaint-status.v1.schema.json) as the status page
# says them; another word is shown as it came.
STATUS_LABELS: dict[str, tuple[str, str]] = {
    "received": ("Diterima, menunggu verifikasi", "Received, waiting for verification"),
    "verified": ("Terverifikasi", "Verified"),
    "forwarded": ("Diteruskan ke instansi", "Forwarded to the agency"),
    "in_progress": ("Sedang ditindaklanjuti", "Being followed up"),
    "resolved": ("Selesai", "Resolved"),
    "selesai": ("Selesai", "Resolved"),
    "closed": ("Ditutup", "Closed"),
    "archived": ("Diarsipkan", "Archived"),
    "rejected": ("Ditolak", "Rejected"),
}


def status_label(status: str, lang: Lang) -> str:
    """A status as the status page shows it."""
    label = STATUS_LABELS.get(status)
    if label is None:
        return status
    return label[0] if lang == "id" else label[1]


def check_page(
    lang: Lang,
    typed: str = "",
    result: Mapping[str, str] | None = None,
    not_found: bool = False,
    alert: str | None = None,
) -> str:
    """The status check: a form, and the status and dates when the ID was found."""
    out = ""
    if alert:
        out = f'<p class="alert" role="alert">{escape(alert)}</p>'
    elif not_found:
        out = f'<p class="alert" role="alert" id="not-found">{t("not_found", lang)}</p>'
    elif result is not None:
        out = (
            f'<dl id="result"><dt>{t("check_label", lang)}</dt><dd>{escape(result["id"])}</dd>'
            f'<dt>{t("status", lang)}</dt><dd id="status">{escape(result["status"])}</dd>'
            f'<dt>{t("received_at", lang)}</dt><dd>{escape(result["received_at"])}</dd>'
            + "".join(
                f'<dt>{t(key, lang)}</dt><dd id="{key}">{escape(result[key])}</dd>'
                for key in ("updated_at", "agency")
                if key in result
            )
            + f'<dt>{t("kind", lang)}</dt><dd>{escape(result["kind"])}</dd></dl>'
            # Its holder (the follow-up code of the receipt in hand) may add to it.
            + f'<p class="nav"><a href="{escape(_add_url(lang, result["id"]))}">'
            f'{t("add_link", lang)}</a></p>'
        )
    lang_field = '<input type="hidden" name="lang" value="en">' if lang == "en" else ""
    # An ID not found is the field's error: marked on it and read with it.
    marks = ""
    if not_found and not alert:
        marks = ' class="invalid" aria-invalid="true" aria-describedby="not-found"'
    body = (
        f'<h1>{t("check_title", lang)}</h1><form method="get" action="/cek">{lang_field}'
        f'<label for="id">{t("check_label", lang)}</label>'
        f'<input type="text" id="id" name="id" value="{escape(typed)}" '
        f'autocapitalize="characters" placeholder="K7QM-4XRT9"{marks}>'
        f'<button type="submit">{t("check_button", lang)}</button></form>{out}'
        f'<p class="nav"><a href="/{_q(lang)}">{t("new_report", lang)}</a></p>'
    )
    # The other language keeps the ID typed (a link cannot carry what the form holds).
    switch_to = "/cek" if lang == "en" else "/cek?lang=en"
    if typed:
        switch_to += f'{"?" if lang == "en" else "&"}{urlencode({"id": typed})}'
    return page(t("check_title", lang), body, lang, switch_to)
