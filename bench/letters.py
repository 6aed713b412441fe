"""Benchmark: field accuracy of the letter channel's reading on the generated letter set.

Every sample of ``tests/channels/letter/letterset.py`` (rendered Indonesian letters and
complaint-box forms, degraded like real scans: skew, noise, blur, JPEG, faded ink, bilevel TIFF,
phone photos with EXIF orientation, scanned and text PDFs, several multi-page) goes through the
gateway's own path: ``OcrPool.read_document`` then ``extract_fields``. Each field is compared
with the truth the generator wrote:

* NIK and phone: exact (the phone as E.164), over the letters that carry one (all are legible);
  a value found on a letter that has none counts as a false positive;
* name, date, place, addressee, subject, address: exact, and after normalising case, spacing and
  punctuation;
* body: character error rate (Levenshtein distance / length of the true body, whitespace
  collapsed), median and mean;
* how many fields were flagged low-confidence, and how many of the flagged and unflagged ones
  were wrong (is the highlight useful?).

    python bench/letters.py [--seed 7] [--count 24] [-j 2] [-v]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rapidfuzz.distance import Levenshtein

from channels.letter.extract import LetterFields, extract_fields
from channels.letter.ocr import OcrPool
from tests.channels.letter.letterset import PLAN, LetterSample, TrueFields, iter_samples

TEXT_FIELDS = ("sender_name", "letter_date", "letter_place", "addressee", "subject", "address")


def norm(text: str | None) -> str:
    """Case, spacing and punctuation removed."""
    return " ".join(re.sub(r"[^\w\s]", " ", (text or "").casefold()).split())


def body_cer(truth: str, read: str | None) -> float:
    t, r = " ".join(truth.split()), " ".join((read or "").split())
    return Levenshtein.distance(t, r) / max(1, len(t))


def truth_of(fields: TrueFields, name: str) -> str | None:
    if name == "phone":
        return fields.phone_e164
    value: str | None = getattr(fields, name)
    return value


def score(sample: LetterSample, found: LetterFields) -> dict[str, tuple[bool, bool, bool]]:
    """field -> (exact, normalised, flagged low) for every field the truth has or was found."""
    out = {}
    got = found.as_dict()
    for name in ("nik", "phone", *TEXT_FIELDS):
        want = truth_of(sample.fields, name)
        have = got[name]
        if want is None and have.value is None:
            continue
        out[name] = (have.value == want, norm(have.value) == norm(want), have.low)
    return out


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--count", type=int, default=len(PLAN),
                    help=f"samples (the plan has {len(PLAN)}; more repeat it with new content)")
    ap.add_argument("-j", type=int, default=2, help="OCR workers")
    ap.add_argument("-v", action="store_true", help="print every wrong field")
    args = ap.parse_args()
    samples = list(iter_samples(args.seed, args.count))
    pool = OcrPool(workers=args.j)
    await pool.start()
    start = time.perf_counter()
    results = []
    for sample in samples:
        pages = await pool.read_document(sample.data, sample.content_type)
        results.append((sample, pages, extract_fields(pages)))
    elapsed = time.perf_counter() - start
    await pool.close()

    n_pages = sum(len(p) for _, p, _ in results)
    print(f"{len(samples)} documents, {n_pages} pages (seed {args.seed}), read in {elapsed:.1f} s "
          f"with {args.j} workers\n")
    table: dict[str, list[tuple[bool, bool, bool]]] = {}
    false_pos: dict[str, int] = {"nik": 0, "phone": 0}
    cers = []
    for sample, _, found in results:
        for name, outcome in score(sample, found).items():
            if truth_of(sample.fields, name) is None:
                if name in false_pos:
                    false_pos[name] += 1
                continue
            table.setdefault(name, []).append(outcome)
        cers.append(body_cer(sample.fields.body, found.body.value))
        if args.v:
            for name, (exact, _, low) in score(sample, found).items():
                if not exact:
                    print(f"  {sample.name} {sample.degradation}\n    {name}: want "
                          f"{truth_of(sample.fields, name)!r}\n    {' ' * len(name)}  got  "
                          f"{found.as_dict()[name].value!r} ({found.as_dict()[name].confidence:.2f}"
                          f"{', LOW' if low else ''})")
            if cers[-1] > 0.05:
                print(f"  {sample.name} body CER {cers[-1]:.1%}: got {found.body.value!r}")
    print(f"{'field':<14}{'letters':>8}{'exact':>9}{'normalised':>12}")
    for name in ("nik", "phone", *TEXT_FIELDS):
        rows = table.get(name, [])
        if not rows:
            continue
        exact_rate = sum(r[0] for r in rows) / len(rows)
        normal_rate = sum(r[1] for r in rows) / len(rows)
        extra = ""
        if name in false_pos:
            extra = f"   false positives on letters without one: {false_pos[name]}"
        print(f"{name:<14}{len(rows):>8}{exact_rate:>9.1%}{normal_rate:>12.1%}{extra}")
    print(f"{'body':<14}{len(cers):>8}   CER median {statistics.median(cers):.2%}, "
          f"mean {statistics.mean(cers):.2%}, worst {max(cers):.1%}")
    flagged = [r for rows in table.values() for r in rows if r[2]]
    unflagged = [r for rows in table.values() for r in rows if not r[2]]
    print(f"\nlow-confidence highlight: {len(flagged)} fields flagged, "
          f"{sum(not r[1] for r in flagged)} of them wrong; "
          f"{sum(not r[1] for r in unflagged)} wrong fields not flagged (of {len(unflagged)})")
    print("targets: NIK and phone >= 95 % exact, body CER <= 5 %")


if __name__ == "__main__":
    asyncio.run(main())
