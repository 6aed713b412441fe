"""Normalised Indonesian complaint text, and similarity keys that find the same matter twice.

The same complaint reaches LAPOR! in very different spellings: a web form in
careful Indonesian, the SMS version of it ("jln di dpn rmh sy rusak parah udh
3 bln gak diperbaiki tlg dong") cut at 160 characters, a tweet with the words
in another order and a typo or two.  This module gives (1) one normalised
form for comparison and (2) similarity keys and a score that survive those
differences.

Normalisation (``normalize_text``), step by step:

1. Unicode NFKC (full-width and styled letters become plain ones), then
   ``casefold`` and removal of combining accents (``é`` -> ``e``); URLs and
   e-mail addresses are dropped; punctuation separates words.
2. Colloquial and SMS spellings are replaced by standard words from the
   Colloquial Indonesian Lexicon (Salsabila, Winatmoko, Septiandri and Jamal,
   "Colloquial Indonesian Lexicon", IALP 2018), as packaged in ``indoNLP``,
   overridden and completed by the project's own ``slang_supplement.tsv``
   (negation forms to ``tidak``, administrative abbreviations such as
   ``kel``/``kec``, acronyms such as ``KK`` kept literally).  See
   ``normalizer/data/SOURCES.md``.
3. Reduplication written with the digit 2 (``jalan2``, ``kata2nya``) is
   spelled out as the hyphenated form that the spelling rules require
   (Pedoman Umum Ejaan Bahasa Indonesia, "Bentuk Ulang"), i.e. the word twice.
4. Elongated words are shortened ("rusakkkk" -> "rusak", "tolonggg" ->
   "tolong") without breaking real double letters ("saat", "maaf",
   "tinggal"): a word that is already known (a list of the ~20,000 most
   common Indonesian words, the stop words, the standard forms of the
   lexicons and, when slang is expanded, their colloquial forms) is left
   alone, and so is every double letter inside a word; otherwise each
   run of three or more equal letters, and a doubled final letter, is tried
   with one and with two letters, and the known form that is most frequent
   wins (the longer one on a tie).  With no known form, runs of three or more
   become one letter and doubles stay ("wkwkwk" and names are untouched).
5. Numbers lose leading zeros ("RT 05" and "RT 5" compare equal).
6. Optionally, stop words are removed (Tala's 2003 list for Indonesian, as
   packaged in ``indoNLP``, plus the project's own list of complaint
   boilerplate: greetings, "mohon", "terima kasih", "melaporkan") and words
   are stemmed with Tala's rule-based stemmer (implemented below; no
   dictionary, no dependency).  The stop words that name a place ("depan",
   "belakang", "atas", "bawah", "dalam", "luar", "lama", "baru": "pasar lama"
   and "pasar baru" are two markets) are kept, and number words become digits
   ("RT tiga" and "RT 3" compare equal, "RT tiga" and "RT lima" do not).

Similarity (``similarity``): both texts are reduced to comparison tokens
(normalised, stop words removed, stemmed).  Two feature sets are compared:

* the set of words, which ignores word order;
* the set of character 3-grams of each word, padded with word boundaries
  (``<rusak>`` -> ``<ru rus usa sak ak>``), which a typo only partly changes.

For each feature set the score mixes *containment*, ``|A & B| / min(|A|, |B|)``,
with *Jaccard*, ``|A & B| / |A | B|``, as ``0.75 * containment + 0.25 *
Jaccard``; the final score is ``0.6 * words + 0.4 * characters``: words
decide, character 3-grams add tolerance to typos and to a last word cut in
half by truncation.
Containment is what makes a complaint and its SMS version cut at 160
characters score high: the short text is (almost) inside the long one.
Jaccard keeps a part of the score proportional to overall overlap so that a
two-word message is not "the same" as every long text containing those two
words; in addition, when the smaller text has ``n < 6`` distinct words the
containment weight 0.75 is scaled by ``n / 6`` and the rest goes to Jaccard.
The score is symmetric, 1.0 for texts with the same comparison tokens in any
order, and 0.0 when either text has none.

Typical scores on the examples of the test-suite: a web complaint and its
SMS rewrite in slang ~0.9, the same complaint cut at 160 characters ~0.8,
paraphrased and reordered ~0.9, with typos ~0.9; different matters in the
same district 0.15-0.30, a different problem at the same address ~0.45.
Suggested thresholds (tune them on real traffic): ``>= 0.60`` very likely
the same matter (link automatically), ``0.40 - 0.60`` possibly the same
(show to an operator), ``< 0.40`` different matters.

For finding candidates among many stored complaints, ``minhash`` gives a
fixed-size signature of the character 3-grams (Broder 1997) whose agreement
rate estimates their Jaccard similarity, and ``minhash_bands`` cuts it into
locality-sensitive-hashing bands (Leskovec, Rajaraman and Ullman, *Mining of
Massive Datasets*, ch. 3): store the bands in an index, compare only the
complaints that share a band, then score those pairs with ``similarity``.
MinHash estimates Jaccard, not containment, so a truncated copy shares fewer
bands: use many narrow bands (the default 32 bands of 2 rows) for recall.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import unicodedata
from collections.abc import Callable, Iterable
from functools import cache, lru_cache, wraps
from typing import Concatenate, ParamSpec, TypeVar

from normalizer._resources import read_data_text

__all__ = [
    "char_shingles",
    "comparison_tokens",
    "minhash",
    "minhash_bands",
    "minhash_similarity",
    "normalize_text",
    "similarity",
    "word_set",
]


# --------------------------------------------------------------------------- data


def _tsv_pairs(text: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        key, _, value = line.partition("\t")
        if key and value:
            pairs[key.strip()] = value.strip()
    return pairs


@cache
def _lexicon() -> dict[str, str]:
    """Colloquial Indonesian Lexicon (Salsabila et al. 2018): colloquial -> standard."""
    return _tsv_pairs(read_data_text("slang_lexicon.tsv.gz"))


@cache
def _supplement() -> dict[str, str]:
    """The project's own additions and overrides (slang_supplement.tsv)."""
    return _tsv_pairs(read_data_text("slang_supplement.tsv"))


