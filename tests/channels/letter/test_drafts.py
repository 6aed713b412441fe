"""Letter drafts and the background reader on both real databases (OCR replaced by a fake
that reports its pages, so leases, progress and failures can be watched step by step)."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from channels.letter.auth import Role, Staff, StaffStore
from channels.letter.drafts import (
    CONFIRM_HOLD,
    MAX_ATTEMPTS,
    Draft,
    DraftStatus,
    DraftStore,
    new_hold,
)
from channels.letter.metrics import LetterMetrics
from channels.letter.parse import Scan
from channels.letter.reading import LetterReader
from gateway.crypto import Keys, load_keys
from gateway.filestore import FileStore
from gateway.reseal import reseal
from gateway.settings import Settings
from gateway.storage.database import create_engine
from gateway.storage.schema import letter_drafts
from tests.channels.letter.conftest import add_staff
from tests.support import FixedClock

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class FakePage:
    number: int
    text: str
    confidence: float
    source: str
    image_png: bytes


@dataclass(frozen=True)
class FakeField:
    value: str | None
    confidence: float
    note: str | None = None


@dataclass(frozen=True)
class FakeFields:
    sender_name: FakeField
    nik: FakeField
    address: FakeField
    phone: FakeField
    letter_date: FakeField
    letter_place: FakeField
    addressee: FakeField
    subject: FakeField
    body: FakeField


NIK = "3209014101900001"


def fake_extract(pages: list[FakePage]) -> FakeFields:
    text = " ".join(p.text for p in pages)
    empty = FakeField(None, 0.0)
    return FakeFields(
        FakeField("Siti Aminah", 0.93), FakeField("3209014101900001", 0.97, "Sumber, Cirebon"),
        empty, FakeField("081234567890", 0.55), empty, empty, empty,
        FakeField("Jalan rusak", 0.8), FakeField(text, 0.7),
    )


class FakeOcr:
    """Pages come one by one when the test releases them."""

    def __init__(self, pages: int) -> None:
        self.pages = pages
        self.release = asyncio.Semaphore(0)
        self.calls = 0
        self.fail: Exception | None = None

    async def read_document(
        self, data: bytes, content_type: str, on_page: Callable[[int, int], None] | None = None
    ) -> list[FakePage]:
        self.calls += 1
        if self.fail is not None:
            raise self.fail
        out = []
        for i in range(1, self.pages + 1):
            await self.release.acquire()
            out.append(FakePage(i, f"halaman {i} dari {content_type}", 80.0 + i, "ocr",
                                b"\x89PNG\r\n\x1a\n" + data[:4] + bytes([i])))
            if on_page is not None:
                on_page(i, self.pages)
        return out


@pytest.fixture
async def parts(
    letter_settings: Settings, tmp_path: Path
) -> AsyncIterator[tuple[AsyncEngine, DraftStore, FileStore, Staff]]:
    engine = create_engine(letter_settings.database)
    staff = await add_staff(StaffStore(engine, letter_settings.letter), "budi", Role.CLERK)
    keys = load_keys(letter_settings)
    yield engine, DraftStore(engine, keys), FileStore(tmp_path / "files", keys), staff
    await engine.dispose()


async def scan_of(files: FileStore, data: bytes, name: str) -> Scan:
    return Scan(await files.put_bytes(data), "image/tiff", len(data), name)


def tiff(pages: int) -> bytes:
    import io

    from PIL import Image

    frames = [Image.new("L", (40, 60), 255 - 20 * i) for i in range(pages)]
    out = io.BytesIO()
    frames[0].save(out, "TIFF", save_all=True, append_images=frames[1:])
    return out.getvalue()


async def wait_for(check: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():  # type: ignore[misc]
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_reader_reports_each_page_then_stores_pages_and_fields(
    parts: tuple[AsyncEngine, DraftStore, FileStore, Staff], letter_settings: Settings
) -> None:
    _engine, drafts, files, staff = parts
    data = tiff(3)
    batch, _ = await drafts.create_batch([[await scan_of(files, data, "surat.tif")]], staff.id)
    [draft] = await drafts.batch(batch)
    assert draft.status is DraftStatus.READING and draft.pages_total is None
    ocr = FakeOcr(3)
    reader = LetterReader(drafts, files, ocr, letter_settings.letter, fake_extract)
    task = asyncio.create_task(reader.run_once())

    async def total_known() -> bool:
        return (await drafts.batch(batch))[0].pages_total == 3

    await wait_for(total_known)
    for page in (1, 2):
        ocr.release.release()

        async def done(page: int = page) -> bool:
            return (await drafts.batch(batch))[0].pages_done == page

        await wait_for(done)
        assert (await drafts.batch(batch))[0].status is DraftStatus.READING
    ocr.release.release()
    assert await task
    [ready] = await drafts.batch(batch)
    assert ready.status is DraftStatus.READY and ready.pages_done == ready.pages_total == 3
    assert [p.number for p in ready.pages] == [1, 2, 3]
    assert [p.confidence for p in ready.pages] == [81.0, 82.0, 83.0]
    assert await files.read(ready.pages[1].image_sha256) == b"\x89PNG\r\n\x1a\n" + data[:4] + b"\x02"
    assert ready.fields["nik"].value == "3209014101900001"
    assert ready.fields["nik"].note == "Sumber, Cirebon"
    assert ready.fields["phone"].confidence == 0.55
    assert ready.values["sender_name"] == "Siti Aminah" and ready.values["address"] == ""
    assert await reader.run_once() is False  # nothing left


async def read_letter(
    parts: tuple[AsyncEngine, DraftStore, FileStore, Staff], letter_settings: Settings
) -> Draft:
    """One single-page letter, uploaded and read (ready for review); the clerk's scanner named
    the file after the citizen."""
    _engine, drafts, files, staff = parts
    scan = await scan_of(files, tiff(1), f"KTP Siti Aminah {NIK}.tif")
    batch, _ = await drafts.create_batch([[scan]], staff.id)
    ocr = FakeOcr(1)
    ocr.release.release()
    await LetterReader(drafts, files, ocr, letter_settings.letter, fake_extract).run_once()
    [draft] = await drafts.batch(batch)
    return draft


async def test_what_a_letter_says_is_sealed_at_rest_and_old_drafts_still_read(
    parts: tuple[AsyncEngine, DraftStore, FileStore, Staff], letter_settings: Settings
) -> None:
    engine, drafts, files, staff = parts
    draft = await read_letter(parts, letter_settings)
    assert await drafts.save(draft.id, staff.id, {"sender_name": "Siti Aminah", "nik": NIK})
    async with engine.connect() as conn:
        row = (await conn.execute(select(letter_drafts))).one()
    stored = json.dumps([row.files, row.pages, row.fields, row.reviewed])
    for private in (NIK, "Siti Aminah", "Sumber, Cirebon"):
        assert private not in stored
    ready = await drafts.get(draft.id)
    assert ready is not None and ready.fields["nik"].value == NIK
    assert [f.filename for f in ready.files] == [f"KTP Siti Aminah {NIK}.tif"]
    assert ready.values == {"sender_name": "Siti Aminah", "nik": NIK}
    # A draft stored before sealing (plain JSON) reads as it is, and is sealed when next saved.
    async with engine.begin() as conn:
        await conn.execute(
            update(letter_drafts).values(reviewed={"subject": "Jalan berlubang"}, fields=None)
        )
    old = await drafts.get(draft.id)
    assert old is not None and old.values == {"subject": "Jalan berlubang"} and old.fields == {}
    assert await drafts.save(draft.id, staff.id, {"subject": "Jalan berlubang", "nik": NIK})
    async with engine.connect() as conn:
        assert NIK not in json.dumps((await conn.execute(select(letter_drafts.c.reviewed))).scalar())


async def test_one_letter_of_several_files_numbers_its_pages_through(
    parts: tuple[AsyncEngine, DraftStore, FileStore, Staff], letter_settings: Settings
) -> None:
    _engine, drafts, files, staff = parts
    scans = [await scan_of(files, tiff(2), "hal-1.tif"), await scan_of(files, tiff(2), "hal-2.tif")]
    batch, _ = await drafts.create_batch([scans], staff.id)
    ocr = FakeOcr(2)
    for _ in range(4):
        ocr.release.release()
    reader = LetterReader(drafts, files, ocr, letter_settings.letter, fake_extract)
    assert await reader.run_once()
    [ready] = await drafts.batch(batch)
    assert [(p.number, p.file_index) for p in ready.pages] == [(1, 0), (2, 0), (3, 1), (4, 1)]
    assert ready.label == "hal-1.tif (+1)"


class Alive:
    """How many of the byte strings it hands out are alive now, and the most alive at once."""

    def __init__(self) -> None:
        self.now = 0
        self.peak = 0

    def track(self, data: bytes) -> bytes:
        held = _Held(data)
        held.alive = self
        self.now += 1
        self.peak = max(self.peak, self.now)
        return held


class _Held(bytes):
    alive: Alive

    def __del__(self) -> None:
        self.alive.now -= 1


class WatchedFiles(FileStore):
    """The file store, counting the files' bytes that its readers still hold."""

    def __init__(self, root: Path, keys: Keys, alive: Alive) -> None:
        super().__init__(root, keys)
        self.alive = alive

    async def read(self, sha256: str) -> bytes:
        # A worker thread may let go of the previous file's bytes a moment after handing back
        # its result: wait a little for that, not for the reader, which holds them for good.
        for _ in range(20):
            if self.alive.now == 0:
                break
            await asyncio.sleep(0.005)
        return self.alive.track(await super().read(sha256))


