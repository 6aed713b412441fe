"""The web channel over HTTP on the real databases and RabbitMQ: form, /cek, API, Open311."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import io
import ipaddress
import json
import os
import re
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import ClientPayloadError, FormData
from aiohttp.test_utils import TestClient
from PIL import Image
from pydantic import SecretStr

from channels.web.abuse import Guard
from channels.web.exif import jpeg_gps, make_exif_jpeg
from gateway import bootstrap, http, media, tracking
from gateway.errors import IntakeUnavailable
from gateway.settings import Settings
from tests.channels.web.conftest import NIK, csrf_token, web_settings
from tests.support import FixedClock, drain, pdf, phone_photo, png, wait_until, with_section
from tests.unit.test_media import everything_in, noisy_jpeg, scanned_pdf

pytestmark = pytest.mark.integration

Client = Callable[..., Awaitable[TestClient[Any, Any]]]
TID = re.compile(r'id="tracking-id">([^<]+)<')
FORM = {
    "judul": "Jalan berlubang",
    "isi": "Jalan Siliwangi depan pasar berlubang besar, sudah 2 bulan.",
    "klasifikasi": "pengaduan",
    "tanggal": "2026-11-01",
    "lokasi": "Jl. Siliwangi, Sumber",
    "nama": "Siti Aminah",
    "nik": NIK,
    "hp": "0812-3456-7890",
    "email": "siti@contoh.id",
}


def form_data(
    token: str, fields: dict[str, str], files: list[tuple[str, bytes]] = (),
    multipart: bool = False,
) -> FormData:
    """The form's fields (multipart, as a browser sends the form, with files or when asked)."""
    fd = FormData(default_to_multipart=multipart)
    fd.add_field("csrf", token)
    for key, value in fields.items():
        fd.add_field(key, value)
    for name, data in files:
        fd.add_field("lampiran", data, filename=name, content_type="application/octet-stream")
    return fd


async def publish(gw: bootstrap.Gateway) -> None:
    assert gw.relay is not None
    await gw.relay.publish_batch()
    await gw.relay._close()


async def test_form_to_receipt_to_cek_to_rabbitmq(
    gw: bootstrap.Gateway, aiohttp_client: Client, settings: Settings
) -> None:
    client = await aiohttp_client(bootstrap.build_app(gw))
    page = await client.get("/")
    html = await page.text()
    assert page.status == 200 and "hoaks" in html and 'for="nik"' in html
    photo = phone_photo(padding=200_000)
    resp = await client.post(
        "/", data=form_data(csrf_token(html), {**FORM, "rahasia": "1"}, [("jalan.jpg", photo)])
    )
    receipt = await resp.text()
    assert resp.status == 200, receipt
    shown = TID.search(receipt)
    assert shown and "3 hari kerja" in receipt and "CEK" in receipt and "1708" in receipt
    tid = tracking.normalize(shown.group(1))
    assert tid is not None and shown.group(1) == tracking.display(tid)

    cek = await client.get("/cek", params={"id": shown.group(1).lower()})
    cek_html = await cek.text()
    assert cek.status == 200 and "menunggu verifikasi" in cek_html
    for private in ("Siti", NIK, "3456", "Siliwangi"):
        assert private not in cek_html

    await publish(gw)
    [msg] = await drain(settings.broker.queue, 1)
    event = json.loads(msg.body)
    assert event["tracking_id"] == tid and event["channel"] == "web"
    assert event["title"] == "Jalan berlubang" and event["kind"] == "pengaduan"
    assert event["reporter"]["nik"] == NIK and event["reporter"]["phone"] == "+6281234567890"
    assert event["reporter"]["email"] == "siti@contoh.id"
    assert event["privacy"] == {"anonymous": False, "confidential": True}
    assert event["occurred_on"] == "2026-11-01"
    [att] = event["attachments"]
    assert att["sha256"] == hashlib.sha256(photo).hexdigest()
    assert att["media_type"] == "image/jpeg" and att["size"] == len(photo)
    assert att["filename"] == "jalan.jpg"
    assert (await gw.files.read(att["sha256"])) == photo
    assert event["source"]["exif_gps"] == f"{att['sha256']}=-6.7612,108.4801"


async def test_form_errors_are_shown_next_to_the_field_and_typed_values_kept(
    gw: bootstrap.Gateway, aiohttp_client: Client
) -> None:
    client = await aiohttp_client(bootstrap.build_app(gw))
    token = csrf_token(await (await client.get("/")).text())
    bad = {**FORM, "nik": "3209014101900000", "hp": "12", "email": "siti@", "judul": ""}
    resp = await client.post("/", data=form_data(token, bad))
    html = await resp.text()
    assert resp.status == 422
    assert "tidak boleh 0000" in html  # the NIK's reason, in Indonesian
    assert 'id="nik-err"' in html and 'id="hp-err"' in html and 'id="email-err"' in html
    assert 'id="judul-err"' in html and "Judul laporan wajib diisi." in html
    assert 'value="3209014101900000"' in html and "Jalan Siliwangi depan pasar" in html
    assert await gw.intake.count_complaints() == 0
    en = await client.post("/?lang=en", data=form_data(csrf_token(html), bad))
    assert "cannot be 0000" in await en.text()


async def test_form_needs_a_valid_csrf_token_bound_to_the_cookie(
    gw: bootstrap.Gateway, aiohttp_client: Client
) -> None:
    client = await aiohttp_client(bootstrap.build_app(gw))
    token = csrf_token(await (await client.get("/")).text())
    forged = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    assert (await client.post("/", data=form_data(forged, FORM))).status == 403
    client.session.cookie_jar.clear()  # another browser: the token is not bound to it
    assert (await client.post("/", data=form_data(token, FORM))).status == 403
    assert await gw.intake.count_complaints() == 0


async def test_same_form_sent_twice_gives_the_first_receipt(
    gw: bootstrap.Gateway, aiohttp_client: Client
) -> None:
    client = await aiohttp_client(bootstrap.build_app(gw))
    token = csrf_token(await (await client.get("/")).text())
    first = TID.search(await (await client.post("/", data=form_data(token, FORM))).text())
    again = TID.search(await (await client.post("/", data=form_data(token, FORM))).text())
    assert first and again and first.group(1) == again.group(1)
    assert await gw.intake.count_complaints() == 1


async def test_the_longest_description_the_form_allows_fits_in_any_script(
    gw: bootstrap.Gateway, aiohttp_client: Client
) -> None:
    # 20 000 characters (the textarea's maxlength) of four UTF-8 bytes each: within the limits.
    client = await aiohttp_client(bootstrap.build_app(gw))
    token = csrf_token(await (await client.get("/")).text())
    longest = {**FORM, "isi": "Jalan rusak \U0001f6a7 " + "\U0001f6a7" * 19_980}
    assert len(longest["isi"]) <= 20_000 and len(longest["isi"].encode()) > 79_000
    resp = await client.post("/", data=form_data(token, longest, [("a.png", png("x"))]))
    assert resp.status == 200 and TID.search(await resp.text()), await resp.text()


async def test_attachment_that_is_not_jpeg_png_pdf_is_refused_by_name(
    gw: bootstrap.Gateway, aiohttp_client: Client
) -> None:
    client = await aiohttp_client(bootstrap.build_app(gw))
    token = csrf_token(await (await client.get("/")).text())
    resp = await client.post(
        "/", data=form_data(token, FORM, [("virus.jpg", b"MZ\x90\x00 not an image")])
    )
    assert resp.status == 415 and "virus.jpg" in await resp.text()
    assert await gw.intake.count_complaints() == 0


async def test_attachment_limits_from_settings(settings: Settings, aiohttp_client: Client) -> None:
    gateway = bootstrap.build(web_settings(settings, max_attachment_size=1000, max_attachments=1))
    try:
        client = await aiohttp_client(bootstrap.build_app(gateway))
        token = csrf_token(await (await client.get("/")).text())
        big = b"%PDF-1.4\n" + b"0" * 2000
        resp = await client.post("/", data=form_data(token, FORM, [("surat.pdf", big)]))
        assert resp.status == 413 and "surat.pdf" in await resp.text()
        two = [("a.png", png("xx")), ("b.png", png("yy"))]
        resp = await client.post("/", data=form_data(token, FORM, two))
        assert resp.status == 413 and "Paling banyak 1 lampiran" in await resp.text()
    finally:
        await gateway.close()


async def test_cek_answers_a_wrong_check_character_like_an_unknown_id(
    gw: bootstrap.Gateway, aiohttp_client: Client
) -> None:
    client = await aiohttp_client(bootstrap.build_app(gw))
    receipt = await (await client.post("/api/v1/complaints", json={"body": "Lampu jalan mati"})).json()
    tid = receipt["tracking_id"]
    typo = tid[:-1] + ("2" if tid[-1] != "2" else "3")
    ok = await client.get("/cek", params={"id": tid})
    assert ok.status == 200 and tracking.display(tid) in await ok.text()
    answers = []
    for wrong in (typo, "ABCDEFGH2", "zzz"):
        resp = await client.get("/cek", params={"id": wrong})
        html = (await resp.text()).replace(wrong, "")
        answers.append((resp.status, html))
    assert answers[0] == answers[1] == answers[2] and answers[0][0] == 404
    assert "tidak ditemukan" in answers[0][1]


async def test_api_idempotency_key_with_another_body_is_422(
    gw: bootstrap.Gateway, aiohttp_client: Client
) -> None:
    client = await aiohttp_client(bootstrap.build_app(gw))
    body = {"body": "Sampah menumpuk di pasar"}
    first = await client.post("/api/v1/complaints", json=body, headers={"Idempotency-Key": "k"})
    same = await client.post("/api/v1/complaints", json=body, headers={"Idempotency-Key": "k"})
    assert first.status == same.status == 202
    assert (await first.json())["tracking_id"] == (await same.json())["tracking_id"]
    other = await client.post(
        "/api/v1/complaints", json={"body": "Lain"}, headers={"Idempotency-Key": "k"}
    )
    problem = await other.json()
    assert other.status == 422 and other.content_type == "application/problem+json"
    assert "Idempotency-Key" in problem["detail"] and "berbeda" in problem["detail"]
    assert await gw.intake.count_complaints() == 1


