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
(:func:`load_earlier`), so a decision costs the same with ten thousand or a million
complaints stored; the decision itself (:func:`decide`) is pure. Every decision is written to
``dedup_decisions`` with its tier, the identity kind that recognised the person, the score and
the number of candidates.

A message that joined a complaint (tier 3) has no complaint row of its own, so a provider's
retry of it would be compared with the complaint's words, not its own, and be tier 3 again (a
second ``duplicate`` event, a second reply). Its decision row keeps its sender's lookup hash
and a keyed hash of its comparison tokens (migration 0014); :func:`load_earlier` reads those of
the batch's senders within the retry window in the same statement as the candidates, over the
partial index ``(sender_hash, created_at)``, and tier 2 compares them as it compares complaints.
It also keeps the lookup hashes of the identities the message carried (migration 0015), for
the ID a later message of a phone or address it gave is told.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import CompoundSelect, Select, false, func, null, select, union_all
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.crypto import Keys
from gateway.queries import CLOSED_STATUSES
from gateway.sealing import open_complaint
from gateway.settings import DedupSettings
from gateway.storage.schema import complaints, dedup_decisions, raw_inbound
from normalizer import token_similarity


class Tier(enum.StrEnum):
    """Why a message is (not) a duplicate."""

    NEW = "new"
    RETRY = "retry"
    SIMILAR = "similar"
    # Not a dedup decision: the message named a complaint whose ID its sender holds, and was
    # added to it (decided by the intake before dedup, see gateway.intake).
    FOLLOWUP = "followup"


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
    # RETRY of a message that joined the complaint (not of the complaint itself): the ID that
    # message was told, the complaint's or one of its own (see gateway.intake).
    told_tracking_id: str | None = None
    # NEW: the newest closed complaint of the person as similar as tier 3 asks (the matter is
    # back after the routing core closed it): named in the new complaint's event, not joined.
    repeats_tracking_id: str | None = None


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
    # The routing core closed it (resolved, rejected...): a later message of the same matter is
    # a new complaint (the matter is back), not evidence for one nobody handles any more.
    closed: bool = False


@dataclass(frozen=True, slots=True)
class EarlierDuplicate:
    """A recent message of a person that joined a complaint (tier 3), as tier 2 compares it."""

    complaint_id: str
    tracking_id: str  # the complaint's
    told_tracking_id: str  # the ID its sender was told: the complaint's, or one of its own
    sender_hash: str
    tokens_hash: str  # :func:`tokens_hash` of its comparison tokens
    received_at: datetime
    # The complaint's privacy as it stands (a retry asking more is the citizen's new word).
    anonymous: bool = False
    confidential: bool = False
    # The lookup hashes of the identities it carried (empty: stored before they were kept): a
    # phone or address it gave, writing later, is told the ID it was told (gateway.intake).
    identity_hashes: frozenset[str] = frozenset()


# The lookup-hash kind of a message's comparison tokens (dedup_decisions.tokens_hash).
TOKENS_KIND = "match_tokens"


def tokens_hash(keys: Keys, tokens: str) -> str:
    """A keyed hash of comparison tokens: tier 2 needs only their equality, so a duplicate's
    decision row keeps this (HMAC under the identity key, like ``identities.value_hash``)
    rather than its words; it needs no resealing when the data key rotates."""
    return keys.lookup_hash(TOKENS_KIND, tokens)


@dataclass(frozen=True, slots=True)
class Earlier:
    """What a group commit compares its messages with, by (surviving) person."""

    complaints: dict[str, list[Candidate]]
    duplicates: dict[str, list[EarlierDuplicate]]


