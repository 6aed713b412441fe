"""The file store seals what it keeps and gives back only the bytes a name stands for."""

from __future__ import annotations

import hashlib
import os
import stat
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway import filestore
from gateway.crypto import Keys
from gateway.filestore import MAGIC, CorruptFile, FileStore, FileTooLarge

SECRET = b"KTP 3201014101900001 Dewi Lestari"


def store(tmp_path: Path, data_key: bytes = b"k" * 32) -> FileStore:
    return FileStore(tmp_path / "files", Keys(b"i" * 32, data_key))


async def chunks_of(data: bytes, size: int) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def test_bytes_are_sealed_on_disk_and_read_back(tmp_path: Path) -> None:
    files = store(tmp_path)
    data = SECRET * 1000
    sha = await files.put_bytes(data)
    assert sha == hashlib.sha256(data).hexdigest()
    on_disk = files.path(sha).read_bytes()
    assert on_disk.startswith(MAGIC) and SECRET not in on_disk and b"3201014101900001" not in on_disk
    assert await files.read(sha) == data
    assert await files.put_bytes(data) == sha  # the same bytes: one file
    assert len([p for p in (tmp_path / "files").rglob("*") if p.is_file()]) == 1


async def test_a_stream_is_sealed_as_it_arrives(tmp_path: Path) -> None:
    files = store(tmp_path)
    data = os.urandom(300_001) + SECRET
    sha, size = await files.put_stream(chunks_of(data, 65_536), max_size=1_000_000)
    assert size == len(data) and sha == hashlib.sha256(data).hexdigest()
    assert SECRET not in files.path(sha).read_bytes()
    assert await files.read(sha) == data
    with pytest.raises(FileTooLarge):
        await files.put_stream(chunks_of(data, 65_536), max_size=100_000)
    # Nothing is left of the refused stream, not even its temporary file.
    assert [p.name for p in (tmp_path / "files").rglob("*") if p.is_file()] == [sha]


async def test_a_file_stored_before_sealing_still_reads(tmp_path: Path) -> None:
    files = store(tmp_path)
    sha = hashlib.sha256(SECRET).hexdigest()
    files.path(sha).parent.mkdir(parents=True)
    files.path(sha).write_bytes(SECRET)
    assert await files.read(sha) == SECRET


async def test_damaged_or_foreign_files_are_refused(tmp_path: Path) -> None:
    files = store(tmp_path)
    sha = await files.put_bytes(SECRET)
    path = files.path(sha)
    sealed = path.read_bytes()
    path.write_bytes(sealed[:-1] + bytes([sealed[-1] ^ 1]))  # one bit flipped
    with pytest.raises(CorruptFile):
        await files.read(sha)
    path.write_bytes(sealed)
    with pytest.raises(CorruptFile):  # sealed under another data key
        await store(tmp_path, b"x" * 32).read(sha)
    with pytest.raises(FileNotFoundError):
        await files.read("0" * 64)


@pytest.mark.parametrize("iv", [None, b"\xff" * 15 + b"\xfe"])  # the latter: the counter wraps
async def test_opened_reads_any_range_without_reading_the_file_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, iv: bytes | None
) -> None:
    files = store(tmp_path)
    data = os.urandom(200_003) + SECRET  # drawn first: the patch below is os.urandom itself
    if iv is not None:
        monkeypatch.setattr("gateway.filestore.os.urandom", lambda n: iv[:n])
    sha = await files.put_bytes(data)
    assert len(data) == 200_003 + len(SECRET)
    if iv is not None:  # sealed under that IV: the counter wraps to 0 at the third block
        assert files.path(sha).read_bytes()[len(MAGIC) : len(MAGIC) + 16] == iv
    with files.opened(sha) as fh:
        for start, length in [(0, 1), (5, 30), (15, 2), (16, 16), (99_999, 70_000), (200_000, 99)]:
            fh.seek(start)
            assert fh.read(length) == data[start : start + length], (start, length)
        assert fh.seek(0, os.SEEK_END) == len(data)
        assert fh.read() == b""
        fh.seek(0)
        assert fh.read() == data