async def test_api_idempotency_key_with_other_attachments_is_422(
    gw: bootstrap.Gateway, aiohttp_client: Client
) -> None:
    # The JSON part alone was compared: a retry with other files got the first receipt and its
    # files were dropped without a word.
    client = await aiohttp_client(bootstrap.build_app(gw))
    complaint = json.dumps({"body": "Lampu jalan mati di Jalan Merdeka"})

    def request(*documents: bytes) -> FormData:
        fd = FormData()
        fd.add_field("complaint", complaint, content_type="application/json")
        for n, document in enumerate(documents):
            fd.add_field("attachments", document, filename=f"surat{n}.pdf")
        return fd

    one, two = pdf("Satu"), pdf("Dua")  # made once: a PDF's bytes change with its time
    key = {"Idempotency-Key": "files-1"}
    first = await client.post("/api/v1/complaints", data=request(one), headers=key)
    again = await client.post("/api/v1/complaints", data=request(one), headers=key)
    assert first.status == again.status == 202, await first.text()
    assert (await first.json())["tracking_id"] == (await again.json())["tracking_id"]
    answers = [
        await client.post("/api/v1/complaints", data=request(two), headers=key),
        await client.post("/api/v1/complaints", data=request(), headers=key),
        await client.post("/api/v1/complaints", data=request(one, two), headers=key),
        await client.post("/api/v1/complaints", data=complaint, headers={
            **key, "Content-Type": "application/json"}),
    ]
    assert [a.status for a in answers] == [422] * 4
    assert all(["berbeda" in (await a.json())["detail"] for a in answers])
    # And the other way: a key first used without files.
    key = {"Idempotency-Key": "files-2"}
    plain = await client.post("/api/v1/complaints", data=complaint, headers={
        **key, "Content-Type": "application/json"})
    with_file = await client.post("/api/v1/complaints", data=request(one), headers=key)
    assert (plain.status, with_file.status) == (202, 422)
    assert await gw.intake.count_complaints() == 2


async def test_api_problems_in_indonesian_or_english(
    gw: bootstrap.Gateway, aiohttp_client: Client
) -> None:
    client = await aiohttp_client(bootstrap.build_app(gw))
    id_ = await client.post("/api/v1/complaints", data=b"{}", headers={"Content-Type": "application/json"})
    en = await client.post(
        "/api/v1/complaints", data=b"{}",
        headers={"Content-Type": "application/json", "Accept-Language": "en-GB,en;q=0.8"},
    )
    id_body, en_body = await id_.json(), await en.json()
    assert id_body["title"] == "Permintaan tidak valid" and "wajib" in id_body["detail"]
    assert en_body["title"] == "Bad Request" and en_body["detail"] == "body is required"
    assert en.headers["Content-Language"] == "en"
    missing = await client.get("/api/v1/complaints/ABCDEFGH2", headers={"Accept-Language": "en"})
    assert (await missing.json())["detail"] == "Tracking ID not found."


async def test_api_multipart_with_attachments(
    gw: bootstrap.Gateway, aiohttp_client: Client, settings: Settings
) -> None:
    client = await aiohttp_client(bootstrap.build_app(gw))
    document = pdf("Permohonan informasi", padding=5000)
    fd = FormData()
    fd.add_field("complaint", json.dumps({"title": "Surat", "body": "Permohonan informasi APBD"}),
                 content_type="application/json")
    fd.add_field("attachments", document, filename="surat.pdf", content_type="application/pdf")
    resp = await client.post("/api/v1/complaints", data=fd)
    assert resp.status == 202, await resp.text()
    bad = FormData()
    bad.add_field("complaint", json.dumps({"body": "x"}))
    bad.add_field("attachments", b"GIF89a....", filename="anim.gif", content_type="image/gif")
    refused = await client.post("/api/v1/complaints", data=bad)
    assert refused.status == 415 and "anim.gif" in (await refused.json())["detail"]
    cut = FormData()  # a PDF cut short in transfer: its cross-reference table is gone
    cut.add_field("complaint", json.dumps({"body": "x"}))
    cut.add_field("attachments", document[:3000], filename="potong.pdf")
    refused = await client.post("/api/v1/complaints", data=cut, headers={"Accept-Language": "id"})
    problem = await refused.json()
    assert refused.status == 422 and "potong.pdf" in problem["detail"]
    assert "rusak atau tidak utuh" in problem["detail"]
    photo = phone_photo()  # a photo cut short in transfer: the end of its picture is gone
    cut = FormData()
    cut.add_field("complaint", json.dumps({"body": "x"}))
    cut.add_field("attachments", photo[:-5], filename="jalan.jpg")
    refused = await client.post("/api/v1/complaints", data=cut, headers={"Accept-Language": "id"})
    problem = await refused.json()
    assert refused.status == 422 and "jalan.jpg" in problem["detail"]
    assert await gw.intake.count_complaints() == 1
    await publish(gw)
    [msg] = await drain(settings.broker.queue, 1)
    [att] = json.loads(msg.body)["attachments"]
    assert att == {
        "sha256": hashlib.sha256(document).hexdigest(), "media_type": "application/pdf",
        "size": len(document), "filename": "surat.pdf", "href": f"/files/{hashlib.sha256(document).hexdigest()}",
    }


async def test_rate_limit_per_ip_is_shared_through_the_database(
    settings: Settings, aiohttp_client: Client
) -> None:
    # A fixed clock: the limit's windows start on the hour, and a real clock could cross one
    # between two requests (the later ones then counted in a fresh window).
    clock = FixedClock(datetime(2026, 11, 23, 8, 0, 15, tzinfo=UTC))
    limited = web_settings(settings, rate_limit_requests=2, rate_limit_window=3600)
    one = bootstrap.build(limited, clock=clock)  # two replicas
    two = bootstrap.build(limited, clock=clock)
    try:
        a = await aiohttp_client(bootstrap.build_app(one))
        b = await aiohttp_client(bootstrap.build_app(two))
        assert (await a.post("/api/v1/complaints", json={"body": "satu"})).status == 202
        assert (await b.post("/api/v1/complaints", json={"body": "dua"})).status == 202
        third = await a.post("/api/v1/complaints", json={"body": "tiga"})
        assert third.status == 429 and 0 < int(third.headers["Retry-After"]) <= 3600
        assert (await third.json())["status"] == 429
        token = csrf_token(await (await b.get("/")).text())
        form = await b.post("/", data=form_data(token, FORM))
        assert form.status == 429 and "Retry-After" in form.headers
        assert (await b.get("/cek")).status == 200  # reading is not limited
    finally:
        await one.close()
        await two.close()


CORE = {"Authorization": "Bearer core-t0ken"}  # the routing core's fetch token


@pytest.fixture
async def core_gw(settings: Settings) -> AsyncIterator[bootstrap.Gateway]:
    """A gateway that serves /files/ to the routing core."""
    core = with_section(settings, "storage", fetch_token=SecretStr("core-t0ken"))
    gateway = bootstrap.build(web_settings(core))
    yield gateway
    await gateway.close()


async def sent_by_form(client: TestClient[Any, Any], name: str, data: bytes) -> str:
    """Send the citizen form with one attachment; the attachment's hash."""
    token = csrf_token(await (await client.get("/")).text())
    resp = await client.post("/", data=form_data(token, FORM, [(name, data)]))
    assert resp.status == 200, await resp.text()
    return hashlib.sha256(data).hexdigest()


async def test_photo_is_stored_with_its_gps_and_served_without_metadata(
    core_gw: bootstrap.Gateway, aiohttp_client: Client
) -> None:
    client = await aiohttp_client(bootstrap.build_app(core_gw))
    photo = phone_photo()
    sha = await sent_by_form(client, "jalan.jpg", photo)
    stored = await core_gw.files.read(sha)
    assert stored == photo and jpeg_gps(stored) == (-6.7612, 108.4801)  # evidence kept

    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "core-t0ken"}):
        refused = await client.get(f"/files/{sha}", headers=headers)
        assert refused.status == 404  # as for an unknown hash: no way to confirm a file
    ok = await client.get(f"/files/{sha}", headers=CORE)
    served = await ok.read()
    assert ok.status == 200 and ok.content_type == "image/jpeg"
    assert ok.headers["Cache-Control"] == "no-store"
    assert int(ok.headers["Content-Length"]) == len(served) < len(photo)
    assert jpeg_gps(served) is None and b"Samsung" not in served
    with Image.open(io.BytesIO(served)) as clean, Image.open(io.BytesIO(photo)) as orig:
        assert dict(clean.getexif()) == {0x0112: 6}  # only the orientation is left
        assert not clean.getexif().get_ifd(0x8825)
        assert clean.tobytes() == orig.tobytes()  # the pixels as taken
    head = await client.head(f"/files/{sha}", headers=CORE)
    assert head.status == 200 and int(head.headers["Content-Length"]) == len(served)
    # Only the start of it is a JPEG: its metadata cannot be found for sure, so not served.
    fake = await core_gw.files.put_bytes(make_exif_jpeg(-6.7612, 108.4801, b"\x00" * 99))
    refused = await client.get(f"/files/{fake}", headers=CORE)
    assert refused.status == 422 and b"Exif" not in await refused.read()


async def test_a_pdf_is_stored_as_sent_and_served_without_its_metadata(
    core_gw: bootstrap.Gateway, aiohttp_client: Client
) -> None:
    client = await aiohttp_client(bootstrap.build_app(core_gw))
    document = scanned_pdf()
    sha = await sent_by_form(client, "surat.pdf", document)
    assert await core_gw.files.read(sha) == document  # the evidence as the citizen sent it
    ok = await client.get(f"/files/{sha}", headers=CORE)
    served = await ok.read()
    assert ok.status == 200 and ok.content_type == "application/pdf"
    for secret in (b"Siti", b"3209014101900001", b"Samsung", b"GPS"):
        assert secret not in everything_in(served), secret
    broken = await core_gw.files.put_bytes(b"%PDF-1.4\n" + b"0" * 300)
    assert (await client.get(f"/files/{broken}", headers=CORE)).status == 422


async def test_big_files_are_streamed_out_cleaned(
    core_gw: bootstrap.Gateway, aiohttp_client: Client
) -> None:
    client = await aiohttp_client(bootstrap.build_app(core_gw))
    document = pdf("Jalan rusak di Desa Sukamaju", padding=3_000_000)
    photo = noisy_jpeg(900)  # a scan of about 1 MB: many read chunks
    for original in (document, photo):
        sha = await core_gw.files.put_bytes(original)
        ok = await client.get(f"/files/{sha}", headers=CORE)
        assert ok.status == 200
        assert await ok.read() == media.served(original)[1]
        if original is document:  # written anew: its length is known only at the end
            assert ok.headers["Transfer-Encoding"] == "chunked"
        else:
            assert int(ok.headers["Content-Length"]) == len(media.served(original)[1])


