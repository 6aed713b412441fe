"""A generated set of scanned Indonesian complaint letters and forms, with their true fields.

Real letters cannot be committed (they carry NIKs, names and addresses of real people), so the
letter channel's tests and benchmarks read letters that this module writes, deterministically
from a seed. Each sample is typeset once (A4, in points, with Liberation or DejaVu fonts from
Debian's font packages) and then either rendered and degraded the way a front-desk scanner or a
phone degrades paper, or written as a PDF with a real text layer:

* letters to a Bupati, Wali Kota, Camat or Kepala Dinas: place-and-date line, "Perihal",
  "Kepada Yth." block, "Dengan hormat,", the complaint, the closing "Demikian ..." paragraph,
  "Hormat saya," and a signature block with name, NIK, address and phone; some with an
  identity block after the salutation instead, some under an RW letterhead (kop surat) whose
  own telephone number is a trap for the extractor, some over two or three pages with page
  numbers;
* complaint-box forms ("FORMULIR PENGADUAN") with labelled fields and a boxed "Isi Pengaduan";
* degradations: skew (1-4 degrees either way), scan resolution (150-300 dpi), blur, noise and
  specks, faded low-contrast ink, JPEG compression, bilevel (CCITT G4) TIFF, and phone photos
  (uneven light, a table around the page, stored sideways with an EXIF orientation tag).

NIKs are built from real district codes and valid birth dates and checked with the
normalizer; phones use real mobile prefixes. ``python -m tests.channels.letter.letterset DIR``
writes the set with a ``truth.json`` for a person to look at.
"""

from __future__ import annotations

import io
import json
import math
import random
import sys
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import date
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from normalizer import normalize_phone, parse_nik

A4 = (595.0, 842.0)  # points
MONTHS = (
    "Januari", "Februari", "Maret", "April", "Mei", "Juni",
    "Juli", "Agustus", "September", "Oktober", "November", "Desember",
)  # fmt: skip

# --------------------------------------------------------------------------------------------
# Fonts: Debian's fonts-liberation (metric twins of Times New Roman and Arial, the fonts
# Indonesian offices type in) and fonts-dejavu-core.

_FONT_DIRS = ("/usr/share/fonts/truetype", "/usr/share/fonts", "/usr/local/share/fonts")
_FONT_FILES = {
    "serif": ("LiberationSerif-Regular.ttf", "DejaVuSerif.ttf"),
    "serif-bold": ("LiberationSerif-Bold.ttf", "DejaVuSerif-Bold.ttf"),
    "sans": ("LiberationSans-Regular.ttf", "DejaVuSans.ttf"),
    "sans-bold": ("LiberationSans-Bold.ttf", "DejaVuSans-Bold.ttf"),
}
# The PDF base-14 font with the same metrics, for the text-layer PDFs.
_PDF_FONTS = {
    "serif": "Times-Roman",
    "serif-bold": "Times-Bold",
    "sans": "Helvetica",
    "sans-bold": "Helvetica-Bold",
}


@cache
def font_path(face: str) -> Path:
    """The TrueType file of ``face`` (serif, serif-bold, sans, sans-bold)."""
    for name in _FONT_FILES[face]:
        for root in _FONT_DIRS:
            hits = sorted(Path(root).rglob(name)) if Path(root).is_dir() else []
            if hits:
                return hits[0]
    raise FileNotFoundError(
        f"no font for {face!r} ({', '.join(_FONT_FILES[face])}): "
        "install fonts-liberation or fonts-dejavu-core (scripts/install-system-packages)"
    )


@cache
def _font(face: str, px: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(font_path(face)), px)


def text_width(text: str, face: str, size: float) -> float:
    """Width of ``text`` in points at ``size`` points."""
    return _font(face, 200).getlength(text) * size / 200.0


# --------------------------------------------------------------------------------------------
# Content: people, places, complaints.

NAMES = (
    "Siti Nurhaliza", "Ahmad Fauzi", "Dewi Lestari", "Budi Santoso", "Rina Marlina",
    "Asep Saepudin", "Euis Komalasari", "Agus Setiawan", "Ni Made Sukerti", "I Wayan Suarta",
    "Sri Wahyuni", "Muhammad Rizki Pratama", "Yuliana Simanjuntak", "Hotman Sitorus",
    "Andi Rahmat Hidayat", "Nurul Hikmah", "Suparman", "Endang Suryana", "Fitri Handayani",
    "Bambang Triyono", "Rahmawati Daeng Ngai", "Yohanes Situmorang", "Ida Ayu Putu Ariani",
    "Dedi Kurniawan", "Wahyu Hidayat", "Lilis Suryani", "Teguh Prasetyo", "Hj. Aminah",
    "Rudi Hartono", "Maria Ulfa", "Slamet Riyadi", "Yanti Rosmiati",
)  # fmt: skip

FEMALE = {
    "Siti Nurhaliza", "Dewi Lestari", "Rina Marlina", "Euis Komalasari", "Ni Made Sukerti",
    "Sri Wahyuni", "Yuliana Simanjuntak", "Nurul Hikmah", "Fitri Handayani",
    "Rahmawati Daeng Ngai", "Ida Ayu Putu Ariani", "Lilis Suryani", "Hj. Aminah", "Maria Ulfa",
    "Yanti Rosmiati",
}  # fmt: skip


@dataclass(frozen=True)
class Region:
    """A district (kecamatan) with the details a letter from there carries."""

    code: str  # 6-digit Kemendagri district code
    district: str
    villages: tuple[str, ...]
    city: str  # as written in an address
    place: str  # as written on the place-and-date line
    streets: tuple[str, ...]
    addressees: tuple[tuple[str, ...], ...]  # the lines after "Kepada Yth."
    form_office: str


