"""The web channel over HTTP on the real databases and RabbitMQ: form, /cek, API, Open311."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient

from channels.web.exif import make_exif_jpeg
from gateway import bootstrap, tracking
from gateway.settings import Settings
from tests.channels.web.conftest import NIK, csrf_token, web_settings
from tests.support import drain

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


def form_data(token: str, fields: dict[str, str], files: list[tuple[str, bytes]] = ()) -> FormData:
    fd = FormData()
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
    photo = make_exif_jpeg(-6.7612, 108.4801, b"\x00" * 200_000)
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
        two = [("a.png", b"\x89PNG\r\n\x1a\nxx"), ("b.png", b"\x89PNG\r\n\x1a\nyy")]
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
    pdf = b"%PDF-1.7\n" + b"1" * 5000
    fd = FormData()
    fd.add_field("complaint", json.dumps({"title": "Surat", "body": "Permohonan informasi APBD"}),
                 content_type="application/json")
    fd.add_field("attachments", pdf, filename="surat.pdf", content_type="application/pdf")
    resp = await client.post("/api/v1/complaints", data=fd)
    assert resp.status == 202, await resp.text()
    bad = FormData()
    bad.add_field("complaint", json.dumps({"body": "x"}))
    bad.add_field("attachments", b"GIF89a....", filename="anim.gif", content_type="image/gif")
    refused = await client.post("/api/v1/complaints", data=bad)
    assert refused.status == 415 and "anim.gif" in (await refused.json())["detail"]
    await publish(gw)
    [msg] = await drain(settings.broker.queue, 1)
    [att] = json.loads(msg.body)["attachments"]
    assert att == {
        "sha256": hashlib.sha256(pdf).hexdigest(), "media_type": "application/pdf",
        "size": len(pdf), "filename": "surat.pdf", "href": f"/files/{hashlib.sha256(pdf).hexdigest()}",
    }


async def test_rate_limit_per_ip_is_shared_through_the_database(
    settings: Settings, aiohttp_client: Client
) -> None:
    limited = web_settings(settings, rate_limit_requests=2, rate_limit_window=3600)
    one, two = bootstrap.build(limited), bootstrap.build(limited)  # two replicas
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