async def test_a_download_never_holds_the_file_whole(
    core_gw: bootstrap.Gateway, aiohttp_client: Client
) -> None:
    client = await aiohttp_client(bootstrap.build_app(core_gw))
    size = 30_000_000
    sha = await core_gw.files.put_bytes(os.urandom(size))
    tracemalloc.start()
    try:
        resp = await client.get(f"/files/{sha}", headers=CORE)
        got = 0
        async for chunk in resp.content.iter_chunked(64 * 1024):
            got += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert resp.status == 200 and got == size
    # Server and client together, in this process: a few chunks at a time, not 30 MB.
    assert peak < 2_000_000, f"peak {peak} bytes while serving {size}"


async def test_a_file_found_broken_mid_download_cuts_the_answer_short(
    core_gw: bootstrap.Gateway, aiohttp_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Only a PDF can turn out broken once its answer has begun (qpdf meets a bad object while
    # writing): a cleaner that does exactly that stands in for one.
    @contextlib.contextmanager
    def breaks_midway(fh: Any, strip: bool = True) -> Iterator[media.Cleaned]:
        def write(out: Any) -> None:
            out.write(b"%PDF-1.7\n" + b"x" * 200_000)
            raise media.Unclean("application/pdf: object 12 is damaged")

        yield media.Cleaned("application/pdf", None, write)

    monkeypatch.setattr(media, "cleaned", breaks_midway)
    client = await aiohttp_client(bootstrap.build_app(core_gw))
    sha = await core_gw.files.put_bytes(b"%PDF-1.7 stored")
    resp = await client.get(f"/files/{sha}", headers=CORE)
    assert resp.status == 200  # sent before the damage showed
    with pytest.raises(ClientPayloadError):  # no last chunk: the client sees it incomplete
        await resp.read()
    # The server goes on answering.
    assert (await client.get("/healthz")).status == 200


async def test_a_download_cut_short_frees_its_thread(
    core_gw: bootstrap.Gateway, aiohttp_client: Client
) -> None:
    app = bootstrap.build_app(core_gw)
    client = await aiohttp_client(app)
    big = await core_gw.files.put_bytes(os.urandom(40_000_000))  # far more than socket buffers
    small = await core_gw.files.put_bytes(b"a small file")
    for _ in range(http.FILE_THREAD_COUNT):
        resp = await client.get(f"/files/{big}", headers=CORE)
        assert resp.status == 200 and len(await resp.content.read(100_000)) > 0
        resp.close()  # the client goes away in the middle
    # Had any of those threads stayed blocked behind its gone client, none would be left.
    async with asyncio.timeout(10):
        ok = await client.get(f"/files/{small}", headers=CORE)
        assert await ok.read() == b"a small file"
    # A client going away is not a server error (which would page the operator): 499 or 200.
    def counted() -> dict[str, float]:
        answers = core_gw.metrics.http_responses.collect()
        return {s.labels["status"]: s.value for metric in answers for s in metric.samples
                if s.name.endswith("_total") and s.labels["surface"] == "ops"}

    await wait_until(lambda: sum(counted().values()) == http.FILE_THREAD_COUNT + 1,
                     "every download counted")
    assert set(counted()) <= {"200", "499"}, counted()


def browser_form(token: str, files: list[tuple[str, bytes]]) -> FormData:
    """The fields in the order a browser sends them: the attachments before the identity."""
    fd = FormData()
    fd.add_field("csrf", token)
    for key in ("judul", "isi", "klasifikasi", "tanggal", "lokasi"):
        fd.add_field(key, FORM[key])
    for name, data in files:
        fd.add_field("lampiran", data, filename=name, content_type="application/octet-stream")
    for key in ("nama", "nik", "hp", "email"):
        fd.add_field(key, FORM[key])
    fd.add_field("rahasia", "1")
    return fd


@pytest.mark.parametrize(
    ("files", "status", "named"),
    [
        # Refused from its first bytes, with a good photo after it that must not be kept.
        ([("virus.exe", b"MZ\x90\x00" + b"x" * 5000), ("b.png", png("later"))],
         415, "virus.exe"),
        # Refused in the middle of its upload: 300 kB against a limit of 1000 bytes.
        ([("surat.pdf", b"%PDF-1.4\n" + b"0" * 300_000)], 413, "surat.pdf"),
        # Stored, then found damaged: it starts like a JPEG, but no picture follows.
        ([("rusak.jpg", make_exif_jpeg(-6.7, 108.4, b"\x00" * 99)), ("b.png", png("later"))],
         422, "rusak.jpg"),
        ([("a.png", png("xx")), ("b.png", png("yy"))], 413,
         "Paling banyak 1 lampiran"),
    ],
    ids=["wrong-type", "too-big-mid-upload", "damaged", "too-many"],
)
async def test_refused_attachment_keeps_everything_typed(
    settings: Settings, aiohttp_client: Client, files: list[tuple[str, bytes]], status: int,
    named: str,
) -> None:
    gateway = bootstrap.build(web_settings(settings, max_attachment_size=1000, max_attachments=1))
    try:
        client = await aiohttp_client(bootstrap.build_app(gateway))
        token = csrf_token(await (await client.get("/")).text())
        resp = await client.post("/", data=browser_form(token, files))
        html = await resp.text()
        assert resp.status == status
        error = re.search(r'id="lampiran-err">([^<]+)<', html)
        assert error and named in error.group(1) and "pilih lagi lampiran" in error.group(1)
        for typed in ("Jalan berlubang", FORM["isi"], FORM["lokasi"], "2026-11-01",
                      "Siti Aminah", NIK, "0812-3456-7890", "siti@contoh.id"):
            assert typed in html, typed  # the fields before AND after the file are all back
        assert 'id="rahasia" name="rahasia" value="1" checked' in html
        assert await gateway.intake.count_complaints() == 0
        later = hashlib.sha256(files[-1][1]).hexdigest()
        assert not gateway.files.path(later).exists()  # nothing kept after the refusal
        # The form shown again works: the citizen picks a fitting file and sends it.
        again = csrf_token(html)
        ok = await client.post("/", data=browser_form(again, [("a.png", png("ok"))]))
        assert ok.status == 200 and TID.search(await ok.text())
    finally:
        await gateway.close()


async def test_rate_limit_per_identity_across_addresses_behind_a_trusted_proxy(
    settings: Settings, aiohttp_client: Client
) -> None:
    limited = web_settings(
        settings, rate_limit_requests=100, rate_limit_identity_requests=2,
        trusted_proxies=(ipaddress.ip_network("127.0.0.1/32"),),
    )
    # A fixed clock: the identity's windows (an hour) start on the hour, and a real clock could
    # cross one between the requests (the third then counted in a fresh window).
    clock = FixedClock(datetime(2026, 11, 23, 8, 0, 15, tzinfo=UTC))
    gateway = bootstrap.build(limited, clock=clock)
    try:
        client = await aiohttp_client(bootstrap.build_app(gateway))

        async def post(phone: str, ip: str, text: str) -> Any:
            body = {"body": text, "reporter": {"phone": phone}}
            return await client.post(
                "/api/v1/complaints", json=body, headers={"X-Forwarded-For": f"1.1.1.1, {ip}"}
            )

        assert (await post("0812-3456-7890", "198.51.100.1", "Lampu jalan mati")).status == 202
        assert (await post("+6281234567890", "198.51.100.2", "Sampah di pasar")).status == 202
        assert (await post("081299990000", "198.51.100.3", "Air PDAM keruh")).status == 202
        # The first person again, from a new address: over the identity's limit.
        third = await post("0812 3456 7890", "198.51.100.4", "Jembatan retak")
        problem = await third.json()
        assert third.status == 429 and "identitas" in problem["detail"]
        assert 0 < int(third.headers["Retry-After"]) <= 3600

        token = csrf_token(await (await client.get("/")).text())
        form = await client.post("/", data=form_data(token, FORM),
                                 headers={"X-Forwarded-For": "198.51.100.5"})
        html = await form.text()
        assert form.status == 429 and "Retry-After" in form.headers
        assert "Jalan berlubang" in html and NIK in html  # what was typed is kept

        async with gateway.engine.connect() as conn:
            buckets = [r[0] for r in await conn.exec_driver_sql(
                "SELECT bucket FROM web_rate_limits")]
        assert {f"ip:198.51.100.{i}" for i in range(1, 6)} <= set(buckets)
        assert "ip:1.1.1.1" not in buckets  # the client-written hop is not believed
        assert sum(b.startswith("id:phone:") for b in buckets) == 2
        # (a keyed hash may hold "3456" by chance: the whole number may not)
        assert not any("1234567890" in b or NIK in b or "siti" in b for b in buckets)
        assert await gateway.intake.count_complaints() == 3
    finally:
        await gateway.close()


async def test_a_retry_of_what_went_through_gets_its_receipt_whatever_the_limits_say(
    settings: Settings, aiohttp_client: Client
) -> None:
    # A partner's POST that timed out, sent again with its Idempotency-Key; a citizen's double
    # tap on "Kirim laporan" or the receipt reloaded: the first receipt, not a 429 (which would
    # leave them without the tracking ID of the complaint they filed). A retry adds nothing.
    for hour, (address_limit, identity_limit) in ((8, (100, 1)), (10, (1, 100))):
        # Each round in windows of its own (the counts are the database's, kept between them).
        clock = FixedClock(datetime(2026, 11, 23, hour, 0, 15, tzinfo=UTC))
        gateway = bootstrap.build(
            web_settings(
                settings,
                rate_limit_requests=address_limit,
                rate_limit_identity_requests=identity_limit,
            ),
            clock=clock,
        )
        try:
            client = await aiohttp_client(bootstrap.build_app(gateway))
            token = csrf_token(await (await client.get("/")).text())
            first = await client.post("/", data=form_data(token, FORM))
            again = await client.post("/", data=form_data(token, FORM))
            tid = TID.search(await first.text())
            assert first.status == 200 and tid, await first.text()
            assert again.status == 200 and tid.group(1) in await again.text()
            # Another form over the limit is still refused.
            other = csrf_token(await (await client.get("/")).text())
            refused = await client.post("/", data=form_data(other, FORM))
            assert refused.status == 429 and "Retry-After" in refused.headers

            body = {"body": "Lampu jalan mati di Jalan Merdeka", "reporter": {"phone": "081299990000"}}
            key = {"Idempotency-Key": f"partner-{address_limit}"}
            if address_limit > 1:  # the API's own first request, within the address's limit
                await gateway.close()
                gateway = bootstrap.build(
                    web_settings(settings, rate_limit_identity_requests=1), clock=clock
                )
                client = await aiohttp_client(bootstrap.build_app(gateway))
                filed = await client.post("/api/v1/complaints", json=body, headers=key)
                replay = await client.post("/api/v1/complaints", json=body, headers=key)
                assert filed.status == replay.status == 202, await replay.text()
                assert await replay.json() == await filed.json()
                fresh = await client.post("/api/v1/complaints", json=body)
                assert fresh.status == 429  # without the key: a new request, refused
                other_body = await client.post(
                    "/api/v1/complaints", json={**body, "body": "Lain"}, headers=key
                )
                # The key with another body, over the limit: refused like any request (a 422
                # would tell a stranger who typed the NIK which keys its holder used).
                assert other_body.status == 429
        finally:
            await gateway.close()


async def test_forwarded_for_counts_only_from_a_trusted_proxy(
    settings: Settings, aiohttp_client: Client
) -> None:
    # A fixed clock: the limit's windows start on the minute, and a real clock could cross
    # one between two requests (the second then counted in a fresh window).
    clock = FixedClock(datetime(2026, 11, 23, 8, 0, 15, tzinfo=UTC))
    for trusted, second in (((), 429), ((ipaddress.ip_network("127.0.0.0/8"),), 202)):
        gateway = bootstrap.build(
            web_settings(settings, rate_limit_requests=1, trusted_proxies=trusted), clock=clock
        )
        try:
            client = await aiohttp_client(bootstrap.build_app(gateway))

            async def post(ip: str) -> int:
                resp = await client.post("/api/v1/complaints", json={"body": f"Sampah {ip}"},
                                         headers={"X-Forwarded-For": ip})
                return resp.status

            assert await post("198.51.100.1") == 202
            assert await post("198.51.100.2") == second  # untrusted: the header is ignored
            assert await post("198.51.100.1") == 429
        finally:
            await gateway.close()


async def test_retry_after_is_the_rest_of_the_window(
    settings: Settings, aiohttp_client: Client
) -> None:
    clock = FixedClock(datetime(2026, 11, 23, 8, 0, 15, tzinfo=UTC))  # 15 s into the minute
    gateway = bootstrap.build(
        web_settings(settings, rate_limit_requests=1, rate_limit_window=60), clock=clock
    )
    try:
        client = await aiohttp_client(bootstrap.build_app(gateway))
        en = {"Accept-Language": "en"}
        assert (await client.post("/api/v1/complaints", json={"body": "satu"})).status == 202
        refused = await client.post("/api/v1/complaints", json={"body": "dua"}, headers=en)
        assert refused.status == 429 and refused.headers["Retry-After"] == "45"
        assert (await refused.json())["detail"] == "Retry in 45 s."
        bad = await client.post("/api/v1/complaints", data=b"{", headers={
            "Content-Type": "application/json"})
        assert bad.status == 429  # malformed bodies count against the address too
        clock.now += timedelta(seconds=45)
        assert (await client.post("/api/v1/complaints", json={"body": "tiga"})).status == 202
    finally:
        await gateway.close()


KEPT = re.compile(r'name="lampiran_tersimpan" value="([^"]+)" checked> <label for="kept-\d+">([^<]+)<')


def kept_files(html: str) -> list[tuple[str, str]]:
    """(token, label) of every attachment the form shows as already received."""
    return KEPT.findall(html)


async def test_a_refused_form_keeps_its_photo_so_the_citizen_does_not_upload_it_again(
    gw: bootstrap.Gateway, aiohttp_client: Client, settings: Settings
) -> None:
    client = await aiohttp_client(bootstrap.build_app(gw))
    photo = phone_photo(padding=200_000)
    sha = hashlib.sha256(photo).hexdigest()
    token = csrf_token(await (await client.get("/")).text())
    bad = {**FORM, "nik": "3209014101900000"}
    first = await client.post("/", data=form_data(token, bad, [("jalan.jpg", photo)]))
    html = await first.text()
    assert first.status == 422 and "tidak boleh 0000" in html
    [(kept, label)] = kept_files(html)
    assert label == "jalan.jpg (196 KB)" and "Lampiran yang sudah terkirim" in html
    # The citizen corrects the NIK and sends again without choosing the photo again.
    fixed = form_data(csrf_token(html), {**FORM, "lampiran_tersimpan": kept})
    second = await client.post("/", data=fixed)
    assert second.status == 200 and TID.search(await second.text())
    await publish(gw)
    [msg] = await drain(settings.broker.queue, 1)
    event = json.loads(msg.body)
    [att] = event["attachments"]
    assert att == {"sha256": sha, "media_type": "image/jpeg", "size": len(photo),
                   "filename": "jalan.jpg", "href": f"/files/{sha}"}
    assert event["source"]["exif_gps"] == f"{sha}=-6.7612,108.4801"  # the EXIF evidence too
    assert await gw.files.read(sha) == photo


async def test_the_form_tells_the_attachment_limits_in_its_own_language(
    gw: bootstrap.Gateway, aiohttp_client: Client, settings: Settings
) -> None:
    # Told before a photo goes over a slow connection only to be refused.
    client = await aiohttp_client(bootstrap.build_app(gw))
    html = await (await client.get("/")).text()
    n, size = settings.web.max_attachments, settings.web.max_attachment_size // 1_048_576
    assert f"paling banyak {n} berkas, masing-masing paling besar {size} MB" in html
    english = await (await client.get("/?lang=en")).text()
    assert f"at most {n} files of at most {size} MB each" in english
    # A form sent back says it too, and names a kept photo's size as the page writes it.
    bad = {**FORM, "nik": "3209014101900000"}
    sent = await client.post("/", data=form_data(csrf_token(html), bad, [("a.png", png("a"))]))
    again = await sent.text()
    assert f"paling banyak {n} berkas" in again
    [(_, label)] = kept_files(again)
    assert label == "a.png (1 KB)"


async def test_an_unticked_kept_photo_is_left_out(
    gw: bootstrap.Gateway, aiohttp_client: Client, settings: Settings
) -> None:
    client = await aiohttp_client(bootstrap.build_app(gw))
    token = csrf_token(await (await client.get("/")).text())
    photos = [("a.png", png("a")), ("b.png", png("b"))]
    first = await client.post("/", data=form_data(token, {**FORM, "hp": "12"}, photos))
    html = await first.text()
    (kept_a, label_a), (_, label_b) = kept_files(html)
    assert (label_a, label_b) == ("a.png (1 KB)", "b.png (1 KB)")
    # b.png unticked, c.png added: a.png and c.png go with the report.
    new = [("c.png", png("c"))]
    second = await client.post(
        "/", data=form_data(csrf_token(html), {**FORM, "lampiran_tersimpan": kept_a}, new)
    )
    assert second.status == 200
    await publish(gw)
    [msg] = await drain(settings.broker.queue, 1)
    names = [a["filename"] for a in json.loads(msg.body)["attachments"]]
    assert names == ["a.png", "c.png"]


async def test_a_kept_photo_cannot_be_taken_to_another_browser_or_forged(
    gw: bootstrap.Gateway, aiohttp_client: Client
) -> None:
    app = bootstrap.build_app(gw)
    citizen, stranger = await aiohttp_client(app), await aiohttp_client(app)
    token = csrf_token(await (await citizen.get("/")).text())
    photo = png("private")
    first = await citizen.post("/", data=form_data(token, {**FORM, "hp": "12"}, [("ktp.png", photo)]))
    [(kept, _)] = kept_files(await first.text())
    own = csrf_token(await (await stranger.get("/")).text())
    taken = await stranger.post("/", data=form_data(own, {**FORM, "lampiran_tersimpan": kept}))
    html = await taken.text()
    assert taken.status == 422 and "tidak dapat disertakan lagi" in html
    assert not kept_files(html) and await gw.intake.count_complaints() == 0
    # A token naming another file: the signature does not match.
    issued, _, mac = kept.split(".")
    other = base64.urlsafe_b64encode(json.dumps({"sha256": "0" * 64, "media_type": "image/png",
                                                 "size": 9, "filename": "x.png"}).encode())
    forged = f"{issued}.{other.decode().rstrip('=')}.{mac}"
    again = csrf_token(await (await citizen.get("/")).text())
    refused = await citizen.post("/", data=form_data(again, {**FORM, "lampiran_tersimpan": forged}))
    assert refused.status == 422 and await gw.intake.count_complaints() == 0


async def test_a_kept_photo_no_longer_stored_is_named_and_dropped_from_the_form(
    gw: bootstrap.Gateway, aiohttp_client: Client
) -> None:
    client = await aiohttp_client(bootstrap.build_app(gw))
    token = csrf_token(await (await client.get("/")).text())
    photo = png("collected")
    first = await client.post("/", data=form_data(token, {**FORM, "hp": "12"}, [("a.png", photo)]))
    html = await first.text()
    [(kept, _)] = kept_files(html)
    gw.files.path(hashlib.sha256(photo).hexdigest()).unlink()  # collected in the meantime
    second = await client.post("/", data=form_data(csrf_token(html), {**FORM, "lampiran_tersimpan": kept}))
    html = await second.text()
    error = re.search(r'id="lampiran-err">([^<]+)<', html)
    assert second.status == 422 and error and "1 lampiran yang sudah terkirim" in error.group(1)
    assert not kept_files(html) and 'value="Siti Aminah"' in html
    assert await gw.intake.count_complaints() == 0
    third = await client.post("/", data=form_data(csrf_token(html), FORM, [("a.png", photo)]))
    assert third.status == 200  # chosen again, it goes


async def test_kept_and_new_attachments_count_together_against_the_limit(
    settings: Settings, aiohttp_client: Client
) -> None:
    gateway = bootstrap.build(web_settings(settings, max_attachments=1))
    try:
        client = await aiohttp_client(bootstrap.build_app(gateway))
        token = csrf_token(await (await client.get("/")).text())
        first = await client.post(
            "/", data=form_data(token, {**FORM, "hp": "12"}, [("a.png", png("a"))])
        )
        [(kept, _)] = kept_files(await first.text())
        second = await client.post(
            "/",
            data=form_data(
                csrf_token(await first.text()),
                {**FORM, "lampiran_tersimpan": kept},
                [("b.png", png("b"))],
            ),
        )
        html = await second.text()
        assert second.status == 413 and "Paling banyak 1 lampiran; hapus centang" in html
        assert [label for _, label in kept_files(html)] == ["a.png (1 KB)", "b.png (1 KB)"]
        assert await gateway.intake.count_complaints() == 0
    finally:
        await gateway.close()



# 20:30 UTC on 4 December is 05:30 on 5 December in Jayapura (WIT, UTC+9) and 03:30 in Jakarta:
# for citizens in the east and the west alike, 5 December is today.
EARLY_MORNING_IN_INDONESIA = datetime(2026, 12, 4, 20, 30, tzinfo=UTC)


async def test_the_form_takes_todays_date_in_indonesia_before_it_is_today_in_utc(
    settings: Settings, aiohttp_client: Client
) -> None:
    clock = FixedClock(EARLY_MORNING_IN_INDONESIA)
    gateway = bootstrap.build(web_settings(settings), clock=clock)
    try:
        client = await aiohttp_client(bootstrap.build_app(gateway))
        form = await (await client.get("/")).text()
        assert 'type="date" id="tanggal" name="tanggal" value="" max="2026-12-05"' in form
        token = csrf_token(form)
        later = await client.post("/", data=form_data(token, {**FORM, "tanggal": "2026-12-06"}))
        html = await later.text()
        assert later.status == 422 and 'id="tanggal-err"' in html and "masa depan" in html
        today = await client.post(
            "/", data=form_data(csrf_token(html), {**FORM, "tanggal": "2026-12-05"})
        )
        assert today.status == 200, await today.text()
        found = TID.search(await today.text())
        assert found
        assert await gateway.intake.count_complaints() == 1
        # /cek shows when it was received in the national service's time, not UTC's day before.
        cek = await (await client.get("/cek", params={"id": found.group(1)})).text()
        assert "<dd>05-12-2026 03:30 WIB</dd>" in cek and "UTC" not in cek
    finally:
        await gateway.close()


@pytest.mark.parametrize(
    "body",
    [
        "[" * 3000 + "]" * 3000,  # nested deeper than the decoder goes
        '{"body": "Lampu jalan mati", "location": {"latitude": ' + "1" * 5000 + "}}",
        '{"body": ' * 3000 + '"x"' + "}" * 3000,
    ],
    ids=["deep-array", "integer-of-5000-digits", "deep-object"],
)
async def test_json_the_decoder_cannot_take_is_a_bad_request(
    gw: bootstrap.Gateway, aiohttp_client: Client, body: str
) -> None:
    client = await aiohttp_client(bootstrap.build_app(gw))
    as_json = {"Content-Type": "application/json"}
    resp = await client.post("/api/v1/complaints", data=body.encode(), headers=as_json)
    problem = await resp.json()
    assert resp.status == 400 and resp.content_type == "application/problem+json"
    assert problem["status"] == 400 and "JSON tidak valid" in problem["detail"]
    en = await client.post("/api/v1/complaints", data=body.encode(),
                           headers={**as_json, "Accept-Language": "en"})
    assert en.status == 400 and (await en.json())["detail"].startswith("invalid JSON")
    fd = FormData()
    fd.add_field("complaint", body, content_type="application/json")
    fd.add_field("attachments", png("x"), filename="x.png", content_type="image/png")
    multipart = await client.post("/api/v1/complaints", data=fd)
    assert multipart.status == 400 and "JSON tidak valid" in (await multipart.json())["detail"]
    assert await gw.intake.count_complaints() == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [('{"body": "Jalan rusak \\ud800 parah"}', "body"),
     ('{"body": "Jalan rusak parah", "title": "\\udfff"}', "title"),
     ('{"body": "Jalan rusak parah", "reporter": {"name": "Siti \\ud83d"}}', "reporter.name")],
    ids=["body", "title", "reporter-name"],
)
async def test_json_text_with_a_lone_surrogate_is_a_bad_request_naming_its_field(
    gw: bootstrap.Gateway, aiohttp_client: Client, body: str, field: str
) -> None:
    # "\ud800" is valid JSON but no Unicode text: it can be neither sealed nor published, so
    # the client is told at once (400) instead of getting a 202 for a complaint quarantined.
    client = await aiohttp_client(bootstrap.build_app(gw))
    as_json = {"Content-Type": "application/json"}
    resp = await client.post("/api/v1/complaints", data=body.encode(), headers=as_json)
    problem = await resp.json()
    assert resp.status == 400 and resp.content_type == "application/problem+json", problem
    assert problem["detail"].startswith(field)
    assert await gw.intake.count_complaints() == 0


@pytest.mark.parametrize(
    "content_type",
    ["multipart/form-data", "multipart/form-data; boundary=" + "b" * 71],
    ids=["no-boundary", "boundary-of-71-characters"],
)
async def test_multipart_without_a_usable_boundary_is_a_bad_request(
    gw: bootstrap.Gateway, aiohttp_client: Client, content_type: str
) -> None:
    client = await aiohttp_client(bootstrap.build_app(gw))
    body = b"--" + b"b" * 71 + b'\r\nContent-Disposition: form-data; name="isi"\r\n\r\nx\r\n'
    token = csrf_token(await (await client.get("/")).text())
    form = await client.post("/", data=body, headers={"Content-Type": content_type})
    html = await form.text()
    assert form.status == 400 and form.content_type == "text/html"
    assert 'role="alert">Format multipart rusak' in html and csrf_token(html) != token
    en = await client.post("/?lang=en", data=body, headers={"Content-Type": content_type})
    assert en.status == 400 and 'role="alert">Malformed multipart body' in await en.text()
    api = await client.post(
        "/api/v1/complaints", data=body,
        headers={"Content-Type": content_type, "Accept-Language": "en"},
    )
    problem = await api.json()
    assert api.status == 400 and api.content_type == "application/problem+json"
    assert problem["status"] == 400 and "boundary" in problem["detail"]
    assert "field" not in problem  # the body as a whole, not a field of it
    assert await gw.intake.count_complaints() == 0


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/x-www-form-urlencoded", b"judul=%ff%fe&isi=\xff"),
        ("application/x-www-form-urlencoded; charset=tidak-ada", b"judul=Lampu"),
    ],
    ids=["not-utf8", "unknown-charset"],
)
async def test_a_form_body_that_is_not_text_is_a_bad_request(
    gw: bootstrap.Gateway, aiohttp_client: Client, content_type: str, body: bytes
) -> None:
    client = await aiohttp_client(bootstrap.build_app(gw))
    form = await client.post("/", data=body, headers={"Content-Type": content_type})
    html = await form.text()
    assert form.status == 400 and form.content_type == "text/html"
    assert 'role="alert">Isian formulir rusak' in html and csrf_token(html)
    assert await gw.intake.count_complaints() == 0