REGIONS = (
    Region(
        "320405", "Cileunyi", ("Cileunyi Kulon", "Cinunuk", "Cimekar"), "Kabupaten Bandung",
        "Bandung", ("Jl. Raya Cinunuk", "Jl. Cileunyi Raya", "Jl. Bojong Koneng"),
        (("Bapak Bupati Bandung",), ("Kepala Dinas Pekerjaan Umum dan", "Penataan Ruang",
         "Kabupaten Bandung")),
        "MAL PELAYANAN PUBLIK KABUPATEN BANDUNG",
    ),
    Region(
        "327302", "Coblong", ("Lebak Siliwangi", "Sekeloa", "Dago"), "Kota Bandung", "Bandung",
        ("Jl. Dipatiukur", "Jl. Tubagus Ismail", "Jl. Sekeloa Selatan"),
        (("Bapak Wali Kota Bandung",), ("Bapak Camat Coblong",)),
        "KANTOR KECAMATAN COBLONG KOTA BANDUNG",
    ),
    Region(
        "357804", "Wonokromo", ("Jagir", "Ngagel Rejo", "Darmo"), "Kota Surabaya", "Surabaya",
        ("Jl. Jagir Wonokromo", "Jl. Ngagel Jaya Selatan", "Jl. Raya Darmo"),
        (("Ibu Wali Kota Surabaya",), ("Kepala Dinas Lingkungan Hidup", "Kota Surabaya")),
        "MAL PELAYANAN PUBLIK KOTA SURABAYA",
    ),
    Region(
        "340406", "Mlati", ("Sinduadi", "Sendangadi", "Tlogoadi"), "Kabupaten Sleman", "Sleman",
        ("Jl. Magelang Km. 7", "Jl. Kaliurang Km. 5", "Jl. Palagan Tentara Pelajar"),
        (("Bapak Bupati Sleman",), ("Kepala Dinas Kependudukan dan", "Pencatatan Sipil",
         "Kabupaten Sleman")),
        "MAL PELAYANAN PUBLIK KABUPATEN SLEMAN",
    ),
    Region(
        "127101", "Medan Kota", ("Pasar Baru", "Teladan Barat", "Sitirejo I"), "Kota Medan",
        "Medan", ("Jl. Sisingamangaraja", "Jl. Brigjend Katamso", "Jl. Halat"),
        (("Bapak Wali Kota Medan",), ("Kepala Dinas Sumber Daya Air,", "Bina Marga dan Bina",
         "Konstruksi Kota Medan")),
        "KANTOR WALI KOTA MEDAN",
    ),
    Region(
        "737102", "Mamajang", ("Mamajang Dalam", "Bonto Lebang", "Mandala"), "Kota Makassar",
        "Makassar", ("Jl. Veteran Selatan", "Jl. Kumala", "Jl. Baji Gau"),
        (("Bapak Wali Kota Makassar",), ("Direktur Utama Perumda Air Minum", "Kota Makassar")),
        "MAL PELAYANAN PUBLIK KOTA MAKASSAR",
    ),
    Region(
        "337401", "Semarang Tengah", ("Pekunden", "Miroto", "Sekayu"), "Kota Semarang",
        "Semarang", ("Jl. Pandanaran", "Jl. Pemuda", "Jl. Gajahmada"),
        (("Ibu Wali Kota Semarang",), ("Kepala Dinas Pekerjaan Umum", "Kota Semarang")),
        "KANTOR KECAMATAN SEMARANG TENGAH",
    ),
    Region(
        "517101", "Denpasar Selatan", ("Sanur", "Panjer", "Sidakarya"), "Kota Denpasar",
        "Denpasar", ("Jl. Danau Tamblingan", "Jl. Tukad Badung", "Jl. Raya Sesetan"),
        (("Bapak Wali Kota Denpasar",), ("Kepala Dinas Perhubungan", "Kota Denpasar")),
        "MAL PELAYANAN PUBLIK KOTA DENPASAR",
    ),
)  # fmt: skip


@dataclass(frozen=True)
class Topic:
    """One kind of complaint: subjects and paragraphs with {slots}."""

    subjects: tuple[str, ...]
    opening: tuple[str, ...]
    details: tuple[str, ...]
    requests: tuple[str, ...]


