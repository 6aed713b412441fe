"""Benchmark: dedup quality on the labelled set, and the cost of one decision at 10k vs 1M.

Quality: the evaluation set of tests/dedup_eval goes through the real intake port
(``IntakeService.accept``) on SQLite and on PostgreSQL; pairwise precision/recall of the
duplicate links and cross-NIK merges are printed, then a threshold sweep on SQLite.

Speed (PostgreSQL): complaints are bulk-loaded with COPY (person ids spread over ~200 000
persons, received_at within 60 days; every person with complaints has a persons row and a phone
identity), then N accepts from persons who each have 3 recent complaints are timed, at 10 000
and at 1 000 000 complaints stored in the same run. Also timed: the candidate query + scoring
alone (``gateway.dedup.decide``). ``EXPLAIN`` of the candidate query is printed at the end.

    python bench/dedup.py [-n 200] [--skip-1m] [--skip-quality] [--sweep 0.4,0.5,0.6,0.7]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import create_pg, drop_pg, random_keys, run
from gateway import bootstrap
from gateway.crypto import Keys, load_keys
from gateway.dedup import decide, load_candidates
from gateway.domain import Channel, ComplaintDraft, RawInbound, Reporter
from gateway.intake import Parser
from gateway.settings import Settings, load_settings
from gateway.storage import migrate
from gateway.storage.schema import complaints, raw_inbound
from normalizer import comparison_tokens
from tests.dedup_eval import evaluate

CONFIG = ROOT / "config" / "gateway.toml"
PERSONS = 200_000
TIMED_RECENT = 3  # recent complaints of each timed person
TEXTS = [
    "Jalan berlubang di depan pasar sudah tiga bulan tidak diperbaiki",
    "Lampu penerangan jalan umum mati sepanjang jalan desa",
    "Sampah di TPS tidak diangkut seminggu dan berbau",
    "Saluran drainase tersumbat sehingga banjir setiap hujan",
    "Bantuan sosial BLT belum cair tiga bulan",
    "KTP elektronik belum dicetak karena blanko habis",
    "Air PDAM tidak mengalir lima hari tanpa pemberitahuan",
    "Pungutan liar saat mengurus kartu keluarga di kelurahan",
    "Puskesmas kekurangan dokter dan antrean sangat lama",
    "Guru honorer belum menerima honor empat bulan",
    "Sekolah negeri memungut uang gedung siswa baru",
    "Izin usaha tidak diproses dua bulan oleh DPMPTSP",
    "Listrik padam setiap malam selama seminggu",
    "BPJS Kesehatan PBI dinonaktifkan tanpa pemberitahuan",
    "Jembatan desa putus diterjang banjir",
    "Pupuk subsidi kosong di kios resmi",
]
TIMED_TEXT = (
    "Tarif parkir di depan rumah sakit umum daerah dipungut dua kali tanpa karcis resmi, "
    "mohon ditertibkan nomor {i}"
)


def make_settings(url: str, tmp: str, **dedup: Any) -> Settings:
    return load_settings(
        CONFIG,
        environ={},
        overrides={
            "database": {"url": url},
            "storage": {"file_store": f"{tmp}/files"},
            "outbox": {"enabled": False},
            "logging": {"level": "WARNING"},
            "dedup": dedup,
            "security": random_keys(),
        },
    )


# ---------------------------------------------------------------------------- quality


async def quality_run(db: str, threshold: float) -> evaluate.Report:
    with tempfile.TemporaryDirectory() as tmp:
        pg_name = None
        if db == "sqlite":
            url = f"sqlite+aiosqlite:///{tmp}/eval.db"
        else:
            pg_name, url = await create_pg()
        try:
            gw = bootstrap.build(make_settings(url, tmp, similarity_threshold=threshold))
            await migrate.upgrade(gw.engine)
            messages = evaluate.load_messages()
            report = await evaluate.run(gw.intake, gw.engine, messages, threshold)
            await gw.close()
        finally:
            if pg_name:
                await drop_pg(pg_name)
    return report


def row(db: str, r: evaluate.Report) -> str:
    return (
        f"{db:<11}{r.threshold:>6.2f}{len(r.truth):>7}{len(r.predicted):>7}"
        f"{len(r.true_positives):>5}{len(r.false_positives):>5}{len(r.false_negatives):>5}"
        f"{r.precision:>10.3f}{r.recall:>8.3f}{len(r.cross_nik):>11}"
    )


HEADER = (
    f"{'database':<11}{'thresh':>6}{'truth':>7}{'pred':>7}{'tp':>5}{'fp':>5}{'fn':>5}"
    f"{'precision':>10}{'recall':>8}{'cross-NIK':>11}"
)


async def quality(sweep: list[float], default: float) -> None:
    messages = evaluate.load_messages()
    print(f"Evaluation set: {len(messages)} messages, {len(evaluate.truth_pairs(messages))} "
          f"true duplicate pairs; by category: {evaluate.category_counts(messages)}\n")
    print(HEADER)
    reports = {}
    for db in ("sqlite", "postgresql"):
        reports[db] = await quality_run(db, default)
        print(row(db, reports[db]))
    print("\nThreshold sweep (SQLite):")
    print(HEADER)
    for t in sweep:
        r = reports["sqlite"] if t == default else await quality_run("sqlite", t)
        print(row("sqlite", r))
    print(f"\nMisjudged pairs at threshold {default:.2f} (SQLite):")
    for line in evaluate.explain(reports["sqlite"], messages):
        print("  " + line)
    print()


# ------------------------------------------------------------------------------ speed


def _person_id(j: int) -> str:
    return str(uuid.UUID(int=(1 << 96) | j))


def _phone(j: int) -> str:
    return f"+62815{j:08d}"


class Seeder:
    """COPY-loads raw_inbound + complaints rows, and persons/identities for new persons."""

    def __init__(self, conn: asyncpg.Connection, keys: Keys, now: datetime) -> None:
        self.conn = conn
        self.keys = keys
        self.now = now
        self.count = 0
        self.persons: set[int] = set()
        self.tokens = [" ".join(comparison_tokens(t)) for t in TEXTS]
        self.raw_cols = [c.name for c in raw_inbound.columns]
        self.c_cols = [c.name for c in complaints.columns]

    def _rows(self, specs: list[tuple[int, datetime]]) -> tuple[list[tuple[Any, ...]], ...]:
        raws, comps = [], []
        for person, received in specs:
            self.count += 1
            i = self.count
            raw_id = str(uuid.UUID(int=(2 << 96) | i))
            cid = str(uuid.UUID(int=(3 << 96) | i))
            tid = f"B{i:011d}"
            tokens = self.tokens[(i * 7 + person) % len(self.tokens)]
            raw = {
                "id": raw_id, "channel": "sms", "provider_message_id": f"seed-{i}",
                "parser": "bench.seed", "received_at": received, "stored_at": received,
                "content_type": "text/plain", "sha256": "0" * 64, "size": 60, "body": b"seed",
                "transport_meta": "{}", "status": "accepted", "tracking_id": tid,
                "complaint_id": cid, "sealed": False,  # seeded in the clear, as before 0006
            }
            comp = {
                "id": cid, "tracking_id": tid, "channel": "sms", "kind": "pengaduan",
                "status": "received", "title": None, "body": tokens, "received_at": received,
                "created_at": received, "anonymous": False, "confidential": False,
                "reporter": "{}", "location": None, "attachments": "[]", "occurred_on": None,
                "agency": None, "raw_inbound_id": raw_id, "person_id": _person_id(person),
                "sender_hash": None, "match_tokens": tokens, "sealed": False,
            }
            raws.append(tuple(raw.get(c) for c in self.raw_cols))
            comps.append(tuple(comp.get(c) for c in self.c_cols))
        return raws, comps

    async def load(self, specs: list[tuple[int, datetime]]) -> None:
        for k in range(0, len(specs), 100_000):
            raws, comps = self._rows(specs[k : k + 100_000])
            await self.conn.copy_records_to_table(
                "raw_inbound", records=raws, columns=self.raw_cols
            )
            await self.conn.copy_records_to_table("complaints", records=comps, columns=self.c_cols)
        new = sorted({p for p, _ in specs} - self.persons)
        self.persons.update(new)
        await self.conn.copy_records_to_table(
            "persons",
            records=[(_person_id(j), self.now, None) for j in new],
            columns=["id", "created_at", "merged_into"],
        )
        await self.conn.copy_records_to_table(
            "identities",
            records=[
                ("phone", self.keys.lookup_hash("phone", _phone(j)),
                 self.keys.encrypt(_phone(j)), _person_id(j), self.now)
                for j in new
            ],
            columns=["kind", "value_hash", "value_enc", "person_id", "first_seen_at"],
        )
        await self.conn.execute("ANALYZE")


def background(n: int, now: datetime, rng: random.Random) -> Iterator[tuple[int, datetime]]:
    for _ in range(n):
        yield rng.randrange(PERSONS), now - timedelta(seconds=rng.uniform(0, 60 * 86400))


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p * (len(s) - 1))))]


async def time_phase(
    gw: bootstrap.Gateway, timed: list[int], now: datetime, phase: str
) -> tuple[list[float], list[float]]:
    """Accepts (whole transaction) and the decision alone, for each timed person."""
    parser = Parser(
        "bench.dedup",
        lambda raw: ComplaintDraft(
            body=raw.body.decode(), reporter=Reporter(phone=raw.metadata["sender"])
        ),
    )
    accepts, decisions = [], []
    tokens = " ".join(comparison_tokens(TIMED_TEXT.format(i=0)))
    for j in timed:
        async with gw.engine.connect() as conn:
            t0 = time.perf_counter()
            since = now - timedelta(days=gw.settings.dedup.window_days)
            found = await load_candidates(
                conn, gw.settings.dedup, [_person_id(j)], since, gw.keys
            )
            decide(gw.settings.dedup, found.get(_person_id(j), []), None, tokens, now)
            decisions.append(time.perf_counter() - t0)
    for j in timed:
        raw = RawInbound(
            Channel.SMS,
            TIMED_TEXT.format(i=j).encode(),
            now,
            f"timed-{phase}-{j}",
            metadata={"sender": _phone(j)},
        )
        t0 = time.perf_counter()
        receipt = await gw.intake.accept(raw, parser)
        accepts.append(time.perf_counter() - t0)
        assert receipt.tracking_id
    return accepts, decisions


async def speed(n: int, skip_1m: bool) -> None:
    rng = random.Random(1708)
    pg_name, url = await create_pg()
    with tempfile.TemporaryDirectory() as tmp:
        try:
            settings = make_settings(url, tmp)
            gw = bootstrap.build(settings)
            await migrate.upgrade(gw.engine)
            keys = load_keys(settings)
            now = datetime.now(UTC)
            # Timed persons: two disjoint sets of n (one per phase), each with 3 recent complaints.
            timed = rng.sample(range(PERSONS), 2 * n)
            recent = [
                (j, now - timedelta(hours=rng.uniform(1, 10 * 24)))
                for j in timed
                for _ in range(TIMED_RECENT)
            ]
            conn = await asyncpg.connect(url.replace("+asyncpg", ""))
            seeder = Seeder(conn, keys, now)
            results: dict[str, tuple[list[float], list[float]]] = {}
            t0 = time.perf_counter()
            await seeder.load(recent + list(background(10_000 - len(recent), now, rng)))
            print(f"seeded {seeder.count:,} complaints in {time.perf_counter() - t0:.1f}s")
            results["10k"] = await time_phase(gw, timed[:n], now, "10k")
            if not skip_1m:
                t0 = time.perf_counter()
                target = 1_000_000 - seeder.count - n
                batch = 200_000
                while target > 0:
                    k = min(batch, target)
                    await seeder.load(list(background(k, now, rng)))
                    target -= k
                print(f"seeded up to {seeder.count:,} complaints in "
                      f"{time.perf_counter() - t0:.1f}s")
                results["1M"] = await time_phase(gw, timed[n:], now, "1M")
            count = await conn.fetchval("SELECT count(*) FROM complaints")
            print(f"complaints stored at the end: {count:,}; persons with identities: "
                  f"{len(seeder.persons):,}\n")
            print(f"{'stored':<8}{'what':<22}{'median ms':>10}{'p95 ms':>9}")
            for phase, (acc, dec) in results.items():
                for what, vals in (("accept (whole txn)", acc), ("decide() alone", dec)):
                    print(f"{phase:<8}{what:<22}{statistics.median(vals) * 1e3:>10.2f}"
                          f"{pct(vals, 0.95) * 1e3:>9.2f}")
            if "1M" in results:
                for idx, what in ((0, "accept"), (1, "decide()")):
                    ratio = statistics.median(results["1M"][idx]) / statistics.median(
                        results["10k"][idx]
                    )
                    print(f"ratio 1M/10k median {what}: {ratio:.2f} (target <= 1.5)")
            probe = _person_id(timed[-1])
            plan = await conn.fetch(
                # The statement gateway/dedup.py load_candidates issues (for one person here;
                # the intake asks for every person of a group commit at once).
                "EXPLAIN (ANALYZE, BUFFERS) SELECT * FROM (SELECT person_id, id, tracking_id, "
                "match_tokens, sender_hash, received_at, row_number() OVER (PARTITION BY "
                "person_id ORDER BY received_at DESC) AS rank FROM complaints "
                "WHERE person_id = ANY($1::varchar[]) AND received_at >= $2) AS ranked "
                "WHERE rank <= $3 ORDER BY person_id, rank",
                [probe],
                now - timedelta(days=settings.dedup.window_days),
                settings.dedup.max_candidates,
            )
            print(f"\nEXPLAIN candidate query at {count:,} complaints:")
            for r in plan:
                print("  " + r[0])
            phone_hash = keys.lookup_hash("phone", _phone(timed[-1]))
            plan = await conn.fetch(
                # The lookup gateway/identity.py issues for a group commit: IN lists of kinds
                # and keyed hashes (one of each here).
                "EXPLAIN (ANALYZE, BUFFERS) SELECT kind, value_hash, person_id FROM identities "
                "WHERE kind = ANY($1::varchar[]) AND value_hash = ANY($2::varchar[])",
                ["phone"],
                [phone_hash],
            )
            print(f"\nEXPLAIN identity lookup at {len(seeder.persons):,} identities:")
            for r in plan:
                print("  " + r[0])
            await conn.close()
            await gw.close()
        finally:
            await drop_pg(pg_name)


async def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("-n", type=int, default=200, help="timed accepts per phase")
    ap.add_argument("--skip-1m", action="store_true", help="time at 10k only")
    ap.add_argument("--skip-quality", action="store_true")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--sweep", default="0.4,0.45,0.5,0.55,0.6,0.7")
    args = ap.parse_args()
    default = make_settings("sqlite+aiosqlite://", "/tmp").dedup.similarity_threshold
    started = time.perf_counter()
    if not args.skip_quality:
        await quality([float(t) for t in args.sweep.split(",")], default)
    if not args.skip_speed:
        await speed(args.n, args.skip_1m)
    print(f"\ntotal {time.perf_counter() - started:.0f}s")


if __name__ == "__main__":
    run(main())