async def test_a_text_too_long_for_the_form_is_named_and_everything_else_kept(
    settings: Settings, aiohttp_client: Client
) -> None:
    gateway = bootstrap.build(web_settings(settings, max_field_size=1000))
    try:
        client = await aiohttp_client(bootstrap.build_app(gateway))
        token = csrf_token(await (await client.get("/")).text())
        photo = png("kept")
        fd = FormData()  # in the browser's order: the photo and the identity after the text
        fd.add_field("csrf", token)
        for key in ("judul", "klasifikasi", "tanggal", "lokasi"):
            fd.add_field(key, FORM[key])
        fd.add_field("isi", "Jalan rusak parah. " * 3000)  # 57 kB against 1000 bytes
        fd.add_field("lampiran", photo, filename="jalan.png", content_type="image/png")
        for key in ("nama", "nik", "hp", "email"):
            fd.add_field(key, FORM[key])
        fd.add_field("rahasia", "1")
        resp = await client.post("/", data=fd)
        html = await resp.text()
        assert resp.status == 413
        error = re.search(r'id="isi-err">([^<]+)<', html)
        assert error and "terlalu panjang" in error.group(1)
        assert 'id="lampiran-err"' not in html and "Jalan rusak parah" not in html
        for typed in ("Jalan berlubang", FORM["lokasi"], "2026-11-01", "Siti Aminah", NIK,
                      "0812-3456-7890", "siti@contoh.id"):
            assert typed in html, typed  # the fields before AND after the long text are back
        assert 'id="rahasia" name="rahasia" value="1" checked' in html
        [(kept, label)] = kept_files(html)  # the photo after it was taken and is kept
        assert label.startswith("jalan.png")
        assert await gateway.intake.count_complaints() == 0
        en = await client.post("/?lang=en", data=form_data(csrf_token(html), {
            **FORM, "isi": "x" * 2000, "lampiran_tersimpan": kept}, multipart=True))
        error = re.search(r'id="isi-err">([^<]+)<', await en.text())
        assert en.status == 413 and error and "too long" in error.group(1)
        # Shortened, with the photo kept: it goes.
        ok = await client.post(
            "/", data=form_data(csrf_token(html), {**FORM, "lampiran_tersimpan": kept})
        )
        assert ok.status == 200 and TID.search(await ok.text())
    finally:
        await gateway.close()