TOPICS = (
    Topic(
        ("Jalan rusak di {street}", "Pengaduan jalan berlubang di {street}"),
        (
            "Melalui surat ini saya ingin menyampaikan pengaduan mengenai kondisi jalan di "
            "{street} yang rusak parah sejak {months} bulan terakhir. Lubang di badan jalan "
            "semakin lebar dan dalam, terutama setelah hujan deras.",
        ),
        (
            "Setiap hari jalan tersebut dilalui oleh anak sekolah, pedagang pasar dan "
            "kendaraan umum. Pada tanggal {day} {month} {year} seorang pengendara sepeda motor "
            "terjatuh karena menghindari lubang dan harus dirawat di puskesmas.",
            "Warga sudah berusaha menimbun lubang dengan batu dan tanah secara swadaya, namun "
            "timbunan itu kembali hanyut setiap kali hujan turun. Saluran air di sisi jalan "
            "juga tersumbat sehingga air menggenang di tengah jalan.",
            "Kami sudah melaporkan hal ini kepada ketua RT dan kelurahan pada bulan {month}, "
            "tetapi sampai sekarang belum ada perbaikan. Panjang kerusakan kurang lebih "
            "{meters} meter, mulai dari depan {landmark} sampai ke pertigaan.",
        ),
        (
            "Oleh karena itu kami mohon agar jalan tersebut segera diperbaiki sebelum musim "
            "hujan berikutnya, agar tidak ada lagi warga yang celaka.",
        ),
    ),
    Topic(
        ("Lampu penerangan jalan mati", "Penerangan jalan umum di {street}"),
        (
            "Dengan ini saya menyampaikan bahwa lampu penerangan jalan umum di {street} sudah "
            "mati selama {months} bulan. Pada malam hari jalan menjadi sangat gelap.",
        ),
        (
            "Akibatnya sudah terjadi dua kali pencurian sepeda motor di depan {landmark} dan "
            "banyak warga, terutama ibu-ibu yang pulang bekerja, merasa takut melintas.",
            "Sebanyak {count} tiang lampu tidak menyala. Petugas pernah datang pada tanggal "
            "{day} {month} {year} untuk memeriksa, tetapi lampu tidak diganti.",
        ),
        (
            "Kami mohon Bapak/Ibu berkenan memerintahkan petugas untuk mengganti lampu yang "
            "rusak tersebut.",
        ),
    ),
    Topic(
        ("Sampah menumpuk di {landmark}", "Pengangkutan sampah tidak rutin"),
        (
            "Saya ingin mengadukan tumpukan sampah di dekat {landmark}, {street}, yang sudah "
            "tidak diangkut selama kurang lebih {weeks} minggu.",
        ),
        (
            "Sampah tersebut menimbulkan bau busuk dan mengundang lalat serta tikus. Beberapa "
            "anak di lingkungan kami mulai terkena diare dan gatal-gatal.",
            "Menurut jadwal, truk pengangkut sampah seharusnya datang dua kali seminggu, yaitu "
            "setiap hari Senin dan Kamis. Sejak awal bulan {month} truk tidak pernah datang.",
            "Warga tetap membayar iuran kebersihan sebesar Rp{fee}.000 per bulan kepada "
            "pengurus RW, sehingga kami merasa dirugikan.",
        ),
        (
            "Kami memohon agar pengangkutan sampah dilakukan kembali secara rutin dan tempat "
            "penampungan sementara dibersihkan.",
        ),
    ),
    Topic(
        ("Air PDAM tidak mengalir", "Gangguan air bersih di {village}"),
        (
            "Bersama surat ini saya menyampaikan keluhan bahwa air PDAM di rumah kami dan "
            "rumah tetangga di {street} tidak mengalir sejak tanggal {day} {month} {year}.",
        ),
        (
            "Kami terpaksa membeli air isi ulang dan air dari pedagang keliling dengan harga "
            "Rp{fee}.000 per jeriken untuk keperluan memasak dan mandi.",
            "Walaupun air tidak mengalir, tagihan bulanan tetap datang dengan jumlah yang sama, "
            "bahkan pada bulan {month} tagihan kami naik menjadi Rp{bill}.000.",
            "Saya sudah menghubungi layanan pelanggan sebanyak {count} kali dan hanya dijawab "
            "bahwa sedang ada perbaikan pipa, tanpa kepastian kapan selesai.",
        ),
        (
            "Kami mohon kejelasan jadwal perbaikan dan peninjauan kembali tagihan selama air "
            "tidak mengalir.",
        ),
    ),
    Topic(
        ("Pelayanan KTP elektronik lambat", "Pengurusan KTP-el belum selesai"),
        (
            "Saya ingin menyampaikan pengaduan tentang pelayanan pembuatan KTP elektronik. "
            "Saya melakukan perekaman data pada tanggal {day} {month} {year} di kantor "
            "kecamatan, namun sampai sekarang KTP saya belum dicetak.",
        ),
        (
            "Setiap kali saya datang untuk menanyakan, petugas mengatakan bahwa blangko sedang "
            "habis dan saya diminta kembali bulan depan. Saya sudah datang {count} kali.",
            "Tanpa KTP saya tidak bisa mengurus rekening bank, BPJS Kesehatan dan lamaran "
            "pekerjaan. Ada pula oknum yang menawarkan percepatan dengan membayar Rp{fee}0.000.",
        ),
        (
            "Saya mohon agar KTP elektronik saya segera dicetak dan praktik pungutan di luar "
            "ketentuan tersebut ditindak.",
        ),
    ),
    Topic(
        ("Saluran air tersumbat dan banjir", "Banjir di {village}"),
        (
            "Dengan surat ini saya menyampaikan bahwa setiap hujan turun lebih dari satu jam, "
            "jalan dan rumah warga di {street} tergenang banjir setinggi {cm} sentimeter.",
        ),
        (
            "Penyebabnya adalah saluran air di sepanjang jalan yang tersumbat sampah dan "
            "lumpur, serta gorong-gorong di depan {landmark} yang runtuh sebagian.",
            "Pada tanggal {day} {month} {year} air masuk ke {count} rumah dan merusak perabot "
            "serta dagangan warga. Anak-anak tidak dapat berangkat ke sekolah.",
        ),
        (
            "Kami mohon agar saluran air dinormalisasi dan gorong-gorong yang runtuh segera "
            "diperbaiki.",
        ),
    ),
    Topic(
        ("Bantuan sosial tidak tepat sasaran", "Penyaluran bantuan sosial di {village}"),
        (
            "Saya ingin menyampaikan pengaduan mengenai penyaluran bantuan sosial di "
            "Kelurahan {village} yang menurut kami tidak tepat sasaran.",
        ),
        (
            "Beberapa keluarga yang mampu, memiliki mobil dan usaha, tercatat sebagai penerima "
            "bantuan, sedangkan {count} keluarga lansia dan janda di RT kami tidak terdaftar.",
            "Kami sudah mengajukan usulan perbaikan data melalui musyawarah kelurahan pada "
            "bulan {month} {year}, tetapi data penerima tidak berubah.",
        ),
        (
            "Kami mohon agar dilakukan pemutakhiran data penerima bantuan secara terbuka dan "
            "melibatkan pengurus RT dan RW.",
        ),
    ),
    Topic(
        ("Pungutan di sekolah negeri", "Pungutan uang seragam di {school}"),
        (
            "Saya adalah orang tua murid di {school}. Saya ingin mengadukan adanya pungutan "
            "kepada orang tua murid baru sebesar Rp{fee}0.000 untuk seragam dan buku.",
        ),
        (
            "Pungutan tersebut disampaikan melalui grup percakapan orang tua pada tanggal {day} "
            "{month} {year} dan harus dibayar paling lambat dua minggu kemudian.",
            "Bagi keluarga kami yang bekerja sebagai buruh harian, jumlah itu sangat "
            "memberatkan. Anak yang belum membayar tidak diberi buku pelajaran.",
        ),
        (
            "Kami mohon agar hal ini diperiksa dan pungutan yang tidak sesuai aturan "
            "dihentikan.",
        ),
    ),
)

LANDMARKS = (
    "Masjid Al-Ikhlas", "SDN 2", "Pasar Kliwon", "Puskesmas Pembantu", "Balai RW",
    "Gereja HKBP", "Pura Desa", "Lapangan Voli", "Kantor Pos", "Pangkalan Ojek",
)  # fmt: skip
SCHOOLS = ("SMP Negeri 3", "SD Negeri 1", "SMA Negeri 5", "SMP Negeri 12")
CLOSINGS = (
    "Demikian surat pengaduan ini saya sampaikan. Atas perhatian dan tindak lanjut Bapak/Ibu, "
    "saya ucapkan terima kasih.",
    "Demikian pengaduan ini kami sampaikan. Atas perhatian Bapak/Ibu kami ucapkan terima kasih.",
)
GENERIC = (
    "Sebagai warga yang taat membayar pajak, kami berharap pemerintah daerah dapat memberikan "
    "pelayanan yang lebih baik. Kami juga bersedia dihubungi untuk memberikan keterangan "
    "tambahan apabila diperlukan.",
    "Sebagai bahan pertimbangan, bersama surat ini kami lampirkan fotokopi KTP dan beberapa "
    "foto keadaan di lapangan yang kami ambil pada minggu lalu.",
    "Masalah ini sudah pernah kami sampaikan secara lisan kepada petugas yang datang ke "
    "lingkungan kami, namun belum ada tindak lanjut yang jelas sampai surat ini dibuat.",
    "Kami tidak ingin menyalahkan siapa pun. Kami hanya berharap ada kepastian kapan masalah "
    "ini akan ditangani, karena keadaan ini sudah berlangsung cukup lama.",
)


