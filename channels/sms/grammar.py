"""The SMS keyword grammar, in Indonesian (pure, no IO).

What a citizen may type to 1708, case and punctuation tolerant::

    [REGION] ... CEK|STATUS|DICEK ... <no. lacak> ...  its status -> NotAComplaint("status-query")
    [REGION] INFO | BANTUAN | HELP [LAPOR|SMS|dong|min...]  how to use -> NotAComplaint("help")
                                      (HELP, the English word, answered in English)
    [REGION] [RAHASIA] [ANONIM] [NIK|KTP <16 digit>] <isi laporan>  -> ComplaintDraft
    Terima kasih | ok trm ksh min | siap pak [<no. lacak>]  not answered -> NotAComplaint("thanks")

* ``REGION`` is an optional leading keyword from a configurable table (``JABAR`` -> ``32``),
  kept as the complaint's ``location.region_code`` and removed from the body. Keywords may be
  several words (``Papua Barat``, ``Papua Barat Daya``); the longest one in the table wins. A
  keyword followed by a word that continues a place name (:data:`PLACE_WORDS`: ``Papua
  Barat``, ``Papua Pegunungan``, ``Jakarta Utara``, ``Aceh Besar``) is not taken at all unless
  the longer name is itself in the table: the region would be the wrong one, and the body
  would start with a stray ``Barat``.
* ``NIK 3201...`` or ``KTP 3201...`` (also glued, ``NIK3201...``, after ``no``/``nomor``, and
  with up to two :data:`NIK_FILLERS` between label and digits: ``NIK saya 3201...``, ``no KTP
  saya: 3201...``, ``NIK saya adalah 3201...``, ``NIK saya, 3201...``) may appear anywhere:
  the labelled number is validated with :func:`normalizer.parse_nik`; a valid NIK becomes
  ``reporter.nik`` and is removed from the body with its label (it is personal data and the
  body may be published); an invalid one is left in the text, not stored as a NIK, and the
  reply says so when it had at least 10 digits (``KTP 3 bulan belum jadi`` is about an ID
  card, not a NIK mistyped).
  An unlabelled 16-digit number is left alone, valid or not: a family card (KK) number has the
  same structure, and linking it as the reporter's NIK would be wrong.
* ``RAHASIA`` (confidential: never published) and ``ANONIM`` (identity hidden from the agency)
  set the privacy flags wherever they stand as words; as leading or trailing keywords they are
  removed from the body, inside a sentence they are left as written.
* ``CEK`` / ``STATUS`` / ``DICEK`` may start a status query, after courtesies at most (``Mohon
  cek ...``, ``Pak, tolong cek ...`` lead too); labelled NIKs (10 digits or more) are no words
  of it (``Cek status laporan NIK saya 3201...``: how to ask); in a short message (at most
  :data:`SHORT_QUERY` words besides courtesies) it may stand anywhere (``Tolong cek
  K7QM4XRT9``). A valid tracking ID (check symbol included), alone or as the two printed
  groups (``K7QM 4XRT9``, ``K7QM-4XRT9``), anywhere in a short message or among the
  :data:`STATUS_WINDOW` words after a leading ``CEK`` in a long one, makes it a query when the
  other words are all :data:`QUERY_WORDS` (query words and courtesies: ``Cek status laporan
  saya no lacak K7QM4XRT9 terima kasih``, ``Tolong cek K7QM-4XRT9 ya kak``), or when ``CEK``
  leads and the ID is one word with a digit among the next words (``CEK K7QM4XRT9 kok lama``).
  An ID among more than :data:`EVIDENCE_WORDS` other words, or with a word of
  :data:`NEWS_WORDS`, whether ``CEK`` leads or not, is a report naming its complaint
  (``Laporan K7QM4XRT9 lubang makin besar, kemarin 2 motor jatuh, mohon cek``: new evidence,
  filed). Otherwise the ID may be ordinary words (``Tolong cek PDAM Taman Sari``: ``PDAM`` +
  ``TAMAN`` passes the check symbol, as 1 word pair in 30 does, and so do words such as
  ``KEJAKSAAN``): the message is a complaint carrying the ID in
  :attr:`Interpretation.maybe_status`, and the service files it unless that ID exists, in which
  case it answers the status. Without a valid ID the message is a query when it has nothing
  but query words and courtesies and at most one ID-shaped word: 8 to 10 letters and digits
  with at least one digit, alone or as a group of 4 and the rest (the rest with a digit or
  without a vowel: ``Cek RT05 banjir`` is an address and a word). Anything such (no ID at all,
  ``Cek status laporan saya dong``, ``CEK K7QM4XRT8 terima kasih``, ``cek K70M4XRT9``: a wrong
  check symbol, a symbol left out or added, a 0 for a Q) is answered "not found", or how to
  ask when no ID was typed: a citizen asking for a status never gets a new tracking ID for a
  "complaint" reading ``CEK``. Anything else (``Cek jalan rusak``, ``Status tanah saya``,
  ``Cek RT05 jalan rusak``, ``Mohon cek jalan rusak``) is a complaint, ``CEK`` included in
  its body.
* An empty message, or one with nothing but keywords, is a :class:`ParseError` (quarantined);
  so is a body without a single letter (a lone NIK, a bare number): there is nothing to report.
* A body of one word without a region keyword (``p``, ``tes``, ``halo``, ``Banjir``, an
  unknown command such as ``REG`` or ``STOP``), of nothing but greetings and courtesies
  (``Halo min``, ``Selamat pagi pak``), or a service command with the service's name (``REG
  LAPOR``, ``UNREG LAPOR``, ``STOP SMS``; ``INFO LAPOR`` and ``Info dong min`` are help) is no
  report either:
  ``NotAComplaint("too-short")``, recorded and answered with how to report, not filed for an
  agency. ``JABAR banjir`` says what and where: a complaint; ``Stop pungli`` too.
* A body of nothing but thanks, acknowledgements and courtesies, at least one of them thanks
  or an acknowledgement (:data:`THANKS_WORDS`: ``Terima kasih``, ``Ok makasih min``, ``siap
  pak``, ``OK``, ``trm ksh``), maybe quoting a valid tracking ID (``Siap pak, terima kasih.
  K7QM-4XRT9``, ``no``/``lacak`` around it), answers a reply: ``NotAComplaint("thanks")``,
  recorded and not answered (an answer would be thanked for again).
* A long message joined from its parts (``min_words`` 1) is filed whatever of it arrived: one
  word, a lone ``Terima kasih.`` part, a command word.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace

from gateway import tracking
from gateway.domain import (
    ComplaintDraft,
    Location,
    NotAComplaint,
    ParseOutcome,
    Privacy,
    Reporter,
)
from gateway.errors import ParseError
from normalizer import ValidNik, normalize_phone, parse_nik
from normalizer.nik import place_names

# DICEK, DICEKIN: the passive forms of a polite request ("Mohon dicek K7QM-4XRT9").
STATUS_WORDS = frozenset({"CEK", "CEKSTATUS", "STATUS", "DICEK", "DICEKIN"})
HELP_WORDS = frozenset({"INFO", "BANTUAN", "HELP"})
ENGLISH_HELP_WORDS = frozenset({"HELP"})  # the English option: how to report, in English
CONFIDENTIAL_WORD = "RAHASIA"
ANONYMOUS_WORD = "ANONIM"
NIK_LABELS = frozenset({"NIK", "KTP"})  # the words a NIK is read after (see _NIK)
# The commands of Indonesian SMS services ("REG <name>", "UNREG <name>", "STOP"): alone or
# with the name of the service (:data:`SERVICE_NAMES`) no report, answered with how to report.
SERVICE_COMMANDS = frozenset({"REG", "UNREG", "STOP", "UNSUB", "BERHENTI", "START"})
SERVICE_NAMES = frozenset({"LAPOR", "SMS", "ALL", "SEMUA"})
# Every word the grammar reads as a command. A region keyword is read first, so a region
# keyword holding one of them would hide that command: gateway.settings refuses such a table.
COMMAND_WORDS = (
    STATUS_WORDS
    | HELP_WORDS
    | NIK_LABELS
    | SERVICE_COMMANDS
    | frozenset({CONFIDENTIAL_WORD, ANONYMOUS_WORD})
)
# Fewer words than this in a complaint's body without a region keyword are no report ("p",
# "tes", "halo", "Banjir", an unknown command such as "REG"): recorded, answered with how to
# report, not filed. With a region it is ("JABAR banjir": what, and where).
MIN_WORDS = 2
# Words after a leading CEK/STATUS searched for a tracking ID in a long message ("cek no.
# lacak K7QM-4XRT9 ...": the third); in a short one (SHORT_QUERY) the ID may stand anywhere.
STATUS_WINDOW = 4
# More words than this besides query words and the ID, CEK not leading: a report naming its
# complaint, not a status query (see _status_query).
EVIDENCE_WORDS = 3
# A message with CEK/STATUS and at most this many words besides courtesies is short: its
# CEK/STATUS need not lead ("Tolong cek K7QM4XRT9") and its ID may stand anywhere.
SHORT_QUERY = 10
# Thanks and acknowledgements: a message of nothing but these and POLITE_WORDS ("Terima kasih",
# "Ok makasih min", "siap pak") answers a reply; it is recorded and not answered.
THANKS_WORDS = frozenset(
    {
        "TERIMA", "TRIMA", "KASIH", "KASI", "TERIMAKASIH", "TRIMAKASIH", "MAKASIH", "MAKASI",
        "MKSH", "MKS", "TKS", "THX", "THANKS", "THANK", "TQ", "TRIMS", "OK", "OKE",
        "OKAY", "OKEY", "OCE", "SIP", "SIAP", "BAIK", "BAIKLAH", "NOTED", "IYA", "YA", "YAA",
        "SAMA", "NUWUN", "SUWUN", "MATUR", "HATUR", "NUHUN",
        # SMS spellings: "trm ksh", "trmksh", "makasi bnyk" (BNYK: see POLITE_WORDS)
        "TRM", "TRMA", "KSH", "KSIH", "TRMKSH", "TRMKASIH", "TRIMAKASI", "TERIMAKASI",
        "MKASIH", "MKSIH", "MAKACIH", "TENGKYU", "THANKYOU", "TQVM", "THNX",
    }
)  # fmt: skip
# Courtesies around a request: forms of address, greetings, "please". Among the words of a
# status query they change nothing ("Tolong cek K7QM4XRT9 ya kak"); alone ("Halo min",
# "Selamat pagi pak") they are no report, answered with how to report.
POLITE_WORDS = frozenset(
    {
        "DONG", "YA", "YAH", "KAK", "KA", "MIN", "ADMIN", "PAK", "BU", "BAPAK", "IBU", "MAS",
        "MBAK", "BANG", "TOLONG", "MOHON", "PLEASE", "PLS", "HALO", "HALLO", "HAI", "HI",
        "SELAMAT", "PAGI", "SIANG", "SORE", "MALAM", "SALAM", "ASSALAMUALAIKUM", "YOU", "BANYAK",
        "TLG", "MHN", "BNYK", "BYK",  # SMS spellings of TOLONG, MOHON, BANYAK
    }
)  # fmt: skip
COURTESY_WORDS = THANKS_WORDS | POLITE_WORDS
# Words of a status query around the ID ("Cek status laporan saya no. lacak ... sudah sampai
# mana ya, terima kasih"): with nothing else but an ID-shaped word after CEK/STATUS, the
# message asks for a status.
QUERY_WORDS = (
    STATUS_WORDS
    | COURTESY_WORDS
    | {"NO", "NOMOR", "NOMER", "LACAK", "NOLACAK", "LAPORAN", "SAYA", "INFO", "SUDAH", "SDH"}
    | {"SAMPAI", "MANA", "BAGAIMANA", "GIMANA"}
    # SMS spellings: "cek laporan sy gmn ya min"
    | {"SY", "GMN", "GMNA", "GMANA", "BGMN", "BGMNA", "LAPORANNYA", "NMR", "UDAH", "UDH"}
    # Asking whether, and since when: "sudah 2 minggu belum ada kabar", "kok lama", "kapan
    # diproses"
    | {"BELUM", "BLM", "ADA", "KABAR", "KOK", "LAMA", "KAPAN", "DIPROSES", "DITANGGAPI"}
    | {"TANGGAPAN", "TINDAK", "LANJUT", "HARI", "MINGGU", "BULAN"}
)
# Words that bring news about a complaint rather than ask after it ("K7QM4XRT9 ditutup
# sepihak, mohon dicek", "status selesai tp air masih mati"): a message naming its ID with one
# of them is filed as evidence, not answered with the status.
NEWS_WORDS = frozenset(
    {
        "DITUTUP", "SEPIHAK", "PADAHAL", "MASIH", "MALAH", "TAPI", "TP", "NAMUN", "TETAPI",
        "JUSTRU", "SEKARANG", "SKRG", "KEMARIN", "TADI",
    }
)  # fmt: skip
# Words that continue a place name after a region keyword (Papua Barat, Jakarta Utara, Aceh
# Besar, Maluku Barat Daya, Sulawesi Tenggara, Jakarta Raya, Papua Pegunungan). KOTA and
# KABUPATEN are not here: they come before a name ("JABAR Kota Bogor ..."), not after it.
PLACE_WORDS = frozenset(
    {
        "UTARA", "SELATAN", "BARAT", "TIMUR", "TENGAH", "TENGGARA", "BESAR", "DAYA", "LAUT",
        "RAYA", "PEGUNUNGAN",
    }
)  # fmt: skip

_WORD = re.compile(r"[^\W_]+")
_LETTER = re.compile(r"[^\W\d_]")
# A leading keyword: optional punctuation, the word, then punctuation/space up to the next word.
_LEADING = re.compile(r"^[\W_]*?([^\W_]+)(?:[\W_]+|$)")
_TRAILING = re.compile(r"(?:^|[\W_]+?)([^\W_]+)[\W_]*$")
# Short words people write between a NIK's label and its digits ("NIK saya 3201...", "no KTP
# saya: 3201...", "NIK saya adalah 3201..."): at most two of them.
NIK_FILLERS = frozenset({"SAYA", "SY", "AKU", "KU", "NO", "NOMOR", "NOMER", "NMR", "ADALAH"})
_NIK_NUMBER = ("NO", "NOMOR", "NOMER", "NMR")  # may stand before the label: "no KTP 3201..."
# Words around a tracking ID quoted in a thank-you ("Terima kasih, no lacak K7QM-4XRT9").
_ID_LABELS = frozenset({"NO", "LACAK", "NOLACAK"})
_NOT_GLUED = r"(?![^\W\d_])"  # the word ends here: "Nikah", "KTPnya", "sayang" are not words
# "NIK" or "KTP" as a word (or glued to the digits: "NIK3201..."), maybe after "no"/"nomor",
# up to two filler words, an optional separator, then digit groups joined by one space, dot or
# dash. The number stands inside the match so the whole "no KTP saya 3201..." is cut out.
_NIK = re.compile(
    rf"(?<![^\W_])(?:(?:{'|'.join(_NIK_NUMBER)}){_NOT_GLUED}[\s:.#-]*)?"
    rf"(?:{'|'.join(sorted(NIK_LABELS))}){_NOT_GLUED}"
    rf"(?:[\s:.=#-]+(?:{'|'.join(sorted(NIK_FILLERS))}){_NOT_GLUED}){{0,2}}"
    rf"[\s:.,=#-]*(\d+(?:[ .\-]\d+)*)",
    re.IGNORECASE,
)
_GROUP = re.compile(r"\d+")
_NIK_LENGTH = 16
# A labelled number this short is no NIK mistyped but something else ("KTP 3 bulan belum jadi",
# "NIK saya 2x ditolak"): the reply does not call it an invalid NIK.
_NIK_ATTEMPT = 10
# A tracking ID typed in the two groups it is printed in (tracking.display: 4 + 5 symbols).
_ID_FIRST_GROUP = 4
# Vowels: every Indonesian word has one; a group of an ID without a digit rarely does.
_VOWELS = frozenset("AEIOU")


class Intent(enum.StrEnum):
    """What an SMS asks for."""

    COMPLAINT = "complaint"
    STATUS = "status-query"
    HELP = "help"
    FRAGMENT = "fragment"
    TOO_SHORT = "too-short"  # one word ("p", "tes", "halo", "REG"): no report to file
    THANKS = "thanks"  # only thanks and courtesies ("Terima kasih", "ok makasih min")
    NOT_SUBSCRIBER = "not-a-subscriber"  # an operator's or a bank's message to a modem's SIM


@dataclass(frozen=True, slots=True)
class Interpretation:
    """The grammar's answer: the intent and what the reply needs."""

    intent: Intent
    draft: ComplaintDraft | None = None
    tracking_id: str | None = None  # STATUS: the canonical ID, None when it is not valid
    typed: str = ""  # STATUS: the ID as typed, without spaces and dashes ('' when none was)
    nik_rejected: bool = False  # COMPLAINT: a labelled NIK was not valid and was not stored
    english: bool = False  # HELP: asked in English
    # COMPLAINT: a valid tracking ID the message may be asking about ("Cek PDAM Taman Sari, air
    # mati": PDAM+TAMAN passes the check symbol). When that ID exists the message is a status
    # query (:meth:`as_status_query`; the service looks it up), otherwise this complaint.
    maybe_status: str | None = None

    @property
    def outcome(self) -> ParseOutcome:
        """The parse outcome for the intake port."""
        if self.intent is Intent.COMPLAINT:
            assert self.draft is not None
            return self.draft
        return NotAComplaint(self.intent.value)

    def as_status_query(self) -> Interpretation:
        """This message read as the status query of :attr:`maybe_status` (that ID exists)."""
        assert self.maybe_status is not None
        return Interpretation(
            Intent.STATUS, tracking_id=self.maybe_status, typed=self.maybe_status
        )


