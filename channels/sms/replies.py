"""The SMS replies a citizen gets, in Indonesian (pure, no IO); how to report also in English,
for a citizen who asks with the English word ``HELP``.

Every reply fits ONE SMS: at most 160 characters of the GSM 7-bit default alphabet's basic
table (3GPP TS 23.038), no extension characters (``€[]{}~^|\\`` count double) and nothing that
would force UCS-2 (70 characters a segment). The tests build every template with its longest
inputs and check this.

More than that, every character is one of :data:`PORTABLE`: those whose GSM 03.38 code is
their ASCII code (letters, digits, space, ``!"#%&'()*+,-./:;<=>?``). A reply goes out as the
SMSC's "default alphabet" (Kannel ``coding=0``, Jasmin ``coding=0``), which is GSM 03.38 on most
links and Latin-1 or ASCII on some; Jasmin converts ``content`` to GSM 03.38 septets, a hop
that does not convert passes the ASCII bytes on. Either way a portable character arrives
as itself, where ``_`` (GSM 0x11, ASCII 0x5F: GSM's ``§``), ``@`` (GSM 0x00: a NUL on a Latin-1
link), ``$`` and the extension table would not.
"""

from __future__ import annotations

import re
from datetime import datetime

from channels.dates import WIB
from gateway import tracking

SEGMENT = 160

# The GSM 7-bit default alphabet, basic table (3GPP TS 23.038 section 6.2.1), ESC excluded.
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Characters with the same code in the GSM 03.38 basic table and in ASCII / Latin-1: a reply of
# these reads the same whichever of them the SMSC takes "default alphabet" to be.
PORTABLE = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 !\"#%&'()*+,-./:;<=>?"
)
MAX_SHORT_CODE = 12

# Complaint statuses of the routing core, as a citizen reads them (every one the gateway knows
# of, gateway.queries.CLOSED_STATUSES included). One it does not know is shown as it is, upper
# case, its underscores as spaces, cut to MAX_STATUS characters.
STATUS_NAMES = {
    "received": "DITERIMA",
    "verified": "DIVERIFIKASI",
    "forwarded": "DITERUSKAN",
    "in_progress": "DIPROSES",
    "resolved": "SELESAI",
    "selesai": "SELESAI",
    "closed": "DITUTUP",
    "archived": "DIARSIPKAN",
    "rejected": "DITOLAK",
}
MAX_STATUS = 16


def is_gsm7_basic(text: str) -> bool:
    """True when every character is in the GSM-7 basic table."""
    return all(c in GSM7_BASIC for c in text)


def _code(short_code: str) -> str:
    code = "".join(c for c in short_code if c.isascii() and c.isalnum())[:MAX_SHORT_CODE]
    return code or "1708"


def accepted(tracking_id: str, short_code: str, nik_rejected: bool = False) -> str:
    """A complaint was stored; how to follow it up."""
    shown = tracking.display(tracking_id)
    note = " NIK tidak sah, tidak disimpan." if nik_rejected else ""
    return (
        f"LAPOR! Laporan diterima. No. lacak: {shown}.{note} "
        f"Cek status: kirim CEK {tracking_id} ke {_code(short_code)}."
    )


def followup(tracking_id: str, short_code: str, nik_rejected: bool = False) -> str:
    """A message about a complaint its sender holds the ID of was added to that complaint."""
    note = " NIK tidak sah, tidak disimpan." if nik_rejected else ""
    return (
        f"LAPOR! Tambahan info untuk laporan {tracking.display(tracking_id)} diterima."
        f"{note} Cek status: kirim CEK {tracking_id} ke {_code(short_code)}."
    )


def quarantined(tracking_id: str | None) -> str:
    """The message was stored but needs an operator (it could not be read automatically)."""
    suffix = f" No. lacak: {tracking.display(tracking_id)}." if tracking_id else ""
    return f"LAPOR! Pesan Anda diterima dan akan diperiksa petugas.{suffix}"