# --------------------------------------------------------------------------------------------
# What a sample is.


@dataclass(frozen=True)
class TrueFields:
    """What a careful clerk would type from the letter."""

    sender_name: str
    nik: str | None
    address: str | None
    phone: str | None  # as written on the paper
    phone_e164: str | None
    letter_date: str  # ISO yyyy-mm-dd
    letter_place: str | None
    addressee: str | None
    subject: str | None
    body: str  # paragraphs separated by a blank line


@dataclass(frozen=True)
class LetterSample:
    """One generated document: its file as the clerk uploads it and the truth."""

    name: str
    kind: str  # "letter" or "form"
    fields: TrueFields
    filename: str
    content_type: str
    data: bytes
    pages: int
    degradation: str
    text_layer: bool = False
    page_images: tuple[bytes, ...] = field(default=(), repr=False)
    """Each page alone as the scanner wrote it (a JPEG, PNG or TIFF), for page-level benches."""
    page_texts: tuple[str, ...] = field(default=(), repr=False)
    """Everything printed on each page, line by line (top to bottom, left to right)."""


def page_text(page: list[Item]) -> str:
    """The printed text of a typeset page, one line per baseline."""
    rows: dict[int, list[Text]] = {}
    for it in page:
        if isinstance(it, Text):
            rows.setdefault(round(it.y), []).append(it)
    return "\n".join(" ".join(t.text for t in sorted(rows[y], key=lambda t: t.x))
                     for y in sorted(rows))


# --------------------------------------------------------------------------------------------
# Typesetting: blocks to positioned items on A4 pages (points, y = baseline from the top).


@dataclass(frozen=True)
class Text:
    x: float
    y: float
    text: str
    face: str
    size: float


@dataclass(frozen=True)
class Rule:
    x1: float
    y1: float
    x2: float
    y2: float
    width: float


@dataclass(frozen=True)
class Path_:
    points: tuple[tuple[float, float], ...]
    width: float


Item = Text | Rule | Path_


class Typesetter:
    """Lays blocks top to bottom, wrapping words and breaking pages with a page number."""

    def __init__(self, face: str, size: float, margins: tuple[float, float, float, float],
                 numbering: str | None) -> None:
        self.face, self.size = face, size
        self.left, self.top, self.right, self.bottom = margins
        self.numbering = numbering
        self.pages: list[list[Item]] = [[]]
        self.y = self.top

    @property
    def width(self) -> float:
        return A4[0] - self.left - self.right

    def _need(self, height: float) -> None:
        if self.y + height > A4[1] - self.bottom:
            self.pages.append([])
            self.y = self.top

    def space(self, lines: float = 1.0) -> None:
        self.y += lines * self.size * 1.35

    def line(self, text: str, x: float | None = None, *, face: str | None = None,
             size: float | None = None, align: str = "left") -> None:
        size = size or self.size
        face = face or self.face
        self._need(size * 1.35)
        self.y += size * 1.35
        w = text_width(text, face, size)
        if align == "center":
            xx = self.left + (self.width - w) / 2
        elif align == "right":
            xx = A4[0] - self.right - w
        else:
            xx = self.left if x is None else x
        self.pages[-1].append(Text(xx, self.y, text, face, size))

    def labelled(self, label: str, value: str, x: float, tab: float,
                 width: float | None = None) -> None:
        """``label`` at x, ``: value`` at x + tab, the value wrapped under itself."""
        # A label wider than the tab pushes its colon right, as a word processor's tab stop does.
        tab = max(tab, text_width(label, self.face, self.size) + 8)
        width = width or (A4[0] - self.right - x - tab)
        lines = self._wrap(value, width - text_width(": ", self.face, self.size))
        for i, part in enumerate(lines):
            self._need(self.size * 1.35)
            self.y += self.size * 1.35
            if i == 0:
                self.pages[-1].append(Text(x, self.y, label, self.face, self.size))
                self.pages[-1].append(Text(x + tab, self.y, ": " + part, self.face, self.size))
            else:
                indent = text_width(": ", self.face, self.size)
                self.pages[-1].append(Text(x + tab + indent, self.y, part, self.face, self.size))

    def _wrap(self, text: str, width: float) -> list[str]:
        words, lines, current = text.split(), [], ""
        for word in words:
            trial = f"{current} {word}" if current else word
            if current and text_width(trial, self.face, self.size) > width:
                lines.append(current)
                current = word
            else:
                current = trial
        if current:
            lines.append(current)
        return lines

    def paragraph(self, text: str, *, indent: float = 0.0, x: float | None = None) -> None:
        left = self.left if x is None else x
        width = A4[0] - self.right - left
        first = True
        lines = self._wrap(text, width - indent)
        # Re-wrap the rest at full width once the indented first line is placed.
        if indent and len(lines) > 1:
            rest = " ".join(lines[1:])
            lines = [lines[0], *self._wrap(rest, width)]
        for part in lines:
            self._need(self.size * 1.35)
            self.y += self.size * 1.35
            self.pages[-1].append(
                Text(left + (indent if first else 0.0), self.y, part, self.face, self.size)
            )
            first = False

    def rule(self, width: float = 1.5) -> None:
        self.y += self.size * 0.5
        self.pages[-1].append(Rule(self.left, self.y, A4[0] - self.right, self.y, width))

    def box(self, top: float, bottom: float, page: int) -> None:
        left, right = self.left - 6, A4[0] - self.right + 6
        for x1, y1, x2, y2 in ((left, top, right, top), (right, top, right, bottom),
                               (right, bottom, left, bottom), (left, bottom, left, top)):
            self.pages[page].append(Rule(x1, y1, x2, y2, 0.8))

    def scribble(self, x: float, rng: random.Random) -> None:
        """A signature: a looping pen stroke about 35 points high."""
        self._need(40)
        base = self.y + 30
        pts = []
        for i in range(60):
            t = i / 59
            pts.append((x + 100 * t + 12 * math.sin(t * 9 + rng.random()),
                        base - 14 * math.sin(t * 7.5) * (1 - 0.5 * t) - 6 * rng.random()))
        self.pages[-1].append(Path_(tuple(pts), 1.2))
        self.y += 36

    def finish(self) -> list[list[Item]]:
        n = len(self.pages)
        if n > 1 and self.numbering:
            for i, page in enumerate(self.pages, 1):
                label = (f"- {i} -" if self.numbering == "dash"
                         else f"Halaman {i} dari {n}")
                w = text_width(label, self.face, self.size - 1)
                page.append(Text((A4[0] - w) / 2, A4[1] - self.bottom / 2, label, self.face,
                                 self.size - 1))
        return self.pages