class WatchedOcr(FakeOcr):
    """The fake OCR, counting the page images still held after it handed them over."""

    def __init__(self, pages: int, alive: Alive) -> None:
        super().__init__(pages)
        self.alive = alive

    async def read_document(
        self, data: bytes, content_type: str, on_page: Callable[[int, int], None] | None = None
    ) -> list[FakePage]:
        found = await super().read_document(data, content_type, on_page)
        return [replace(page, image_png=self.alive.track(page.image_png)) for page in found]


async def test_a_letter_of_several_files_is_read_one_file_at_a_time(
    parts: tuple[AsyncEngine, DraftStore, FileStore, Staff], letter_settings: Settings
) -> None:
    """Files of up to 25 MB, up to 50 of them in one letter: a reader holds the bytes of one
    file (and the images of its pages) at a time, not of the whole letter."""
    _engine, drafts, files, staff = parts
    datas = [tiff(2) + bytes([i]) for i in range(3)]
    scans = [await scan_of(files, data, f"hal-{i}.tif") for i, data in enumerate(datas)]
    batch, _ = await drafts.create_batch([scans], staff.id)
    held_files, held_pages = Alive(), Alive()
    ocr = WatchedOcr(2, held_pages)
    for _ in range(6):
        ocr.release.release()
    seen: list[list[str]] = []

    def extract(pages: list[FakePage]) -> FakeFields:
        seen.append([p.text for p in pages])
        return fake_extract(pages)

    watched = WatchedFiles(files.root, load_keys(letter_settings), held_files)
    reader = LetterReader(drafts, watched, ocr, letter_settings.letter, extract)
    assert await reader.run_once()
    assert held_files.peak == 1, f"{held_files.peak} files' bytes held at once"
    assert held_pages.peak == 2, f"{held_pages.peak} page images held at once"
    # Read as before: the pages numbered through, each image stored, the fields of them all.
    [ready] = await drafts.batch(batch)
    assert ready.status is DraftStatus.READY and ready.pages_done == ready.pages_total == 6
    assert [(p.number, p.file_index) for p in ready.pages] == [
        (1, 0), (2, 0), (3, 1), (4, 1), (5, 2), (6, 2)
    ]
    for page in ready.pages:
        image = await files.read(page.image_sha256)
        assert image == b"\x89PNG\r\n\x1a\n" + datas[page.file_index][:4] + bytes(
            [2 - page.number % 2]
        )
    assert seen == [[f"halaman {i} dari image/tiff" for i in (1, 2)] * 3]


