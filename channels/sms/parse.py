"""The SMS channel's pure parser: a stored Kannel request to a parse outcome.

The raw inbound body is the get-url query string exactly as smsbox sent it, so a quarantined
message can be parsed again later with nothing but its stored bytes.
"""

from __future__ import annotations

from collections.abc import Callable

from channels.sms import grammar, kannel
from channels.sms.settings import SmsSettings
from gateway.domain import ParseOutcome, RawInbound


def interpret_request(raw: RawInbound, settings: SmsSettings) -> grammar.Interpretation:
    """Decode the Kannel request in ``raw.body`` and read its text with the grammar."""
    mo = kannel.decode_request(raw.body)
    if mo.fragment is not None:
        return grammar.Interpretation(grammar.Intent.FRAGMENT)
    return grammar.interpret(mo.text, mo.sender, settings.regions, settings.default_region)


def kannel_parser(settings: SmsSettings) -> Callable[[RawInbound], ParseOutcome]:
    """The parse function registered as ``sms.kannel`` for these settings."""

    def parse(raw: RawInbound) -> ParseOutcome:
        return interpret_request(raw, settings).outcome

    return parse
