"""Run the labelled evaluation set through the real intake port and score the dedup links.

Shared by ``tests/integration/test_dedup_eval.py`` and ``bench/dedup.py``. See README.md here
for what the set covers and how the truth is defined.

Each record of ``messages.jsonl`` is sent as its own JSON bytes through
``IntakeService.accept(RawInbound(...), PARSER)``, in ``received_offset_minutes`` order, with
``received_at = START + offset``. The receipt's ``complaint_id`` is the complaint a message ended
up in (its own new complaint, or the first complaint it was judged a duplicate of); the messages
sharing a complaint form a predicted cluster, and every pair inside a cluster is a predicted
duplicate pair.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import combinations
from pathlib import Path
from typing import Any

from sqlalchemy import select

from gateway.domain import Channel, ComplaintDraft, RawInbound, Reporter
from gateway.intake import IntakeService, Parser
from gateway.storage.schema import dedup_decisions
from normalizer import comparison_tokens, parse_nik, token_similarity

HERE = Path(__file__).resolve().parent
MESSAGES = HERE / "messages.jsonl"
# The scenario's day 0 (any fixed instant: the gateway only compares received_at values).
START = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
WINDOW_DAYS = 14.0


@dataclass(frozen=True, slots=True)
class Message:
    """One labelled evaluation record."""

    id: str
    channel: Channel
    offset_minutes: int
    reporter: Mapping[str, Any]
    body: str
    person: str
    matter: str
    category: str
    title: str | None = None

    @property
    def received_at(self) -> datetime:
        return START + timedelta(minutes=self.offset_minutes)

    @property
    def nik(self) -> str | None:
        """The reporter's NIK when it is structurally valid."""
        value = self.reporter.get("nik")
        if not value:
            return None
        parsed = parse_nik(value)
        return parsed.nik if parsed.valid else None

    @property
    def text(self) -> str:
        return f"{self.title or ''} {self.body}"


def load_messages(path: Path = MESSAGES) -> list[Message]:
    """The records, sorted by arrival (offset, then id)."""
    out: list[Message] = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            r = json.loads(line)
            out.append(
                Message(
                    id=r["id"],
                    channel=Channel(r["channel"]),
                    offset_minutes=int(r["received_offset_minutes"]),
                    reporter=r.get("reporter") or {},
                    body=r["body"],
                    person=r["person"],
                    matter=r["matter"],
                    category=r.get("category", ""),
                    title=r.get("title"),
                )
            )
    out.sort(key=lambda m: (m.offset_minutes, m.id))
    return out


def _parse(raw: RawInbound) -> ComplaintDraft:
    """The evaluation 'channel': one JSON record in, one draft out (identities as given)."""
    r = json.loads(raw.body)
    rep = r.get("reporter") or {}
    return ComplaintDraft(
        body=r["body"],
        title=r.get("title"),
        reporter=Reporter(
            nik=rep.get("nik"),
            name=rep.get("name"),
            phone=rep.get("phone"),
            email=rep.get("email"),
            handles=dict(rep.get("handles") or {}),
        ),
    )


PARSER = Parser("eval.record", _parse)


def raw_of(message: Message, tag: str = "") -> RawInbound:
    """The message as a transport would hand it to the intake port."""
    record = {
        "id": message.id,
        "title": message.title,
        "body": message.body,
        "reporter": dict(message.reporter),
    }
    return RawInbound(
        channel=message.channel,
        body=json.dumps(record, ensure_ascii=False).encode(),
        received_at=message.received_at,
        provider_message_id=f"eval-{tag}{message.id}",
        content_type="application/json",
    )


