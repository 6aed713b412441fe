"""Random identifiers drawn in bulk: row ids (version 4 UUIDs) and the bytes of tracking IDs.

``uuid.uuid4()`` and :func:`secrets.token_bytes` read the operating system's random source once
per call; the intake needs four or five identifiers and a tracking ID per complaint. Here the
same source (:func:`os.urandom`) is read for many at a time, and each takes its bytes from that
buffer once and only once, so they stay as unpredictable as ``uuid4``'s. A forked child drops
the buffer it inherited.
"""

from __future__ import annotations

import os
import uuid

_CHUNK = 16 * 256
_buffer = b""
_offset = 0


def random_bytes(size: int) -> bytes:
    """``size`` fresh bytes of the system's CSPRNG (at most 256), never handed out before."""
    global _buffer, _offset
    if _offset + size > len(_buffer):
        _buffer, _offset = os.urandom(_CHUNK), 0
    raw = _buffer[_offset : _offset + size]
    _offset += size
    return raw


def new_id() -> str:
    """A fresh random UUID (version 4) in its canonical text form."""
    return str(uuid.UUID(bytes=random_bytes(16), version=4))


def _forget() -> None:
    # A forked child must never hand out the identifiers its parent still holds.
    global _buffer, _offset
    _buffer, _offset = b"", 0


os.register_at_fork(after_in_child=_forget)