@dataclass(frozen=True, slots=True)
class _Query:
    """A status query found in a message: the ID (None when none is valid), as typed, and
    whether the message is surely a query (else it is one only if the ID exists)."""

    tracking_id: str | None
    typed: str
    certain: bool

    def interpretation(self) -> Interpretation:
        return Interpretation(Intent.STATUS, tracking_id=self.tracking_id, typed=self.typed)


def interpret(
    text: str,
    sender: str,
    regions: Mapping[str, str],
    default_region: str = "ID",
    min_words: int = MIN_WORDS,
) -> Interpretation:
    """Read one SMS; :class:`ParseError` when there is nothing to read. ``min_words``: the
    fewest words a body without a region keyword is a complaint with (a long message joined
    from its parts is one whatever arrived of it: 1)."""
    if not text.strip():
        raise ParseError("SMS kosong / empty SMS", stage="empty")
    table = {" ".join(keyword_words(k)): v for k, v in regions.items()}
    region_code, rest = _region(text, table)
    words = [w.upper() for w in _WORD.findall(rest)]
    help_word = _help_request(words)
    if help_word is not None:
        return Interpretation(Intent.HELP, english=help_word in ENGLISH_HELP_WORDS)
    # A labelled NIK is no word of a query ("Cek status laporan NIK saya 3201...": how to ask).
    said = [w.upper() for w in _WORD.findall(_without_niks(rest))]
    query = _status_query(said)
    if query is not None and query.certain:
        return query.interpretation()
    try:
        complaint = _complaint(rest, sender, region_code, default_region, min_words)
    except ParseError:
        if query is None:
            raise
        return query.interpretation()
    if query is None:
        return _about(complaint, said)
    if complaint.intent is not Intent.COMPLAINT:
        return query.interpretation()
    # Ordinary words may pass for an ID ("Cek PDAM Taman Sari, ..."): a complaint, unless the
    # service finds that ID (then the message asks for its status).
    return replace(_about(complaint, said), maybe_status=query.tracking_id)


