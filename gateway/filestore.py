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
:meth:`FileStore.opened` gives a file without reading it whole: one pass checks the hash, then
the bytes are decrypted as they are read, at any offset (CTR's keystream for block ``n`` is AES of
the IV plus ``n``), which is what serving a photo or reading a PDF's cross-reference table needs.

Nothing is deleted on the way: a file stored for a request that was then refused stays until
``lapor-gateway files gc`` (:mod:`gateway.filegc`) finds that no row refers to it. That collector
goes by a file's mtime, so storing bytes that are already there refreshes it: a request that
sends again the bytes of an old, unreferenced file keeps it until its own row is committed.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import re
import stat
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms, modes

from gateway.crypto import Keys
from gateway.durable import flush_and_sync, sync_folder

_SHA256 = re.compile(r"[0-9a-f]{64}")
MAGIC = b"LAPOR-SEALED-1\n"
_IV_BYTES = 16
_BLOCK = 16  # AES block: CTR's counter counts these
_CHUNK = 256 * 1024  # read size of the hash check
# Files being written; a process killed mid-write leaves one behind (the collector removes it).
_TEMP_PREFIX = ".incoming-"


class FileTooLarge(Exception):
    """A stream was longer than the limit it was stored with."""


class CorruptFile(Exception):
    """A stored file does not hold the bytes its name says (damaged, or not sealed by us)."""


@dataclass(frozen=True, slots=True)
class Aged:
    """The store's files by age (:meth:`FileStore.aged`)."""

    old: frozenset[str]  # SHA-256 of the files last written before the cutoff
    young: int  # how many were written (or stored again) since
    temporaries: tuple[Path, ...]  # temporaries last written before the cutoff


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
        fd, tmp_name = tempfile.mkstemp(dir=self.root, prefix=_TEMP_PREFIX)
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
                await asyncio.to_thread(flush_and_sync, fh)
            sha = digest.hexdigest()
            await asyncio.to_thread(self._move_into_place, tmp, sha)
            return sha, size
        finally:
            await asyncio.to_thread(tmp.unlink, missing_ok=True)

    async def touch(self, sha256: str) -> bool:
        """Mark the file as in use now (its mtime: the file store's garbage collection spares
        recent files); False when it is not stored."""
        return await asyncio.to_thread(_touch, self.path(sha256))

    async def read(self, sha256: str) -> bytes:
        """The bytes stored under ``sha256``, checked against it (FileNotFoundError when absent,
        :class:`CorruptFile` when they do not hash to it)."""
        return await asyncio.to_thread(self._read, sha256)

    def _read(self, sha256: str) -> bytes:
        return self._open(sha256, self.path(sha256).read_bytes())[0]

    def _open(self, sha256: str, stored: bytes) -> tuple[bytes, bool]:
        """The bytes a stored file holds, and whether it is sealed under the current key (each
        candidate key decrypts the bytes once, and they are hashed as they are)."""
        for reader, current in self._readers(io.BytesIO(stored), len(stored)):
            data = reader.readall()
            if hashlib.sha256(data).hexdigest() == sha256:
                return data, current
        raise CorruptFile(f"{sha256}: the stored bytes do not match their name")

    def opened(self, sha256: str) -> BinaryIO:
        """The file stored under ``sha256``, open for reading (and seeking) without being read
        whole; its hash is checked first. Blocking: call it in a thread, and close what it gives.
        FileNotFoundError when absent, :class:`CorruptFile` when the bytes do not hash to it."""
        fh = self.path(sha256).open("rb")
        try:
            size = os.fstat(fh.fileno()).st_size
            reader, _current = self._verified(sha256, fh, size)
        except BaseException:
            fh.close()
            raise
        return io.BufferedReader(reader, buffer_size=64 * 1024)

    def _readers(self, fh: BinaryIO, size: int) -> Iterator[tuple[_Reader, bool]]:
        """The ways to read the stored file ``fh``: under each key (the current one first) when
        it is sealed, then as it is (stored in the clear, before sealing); with whether the
        current key sealed it."""
        head = fh.read(len(MAGIC) + _IV_BYTES)
        if head.startswith(MAGIC) and len(head) == len(MAGIC) + _IV_BYTES:
            iv = head[len(MAGIC) :]
            for i, key in enumerate(self._keys):
                yield _Reader(fh, len(head), size - len(head), key, iv), i == 0
        yield _Reader(fh, 0, size, None, b""), False

    def _verified(self, sha256: str, fh: BinaryIO, size: int) -> tuple[_Reader, bool]:
        """A reader of the stored bytes in ``fh`` that hash to ``sha256`` (sealed under one of
        the keys, or in the clear), and whether the current key sealed them."""
        for reader, current in self._readers(fh, size):
            if _sha256_of(reader) == sha256:
                reader.seek(0)
                reader.owner = True
                return reader, current
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
            try:
                stored = path.read_bytes()
            except FileNotFoundError:  # collected meanwhile (``files gc``): nothing to seal
                continue
            seen += 1
            data, current = self._open(path.name, stored)
            if not current:
                self._write(path.name, self._sealed(data), replace=True)
                resealed += 1
        return resealed, seen

    def _write(self, sha: str, parts: list[bytes], replace: bool = False) -> None:
        target = self.path(sha)
        if not replace and _touch(target):
            return
        _make_folders(target.parent)
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=_TEMP_PREFIX)
        try:
            with os.fdopen(fd, "wb") as fh:
                for part in parts:
                    fh.write(part)
                flush_and_sync(fh)
            os.replace(tmp_name, target)
            sync_folder(target.parent)
        finally:
            Path(tmp_name).unlink(missing_ok=True)

    def _move_into_place(self, tmp: Path, sha: str) -> None:
        target = self.path(sha)
        _make_folders(target.parent)
        # Also over a file already there: the temporary was just written, so the file's mtime
        # is now either way, as the collector needs (see _write).
        os.replace(tmp, target)
        sync_folder(target.parent)

    async def aged(self, cutoff: float) -> Aged:
        """The store's files and leftover temporaries, by whether their mtime is before
        ``cutoff`` (seconds since the epoch). Anything else found under the root is not the
        store's and is left out (and never deleted)."""
        return await asyncio.to_thread(self._aged, cutoff)

    def _aged(self, cutoff: float) -> Aged:
        old: set[str] = set()
        young = 0
        temporaries: list[Path] = []

        def unreadable(exc: OSError) -> None:
            # A root not made yet is a store nothing was put in; a root that is a file, or a
            # folder that cannot be read, is a store that cannot be scanned: a failed collection
            # (alerted), not an empty store and a success.
            if isinstance(exc, FileNotFoundError) and Path(str(exc.filename)) == self.root:
                return
            raise exc

        for folder, _dirs, names in os.walk(self.root, onerror=unreadable):
            for name in names:
                path = Path(folder, name)
                temporary = name.startswith(_TEMP_PREFIX)
                if not temporary and not (_SHA256.fullmatch(name) and self.path(name) == path):
                    continue
                try:
                    info = path.lstat()
                except FileNotFoundError:  # renamed into place or removed meanwhile
                    continue
                if not stat.S_ISREG(info.st_mode):
                    continue
                if temporary:
                    if info.st_mtime < cutoff:
                        temporaries.append(path)
                elif info.st_mtime < cutoff:
                    old.add(name)
                else:
                    young += 1
        return Aged(frozenset(old), young, tuple(temporaries))

    async def collect(self, path: Path, cutoff: float, dry_run: bool = False) -> int | None:
        """Delete ``path`` (a stored file or a temporary) if its mtime is still before
        ``cutoff``: its size, None when it was written again since (kept), 0 when it was
        already gone. ``dry_run`` deletes nothing and says the same."""
        return await asyncio.to_thread(_collect, path, cutoff, dry_run)