async def test_a_text_too_long_for_the_api_is_refused_at_once_naming_its_field(
    settings: Settings, aiohttp_client: Client
) -> None:
    gateway = bootstrap.build(web_settings(settings, max_field_size=1000))
    try:
        client = await aiohttp_client(bootstrap.build_app(gateway))
        fd = FormData()
        fd.add_field("complaint", json.dumps({"body": "Jalan rusak parah. " * 100}),
                     content_type="application/json")
        fd.add_field("attachments", png("api"), filename="a.png", content_type="image/png")
        resp = await client.post("/api/v1/complaints", data=fd, headers={"Accept-Language": "en"})
        problem = await resp.json()
        assert resp.status == 413 and problem["field"] == "complaint"
        assert "complaint" in problem["detail"]
        assert not gateway.files.path(hashlib.sha256(png("api")).hexdigest()).exists()
        assert await gateway.intake.count_complaints() == 0
    finally:
        await gateway.close()


async def test_a_text_too_long_past_what_is_worth_reading_is_named_by_its_field(
    settings: Settings, aiohttp_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    from channels.web import routes

    monkeypatch.setattr(routes, "MIN_DISCARD", 0)  # throw away at most 2 x 1000 x 1 bytes
    gateway = bootstrap.build(
        web_settings(settings, max_field_size=1000, max_attachment_size=1000, max_attachments=1)
    )
    try:
        client = await aiohttp_client(bootstrap.build_app(gateway))
        token = csrf_token(await (await client.get("/")).text())
        resp = await client.post(
            "/", data=form_data(token, {**FORM, "isi": "x" * 50_000}, multipart=True)
        )
        html = await resp.text()
        error = re.search(r'id="isi-err">([^<]+)<', html)
        assert resp.status == 413 and error and "terlalu panjang" in error.group(1)
        assert 'id="lampiran-err"' not in html
    finally:
        await gateway.close()


INDONESIAN = re.compile(r"\b(harus|wajib|lebih dari|tidak|kolom|di luar|angka)\b")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "body"),
        ({"body": 5}, "body"),
        ({"body": "  "}, "body"),
        ({"body": "b" * 20_001}, "body"),
        ({"body": "Lampu mati", "title": "t" * 301}, "title"),
        ({"body": "Lampu mati", "title": ["t"]}, "title"),
        ({"body": "Lampu mati", "kind": "protes"}, "kind"),
        ({"body": "Lampu mati", "agency": "a" * 256}, "agency"),
        ({"body": "Lampu mati", "sumber": "x"}, "sumber"),
        ({"body": "Lampu mati", "reporter": []}, "reporter"),
        ({"body": "Lampu mati", "reporter": {"name": "n" * 201}}, "reporter.name"),
        ({"body": "Lampu mati", "reporter": {"nik": 3209014101900001}}, "reporter.nik"),
        ({"body": "Lampu mati", "reporter": {"phone": "0" * 33}}, "reporter.phone"),
        ({"body": "Lampu mati", "reporter": {"email": "e" * 255}}, "reporter.email"),
        ({"body": "Lampu mati", "reporter": {"ktp": "1"}}, "reporter.ktp"),
        ({"body": "Lampu mati", "privacy": {"anonymous": "ya"}}, "privacy.anonymous"),
        ({"body": "Lampu mati", "privacy": {"confidential": 1}}, "privacy.confidential"),
        ({"body": "Lampu mati", "privacy": "rahasia"}, "privacy"),
        ({"body": "Lampu mati", "location": {"text": "t" * 501}}, "location.text"),
        ({"body": "Lampu mati", "location": {"latitude": 91}}, "location.latitude"),
        ({"body": "Lampu mati", "location": {"longitude": "108"}}, "location.longitude"),
        ({"body": "Lampu mati", "location": 5}, "location"),
        ([], "request body"),
    ],
)
async def test_every_api_problem_names_its_field_in_english_as_in_indonesian(
    gw: bootstrap.Gateway, aiohttp_client: Client, body: Any, field: str
) -> None:
    client = await aiohttp_client(bootstrap.build_app(gw))
    en = await client.post("/api/v1/complaints", json=body, headers={"Accept-Language": "en"})
    named = re.compile(rf"(?<![\w.]){re.escape(field)}(?![\w.])")
    detail = (await en.json())["detail"]
    assert en.status == 400 and named.search(detail), detail
    assert not INDONESIAN.search(detail), detail  # the English half only
    id_ = await client.post("/api/v1/complaints", json=body)
    detail = (await id_.json())["detail"]
    indonesian, english = detail.split(" / ", 1)
    assert id_.status == 400 and english == (await en.json())["detail"]
    if field == "request body":
        assert indonesian.startswith("isi permintaan"), detail
    else:
        assert named.search(indonesian), detail