async def test_opened_checks_the_hash_and_the_key_and_reads_clear_files(tmp_path: Path) -> None:
    files = store(tmp_path)
    sha = await files.put_bytes(SECRET)
    with files.opened(sha) as fh:
        assert fh.read() == SECRET
    rotated = FileStore(tmp_path / "files", Keys(b"i" * 32, b"n" * 32, (b"k" * 32,)))
    with rotated.opened(sha) as fh:  # sealed under the previous data key
        assert fh.read() == SECRET
    with pytest.raises(CorruptFile):
        store(tmp_path, b"x" * 32).opened(sha)
    path = files.path(sha)
    sealed = path.read_bytes()
    path.write_bytes(sealed[:-1] + bytes([sealed[-1] ^ 1]))
    with pytest.raises(CorruptFile):
        files.opened(sha)
    clear = hashlib.sha256(b"clear").hexdigest()
    files.path(clear).parent.mkdir(parents=True)
    files.path(clear).write_bytes(b"clear")
    with files.opened(clear) as fh:
        fh.seek(2)
        assert fh.read() == b"ear"
    with pytest.raises(FileNotFoundError):
        files.opened("0" * 64)


async def test_touch_marks_a_stored_file_in_use_and_tells_a_missing_one(tmp_path: Path) -> None:
    files = store(tmp_path)
    sha = await files.put_bytes(b"photo")
    os.utime(files.path(sha), (1_000_000, 1_000_000))
    assert await files.touch(sha)
    assert files.path(sha).stat().st_mtime > 1_000_000
    assert not await files.touch(hashlib.sha256(b"never stored").hexdigest())


def age(path: Path, seconds: float) -> float:
    """Set ``path``'s mtime ``seconds`` back; that time."""
    then = time.time() - seconds
    os.utime(path, (then, then))
    return then


async def test_storing_bytes_already_there_refreshes_their_mtime(tmp_path: Path) -> None:
    # The collector goes by mtime: an old unreferenced file sent again by a request in flight
    # must look new until that request's row is committed.
    files = store(tmp_path)
    sha = await files.put_bytes(SECRET)
    old = age(files.path(sha), 86_400)
    assert await files.put_bytes(SECRET) == sha
    assert files.path(sha).stat().st_mtime > old + 86_000
    old = age(files.path(sha), 86_400)
    assert await files.put_stream(chunks_of(SECRET, 7), max_size=1000) == (sha, len(SECRET))
    assert files.path(sha).stat().st_mtime > old + 86_000
    assert await files.read(sha) == SECRET


async def test_aged_lists_old_files_and_leftover_temporaries_only(tmp_path: Path) -> None:
    files = store(tmp_path)
    old_sha, young_sha = await files.put_bytes(b"old"), await files.put_bytes(b"young")
    age(files.path(old_sha), 7200)
    temporary = files.root / ".incoming-abc"
    temporary.write_bytes(b"half an upload")
    age(temporary, 7200)
    (files.root / ".incoming-new").write_bytes(b"an upload going on")
    stray = files.root / "README"  # not the store's: never listed, never deleted
    stray.write_bytes(b"x")
    age(stray, 7200)
    misplaced = files.root / old_sha  # a store name in the wrong folder
    misplaced.write_bytes(b"x")
    age(misplaced, 7200)
    aged = await files.aged(time.time() - 3600)
    assert aged.old == {old_sha} and aged.young == 1 and aged.temporaries == (temporary,)
    assert young_sha not in aged.old