def _about(reading: Interpretation, words: list[str]) -> Interpretation:
    """A complaint with the valid tracking ID it names, if any, as the complaint it is about
    (``Laporan K7QM-4XRT9 lubangnya makin besar``): the intake adds it to that complaint when
    its sender holds the ID, and files it as any other otherwise (ordinary words may pass for
    an ID, and a stranger may quote one). The ID stays in the body as written. ``words``: the
    message's, upper case, labelled NIKs left out (as the status query reads them).

    The first ID of letters and digits, in one word or in the two groups the receipt prints,
    is taken before any that is letters only or digits only: ordinary words (``PDAM Taman``,
    ``KEJAKSAAN``) and customer numbers (``532987699``) pass the check symbol too, and an ID
    copied from a receipt nearly always mixes the two (nine symbols, eight of them digits)."""
    if reading.intent is not Intent.COMPLAINT or reading.draft is None:
        return reading
    named = [tid for _, _, tid in _ids(words, len(words))]
    if not named:
        return reading
    about = next((tid for tid in named if _mixed(tid)), named[0])
    return replace(reading, draft=replace(reading.draft, about=about))


def _mixed(tid: str) -> bool:
    """Whether a tracking ID has both letters and digits."""
    return any(c.isdigit() for c in tid) and not tid.isdigit()