# ---- the form's language switch -------------------------------------------------------------

SWITCH_TO_EN = "/?lang=en&ganti_bahasa=1"  # the formaction of the Indonesian form's switch
SWITCH_BUTTON = re.compile(r'<button type="submit" id="ganti-bahasa"[^>]*>')


def switch_form(
    token: str, fields: dict[str, str], files: list[tuple[str, bytes]] = (), to: str = "en"
) -> FormData:
    """What a browser sends when the switch is tapped: every field in the form's order, the
    files between the text and the identity, and the switch button's own name last."""
    fd = FormData()
    fd.add_field("csrf", token)
    identity = ("nama", "nik", "hp", "email", "anonim", "rahasia")
    for key, value in fields.items():
        if key not in identity:
            fd.add_field(key, value)
    for name, data in files:
        fd.add_field("lampiran", data, filename=name, content_type="application/octet-stream")
    if not files:  # a file input left empty
        fd.add_field("lampiran", b"", filename="", content_type="application/octet-stream")
    for key, value in fields.items():
        if key in identity:
            fd.add_field(key, value)
    fd.add_field("ganti_bahasa", to)
    return fd


async def raw_messages(gateway: bootstrap.Gateway) -> int:
    async with gateway.engine.connect() as conn:
        return int((await conn.exec_driver_sql("SELECT count(*) FROM raw_inbound")).scalar_one())


def stored_files(gateway: bootstrap.Gateway) -> list[str]:
    root = gateway.files.root
    return sorted(p.name for p in root.rglob("*") if p.is_file()) if root.exists() else []


async def test_the_language_switch_keeps_everything_typed_and_stores_nothing(
    gw: bootstrap.Gateway, aiohttp_client: Client
) -> None:
    client = await aiohttp_client(bootstrap.build_app(gw))
    html = await (await client.get("/")).text()
    button = SWITCH_BUTTON.search(html)
    assert button, "the switch is a button of the form"
    assert 'name="ganti_bahasa" value="en"' in button.group(0)
    assert 'formaction="/?lang=en&amp;ganti_bahasa=1"' in button.group(0)
    assert "formnovalidate" in button.group(0) and 'lang="en"' in button.group(0)
    # After the form's own submit button: Enter in a field still sends the report.
    assert html.index('<button type="submit">Kirim laporan') < button.start() < html.index("</form>")
    assert '<a href="#ganti-bahasa" lang="en">English</a>' in html  # the header leads to it

    typed = {**FORM, "isi": "Jalan Siliwangi depan pasar berlubang besar.\r\nSudah 2 bulan.",
             "klasifikasi": "aspirasi", "instansi": "Dinas PU <Cirebon>", "rahasia": "1"}
    photo = phone_photo(padding=50_000)
    resp = await client.post(
        SWITCH_TO_EN, data=switch_form(csrf_token(html), typed, [("jalan.jpg", photo)])
    )
    en = await resp.text()
    assert resp.status == 200, en
    assert '<html lang="en">' in en and "Submit your report" in en
    for name in ("judul", "tanggal", "lokasi", "nama", "nik", "hp", "email"):
        assert f'id="{name}" name="{name}" value="{typed[name]}"' in en, name
    assert f">{typed['isi']}</textarea>" in en
    assert 'value="Dinas PU &lt;Cirebon&gt;"' in en
    assert '<option value="aspirasi" selected>' in en
    assert 'id="rahasia" name="rahasia" value="1" checked' in en
    assert 'id="anonim" name="anonim" value="1">' in en
    # No message of any kind: a switch is not a submission. The photo was not taken: the page
    # says so in English, by the file input.
    assert 'class="err"' not in en and 'role="alert"' not in en and "aria-invalid" not in en
    note = re.search(r'<p class="note hint" id="lampiran-note">([^<]+)</p>', en)
    assert note and "jalan.jpg" in note.group(1) and "Choose them again" in note.group(1)
    assert 'aria-describedby="lampiran-note"' in en
    assert not stored_files(gw) and not kept_files(en)
    assert await gw.intake.count_complaints() == 0 and await raw_messages(gw) == 0
    # The English form switches back to Indonesian, with everything again.
    back = SWITCH_BUTTON.search(en)
    assert back and 'value="id"' in back.group(0) and 'lang="id"' in back.group(0)
    assert 'formaction="/?ganti_bahasa=1"' in back.group(0)
    assert '<a href="#ganti-bahasa" lang="id">Bahasa Indonesia</a>' in en
    again = await client.post("/?ganti_bahasa=1", data=switch_form(csrf_token(en), typed, to="id"))
    id_html = await again.text()
    assert again.status == 200 and '<html lang="id">' in id_html and "Sampaikan Laporan" in id_html
    assert f'value="{NIK}"' in id_html and 'id="lampiran-note"' not in id_html  # no file chosen
    # The fresh token of the switched form sends the report.
    sent = await client.post(
        "/?lang=en", data=form_data(csrf_token(en), typed, [("jalan.jpg", photo)])
    )
    receipt = await sent.text()
    assert sent.status == 200 and "Your report has been received" in receipt
    assert TID.search(receipt) and await gw.intake.count_complaints() == 1


async def test_a_language_switch_does_not_count_against_the_rate_limit(
    settings: Settings, aiohttp_client: Client
) -> None:
    # A fixed clock: the limit's windows start on the hour, and a real clock could cross one
    # between the sent form and the refused one.
    clock = FixedClock(datetime(2026, 11, 23, 8, 0, 15, tzinfo=UTC))
    gateway = bootstrap.build(
        web_settings(settings, rate_limit_requests=1, rate_limit_window=3600), clock=clock
    )
    try:
        client = await aiohttp_client(bootstrap.build_app(gateway))
        token = csrf_token(await (await client.get("/")).text())
        for _ in range(3):
            switched = await client.post(SWITCH_TO_EN, data=switch_form(token, FORM))
            assert switched.status == 200
            token = csrf_token(await switched.text())
        async with gateway.engine.connect() as conn:
            counted = (await conn.exec_driver_sql("SELECT count(*) FROM web_rate_limits")).scalar()
        assert counted == 0
        sent = await client.post("/?lang=en", data=form_data(token, FORM))
        assert sent.status == 200 and TID.search(await sent.text())  # the one allowed
        # Another form (the same one sent again is answered its receipt, whatever the limit).
        other = csrf_token(await (await client.get("/")).text())
        refused = await client.post("/", data=form_data(other, {**FORM, "judul": "Lagi"}))
        assert refused.status == 429
        # Over the limit, switching still works and keeps the text.
        switched = await client.post(
            SWITCH_TO_EN, data=switch_form(csrf_token(await refused.text()), {**FORM, "judul": "Lagi"})
        )
        assert switched.status == 200 and 'value="Lagi"' in await switched.text()
        assert await gateway.intake.count_complaints() == 1
    finally:
        await gateway.close()


async def test_a_form_over_its_address_limit_comes_back_with_everything_typed(
    settings: Settings, aiohttp_client: Client
) -> None:
    # Citizens behind one mobile operator's NAT share an address: one meets another's limit.
    # A fixed clock: the limit's windows start on the hour, and a real clock could cross one
    # between the two posts.
    clock = FixedClock(datetime(2026, 11, 23, 8, 0, 15, tzinfo=UTC))
    gateway = bootstrap.build(
        web_settings(settings, rate_limit_requests=1, rate_limit_window=3600), clock=clock
    )
    try:
        client = await aiohttp_client(bootstrap.build_app(gateway))
        html = await (await client.get("/")).text()
        refused = await client.post(
            "/", data=form_data(csrf_token(html), {**FORM, "hp": "12"}, [("a.png", png("kept"))])
        )
        first = await refused.text()
        assert refused.status == 422  # counted: the address's one request of the hour
        [(kept, _)] = kept_files(first)
        before = stored_files(gateway)
        long_text = "Jalan Siliwangi depan pasar berlubang besar.\r\n" * 60
        typed = {**FORM, "isi": long_text, "rahasia": "1", "lampiran_tersimpan": kept}
        photos = [("jalan.jpg", phone_photo(padding=50_000)), ("got.png", png("new"))]
        resp = await client.post("/", data=form_data(csrf_token(first), typed, photos))
        html = await resp.text()
        assert resp.status == 429, html[:300]
        assert 0 < int(resp.headers["Retry-After"]) <= 3600
        assert f"Coba lagi dalam {resp.headers['Retry-After']} detik" in html
        for name in ("judul", "tanggal", "lokasi", "nama", "nik", "hp", "email"):
            assert f'id="{name}" name="{name}" value="{typed[name]}"' in html, name
        assert f">{long_text}</textarea>" in html
        assert 'id="rahasia" name="rahasia" value="1" checked' in html
        # The files chosen were not stored: named, to be chosen again; the kept one stays ticked.
        note = re.search(r'<p class="note hint" id="lampiran-note">([^<]+)</p>', html)
        assert note and "jalan.jpg" in note.group(1) and "got.png" in note.group(1)
        [(_, label)] = kept_files(html)
        assert label == "a.png (1 KB)"
        assert stored_files(gateway) == before
        assert "expired" not in html and "kedaluwarsa" not in html  # the token was good
        # In English too, and a form urlencoded (no file input used) keeps its text the same way.
        en = await client.post("/?lang=en", data=form_data(csrf_token(html), FORM))
        en_html = await en.text()
        assert en.status == 429 and "Try again in" in en_html and "Retry-After" in en.headers
        assert 'value="Siti Aminah"' in en_html and 'id="lampiran-note"' not in en_html
        assert await gateway.intake.count_complaints() == 0 and await raw_messages(gateway) == 0
    finally:
        await gateway.close()