async def test_collect_spares_a_file_stored_again_after_the_listing(tmp_path: Path) -> None:
    files = store(tmp_path)
    kept, gone = await files.put_bytes(SECRET), await files.put_bytes(b"orphan")
    for sha in (kept, gone):
        age(files.path(sha), 7200)
    cutoff = time.time() - 3600
    assert (await files.aged(cutoff)).old == {kept, gone}
    await files.put_bytes(SECRET)  # a request sends it again while the collector runs
    assert await files.collect(files.path(kept), cutoff, dry_run=True) is None
    assert await files.collect(files.path(kept), cutoff) is None
    assert await files.read(kept) == SECRET
    size = files.path(gone).stat().st_size
    assert await files.collect(files.path(gone), cutoff, dry_run=True) == size
    assert files.path(gone).exists()
    assert await files.collect(files.path(gone), cutoff) == size
    assert not files.path(gone).exists() and await files.collect(files.path(gone), cutoff) == 0
    # Nothing is left aside.
    assert sorted(p.name for p in files.root.rglob("*") if p.is_file()) == [kept]


def test_two_collectors_at_once_never_delete_a_file_stored_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two replicas collect the same old file while a request stores its bytes again. Collector
    # A moved the old file aside and found it old; before A deletes its aside, the request
    # writes the file anew (it found no file to touch) and collector B moves that new file
    # aside. Had both asides the same name, A would delete the new file and B find nothing to
    # put back: gone, while the request's row refers to it.
    files = store(tmp_path)
    digest = hashlib.sha256(SECRET).hexdigest()
    files._write(digest, files._sealed(SECRET))
    age(files.path(digest), 7200)
    cutoff = time.time() - 3600
    real_unlink, real_stat = Path.unlink, Path.stat
    held: list[Path] = []  # A's aside, its deletion held until B has moved its file aside

    def unlink(self: Path, missing_ok: bool = False) -> None:
        if "collected" in self.name and not held:
            held.append(self)
            files._write(digest, files._sealed(SECRET))  # the request stores it again
            assert filestore._collect(files.path(digest), cutoff, False) is None  # B keeps it
            return
        real_unlink(self, missing_ok=missing_ok)

    def stat(self: Path, *, follow_symlinks: bool = True) -> os.stat_result:
        if "collected" in self.name and held and held[0].name != "done":
            # B's check of its aside: A deletes its own aside now, between B's move and check.
            real_unlink(held.pop())
            held.append(Path("done"))
        return real_stat(self, follow_symlinks=follow_symlinks)

    monkeypatch.setattr(Path, "unlink", unlink)
    monkeypatch.setattr(Path, "stat", stat)
    assert filestore._collect(files.path(digest), cutoff, False) == len(MAGIC) + 16 + len(SECRET)
    monkeypatch.undo()
    assert files.path(digest).read_bytes()  # still there, the new copy
    assert files._read(digest) == SECRET
    assert [p.name for p in files.root.rglob("*") if p.is_file()] == [digest]


async def test_a_stream_is_all_on_disk_when_it_is_synced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What fsync makes durable is what the kernel has: Python's buffer must be written first,
    # and the folder synced after the rename (a crash must not undo it).
    synced: list[tuple[str, int]] = []
    real_fsync = os.fsync

    def watching(fd: int) -> None:
        info = os.fstat(fd)
        synced.append(("folder" if stat.S_ISDIR(info.st_mode) else "file", info.st_size))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", watching)
    files = store(tmp_path)
    small = b"Laporan singkat"  # well under the write buffer: all of it would sit there
    sha, size = await files.put_stream(chunks_of(small, 5), max_size=1000)
    assert synced[0] == ("file", len(MAGIC) + 16 + size)
    assert ("folder", files.path(sha).parent.stat().st_size) in synced[1:]
    synced.clear()
    other = await files.put_bytes(b"another one")
    assert other[:2] != sha[:2]  # its two fan-out folders are new
    # The two new folders' entries (in the root, then in the first), the file, the rename.
    assert [kind for kind, _ in synced] == ["folder", "folder", "file", "folder"]
    # Bytes that land in the same folders: they exist, so the rename is the only folder synced.
    same = next(b for i in range(10**6) if hashlib.sha256(b := b"x%d" % i).hexdigest()[:4]
                == other[:4])
    synced.clear()
    await files.put_bytes(same)
    assert [kind for kind, _ in synced] == ["file", "folder"]
