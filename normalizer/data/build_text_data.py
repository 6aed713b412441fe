"""Regenerate the text-normalisation word lists from the published packages in SOURCES.md.

* ``slang_lexicon.tsv.gz`` -- the Colloquial Indonesian Lexicon (Salsabila et al.,
  IALP 2018) as redistributed in the PyPI package ``indoNLP`` (0.3.4), module
  ``indoNLP/preprocessing/slang_data.py``.  The module is parsed with ``ast``
  (never imported or executed).  Keys are lower-cased and kept only when they
  are a single alphanumeric token, because that is how ``normalizer.text``
  tokenises; the package stores some keys regex-escaped (``nama\\.a``) or with
  quote marks standing for reduplication (``hati"``), which our tokeniser never
  produces.
* ``stopwords.txt`` -- the Indonesian stop-word list of the same package
  (``indoNLP/preprocessing/stopwords_data.py``, from stopwords.net, i.e. Tala
  2003), without its one regular-expression entry and its hyphenated entries,
  which our tokeniser splits at the hyphen.
* ``common_words.txt.gz`` -- Indonesian words by decreasing frequency, from the
  npm package ``@zxcvbn-ts/language-id`` (4.1.1), file ``src/commonWords.json``
  (OpenSubtitles 2024 via OPUS).  Only alphabetic entries are kept.

Usage::

    python normalizer/data/build_text_data.py indoNLP-0.3.4-py3-none-any.whl \
        zxcvbn-ts-language-id-4.1.1.tgz normalizer/data
"""

from __future__ import annotations

import ast
import gzip
import json
import re
import sys
import tarfile
import zipfile
from pathlib import Path

_TOKEN = re.compile(r"[a-z0-9]+")


def _literal_assigned(source: str, name: str) -> object:
    """Value of the literal assigned to ``name`` at module level in ``source``."""
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == name for t in node.targets
        ):
            return ast.literal_eval(node.value)
    raise SystemExit(f"{name} not found")


def slang_rows(indonlp_whl: Path) -> list[tuple[str, str]]:
    """(colloquial form, standard form) pairs, filtered to single-token keys."""
    with zipfile.ZipFile(indonlp_whl) as zf:
        source = zf.read("indoNLP/preprocessing/slang_data.py").decode("utf-8")
    data = _literal_assigned(source, "SLANG_DATA")
    if not isinstance(data, dict):
        raise SystemExit("SLANG_DATA is not a dict")
    rows: dict[str, str] = {}
    for raw_key, raw_value in data.items():
        key = str(raw_key).strip().lower()
        value = " ".join(str(raw_value).strip().lower().split())
        if _TOKEN.fullmatch(key) and value and key != value:
            rows[key] = value
    return sorted(rows.items())


def stopword_list(indonlp_whl: Path) -> list[str]:
    """Plain-word entries of indoNLP's STOPWORDS set."""
    with zipfile.ZipFile(indonlp_whl) as zf:
        source = zf.read("indoNLP/preprocessing/stopwords_data.py").decode("utf-8")
    data = _literal_assigned(source, "STOPWORDS")
    if not isinstance(data, (set, frozenset, list, tuple)):
        raise SystemExit("STOPWORDS is not a collection")
    return sorted({str(w).strip().lower() for w in data if _TOKEN.fullmatch(str(w).strip())})


def common_words(zxcvbn_tgz: Path) -> list[str]:
    """Alphabetic words of commonWords.json, most frequent first, without repeats."""
    with tarfile.open(zxcvbn_tgz, "r:gz") as tar:
        member = tar.extractfile("package/src/commonWords.json")
        if member is None:
            raise SystemExit("commonWords.json missing")
        data = json.loads(member.read().decode("utf-8"))
    if not isinstance(data, list):
        raise SystemExit("commonWords.json is not a list")
    seen: dict[str, None] = {}
    for word in data:
        word = str(word).strip().lower()
        if word.isalpha() and word.isascii():
            seen.setdefault(word, None)
    return list(seen)


def _write_gz(path: Path, text: str) -> None:
    """Reproducible gzip (mtime 0) of UTF-8 text."""
    with (
        path.open("wb") as fh,
        gzip.GzipFile(filename="", mode="wb", fileobj=fh, mtime=0, compresslevel=9) as gz,
    ):
        gz.write(text.encode("utf-8"))


def main(argv: list[str]) -> int:
    """Command-line entry point: build_text_data.py INDONLP_WHL ZXCVBN_ID_TGZ OUTDIR."""
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    indonlp, zxcvbn, outdir = Path(argv[0]), Path(argv[1]), Path(argv[2])
    slang = slang_rows(indonlp)
    stopwords = stopword_list(indonlp)
    words = common_words(zxcvbn)
    _write_gz(outdir / "slang_lexicon.tsv.gz", "".join(f"{k}\t{v}\n" for k, v in slang))
    (outdir / "stopwords.txt").write_text("".join(f"{w}\n" for w in stopwords), encoding="utf-8")
    _write_gz(outdir / "common_words.txt.gz", "".join(f"{w}\n" for w in words))
    print(
        f"{len(slang)} slang pairs, {len(stopwords)} stop words, {len(words)} common words",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