def keyword_words(keyword: str) -> list[str]:
    """The words of a region keyword as the grammar matches them (upper case, punctuation
    dropped: ``"Papua-Barat"`` is ``["PAPUA", "BARAT"]``); none: it never matches."""
    return _WORD.findall(keyword.upper())


def _region(text: str, table: Mapping[str, str]) -> tuple[str | None, str]:
    """The region code of the longest leading keyword in ``table`` and the text after it.

    ``(None, text)`` when there is none, or when the word after it continues a place name and
    the keyword is a place's name (it begins the name of a province, regency or city), not an
    abbreviation: ``Papua Pegunungan`` in a table without it is no Papua, ``Aceh Besar`` is a
    regency, not the province Aceh, but ``JATENG pegunungan Dieng`` is Central Java.
    """
    longest = max((key.count(" ") + 1 for key in table), default=0)
    words: list[tuple[str, str]] = []  # each leading word, upper case, and the text after it
    rest = text
    while len(words) <= longest:
        word, rest = _leading(rest)
        if word is None:
            break
        words.append((word.upper(), rest))
    for n in range(min(longest, len(words)), 0, -1):
        key = " ".join(w for w, _ in words[:n])
        if key in table:
            if n < len(words) and words[n][0] in PLACE_WORDS and _place_name(key):
                return None, text
            return table[key], words[n - 1][1]
    return None, text


