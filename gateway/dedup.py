"""Deduplication tiers 2 and 3, decided inside the intake transaction.

Tier 1 (the same provider message id) is the raw inbound table's unique constraint. Here, for
a message whose sender is a known person (:mod:`gateway.identity`), and with that person's row
locked so that concurrent messages take turns:

2. *Retry with a new id*: the same sender identity and the same normalised text within
   ``dedup.retry_window_seconds`` is the same message: the first receipt again, no event.
3. *Same matter*: the same person (any linked identity) with text whose similarity score
   (:func:`normalizer.token_similarity`) reaches ``dedup.similarity_threshold`` inside
   ``dedup.window_days`` becomes a ``duplicate`` event naming the first complaint.

Candidates come from the index ``(person_id, received_at)``: at most ``dedup.max_candidates`` of
that person's newest complaints, so a decision costs the same with ten thousand or a million
complaints stored. Every decision is written to ``dedup_decisions`` with its tier, the identity
kind that recognised the person, the score and the number of candidates.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.settings import DedupSettings
from gateway.storage.schema import complaints
from normalizer import token_similarity


class Tier(enum.StrEnum):
    """Why a message is (not) a duplicate."""

    NEW = "new"
    RETRY = "retry"
    SIMILAR = "similar"


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome for one message; ``complaint_id``/``tracking_id`` name the first complaint."""

    tier: Tier
    complaint_id: str | None = None
    tracking_id: str | None = None
    score: float | None = None
    candidates: int = 0


async def decide(
    conn: AsyncConnection,
    settings: DedupSettings,
    person_id: str | None,
    sender_hash: str | None,
    tokens: str,
    received_at: datetime,
) -> Decision:
    """Compare with the person's recent complaints; the caller holds the person's row lock."""
    if not settings.enabled or person_id is None or not tokens:
        return Decision(Tier.NEW)
    since = received_at - timedelta(days=settings.window_days)
    rows = (
        await conn.execute(
            select(
                complaints.c.id,
                complaints.c.tracking_id,
                complaints.c.match_tokens,
                complaints.c.sender_hash,
                complaints.c.received_at,
            )
            .where(complaints.c.person_id == person_id, complaints.c.received_at >= since)
            .order_by(complaints.c.received_at.desc())
            .limit(settings.max_candidates)
        )
    ).all()
    retry_since = received_at - timedelta(seconds=settings.retry_window_seconds)
    for row in rows:
        if (
            sender_hash is not None
            and row.sender_hash == sender_hash
            and row.match_tokens == tokens
            and row.received_at >= retry_since
        ):
            return Decision(Tier.RETRY, row.id, row.tracking_id, 1.0, len(rows))
    if not rows:
        return Decision(Tier.NEW)
    words = tokens.split()
    score, best = max(
        ((token_similarity(words, r.match_tokens.split()), r) for r in rows), key=lambda x: x[0]
    )
    if score >= settings.similarity_threshold:
        return Decision(Tier.SIMILAR, best.id, best.tracking_id, score, len(rows))
    return Decision(Tier.NEW, score=score, candidates=len(rows))
