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
that person's newest complaints, read for a whole group commit in one statement
(:func:`load_candidates`), so a decision costs the same with ten thousand or a million
complaints stored; the decision itself (:func:`decide`) is pure. Every decision is written to
``dedup_decisions`` with its tier, the identity kind that recognised the person, the score and
the number of candidates.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.crypto import Keys
from gateway.sealing import open_complaint
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
    # SIMILAR: the privacy the first complaint was sent with (a duplicate never lifts it).
    first_anonymous: bool = False
    first_confidential: bool = False
    # RETRY, SIMILAR: an identity this message's transport vouches for (the phone number an SMS
    # came from, an e-mail's address, an account) sent the first complaint or was given in it:
    # the receipt may name that complaint (see gateway.intake).
    same_sender: bool = False


@dataclass(frozen=True, slots=True)
class Candidate:
    """One earlier complaint of a person, as the decision compares it."""

    id: str
    tracking_id: str
    match_tokens: str
    sender_hash: str | None
    received_at: datetime
    anonymous: bool = False
    confidential: bool = False
    # The lookup hashes of the identities its message carried (empty: stored before they were).
    identity_hashes: frozenset[str] = frozenset()


async def load_candidates(
    conn: AsyncConnection,
    settings: DedupSettings,
    person_ids: Collection[str],
    since: datetime,
    keys: Keys,
) -> dict[str, list[Candidate]]:
    """The newest ``max_candidates`` complaints since ``since`` of each person, newest first.

    One statement for a whole batch: ``row_number()`` per person over the index
    ``(person_id, received_at)``, so the cost follows the number of persons, not the table.
    """
    if not settings.enabled or not person_ids:
        return {}
    ranked = (
        select(
            complaints.c.person_id,
            complaints.c.id,
            complaints.c.tracking_id,
            complaints.c.match_tokens,
            complaints.c.sealed,
            complaints.c.sender_hash,
            complaints.c.received_at,
            complaints.c.anonymous,
            complaints.c.confidential,
            complaints.c.identity_hashes,
            func.row_number()
            .over(partition_by=complaints.c.person_id, order_by=complaints.c.received_at.desc())
            .label("rank"),
        )
        .where(complaints.c.person_id.in_(sorted(person_ids)), complaints.c.received_at >= since)
        .subquery()
    )
    rows = await conn.execute(
        select(ranked)
        .where(ranked.c.rank <= settings.max_candidates)
        .order_by(ranked.c.person_id, ranked.c.rank)
    )
    found: dict[str, list[Candidate]] = {}
    for r in rows:
        tokens = open_complaint(keys, r.id, "match_tokens", r.match_tokens, r.sealed, False)
        found.setdefault(r.person_id, []).append(
            Candidate(
                r.id,
                r.tracking_id,
                str(tokens or ""),
                r.sender_hash,
                r.received_at,
                bool(r.anonymous),
                bool(r.confidential),
                frozenset((r.identity_hashes or "").split()),
            )
        )
    return found


def decide(
    settings: DedupSettings,
    candidates: Sequence[Candidate],
    sender_hash: str | None,
    tokens: str,
    received_at: datetime,
    *,
    anonymous: bool = False,
    confidential: bool = False,
    vouched: Collection[str] = (),
) -> Decision:
    """Compare a message with its person's recent complaints (newest first); pure.

    ``anonymous`` and ``confidential`` are what the message asks: one that asks more than the
    complaint it repeats (the same text sent again with RAHASIA) is no provider's retry but the
    citizen's new word, so it is a ``similar`` message (an event that carries the flags), never
    a retry that would drop them.

    ``vouched``: the lookup hashes of the identities the message's transport vouches for
    (:func:`gateway.identity.vouched_by`), for :attr:`Decision.same_sender`.

    The caller holds the person's row lock while it reads the candidates and writes the result.
    """
    if not settings.enabled or not tokens:
        return Decision(Tier.NEW)
    since = received_at - timedelta(days=settings.window_days)
    rows = [c for c in candidates if c.received_at >= since][: settings.max_candidates]
    retry_since = received_at - timedelta(seconds=settings.retry_window_seconds)
    for row in rows:
        if (
            sender_hash is not None
            and row.sender_hash == sender_hash
            and row.match_tokens == tokens
            and row.received_at >= retry_since
            and (row.anonymous or not anonymous)
            and (row.confidential or not confidential)
        ):
            own = sender_hash in vouched
            return Decision(Tier.RETRY, row.id, row.tracking_id, 1.0, len(rows), same_sender=own)
    if not rows:
        return Decision(Tier.NEW)
    words = tokens.split()
    score, best = max(
        ((token_similarity(words, r.match_tokens.split()), r) for r in rows), key=lambda x: x[0]
    )
    if score >= settings.similarity_threshold:
        return Decision(
            Tier.SIMILAR,
            best.id,
            best.tracking_id,
            score,
            len(rows),
            first_anonymous=best.anonymous,
            first_confidential=best.confidential,
            same_sender=any(
                h == best.sender_hash or h in best.identity_hashes for h in vouched
            ),
        )
    return Decision(Tier.NEW, score=score, candidates=len(rows))