def _place_name(key: str) -> bool:
    """Whether the words of a region keyword (``KOTA``, ``KABUPATEN`` left out) begin an
    official place name: a name, not an abbreviation such as ``JATENG``."""
    start = tuple(w for w in key.split(" ") if w not in ("KOTA", "KABUPATEN", "KAB"))
    return bool(start) and any(name[: len(start)] == start for name in place_names())


def _help_request(words: list[str]) -> str | None:
    """The help word of a request for help: ``INFO`` alone, with the service's name (``INFO
    LAPOR``) or with courtesies only (``Info dong min``, ``Mohon bantuan pak``); else None."""
    helps = [w for w in words if w in HELP_WORDS]
    if len(helps) != 1:
        return None
    if words[0] in HELP_WORDS and _service_command(words):
        return words[0]
    if all(w in HELP_WORDS or w in POLITE_WORDS for w in words):
        return helps[0]
    return None


def _status_query(words: list[str]) -> _Query | None:
    """The status query in a message's words (upper case, region keyword and labelled NIKs
    taken out), or None.

    There is one when CEK/STATUS leads (after courtesies at most: "Mohon cek ..."), or stands
    anywhere in a short message (SHORT_QUERY).
    A valid ID found makes it certain when every other word is a query word or a courtesy, or
    when it leads, and the ID (one word, with a digit, as IDs nearly always have) stands among
    the next STATUS_WINDOW words. An ID among more than EVIDENCE_WORDS other words, or with a
    word of NEWS_WORDS, is a report naming its complaint: None, a complaint, whatever leads.
    Otherwise the ID may be ordinary words, or the few words a question: the message is a
    complaint unless the ID exists ("Tolong cek PDAM Taman Sari air mati": PDAM+TAMAN passes
    the check symbol). Without CEK/STATUS, see :func:`_bare_query`. Without a valid ID
    it is a query only when nothing but query words and one ID-shaped word are there."""
    if not any(w in STATUS_WORDS for w in words):
        return _bare_query(words)
    # CEK/STATUS leads when only courtesies stand before it ("Pak, tolong cek laporan ...").
    first = next((i for i, w in enumerate(words) if w not in POLITE_WORDS), len(words))
    leading = first < len(words) and words[first] in STATUS_WORDS
    short = sum(w not in COURTESY_WORDS for w in words) <= SHORT_QUERY
    if not (leading or short):
        return None
    found = _find_id(words, len(words) if short else first + 1 + STATUS_WINDOW)
    if found is not None:
        start, size, tid = found
        others = [
            w for j, w in enumerate(words) if not start <= j < start + size and w not in QUERY_WORDS
        ]
        strong = size == 1 and any(c.isdigit() for c in tid)
        if others and (len(others) > EVIDENCE_WORDS or any(w in NEWS_WORDS for w in others)):
            # A report naming its ID and saying more than a few words besides asking, or news
            # ("Tolong cek K7QM4XRT9, lubangnya makin besar, kemarin 2 motor jatuh", "Laporan
            # K7QM4XRT9 ditutup sepihak, mohon dicek"): new evidence, filed (dedup joins it
            # when it is the same matter), not a question, whatever the ID looks like (one in
            # 16 has no digit, and a customer number may pass the check symbol). A few words
            # ("Laporan K7QM4XRT9 belum ditanggapi, tolong cek") ask for the status: certain
            # when CEK leads and the ID is one word with a digit, else if that ID exists (the
            # look-up below).
            return None
        certain = not others or (leading and strong and start <= first + STATUS_WINDOW)
        return _Query(tid, tid, certain)
    typed = _query_rest(words)
    if typed is None:
        return None
    symbols = "".join(typed)
    return _Query(tracking.normalize(symbols), symbols, certain=True)


