"""The web channel at its edges, as a citizen, an Open311 client or a partner system meets
them: a photo's place and a part without a file name through the API, a photo inside a PDF,
confidential complaints and the Open311 listing, limits Open311 shares with the form, the
configured short code on the receipt, answers chosen by Accept-Language."""

from __future__ import annotations

import io
import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

import pikepdf
import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient
from pydantic import SecretStr

from channels.web.exif import jpeg_gps
from gateway import bootstrap
from gateway.settings import Settings
from tests.channels.web.conftest import OPEN311_KEY, csrf_token, web_settings
from tests.support import opened_events, phone_photo, with_section

pytestmark = pytest.mark.integration

Client = Callable[..., Awaitable[TestClient[Any, Any]]]
API = "/api/v1/complaints"
V2 = "/open311/v2"
URLENCODED = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}


async def test_an_open311_token_holding_a_nul_character_is_404_not_503(
    settings: Settings, aiohttp_client: Client
) -> None:
    """An Open311 client asking ``tokens/{token}`` for a token that is none of ours expects the
    spec's 404, also for one holding a NUL character (``%00``), which PostgreSQL cannot take in
    text: a 503 with ``Retry-After`` would have it retry for ever what can never succeed."""
    gateway = bootstrap.build(web_settings(settings))
    try:
        client = await aiohttp_client(bootstrap.build_app(gateway))
        for path in (f"{V2}/tokens/%00.json", f"{V2}/tokens/abc%00def.xml"):
            resp = await client.get(path)
            assert resp.status == 404, (path, resp.status, await resp.text())
            assert "Retry-After" not in resp.headers
    finally:
        await gateway.close()


async def test_the_gps_of_a_photo_sent_through_the_api_reaches_the_routing_core(
    settings: Settings, aiohttp_client: Client
) -> None:
    """README (web channel): the GPS position in a photo's EXIF is kept as evidence, going into
    the message's metadata ``exif_gps`` which travels in the event's ``source``, because
    ``/files/`` serves every photo without its EXIF. Sent by a partner through ``POST
    /api/v1/complaints`` (multipart) as on the citizen form: otherwise the routing core could
    never learn where the photo was taken (what it fetches has the position stripped)."""
    gateway = bootstrap.build(web_settings(settings))
    try:
        client = await aiohttp_client(bootstrap.build_app(gateway))
        fd = FormData()
        fd.add_field("complaint", json.dumps({"body": "Jalan berlubang di depan pasar"}),
                     content_type="application/json")
        fd.add_field("attachments", phone_photo(), filename="jalan.jpg",
                     content_type="image/jpeg")
        resp = await client.post(API, data=fd)
        assert resp.status == 202, await resp.text()
        [event] = [json.loads(e) for e in await opened_events(gateway.engine, gateway.keys)]
        [attachment] = event["attachments"]
        assert event["source"].get("exif_gps") == f"{attachment['sha256']}=-6.7612,108.4801"
    finally:
        await gateway.close()