async def test_a_lease_keeps_other_readers_off_until_it_runs_out(
    parts: tuple[AsyncEngine, DraftStore, FileStore, Staff], letter_settings: Settings
) -> None:
    engine, _drafts, files, staff = parts
    clock = FixedClock(datetime(2026, 12, 4, 8, 0, tzinfo=UTC))
    drafts = DraftStore(engine, load_keys(letter_settings), clock)
    await drafts.create_batch([[await scan_of(files, tiff(1), "a.tif")]], staff.id)
    first = await drafts.claim("reader-a", lease=30)
    assert first is not None and first.attempts == 1
    assert await drafts.claim("reader-b", lease=60) is None
    clock.now += timedelta(seconds=29)  # reader-a died, but its lease still holds
    assert await drafts.claim("reader-b", lease=60) is None
    clock.now += timedelta(seconds=2)  # now it has run out
    second = await drafts.claim("reader-b", lease=60)
    assert second is not None and second.id == first.id and second.attempts == 2
    # reader-a comes back late: its writes no longer count.
    assert not await drafts.progress(first.id, "reader-a", 1, 1, 60)
    assert await drafts.progress(first.id, "reader-b", 1, 1, 60)


async def test_concurrent_claims_give_each_letter_to_one_reader(
    parts: tuple[AsyncEngine, DraftStore, FileStore, Staff], letter_settings: Settings
) -> None:
    _engine, drafts, files, staff = parts
    letters = [[await scan_of(files, tiff(1) + bytes([i]), f"{i}.tif")] for i in range(6)]
    await drafts.create_batch(letters, staff.id)
    keys = load_keys(letter_settings)
    others = [DraftStore(create_engine(letter_settings.database), keys) for _ in range(3)]
    try:
        claimed = await asyncio.gather(
            *(store.claim(f"r{i % 3}", 60) for i, store in enumerate(others * 3))
        )
    finally:
        for store in others:
            await store._engine.dispose()
    ids = [d.id for d in claimed if d is not None]
    assert len(ids) == len(set(ids)) == 6