async def load_earlier(
    conn: AsyncConnection,
    settings: DedupSettings,
    person_ids: Collection[str],
    since: datetime,
    keys: Keys,
    sender_hashes: Collection[str] = (),
    joined_since: datetime | None = None,
) -> Earlier:
    """The newest ``max_candidates`` complaints since ``since`` of each person, newest first;
    and the messages that joined a complaint, decided since ``joined_since``, by the complaint's
    person, newest first: those sent by ``sender_hashes``, and those of the persons' complaints
    since ``since`` that were told an ID of their own.

    One statement for a whole batch. The complaints: ``row_number()`` per person over the index
    ``(person_id, received_at)``, so the cost follows the number of persons, not the table.
    The duplicates, with ``UNION ALL`` (only when the batch has senders seen before): over the
    partial index ``dedup_decisions (sender_hash, created_at)``, with the raw inbound row (when
    it arrived, the ID its sender was told) and the complaint (its person, tracking ID and
    privacy) by primary key. ``created_at`` (the commit) is never before the message's
    ``received_at``, so that range holds every message received since ``joined_since``. The
    caller reads them over the dedup window: tier 2 compares those within the retry window;
    a sender told an ID of its own when it joined a complaint is told it again (gateway.intake).
    Those told an ID of their own come over the indexes ``complaints (person_id, received_at)``
    and ``raw_inbound (complaint_id)``: a phone or address one of them gave is told that ID
    (its sender, the strongest identity typed, may be another).
    """
    if not settings.enabled or not person_ids:
        return Earlier({}, {})
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
            complaints.c.status,
            func.row_number()
            .over(partition_by=complaints.c.person_id, order_by=complaints.c.received_at.desc())
            .label("rank"),
        )
        .where(complaints.c.person_id.in_(sorted(person_ids)), complaints.c.received_at >= since)
        .subquery()
    )
    query: Select[Any] | CompoundSelect[Any] = select(
        ranked, null().label("told"), null().label("tokens_hash")
    ).where(ranked.c.rank <= settings.max_candidates)
    if joined_since is not None:
        d, r, c = dedup_decisions, raw_inbound, complaints
        joined = select(
            c.c.person_id,
            d.c.complaint_id,
            c.c.tracking_id,
            null(),  # match_tokens
            false(),  # sealed
            d.c.sender_hash,
            r.c.received_at,
            c.c.anonymous,
            c.c.confidential,
            d.c.identity_hashes,
            c.c.status,
            null(),  # rank: none, a duplicate
            r.c.tracking_id,
            d.c.tokens_hash,
        )
        recent = (d.c.sender_hash.is_not(None), d.c.created_at >= joined_since)
        parts = [
            query,
            joined.select_from(
                c.join(r, r.c.complaint_id == c.c.id).join(d, d.c.raw_inbound_id == r.c.id)
            ).where(
                *recent,
                c.c.person_id.in_(sorted(person_ids)),
                c.c.received_at >= since,
                r.c.tracking_id != c.c.tracking_id,
            ),
        ]
        if sender_hashes:
            parts.append(
                joined.select_from(
                    d.join(r, r.c.id == d.c.raw_inbound_id).join(c, c.c.id == d.c.complaint_id)
                ).where(*recent, d.c.sender_hash.in_(sorted(sender_hashes)))
            )
        query = union_all(*parts)
    found = Earlier({}, {})
    for row in await conn.execute(query):
        if row.rank is not None:
            tokens = open_complaint(
                keys, row.id, "match_tokens", row.match_tokens, row.sealed, False
            )
            found.complaints.setdefault(row.person_id, []).append(
                Candidate(
                    row.id,
                    row.tracking_id,
                    str(tokens or ""),
                    row.sender_hash,
                    row.received_at,
                    bool(row.anonymous),
                    bool(row.confidential),
                    frozenset((row.identity_hashes or "").split()),
                    row.status in CLOSED_STATUSES,
                )
            )
        elif row.person_id is not None and row.told is not None:
            found.duplicates.setdefault(row.person_id, []).append(
                EarlierDuplicate(
                    row.id,
                    row.tracking_id,
                    row.told,
                    row.sender_hash,
                    row.tokens_hash,
                    row.received_at,
                    bool(row.anonymous),
                    bool(row.confidential),
                    frozenset((row.identity_hashes or "").split()),
                )
            )
    # Newest first (ordered here: the rows are few, the statement sorts nothing).
    for rows in found.complaints.values():
        rows.sort(key=lambda x: x.received_at, reverse=True)
    for dups in found.duplicates.values():
        dups.sort(key=lambda x: x.received_at, reverse=True)
    return found