# --------------------------------------------------------------------------------------------
# Composing one letter or form.


def _id_date(d: date) -> str:
    return f"{d.day} {MONTHS[d.month - 1]} {d.year}"


def _make_nik(rng: random.Random, region: Region, female: bool) -> str:
    while True:
        born = date(rng.randint(1958, 2004), rng.randint(1, 12), rng.randint(1, 28))
        day = born.day + (40 if female else 0)
        nik = f"{region.code}{day:02d}{born.month:02d}{born.year % 100:02d}{rng.randint(1, 2400):04d}"
        if parse_nik(nik, today=date(2026, 6, 1)).valid:
            return nik


_MOBILE = ("0812", "0813", "0821", "0822", "0852", "0853", "0856", "0857", "0815", "0817",
           "0818", "0819", "0877", "0878", "0838", "0896", "0895", "0881")


def _make_phone(rng: random.Random) -> str:
    prefix = rng.choice(_MOBILE)
    rest = "".join(str(rng.randint(0, 9)) for _ in range(8))
    style = rng.randrange(5)
    if style == 0:
        return f"{prefix} {rest[:4]} {rest[4:]}"
    if style == 1:
        return f"{prefix}{rest}"
    if style == 2:
        return f"+62 {prefix[1:]}-{rest[:4]}-{rest[4:]}"
    return f"{prefix}-{rest[:4]}-{rest[4:]}"


def _nik_written(rng: random.Random, nik: str) -> str:
    if rng.random() < 0.25:
        return f"{nik[:6]} {nik[6:12]} {nik[12:]}"
    return nik


def _fill(template: str, rng: random.Random, ctx: dict[str, str]) -> str:
    values = {
        "months": str(rng.randint(2, 8)),
        "weeks": str(rng.randint(2, 5)),
        "count": str(rng.randint(3, 12)),
        "meters": str(rng.choice((50, 120, 200, 350, 500))),
        "cm": str(rng.choice((30, 40, 50, 70))),
        "fee": str(rng.choice((15, 25, 35, 50, 75))),
        "bill": str(rng.choice((85, 120, 156, 210))),
        "day": str(rng.randint(1, 28)),
        "month": MONTHS[rng.randint(0, 11)],
        "year": "2025",
        "landmark": rng.choice(LANDMARKS),
        "school": rng.choice(SCHOOLS),
        **ctx,
    }
    return template.format(**values)


@dataclass
class Composed:
    kind: str
    fields: TrueFields
    pages: list[list[Item]]


def compose(rng: random.Random, index: int, *, pages_wanted: int, layout: str) -> Composed:
    """Typeset one sample. ``layout``: signature, identity, kop, form."""
    region = rng.choice(REGIONS)
    name = NAMES[index % len(NAMES)]
    female = name in FEMALE
    nik = _make_nik(rng, region, female) if layout != "no-nik" else None
    phone = _make_phone(rng)
    village = rng.choice(region.villages)
    street = rng.choice(region.streets)
    rt, rw = rng.randint(1, 12), rng.randint(1, 15)
    house = rng.randint(1, 180)
    address = (f"{street} No. {house} RT {rt:02d}/RW {rw:02d}, Kel. {village}, "
               f"Kec. {region.district}, {region.city}")
    topic = rng.choice(TOPICS)
    ctx = {"street": street, "village": village}
    subject = _fill(rng.choice(topic.subjects), rng, ctx)
    written = date(2026, rng.randint(1, 5), rng.randint(1, 28))

    paragraphs = [_fill(rng.choice(topic.opening), rng, ctx)]
    details = list(topic.details)
    rng.shuffle(details)
    generic = list(GENERIC)
    rng.shuffle(generic)
    # Roughly 1.2 paragraphs fill the first page after the header; 7 fill a further page.
    n_body = 2 + 7 * (pages_wanted - 1)
    pool = [_fill(t, rng, ctx) for t in details] + generic
    while len(paragraphs) < n_body and pool:
        paragraphs.append(pool.pop(0))
    while len(paragraphs) < n_body:
        paragraphs.append(_fill(rng.choice(topic.details), rng, ctx) + " "
                          + rng.choice(GENERIC))
    paragraphs.append(_fill(rng.choice(topic.requests), rng, ctx))
    closing = rng.choice(CLOSINGS)

    if layout == "form":
        return _compose_form(rng, region, name, nik, phone, address, subject, written,
                             paragraphs)

    face = rng.choice(("serif", "serif", "sans"))
    size = rng.choice((11.0, 12.0, 12.0))
    ts = Typesetter(face, size, (72, 56, 64, 64), rng.choice(("dash", "halaman")))
    addressee_lines = rng.choice(region.addressees)
    if layout == "kop":
        rw_no = rng.randint(1, 15)
        ts.line(f"PENGURUS RUKUN WARGA {rw_no:02d}", face=face + "-bold", size=size + 3,
                align="center")
        ts.line(f"KELURAHAN {village.upper()} KECAMATAN {region.district.upper()}",
                face=face + "-bold", size=size + 1, align="center")
        ts.line(f"Sekretariat: {rng.choice(region.streets)} No. {rng.randint(1, 90)} "
                f"Telp. {_make_phone(rng)}", size=size - 1, align="center")
        ts.rule(2.0)
        ts.space(0.6)
    ts.line(f"{region.place}, {_id_date(written)}", align="right")
    ts.space(0.5)
    label_x, tab = ts.left, 62.0
    if layout == "kop":
        ts.labelled("Nomor", f"{rng.randint(3, 40):03d}/RW/{written.month:02d}/{written.year}",
                    label_x, tab)
    ts.labelled("Lampiran", rng.choice(("-", "1 (satu) berkas", "2 (dua) lembar")), label_x, tab)
    ts.labelled("Perihal", subject, label_x, tab)
    ts.space(1)
    ts.line("Kepada Yth.")
    for part in addressee_lines:
        ts.line(part)
    ts.line("di")
    ts.line("Tempat", x=ts.left + 28)
    ts.space(1)
    ts.line("Dengan hormat,")
    ts.space(0.4)
    indent = rng.choice((0.0, 36.0))
    identity_rows = [("Nama", name), ("NIK", _nik_written(rng, nik) if nik else None),
                     ("Alamat", address), ("No. HP", phone)]
    if layout == "identity":
        ts.paragraph("Saya yang bertanda tangan di bawah ini:")
        for label, value in identity_rows:
            if value:
                ts.labelled(label, value, ts.left + 24, 64)
        ts.space(0.4)
        paragraphs[0] = "Dengan ini menyampaikan pengaduan sebagai berikut. " + paragraphs[0]
    for p in paragraphs:
        ts.paragraph(p, indent=indent)
        ts.space(0.4)
    ts.paragraph(closing, indent=indent)
    ts.space(1)
    sig_x = A4[0] * 0.55
    ts.line("Hormat saya,", x=sig_x)
    ts.scribble(sig_x + 6, rng)
    ts.line(name if rng.random() < 0.7 else name.upper(), x=sig_x)
    if layout != "identity":
        phone_label = rng.choice(("No. HP", "Telp", "No. HP/WA", "HP"))
        for label, value in identity_rows[1:]:
            if value:
                ts.labelled(phone_label if label == "No. HP" else label, value,
                            ts.left + 150, 44)
    fields = TrueFields(
        sender_name=name,
        nik=nik,
        address=address,
        phone=phone,
        phone_e164=normalize_phone(phone),
        letter_date=written.isoformat(),
        letter_place=region.place,
        addressee=" ".join(addressee_lines),
        subject=subject,
        body="\n\n".join(paragraphs),
    )
    return Composed("letter", fields, ts.finish())


