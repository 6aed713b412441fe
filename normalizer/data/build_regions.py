"""Regenerate ``regions.csv.gz`` from the two published packages named in SOURCES.md.

The NIK's first six digits are the code of the district (kecamatan) where the
number was issued.  Codes are never re-assigned when regions are renamed or
moved, so a NIK issued before a reorganisation keeps the *old* code for life
(UU No. 24 Tahun 2013 Pasal 13: the NIK is lifelong and does not change).
We therefore need two layers:

* the current list, Kepmendagri No. 300.2.2-2138 Tahun 2025, as packaged by the
  npm package ``idn-area-data`` (4.0.1);
* the last list before the 2022 Papua reorganisation (UU No. 14, 15, 16 Tahun
  2022 and UU No. 29 Tahun 2022), Permendagri No. 72 Tahun 2019, as packaged by
  the PyPI package ``nomiden`` (0.0.7).  Only codes that no longer exist in the
  current list are taken from it; they are flagged ``legacy`` and, where the
  same regency/district can be found by name in the current list, point to
  their current code (``successor``).

Usage (the archives are the untouched files that ``npm pack`` and
``pip download --no-deps`` produce)::

    python normalizer/data/build_regions.py idn-area-data-4.0.1.tgz \
        nomiden-0.0.7-py3-none-any.whl normalizer/data/regions.csv.gz

Output: gzip'd UTF-8 CSV, header ``code,name,legacy,successor``; ``code`` has
2 (province), 4 (regency/city) or 6 (district) digits without dots.
"""

from __future__ import annotations

import csv
import difflib
import gzip
import io
import re
import sys
import tarfile
import zipfile
from pathlib import Path

Row = tuple[str, str, str, str]


def _read_idn_area_data(tgz: Path) -> dict[str, str]:
    """Current codes -> names from the npm tarball's data/*.csv files."""
    out: dict[str, str] = {}
    with tarfile.open(tgz, "r:gz") as tar:
        for level in ("provinces", "regencies", "districts"):
            member = tar.extractfile(f"package/data/{level}.csv")
            if member is None:
                raise SystemExit(f"{level}.csv missing from {tgz}")
            text = io.TextIOWrapper(member, encoding="utf-8", newline="")
            for rec in csv.DictReader(text):
                out[rec["code"].replace(".", "")] = rec["name"].strip()
    return out


def _read_nomiden(whl: Path) -> dict[str, str]:
    """Permendagri 72/2019 codes -> names (provinces, regencies, districts only)."""
    out: dict[str, str] = {}
    with zipfile.ZipFile(whl) as zf, zf.open("nomiden/data/regcode.csv") as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
        for rec in csv.DictReader(text):
            code = rec["code"].strip()
            if len(code) in (2, 4, 6):
                out[code] = rec["region"].strip()
    return out


def _key(name: str) -> str:
    """Comparison key for a region name: letters only, regency/city prefix dropped."""
    low = name.lower()
    low = re.sub(r"^(kabupaten|kab\.?|kota|kot\.)\s*", "", low)
    return re.sub(r"[^a-z]", "", low)


def _kind(name: str) -> str:
    """'kota' for cities, 'kab' for regencies (the 71-99 range is not enough: legacy data)."""
    return "kota" if name.lower().startswith(("kota", "kot.")) else "kab"


def _title(name: str) -> str:
    """Upper-case legacy names ("KAB. MERAUKE") into the current style ("Kabupaten Merauke")."""
    name = re.sub(r"^KAB\.?\s+", "Kabupaten ", name)
    name = re.sub(r"^KOT(A|\.)\s+", "Kota ", name)
    return " ".join(
        w if w.startswith(("Kabupaten", "Kota")) else w.capitalize() for w in name.split()
    )


def build(current: dict[str, str], old: dict[str, str]) -> list[Row]:
    """Merge the current list with the legacy codes that it no longer contains."""
    rows: list[Row] = [(c, n, "", "") for c, n in current.items()]
    regency_successor: dict[str, str] = {}
    for code, name in old.items():
        if len(code) != 4 or code in current:
            continue
        # A regency that moved province keeps its name; look it up among the
        # current regencies with the same kind (Kota Sorong vs Kabupaten Sorong).
        matches = [
            c
            for c, n in current.items()
            if len(c) == 4 and _key(n) == _key(name) and _kind(n) == _kind(name)
        ]
        succ = matches[0] if len(matches) == 1 else ""
        regency_successor[code] = succ
        rows.append((code, current[succ] if succ else _title(name), "1", succ))
    for code, name in old.items():
        if len(code) != 6 or code in current:
            continue
        parent = regency_successor.get(code[:4], code[:4])
        siblings = {c: _key(n) for c, n in current.items() if len(c) == 6 and c.startswith(parent)}
        exact = [c for c, k in siblings.items() if k == _key(name)]
        succ = exact[0] if len(exact) == 1 else ""
        if not succ:
            # Transliteration variants of Papuan names ("Holuon"/"Holuwon",
            # "Kobagma"/"Kobakma"): accept the single close spelling.
            close = difflib.get_close_matches(_key(name), list(siblings.values()), n=2, cutoff=0.75)
            if len(close) == 1:
                succ = next(c for c, k in siblings.items() if k == close[0])
        rows.append((code, current[succ] if succ else _title(name), "1", succ))
    for code, name in old.items():
        if len(code) == 2 and code not in current:
            rows.append((code, _title(name), "1", ""))
    rows.sort(key=lambda r: (r[0], r[2]))
    return rows


def write(rows: list[Row], target: Path) -> None:
    """Write the rows as a reproducible (mtime 0) gzip'd CSV."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(("code", "name", "legacy", "successor"))
    writer.writerows(rows)
    with (
        target.open("wb") as fh,
        gzip.GzipFile(filename="", mode="wb", fileobj=fh, mtime=0, compresslevel=9) as gz,
    ):
        gz.write(buf.getvalue().encode("utf-8"))


def main(argv: list[str]) -> int:
    """Command-line entry point: build_regions.py IDN_AREA_TGZ NOMIDEN_WHL OUT."""
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    current = _read_idn_area_data(Path(argv[0]))
    old = _read_nomiden(Path(argv[1]))
    rows = build(current, old)
    write(rows, Path(argv[2]))
    legacy = sum(1 for r in rows if r[2])
    print(f"{len(rows)} codes written, {legacy} of them legacy", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
