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
import re
import secrets

COOKIE = "lapor_csrf"
FIELD = "csrf"
# What a client id looks like: URL-safe base64 (what :func:`new_client_id` makes), at most 64.
_CLIENT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def b64(data: bytes) -> str:
    """URL-safe base64 without padding (what a token carries)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64(text: str) -> bytes:
    """The bytes of :func:`b64`'s text (``binascii.Error`` when it is not such text)."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_client_id() -> str:
    """A random id for the cookie."""
    return b64(secrets.token_bytes(18))


def client_id(cookie: str | None) -> str | None:
    """The client id the ``lapor_csrf`` cookie holds, or None when it holds none (absent, or
    anything but what :func:`new_client_id` makes: a cookie a client wrote itself with bytes
    that are not UTF-8 would otherwise fail every MAC with an error)."""
    return cookie if cookie is not None and _CLIENT_ID.fullmatch(cookie) else None


class BoundTokens:
    """Tokens ``<issued>.<payload>.<mac>`` good only for the browser whose client id they were
    issued to, for ``max_age`` seconds: ``mac`` is HMAC-SHA256 of the client id, the payload and
    the issue time. ``purpose`` derives a key of its own from ``key``, so a token issued for one
    use never opens as another."""

    def __init__(self, key: bytes, max_age: float, purpose: bytes | None = None) -> None:
        self._key = key if purpose is None else hmac.new(key, purpose, hashlib.sha256).digest()
        self._max_age = max_age

    def _mac(self, client_id: str, payload: str, issued: int) -> str:
        msg = f"{client_id}|{payload}|{issued}".encode()
        return b64(hmac.new(self._key, msg, hashlib.sha256).digest())

    def issue(self, client_id: str, payload: str, now: float) -> str:
        """A token carrying ``payload`` (no dots) for ``client_id``."""
        issued = int(now)
        return f"{issued}.{payload}.{self._mac(client_id, payload, issued)}"

    def open(self, token: str, client_id: str | None, now: float) -> str | None:
        """The token's payload when it is valid for ``client_id`` now, else None."""
        if not client_id or not (client_id.isascii() and token.isascii()):
            return None  # none of ours: ours are ASCII (and a lone surrogate cannot be MACed)
        issued_text, _, rest = token.partition(".")
        payload, _, mac = rest.partition(".")
        if not (issued_text.isdigit() and payload and mac):
            return None
        issued = int(issued_text)
        if not -60 <= now - issued <= self._max_age:
            return None
        if not hmac.compare_digest(mac, self._mac(client_id, payload, issued)):
            return None
        return payload


class CsrfSigner:
    """Issues and checks form tokens with one key; the payload is a fresh nonce per form."""

    def __init__(self, key: bytes, max_age: float) -> None:
        self._tokens = BoundTokens(key, max_age)

    def issue(self, client_id: str, now: float) -> str:
        """A fresh token for one form served to ``client_id``."""
        return self._tokens.issue(client_id, b64(secrets.token_bytes(12)), now)

    def check(self, token: str, client_id: str | None, now: float) -> str | None:
        """The token's nonce when it is valid for ``client_id`` now, else None."""
        return self._tokens.open(token, client_id, now)