def _bare_query(words: list[str]) -> _Query | None:
    """A status query without CEK/STATUS: a valid ID and nothing but query words and
    courtesies around it ("Laporan K7QM4XRT9 sampai mana?", "No lacak K7QM-4XRT9", a lone
    "K7QM4XRT9"); a thank-you quoting the ID is thanks (see :func:`_thanks`)."""
    if _thanks(words):
        return None
    found = _find_id(words, len(words))
    if found is None:
        return None
    start, size, tid = found
    if any(w not in QUERY_WORDS for j, w in enumerate(words) if not start <= j < start + size):
        return None
    return _Query(tid, tid, certain=True)


def _ids(words: list[str], end: int) -> Iterator[tuple[int, int, str]]:
    """Every valid tracking ID among ``words[:end]``, in order, alone or as its two printed
    groups: where it starts, in how many words, and the ID."""
    for i, word in enumerate(words[:end]):
        if word in QUERY_WORDS:
            continue
        tid = tracking.normalize(word)
        if tid is not None:
            yield i, 1, tid
        elif len(word) == _ID_FIRST_GROUP and i + 1 < len(words):
            second = words[i + 1]
            if len(second) == tracking.LENGTH - _ID_FIRST_GROUP and second not in QUERY_WORDS:
                tid = tracking.normalize(word + second)
                if tid is not None:
                    yield i, 2, tid


