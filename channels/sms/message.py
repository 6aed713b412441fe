"""One mobile-originated SMS as any HTTP bridge delivers it, and a delivery report (pure).

Every bridge module (:mod:`~channels.sms.kannel`, :mod:`~channels.sms.jasmin`,
:mod:`~channels.sms.android`, :mod:`~channels.sms.smssync`, :mod:`~channels.sms.gammu`) turns
its own request into an :class:`SmsMessage`; the grammar, the replies and the fragment joining
work on that alone.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Bridge(enum.StrEnum):
    """The HTTP bridges an SMS can come in through (and its reply goes out through)."""

    KANNEL = "kannel"
    JASMIN = "jasmin"
    ANDROID = "android"  # "SMS Gateway for Android" (capcom6/android-sms-gateway) webhooks
    SMSSYNC = "smssync"  # Ushahidi SMSSync (form posts, replies fetched by the phone)
    GAMMU = "gammu"  # Gammu SMSD on a GSM modem (its RunOnReceive program posts the form)


@dataclass(frozen=True, slots=True)
class Fragment:
    """One part of a concatenated message (3GPP TS 23.040 9.2.3.24.1 / .8).

    A phone may split a UTF-16 surrogate pair (an emoji) between two UCS-2 parts: the part's
    text shows U+FFFD for its half, kept here so that joining restores the character.
    """

    reference: int
    total: int
    sequence: int
    high_surrogate: int | None = None  # the half this part ends with
    low_surrogate: int | None = None  # the half this part starts with


@dataclass(frozen=True, slots=True)
class SmsMessage:
    """What the channel needs from one MO, whatever bridge delivered it."""

    bridge: Bridge
    sender: str  # as the bridge wrote it (+62812..., 0812..., 62812...)
    receiver: str  # the number the citizen wrote to (short code), may be empty
    text: str
    message_id: str | None  # the bridge's own id: the redelivery key
    fragment: Fragment | None = None
    smsc: str | None = None  # Kannel smsc-id / Jasmin origin connector / SIM slot
    time: str | None = None  # when the bridge got it, as the bridge wrote it


class DeliveryState(enum.StrEnum):
    """What a delivery report says about a reply."""

    DELIVERED = "delivered"  # reached the phone
    UNDELIVERED = "undelivered"  # the network gave up
    ACCEPTED = "accepted"  # taken by the SMSC (or sent by the modem), not yet delivered
    BUFFERED = "buffered"  # the SMSC is still trying
    REJECTED = "rejected"  # the SMSC refused it


FINAL_STATES = frozenset(
    {DeliveryState.DELIVERED, DeliveryState.UNDELIVERED, DeliveryState.REJECTED}
)


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """A bridge's report on one reply: which reply (our id or the bridge's), and its state."""

    state: DeliveryState
    reply_id: int | None = None  # ours, when the bridge echoes it (Kannel, Jasmin dlr-url; Android)
    provider_ref: str | None = None  # the bridge's message id (Jasmin)
    detail: str = ""
