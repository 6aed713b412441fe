"""Content-addressed file store for large bodies and attachments.

A file lives at ``<root>/<aa>/<bb>/<sha256>``, named by the SHA-256 of its bytes, so storing the
same bytes twice is one file and a name always tells what it holds. Writes go to a temporary file
in the same folder and are renamed into place after fsync: a reader never sees half a file. The
blocking file calls run in a thread, off the event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

_SHA256 = re.compile(r"[0-9a-f]{64}")


class FileTooLarge(Exception):
    """A stream was longer than the limit it was stored with."""


class FileStore:
    """Files by SHA-256 under one folder."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, sha256: str) -> Path:
        """Where the file with this hash lives (whether or not it exists)."""
        if not _SHA256.fullmatch(sha256):
            raise ValueError("not a lowercase hex SHA-256")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    async def put_bytes(self, data: bytes) -> str:
        """Store ``data``; return its SHA-256."""
        sha = hashlib.sha256(data).hexdigest()
        await asyncio.to_thread(self._write, sha, [data])
        return sha

    async def put_stream(self, chunks: AsyncIterator[bytes], max_size: int) -> tuple[str, int]:
        """Store a stream without holding it in memory; return (SHA-256, size).

        Raises :class:`FileTooLarge` (and keeps nothing) when the stream passes ``max_size``.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        fd, tmp_name = tempfile.mkstemp(dir=self.root, prefix=".incoming-")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as fh:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > max_size:
                        raise FileTooLarge(f"larger than {max_size} bytes")
                    digest.update(chunk)
                    await asyncio.to_thread(fh.write, chunk)
                await asyncio.to_thread(_flush_and_sync, fh.fileno())
            sha = digest.hexdigest()
            await asyncio.to_thread(self._move_into_place, tmp, sha)
            return sha, size
        finally:
            await asyncio.to_thread(tmp.unlink, missing_ok=True)

    async def read(self, sha256: str) -> bytes:
        """The bytes stored under ``sha256`` (FileNotFoundError when absent)."""
        return await asyncio.to_thread(self.path(sha256).read_bytes)

    def _write(self, sha: str, parts: list[bytes]) -> None:
        target = self.path(sha)
        if target.exists():
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as fh:
                for part in parts:
                    fh.write(part)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp_name, target)
        finally:
            Path(tmp_name).unlink(missing_ok=True)

    def _move_into_place(self, tmp: Path, sha: str) -> None:
        target = self.path(sha)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, target)


def _flush_and_sync(fileno: int) -> None:
    os.fsync(fileno)