async def test_unreadable_file_and_crashing_ocr_fail_the_letter_visibly(
    parts: tuple[AsyncEngine, DraftStore, FileStore, Staff], letter_settings: Settings
) -> None:
    _engine, drafts, files, staff = parts
    broken = Scan(await files.put_bytes(b"%PDF-1.4 not really"), "application/pdf", 19, "rusak.pdf")
    batch, _ = await drafts.create_batch([[broken], [await scan_of(files, tiff(1), "ok.tif")]], staff.id)
    ocr = FakeOcr(1)
    ocr.fail = RuntimeError("tesseract crashed")
    metrics = LetterMetrics(CollectorRegistry())
    reader = LetterReader(drafts, files, ocr, letter_settings.letter, fake_extract, metrics)
    assert await reader.run_once() and await reader.run_once()
    bad, crashed = await drafts.batch(batch)
    assert bad.status is DraftStatus.FAILED and "tidak dapat dibaca" in (bad.error or "")
    # The error is stored in the clear: no file name in it (the desk shows them beside it).
    assert "rusak.pdf" not in (bad.error or "") and bad.label.startswith("rusak.pdf")
    assert crashed.status is DraftStatus.FAILED and "RuntimeError" in (crashed.error or "")
    # The clerk asks for another reading: it works this time.
    assert await drafts.read_again(crashed.id, staff.id)
    ocr.fail = None
    ocr.release.release()
    assert await reader.run_once()
    assert (await drafts.get(crashed.id)).status is DraftStatus.READY  # type: ignore[union-attr]
    # What the operator sees: one of each outcome, and the time of the one letter read.
    for outcome in ("read", "failed", "unreadable"):
        assert metrics.reads.labels(outcome)._value.get() == 1, outcome
    assert metrics.read_seconds._sum.get() > 0