def _find_id(words: list[str], end: int) -> tuple[int, int, str] | None:
    """The valid tracking ID among ``words[:end]`` (:func:`_ids`): one word with a digit is
    taken first, else the first found."""
    first: tuple[int, int, str] | None = None
    for found in _ids(words, end):
        if found[1] == 1 and any(c.isdigit() for c in found[2]):
            return found
        first = first or found
    return first


def _thanks(words: list[str]) -> bool:
    """Whether ``words`` are a thank-you: thanks or acknowledgements and courtesies, maybe
    quoting a valid tracking ID (the one just received) with ``no``/``lacak``."""
    found = _find_id(words, len(words))
    if found is not None:
        start, size, _ = found
        words = [w for w in words[:start] + words[start + size :] if w not in _ID_LABELS]
    return all(w in COURTESY_WORDS for w in words) and any(w in THANKS_WORDS for w in words)


def _service_command(words: list[str]) -> bool:
    """Whether ``words`` are a service command and the name of the service ("REG LAPOR",
    "UNREG LAPOR", "STOP SMS", "INFO LAPOR")."""
    return (
        len(words) == 2
        and (words[0] in SERVICE_COMMANDS or words[0] in HELP_WORDS)
        and words[1] in SERVICE_NAMES
    )


def _query_rest(words: list[str]) -> list[str] | None:
    """The words after CEK/STATUS that are not query words, when they are at most one
    ID-shaped word (an ID maybe mistyped: wrong check symbol, a symbol left out or added, a 0
    for a Q, the group split); None when the message is not a query."""
    rest = [w for w in words if w not in QUERY_WORDS]
    if not rest:
        return rest
    if len(rest) > 2 or (len(rest) == 2 and len(rest[0]) != _ID_FIRST_GROUP):
        return None
    if len(rest) == 2 and not _id_part(rest[1]):  # "Cek RT05 banjir": an address and a word
        return None
    symbols = "".join(rest)
    if (
        tracking.LENGTH - 1 <= len(symbols) <= tracking.LENGTH + 1
        and symbols.isascii()
        and any(c.isdigit() for c in symbols)
    ):
        return rest
    return None


