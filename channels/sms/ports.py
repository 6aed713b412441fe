"""The outbound ports of the SMS channel: the reply outbox and the fragment buffer.

The channel never touches the database: it writes replies and holds fragments through these
``Protocol``s; :mod:`gateway.sms_store` implements them on the gateway's database (the tables of
migration 0004) and :mod:`gateway.bootstrap` wires them in.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from channels.sms.message import Bridge, DeliveryReport, SmsMessage


class ReplyStatus(enum.StrEnum):
    """Where a reply stands."""

    PENDING = "pending"  # waiting for the sender
    SENT = "sent"  # the bridge accepted it (delivery reports follow in dlr_*)
    FAILED = "failed"  # given up (attempts exhausted or refused for good)
    SUPPRESSED = "suppressed"  # not sent on purpose (flood control, no sender): see reason
    INLINE = "inline"  # answered in the bridge's HTTP response (Kannel body mode, SMSSync)


@dataclass(frozen=True, slots=True)
class NewReply:
    """A reply to write after an MO's receipt, keyed on the MO's raw inbound id."""

    raw_inbound_id: str
    bridge: Bridge
    recipient: str  # the sender's number exactly as the bridge gave it (answered as is)
    sender_key: str  # the normalised number: flood control counts per sender
    kind: str  # receipt | quarantined | empty | too-short | help | status | status-unknown
    body: str
    deliver: bool  # True: the sender sends it; False: it goes in the HTTP answer (inline)
    service_number: str | None = None
    smsc: str | None = None
    tracking_id: str | None = None
    unsendable: str | None = None  # why no sender can take it (recorded as suppressed)


@dataclass(frozen=True, slots=True)
class ReplyDecision:
    """What happened to a :class:`NewReply`."""

    reply_id: int
    status: ReplyStatus
    body: str  # the stored body: a redelivery gets the first reply's text
    created: bool  # False for a redelivered MO (the row was there)
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class ClaimedReply:
    """A reply leased to one sender for one attempt."""

    id: int
    bridge: Bridge
    recipient: str  # decrypted
    body: str
    attempts: int
    service_number: str | None
    smsc: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class OutboxCounts:
    """Replies by status, for ``/metrics`` and the operator."""

    by_status: Mapping[str, int]
    oldest_pending: datetime | None


class ReplyOutbox(Protocol):
    """Durable replies: written once per MO, sent once, reports recorded."""

    async def enqueue(self, reply: NewReply) -> ReplyDecision:
        """Write ``reply`` unless its MO has one already; apply flood control."""

    async def write_batch(
        self, conn: AsyncConnection, replies: list[NewReply]
    ) -> list[ReplyDecision]:
        """:meth:`enqueue` of several replies in the caller's transaction ``conn`` (the intake's
        own, so that an MO and its reply commit together)."""

    async def claim(
        self, bridges: Iterable[Bridge], limit: int, lease_seconds: float, owner: str
    ) -> list[ClaimedReply]:
        """Lease up to ``limit`` due pending replies of ``bridges`` to ``owner``."""

    async def mark_sent(self, reply_id: int, owner: str, provider_ref: str | None) -> None:
        """The bridge accepted the reply."""

    async def mark_failed(
        self, reply_id: int, owner: str, error: str, retry_at: datetime | None
    ) -> None:
        """The attempt failed: try again at ``retry_at``, or give up when it is None."""

    async def record_report(self, report: DeliveryReport) -> bool:
        """Store a delivery report on its reply; False when no reply matches."""

    async def counts(self) -> OutboxCounts:
        """Replies by status."""

    async def idle(self) -> None:
        """Wait until nothing is being written (before the database pool is closed)."""


@dataclass(frozen=True, slots=True)
class HeldPart:
    """One stored fragment."""

    raw_inbound_id: str
    sequence: int
    text: str
    received_at: datetime
    high_surrogate: int | None = None  # half of a split pair: see message.Fragment
    low_surrogate: int | None = None


@dataclass(frozen=True, slots=True)
class FragmentSet:
    """The parts of one concatenated message seen so far."""

    group_key: str
    bridge: Bridge
    reference: int
    total: int
    parts: Sequence[HeldPart]
    meta: Mapping[str, str] = field(default_factory=dict)  # sender, receiver, smsc

    @property
    def complete(self) -> bool:
        """True when every sequence number 1..total is there."""
        return {p.sequence for p in self.parts} >= set(range(1, self.total + 1))


class FragmentBuffer(Protocol):
    """Parts of long messages, held until their set is complete or too old."""

    async def hold(
        self, raw_inbound_id: str, message: SmsMessage, sender_key: str, received_at: datetime
    ) -> FragmentSet | None:
        """Keep one fragment; the whole set when this part completes it, else None."""

    async def expired(self, older_than: datetime, limit: int) -> list[FragmentSet]:
        """At most ``limit`` open sets whose first part arrived before ``older_than``, oldest
        first."""

    async def close(self, fragments: FragmentSet, joined_raw_inbound_id: str) -> None:
        """Mark the set's parts as joined into ``joined_raw_inbound_id``."""
