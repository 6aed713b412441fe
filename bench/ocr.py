"""Benchmark: the gateway's OCR of a page beside the raw ``tesseract`` command, same pages.

The pages are scanned pages of the generated letter set (``tests/channels/letter/letterset.py``:
JPEG, PNG and TIFF scans at 150-300 dpi, skewed, noisy, faded; phone photos), each written as
the single-page file a scanner produces. Both sides work on the same files with the same
parallelism (``-j``, default 2 = one per core):

* raw: ``tesseract <file> - -l ind`` with ``OMP_THREAD_LIMIT=1``, ``-j`` at a time;
* gateway: ``OcrPool(workers=j).read_document(data)`` for each page file, ``-j`` at a time: the
  full path (type sniffing, decoding, EXIF orientation, scaling, deskew, contrast, Tesseract
  with TSV, the page image for the review page, and the pickling between processes).

The two sides take turns, ``-j`` pages each, so both meet the same background load when the
machine is shared. Prints per-page seconds (median and mean; a page's time is its own wall time
with ``-j`` pages in flight), the total wall time, the CPU seconds (user + system of every
process involved, tesseract included), the ratios gateway / raw, and the character error rate
of each against the printed text of the page. Then the whole batch is handed to the gateway at
once (every page queued, as for a complaint-box batch) and its peak memory is printed: the
resident set of the gateway process plus its workers and their tesseract processes (RSS summed,
and PSS, which counts shared pages once), sampled every 20 ms from ``/proc``; beside it, the
raw command's processes at ``-j`` at a time.

    python bench/ocr.py [-n 50] [-j 2] [--seed 7] [-v]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rapidfuzz.distance import Levenshtein

from channels.letter.ocr import OcrPool
from tests.channels.letter.letterset import iter_samples


def pages(n: int, seed: int) -> list[tuple[str, bytes, str]]:
    """n scanned pages: (file name, bytes, printed text)."""
    out: list[tuple[str, bytes, str]] = []
    count = 0
    while len(out) < n:
        count += 24
        out = []
        for sample in iter_samples(seed, count, page_images=True):
            pairs = zip(sample.page_images, sample.page_texts, strict=False)
            for k, (data, text) in enumerate(pairs):
                ext = {"image/jpeg": "jpg", "image/png": "png"}.get(sample.content_type, "tif")
                if sample.content_type == "application/pdf":
                    ext = "jpg"  # a scanned PDF's page image, as the scanner encoded it
                out.append((f"{sample.name}-p{k + 1}.{ext}", data, text))
    return out[:n]


def cer(truth: str, read: str) -> float:
    """Character error rate after collapsing whitespace."""
    t, r = " ".join(truth.split()), " ".join(read.split())
    return Levenshtein.distance(t, r) / max(1, len(t))


class MemorySampler:
    """Peak RSS and PSS of this process and all its descendants, sampled in a thread."""

    def __init__(self, interval: float = 0.02, exclude: frozenset[int] = frozenset()) -> None:
        self.interval = interval
        self.exclude = exclude  # processes (with their descendants) not counted
        self.include_self = True
        self.peak_rss = 0
        self.peak_pss = 0
        self.peak_children_rss = 0  # the same without this process itself
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _children(pid: int) -> list[int]:
        kids: list[int] = []
        for task in Path(f"/proc/{pid}/task").glob("*/children"):
            try:
                kids += [int(x) for x in task.read_text().split()]
            except OSError:
                pass
        return kids

    def _tree(self) -> list[int]:
        todo, seen = [os.getpid()], []
        while todo:
            pid = todo.pop()
            if pid in self.exclude:
                continue
            seen.append(pid)
            todo += self._children(pid)
        return seen if self.include_self else seen[1:]

    @staticmethod
    def _kib(path: str, key: str) -> int:
        try:
            for line in Path(path).read_text().splitlines():
                if line.startswith(key):
                    return int(line.split()[1])
        except (OSError, ValueError, IndexError):
            pass
        return 0

    def _run(self) -> None:
        while not self._stop.is_set():
            tree = self._tree()
            each = [self._kib(f"/proc/{p}/status", "VmRSS:") for p in tree]
            pss = sum(self._kib(f"/proc/{p}/smaps_rollup", "Pss:") for p in tree)
            self.peak_rss, self.peak_pss = max(self.peak_rss, sum(each)), max(self.peak_pss, pss)
            children = sum(each[1:]) if self.include_self else sum(each)
            self.peak_children_rss = max(self.peak_children_rss, children)
            self._stop.wait(self.interval)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


async def timed_batch(
    jobs: list[Callable[[], Awaitable[str]]], parallel: int
) -> tuple[float, list[float], list[str]]:
    """Run the jobs ``parallel`` at a time: (total seconds, per-job seconds, outputs)."""
    gate = asyncio.Semaphore(parallel)
    times = [0.0] * len(jobs)
    texts = [""] * len(jobs)

    async def one(i: int) -> None:
        async with gate:
            t0 = time.perf_counter()
            texts[i] = await jobs[i]()
            times[i] = time.perf_counter() - t0

    start = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(len(jobs))))
    return time.perf_counter() - start, times, texts


async def raw_tesseract(path: Path) -> str:
    proc = await asyncio.create_subprocess_exec(
        "tesseract", str(path), "-", "-l", "ind",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, "OMP_THREAD_LIMIT": "1"},
    )  # fmt: skip
    out, _ = await proc.communicate()
    return out.decode("utf-8", "replace")


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of processes and of their reaped children (tesseract runs), from /proc."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(v) for v in fields[11:15])  # utime stime cutime cstime
    return total / os.sysconf("SC_CLK_TCK")


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=50, help="pages in the batch")
    ap.add_argument("-j", type=int, default=2, help="pages at a time (gateway workers)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("-v", action="store_true", help="print every page")
    args = ap.parse_args()
    batch = pages(args.n, args.seed)
    pool = OcrPool(workers=args.j)
    await pool.start()  # worker processes up before the clock starts
    workers = MemorySampler._children(os.getpid())
    n = len(batch)
    raw_times, gw_times = [0.0] * n, [0.0] * n
    raw_texts, gw_texts = [""] * n, [""] * n
    raw_total = gw_total = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for name, data, _ in batch:
            (Path(tmp) / name).write_bytes(data)
            paths.append(Path(tmp) / name)
        await raw_tesseract(paths[0])  # language data into the page cache for both sides

        async def gateway(data: bytes) -> str:
            return "\n".join(p.text for p in await pool.read_document(data))

        # Timing: the two sides take turns, j pages each, so both meet the same background
        # load of a shared machine.
        raw_cpu = gw_cpu = 0.0
        for g in range(0, n, args.j):
            group = range(g, min(n, g + args.j))
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t, times, texts = await timed_batch(
                [partial(raw_tesseract, paths[k]) for k in group], args.j
            )
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            raw_cpu += after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
            raw_total += t
            for k, tk, xk in zip(group, times, texts, strict=True):
                raw_times[k], raw_texts[k] = tk, xk
            cpu0 = cpu_seconds([os.getpid(), *workers])
            t, times, texts = await timed_batch(
                [partial(gateway, batch[k][1]) for k in group], args.j
            )
            gw_cpu += cpu_seconds([os.getpid(), *workers]) - cpu0
            gw_total += t
            for k, tk, xk in zip(group, times, texts, strict=True):
                gw_times[k], gw_texts[k] = tk, xk

        # Memory: the whole batch handed to the gateway at once (a complaint-box batch: every
        # page queued, the workers busy), and the raw command j at a time.
        with MemorySampler() as gw_mem:
            await asyncio.gather(*(gateway(d) for _, d, _ in batch))
        with MemorySampler(exclude=frozenset(workers)) as raw_mem:
            raw_mem.include_self = False  # the tesseract processes only
            await timed_batch([partial(raw_tesseract, p) for p in paths], args.j)
    await pool.close()

    truths = [t for _, _, t in batch]
    raw_cer = [cer(t, r) for t, r in zip(truths, raw_texts, strict=True)]
    gw_cer = [cer(t, r) for t, r in zip(truths, gw_texts, strict=True)]
    if args.v:
        for k, (name, _, _) in enumerate(batch):
            print(f"{name:<22} raw {raw_times[k]:5.2f} s CER {raw_cer[k]:6.1%}   "
                  f"gateway {gw_times[k]:5.2f} s CER {gw_cer[k]:6.1%}")
    print(f"{n} scanned pages, {args.j} at a time, tesseract with OMP_THREAD_LIMIT=1\n")
    print(f"{'run':<24}{'median s/page':>14}{'mean s/page':>12}{'total s':>9}{'CPU s':>8}"
          f"{'median CER':>12}{'mean CER':>10}{'peak RSS':>10}{'peak PSS':>10}")
    for label, total, times, cpu, cers, mem in (
        ("raw tesseract -l ind", raw_total, raw_times, raw_cpu, raw_cer, raw_mem),
        ("gateway OcrPool", gw_total, gw_times, gw_cpu, gw_cer, gw_mem),
    ):
        print(f"{label:<24}{statistics.median(times):>14.2f}{statistics.mean(times):>12.2f}"
              f"{total:>9.1f}{cpu:>8.1f}{statistics.median(cers):>12.1%}"
              f"{statistics.mean(cers):>10.1%}{mem.peak_rss / 1024:>8.0f} MB"
              f"{mem.peak_pss / 1024:>7.0f} MB")
    print(f"\ngateway / raw: median per page "
          f"{statistics.median(gw_times) / statistics.median(raw_times):.2f}x, total "
          f"{gw_total / raw_total:.2f}x, CPU {gw_cpu / raw_cpu:.2f}x (target <= 1.2x)")
    print(f"peak memory with all {n} pages queued: gateway process + {args.j} workers + their "
          f"tesseract; raw: the tesseract processes alone")
    print(f"  of which the {args.j} workers and their tesseract: "
          f"{gw_mem.peak_children_rss / 1024:.0f} MB RSS (the rest is this process, which also "
          f"holds the {n} generated pages)")


if __name__ == "__main__":
    asyncio.run(main())