def _word_list(text: str) -> frozenset[str]:
    return frozenset(
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    )


@cache
def _domain_stopwords() -> frozenset[str]:
    """The project's complaint boilerplate list (stopwords_supplement.txt)."""
    return _word_list(read_data_text("stopwords_supplement.txt"))


@cache
def _stopwords() -> frozenset[str]:
    """Tala's stop-word list (via indoNLP) plus the project's boilerplate list."""
    return _word_list(read_data_text("stopwords.txt")) | _domain_stopwords()


@cache
def _word_rank() -> dict[str, int]:
    """Common Indonesian words -> frequency rank (0 = most frequent); OpenSubtitles 2024."""
    words = read_data_text("common_words.txt.gz").split()
    return {word: rank for rank, word in enumerate(words)}


@cache
def _known_words(with_slang: bool) -> frozenset[str]:
    """Words the normaliser can vouch for: common words, stop words, standard side of the
    lexicons, and (``with_slang``) their colloquial side, which is then expanded."""
    words: set[str] = set(_word_rank()) | set(_stopwords())
    for table in (_lexicon(), _supplement()):
        if with_slang:
            words.update(table)
        for value in table.values():
            words.update(_WORD.findall(value))
    return frozenset(words)


# ------------------------------------------------------------------------ stemmer
#
# Tala's rule-based stemmer for Indonesian (F. Z. Tala, "A Study of Stemming
# Effects on Information Retrieval in Bahasa Indonesia", ILLC MoL-2003-02,
# University of Amsterdam, 2003), the algorithm Apache Lucene's
# IndonesianStemmer also implements.  It needs no dictionary: affixes are
# removed in a fixed order while the word keeps more than two syllables
# (vowels).  It over-stems some words ("masalah" -> "masa"), but it does so
# identically on both texts, which is all comparison keys need.

