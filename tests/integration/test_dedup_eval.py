"""The labelled dedup evaluation set (tests/dedup_eval) through the real intake port, on SQLite.

Every message goes through ``IntakeService.accept`` (identity resolution and dedup inside the
transaction); pairs of messages that end up in one complaint are compared with the labelled
truth (same person, same matter, within 14 days). See tests/dedup_eval/README.md.
"""

from __future__ import annotations

import time

import pytest

from gateway import bootstrap
from gateway.settings import Settings
from gateway.storage import migrate
from tests.dedup_eval import evaluate

pytestmark = pytest.mark.integration

PRECISION_MIN = 0.98
RECALL_MIN = 0.90


async def _report(settings: Settings) -> evaluate.Report:
    gw = bootstrap.build(settings)
    try:
        await migrate.upgrade(gw.engine)
        messages = evaluate.load_messages()
        started = time.perf_counter()
        report = await evaluate.run(
            gw.intake, gw.engine, messages, settings.dedup.similarity_threshold
        )
        assert time.perf_counter() - started < 60
    finally:
        await gw.close()
    print(evaluate.summary(report))
    print("\n".join(evaluate.explain(report, messages)))
    return report


def test_eval_set_is_well_formed() -> None:
    messages = evaluate.load_messages()
    assert len(messages) >= 170
    assert len({m.id for m in messages}) == len(messages)
    for m in messages:
        nik = m.reporter.get("nik")
        assert nik is None or m.nik is not None, f"{m.id}: invalid NIK {nik}"
    counts = evaluate.category_counts(messages)
    assert counts["same_person_other_matter"] >= 20
    assert counts["neighbour"] >= 20
    assert counts["twin_text"] >= 10
    assert counts["outside_window"] >= 3
    assert {m.channel.value for m in messages} == {
        "web", "sms", "email", "twitter", "telegram", "letter"
    }


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_no_cross_nik_merge_and_precision(settings: Settings) -> None:
    report = await _report(settings)
    assert report.cross_nik == []
    # Precision counts as 1.0 when nothing was merged at all: some pairs must have been.
    assert report.predicted, "no two messages were merged"
    assert report.precision >= PRECISION_MIN, evaluate.summary(report)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_recall(settings: Settings) -> None:
    report = await _report(settings)
    assert report.recall >= RECALL_MIN, evaluate.summary(report)