async def test_the_backlog_counts_letters_by_status_and_the_oldest_waiting(
    parts: tuple[AsyncEngine, DraftStore, FileStore, Staff], letter_settings: Settings
) -> None:
    engine, _drafts, files, staff = parts
    clock = FixedClock(datetime(2026, 12, 4, 8, 0, tzinfo=UTC))
    drafts = DraftStore(engine, load_keys(letter_settings), clock)
    metrics = LetterMetrics(CollectorRegistry())
    assert await drafts.backlog() == ({}, None)
    await drafts.create_batch([[await scan_of(files, tiff(1), "a.tif")]], staff.id)
    clock.now += timedelta(minutes=10)
    await drafts.create_batch([[await scan_of(files, tiff(1), "b.tif")]], staff.id)
    reader = LetterReader(drafts, files, FakeOcr(1), letter_settings.letter, fake_extract)
    reader._ocr.release.release()  # type: ignore[attr-defined]
    assert await reader.run_once()  # the older letter is read first
    clock.now += timedelta(minutes=30)
    counts, waiting_since = await drafts.backlog()
    assert counts == {"ready": 1, "reading": 1}
    assert waiting_since == datetime(2026, 12, 4, 8, 10, tzinfo=UTC)
    metrics.backlog(counts, waiting_since, clock())
    assert metrics.oldest_waiting._value.get() == 30 * 60
    assert metrics.drafts.labels("failed")._value.get() == 0
    assert metrics.drafts.labels("ready")._value.get() == 1


async def test_a_letter_that_keeps_crashing_the_reader_is_given_up(
    parts: tuple[AsyncEngine, DraftStore, FileStore, Staff], letter_settings: Settings
) -> None:
    engine, _drafts, files, staff = parts
    clock = FixedClock(datetime(2026, 12, 4, 8, 0, tzinfo=UTC))
    drafts = DraftStore(engine, load_keys(letter_settings), clock)
    batch, _ = await drafts.create_batch([[await scan_of(files, tiff(1), "a.tif")]], staff.id)
    for i in range(MAX_ATTEMPTS):
        assert await drafts.claim(f"dies-{i}", lease=60) is not None
        clock.now += timedelta(seconds=61)  # the reader died with the letter: its lease runs out
    reader = LetterReader(drafts, files, FakeOcr(1), letter_settings.letter, fake_extract)
    assert await reader.run_once()
    [draft] = await drafts.batch(batch)
    assert draft.status is DraftStatus.FAILED and "berulang" in (draft.error or "")


async def test_saving_and_confirming(
    parts: tuple[AsyncEngine, DraftStore, FileStore, Staff], letter_settings: Settings
) -> None:
    _engine, drafts, files, staff = parts
    batch, _ = await drafts.create_batch([[await scan_of(files, tiff(1), "a.tif")]], staff.id)
    [draft] = await drafts.batch(batch)
    assert not await drafts.save(draft.id, staff.id, {"body": "x"})  # not read yet
    ocr = FakeOcr(1)
    ocr.release.release()
    await LetterReader(drafts, files, ocr, letter_settings.letter, fake_extract).run_once()
    assert await drafts.save(draft.id, staff.id, {"subject": "Jalan berlubang"})
    assert (await drafts.get(draft.id)).values == {"subject": "Jalan berlubang"}  # type: ignore[union-attr]
    await drafts.confirmed(draft.id, staff.id, "G69P5CAWW", "accepted")
    done = await drafts.get(draft.id)
    assert done is not None and done.status is DraftStatus.CONFIRMED
    assert done.tracking_id == "G69P5CAWW" and done.confirmed_by_name == "budi"
    assert not await drafts.save(draft.id, staff.id, {"subject": "later"})
    mine = await drafts.desk(staff.id)
    assert [d.id for d in [*mine.waiting, *mine.sent]] == [draft.id]
    theirs = await drafts.desk("someone-else")
    assert [*theirs.waiting, *theirs.sent] == []


async def test_ocr_that_is_not_installed_says_so_on_the_letter(
    parts: tuple[AsyncEngine, DraftStore, FileStore, Staff], letter_settings: Settings
) -> None:
    from channels.letter.ocr import OcrUnavailable

    _engine, drafts, files, staff = parts
    batch, _ = await drafts.create_batch([[await scan_of(files, tiff(1), "a.tif")]], staff.id)
    ocr = FakeOcr(1)
    ocr.fail = OcrUnavailable("tesseract is not installed (Debian: tesseract-ocr)")
    assert await LetterReader(drafts, files, ocr, letter_settings.letter, fake_extract).run_once()
    [draft] = await drafts.batch(batch)
    assert draft.status is DraftStatus.FAILED
    # Each half in its own language: Tesseract's English words in the English one only.
    assert "OCR gagal: Tesseract atau data bahasanya belum terpasang" in (draft.error or "")
    assert "OCR failed: tesseract is not installed" in (draft.error or "")