_VOWELS = frozenset("aeiou")
_KE, _PENG, _DI, _MENG, _TER, _BER, _PE = (
    "ke",
    "peng",
    "di",
    "meng",
    "ter",
    "ber",
    "pe",
)


def _syllables(word: str) -> int:
    return sum(ch in _VOWELS for ch in word)


def _first_order_prefix(word: str) -> tuple[str, str] | None:
    """meng-/meny-/men-/mem-/me-, peng-/peny-/pen-/pem-, di-, ter-, ke- (Tala, step 3)."""

    def vowel_at(i: int) -> bool:
        return len(word) > i and word[i] in _VOWELS

    if word.startswith("meng"):
        return word[4:], _MENG
    if word.startswith("meny") and vowel_at(4):
        return "s" + word[4:], _MENG
    if word.startswith(("men", "mem")):
        return word[3:], _MENG
    if word.startswith("me"):
        return word[2:], _MENG
    if word.startswith("peng"):
        return word[4:], _PENG
    if word.startswith("peny") and vowel_at(4):
        return "s" + word[4:], _PENG
    if word.startswith("peny"):
        return word[4:], _PENG
    if word.startswith("pen") and vowel_at(3):
        return "t" + word[3:], _PENG
    if word.startswith(("pen", "pem")):
        return word[3:], _PENG
    if word.startswith("di"):
        return word[2:], _DI
    if word.startswith("ter"):
        return word[3:], _TER
    if word.startswith("ke"):
        return word[2:], _KE
    return None


def _second_order_prefix(word: str) -> tuple[str, str | None] | None:
    """ber-/be-, per-/pe- (Tala, step 4), with the "belajar"/"pelajar" exceptions."""
    if word.startswith("ber"):
        return word[3:], _BER
    if word == "belajar":
        return "ajar", _BER
    if word.startswith("be") and len(word) > 4 and word[2] not in _VOWELS and word[3:5] == "er":
        return word[2:], _BER
    if word.startswith("per"):
        return word[3:], None
    if word == "pelajar":
        return "ajar", None
    if word.startswith("pe"):
        return word[2:], _PE
    return None


def _suffix(word: str, flags: set[str]) -> str | None:
    """-kan, -an, -i, each forbidden after the prefixes it cannot combine with (Tala, step 5)."""
    if word.endswith("kan") and not flags & {_KE, _PENG, _PE}:
        return word[:-3]
    if word.endswith("an") and not flags & {_DI, _MENG, _TER}:
        return word[:-2]
    if word.endswith("i") and not word.endswith("si") and not flags & {_BER, _KE, _PENG}:
        return word[:-1]
    return None


# Words longer than this are worked out each time, never kept in the caches: the caches count
# words, not bytes, and a message of long made-up "words" would otherwise fill them with
# megabytes that stay for the life of the process.
MAX_CACHED_WORD = 48
_R = TypeVar("_R")
_P = ParamSpec("_P")


