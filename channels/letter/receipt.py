"""The citizen's receipt for a letter: a printable page with the tracking ID and a QR code. Pure.

The clerk prints it on whatever the desk has: A4 or A5 paper, or an 80 mm (or 58 mm) receipt
roll. The print stylesheet drops the staff header and buttons and sets no paper size, so the
printer's paper is used as it is, never the receipt shrunk onto it: at widths up to 110 mm the
receipt is laid out for a roll (smaller type, the QR code above the instructions), and the
tracking ID, the QR code (at least 30 mm) and the text stay legible on each. It says, in
Indonesian (English on request): the tracking ID, large, grouped as printed everywhere (four
symbols, a dash, five); when the letter was received, in WIB like the status page; a QR code
of the status page ``<public_base_url>/cek?id=<ID>`` (SVG drawn by the ``qrcode`` library, no
image library needed); and how to follow the report: the SMS ``CEK <ID>`` to the short code,
the web status page, and what happens next (verification within 3 working days).

The receipt is the citizen's, so its language is not the clerk's: it prints in Indonesian
whatever language the staff pages are shown in, and in English when the clerk asks for it with
the switch below it (``?receipt_lang=en``); the controls around it stay in the clerk's language.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape
from urllib.parse import quote

import qrcode
import qrcode.image.svg

from channels.dates import WIB
from channels.letter.pages import PREFIX, Context, Lang, alert_box, page
from gateway import tracking

T = {
    "title": ("Tanda Terima Laporan", "Report receipt"),
    "intro": (
        "Surat Anda telah diterima dan dicatat di LAPOR! (Layanan Aspirasi dan Pengaduan "
        "Online Rakyat).",
        "Your letter has been received and registered with LAPOR!, Indonesia's public "
        "complaint service.",
    ),
    "your_id": ("Nomor pelacakan", "Tracking ID"),
    "keep": ("Simpan tanda terima ini untuk memantau laporan Anda.",
             "Keep this receipt to follow your report."),
    "duplicate": (
        "Laporan ini digabungkan dengan laporan Anda sebelumnya yang bernomor di atas.",
        "This report was joined to your earlier report with the number above.",
    ),
    "followup": (
        "Surat ini ditambahkan ke laporan Anda sebelumnya yang bernomor di atas.",
        "This letter was added to your earlier report with the number above.",
    ),
    "received": ("Diterima", "Received"),
    "subject": ("Perihal", "Subject"),
    "pages": ("Jumlah halaman", "Pages"),
    "clerk": ("Petugas", "Clerk"),
    "follow": ("Cara memantau laporan", "How to follow your report"),
    "follow_sms": ("Kirim SMS <strong>CEK {id}</strong> ke <strong>{code}</strong>.",
                   "Send the SMS <strong>CEK {id}</strong> to <strong>{code}</strong>."),
    "add": ("Tambah informasi di <strong>{url}</strong> dengan kode tambahan",
            "Add information at <strong>{url}</strong> with the follow-up code"),
    "add_keep": ("(rahasiakan).", "(keep it private)."),
    "follow_web": ("Buka <strong>{url}</strong> lalu masukkan nomor pelacakan, atau pindai "
                   "kode QR ini.",
                   "Open <strong>{url}</strong> and type the tracking ID, or scan this QR code."),
    "next": (
        "Admin LAPOR! memverifikasi laporan dalam 3 hari kerja dan meneruskannya kepada "
        "instansi yang berwenang, yang menanggapi dalam 5 hari kerja.",
        "A LAPOR! administrator verifies the report within 3 working days and passes it to the "
        "agency in charge, which answers within 5 working days.",
    ),
    "qr_alt": ("Kode QR halaman status", "QR code of the status page"),
    "acks": ("Pemberitahuan juga dikirim ke", "The acknowledgement was also sent to"),
    "print": ("Cetak tanda terima", "Print the receipt"),
    "back": ("Kembali ke daftar surat", "Back to the letters"),
    "print_hint": ("Tekan Ctrl+P untuk mencetak.", "Press Ctrl+P to print."),
    "in_en": ("Tanda terima dalam bahasa Inggris", "Receipt in English"),
    "in_id": ("Tanda terima dalam bahasa Indonesia", "Receipt in Indonesian"),
}

# No @page size: the printer's paper (A4, A5, a receipt roll) is used as it is. A page size
# here made Chromium shrink the A4 layout onto an 80 mm roll (4-point text, a 13 mm QR code).
PRINT_CSS = """
.receipt{background:#fff;border:1px solid #ccc;max-width:40rem;margin:0 auto;padding:1.5rem}
.receipt h1{margin-top:0}.qr ol{overflow-wrap:anywhere}
.code{font:700 1.2em ui-monospace,monospace;letter-spacing:.06em;white-space:nowrap}
.tid{font:700 2.6rem/1.2 ui-monospace,monospace;letter-spacing:.08em;
border:3px solid #0d47a1;padding:.8rem;text-align:center;margin:.5rem 0}
.qr{display:flex;gap:1rem;align-items:center}.qr svg{width:38mm;height:38mm;flex:none}
dl.facts{display:grid;grid-template-columns:auto 1fr;gap:.2rem 1rem}dl.facts dt{font-weight:600}
dl.facts dd{margin:0;overflow-wrap:anywhere}
@page{margin:10mm}
@media print{header,.noprint{display:none!important}body{background:#fff;font-size:10.5pt}
main{padding:0;max-width:none}.receipt{border:0;padding:0;max-width:none}.tid{font-size:28pt}
.receipt h1{font-size:16pt}.receipt h2{font-size:13pt;margin:.8em 0 .4em}.receipt p{margin:.5em 0}
.tid,.qr{break-inside:avoid}}
@media print and (max-width:110mm){@page{margin:3mm}body{font-size:9pt}
.receipt h1{font-size:12pt}.receipt h2{font-size:10.5pt}
.tid{font-size:17pt;padding:.25rem;border-width:2px;letter-spacing:.03em}
.qr{flex-direction:column;align-items:flex-start;gap:.3rem}.qr ol{margin:0;padding-left:1.3em}
.qr svg{width:36mm;height:36mm}dl.facts{gap:0 .6rem}}
"""


def received(moment: datetime) -> str:
    """When the letter was received, as the citizen reads it: WIB, the time of the national
    service (the status page shows times the same way)."""
    return moment.astimezone(WIB).strftime("%d-%m-%Y %H:%M WIB")


def _t(key: str, lang: Lang, **fmt: str) -> str:
    text = T[key][0 if lang == "id" else 1]
    return text.format(**fmt) if fmt else text


def status_url(public_base_url: str, tracking_id: str) -> str:
    """The public status page of one report (what the QR code holds)."""
    return f"{public_base_url}/cek?id={quote(tracking.display(tracking_id))}"


def qr_svg(data: str) -> str:
    """An inline SVG QR code of ``data`` (error correction M, no image library)."""
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=2)
    code.add_data(data)
    code.make(fit=True)
    image = code.make_image(image_factory=qrcode.image.svg.SvgPathImage)
    svg: str = image.to_string(encoding="unicode")
    return svg


@dataclass(frozen=True, slots=True)
class ReceiptData:
    """What the receipt shows."""

    tracking_id: str
    received_at: datetime
    subject: str | None
    pages: int
    clerk: str
    duplicate: bool = False
    followup: bool = False  # added to the earlier report it named
    acks: Sequence[str] = ()  # masked addresses the acknowledgement also went to
    draft_id: str = ""  # (staff.js forgets what was typed for this letter once it is sent)
    followup_code: str | None = None  # displayed: what adds to the report on the web


def receipt_page(
    ctx: Context,
    data: ReceiptData,
    public_base_url: str,
    short_code: str,
    notice: str | None = None,
    receipt_lang: Lang = "id",
    unsent: str = "",
) -> str:
    """The printable receipt, in ``receipt_lang`` (the citizen's); ``notice`` is for the clerk,
    above it, never printed, and the controls below it are in the clerk's language; so is
    ``unsent`` (:func:`channels.letter.pages.unsent_box`: values saved after the confirmation
    began and not sent)."""
    lang, ui = receipt_lang, ctx.lang
    other = "en" if lang == "id" else "id"
    shown = tracking.display(data.tracking_id)
    url = status_url(public_base_url, data.tracking_id)
    svg = qr_svg(url).replace("<svg ", f'<svg role="img" aria-label="{_t("qr_alt", lang)}" ', 1)
    subject = (
        f'<dt>{_t("subject", lang)}</dt><dd>{escape(data.subject)}</dd>' if data.subject else ""
    )
    acks = (
        f'<p>{_t("acks", lang)}: {escape(", ".join(data.acks))}.</p>' if data.acks else ""
    )
    notice_box = f'<div class="noprint" id="notice">{alert_box(notice)}</div>' if notice else ""
    body = (
        f'{notice_box}{unsent}<article class="receipt" id="receipt" lang="{lang}" '
        f'data-draft="{escape(data.draft_id)}">'
        f'<h1>{_t("title", lang)}</h1>'
        f'<p>{_t("intro", lang)}</p><p>{_t("your_id", lang)}:</p>'
        f'<p class="tid" id="tracking-id">{escape(shown)}</p>'
        + (f'<p>{_t("duplicate", lang)}</p>' if data.duplicate else "")
        + (f'<p id="followup">{_t("followup", lang)}</p>' if data.followup else "")
        + f'<p>{_t("keep", lang)}</p>'
        f'<dl class="facts"><dt>{_t("received", lang)}</dt><dd>{received(data.received_at)}</dd>'
        f'{subject}<dt>{_t("pages", lang)}</dt><dd>{data.pages}</dd>'
        f'<dt>{_t("clerk", lang)}</dt><dd>{escape(data.clerk)}</dd></dl>'
        f'<h2>{_t("follow", lang)}</h2><div class="qr">{svg}<ol>'
        f'<li>{_t("follow_sms", lang, id=escape(data.tracking_id), code=escape(short_code))}</li>'
        f'<li>{_t("follow_web", lang, url=escape(public_base_url + "/cek"))}</li>'
        + (
            f'<li id="followup-code">'
            f'{_t("add", lang, url=escape(public_base_url + "/tambah"))} '
            f'<strong class="code">{escape(data.followup_code)}</strong> '
            f'{_t("add_keep", lang)}</li>'
            if data.followup_code
            else ""
        )
        + f'</ol></div><p>{_t("next", lang)}</p>{acks}</article>'
        f'<p class="noprint"><button type="button" data-print hidden>{_t("print", ui)}</button> '
        f'<span class="print-hint">{_t("print_hint", ui)}</span> · '
        f'<a href="?receipt_lang={other}" hreflang="{other}" id="receipt-lang">'
        f'{_t("in_" + other, ui)}</a> · '
        f'<a href="{PREFIX}/">{_t("back", ui)}</a></p>'
    )
    return page(ctx, f'{_t("title", ui)} {shown}', body, head=f"<style>{PRINT_CSS}</style>")
