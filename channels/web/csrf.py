"""CSRF protection of the citizen form: a signed token bound to a cookie (OWASP "signed
double-submit cookie").

The browser holds a random client id in the ``lapor_csrf`` cookie (HttpOnly, SameSite=Lax).
Each served form carries ``<issued>.<nonce>.<mac>`` where ``mac`` is HMAC-SHA256 under the
gateway's key of the client id, the nonce and the issue time. A POST is taken only with a token
whose MAC matches the cookie it comes with and that is younger than the maximum age: another
site can neither read the cookie nor forge the MAC. The nonce also names the submission: sending
the same form twice (a double click, a reload) gets the first receipt back.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

COOKIE = "lapor_csrf"
FIELD = "csrf"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def new_client_id() -> str:
    """A random id for the cookie."""
    return _b64(secrets.token_bytes(18))


class CsrfSigner:
    """Issues and checks form tokens with one key."""

    def __init__(self, key: bytes, max_age: float) -> None:
        self._key = key
        self._max_age = max_age

    def _mac(self, client_id: str, nonce: str, issued: int) -> str:
        msg = f"{client_id}|{nonce}|{issued}".encode()
        return _b64(hmac.new(self._key, msg, hashlib.sha256).digest())

    def issue(self, client_id: str, now: float) -> str:
        """A fresh token for one form served to ``client_id``."""
        nonce = _b64(secrets.token_bytes(12))
        issued = int(now)
        return f"{issued}.{nonce}.{self._mac(client_id, nonce, issued)}"

    def check(self, token: str, client_id: str | None, now: float) -> str | None:
        """The token's nonce when it is valid for ``client_id`` now, else None."""
        if not client_id:
            return None
        issued_text, _, rest = token.partition(".")
        nonce, _, mac = rest.partition(".")
        if not (issued_text.isdigit() and nonce and mac):
            return None
        issued = int(issued_text)
        if not -60 <= now - issued <= self._max_age:
            return None
        if not hmac.compare_digest(mac, self._mac(client_id, nonce, issued)):
            return None
        return nonce