def _cached_when_short(
    func: Callable[Concatenate[str, _P], _R],
) -> Callable[Concatenate[str, _P], _R]:
    """``func`` of a word, remembered (lru_cache) for words of at most MAX_CACHED_WORD."""
    cached = lru_cache(maxsize=65536)(func)

    @wraps(func)
    def call(word: str, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        if len(word) <= MAX_CACHED_WORD:
            return cached(word, *args, **kwargs)  # type: ignore[arg-type]
        return func(word, *args, **kwargs)

    return call


@_cached_when_short
def _stem(word: str) -> str:
    """Tala stem of a lower-case word; other tokens (digits, short words) are returned as is."""
    if not word.isascii() or not word.isalpha():
        return word
    # Steps 1 and 2: inflectional particle, then possessive pronoun.
    if _syllables(word) > 2 and word.endswith(("kah", "lah", "pun")):
        word = word[:-3]
    if _syllables(word) > 2 and word.endswith(("ku", "mu")):
        word = word[:-2]
    elif _syllables(word) > 2 and word.endswith("nya"):
        word = word[:-3]
    # Steps 3-5: derivational prefixes and suffix, in Tala's order.
    flags: set[str] = set()
    first = _first_order_prefix(word) if _syllables(word) > 2 else None
    if first:
        word = first[0]
        flags.add(first[1])
        suffixless = _suffix(word, flags) if _syllables(word) > 2 else None
        if suffixless:
            word = suffixless
            second = _second_order_prefix(word) if _syllables(word) > 2 else None
            if second:
                word = second[0]
    else:
        second = _second_order_prefix(word) if _syllables(word) > 2 else None
        if second:
            word = second[0]
            if second[1]:
                flags.add(second[1])
        suffixless = _suffix(word, flags) if _syllables(word) > 2 else None
        if suffixless:
            word = suffixless
    return word


# ---------------------------------------------------------------------- normalise

# An e-mail address starts where a run of non-space starts (or after an "@") and its parts are
# taken possessively: each character is read a bounded number of times, so a pasted run of
# thousands of characters costs linear time, not quadratic (``\S+@\S+\.\S+`` took 0.4 s on
# one 19 000-character word, on the event loop).
_URL_OR_EMAIL = re.compile(
    r"(?:https?://|www\.)\S+|(?<![^\s@])[^\s@]++@[^\s@.]++(?:\.[^\s@.]++)+", re.I
)
_WORD = re.compile(r"[^\W_]+")
_ALPHA_DIGIT = re.compile(r"[^\W\d_]+|\d+")
# Reduplication written with 2, optionally followed by a suffix: jalan2, kata2nya.
_REDUP = re.compile(r"([^\W\d_]{2,})2(nya|an|kan|lah|ku|mu)?")
_MAX_VARIABLE_RUNS = 8


def _prepare(text: str) -> str:
    if text.isascii():  # most messages: no compatibility forms, no accents to strip
        return _URL_OR_EMAIL.sub(" ", text.lower())
    text = unicodedata.normalize("NFKC", text).casefold()
    decomposed = unicodedata.normalize("NFD", text)
    text = "".join(ch for ch in decomposed if unicodedata.category(ch) != "Mn")
    return _URL_OR_EMAIL.sub(" ", unicodedata.normalize("NFC", text))


def _is_known(word: str, with_slang: bool) -> bool:
    known = _known_words(with_slang)
    if word in known:
        return True
    stem = _stem(word)
    return stem != word and stem in known


def _deelongate(word: str, with_slang: bool) -> str:
    """Shorten letter runs of an unknown word to a dictionary form (see module docstring, 4)."""
    runs = [(ch, len(list(group))) for ch, group in itertools.groupby(word)]
    last = len(runs) - 1
    variable = [
        i for i, (ch, n) in enumerate(runs) if ch.isalpha() and (n >= 3 or (n == 2 and i == last))
    ]
    if not variable:
        return word
    if len(variable) <= _MAX_VARIABLE_RUNS:
        rank = _word_rank()
        unranked = len(rank)
        best: tuple[int, int, str] | None = None
        for choice in itertools.product((2, 1), repeat=len(variable)):
            lengths = dict(zip(variable, choice, strict=True))
            candidate = "".join(ch * lengths.get(i, n) for i, (ch, n) in enumerate(runs))
            if not _is_known(candidate, with_slang):
                continue
            # The most frequent dictionary form wins; on a tie, the longer one
            # ("saaat" -> "saat": real double letters are the reason to keep two).
            key = (rank.get(candidate, unranked), -len(candidate), candidate)
            if best is None or key < best:
                best = key
        if best is not None:
            return best[2]
    return "".join(ch * (1 if n >= 3 else n) for ch, n in runs)


@_cached_when_short
def _normalize_token(token: str, expand_slang: bool) -> tuple[str, ...]:
    """Standard words for one lower-case alphanumeric token."""
    supplement = _supplement()
    if expand_slang:
        if token in supplement:
            return tuple(_WORD.findall(supplement[token]))
        lexicon = _lexicon()
        if token in lexicon:
            out: list[str] = []
            for word in _WORD.findall(lexicon[token]):
                out.extend(_WORD.findall(supplement.get(word, word)))
            return tuple(out)
    redup = _REDUP.fullmatch(token)
    if redup:
        base = _normalize_token(redup.group(1), expand_slang)
        if base:
            return (*base, *base[:-1], base[-1] + (redup.group(2) or ""))
    pieces = _ALPHA_DIGIT.findall(token)
    if len(pieces) > 1:
        return tuple(w for piece in pieces for w in _normalize_token(piece, expand_slang))
    if token.isdigit():
        # Leading zeros dropped by hand: int() refuses more than 4300 digits (a pasted number).
        return (token.lstrip("0") or "0",) if token.isascii() else (token,)
    if not _is_known(token, expand_slang):
        shorter = _deelongate(token, expand_slang)
        if shorter != token:
            return _normalize_token(shorter, expand_slang)
    return (token,)


# Words of Tala's stop-word list that tell one place or one count from another: "pasar lama" and
# "pasar baru", "depan" and "belakang" the school, "RT tiga" and "RT lima" are two places, not one
# written twice. Without them two such messages of one sender had the same comparison tokens
# (dedup tier 2 took the second for a retry of the first and dropped it). Number words become
# digits, as "RT 3" and "3 bln" already are.
_PLACE_WORDS = frozenset({"depan", "belakang", "atas", "bawah", "dalam", "luar", "lama", "baru"})
_NUMBER_WORDS = {
    "satu": "1",
    "dua": "2",
    "tiga": "3",
    "empat": "4",
    "lima": "5",
    "enam": "6",
    "tujuh": "7",
    "delapan": "8",
    "sembilan": "9",
    "sepuluh": "10",
}


def _tokens(text: str, *, expand_slang: bool, remove_stopwords: bool, stem: bool) -> list[str]:
    words = [
        word
        for token in _WORD.findall(_prepare(text))
        for word in _normalize_token(token, expand_slang)
    ]
    if remove_stopwords:
        stop = _stopwords()
        words = [_NUMBER_WORDS.get(w, w) for w in words]
        words = [w for w in words if w not in stop or w in _PLACE_WORDS]
    if stem:
        words = [_stem(w) for w in words]
        if remove_stopwords:
            # Roots of boilerplate words ("melaporkan" -> "lapor").
            boilerplate = _domain_stopwords()
            words = [w for w in words if w not in boilerplate]
    return [w for w in words if w]


def normalize_text(
    text: str,
    *,
    expand_slang: bool = True,
    remove_stopwords: bool = False,
    stem: bool = False,
) -> str:
    """Return the normalised form of ``text``: lower-case standard words separated by spaces."""
    return " ".join(
        _tokens(text, expand_slang=expand_slang, remove_stopwords=remove_stopwords, stem=stem)
    )


def comparison_tokens(text: str) -> list[str]:
    """Tokens used for comparing complaints: normalised, stop words removed, stemmed."""
    return _tokens(text, expand_slang=True, remove_stopwords=True, stem=True)


def word_set(text: str) -> frozenset[str]:
    """Order-insensitive set of comparison tokens of ``text``."""
    return frozenset(comparison_tokens(text))


def _shingles_of(tokens: Iterable[str], k: int) -> frozenset[str]:
    grams: set[str] = set()
    for token in tokens:
        padded = f"<{token}>"
        if len(padded) <= k:
            grams.add(padded)
        else:
            grams.update(padded[i : i + k] for i in range(len(padded) - k + 1))
    return frozenset(grams)


def char_shingles(text: str, k: int = 3) -> frozenset[str]:
    """Character k-grams of each comparison token, padded with < and > at word boundaries."""
    if k < 2:
        raise ValueError("k must be at least 2")
    return _shingles_of(comparison_tokens(text), k)


# --------------------------------------------------------------------- similarity

_CONTAINMENT_WEIGHT = 0.75
# Words decide; character 3-grams add tolerance to typos and cut-off last words.
_WORD_WEIGHT = 0.6
# Below this many distinct words in the smaller text, containment is damped.
_MIN_WORDS_FOR_CONTAINMENT = 6


def _overlap(a: frozenset[str], b: frozenset[str], damping: float) -> float:
    if not a or not b:
        return 0.0
    common = len(a & b)
    containment = common / min(len(a), len(b))
    jaccard = common / len(a | b)
    return (
        _CONTAINMENT_WEIGHT * damping * containment + (1 - _CONTAINMENT_WEIGHT * damping) * jaccard
    )


def similarity(a: str, b: str) -> float:
    """Score in [0, 1] that two complaint texts are about the same matter (see module docstring)."""
    return token_similarity(comparison_tokens(a), comparison_tokens(b))


def token_similarity(tokens_a: Iterable[str], tokens_b: Iterable[str]) -> float:
    """:func:`similarity` of two texts already reduced by :func:`comparison_tokens`."""
    words_a, words_b = frozenset(tokens_a), frozenset(tokens_b)
    if not words_a or not words_b:
        return 0.0
    damping = min(1.0, min(len(words_a), len(words_b)) / _MIN_WORDS_FOR_CONTAINMENT)
    word_score = _overlap(words_a, words_b, damping)
    char_score = _overlap(_shingles_of(words_a, 3), _shingles_of(words_b, 3), damping)
    return round(_WORD_WEIGHT * word_score + (1 - _WORD_WEIGHT) * char_score, 6)


# ------------------------------------------------------------------------ minhash

# Largest Mersenne prime below 2**64: universal hashing modulus (Carter-Wegman).
_MERSENNE_61 = (1 << 61) - 1


@lru_cache(maxsize=8)
def _permutations(num_perm: int) -> tuple[tuple[int, int], ...]:
    """Fixed (a, b) pairs for h(x) = (a*x + b) mod p, derived from a constant seed."""
    pairs = []
    for i in range(num_perm):
        digest = hashlib.blake2b(f"lapor-minhash-{i}".encode(), digest_size=16).digest()
        a = int.from_bytes(digest[:8], "big") % (_MERSENNE_61 - 1) + 1
        b = int.from_bytes(digest[8:], "big") % _MERSENNE_61
        pairs.append((a, b))
    return tuple(pairs)


def minhash(text: str, num_perm: int = 64) -> tuple[int, ...]:
    """MinHash signature (``num_perm`` integers) of the character 3-grams of ``text``."""
    if num_perm < 1:
        raise ValueError("num_perm must be positive")
    grams = char_shingles(text)
    perms = _permutations(num_perm)
    if not grams:
        return tuple(_MERSENNE_61 for _ in perms)
    hashes = [
        int.from_bytes(hashlib.blake2b(g.encode(), digest_size=8).digest(), "big") % _MERSENNE_61
        for g in grams
    ]
    return tuple(min((a * h + b) % _MERSENNE_61 for h in hashes) for a, b in perms)


def minhash_similarity(sig_a: tuple[int, ...], sig_b: tuple[int, ...]) -> float:
    """Share of equal positions of two signatures: an estimate of the 3-gram Jaccard index."""
    if len(sig_a) != len(sig_b) or not sig_a:
        raise ValueError("signatures must be non-empty and of the same length")
    return sum(x == y for x, y in zip(sig_a, sig_b, strict=True)) / len(sig_a)


def minhash_bands(signature: tuple[int, ...], bands: int = 32) -> list[str]:
    """Locality-sensitive-hashing band keys of a signature, for indexing candidates."""
    if bands < 1 or len(signature) % bands:
        raise ValueError("the signature length must be a multiple of bands")
    rows = len(signature) // bands
    keys = []
    for band in range(bands):
        chunk = signature[band * rows : (band + 1) * rows]
        digest = hashlib.blake2b(repr(chunk).encode(), digest_size=8).hexdigest()
        keys.append(f"{band}:{digest}")
    return keys