def pair(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a < b else (b, a)


def truth_pairs(messages: Iterable[Message], window_days: float = WINDOW_DAYS) -> set[tuple[str, str]]:
    """Same person label, same matter label, the later one within ``window_days`` of the other."""
    groups: dict[tuple[str, str], list[Message]] = defaultdict(list)
    for m in messages:
        groups[(m.person, m.matter)].append(m)
    window = window_days * 24 * 60
    out: set[tuple[str, str]] = set()
    for group in groups.values():
        for a, b in combinations(group, 2):
            if abs(a.offset_minutes - b.offset_minutes) <= window:
                out.add(pair(a.id, b.id))
    return out


@dataclass(frozen=True, slots=True)
class Decision:
    """What the gateway did with one message."""

    message_id: str
    status: str
    redelivered: bool
    complaint_id: str | None
    tier: str | None
    person_id: str | None
    identity_kind: str | None
    score: float | None
    candidates: int


@dataclass(slots=True)
class Report:
    """Pairwise scores of one run."""

    threshold: float
    messages: int
    truth: set[tuple[str, str]]
    predicted: set[tuple[str, str]]
    cross_nik: list[tuple[str, str]]
    decisions: dict[str, Decision] = field(default_factory=dict)

    @property
    def true_positives(self) -> set[tuple[str, str]]:
        return self.truth & self.predicted

    @property
    def false_positives(self) -> set[tuple[str, str]]:
        return self.predicted - self.truth

    @property
    def false_negatives(self) -> set[tuple[str, str]]:
        return self.truth - self.predicted

    @property
    def precision(self) -> float:
        return len(self.true_positives) / len(self.predicted) if self.predicted else 1.0

    @property
    def recall(self) -> float:
        return len(self.true_positives) / len(self.truth) if self.truth else 1.0


def _decision(message_id: str, receipt: Any) -> Decision:
    return Decision(
        message_id,
        receipt.status.value,
        receipt.redelivered,
        receipt.complaint_id,
        None,
        None,
        None,
        None,
        0,
    )


async def with_dedup_rows(
    engine: Any, messages: list[Message], decisions: dict[str, Decision], raw_ids: dict[str, str]
) -> dict[str, Decision]:
    """Add the tier, person, identity kind and score recorded in ``dedup_decisions``."""
    async with engine.connect() as conn:
        rows = {
            r.raw_inbound_id: r
            for r in await conn.execute(
                select(dedup_decisions).where(
                    dedup_decisions.c.raw_inbound_id.in_(list(raw_ids.values()))
                )
            )
        }
    out: dict[str, Decision] = {}
    for m in messages:
        d = decisions[m.id]
        row = rows.get(raw_ids[m.id])
        if row is None:
            out[m.id] = d
            continue
        out[m.id] = Decision(
            d.message_id,
            d.status,
            d.redelivered,
            d.complaint_id,
            row.tier,
            row.person_id,
            row.identity_kind,
            row.score,
            row.candidates,
        )
    return out


async def run(
    intake: IntakeService,
    engine: Any,
    messages: list[Message],
    threshold: float,
    tag: str = "",
) -> Report:
    """Feed ``messages`` and score the links the gateway made."""
    raw_ids: dict[str, str] = {}
    receipts = {}
    for m in messages:
        receipt = await intake.accept(raw_of(m, tag), PARSER)
        receipts[m.id] = receipt
        raw_ids[m.id] = receipt.raw_id
    decisions = {m.id: _decision(m.id, receipts[m.id]) for m in messages}
    decisions = await with_dedup_rows(engine, messages, decisions, raw_ids)
    return score(messages, decisions, threshold)


def score(messages: list[Message], decisions: Mapping[str, Decision], threshold: float) -> Report:
    """Predicted pairs from the clusters (same complaint id), against the truth pairs."""
    clusters: dict[str, list[str]] = defaultdict(list)
    for m in messages:
        cid = decisions[m.id].complaint_id
        clusters[cid or f"none:{m.id}"].append(m.id)
    predicted = {pair(a, b) for ids in clusters.values() for a, b in combinations(ids, 2)}
    by_id = {m.id: m for m in messages}
    cross = sorted(
        p
        for p in predicted
        if by_id[p[0]].nik and by_id[p[1]].nik and by_id[p[0]].nik != by_id[p[1]].nik
    )
    return Report(threshold, len(messages), truth_pairs(messages), predicted, cross, dict(decisions))


def category_counts(messages: Iterable[Message]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for m in messages:
        counts[m.category] += 1
    return dict(sorted(counts.items()))


def explain(report: Report, messages: list[Message], limit: int = 40) -> list[str]:
    """One line per misjudged pair: who, which matter, the text score and what the gateway saw."""
    by_id = {m.id: m for m in messages}
    lines: list[str] = []
    for kind, pairs in (("FALSE LINK", report.false_positives), ("MISSED", report.false_negatives)):
        for a, b in sorted(pairs)[:limit]:
            ma, mb = by_id[a], by_id[b]
            da, db = report.decisions[a], report.decisions[b]
            sim = token_similarity(comparison_tokens(ma.text), comparison_tokens(mb.text))
            same_person = da.person_id is not None and da.person_id == db.person_id
            hours = abs(mb.offset_minutes - ma.offset_minutes) / 60
            lines.append(
                f"{kind:<10} {a}({ma.channel.value},{ma.person},{ma.matter}) "
                f"{b}({mb.channel.value},{mb.person},{mb.matter}) text={sim:.2f} "
                f"dt={hours:.0f}h same_person_id={same_person} "
                f"later: tier={db.tier} via={db.identity_kind} best={_fmt(db.score)} "
                f"cands={db.candidates} [{mb.category}]"
            )
    return lines


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def summary(report: Report) -> str:
    return (
        f"threshold={report.threshold:.2f} messages={report.messages} "
        f"truth_pairs={len(report.truth)} predicted_pairs={len(report.predicted)} "
        f"tp={len(report.true_positives)} fp={len(report.false_positives)} "
        f"fn={len(report.false_negatives)} precision={report.precision:.3f} "
        f"recall={report.recall:.3f} cross_nik_merges={len(report.cross_nik)}"
    )
