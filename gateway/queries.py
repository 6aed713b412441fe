"""Read-only queries behind the public pages: status checks and the Open311 request listing.

What a stranger holding a tracking ID, or an Open311 client, may see: kind, status, dates,
and the title, place and agency unless the complaint is confidential. Never the reporter,
never the complaint's text. Nothing here writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import CompoundSelect, Select, case, false, func, literal, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.storage.schema import complaint_status_events, complaints, raw_inbound

# Complaint statuses after which a request counts as closed (Open311 "closed").
CLOSED_STATUSES = ("closed", "selesai", "resolved", "archived", "rejected")


@dataclass(frozen=True, slots=True)
class PublicRequest:
    """One complaint as the public may see it."""

    tracking_id: str
    kind: str
    status: str
    received_at: datetime
    updated_at: datetime
    title: str | None  # None when confidential
    address: str | None
    latitude: float | None
    longitude: float | None
    agency: str | None

    @property
    def open(self) -> bool:
        """Open311's open/closed."""
        return self.status not in CLOSED_STATUSES


def _select() -> Select[Any]:
    return select(
        complaints.c.tracking_id,
        complaints.c.kind,
        complaints.c.status,
        complaints.c.received_at,
        complaints.c.created_at,
        complaints.c.status_changed_at,
        complaints.c.title,
        complaints.c.confidential,
        complaints.c.location,
        complaints.c.agency,
    )


def _public(row: Any) -> PublicRequest:
    location = row.location or {}
    return PublicRequest(
        tracking_id=row.tracking_id,
        kind=row.kind,
        status=row.status,
        received_at=row.received_at,
        updated_at=row.status_changed_at or row.created_at,
        title=None if row.confidential else row.title,
        address=None if row.confidential else location.get("text"),
        # A confidential complaint's place is as telling as its address: neither is shown.
        latitude=None if row.confidential else location.get("latitude"),
        longitude=None if row.confidential else location.get("longitude"),
        # And whom it concerns: the agency a confidential complaint names tells its matter.
        agency=None if row.confidential else row.agency,
    )


def changed_since(status_changed_at: datetime | None, stored_at: datetime) -> bool:
    """Whether a complaint's status changed after a message joined it (``stored_at``: its
    commit, not when the transport received it, which may be long before: a letter read
    before the clerk confirms it, the first part of a long SMS): what the message's own ID
    shows of the complaint (see :func:`_joined`)."""
    return status_changed_at is not None and status_changed_at >= stored_at


async def agencies_since(
    conn: AsyncConnection, joined: Sequence[tuple[str, datetime]]
) -> dict[tuple[str, datetime], str]:
    """For messages that joined a complaint, as (complaint id, when it joined: its
    ``stored_at``): the agency the newest status change since named, if one did. What such a
    message's own ID shows of the complaint's agency (one named before it joined, or the one
    the first message asked for, is the earlier complaint's, not shown)."""
    if not joined:
        return {}
    rows = await conn.execute(
        select(
            complaint_status_events.c.complaint_id,
            complaint_status_events.c.changed_at,
            complaint_status_events.c.agency,
        )
        .where(
            complaint_status_events.c.complaint_id.in_(sorted({c for c, _ in joined})),
            complaint_status_events.c.agency.is_not(None),
            complaint_status_events.c.changed_at >= min(at for _, at in joined),
        )
        .order_by(complaint_status_events.c.changed_at.desc(), complaint_status_events.c.id.desc())
    )
    named = [tuple(r) for r in rows]
    found: dict[tuple[str, datetime], str] = {}
    for cid, at in joined:
        agency = next((a for c, changed, a in named if c == cid and changed >= at), None)
        if agency is not None:
            found[(cid, at)] = agency
    return found


def _select_joined() -> Select[Any]:
    return (
        select(
            raw_inbound.c.tracking_id,
            raw_inbound.c.received_at,
            raw_inbound.c.stored_at,
            raw_inbound.c.shown,
            raw_inbound.c.complaint_id,
            complaints.c.kind,
            complaints.c.status,
            complaints.c.status_changed_at,
        )
        .join(complaints, complaints.c.id == raw_inbound.c.complaint_id)
        # Not the complaint's own ID (its first message's, or a duplicate told it).
        .where(raw_inbound.c.tracking_id != complaints.c.tracking_id)
    )


