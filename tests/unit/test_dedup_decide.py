"""gateway.dedup.decide with closed complaints: tier 3 joins open ones only, and names the
newest closed one of the same matter for the new complaint's event."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gateway.dedup import Candidate, Tier, decide
from gateway.settings import DedupSettings
from normalizer.text import comparison_tokens

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SETTINGS = DedupSettings()
ROAD = " ".join(comparison_tokens("Jalan berlubang besar di depan pasar Cikapundung, motor jatuh"))
ROAD_AGAIN = " ".join(comparison_tokens("jalan depan pasar cikapundung berlubang lagi, motor jatuh"))
LAMP = " ".join(comparison_tokens("Lampu penerangan jalan di gang mawar mati sejak seminggu"))


def candidate(cid: str, tokens: str, days_ago: float, *, closed: bool) -> Candidate:
    return Candidate(
        cid, f"TID{cid}", tokens, "sender", NOW - timedelta(days=days_ago), closed=closed
    )


def test_a_closed_complaint_of_the_same_matter_is_named_not_joined() -> None:
    decision = decide(
        SETTINGS,
        [candidate("new-lamp", LAMP, 1, closed=False), candidate("road", ROAD, 3, closed=True)],
        "other-sender",
        ROAD_AGAIN,
        NOW,
    )
    assert decision.tier is Tier.NEW and decision.complaint_id is None
    assert decision.repeats_tracking_id == "TIDroad"
    assert decision.candidates == 1  # the open one compared


def test_an_open_complaint_of_the_matter_is_joined_and_a_closed_one_not_named() -> None:
    decision = decide(
        SETTINGS,
        [candidate("open", ROAD, 1, closed=False), candidate("road", ROAD, 3, closed=True)],
        "other-sender",
        ROAD_AGAIN,
        NOW,
    )
    assert decision.tier is Tier.SIMILAR and decision.tracking_id == "TIDopen"
    assert decision.repeats_tracking_id is None


def test_a_closed_complaint_of_another_matter_or_out_of_the_window_is_not_named() -> None:
    other = decide(SETTINGS, [candidate("lamp", LAMP, 1, closed=True)], "s", ROAD_AGAIN, NOW)
    old = decide(
        SETTINGS,
        [candidate("road", ROAD, SETTINGS.window_days + 1, closed=True)],
        "s",
        ROAD_AGAIN,
        NOW,
    )
    assert other.tier is old.tier is Tier.NEW
    assert other.repeats_tracking_id is None and old.repeats_tracking_id is None


def test_of_two_closed_complaints_of_the_matter_the_newest_most_similar_is_named() -> None:
    decision = decide(
        SETTINGS,
        [candidate("second", ROAD, 2, closed=True), candidate("first", ROAD, 9, closed=True)],
        "s",
        ROAD_AGAIN,
        NOW,
    )
    assert decision.repeats_tracking_id == "TIDsecond"
