"""The canonical complaint and the values that travel with it.

Plain frozen dataclasses, no IO. A channel's pure parser turns a :class:`RawInbound` (the bytes
exactly as the transport delivered them) into a :class:`ComplaintDraft`; the intake port gives the
draft its identity (complaint id, tracking ID, channel, time of receipt) and the result is a
:class:`Complaint`. The fields follow the contract with the routing core
(``contract/complaint-event.v1.schema.json``).
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime


class Channel(enum.StrEnum):
    """Where a message came from; also the channel's folder and config section name."""

    WEB = "web"
    SMS = "sms"
    EMAIL = "email"
    TWITTER = "twitter"
    TELEGRAM = "telegram"
    LETTER = "letter"


class Kind(enum.StrEnum):
    """The three LAPOR! report classifications."""

    PENGADUAN = "pengaduan"  # complaint
    ASPIRASI = "aspirasi"  # aspiration / suggestion
    INFORMASI = "informasi"  # request for information


class Event(enum.StrEnum):
    """Event names published to the routing core (``complaint.<event>.<channel>``)."""

    CREATED = "created"
    DUPLICATE = "duplicate"
    FOLLOWUP = "followup"


class ReceiptStatus(enum.StrEnum):
    """What the intake port did with a message."""

    ACCEPTED = "accepted"  # a complaint was created and queued for publication
    DUPLICATE = "duplicate"  # linked to an earlier complaint (its tracking ID is in the receipt)
    FOLLOWUP = "followup"  # added to the complaint it names, whose ID its sender holds
    QUARANTINED = "quarantined"  # stored, could not be parsed; an operator replays it after a fix
    RECORDED = "recorded"  # stored, not a complaint (a status query, a help request...)


@dataclass(frozen=True, slots=True)
class RawInbound:
    """One message exactly as a transport received it.

    ``provider_message_id`` is the transport's own id for the message (Kannel ``%I``, an e-mail
    Message-ID, a Telegram update id, an Idempotency-Key...). A redelivery carries the same id and
    gets the first receipt back. Channels without such an id pass ``None`` and the intake port
    derives one from the content hash.
    """

    channel: Channel
    body: bytes
    received_at: datetime
    provider_message_id: str | None = None
    content_type: str = "application/octet-stream"
    metadata: Mapping[str, str] = field(default_factory=dict)

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of the body as received."""
        return hashlib.sha256(self.body).hexdigest()


@dataclass(frozen=True, slots=True)
class Reporter:
    """Who sent the complaint, as far as the channel knows. Phone numbers are E.164."""

    nik: str | None = None
    name: str | None = None
    phone: str | None = None
    email: str | None = None
    handles: Mapping[str, str] = field(default_factory=dict)  # {"twitter": "...", ...}


@dataclass(frozen=True, slots=True)
class Privacy:
    """The two LAPOR! privacy choices.

    ``anonymous``: the identity still travels to the routing core, flagged, and is hidden from
    the agency there. ``confidential``: the content must never be published.
    """

    anonymous: bool = False
    confidential: bool = False


@dataclass(frozen=True, slots=True)
class Location:
    """Where the reported matter is: free text and, when known, coordinates and region code."""

    text: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    region_code: str | None = None


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file that came with the complaint, kept in the content-addressed file store."""

    sha256: str
    media_type: str
    size: int
    filename: str | None = None


@dataclass(frozen=True, slots=True)
class ComplaintDraft:
    """What a channel's parser extracts from one raw inbound message."""

    body: str
    kind: Kind = Kind.PENGADUAN
    title: str | None = None
    reporter: Reporter = field(default_factory=Reporter)
    privacy: Privacy = field(default_factory=Privacy)
    location: Location | None = None
    attachments: tuple[Attachment, ...] = ()
    occurred_on: date | None = None
    agency: str | None = None
    # A tracking ID the message names as the complaint it is about (an SMS "Laporan K7QM4XRT9
    # lubangnya makin besar"): when that complaint's ID is held by the message's sender, the
    # intake adds the message to it as a ``followup``; otherwise it is filed as any other.
    about: str | None = None
    # The follow-up code the sender typed for ``about`` (web and API: a form's sender has no
    # phone the transport vouches for). Never stored in the complaint nor published.
    about_code: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class NotAComplaint:
    """A parser's answer for a message that is understood but is not a complaint.

    For example an SMS ``CEK <id>`` status query. The raw message is still stored; ``reason``
    names what it was, for the metric and the log.
    """

    reason: str


ParseOutcome = ComplaintDraft | NotAComplaint


@dataclass(frozen=True, slots=True)
class Complaint:
    """One canonical complaint, as stored and as published to the routing core."""

    id: str
    tracking_id: str
    channel: Channel
    received_at: datetime
    draft: ComplaintDraft
    source: Mapping[str, str]  # the channel's own ids: provider message id, raw inbound id...


@dataclass(frozen=True, slots=True)
class Receipt:
    """What the intake port answers to a channel, which tells the citizen.

    ``redelivered`` is true when the same provider message id was seen before: the receipt is
    the first one, and nothing new was created.
    """

    status: ReceiptStatus
    tracking_id: str | None
    raw_id: str
    complaint_id: str | None = None
    duplicate_of: str | None = None
    redelivered: bool = False
    raw_sha256: str | None = None  # hash of the first message's bytes (Idempotency-Key checks)
