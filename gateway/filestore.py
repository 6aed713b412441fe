"""Content-addressed file store for large bodies and attachments, sealed at rest.

A file lives at ``<root>/<aa>/<bb>/<sha256>``, named by the SHA-256 of its bytes, so storing the
same bytes twice is one file and a name always tells what it holds. Writes go to a temporary file
in the same folder and are renamed into place after fsync: a reader never sees half a file. The
blocking file calls run in a thread, off the event loop.

What the files hold (photos of identity cards, scanned letters, long messages) is personal data:
on disk a file is ``LAPOR-SEALED-1`` and a random 16-byte IV, then its bytes under AES-256-CTR
with a key derived from the data key (HKDF-SHA256, its own ``info``, so the file key is never the
key of the AES-GCM values). CTR encrypts a stream as it arrives, so an upload is still never
whole in memory. Integrity comes from the name: every read decrypts and checks that the bytes
hash to the SHA-256 they are stored under, and refuses them otherwise (:class:`CorruptFile`);
that check also tells which data key sealed a file, after a rotation.
A file stored before sealing (in the clear) is read as it is, after the same check.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms, modes

from gateway.crypto import Keys

_SHA256 = re.compile(r"[0-9a-f]{64}")
MAGIC = b"LAPOR-SEALED-1\n"
_IV_BYTES = 16


class FileTooLarge(Exception):
    """A stream was longer than the limit it was stored with."""


class CorruptFile(Exception):
    """A stored file does not hold the bytes its name says (damaged, or not sealed by us)."""


class FileStore:
    """Files by SHA-256 under one folder."""

    def __init__(self, root: Path, keys: Keys) -> None:
        self.root = root
        # Sealed under the first; files sealed under a previous data key still open.
        self._keys = keys.file_keys

    def _cipher(self, iv: bytes, key: bytes | None = None) -> Cipher[modes.CTR]:
        return Cipher(algorithms.AES(key or self._keys[0]), modes.CTR(iv))

    def path(self, sha256: str) -> Path:
        """Where the file with this hash lives (whether or not it exists)."""
        if not _SHA256.fullmatch(sha256):
            raise ValueError("not a lowercase hex SHA-256")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    async def put_bytes(self, data: bytes) -> str:
        """Store ``data``; return its SHA-256."""
        sha = hashlib.sha256(data).hexdigest()
        await asyncio.to_thread(self._write, sha, self._sealed(data))
        return sha

    def _sealed(self, data: bytes) -> list[bytes]:
        """A file's parts on disk: the magic, a fresh IV, the bytes under the current key."""
        iv = os.urandom(_IV_BYTES)
        return [MAGIC, iv, _seal(self._cipher(iv), data)]

    async def put_stream(self, chunks: AsyncIterator[bytes], max_size: int) -> tuple[str, int]:
        """Store a stream without holding it in memory; return (SHA-256, size).

        Raises :class:`FileTooLarge` (and keeps nothing) when the stream passes ``max_size``.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        fd, tmp_name = tempfile.mkstemp(dir=self.root, prefix=".incoming-")
        tmp = Path(tmp_name)
        iv = os.urandom(_IV_BYTES)
        sealing = self._cipher(iv).encryptor()
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(MAGIC + iv)
                async for chunk in chunks:
                    size += len(chunk)
                    if size > max_size:
                        raise FileTooLarge(f"larger than {max_size} bytes")
                    digest.update(chunk)
                    await asyncio.to_thread(fh.write, sealing.update(chunk))
                fh.write(sealing.finalize())
                await asyncio.to_thread(_flush_and_sync, fh.fileno())
            sha = digest.hexdigest()
            await asyncio.to_thread(self._move_into_place, tmp, sha)
            return sha, size
        finally:
            await asyncio.to_thread(tmp.unlink, missing_ok=True)

    async def read(self, sha256: str) -> bytes:
        """The bytes stored under ``sha256``, checked against it (FileNotFoundError when absent,
        :class:`CorruptFile` when they do not hash to it)."""
        return await asyncio.to_thread(self._read, sha256)

    def _read(self, sha256: str) -> bytes:
        return self._open(sha256, self.path(sha256).read_bytes())[0]

    def _open(self, sha256: str, stored: bytes) -> tuple[bytes, bool]:
        """The bytes a stored file holds, and whether it is sealed under the current key."""
        if stored.startswith(MAGIC):
            head = len(MAGIC) + _IV_BYTES
            iv = stored[len(MAGIC) : head]
            for i, key in enumerate(self._keys):
                data = _seal(self._cipher(iv, key), stored[head:])
                if hashlib.sha256(data).hexdigest() == sha256:
                    return data, i == 0
        if hashlib.sha256(stored).hexdigest() == sha256:  # stored in the clear, before sealing
            return stored, False
        raise CorruptFile(f"{sha256}: the stored bytes do not match their name")

    async def reseal(self) -> tuple[int, int]:
        """Seal again under the current key every file that is not (``keys reseal``): files of a
        previous data key and files stored in the clear. (files resealed, files seen)"""
        return await asyncio.to_thread(self._reseal_all)

    def _reseal_all(self) -> tuple[int, int]:
        resealed = seen = 0
        for path in sorted(self.root.rglob("*")) if self.root.exists() else []:
            if not path.is_file() or not _SHA256.fullmatch(path.name):
                continue
            seen += 1
            data, current = self._open(path.name, path.read_bytes())
            if not current:
                self._write(path.name, self._sealed(data), replace=True)
                resealed += 1
        return resealed, seen

    def _write(self, sha: str, parts: list[bytes], replace: bool = False) -> None:
        target = self.path(sha)
        if target.exists() and not replace:
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


def _seal(cipher: Cipher[modes.CTR], data: bytes) -> bytes:
    # CTR is its own inverse: the same call seals and opens.
    context: CipherContext = cipher.encryptor()
    return context.update(data) + context.finalize()