def empty(short_code: str) -> str:
    """The SMS had no complaint text (it was empty, or only a NIK, a keyword, a number)."""
    code = _code(short_code)
    return (
        f"LAPOR! Pesan Anda belum berisi laporan. Tulis isi laporan lalu kirim ke {code}. "
        f"Bantuan: kirim INFO ke {code}."
    )


def help_text(short_code: str, english: bool = False) -> str:
    """How to use the service. The NIK is shown with its label (the usual ``<spasi>`` of SMS
    services): the grammar reads only a labelled NIK, a bare 16-digit number stays in the text.
    The keywords stay Indonesian in English too: they are what the grammar reads."""
    if english:
        return (
            f"LAPOR! Send your report to {_code(short_code)}. Status: CEK tracking-no. "
            "Optional: NIK<space>16digits. RAHASIA: not published. ANONIM: name hidden."
        )
    return (
        f"LAPOR! Kirim isi laporan ke {_code(short_code)}. Cek status: CEK no.lacak. "
        "Boleh tambah NIK<spasi>16digit. RAHASIA: tidak dipublikasikan. "
        "ANONIM: identitas disamarkan."
    )


def status_found(tracking_id: str, status: str, received_at: datetime) -> str:
    """The status of a complaint: no content, no personal data. The date it was received is
    the date in WIB, the time of the national service (not UTC's, a day behind before 07:00)."""
    name = STATUS_NAMES.get(status) or _gsm_word(status)
    day = received_at.astimezone(WIB) if received_at.tzinfo else received_at
    return (
        f"LAPOR! Laporan {tracking.display(tracking_id)} "
        f"(diterima {day:%d-%m-%Y}): status {name}."
    )


def status_changed(tracking_id: str, status: str, changed_at: datetime, short_code: str) -> str:
    """Sent unasked when the routing core changes the status of a complaint whose receipt went
    by SMS: the new status and the day it changed (WIB), nothing else."""
    name = STATUS_NAMES.get(status) or _gsm_word(status)
    day = changed_at.astimezone(WIB) if changed_at.tzinfo else changed_at
    return (
        f"LAPOR! Laporan {tracking.display(tracking_id)} kini berstatus {name} "
        f"({day:%d-%m-%Y}). Cek: kirim CEK {tracking_id} ke {_code(short_code)}."
    )


def status_unknown(short_code: str, typed: str = "") -> str:
    """The typed tracking ID is not valid or not known: the reply shows the ID as it was read,
    so that the citizen sees the typo. Without any ID typed (``CEK``, ``Cek status laporan
    saya``) nothing was looked for: how to ask, with an example."""
    code = _code(short_code)
    shown = _typed_id(typed)
    if not shown:
        return (
            f"LAPOR! Untuk cek status, kirim CEK<spasi>no.lacak ke {code}, contoh: "
            "CEK K7QM4XRT9. No. lacak ada di tanda terima laporan Anda."
        )
    return (
        f"LAPOR! No. lacak {shown} tidak ditemukan. Periksa lagi nomornya, lalu kirim "
        f"CEK no.lacak ke {code}."
    )


def _typed_id(typed: str) -> str:
    """A typed ID to show: its letters and digits (ASCII), upper case, at most one symbol more
    than an ID; in its two printed groups when it is a valid one."""
    symbols = "".join(c for c in typed.upper() if c.isascii() and c.isalnum())
    valid = tracking.normalize(symbols)
    return tracking.display(valid) if valid else symbols[: tracking.LENGTH + 1]


def is_portable(text: str) -> bool:
    """True when every character is in :data:`PORTABLE` (it arrives as itself whether the SMSC's
    default alphabet is GSM 03.38, ASCII or Latin-1)."""
    return all(c in PORTABLE for c in text)


def _gsm_word(status: str) -> str:
    """A status the gateway has no name for, as the routing core wrote it (``[a-z_]``), upper
    case; ``_`` reads as a space (``waiting_for_info``: ``WAITING FOR INFO``): it is not
    portable, and GSM 03.38 shows ASCII's ``_`` as ``§``."""
    words = re.findall(r"[A-Z0-9]+", status.upper())
    return " ".join(words)[:MAX_STATUS].rstrip() or "DIPROSES"