async def test_a_form_refused_by_the_database_at_its_address_check_keeps_what_was_typed(
    gw: bootstrap.Gateway, aiohttp_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = await aiohttp_client(bootstrap.build_app(gw))
    token = csrf_token(await (await client.get("/")).text())

    async def database_away(*_args: Any) -> Any:
        raise IntakeUnavailable("database away")

    monkeypatch.setattr(Guard, "check", database_away)
    resp = await client.post("/", data=form_data(token, FORM, [("jalan.jpg", phone_photo())]))
    html = await resp.text()
    assert resp.status == 503 and resp.headers["Retry-After"] == "5"
    assert "Layanan sedang sibuk" in html
    assert 'value="Jalan berlubang"' in html and FORM["isi"] in html and f'value="{NIK}"' in html
    note = re.search(r'<p class="note hint" id="lampiran-note">([^<]+)</p>', html)
    assert note and "jalan.jpg" in note.group(1)
    assert not stored_files(gw) and not kept_files(html)
    # A form that expired meanwhile still comes back, and says so.
    forged = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    stale = await client.post("/", data=form_data(forged, FORM))
    stale_html = await stale.text()
    assert stale.status == 503 and "Formulir kedaluwarsa" in stale_html
    assert 'value="Siti Aminah"' in stale_html


async def test_a_language_switch_checks_the_csrf_token(
    gw: bootstrap.Gateway, aiohttp_client: Client
) -> None:
    client = await aiohttp_client(bootstrap.build_app(gw))
    token = csrf_token(await (await client.get("/")).text())
    forged = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    resp = await client.post(SWITCH_TO_EN, data=switch_form(forged, FORM))
    html = await resp.text()
    # Another site could post a form filled in by it: the citizen is told, in the page's language.
    assert resp.status == 403 and 'role="alert">The form expired' in html
    assert 'value="Siti Aminah"' in html and '<html lang="en">' in html
    fresh = csrf_token(html)
    assert fresh != forged
    ok = await client.post("/?ganti_bahasa=1", data=switch_form(fresh, FORM, to="id"))
    assert ok.status == 200 and 'role="alert"' not in await ok.text()
    client.session.cookie_jar.clear()  # another browser: the token is not bound to it
    other = await client.post(SWITCH_TO_EN, data=switch_form(fresh, FORM))
    assert other.status == 403 and "lapor_csrf" in other.cookies  # a cookie for the new form
    assert await gw.intake.count_complaints() == 0 and await raw_messages(gw) == 0


async def test_a_photo_kept_from_a_refused_form_stays_through_a_language_switch(
    gw: bootstrap.Gateway, aiohttp_client: Client, settings: Settings
) -> None:
    client = await aiohttp_client(bootstrap.build_app(gw))
    token = csrf_token(await (await client.get("/")).text())
    photo = png("kept through the switch")
    first = await client.post("/", data=form_data(token, {**FORM, "hp": "12"}, [("a.png", photo)]))
    html = await first.text()
    [(kept, _)] = kept_files(html)
    resp = await client.post(SWITCH_TO_EN, data=switch_form(
        csrf_token(html), {**FORM, "hp": "12", "lampiran_tersimpan": kept}))
    en = await resp.text()
    assert resp.status == 200 and "Attachments already received" in en
    [(carried, label)] = kept_files(en)
    assert label == "a.png (1 KB)" and 'id="hp-err"' not in en  # the earlier error is not repeated
    fixed = form_data(csrf_token(en), {**FORM, "lampiran_tersimpan": carried})
    sent = await client.post("/?lang=en", data=fixed)
    assert sent.status == 200 and TID.search(await sent.text())
    await publish(gw)
    [msg] = await drain(settings.broker.queue, 1)
    [att] = json.loads(msg.body)["attachments"]
    assert att["sha256"] == hashlib.sha256(photo).hexdigest() and att["filename"] == "a.png"


async def test_a_language_switch_too_long_to_keep_a_text_says_so_by_the_field(
    settings: Settings, aiohttp_client: Client
) -> None:
    gateway = bootstrap.build(web_settings(settings, max_field_size=1000))
    try:
        client = await aiohttp_client(bootstrap.build_app(gateway))
        token = csrf_token(await (await client.get("/")).text())
        resp = await client.post(SWITCH_TO_EN, data=switch_form(token, {**FORM, "isi": "x" * 5000}))
        html = await resp.text()
        error = re.search(r'id="isi-err">([^<]+)<', html)
        assert resp.status == 200 and error and "too long" in error.group(1)
        assert 'value="Siti Aminah"' in html and "x" * 1001 not in html
    finally:
        await gateway.close()


async def test_a_switch_that_reaches_the_form_without_its_formaction_files_nothing(
    gw: bootstrap.Gateway, aiohttp_client: Client
) -> None:
    # A browser that does not know formaction posts the switch to the form's own address.
    client = await aiohttp_client(bootstrap.build_app(gw))
    token = csrf_token(await (await client.get("/")).text())
    resp = await client.post("/", data=switch_form(token, FORM, [("a.png", png("old"))]))
    html = await resp.text()
    assert resp.status == 200 and '<html lang="en">' in html and not TID.search(html)
    assert f'value="{NIK}"' in html and 'class="err"' not in html
    [(_, label)] = kept_files(html)  # read and stored by then: kept, not asked for again
    assert label == "a.png (1 KB)"
    assert await gw.intake.count_complaints() == 0 and await raw_messages(gw) == 0


# ---- the date it happened: not after today anywhere in Indonesia -----------------------------


def date_max(html: str) -> str | None:
    tag = re.search(r'<input type="date" id="tanggal"[^>]*>', html)
    assert tag
    found = re.search(r'max="([^"]+)"', tag.group(0))
    return found.group(1) if found else None


async def test_the_date_input_stops_at_today_in_indonesia_and_the_server_agrees(
    settings: Settings, aiohttp_client: Client
) -> None:
    # 14:59:59 UTC on 4 December is 23:59:59 in Jayapura (WIT), 21:59:59 in Jakarta (WIB).
    clock = FixedClock(datetime(2026, 12, 4, 14, 59, 59, tzinfo=UTC))
    gateway = bootstrap.build(web_settings(settings), clock=clock)
    try:
        client = await aiohttp_client(bootstrap.build_app(gateway))
        html = await (await client.get("/")).text()
        assert date_max(html) == "2026-12-04"
        refused = await client.post(
            "/", data=form_data(csrf_token(html), {**FORM, "tanggal": "2026-12-05"})
        )
        page = await refused.text()
        assert refused.status == 422 and "Tanggal kejadian tidak boleh di masa depan." in page
        assert date_max(page) == "2026-12-04"  # also on the form sent back
        en = await client.post(
            "/?lang=en", data=form_data(csrf_token(page), {**FORM, "tanggal": "05/12/2026"})
        )
        assert en.status == 422 and "The date cannot be in the future." in await en.text()
        # One second later it is 5 December in Jayapura: the picker and the server move on.
        clock.now += timedelta(seconds=1)
        html = await (await client.get("/")).text()
        assert date_max(html) == "2026-12-05"
        ok = await client.post("/", data=form_data(csrf_token(html), {**FORM, "tanggal": "2026-12-05"}))
        assert ok.status == 200 and TID.search(await ok.text())
        # 17:00 UTC: midnight in Jakarta, still 4 December in UTC.
        clock.now = datetime(2026, 12, 4, 17, 0, tzinfo=UTC)
        assert date_max(await (await client.get("/?lang=en")).text()) == "2026-12-05"
    finally:
        await gateway.close()


# ---- a UTF-8 byte order mark, and the parser's own wording -----------------------------------

BOM = b"\xef\xbb\xbf"


async def test_api_accepts_a_json_body_behind_a_utf8_bom_and_counts_it_the_same_request(
    gw: bootstrap.Gateway, aiohttp_client: Client
) -> None:
    # Some Windows clients put EF BB BF before the JSON; RFC 8259 section 8.1 lets a parser
    # ignore it. It was answered 400 "invalid JSON". The BOM is no part of the content: the same
    # JSON with or without it is the same request for its Idempotency-Key.
    client = await aiohttp_client(bootstrap.build_app(gw))
    plain = json.dumps({"body": "Lampu jalan mati di Jalan Merdeka"}).encode()
    json_type = {"Content-Type": "application/json"}
    first = await client.post(
        "/api/v1/complaints", data=BOM + plain, headers={**json_type, "Idempotency-Key": "bom-1"}
    )
    assert first.status == 202, await first.text()
    again = await client.post(
        "/api/v1/complaints", data=plain, headers={**json_type, "Idempotency-Key": "bom-1"}
    )
    assert again.status == 202, await again.text()
    assert (await again.json())["tracking_id"] == (await first.json())["tracking_id"]
    key = {**json_type, "Idempotency-Key": "bom-2"}
    without = await client.post("/api/v1/complaints", data=plain, headers=key)
    with_bom = await client.post("/api/v1/complaints", data=BOM + plain, headers=key)
    assert (without.status, with_bom.status) == (202, 202), await with_bom.text()
    assert (await with_bom.json())["tracking_id"] == (await without.json())["tracking_id"]
    other = await client.post("/api/v1/complaints", data=BOM + b'{"body": "Lain"}', headers=key)
    assert other.status == 422  # another body all the same
    fd = FormData()  # the multipart API's JSON part
    fd.add_field("complaint", "\ufeff" + json.dumps({"body": "Jalan rusak"}),  # EF BB BF
                 content_type="application/json")
    fd.add_field("attachments", pdf("Surat"), filename="surat.pdf", content_type="application/pdf")
    part = await client.post("/api/v1/complaints", data=fd)
    assert part.status == 202, await part.text()
    assert await gw.intake.count_complaints() == 3


@pytest.mark.parametrize(
    ("body", "id_words", "en_words"),
    [
        (b'{"body": }', "nilai", "value"),
        (b"{'body': 'x'}", "nama kolom", "property name"),
        (b'{"body" "x"}', "':'", "':'"),
        (b'{"body": "x" "title": "y"}', "','", "','"),
        (b'{"body": "x', "tidak ditutup", "unterminated string"),
        (b'{"body": "a\\qb"}', "escape", "escape"),
        (b'{"body": "x"} {}', "setelah", "after"),
        (b'{"body": "a\x01b"}', "karakter kontrol", "control character"),
        (b'{"body": "caf\xe9"}', "bukan UTF-8", "not UTF-8"),
        (BOM + b'{"body": "caf\xe9"}', "bukan UTF-8", "not UTF-8"),
    ],
)
async def test_api_json_errors_speak_the_clients_language_not_pythons(
    gw: bootstrap.Gateway, aiohttp_client: Client, body: bytes, id_words: str, en_words: str
) -> None:
    # The Indonesian detail carried Python's English ("Expecting value: line 1 column 10 (char
    # 9)", "'utf-8' codec can't decode byte 0xe9 in position ..."): now each half is in its own
    # language, the position given as numbers.
    client = await aiohttp_client(bootstrap.build_app(gw))
    json_type = {"Content-Type": "application/json"}
    id_ = await client.post("/api/v1/complaints", data=body, headers=json_type)
    en = await client.post(
        "/api/v1/complaints", data=body, headers={**json_type, "Accept-Language": "en"}
    )
    assert id_.status == en.status == 400
    id_detail, en_detail = (await id_.json())["detail"], (await en.json())["detail"]
    indonesian, english = id_detail.split(" / ", 1)
    assert english == en_detail
    python = re.compile(r"Expecting|codec|can't decode|\(char \d+\)|Extra data|Unterminated|Invalid")
    assert not python.search(id_detail) and not python.search(en_detail), id_detail
    assert indonesian.startswith("JSON tidak valid") and id_words in indonesian, id_detail
    assert en_detail.startswith("invalid JSON") and en_words in en_detail, en_detail
    assert re.search(r"\d", indonesian) and re.search(r"\d", en_detail)  # where it went wrong
    assert not re.search(r"\b(the|is|at|line|column)\b", indonesian), indonesian


# ---- what aiohttp answers by itself ---------------------------------------------------------

NOT_GZIP = {"Content-Encoding": "gzip", "Connection": "close"}  # a body that does not decode


async def test_what_the_server_answers_by_itself_under_the_api_is_a_problem_document(
    settings: Settings, aiohttp_client: Client
) -> None:
    # No such resource, a method the resource does not take, a body over http.client_max_size:
    # aiohttp answered these in text/plain ("405: Method Not Allowed"), in English, which no
    # client of the API reads as a problem document.
    gateway = bootstrap.build(with_section(web_settings(settings), "http", client_max_size=4096))
    try:
        client = await aiohttp_client(bootstrap.build_app(gateway))
        json_type = {"Content-Type": "application/json"}
        big = json.dumps({"body": "a" * 5000}).encode()
        cases: list[tuple[str, str, dict[str, str], bytes | None, int, str | None]] = [
            ("GET", "/api/v1/tidak-ada", {}, None, 404, None),
            ("GET", "/api/v1", {}, None, 404, None),
            ("GET", "/api/v1/complaints/ABCDEFGH2/notes", {}, None, 404, None),
            ("GET", "/api/v1/complaints", {}, None, 405, "POST"),
            ("PUT", "/api/v1/complaints", json_type, b"{}", 405, "POST"),
            ("DELETE", "/api/v1/complaints/ABCDEFGH2", {}, None, 405, "GET,HEAD"),
            ("POST", "/api/v1/openapi.json", json_type, b"{}", 405, "GET,HEAD"),
            ("POST", "/api/v1/complaints", json_type, big, 413, None),
        ]
        for method, path, headers, body, status, allow in cases:
            for lang, title in (("id", TITLE_ID[status]), ("en", TITLE_EN[status])):
                resp = await client.request(
                    method, path, data=body, headers={**headers, "Accept-Language": lang}
                )
                problem = await resp.json(content_type=None)
                where = (method, path, lang, problem)
                assert resp.status == status, where
                assert resp.content_type == "application/problem+json", where
                assert resp.headers["Content-Language"] == lang, where
                assert problem["status"] == status and problem["title"] == title, where
                assert problem["type"] == "about:blank" and problem["detail"], where
                assert resp.headers.get("Allow") == allow, where
                if lang == "en":
                    assert not INDONESIAN.search(problem["detail"]), where
                elif allow:
                    assert f"Metode {method} tidak dapat dipakai" in problem["detail"], where
        over = await client.post("/api/v1/complaints", data=big, headers=json_type)
        assert "4096" in (await over.json())["detail"]  # the limit a client has to keep to
        assert await gateway.intake.count_complaints() == 0
        outside = await client.get("/tidak-ada")  # only the API answers with problems
        assert outside.status == 404 and outside.content_type != "application/problem+json"
    finally:
        await gateway.close()


TITLE_ID = {404: "Tidak ditemukan", 405: "Metode tidak diizinkan",
            413: "Kiriman terlalu besar", 400: "Permintaan tidak valid"}
TITLE_EN = {404: "Not Found", 405: "Method Not Allowed", 413: "Content Too Large",
            400: "Bad Request"}


async def test_a_body_that_cannot_be_decoded_is_a_bad_request_not_a_server_error(
    gw: bootstrap.Gateway, aiohttp_client: Client
) -> None:
    # "Content-Encoding: gzip" over a body that is not gzip: reading it raised aiohttp's
    # RequestPayloadError, which no route caught, and the answer was "500 Internal Server
    # Error" (the API's JSON and multipart, Open311, the form).
    client = await aiohttp_client(bootstrap.build_app(gw))
    for content_type, body in (
        ("application/json", json.dumps({"body": "Jalan rusak"}).encode()),
        ("multipart/form-data; boundary=xx", b"--xx\r\n"),
    ):
        for lang in ("id", "en"):
            resp = await client.post(
                "/api/v1/complaints", data=body,
                headers={**NOT_GZIP, "Content-Type": content_type, "Accept-Language": lang},
            )
            problem = await resp.json(content_type=None)
            assert resp.status == 400 and resp.content_type == "application/problem+json"
            assert problem["status"] == 400 and "Content-Encoding" in problem["detail"]
            assert ("tidak dapat dibaca" in problem["detail"]) == (lang == "id"), problem
    token = csrf_token(await (await client.get("/")).text())
    for content_type, body in (
        ("application/x-www-form-urlencoded", f"csrf={token}&isi=Jalan+rusak".encode()),
        ("multipart/form-data; boundary=xx", b"--xx\r\n"),
    ):
        form = await client.post(
            "/", data=body, headers={**NOT_GZIP, "Content-Type": content_type}
        )
        html = await form.text()
        assert form.status == 400 and form.content_type == "text/html", html[:200]
        assert 'role="alert">Isi permintaan tidak dapat dibaca' in html and csrf_token(html)
    assert await gw.intake.count_complaints() == 0


async def test_an_unexpected_failure_of_the_api_is_a_problem_document() -> None:
    # A handler's bug was aiohttp's "500 Internal Server Error" in text/plain.
    from aiohttp import web
    from aiohttp.test_utils import make_mocked_request

    from channels.web.routes import api_errors

    async def broken(request: web.Request) -> web.StreamResponse:
        raise RuntimeError("bug")

    for lang, title in (("id", "Galat server"), ("en", "Internal Server Error")):
        request = make_mocked_request(
            "GET", "/api/v1/complaints/ABCDEFGH2", headers={"Accept-Language": lang}
        )
        answer = await api_errors(request, broken)
        assert isinstance(answer, web.Response) and answer.text
        assert answer.status == 500 and answer.content_type == "application/problem+json"
        problem = json.loads(answer.text)
        assert problem["status"] == 500 and problem["title"] == title and problem["detail"]
    with pytest.raises(RuntimeError):  # outside the API aiohttp answers as before
        await api_errors(make_mocked_request("GET", "/cek"), broken)


@pytest.mark.parametrize(
    ("accept_language", "expected"),
    [
        ("", "id"),
        ("en", "en"),
        ("en-GB,en;q=0.8", "en"),
        ("id-ID,id;q=0.9,en-US;q=0.8,en;q=0.7", "id"),
        # Only the first tag was looked at: a client that reads French, then English, got
        # Indonesian; one that refuses English (q=0) or weighs it below Indonesian got English.
        ("fr-FR, en;q=0.9", "en"),
        ("en;q=0", "id"),
        ("en;q=0.5, id", "id"),
        ("id;q=0.5, en", "en"),
        ("*", "id"),
        ("en;q=abc, id;q=0.1", "id"),  # an unreadable weight: not taken
        ("EN-us", "en"),
        ("id, en", "id"),  # equal weights: the first
    ],
)
def test_the_answers_language_follows_the_clients_weights(
    accept_language: str, expected: str
) -> None:
    from aiohttp.test_utils import make_mocked_request

    from channels.web.open311 import _lang as open311_lang
    from channels.web.routes import api_lang

    request = make_mocked_request("GET", "/", headers={"Accept-Language": accept_language})
    assert http.answer_language(request) == expected
    assert api_lang(request) == open311_lang(request) == expected


async def test_a_form_over_the_servers_size_limit_is_the_form_again_not_plain_text(
    settings: Settings, aiohttp_client: Client
) -> None:
    # A urlencoded form body over http.client_max_size was aiohttp's text/plain "Maximum
    # request body size 4096 exceeded.", in English, with no way back to the form.
    gateway = bootstrap.build(with_section(web_settings(settings), "http", client_max_size=4096))
    try:
        client = await aiohttp_client(bootstrap.build_app(gateway))
        token = csrf_token(await (await client.get("/")).text())
        body = {**FORM, "csrf": token, "isi": "x" * 5000}
        for path, words in (("/", "Isian formulir terlalu besar"),
                            ("/?lang=en", "The form is too large")):
            resp = await client.post(path, data=body, headers={"Connection": "close"})
            html = await resp.text()
            assert resp.status == 413 and resp.content_type == "text/html", html[:200]
            assert f'role="alert">{words}' in html and csrf_token(html)
        assert await gateway.intake.count_complaints() == 0
    finally:
        await gateway.close()
