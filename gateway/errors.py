"""The gateway's named errors.

Each channel maps them to its protocol's replies: :class:`IntakeUnavailable` to the retry signal
(HTTP 503 with Retry-After in the web and SMS routes; SMTP 451 and SMPP ESME_RX_T_APPN for the
mail and SMPP channels), :class:`ParseError` to quarantine inside the intake port.
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
