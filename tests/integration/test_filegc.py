"""The file store's garbage collection on both real databases: complaints with attachments,
quarantined messages holding attachments, a letter read at the front desk, a long message and
refused submissions go through the real application; every file is then aged past the grace, and
exactly the files no row refers to are deleted. Everything referred to still opens, and the
quarantined messages still replay with their attachments."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient
from pydantic import SecretStr

from channels.letter.auth import Role, StaffStore
from channels.letter.drafts import DraftStore
from channels.web.form import CONTENT_TYPE, attachment_ref, encode_submission
from channels.web.parse import ATTACHMENT_REFS
from gateway import bootstrap, filegc
from gateway.crypto import load_keys
from gateway.domain import Attachment, Channel, ComplaintDraft, RawInbound, ReceiptStatus
from gateway.errors import ParseError
from gateway.filegc import MIN_GRACE, collect
from gateway.filestore import FileStore
from gateway.intake import Parser
from gateway.settings import Settings
from tests.channels.letter.conftest import (
    add_staff,
    csrf_token,
    empty_letter_tables,
    letter_overrides,
    login,
)
from tests.channels.letter.test_routes import small_scan, upload, wait_until_read
from tests.channels.web.test_web_http import FORM
from tests.support import free_port, opened_complaints, pdf, png, with_section

pytestmark = pytest.mark.integration

Client = Callable[..., Awaitable[TestClient[Any, Any]]]
GRACE = timedelta(hours=24)


@pytest.fixture
async def gw(settings: Settings) -> AsyncIterator[bootstrap.Gateway]:
    await empty_letter_tables(settings)
    keyed = with_section(settings, "web", csrf_key=SecretStr("test-csrf-key"))
    gateway = bootstrap.build(letter_overrides(keyed))
    yield gateway
    await gateway.close()
    await empty_letter_tables(settings)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def stored(files: FileStore) -> set[str]:
    """The names of the files in the store (temporaries aside)."""
    return {p.name for p in files.root.rglob("*") if p.is_file() and not p.name.startswith(".")}


def age_everything(files: FileStore) -> None:
    """Every file of the store (temporaries too) last written a day and an hour ago."""
    then = time.time() - (GRACE + timedelta(hours=1)).total_seconds()
    for path in files.root.rglob("*"):
        if path.is_file():
            os.utime(path, (then, then))


def buggy(_raw: RawInbound) -> ComplaintDraft:
    raise ParseError("a parser bug of the time", stage="decode")


async def quarantine(gw: bootstrap.Gateway, raw: RawInbound, parser: str) -> None:
    """``raw`` through the intake with a failing parser registered under the real one's name
    (so that replay, with the real parsers, reads it again)."""
    receipt = await gw.intake.accept(raw, Parser(parser, buggy))
    assert receipt.status is ReceiptStatus.QUARANTINED


async def quarantined_form(gw: bootstrap.Gateway, photo: bytes, **fields: str) -> bytes:
    """A form submission holding ``photo`` (stored as the route stores it), quarantined; its
    body (the form's attachment references are URL-encoded in it)."""
    sha = await gw.files.put_bytes(photo)
    attachment = Attachment(sha, "image/png", len(photo), "foto.png")
    body = encode_submission(list({**FORM, **fields}.items()), [attachment])
    raw = RawInbound(
        Channel.WEB, body, datetime.now(UTC), f"form:{sha[:16]}", CONTENT_TYPE, {"remote": "x"}
    )
    await quarantine(gw, raw, "web.form")
    return body


async def quarantined_api(gw: bootstrap.Gateway, pdf: bytes) -> None:
    """An API multipart submission holding ``pdf``, quarantined: the attachment's reference is
    in the transport metadata, as the route writes it."""
    sha = await gw.files.put_bytes(pdf)
    ref = json.loads(attachment_ref(Attachment(sha, "application/pdf", len(pdf), "surat.pdf")))
    body = json.dumps({"title": "Surat", "body": "Permohonan informasi anggaran desa"}).encode()
    meta = {"remote": "x", ATTACHMENT_REFS: json.dumps([ref], separators=(",", ":"))}
    raw = RawInbound(Channel.WEB, body, datetime.now(UTC), "idem:q-api", "application/json", meta)
    await quarantine(gw, raw, "web.json")


async def read_letter(client: TestClient[Any, Any], gw: bootstrap.Gateway) -> set[str]:
    """A one-page letter uploaded at the front desk and read (real OCR): its scan and page
    image hashes."""
    await add_staff(StaffStore(gw.engine, gw.settings.letter), "budi", Role.CLERK)
    token = await login(client, "budi")
    scan = small_scan("PNG", "Surat pengaduan")
    batch_url = await upload(client, token, [("surat.png", scan)])
    [letter] = (await wait_until_read(client, batch_url))["letters"]
    assert letter["status"] == "ready"
    [draft] = await DraftStore(gw.engine, gw.keys).batch(batch_url.rsplit("/", 1)[1])
    images = {page.image_sha256 for page in draft.pages}
    assert images and sha(scan) not in images
    return {sha(scan), *images}


async def refused_form(client: TestClient[Any, Any], photo: bytes) -> None:
    """The citizen form with an invalid NIK: refused after its photo was stored."""
    token = csrf_token(await (await client.get("/")).text())
    fd = FormData()
    fd.add_field("csrf", token)
    for key, value in {**FORM, "nik": "3209014101900000"}.items():
        fd.add_field(key, value)
    fd.add_field("lampiran", photo, filename="jalan.png", content_type="application/octet-stream")
    resp = await client.post("/", data=fd)
    assert resp.status == 422, await resp.text()


async def test_only_the_files_no_row_refers_to_are_deleted(
    gw: bootstrap.Gateway, aiohttp_client: Client
) -> None:
    client = await aiohttp_client(bootstrap.build_app(gw))
    files = gw.files

    # An accepted API complaint with an attachment: its complaint row refers to it.
    document = pdf(f"APBD {os.urandom(8).hex()}")
    fd = FormData()
    fd.add_field("complaint", json.dumps({"body": "Permohonan informasi APBD kabupaten"}),
                 content_type="application/json")
    fd.add_field("attachments", document, filename="apbd.pdf", content_type="application/pdf")
    resp = await client.post("/api/v1/complaints", data=fd)
    assert resp.status == 202, await resp.text()
    # A long message: its raw body lives in the file store (the tests' inline limit is 1 KB).
    long_body = json.dumps({"body": "Lampu jalan mati sejak minggu lalu. " * 40}).encode()
    resp = await client.post("/api/v1/complaints", data=long_body,
                             headers={"Content-Type": "application/json"})
    assert resp.status == 202, await resp.text()
    # Quarantined messages holding attachments: a form with a short body (sealed in its row),
    # a form long enough for its body to live in the file store, and an API submission.
    photo, long_photo = png(os.urandom(8).hex()), png(os.urandom(8).hex())
    await quarantined_form(gw, photo)
    long_form = await quarantined_form(
        gw, long_photo, isi="Saluran air tersumbat di depan sekolah. " * 40,
        nik="3201014101900001", hp="081398765432", email="dewi@contoh.id", nama="Dewi",
    )
    api_pdf = b"%PDF-1.7\n" + os.urandom(400)
    await quarantined_api(gw, api_pdf)
    # A letter read at the front desk: its draft refers to the scan and the page image.
    letter = await read_letter(client, gw)
    referenced = {sha(document), sha(long_body), sha(photo), sha(long_photo), sha(long_form),
                  sha(api_pdf), *letter}
    # Orphans: a form refused for its NIK after its photo was stored, bytes stored for a
    # request that never committed, and the temporary of a process killed mid-upload.
    refused_photo = png(os.urandom(8).hex())
    await refused_form(client, refused_photo)
    orphans = {sha(refused_photo), await files.put_bytes(os.urandom(2048))}
    temporary = files.root / ".incoming-killed"
    temporary.write_bytes(b"half an upload")
    assert stored(files) == referenced | orphans

    age_everything(files)
    young = await files.put_bytes(os.urandom(64))  # an orphan of a request still in flight
    everything = stored(files)
    orphan_bytes = sum(files.path(o).stat().st_size for o in orphans) + len(b"half an upload")

    dry = await collect(gw.engine, files, gw.keys, GRACE, dry_run=True)
    assert stored(files) == everything and temporary.exists()  # nothing deleted
    report = await collect(gw.engine, files, gw.keys, GRACE)
    assert report == replace(dry, dry_run=False)  # the dry run said exactly this
    assert (report.scanned, report.referenced, report.young) == (len(everything), len(referenced), 1)
    assert (report.deleted, report.temporaries, report.freed) == (2, 1, orphan_bytes)
    assert stored(files) == referenced | {young} and not temporary.exists()
    for name in referenced | {young}:
        await files.read(name)  # every file kept still opens
    # Nothing is left for a second run.
    again = await collect(gw.engine, files, gw.keys, MIN_GRACE)
    assert (again.deleted, again.temporaries) == (0, 0) and stored(files) == referenced | {young}

    # The quarantined messages replay with today's parsers and keep their attachments.
    for entry in await gw.intake.list_quarantine():
        receipt = await gw.intake.replay(entry["id"], gw.parsers)
        assert receipt.status is ReceiptStatus.ACCEPTED
    attached = {a["sha256"] for c in await opened_complaints(gw.engine, gw.keys)
                for a in c.attachments}
    assert attached == {sha(document), sha(photo), sha(long_photo), sha(api_pdf)}
    for name in attached:
        await files.read(name)


async def test_sms_messages_not_accepted_are_not_searched_for_files(
    gw: bootstrap.Gateway,
) -> None:
    # An SMS names no stored file: its status queries and quarantined texts are not opened.
    # A web message quarantined with the same words keeps the file it names.
    files = gw.files
    kept, orphan = await files.put_bytes(os.urandom(512)), await files.put_bytes(os.urandom(512))
    now = datetime.now(UTC)
    sms = RawInbound(Channel.SMS, f"cek {orphan}".encode(), now, "sms-q-1", "text/plain", {})
    web = RawInbound(
        Channel.WEB, json.dumps({"body": kept}).encode(), now, "idem:q-2", "application/json", {}
    )
    await quarantine(gw, sms, "sms.kannel")
    await quarantine(gw, web, "web.json")
    age_everything(files)
    report = await collect(gw.engine, files, gw.keys, GRACE)
    assert (report.referenced, report.deleted) == (1, 1)
    assert stored(files) == {kept}


async def test_a_grace_under_an_hour_is_refused(gw: bootstrap.Gateway) -> None:
    orphan = await gw.files.put_bytes(b"orphan")
    age_everything(gw.files)
    with pytest.raises(ValueError, match="grace"):
        await collect(gw.engine, gw.files, gw.keys, MIN_GRACE - timedelta(seconds=1))
    assert gw.files.path(orphan).exists()


async def test_a_store_that_cannot_be_scanned_fails_the_collection(
    gw: bootstrap.Gateway, tmp_path: Path
) -> None:
    # Nothing stored yet (the root not made): an empty store, nothing to do.
    fresh = FileStore(tmp_path / "not-made-yet", gw.keys)
    assert (await collect(gw.engine, fresh, gw.keys)).deleted == 0
    # A root that is a file (a volume mounted wrongly, a path mistyped): not "scanned 0, ok".
    not_a_folder = tmp_path / "a-file"
    not_a_folder.write_bytes(b"x")
    with pytest.raises(NotADirectoryError):
        await collect(gw.engine, FileStore(not_a_folder, gw.keys), gw.keys)


async def wait_until(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_serve_collects_on_its_own_and_counts_what_it_freed(settings: Settings) -> None:
    # The interval is short here; the first run comes at a random moment within one interval.
    # A grace no shorter than how long a refused form keeps its attachments (the gateway
    # refuses the settings otherwise).
    served = with_section(
        with_section(
            with_section(settings, "web", csrf_max_age=3600.0),
            "storage", gc_interval=0.2, gc_grace=3600.0,
        ),
        "http", host="127.0.0.1", port=free_port(),
    )
    files = FileStore(served.storage.file_store, load_keys(served))
    orphan = await files.put_bytes(b"left by a refused form")
    kept_young = await files.put_bytes(b"a form in flight")
    then = time.time() - 2 * 3600
    os.utime(files.path(orphan), (then, then))
    size = files.path(orphan).stat().st_size
    stop = asyncio.Event()
    task = asyncio.create_task(bootstrap.serve(served, stop))
    try:
        await wait_until(lambda: not files.path(orphan).exists())
        assert files.path(kept_young).exists()
        async with aiohttp.ClientSession() as http:
            url = f"http://127.0.0.1:{served.http.port}/metrics"
            await wait_until_async(http, url, 'lapor_files_gc_runs_total{outcome="ok"}')
            text = await (await http.get(url)).text()
        assert "lapor_files_gc_deleted_total 1.0" in text.splitlines()
        assert f"lapor_files_gc_freed_bytes_total {float(size)}" in text.splitlines()
    finally:
        stop.set()
        await task


async def wait_until_async(http: aiohttp.ClientSession, url: str, needle: str) -> None:
    deadline = time.monotonic() + 20
    while needle not in await (await http.get(url)).text():
        assert time.monotonic() < deadline, f"{needle} never appeared"
        await asyncio.sleep(0.05)


async def test_a_failed_run_is_counted_and_the_next_one_still_comes(
    settings: Settings, tmp_path: Path
) -> None:
    # A database without the gateway's tables: every run fails, the loop carries on.
    empty = with_section(settings, "database", url=f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    gateway = bootstrap.build(empty)
    old = await gateway.files.put_bytes(b"an old file: the references must be read")
    then = time.time() - 2 * 3600
    os.utime(gateway.files.path(old), (then, then))
    stop = asyncio.Event()
    task = asyncio.create_task(
        filegc.run_every(
            gateway.engine, gateway.files, gateway.keys, gateway.metrics,
            interval=0.05, grace=timedelta(hours=1), stop=stop,
        )
    )
    try:
        failed = gateway.metrics.gc_runs.labels("failed")
        await wait_until(lambda: failed._value.get() >= 2)
        assert gateway.metrics.gc_runs.labels("ok")._value.get() == 0
        # Failed for want of the references: the old file was not taken for an orphan.
        assert gateway.files.path(old).exists()
        assert gateway.metrics.gc_deleted._value.get() == 0
    finally:
        stop.set()
        await task
        await gateway.close()