def _id_part(word: str) -> bool:
    """Whether ``word`` can be the second group of an ID: a digit in it, or no vowel (a word
    has one: "banjir", "macet" after "RT05" are a report, not "K7QM 4XRT9" mistyped)."""
    return any(c.isdigit() for c in word) or not any(c in _VOWELS for c in word.upper())


def _leading(text: str) -> tuple[str | None, str]:
    match = _LEADING.match(text)
    if match is None:
        return None, text
    return match.group(1), text[match.end() :]


def _complaint(
    text: str, sender: str, region_code: str | None, default_region: str, min_words: int
) -> Interpretation:
    body, nik, nik_rejected = _take_nik(text)
    confidential = anonymous = False
    # Leading and trailing privacy keywords, in any order, are removed from the body.
    while True:
        word, after = _leading(body)
        upper = word.upper() if word else None
        if upper == CONFIDENTIAL_WORD:
            confidential, body = True, after
        elif upper == ANONYMOUS_WORD:
            anonymous, body = True, after
        else:
            break
    while True:
        match = _TRAILING.search(body)
        upper = match.group(1).upper() if match else None
        if match is not None and upper == CONFIDENTIAL_WORD:
            confidential, body = True, body[: match.start()]
        elif match is not None and upper == ANONYMOUS_WORD:
            anonymous, body = True, body[: match.start()]
        else:
            break
    words = {w.upper() for w in _WORD.findall(body)}
    confidential = confidential or CONFIDENTIAL_WORD in words
    anonymous = anonymous or ANONYMOUS_WORD in words
    body = body.strip()
    if not _LETTER.search(body):
        raise ParseError("isi laporan kosong / no complaint text", stage="empty")
    said = [w.upper() for w in _WORD.findall(body)]
    if min_words > 1:  # a whole message (a long one joined from its parts is filed)
        if _thanks(said):
            # "Terima kasih", "Ok makasih min", "Siap pak, terima kasih. K7QM-4XRT9" (the
            # receipt's ID quoted): nothing to answer.
            return Interpretation(Intent.THANKS)
        if all(w in COURTESY_WORDS for w in said):  # "Halo min": how to report
            return Interpretation(Intent.TOO_SHORT)
        if _service_command(said):
            return Interpretation(Intent.TOO_SHORT)
    if region_code is None and len(said) < min_words:
        return Interpretation(Intent.TOO_SHORT)
    return Interpretation(
        Intent.COMPLAINT,
        draft=ComplaintDraft(
            body=body,
            reporter=Reporter(nik=nik, phone=normalize_phone(sender, default_region)),
            privacy=Privacy(anonymous=anonymous, confidential=confidential),
            location=Location(region_code=region_code) if region_code else None,
        ),
        nik_rejected=nik_rejected,
    )


def _without_niks(text: str) -> str:
    """``text`` without its labelled NIKs, valid or not (10 digits or more, see
    :data:`_NIK_ATTEMPT`): what a status query is read in."""
    while True:
        for match in _NIK.finditer(text):
            digits, end = _nik_digits(text, match)
            if len(digits) >= _NIK_ATTEMPT:
                text = _cut(text, match.start(), end)
                break
        else:
            return text


def _nik_digits(text: str, match: re.Match[str]) -> tuple[str, int]:
    """The digits of a labelled number (16 at most) and where they end in ``text``."""
    digits = ""
    end = match.start(1)
    for group in _GROUP.finditer(text, match.start(1), match.end(1)):
        digits += group.group()
        end = group.end()
        if len(digits) >= _NIK_LENGTH:
            break
    return digits, end


def _take_nik(text: str) -> tuple[str, str | None, bool]:
    """The text without its first valid labelled NIK, the NIK, and whether one was refused."""
    rejected = False
    for match in _NIK.finditer(text):
        digits, end = _nik_digits(text, match)
        result = parse_nik(digits) if len(digits) == _NIK_LENGTH else None
        if isinstance(result, ValidNik):
            return _cut(text, match.start(), end), result.nik, False
        rejected = rejected or len(digits) >= _NIK_ATTEMPT
    return text, None, rejected


def _cut(text: str, start: int, end: int) -> str:
    """``text`` without ``[start, end)``, joining the two sides with one space at most."""
    left, right = text[:start], text[end:]
    left = left.rstrip(" \t,;:-")
    right = right.lstrip(" \t,;:.-")
    if left and right and not left[-1].isspace() and not right[0].isspace():
        return f"{left} {right}"
    return left + right