def _joined(row: Any, agencies: dict[tuple[str, datetime], str]) -> PublicRequest:
    """A complaint under the ID of a message that joined it (replayed from quarantine, or whose
    sender was told an ID of its own: see gateway.intake): that message as a new complaint
    would show it (its dates, kind, title, place and the agency it asked, from
    ``raw_inbound.shown``), and of the complaint only a status changed since, never its title,
    place, or an agency named before it joined (``agencies``: :func:`agencies_since`). Whoever holds
    the ID may have typed someone else's NIK."""
    changed = changed_since(row.status_changed_at, row.stored_at)
    own = row.shown or {}
    place = own.get("location") or {}
    return PublicRequest(
        tracking_id=row.tracking_id,
        kind=own.get("kind", row.kind),
        status=row.status if changed else "received",
        received_at=row.received_at,
        # As a new complaint's: its commit until the status changes.
        updated_at=row.status_changed_at if changed else row.stored_at,
        title=own.get("title"),
        address=place.get("text"),
        latitude=place.get("latitude"),
        longitude=place.get("longitude"),
        # Named by a change since it joined, else the one it asked for (as a new complaint
        # keeps it); none when the message asked for confidentiality (as a new confidential
        # complaint shows none here). The complaint's own flag does not decide: hiding it
        # would tell the holder they joined a confidential complaint.
        agency=None
        if own.get("confidential")
        else (agencies.get((row.complaint_id, row.stored_at)) if changed else None)
        or own.get("agency"),
    )


def complaint_ids_of(tracking_id: str) -> CompoundSelect[Any]:
    """The id of the complaint a (normalised) tracking ID stands for: its own, or that of the
    complaint the message told it joined (for operators: never shown to citizens)."""
    return (
        select(complaints.c.id)
        .where(complaints.c.tracking_id == tracking_id)
        .union(
            select(raw_inbound.c.complaint_id).where(
                raw_inbound.c.tracking_id == tracking_id, raw_inbound.c.complaint_id.is_not(None)
            )
        )
    )


async def complaint_tracking_id(engine: AsyncEngine, tracking_id: str) -> str | None:
    """The tracking ID of the complaint a (normalised) tracking ID stands for
    (:func:`complaint_ids_of`)."""
    async with engine.connect() as conn:
        found = (
            await conn.execute(
                select(complaints.c.tracking_id)
                .where(complaints.c.id.in_(complaint_ids_of(tracking_id)))
                .limit(1)
            )
        ).scalar_one_or_none()
    return None if found is None else str(found)


async def public_request(engine: AsyncEngine, tracking_id: str) -> PublicRequest | None:
    """One complaint by its (normalised) tracking ID, or by the ID of a message that joined
    it."""
    async with engine.connect() as conn:
        row = (
            await conn.execute(_select().where(complaints.c.tracking_id == tracking_id))
        ).first()
        if row is not None:
            return _public(row)
        joined = (
            await conn.execute(
                _select_joined()
                .where(raw_inbound.c.tracking_id == tracking_id)
                # The first message told this ID (a retry of it, told it again, came later).
                .order_by(raw_inbound.c.received_at, raw_inbound.c.id)
                .limit(1)
            )
        ).first()
        if joined is None:
            return None
        agencies = await agencies_since(conn, [(joined.complaint_id, joined.stored_at)])
    return _joined(joined, agencies)