async def test_an_api_attachment_part_without_a_file_name_is_not_silently_dropped(
    settings: Settings, aiohttp_client: Client
) -> None:
    """A partner posts ``multipart/form-data`` with the documented ``attachments`` part holding
    a photo but without a ``filename`` parameter (RFC 7578 makes it optional: ``curl -F
    'attachments=<foto.jpg'``, Go's ``CreateFormField``): the photo is filed with the
    complaint, not skipped as text while the request is answered 202."""
    gateway = bootstrap.build(web_settings(settings))
    try:
        client = await aiohttp_client(bootstrap.build_app(gateway))
        b = "XyZb0undary"
        body = (
            f"--{b}\r\nContent-Disposition: form-data; name=\"complaint\"\r\n"
            "Content-Type: application/json\r\n\r\n"
            + json.dumps({"body": "Jalan berlubang di depan pasar"}) + "\r\n"
            f"--{b}\r\nContent-Disposition: form-data; name=\"attachments\"\r\n"
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode() + phone_photo() + f"\r\n--{b}--\r\n".encode()
        resp = await client.post(
            API, data=body, headers={"Content-Type": f"multipart/form-data; boundary={b}"}
        )
        assert resp.status == 202, await resp.text()
        [event] = [json.loads(e) for e in await opened_events(gateway.engine, gateway.keys)]
        [attachment] = event["attachments"]
        assert attachment["media_type"] == "image/jpeg" and attachment["filename"] is None
    finally:
        await gateway.close()


def _photo_in_a_pdf() -> bytes:
    """A one-page PDF showing a phone photo, as "image to PDF" apps make it: the JPEG is
    embedded as it is (DCTDecode), its EXIF (maker, GPS) included."""
    doc = pikepdf.new()
    doc.add_blank_page(page_size=(200, 300))
    image = pikepdf.Stream(doc, phone_photo())
    image.Type, image.Subtype = pikepdf.Name.XObject, pikepdf.Name.Image
    image.Width, image.Height, image.BitsPerComponent = 64, 48, 8
    image.ColorSpace, image.Filter = pikepdf.Name.DeviceRGB, pikepdf.Name.DCTDecode
    page = doc.pages[0]
    page.Resources = pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im0=image))
    page.Contents = doc.make_stream(b"q 64 0 0 48 50 100 cm /Im0 Do Q")
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()


async def test_a_photos_gps_inside_a_pdf_does_not_leave_the_gateway(
    settings: Settings, aiohttp_client: Client
) -> None:
    """A citizen turns a phone photo into a PDF (an "image to PDF" app embeds the JPEG as it
    is) and attaches it. What leaves the gateway again carries none of the citizen's metadata,
    GPS first (gateway/media.py), inside a PDF as in a JPEG: not the maker, the model nor the
    position where it was taken."""
    core = with_section(settings, "storage", fetch_token=SecretStr("core-t0ken"))
    gateway = bootstrap.build(web_settings(core))
    try:
        client = await aiohttp_client(bootstrap.build_app(gateway))
        fd = FormData()
        fd.add_field("complaint", json.dumps({"body": "Jalan berlubang di depan pasar"}),
                     content_type="application/json")
        fd.add_field("attachments", _photo_in_a_pdf(), filename="foto.pdf")
        resp = await client.post(API, data=fd)
        assert resp.status == 202, await resp.text()
        [event] = [json.loads(e) for e in await opened_events(gateway.engine, gateway.keys)]
        [attachment] = event["attachments"]
        got = await client.get(attachment["href"], headers={"Authorization": "Bearer core-t0ken"})
        served = await got.read()
        assert got.status == 200 and got.content_type == "application/pdf"
        embedded = served[served.find(b"\xff\xd8\xff"):]
        assert jpeg_gps(embedded) is None, "the photo's GPS position is served inside the PDF"
        assert b"Samsung" not in served
    finally:
        await gateway.close()


async def test_a_confidential_complaints_agency_cannot_be_had_through_the_open311_listing(
    settings: Settings, aiohttp_client: Client
) -> None:
    """README (web channel): of a confidential (rahasia) complaint Open311 shows neither title,
    place nor agency, "whom a complaint concerns tells its matter; the citizen holding its
    tracking ID still sees the agency on /cek". The tracking ID is what keeps the agency to the
    citizen, so the public listing ``GET /open311/v2/requests.json`` does not hand it out: a
    whistle-blower's complaint would be tied to the agency it concerns by two public requests.
    Asked for by its ID, it is there, without title, place or agency."""
    gateway = bootstrap.build(web_settings(settings))
    try:
        client = await aiohttp_client(bootstrap.build_app(gateway))
        secret = {
            "title": "Pungutan liar di kantor kecamatan",
            "body": "Petugas meminta uang untuk pembuatan KTP.",
            "agency": "Kecamatan Sumber",
            "privacy": {"confidential": True},
            "reporter": {"phone": "081234567890"},
        }
        filed = await client.post(API, json=secret)
        assert filed.status == 202, await filed.text()
        plain = await client.post(API, json={**secret, "privacy": {}, "title": "Lampu mati"})
        assert plain.status == 202, await plain.text()
        hidden, shown = (await filed.json())["tracking_id"], (await plain.json())["tracking_id"]
        listed = await client.get(f"{V2}/requests.json")
        assert listed.status == 200
        assert [r["service_request_id"] for r in await listed.json()] == [shown]
        named = await client.get(f"{V2}/requests/{hidden}.json")
        [request] = await named.json()
        assert request["service_request_id"] == hidden
        assert (request["description"], request["address"], request["agency_responsible"]) == (
            None, None, None
        )
    finally:
        await gateway.close()