def _compose_form(rng: random.Random, region: Region, name: str, nik: str | None, phone: str,
                  address: str, subject: str, written: date,
                  paragraphs: list[str]) -> Composed:
    ts = Typesetter("sans", 11.0, (64, 50, 56, 60), "halaman")
    ts.line(region.form_office, face="sans-bold", size=13, align="center")
    ts.line("FORMULIR PENGADUAN MASYARAKAT", face="sans-bold", size=14, align="center")
    ts.rule(1.5)
    ts.space(0.8)
    numeric = rng.random() < 0.5
    ts.labelled("Tanggal", written.strftime("%d-%m-%Y") if numeric else _id_date(written),
                ts.left, 110)
    ts.labelled("Nama Lengkap", name, ts.left, 110)
    if nik:
        ts.labelled("NIK", _nik_written(rng, nik), ts.left, 110)
    ts.labelled("Alamat", address, ts.left, 110)
    ts.labelled("No. HP", phone, ts.left, 110)
    ts.labelled("Perihal", subject, ts.left, 110)
    ts.space(0.8)
    ts.line("Isi Pengaduan:", face="sans-bold")
    top, page = ts.y + 6, len(ts.pages) - 1
    ts.space(0.3)
    body = paragraphs[: max(2, len(paragraphs) - 5)] if len(paragraphs) > 3 else paragraphs
    for p in body:
        ts.paragraph(p)
        ts.space(0.4)
    if len(ts.pages) - 1 == page:
        ts.box(top, ts.y + 6, page)
    ts.space(1.5)
    sig_x = A4[0] * 0.58
    ts.line(f"{region.place}, {_id_date(written)}", x=sig_x)
    ts.line("Pelapor,", x=sig_x)
    ts.scribble(sig_x + 6, rng)
    ts.line(f"( {name} )", x=sig_x)
    fields = TrueFields(
        sender_name=name,
        nik=nik,
        address=address,
        phone=phone,
        phone_e164=normalize_phone(phone),
        letter_date=written.isoformat(),
        letter_place=region.place,
        addressee=None,
        subject=subject,
        body="\n\n".join(body),
    )
    return Composed("form", fields, ts.finish())


# --------------------------------------------------------------------------------------------
# Rendering: raster (for scans) and a PDF with a real text layer.


def render(page: list[Item], dpi: int) -> Image.Image:
    """The page as a clean grayscale image at ``dpi``."""
    k = dpi / 72.0
    img = Image.new("L", (round(A4[0] * k), round(A4[1] * k)), 255)
    draw = ImageDraw.Draw(img)
    for item in page:
        if isinstance(item, Text):
            draw.text((item.x * k, item.y * k), item.text, fill=0,
                      font=_font(item.face, round(item.size * k)), anchor="ls")
        elif isinstance(item, Rule):
            draw.line([(item.x1 * k, item.y1 * k), (item.x2 * k, item.y2 * k)], fill=0,
                      width=max(1, round(item.width * k)))
        else:
            draw.line([(x * k, y * k) for x, y in item.points], fill=30,
                      width=max(1, round(item.width * k)), joint="curve")
    return img


def _pdf_string(text: str) -> bytes:
    raw = text.encode("cp1252", errors="replace")
    return b"(" + raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"


def text_pdf(pages: list[list[Item]]) -> bytes:
    """A PDF with real text (base-14 fonts, WinAnsi), as a word processor exports it.

    Written by hand (PDF 1.4, ISO 32000-1 section 7) so the set needs no PDF library.
    """
    fonts = sorted({it.face for page in pages for it in page if isinstance(it, Text)})
    objects: list[bytes] = []

    def add(body: bytes) -> int:
        objects.append(body)
        return len(objects)

    font_ids = {
        face: add(f"<< /Type /Font /Subtype /Type1 /BaseFont /{_PDF_FONTS[face]} "
                  f"/Encoding /WinAnsiEncoding >>".encode())
        for face in fonts
    }
    font_res = b" ".join(f"/F{i} {font_ids[f]} 0 R".encode() for i, f in enumerate(fonts))
    pages_id = len(objects) + 1 + 2 * len(pages)  # after each page's stream and page object
    page_ids = []
    for page in pages:
        ops: list[bytes] = []
        for it in page:
            if isinstance(it, Text):
                ops.append(b"BT /F%d %.1f Tf %.2f %.2f Td %s Tj ET" % (
                    fonts.index(it.face), it.size, it.x, A4[1] - it.y, _pdf_string(it.text)))
            elif isinstance(it, Rule):
                ops.append(b"%.2f w %.2f %.2f m %.2f %.2f l S" % (
                    it.width, it.x1, A4[1] - it.y1, it.x2, A4[1] - it.y2))
            else:
                pts = [b"%.2f %.2f" % (x, A4[1] - y) for x, y in it.points]
                ops.append(b"%.2f w " % it.width + pts[0] + b" m "
                           + b" ".join(p + b" l" for p in pts[1:]) + b" S")
        stream = zlib.compress(b"\n".join(ops))
        content = add(b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream)
                      + stream + b"\nendstream")
        page_ids.append(add(
            b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 %d %d] /Contents %d 0 R "
            b"/Resources << /Font << %s >> >> >>"
            % (pages_id, A4[0], A4[1], content, font_res)
        ))
    kids = b" ".join(b"%d 0 R" % i for i in page_ids)
    assert add(b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, len(page_ids))) == pages_id
    catalog = add(b"<< /Type /Catalog /Pages %d 0 R >>" % pages_id)
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % i + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for off in offsets:
        out.write(b"%010d 00000 n \n" % off)
    out.write(b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n"
              % (len(objects) + 1, catalog, xref))
    return out.getvalue()