def _make_folders(folder: Path) -> None:
    """Create ``folder`` and any missing parents durably: a new folder's own entry is synced in
    its parent, or a crash could lose it, and the file renamed into it with it."""
    missing: list[Path] = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    for created in reversed(missing):
        created.mkdir(exist_ok=True)
        sync_folder(created.parent)


def _touch(path: Path) -> bool:
    """Set the mtime of an existing file to now; False when there is no such file. On a store
    that cannot be written (read-only), the file is there, and nothing can collect it either:
    True when it exists."""
    try:
        os.utime(path)
    except FileNotFoundError:
        return False
    except OSError:  # EROFS, EACCES: the mtime stays, the file is still there to be used
        return path.is_file()
    return True


def _collect(path: Path, cutoff: float, dry_run: bool) -> int | None:
    if dry_run:
        try:
            info = path.stat()
        except FileNotFoundError:
            return 0
        return info.st_size if info.st_mtime < cutoff else None
    # Moved aside first, atomically: a put that refreshed the file before the move is seen in
    # the mtime read after it (the file goes back), and a put after it finds no file and writes
    # a new one. A crash in between leaves a temporary with the old mtime, removed next time.
    # The aside's name is this collection's own: two collectors (replicas) at once must never
    # share one, or one would delete what the other moved aside, a file stored again meanwhile
    # included.
    aside = path.with_name(f"{_TEMP_PREFIX}collected-{os.urandom(6).hex()}-{path.name}")
    try:
        os.replace(path, aside)
    except FileNotFoundError:
        return 0
    info = aside.stat()
    if info.st_mtime >= cutoff:
        os.replace(aside, path)
        return None
    aside.unlink()
    return info.st_size


class _Reader(io.RawIOBase):
    """The bytes of a stored file from ``start`` on, opened with ``key`` (AES-256-CTR from
    ``iv``) or read as they are (``key`` None); seekable. Closing it closes the file only when it
    is the ``owner`` (the one :meth:`FileStore._verified` chose)."""

    def __init__(self, fh: BinaryIO, start: int, size: int, key: bytes | None, iv: bytes) -> None:
        super().__init__()
        self._fh, self._start, self._size, self._key = fh, start, max(0, size), key
        self._counter = int.from_bytes(iv, "big")
        self._pos = 0
        self.owner = False

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._pos = base + offset
        return self._pos

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        want = min(len(buffer), self._size - self._pos)
        if want <= 0:
            return 0
        self._fh.seek(self._start + self._pos)
        data = self._fh.read(want)
        if self._key is not None:
            block, skip = divmod(self._pos, _BLOCK)
            counter = ((self._counter + block) % (1 << 128)).to_bytes(_BLOCK, "big")
            opening = Cipher(algorithms.AES(self._key), modes.CTR(counter)).decryptor()
            opening.update(bytes(skip))  # the keystream of the block's bytes before ours
            data = opening.update(data)
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def readall(self) -> bytes:
        return self.read(max(0, self._size - self._pos)) or b""

    def close(self) -> None:
        if self.owner and not self.closed:
            self._fh.close()
        super().close()


def _sha256_of(reader: _Reader) -> str:
    digest = hashlib.sha256()
    while chunk := reader.read(_CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


def _seal(cipher: Cipher[modes.CTR], data: bytes) -> bytes:
    context: CipherContext = cipher.encryptor()
    return context.update(data) + context.finalize()