async def load_candidates(
    conn: AsyncConnection,
    settings: DedupSettings,
    person_ids: Collection[str],
    since: datetime,
    keys: Keys,
) -> dict[str, list[Candidate]]:
    """The newest ``max_candidates`` complaints since ``since`` of each person, newest first
    (:func:`load_earlier` without the duplicates)."""
    return (await load_earlier(conn, settings, person_ids, since, keys)).complaints


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
    duplicates: Sequence[EarlierDuplicate] = (),
    tokens_key: str | None = None,
) -> Decision:
    """Compare a message with its person's recent complaints (newest first); pure.

    ``anonymous`` and ``confidential`` are what the message asks: one that asks more than the
    complaint it repeats (the same text sent again with RAHASIA) is no provider's retry but the
    citizen's new word, so it is a ``similar`` message (an event that carries the flags), never
    a retry that would drop them.

    ``vouched``: the lookup hashes of the identities the message's transport vouches for
    (:func:`gateway.identity.vouched_by`), for :attr:`Decision.same_sender`.

    ``duplicates``: the person's recent messages that joined a complaint (newest first), and
    ``tokens_key`` the :func:`tokens_hash` of ``tokens`` to compare with theirs: the same
    sender and words within the retry window is a retry of that message (its receipt again),
    the newest of it and a matching complaint winning.

    The caller holds the person's row lock while it reads the candidates and writes the result.
    """
    if not settings.enabled or not tokens:
        return Decision(Tier.NEW)
    since = received_at - timedelta(days=settings.window_days)
    rows = [c for c in candidates if c.received_at >= since][: settings.max_candidates]
    retry_since = received_at - timedelta(seconds=settings.retry_window_seconds)
    if sender_hash is not None:
        own = sender_hash in vouched
        again = next(
            (
                row
                for row in rows
                if row.sender_hash == sender_hash
                and row.match_tokens == tokens
                and row.received_at >= retry_since
                and (row.anonymous or not anonymous)
                and (row.confidential or not confidential)
            ),
            None,
        )
        joined = (
            next(
                (
                    d
                    for d in duplicates
                    if d.sender_hash == sender_hash
                    and d.tokens_hash == tokens_key
                    and d.received_at >= retry_since
                    and (d.anonymous or not anonymous)
                    and (d.confidential or not confidential)
                ),
                None,
            )
            if tokens_key is not None
            else None
        )
        if joined is not None and (again is None or joined.received_at >= again.received_at):
            return Decision(
                Tier.RETRY,
                joined.complaint_id,
                joined.tracking_id,
                1.0,
                len(rows),
                same_sender=own,
                told_tracking_id=joined.told_tracking_id,
            )
        if again is not None:
            return Decision(
                Tier.RETRY, again.id, again.tracking_id, 1.0, len(rows), same_sender=own
            )
    # Tier 3 only joins complaints still open; a retry (above) is the same message whatever
    # became of its complaint. A closed one of the same matter is named in the new complaint's
    # event instead (the newest of the most similar).
    if not rows:
        return Decision(Tier.NEW)
    words = tokens.split()
    scored = [(token_similarity(words, r.match_tokens.split()), r) for r in rows]
    back = max(
        ((s, r) for s, r in scored if r.closed and s >= settings.similarity_threshold),
        key=lambda x: x[0],
        default=None,
    )
    repeats = back[1].tracking_id if back is not None else None
    opened = [(s, r) for s, r in scored if not r.closed]
    if not opened:
        return Decision(Tier.NEW, repeats_tracking_id=repeats)
    score, best = max(opened, key=lambda x: x[0])
    if score >= settings.similarity_threshold:
        return Decision(
            Tier.SIMILAR,
            best.id,
            best.tracking_id,
            score,
            len(opened),
            first_anonymous=best.anonymous,
            first_confidential=best.confidential,
            same_sender=any(h == best.sender_hash or h in best.identity_hashes for h in vouched),
        )
    return Decision(Tier.NEW, score=score, candidates=len(opened), repeats_tracking_id=repeats)
