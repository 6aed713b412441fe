"""The acknowledgement of a confirmed letter on the citizen's other channels.

The printed receipt is the letter's answer. When the letter gives a mobile number and the SMS
channel can send (a bridge with a send URL is configured: Kannel sendsms, Jasmin, the Android
gateway), the same tracking ID also goes out as an SMS, through the SMS channel's durable reply
outbox (:class:`channels.sms.ports.ReplyOutbox`): one reply per raw inbound message, so
confirming the same letter again never queues a second SMS, and the SMS sender delivers it with
retries and delivery reports like any other reply. Landline numbers get no SMS.

E-mail acknowledgements wait for the e-mail channel.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import phonenumbers

from channels.sms import replies
from channels.sms.message import Bridge
from channels.sms.ports import NewReply, ReplyOutbox, ReplyStatus
from channels.sms.senders import clients
from channels.sms.settings import SmsSettings
from normalizer import mask_phone

log = logging.getLogger(__name__)

_SMS_CAPABLE = (
    phonenumbers.PhoneNumberType.MOBILE,
    phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
)


def is_mobile(e164: str) -> bool:
    """True when an E.164 number can receive an SMS (a mobile number)."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.number_type(number) in _SMS_CAPABLE


class SmsAck:
    """Queues the letter's tracking ID as an SMS to the number the letter gives."""

    def __init__(
        self,
        outbox: ReplyOutbox,
        bridge: Bridge,
        short_code: str,
        wake: Callable[[], None] | None = None,
    ) -> None:
        self._outbox = outbox
        self._bridge = bridge
        self._short_code = short_code
        self._wake = wake

    async def acknowledge(
        self, raw_inbound_id: str, tracking_id: str, phone: str | None, followup: bool = False
    ) -> str | None:
        """Queue the SMS; the masked number when it was queued, else None. ``followup``: the
        letter was added to the earlier report it names, whose ID it is."""
        if not phone or not is_mobile(phone):
            return None
        decision = await self._outbox.enqueue(
            NewReply(
                raw_inbound_id=raw_inbound_id,
                bridge=self._bridge,
                recipient=phone,
                sender_key=phone,
                kind="followup" if followup else "receipt",
                body=(replies.followup if followup else replies.accepted)(
                    tracking_id, self._short_code
                ),
                deliver=True,
                tracking_id=tracking_id,
            )
        )
        if decision.status is ReplyStatus.SUPPRESSED:
            log.info(
                "letter acknowledgement not sent by SMS",
                extra={"tracking_id": tracking_id, "reason": decision.reason},
            )
            return None
        if decision.created and self._wake is not None:
            self._wake()
        return mask_phone(phone)


def sms_ack(
    outbox: ReplyOutbox | None,
    settings: SmsSettings,
    wake: Callable[[], None] | None = None,
) -> SmsAck | None:
    """An :class:`SmsAck` when the SMS channel has a durable outbox and a bridge that sends."""
    if outbox is None:
        return None
    bridge = next(iter(clients(settings)), None)
    if bridge is None:
        return None
    return SmsAck(outbox, bridge, settings.short_code, wake)
