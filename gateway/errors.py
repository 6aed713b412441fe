"""The gateway's named errors.

Channels map these, in one table each, to their protocol's replies (see
:data:`gateway.errors.TRANSPORT_REPLIES`).
"""

from __future__ import annotations


class GatewayError(Exception):
    """Base of every error the gateway raises on purpose."""


class ConfigError(GatewayError):
    """Settings are invalid; the message names the key."""


class IntakeUnavailable(GatewayError):
    """The intake port could not commit: the sender must retry later.

    Every channel maps it to its protocol's retry signal: HTTP 503, SMTP 451,
    SMPP ESME_RX_T_APPN. Nothing was acknowledged, so nothing is lost.
    """


class ParseError(GatewayError):
    """A channel's parser could not understand a message; the intake port quarantines it."""

    def __init__(self, reason: str, stage: str = "parse") -> None:
        super().__init__(reason)
        self.reason = reason
        self.stage = stage


class QuarantineNotFound(GatewayError):
    """No quarantine entry with that id."""


# One table of how each named outcome is answered on each transport. Channels read it rather
# than choosing their own codes. SMPP 0x00000064 is ESME_RX_T_APPN (SMPP v3.4, section 5.1.3).
TRANSPORT_REPLIES: dict[str, dict[str, str | int]] = {
    "accepted": {"http": 202, "smtp": "250 2.0.0 OK", "smpp": 0x00000000},
    "quarantined": {"http": 202, "smtp": "250 2.0.0 OK", "smpp": 0x00000000},
    "unavailable": {"http": 503, "smtp": "451 4.3.0 Try again later", "smpp": 0x00000064},
}