async def list_public_requests(
    engine: AsyncEngine,
    *,
    tracking_ids: Sequence[str] = (),
    kinds: Sequence[str] = (),
    start: datetime | None = None,
    end: datetime | None = None,
    statuses: Sequence[str] = (),
    limit: int = 1000,
) -> list[PublicRequest]:
    """Complaints matching every given filter, newest first; ``statuses``: open / closed.

    A listing without ``tracking_ids`` leaves out what asked for confidentiality (a complaint,
    or a message under an ID of its own): its ID would let anyone look up its status and the
    agency it concerns, which only the citizen holding the ID is to see. Named by its ID, it
    is listed (without its title and place)."""
    query = _select().order_by(complaints.c.received_at.desc()).limit(limit)
    if tracking_ids:
        query = query.where(complaints.c.tracking_id.in_(list(tracking_ids)))
    else:
        query = query.where(complaints.c.confidential.is_(false()))
    if kinds:
        query = query.where(complaints.c.kind.in_(list(kinds)))
    if start is not None:
        query = query.where(complaints.c.received_at >= start)
    if end is not None:
        query = query.where(complaints.c.received_at <= end)
    if set(statuses) == {"open"}:
        query = query.where(complaints.c.status.not_in(CLOSED_STATUSES))
    elif set(statuses) == {"closed"}:
        query = query.where(complaints.c.status.in_(CLOSED_STATUSES))
    # And the IDs of messages that joined a complaint, under the same filters, each as its
    # first message shows it (a retry told the same ID came later): those named; in a listing
    # by date, those told an ID of their own, listed as a new complaint would be.
    joined_query = _select_joined()
    if tracking_ids:
        named = True
        joined_query = joined_query.where(raw_inbound.c.tracking_id.in_(sorted(tracking_ids)))
    else:
        named = False
        # One row per ID here (its first message's: a retry's has no ``shown``), so every
        # filter is applied before the limit, on what the ID shows (see :func:`_joined`).
        joined_query = joined_query.where(
            raw_inbound.c.shown.is_not(None),
            func.coalesce(raw_inbound.c.shown["confidential"].as_boolean(), false()).is_(false()),
        )
        if start is not None:
            joined_query = joined_query.where(raw_inbound.c.received_at >= start)
        if end is not None:
            joined_query = joined_query.where(raw_inbound.c.received_at <= end)
        if kinds:
            kind = func.coalesce(raw_inbound.c.shown["kind"].as_string(), complaints.c.kind)
            joined_query = joined_query.where(kind.in_(list(kinds)))
        status = case(
            (complaints.c.status_changed_at >= raw_inbound.c.stored_at, complaints.c.status),
            else_=literal("received"),
        )
        if set(statuses) == {"open"}:
            joined_query = joined_query.where(status.not_in(CLOSED_STATUSES))
        elif set(statuses) == {"closed"}:
            joined_query = joined_query.where(status.in_(CLOSED_STATUSES))
        joined_query = joined_query.limit(limit)
    async with engine.connect() as conn:
        found = [_public(row) for row in await conn.execute(query)]
        if named and not set(tracking_ids) - {r.tracking_id for r in found}:
            return found
        rows: dict[str, Any] = {}
        for row in await conn.execute(
            joined_query.order_by(
                raw_inbound.c.received_at.asc() if named else raw_inbound.c.received_at.desc(),
                raw_inbound.c.id,
            )
        ):
            rows.setdefault(row.tracking_id, row)
        agencies = await agencies_since(
            conn, [(r.complaint_id, r.stored_at) for r in rows.values()]
        )
        first = {tid: _joined(r, agencies) for tid, r in rows.items()}
        # The IDs named: each as its first message shows it, then filtered.
        joined = [
            r
            for r in first.values()
            if (not kinds or r.kind in kinds)
            and (start is None or r.received_at >= start)
            and (end is None or r.received_at <= end)
            and (set(statuses) != {"open"} or r.open)
            and (set(statuses) != {"closed"} or not r.open)
        ]
    merged = sorted(found + joined, key=lambda r: r.received_at, reverse=True)
    return merged[:limit]


async def tracking_id_of_raw(engine: AsyncEngine, channel: str, raw_id: str) -> str | None:
    """The tracking ID a stored message of ``channel`` was given (Open311 tokens)."""
    async with engine.connect() as conn:
        value = (
            await conn.execute(
                select(raw_inbound.c.tracking_id).where(
                    raw_inbound.c.id == raw_id, raw_inbound.c.channel == channel
                )
            )
        ).scalar_one_or_none()
    return None if value is None else str(value)