async def test_reseal_moves_a_draft_to_the_current_key(
    parts: tuple[AsyncEngine, DraftStore, FileStore, Staff], letter_settings: Settings
) -> None:
    engine, drafts, files, staff = parts
    draft = await read_letter(parts, letter_settings)
    assert await drafts.save(draft.id, staff.id, {"nik": NIK})
    old = load_keys(letter_settings)
    new = Keys(old.identity_key, os.urandom(32), (old.data_key,))
    report = await reseal(engine, new, FileStore(files.root, new))
    assert report.resealed["letter_drafts"] == 1 and report.resealed["files"] >= 2
    alone = Keys(old.identity_key, new.data_key)
    read = await DraftStore(engine, alone).get(draft.id)
    assert read is not None and read.values == {"nik": NIK} and read.fields["nik"].value == NIK
    assert await FileStore(files.root, alone).read(read.pages[0].image_sha256)


async def test_uploads_take_turns_so_a_letter_at_the_counter_does_not_wait_for_a_whole_box(
    parts: tuple[AsyncEngine, DraftStore, FileStore, Staff], letter_settings: Settings
) -> None:
    engine, _drafts, files, staff = parts
    clock = FixedClock(datetime(2026, 12, 4, 8, 0, tzinfo=UTC))
    drafts = DraftStore(engine, load_keys(letter_settings), clock)
    # The complaint box: six letters in one upload; both readers take one.
    box = [[await scan_of(files, tiff(1) + bytes([i]), f"kotak-{i}.tif")] for i in range(6)]
    box_batch, _ = await drafts.create_batch(box, staff.id)
    box_ids = [d.id for d in await drafts.batch(box_batch)]
    first, second = await drafts.claim("r1", 60), await drafts.claim("r2", 60)
    assert [first.id, second.id] == box_ids[:2]  # type: ignore[union-attr]
    # A citizen at the counter hands in a letter a minute later: it is read next, not after
    # the four letters of the box still waiting.
    clock.now += timedelta(minutes=1)
    counter_batch, _ = await drafts.create_batch(
        [[await scan_of(files, tiff(2), "loket.tif")]], staff.id
    )
    [counter] = await drafts.batch(counter_batch)
    await drafts.fail(first.id, "r1", "selesai")  # type: ignore[union-attr]
    assert (await drafts.claim("r1", 60)).id == counter.id  # type: ignore[union-attr]
    # Then the box goes on in its own order.
    rest = [await drafts.claim(f"r{i}", 60) for i in range(3, 8)]
    assert [d.id if d else None for d in rest] == [*box_ids[2:], None]


async def test_a_save_over_a_changed_draft_writes_nothing_and_confirmed_keeps_what_was_sent(
    parts: tuple[AsyncEngine, DraftStore, FileStore, Staff], letter_settings: Settings
) -> None:
    _engine, drafts, files, staff = parts
    batch, _ = await drafts.create_batch([[await scan_of(files, tiff(1), "a.tif")]], staff.id)
    ocr = FakeOcr(1)
    ocr.release.release()
    await LetterReader(drafts, files, ocr, letter_settings.letter, fake_extract).run_once()
    [read] = await drafts.batch(batch)
    assert await drafts.save(read.id, staff.id, {"subject": "A"}, over=read.version)
    # A second save made from the same (now stale) reading of the row is not written.
    assert not await drafts.save(read.id, staff.id, {"subject": "B"}, over=read.version)
    now = await drafts.get(read.id)
    assert now is not None and now.values == {"subject": "A"} and now.updated_by_name == "budi"
    assert now.version == read.version + 1
    assert await drafts.save(read.id, staff.id, {"subject": "C"}, over=now.version)
    # The confirmation records the values that were sent; what was saved meanwhile is kept
    # beside them, not written over.
    late = await drafts.confirmed(
        read.id, staff.id, "G69P5CAWW", "accepted", values={"subject": "A"}
    )
    done = await drafts.get(read.id)
    assert done is not None and done.values == {"subject": "A"}
    assert late == done.unsent == {"subject": "C"} and done.unsent_by_name == "budi"


