"""Row identifiers: random (version 4) UUIDs drawn in bulk.

``uuid.uuid4()`` reads the operating system's random source once per identifier; the intake
writes four or five of them per complaint. Here the same source (:func:`os.urandom`) is read for
many identifiers at a time, and each takes its 16 bytes from that buffer, so identifiers stay
as unpredictable as ``uuid4``'s. A forked child drops the buffer it inherited.
"""

from __future__ import annotations

import os
import uuid

_CHUNK = 16 * 256
_buffer = b""
_offset = 0


def new_id() -> str:
    """A fresh random UUID (version 4) in its canonical text form."""
    global _buffer, _offset
    if _offset >= len(_buffer):
        _buffer, _offset = os.urandom(_CHUNK), 0
    raw = _buffer[_offset : _offset + 16]
    _offset += 16
    return str(uuid.UUID(bytes=raw, version=4))


def _forget() -> None:
    # A forked child must never hand out the identifiers its parent still holds.
    global _buffer, _offset
    _buffer, _offset = b"", 0


os.register_at_fork(after_in_child=_forget)
