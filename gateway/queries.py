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

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.storage.schema import complaints, raw_inbound

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


async def public_request(engine: AsyncEngine, tracking_id: str) -> PublicRequest | None:
    """One complaint by its (normalised) tracking ID."""
    async with engine.connect() as conn:
        row = (
            await conn.execute(_select().where(complaints.c.tracking_id == tracking_id))
        ).first()
    return None if row is None else _public(row)


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
    """Complaints matching every given filter, newest first; ``statuses``: open / closed."""
    query = _select().order_by(complaints.c.received_at.desc()).limit(limit)
    if tracking_ids:
        query = query.where(complaints.c.tracking_id.in_(list(tracking_ids)))
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
    async with engine.connect() as conn:
        return [_public(row) for row in await conn.execute(query)]


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