async def test_a_hold_named_failed_lets_a_save_land_and_no_other_hold_does(
    parts: tuple[AsyncEngine, DraftStore, FileStore, Staff], letter_settings: Settings
) -> None:
    _engine, drafts, _files, staff = parts
    draft = await read_letter(parts, letter_settings)
    now = datetime.now(UTC)
    # budi's confirmation holds the letter; the intake could not take it and the database was
    # away for its release: the hold is still there.
    failed = new_hold("budi")
    assert await drafts.save(draft.id, staff.id, {"subject": "A"}, hold=failed)
    held = await drafts.get(draft.id)
    assert held is not None and held.held(now) and held.held_by == "budi"
    assert held.hold == failed and not held.held(now, failed)
    # A save that does not name it, or names another hold, waits for it as before.
    assert not await drafts.save(draft.id, staff.id, {"subject": "B"})
    assert not await drafts.save(draft.id, staff.id, {"subject": "B"}, failed=new_hold("budi"))
    # The one that names it lands, holding the letter for its own confirmation ...
    again = new_hold("budi")
    assert await drafts.save(draft.id, staff.id, {"subject": "B"}, hold=again, failed=failed)
    retry = await drafts.get(draft.id)
    assert retry is not None and retry.hold == again and retry.held(now, failed)
    # ... which the failed one's name does not end.
    assert not await drafts.save(draft.id, staff.id, {"subject": "C"}, failed=failed)
    # A plain save over a failed hold ends it: nobody else waits for it to run out.
    assert await drafts.save(draft.id, staff.id, {"subject": "C"}, failed=again)
    free = await drafts.get(draft.id)
    assert free is not None and free.hold is None and not free.held(now)
    assert free.values == {"subject": "C"}
    assert await drafts.save(draft.id, staff.id, {"subject": "D"}, over=free.version)


def test_a_long_username_still_owns_its_hold() -> None:
    from channels.letter.drafts import failed_hold_of, held_by_own, new_hold

    name = "petugas-" + "a" * 56  # 64 characters: the hold is cut to 64
    hold = new_hold(name)
    assert len(hold) == 64 and held_by_own(hold, name) and failed_hold_of(hold, name) == hold
    assert not held_by_own(hold, "ani") and failed_hold_of(hold, "ani") is None
    assert failed_hold_of("confirm:" + name, name) is None  # an earlier release's: guessable


async def test_a_save_after_the_hold_ran_out_is_kept_beside_what_the_confirmation_sent(
    parts: tuple[AsyncEngine, DraftStore, FileStore, Staff], letter_settings: Settings
) -> None:
    # budi's confirmation saves his values under its hold, then waits for the intake port
    # longer than the hold lasts (a slow database). citra, drawing the letter after the hold ran
    # out, saves a correction: it lands. Then the intake commits budi's values and the
    # confirmation is recorded. Before, that record wrote budi's values over citra's and kept
    # nothing of hers, though her save had been answered "saved".
    engine, _drafts, _files, budi = parts
    draft = await read_letter(parts, letter_settings)
    clock = FixedClock(datetime.now(UTC))
    drafts = DraftStore(engine, load_keys(letter_settings), clock)
    citra = await add_staff(StaffStore(engine, letter_settings.letter), "citra", Role.CLERK)
    hold = new_hold("budi")
    assert await drafts.save(draft.id, budi.id, {"subject": "A"}, hold=hold)
    clock.now += CONFIRM_HOLD + timedelta(seconds=1)
    seen = await drafts.get(draft.id)
    assert seen is not None and not seen.held(clock.now)
    assert await drafts.save(draft.id, citra.id, {"subject": "B"}, over=seen.version)
    late = await drafts.confirmed(
        draft.id, budi.id, "G69P5CAWW", "accepted", values={"subject": "A"}
    )
    done = await drafts.get(draft.id)
    assert done is not None and done.status is DraftStatus.CONFIRMED
    assert done.values == {"subject": "A"}  # what was sent, as the receipt must say
    # citra's save is not lost unawares: kept, with who saved it and when.
    assert late == {"subject": "B"}
    assert getattr(done, "unsent", None) == {"subject": "B"}
    assert getattr(done, "unsent_by_name", None) == "citra"
    assert getattr(done, "unsent_at", None) == clock.now
    assert not await drafts.save(draft.id, citra.id, {"subject": "C"})  # confirmed: no more