async def test_an_open311_address_is_not_cut_short_without_a_word(
    settings: Settings, aiohttp_client: Client
) -> None:
    """An Open311 client sends an ``address_string`` of 600 characters (directions in a
    village: "gang ketiga setelah masjid ..."). The form and the JSON API refuse a place over
    500 characters, naming the field, so the citizen can shorten it; so does Open311 (400
    naming ``address_string``), rather than cut the end of the directions off unsaid."""
    gateway = bootstrap.build(web_settings(settings))
    try:
        client = await aiohttp_client(bootstrap.build_app(gateway))
        address = ("Gang Melati, rumah ketiga setelah masjid, " * 15)[:600]
        body = urlencode({
            "api_key": OPEN311_KEY, "service_code": "pengaduan",
            "description": "Saluran air tersumbat sejak sebulan.", "address_string": address,
        })
        resp = await client.post(f"{V2}/requests.json", data=body, headers=URLENCODED)
        assert resp.status == 400 and "address_string" in (await resp.text())
        assert await gateway.intake.count_complaints() == 0
    finally:
        await gateway.close()


async def test_the_receipt_names_the_configured_sms_short_code(
    settings: Settings, aiohttp_client: Client
) -> None:
    """config/gateway.toml: ``sms.short_code`` is "the number citizens send to, quoted in the
    replies as it is". A citizen who files on the web form is told on the receipt to follow the
    report by sending "CEK <id>" by SMS, to the configured number: on a deployment whose short
    code is not 1708, 1708 would not lead to this gateway."""
    gateway = bootstrap.build(web_settings(with_section(settings, "sms", short_code="17085")))
    try:
        client = await aiohttp_client(bootstrap.build_app(gateway))
        page = await client.get("/")
        fields = {
            "csrf": csrf_token(await page.text()), "judul": "Jalan berlubang",
            "isi": "Jalan Siliwangi depan pasar berlubang besar.", "klasifikasi": "pengaduan",
            "nama": "Siti Aminah", "hp": "081234567890",
        }
        resp = await client.post("/", data=fields)
        html = await resp.text()
        assert resp.status == 200 and 'id="tracking-id"' in html
        assert "ke 17085" in html and "1708." not in html
        discovery = await (await client.get(f"{V2}/discovery.json")).json()
        assert "SMS 17085" in discovery["contact"]
    finally:
        await gateway.close()


async def test_answers_chosen_by_accept_language_say_so_in_vary(
    settings: Settings, aiohttp_client: Client
) -> None:
    """The API's problem documents and Open311's errors are Indonesian or English by the
    client's Accept-Language. RFC 9110 section 12.5.5: a server whose choice of representation
    depends on a request header SHOULD name it in ``Vary``: a 404 is cacheable by default, and
    behind a caching proxy or CDN a partner asking in English would be served the Indonesian
    answer cached for someone else (and the other way round)."""
    gateway = bootstrap.build(web_settings(settings))
    try:
        client = await aiohttp_client(bootstrap.build_app(gateway))
        for path in (f"{API}/ABCDEFGH2", f"{V2}/requests/ABCDEFGH2.json"):
            english = await client.get(path, headers={"Accept-Language": "en"})
            indonesian = await client.get(path)
            assert english.status == indonesian.status == 404
            assert await english.text() != await indonesian.text()  # chosen by the header
            vary = english.headers.get("Vary", "")
            assert "accept-language" in vary.lower(), f"{path}: Vary is {vary!r}"
    finally:
        await gateway.close()