# --------------------------------------------------------------------------------------------
# Degradation: what scanners and phones do to paper.


@dataclass(frozen=True)
class Scan:
    """How one sample is scanned."""

    dpi: int = 300
    skew: float = 0.0  # degrees, positive = counter-clockwise
    blur: float = 0.0  # Gaussian radius in pixels at the scan resolution
    noise: float = 0.0  # standard deviation of grey-level noise
    specks: float = 0.0  # fraction of pixels turned into dark specks
    ink: int = 0  # grey level of the ink (0 black; 120+ is faded)
    paper: int = 255
    output: str = "jpeg"  # jpeg, png, tiff-lzw, tiff-g4, pdf, photo, text-pdf
    quality: int = 80

    def describe(self) -> str:
        parts = [self.output, f"{self.dpi} dpi"]
        if self.skew:
            parts.append(f"skew {self.skew:+.1f}°")
        if self.blur:
            parts.append(f"blur {self.blur:.1f}")
        if self.noise:
            parts.append(f"noise {self.noise:.0f}")
        if self.ink > 60 or self.paper < 235:
            parts.append(f"low contrast (ink {self.ink}, paper {self.paper})")
        if self.output in ("jpeg", "pdf", "photo"):
            parts.append(f"q{self.quality}")
        return ", ".join(parts)


def degrade(clean: Image.Image, scan: Scan, rng: random.Random) -> Image.Image:
    """A clean 300 dpi page as the scanner delivers it (grayscale)."""
    img = clean
    if scan.dpi != 300:
        img = img.resize((round(img.width * scan.dpi / 300), round(img.height * scan.dpi / 300)),
                         Image.Resampling.LANCZOS)
    if scan.skew:
        img = img.rotate(scan.skew, resample=Image.Resampling.BICUBIC, fillcolor=255)
    if scan.blur:
        img = img.filter(ImageFilter.GaussianBlur(scan.blur))
    arr = np.asarray(img, dtype=np.float32)
    arr = scan.ink + (scan.paper - scan.ink) * (arr / 255.0)
    nprng = np.random.default_rng(rng.randrange(2**32))
    if scan.noise:
        arr += nprng.normal(0.0, scan.noise, arr.shape).astype(np.float32)
    if scan.specks:
        mask = nprng.random(arr.shape) < scan.specks
        arr[mask] = nprng.uniform(0, 120, int(mask.sum()))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "L")