async def test_a_save_over_a_failed_hold_is_kept_when_that_confirmation_went_through_after_all(
    parts: tuple[AsyncEngine, DraftStore, FileStore, Staff], letter_settings: Settings
) -> None:
    # A double click: the first request's answer named its hold failed (the intake was away),
    # budi corrected the subject from that page and saved over it, while the second request,
    # confirming the same first values under that hold, got them committed.
    _engine, drafts, _files, budi = parts
    draft = await read_letter(parts, letter_settings)
    hold = new_hold("budi")
    assert await drafts.save(draft.id, budi.id, {"subject": "A"}, hold=hold)
    assert await drafts.save(draft.id, budi.id, {"subject": "A2"}, failed=hold)
    await drafts.confirmed(draft.id, budi.id, "G69P5CAWW", "accepted", values={"subject": "A"})
    done = await drafts.get(draft.id)
    assert done is not None and done.values == {"subject": "A"}
    assert getattr(done, "unsent", None) == {"subject": "A2"}
    assert getattr(done, "unsent_by_name", None) == "budi"


async def test_a_save_between_the_confirmations_read_and_write_is_kept_too(
    parts: tuple[AsyncEngine, DraftStore, FileStore, Staff], letter_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The record of the confirmation reads the draft, then writes over the version it read: a
    # save landing in between (driven here right after that read) is not written over.
    engine, _drafts, _files, budi = parts
    draft = await read_letter(parts, letter_settings)
    clock = FixedClock(datetime.now(UTC))  # every write in the same clock tick
    drafts = DraftStore(engine, load_keys(letter_settings), clock)
    citra = await add_staff(StaffStore(engine, letter_settings.letter), "citra", Role.CLERK)
    assert await drafts.save(draft.id, budi.id, {"subject": "A"}, hold=new_hold("budi"))
    clock.now += CONFIRM_HOLD + timedelta(seconds=1)
    read = DraftStore._confirm_read
    reads = 0

    async def save_after_the_read(self: DraftStore, draft_id: str) -> Any:
        nonlocal reads
        row = await read(self, draft_id)
        reads += 1
        if reads == 1:
            assert await drafts.save(draft_id, citra.id, {"subject": "B"})
        return row

    monkeypatch.setattr(DraftStore, "_confirm_read", save_after_the_read)
    late = await drafts.confirmed(
        draft.id, budi.id, "G69P5CAWW", "accepted", values={"subject": "A"}
    )
    assert reads == 2  # the write over the first reading changed nothing: read again
    done = await drafts.get(draft.id)
    assert done is not None and done.values == {"subject": "A"}
    assert late == done.unsent == {"subject": "B"} and done.unsent_by_name == "citra"


async def test_two_saves_in_the_same_clock_tick_are_still_told_apart(
    parts: tuple[AsyncEngine, DraftStore, FileStore, Staff], letter_settings: Settings
) -> None:
    # The compare-and-set is on the row's version, not on updated_at (two replicas' clocks, or
    # two saves within one tick, can give the same time).
    engine, _drafts, _files, budi = parts
    draft = await read_letter(parts, letter_settings)
    drafts = DraftStore(engine, load_keys(letter_settings), FixedClock(datetime.now(UTC)))
    assert await drafts.save(draft.id, budi.id, {"subject": "A"}, over=draft.version)
    assert not await drafts.save(draft.id, budi.id, {"subject": "B"}, over=draft.version)
    now = await drafts.get(draft.id)
    assert now is not None and now.values == {"subject": "A"}
