"""Tracking IDs: what a citizen writes down, types on a keypad and reads over the phone.

Nine characters: eight random symbols and one check symbol, e.g. ``K7QM4XRT9``, printed in two
groups (``K7QM-4XRT9``) for reading aloud. The alphabet has 30 symbols, digits 2-9 and the
letters without I, L, O and U, so that nothing looks like another (0/O, 1/I/L) or reads as a
word. Input is case-insensitive and ignores spaces and dashes.

The eight random symbols come from the system's CSPRNG (:func:`gateway.ids.random_bytes`;
30^8 ≈ 6.6·10^11 values), so an ID says nothing about the previous or the next one. The check
symbol is Luhn mod N (N = 30), which catches every single-symbol typo and every swap of two
adjacent different symbols except the pair whose code points sum to N (a property of Luhn mod N).
"""

from __future__ import annotations

from gateway.ids import random_bytes

ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
_N = len(ALPHABET)
_INDEX = {c: i for i, c in enumerate(ALPHABET)}
BODY_LENGTH = 8
LENGTH = BODY_LENGTH + 1


def _check_symbol(body: str) -> str:
    """Luhn mod N check symbol of ``body`` (all symbols in :data:`ALPHABET`)."""
    factor = 2
    total = 0
    for char in reversed(body):
        addend = factor * _INDEX[char]
        factor = 1 if factor == 2 else 2
        total += addend // _N + addend % _N
    return ALPHABET[(_N - total % _N) % _N]


# Bytes below this bound map onto the alphabet without bias (240 = 8 * 30); others are drawn again.
_UNBIASED = 256 - 256 % _N


def new_tracking_id() -> str:
    """A fresh random tracking ID with its check symbol."""
    symbols: list[str] = []
    while len(symbols) < BODY_LENGTH:
        symbols.extend(ALPHABET[b % _N] for b in random_bytes(12) if b < _UNBIASED)
    body = "".join(symbols[:BODY_LENGTH])
    return body + _check_symbol(body)


def normalize(text: str) -> str | None:
    """The canonical form of what a citizen typed, or None when it is not a valid tracking ID."""
    candidate = "".join(text.split()).replace("-", "").upper()
    if len(candidate) != LENGTH or any(c not in _INDEX for c in candidate):
        return None
    if _check_symbol(candidate[:-1]) != candidate[-1]:
        return None
    return candidate


def is_valid(text: str) -> bool:
    """True when ``text`` is a well-formed tracking ID with a correct check symbol."""
    return normalize(text) is not None


def display(tracking_id: str) -> str:
    """The tracking ID in two groups for printing and reading aloud (``K7QM-4XRT9``)."""
    return f"{tracking_id[:4]}-{tracking_id[4:]}"


def display_code(code: str) -> str:
    """A follow-up code (:meth:`gateway.crypto.Keys.followup_code`) in two groups of four."""
    return f"{code[:4]}-{code[4:]}"