def phone_photo(clean: Image.Image, rng: random.Random) -> Image.Image:
    """A phone photo of the page: on a table, uneven light, tilted, colour, about 200 dpi."""
    page = clean.resize((clean.width * 2 // 3, clean.height * 2 // 3), Image.Resampling.LANCZOS)
    w, h = page.size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    # Light from one corner: the far corner is about a third darker.
    cx, cy = rng.choice(((0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (1.0, 1.0)))
    dist = np.hypot(xx / w - cx, yy / h - cy) / math.sqrt(2)
    light = 1.0 - 0.32 * dist
    arr = np.asarray(page, dtype=np.float32) * 0.93 * light + 8
    gray = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "L")
    margin = (int(w * 0.08), int(h * 0.06))
    canvas = Image.new("L", (w + 2 * margin[0], h + 2 * margin[1]), 85)
    canvas.paste(gray, margin)
    canvas = canvas.rotate(rng.uniform(-2.5, 2.5), resample=Image.Resampling.BICUBIC,
                           fillcolor=85)
    nprng = np.random.default_rng(rng.randrange(2**32))
    carr = np.asarray(canvas, dtype=np.float32) + nprng.normal(0, 5, (canvas.height,
                                                                    canvas.width))
    rgb = np.stack([carr * 1.02, carr * 0.99, carr * 0.9], axis=-1)
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB")


def _bilevel(img: Image.Image, scan: Scan) -> Image.Image:
    """Black and white as a scanner's automatic threshold makes it: midway from ink to paper."""
    cut = (scan.ink + scan.paper) // 2
    return img.point(lambda v: 255 if v > cut else 0).convert("1")


def _encode_page(img: Image.Image, scan: Scan) -> tuple[bytes, str]:
    out = io.BytesIO()
    dpi = (scan.dpi, scan.dpi)
    if scan.output in ("jpeg", "pdf"):
        img.save(out, "JPEG", quality=scan.quality, dpi=dpi)
        return out.getvalue(), "image/jpeg"
    if scan.output == "png":
        img.save(out, "PNG", dpi=dpi)
        return out.getvalue(), "image/png"
    if scan.output == "tiff-g4":
        _bilevel(img, scan).save(
            out, "TIFF", compression="group4", dpi=dpi)
        return out.getvalue(), "image/tiff"
    img.save(out, "TIFF", compression="tiff_lzw", dpi=dpi)
    return out.getvalue(), "image/tiff"


def _document(pages: list[Image.Image], scan: Scan, rng: random.Random) -> tuple[bytes, str, str]:
    """The file the clerk uploads: (data, content type, extension)."""
    out = io.BytesIO()
    dpi = (scan.dpi, scan.dpi)
    if scan.output == "pdf":
        pages[0].save(out, "PDF", save_all=True, append_images=pages[1:], resolution=scan.dpi,
                      quality=scan.quality)
        return out.getvalue(), "application/pdf", "pdf"
    if scan.output.startswith("tiff"):
        frames = pages
        kwargs: dict[str, object] = {"compression": "tiff_lzw", "dpi": dpi}
        if scan.output == "tiff-g4":
            frames = [_bilevel(p, scan) for p in pages]
            kwargs["compression"] = "group4"
        frames[0].save(out, "TIFF", save_all=True, append_images=frames[1:], **kwargs)
        return out.getvalue(), "image/tiff", "tif"
    if scan.output == "photo":
        # Stored sideways, as a phone held in landscape writes it; EXIF Orientation 6 tells a
        # viewer to turn it 90° clockwise (Exif 2.32, tag 0x0112).
        exif = Image.Exif()
        exif[0x0112] = 6
        pages[0].transpose(Image.Transpose.ROTATE_90).save(out, "JPEG", quality=scan.quality,
                                                           exif=exif)
        return out.getvalue(), "image/jpeg", "jpg"
    data, ctype = _encode_page(pages[0], scan)
    return data, ctype, "png" if scan.output == "png" else "jpg"


# --------------------------------------------------------------------------------------------
# The set.

# (layout, pages, output) of each sample; degradation parameters are drawn per sample.
PLAN = (
    ("signature", 1, "jpeg"), ("identity", 1, "png"), ("kop", 1, "jpeg"), ("form", 1, "jpeg"),
    ("signature", 2, "pdf"), ("identity", 1, "jpeg"), ("form", 1, "png"),
    ("signature", 1, "photo"), ("kop", 2, "tiff-lzw"), ("signature", 1, "text-pdf"),
    ("identity", 2, "pdf"), ("form", 1, "tiff-g4"), ("signature", 1, "jpeg"),
    ("no-nik", 1, "jpeg"), ("kop", 1, "png"), ("signature", 3, "pdf"), ("form", 1, "photo"),
    ("identity", 2, "text-pdf"), ("signature", 2, "tiff-g4"), ("identity", 1, "jpeg"),
    ("form", 1, "jpeg"), ("kop", 1, "jpeg"), ("signature", 1, "png"), ("identity", 1, "tiff-lzw"),
    # Bad scans a person still reads: 150 dpi, blurred, noisy, faded, heavy JPEG.
    ("signature", 1, "jpeg-hard"), ("form", 1, "jpeg-hard"), ("kop", 2, "pdf-hard"),
)  # fmt: skip


def _scan_for(output: str, rng: random.Random) -> Scan:
    if output.endswith("-hard"):
        return Scan(
            dpi=150,
            skew=round(rng.choice((-1, 1)) * rng.uniform(2.5, 4.0), 2),
            blur=round(rng.uniform(0.5, 0.7), 2),
            noise=round(rng.uniform(14, 20), 1),
            specks=0.002,
            ink=rng.randint(110, 135),
            paper=rng.randint(200, 212),
            output=output.removesuffix("-hard"),
            quality=rng.randint(30, 40),
        )
    if output in ("text-pdf", "photo"):
        return Scan(output=output, dpi=200 if output == "photo" else 300, quality=85)
    dpi = rng.choice((150, 200, 200, 300, 300)) if output != "tiff-g4" else rng.choice((200, 300))
    faded = rng.random() < 0.3
    return Scan(
        dpi=dpi,
        skew=round(rng.choice((-1, 1)) * rng.uniform(1.0, 4.0), 2),
        blur=round(rng.uniform(0.0, 1.0) * dpi / 300, 2),
        noise=round(rng.uniform(3, 14), 1),
        specks=rng.choice((0.0, 0.0005, 0.001)),
        ink=rng.randint(110, 150) if faded else rng.randint(0, 50),
        paper=rng.randint(205, 225) if faded else rng.randint(235, 252),
        output=output,
        quality=rng.randint(40, 80),
    )


def generate(seed: int = 7, count: int = len(PLAN), *, names: Sequence[str] | None = None,
             page_images: bool = False) -> list[LetterSample]:
    """The letter set: ``count`` samples (cycling the plan), or only those in ``names``."""
    return list(iter_samples(seed, count, names=names, page_images=page_images))


def iter_samples(seed: int = 7, count: int = len(PLAN), *, names: Sequence[str] | None = None,
                 page_images: bool = False) -> Iterator[LetterSample]:
    """Like :func:`generate`, one sample at a time."""
    for i in range(count):
        name = f"letter-{i + 1:02d}"
        # One generator per sample, so asking for some names gives the same letters.
        rng = random.Random(f"{seed}/{i}")
        if names is not None and name not in names:
            continue
        layout, pages_wanted, output = PLAN[i % len(PLAN)]
        composed = compose(rng, i, pages_wanted=pages_wanted, layout=layout)
        scan = _scan_for(output, rng)
        if output == "text-pdf":
            yield LetterSample(name, composed.kind, composed.fields, f"{name}.pdf",
                               "application/pdf", text_pdf(composed.pages), len(composed.pages),
                               "text PDF (text layer)", text_layer=True,
                               page_texts=tuple(page_text(p) for p in composed.pages))
            continue
        clean = [render(p, 300) for p in composed.pages]
        if output == "photo":
            images = [phone_photo(c, rng) for c in clean]
        else:
            images = [degrade(c, replace(scan, skew=scan.skew + rng.uniform(-0.6, 0.6) * k),
                              rng) for k, c in enumerate(clean)]
        data, ctype, ext = _document(images, scan, rng)
        singles: tuple[bytes, ...] = ()
        if page_images:
            singles = (data,) if output == "photo" else tuple(
                _encode_page(im, scan)[0] for im in images)
        yield LetterSample(name, composed.kind, composed.fields, f"{name}.{ext}", ctype, data,
                           len(images), scan.describe() if output != "photo"
                           else "phone photo, EXIF orientation 6, uneven light, q85",
                           page_images=singles,
                           page_texts=tuple(page_text(p) for p in composed.pages))


def write(directory: Path, samples: Sequence[LetterSample]) -> None:
    """Each sample's file plus ``truth.json`` (fields, pages, degradation)."""
    directory.mkdir(parents=True, exist_ok=True)
    truth = {}
    for s in samples:
        (directory / s.filename).write_bytes(s.data)
        truth[s.filename] = {"kind": s.kind, "pages": s.pages, "degradation": s.degradation,
                             **asdict(s.fields)}
    (directory / "truth.json").write_text(json.dumps(truth, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    write(Path(sys.argv[1] if len(sys.argv) > 1 else "letters"), generate())
