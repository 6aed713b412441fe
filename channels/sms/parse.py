"""The SMS channel's pure parsers: a stored bridge request to a parse outcome.

Each raw inbound body is the request exactly as its bridge sent it (Kannel's get-url query
string, Jasmin's form, the Android app's JSON, SMSSync's form without its secret, the form
Gammu SMSD's RunOnReceive program posts), so a quarantined message can be parsed again later
with nothing but its stored bytes. A message joined from fragments is stored as the JSON of
:mod:`channels.sms.fragments`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from channels.sms import android, fragments, gammu, grammar, jasmin, kannel, smssync
from channels.sms.message import Bridge, SmsMessage
from channels.sms.settings import SmsSettings
from gateway.domain import ComplaintDraft, ParseOutcome, RawInbound
from gateway.errors import ParseError

PARSER_NAMES = {
    Bridge.KANNEL: "sms.kannel",
    Bridge.JASMIN: "sms.jasmin",
    Bridge.ANDROID: "sms.android",
    Bridge.SMSSYNC: "sms.smssync",
    Bridge.GAMMU: "sms.gammu",
}
JOINED_PARSER = "sms.joined"


def decode(bridge: Bridge, body: bytes, settings: SmsSettings) -> SmsMessage:
    """The MO in a stored request of ``bridge``; :class:`ParseError` when there is none."""
    if bridge is Bridge.KANNEL:
        return kannel.decode_request(body).message()
    if bridge is Bridge.JASMIN:
        return jasmin.decode_request(body, settings.jasmin_coding0).message
    if bridge is Bridge.ANDROID:
        event = android.decode_event(body)
        if event.message is None:
            raise ParseError(f"bukan SMS masuk / not an incoming SMS: {event.name}", stage="decode")
        return event.message
    if bridge is Bridge.GAMMU:
        return gammu.decode_request(body)
    return smssync.decode_request(body)


# Bridges whose SMS arrive on an ordinary SIM (a modem or a phone), which also receives the
# operator's promotions, a bank's codes and the like; the short code 1708 (Kannel, Jasmin) only
# receives what subscribers send to it.
SIM_BRIDGES = frozenset({Bridge.ANDROID, Bridge.SMSSYNC, Bridge.GAMMU})
_SHORT_CODE_DIGITS = 6


def from_subscriber(sender: str) -> bool:
    """Whether ``sender`` can be a subscriber's number: not an alphanumeric sender id
    (``TELKOMSEL``, ``BCA``) nor a short code (``3636``, ``888``)."""
    digits = "".join(c for c in sender if c.isdigit())
    return bool(digits) and len(digits) > _SHORT_CODE_DIGITS and not any(
        c.isalpha() for c in sender
    )


def interpret(message: SmsMessage, settings: SmsSettings) -> grammar.Interpretation:
    """Read one decoded MO with the grammar (a fragment is only a fragment). On a SIM bridge, a
    message that no subscriber sent is recorded, neither a complaint nor answered."""
    if message.bridge in SIM_BRIDGES and not from_subscriber(message.sender):
        return grammar.Interpretation(grammar.Intent.NOT_SUBSCRIBER)
    if message.fragment is not None:
        return grammar.Interpretation(grammar.Intent.FRAGMENT)
    return grammar.interpret(
        message.text, message.sender, settings.regions, settings.default_region
    )


def interpret_request(raw: RawInbound, settings: SmsSettings) -> grammar.Interpretation:
    """Decode the Kannel request in ``raw.body`` and read its text with the grammar."""
    return interpret(decode(Bridge.KANNEL, raw.body, settings), settings)


def interpret_joined(raw: RawInbound, settings: SmsSettings) -> grammar.Interpretation:
    """Read a message joined from fragments; an incomplete one gets a title saying so."""
    joined = fragments.read(raw.body)
    # A long message: filed with what arrived, however little of it (a lone "tolong." part).
    reading = grammar.interpret(
        joined.text, joined.sender, settings.regions, settings.default_region, min_words=1
    )
    title = joined.title()
    if title is not None and isinstance(reading.draft, ComplaintDraft):
        reading = replace(reading, draft=replace(reading.draft, title=title))
    return reading


def bridge_parser(bridge: Bridge, settings: SmsSettings) -> Callable[[RawInbound], ParseOutcome]:
    """The parse function registered as ``PARSER_NAMES[bridge]`` for these settings."""

    def parse(raw: RawInbound) -> ParseOutcome:
        return interpret(decode(bridge, raw.body, settings), settings).outcome

    return parse


def joined_parser(settings: SmsSettings) -> Callable[[RawInbound], ParseOutcome]:
    """The parse function registered as ``sms.joined``."""

    def parse(raw: RawInbound) -> ParseOutcome:
        return interpret_joined(raw, settings).outcome

    return parse


def kannel_parser(settings: SmsSettings) -> Callable[[RawInbound], ParseOutcome]:
    """The parse function registered as ``sms.kannel`` for these settings."""
    return bridge_parser(Bridge.KANNEL, settings)
