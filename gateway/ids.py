"""Identifiers drawn in bulk: row ids (version 7 UUIDs) and the bytes of tracking IDs.

Row ids are UUIDv7 (RFC 9562 section 5.7): the time in milliseconds, then 74 random bits. Ids
made close in time sort close together, so a batch of new rows lands on the last pages of each
primary-key and id index instead of on a random page each (with version 4 every insert touched a
random leaf page of every such index, and every commit wrote all those pages out again). The
74 random bits keep an id unguessable; what it tells is the millisecond it was made, which the
rows and events carry anyway. Tracking IDs stay wholly random (:mod:`gateway.tracking`).

``uuid.uuid4()`` and :func:`secrets.token_bytes` read the operating system's random source once
per call; the intake needs four or five identifiers and a tracking ID per complaint. Here the
same source (:func:`os.urandom`) is read for many at a time, and each takes its bytes from that
buffer once and only once, so they stay as unpredictable as ``uuid4``'s. A forked child drops
the buffer it inherited. A lock keeps that promise when threads draw at once (files are sealed in
worker threads, their AES-GCM nonces taken from here): CPython's global lock happens to make the
draw atomic today, but nothing in the language promises it, and a nonce handed out twice would
break the cipher.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid

_CHUNK = 16 * 256
_buffer = b""
_offset = 0
_lock = threading.Lock()


def random_bytes(size: int) -> bytes:
    """``size`` fresh bytes of the system's CSPRNG (at most 256), never handed out before."""
    global _buffer, _offset
    with _lock:
        if _offset + size > len(_buffer):
            _buffer, _offset = os.urandom(_CHUNK), 0
        raw = _buffer[_offset : _offset + size]
        _offset += size
    return raw


def new_id() -> str:
    """A fresh UUID version 7 (the time in milliseconds, then random bits), in text form."""
    tail = bytearray(random_bytes(10))
    tail[0] = 0x70 | (tail[0] & 0x0F)  # version 7
    tail[2] = 0x80 | (tail[2] & 0x3F)  # the RFC 9562 variant
    return str(uuid.UUID(bytes=(time.time_ns() // 1_000_000).to_bytes(6, "big") + bytes(tail)))


# The claim columns (``claimed_by``) hold 64 characters.
WORKER_NAME_MAX = 64


def worker_name(*parts: str) -> str:
    """A name for one worker of this process (a relay, a sender, a reader): the host name, then
    ``parts`` and 8 random hex digits, joined by ``-``; the host name cut so that the whole fits
    a claim column (a Kubernetes pod's name runs to 63 characters)."""
    tail = "-".join((*parts, uuid.uuid4().hex[:8]))
    return f"{socket.gethostname()[: WORKER_NAME_MAX - len(tail) - 1]}-{tail}"


def _forget() -> None:
    # A forked child must never hand out the identifiers its parent still holds.
    global _buffer, _offset, _lock
    _buffer, _offset, _lock = b"", 0, threading.Lock()  # the parent's lock may have been held


os.register_at_fork(after_in_child=_forget)
