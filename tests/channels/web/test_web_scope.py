"""Who a request's effects belong to: an Idempotency-Key's scope, what a request refused by its
CSRF check costs the citizens sharing its address, which address Open311 discovery names."""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gateway import bootstrap
from gateway.settings import Settings
from tests.channels.web.conftest import NIK, OPEN311_KEY, csrf_token, web_settings
from tests.channels.web.test_web_http import FORM, TID, form_data
from tests.support import opened_complaints, phone_photo

pytestmark = pytest.mark.integration

Client = Callable[..., Awaitable[TestClient[Any, Any]]]
API = "/api/v1/complaints"
PROXY = (ipaddress.ip_network("127.0.0.1/32"),)


async def test_an_idempotency_key_belongs_to_the_reporter_who_sent_it(
    settings: Settings, aiohttp_client: Client
) -> None:
    # The key was global: a second application that picked the same key (a counter, "1") had
    # its citizen's complaint refused with 422, or got the first one's tracking ID.
    gateway = bootstrap.build(web_settings(settings, trusted_proxies=PROXY))
    try:
        client = await aiohttp_client(bootstrap.build_app(gateway))

        async def post(body: dict[str, Any], ip: str) -> Any:
            return await client.post(API, json=body, headers={
                "Idempotency-Key": "1", "X-Forwarded-For": ip})

        siti = {"body": "Lampu jalan mati", "reporter": {"phone": "0812-3456-7890"}}
        budi = {"body": "Sampah di pasar", "reporter": {"nik": NIK}}
        first = await post(siti, "198.51.100.1")
        other = await post(budi, "198.51.100.1")  # same address, same key, another person
        assert (first.status, other.status) == (202, 202), await other.text()
        one, two = (await first.json())["tracking_id"], (await other.json())["tracking_id"]
        assert one != two
        # A retry of Siti's request after her phone changed networks is still the same request.
        retry = await post(siti, "198.51.100.9")
        assert retry.status == 202 and (await retry.json())["tracking_id"] == one
        # Without an identity, the client's address is all there is to tell callers apart.
        anon_a = await post({"body": "Jembatan retak"}, "198.51.100.2")
        anon_b = await post({"body": "Air PDAM keruh"}, "198.51.100.3")
        assert (anon_a.status, anon_b.status) == (202, 202)
        assert (await anon_a.json())["tracking_id"] != (await anon_b.json())["tracking_id"]
        again = await post({"body": "Jembatan retak"}, "198.51.100.2")
        assert (await again.json())["tracking_id"] == (await anon_a.json())["tracking_id"]
        # Within one scope the key still guards against a client's mistake.
        clash = await post({**siti, "body": "Lain"}, "198.51.100.1")
        assert clash.status == 422 and "berbeda" in (await clash.json())["detail"]
        assert await gateway.intake.count_complaints() == 4
        # The scope is a keyed hash: no identity in clear in the stored provider id.
        async with gateway.engine.connect() as conn:
            ids = [r[0] for r in await conn.exec_driver_sql(
                "SELECT provider_message_id FROM raw_inbound")]
        assert not any("3456" in i or NIK in i or "198.51" in i for i in ids)
    finally:
        await gateway.close()


async def test_a_form_post_without_its_cookie_costs_no_rate_limit(
    settings: Settings, aiohttp_client: Client
) -> None:
    # Another site can make its visitors' browsers post to the form; SameSite=Lax keeps the
    # cookie out of such a post, so its CSRF check cannot pass. It was counted against the
    # address first: a page could use up the limit of everyone behind a school's or an
    # operator's shared address.
    gateway = bootstrap.build(
        web_settings(settings, rate_limit_requests=1, rate_limit_window=3600)
    )
    try:
        client = await aiohttp_client(bootstrap.build_app(gateway))
        photo = phone_photo()
        for _ in range(3):
            client.session.cookie_jar.clear()
            forged = await client.post(
                "/", data=form_data("1.AAAA.AAAA", FORM, [("jalan.jpg", photo)])
            )
            html = await forged.text()
            assert forged.status == 403 and "kedaluwarsa" in html.lower()
            # A citizen whose cookie was lost keeps what was typed, and is told to choose the
            # photo again (it was not stored: a request not counted stores nothing).
            assert 'value="Siti Aminah"' in html and "jalan.jpg" in html
        async with gateway.engine.connect() as conn:
            counted = (await conn.exec_driver_sql("SELECT count(*) FROM web_rate_limits")).scalar()
            raws = (await conn.exec_driver_sql("SELECT count(*) FROM raw_inbound")).scalar()
        assert counted == 0 and raws == 0
        # The citizen of that address can still send the one report the limit allows.
        token = csrf_token(await (await client.get("/")).text())
        sent = await client.post("/", data=form_data(token, FORM))
        assert sent.status == 200 and TID.search(await sent.text())
        assert await gateway.intake.count_complaints() == 1
    finally:
        await gateway.close()


async def test_discovery_does_not_name_a_host_the_client_made_up(
    gw: bootstrap.Gateway, aiohttp_client: Client
) -> None:
    # The Host header went into the endpoint's URL as sent: a path, a query, markup.
    client = await aiohttp_client(bootstrap.build_app(gw))
    for host in ('evil.example/x?<a href="y">', "a b", ""):
        resp = await client.get("/open311/v2/discovery.json", headers={"Host": host})
        [endpoint] = (await resp.json())["endpoints"]
        assert resp.status == 200
        assert endpoint["url"] == f"http://{client.host}:{client.port}/open311/v2", host


async def test_discovery_names_the_configured_public_address(
    settings: Settings, aiohttp_client: Client
) -> None:
    # Neither the client's Host nor a trusted proxy's X-Forwarded-Host: the address the
    # operator gave (web.public_base_url), the one partners must be sent to.
    gateway = bootstrap.build(web_settings(
        settings, trusted_proxies=PROXY, public_base_url="https://lapor.example.go.id"))
    try:
        client = await aiohttp_client(bootstrap.build_app(gateway))
        for fmt in ("json", "xml"):
            resp = await client.get(f"/open311/v2/discovery.{fmt}", headers={
                "Host": "evil.example", "X-Forwarded-Host": "evil.example"})
            assert resp.status == 200
            assert "https://lapor.example.go.id/open311/v2<" in (await resp.text()).replace(
                '"', "<"), fmt
            assert "evil" not in await resp.text()
    finally:
        await gateway.close()


async def test_a_nul_character_is_refused_naming_its_field_never_taken_and_quarantined(
    gw: bootstrap.Gateway, aiohttp_client: Client
) -> None:
    # JSON and form encoding carry U+0000 ("\u0000", "%00"); PostgreSQL's text columns cannot
    # hold it. A NUL in the API's title or agency, or in Open311's attribute[judul], was answered
    # 202/200 while the message went to quarantine: the partner was told it was filed.
    client = await aiohttp_client(bootstrap.build_app(gw))
    en = {"Accept-Language": "en"}
    for body, field in (
        ({"body": "Jalan rusak", "title": "Jalan\u0000"}, "title"),
        ({"body": "Jalan rusak", "agency": "Dinas PU\u0000"}, "agency"),
        ({"body": "Jalan\u0000 rusak"}, "body"),
        ({"body": "Jalan rusak", "reporter": {"name": "Siti\u0000"}}, "reporter.name"),
    ):
        resp = await client.post(API, json=body, headers=en)
        problem = await resp.json()
        assert resp.status == 400, (field, problem)
        assert problem["detail"].startswith(f"{field} ") and "NUL" in problem["detail"]
    for extra, field in (
        ({"attribute[judul]": "Jalan\x00"}, "attribute[judul]"),
        ({"description": "Jalan\x00 rusak"}, "description"),
        ({"first_name": "Siti\x00"}, "first_name"),
    ):
        params = {"api_key": OPEN311_KEY, "service_code": "pengaduan", "lat": "-6.7",
                  "long": "108.5", "description": "Jalan rusak", **extra}
        resp = await client.post("/open311/v2/requests.json", data=params, headers=en)
        [error] = await resp.json()
        assert resp.status == 400 and error["description"].startswith(field), (field, error)
    token = csrf_token(await (await client.get("/")).text())
    resp = await client.post("/", data=form_data(token, {**FORM, "judul": "Jalan\x00"}))
    html = await resp.text()
    assert resp.status == 422 and 'id="judul-err"' in html
    assert await gw.intake.count_complaints() == 0
    async with gw.engine.connect() as conn:
        assert (await conn.exec_driver_sql("SELECT count(*) FROM raw_inbound")).scalar() == 0


@pytest.mark.parametrize("control", ["\x01", "\x1b", "\x0b", "\x1f"])
async def test_a_c0_control_character_is_refused_naming_its_field(
    gw: bootstrap.Gateway, aiohttp_client: Client, control: str
) -> None:
    # "\u001b" (ESC) and the other C0 controls were accepted and stored as they were, to reach
    # the staff's terminals and exports: refused like NUL, naming the field and the character.
    # Tab, line feed and carriage return are text.
    client = await aiohttp_client(bootstrap.build_app(gw))
    en = {"Accept-Language": "en"}
    point = f"U+{ord(control):04X}"
    for body, field in (
        ({"body": f"Jalan{control} rusak"}, "body"),
        ({"body": "Jalan rusak", "title": f"Jalan{control}"}, "title"),
        ({"body": "Jalan rusak", "reporter": {"name": f"Siti{control}"}}, "reporter.name"),
        ({"body": "Jalan rusak", "location": {"text": f"Pasar{control}"}}, "location.text"),
    ):
        resp = await client.post(API, json=body, headers=en)
        problem = await resp.json()
        assert resp.status == 400, (field, problem)
        assert problem["detail"] == f"{field} contains a control character {point}", problem
        indonesian = (await (await client.post(API, json=body)).json())["detail"]
        assert indonesian.startswith(f"{field} berisi karakter kontrol {point} / "), indonesian
    for extra, field in (
        ({"attribute[judul]": f"Jalan{control}"}, "attribute[judul]"),
        ({"description": f"Jalan{control} rusak"}, "description"),
        ({"first_name": f"Siti{control}"}, "first_name"),
    ):
        params = {"api_key": OPEN311_KEY, "service_code": "pengaduan", "lat": "-6.7",
                  "long": "108.5", "description": "Jalan rusak", **extra}
        resp = await client.post("/open311/v2/requests.json", data=params, headers=en)
        [error] = await resp.json()
        assert resp.status == 400 and error["description"].startswith(field), (field, error)
        assert point in error["description"], error
    token = csrf_token(await (await client.get("/")).text())
    resp = await client.post("/", data=form_data(token, {**FORM, "isi": f"Jalan{control} rusak"}))
    html = await resp.text()
    if control == "\x0b":  # a line break pasted from an office program: see the test below
        assert resp.status == 200 and TID.search(html), html
        assert await gw.intake.count_complaints() == 1
        return
    assert resp.status == 422 and 'id="isi-err"' in html and point in html
    assert await gw.intake.count_complaints() == 0
    async with gw.engine.connect() as conn:
        assert (await conn.exec_driver_sql("SELECT count(*) FROM raw_inbound")).scalar() == 0


async def test_tab_newline_and_carriage_return_stay_text(
    gw: bootstrap.Gateway, aiohttp_client: Client
) -> None:
    client = await aiohttp_client(bootstrap.build_app(gw))
    resp = await client.post(API, json={"body": "Jalan\trusak\r\nsejak\nSenin"})
    assert resp.status == 202, await resp.text()


async def test_a_line_break_pasted_as_a_vertical_tab_is_a_line_break_in_the_form(
    gw: bootstrap.Gateway, aiohttp_client: Client
) -> None:
    # PowerPoint's and Word's manual line breaks reach the clipboard as U+000B or U+000C: a
    # citizen pasting a prepared text would be told of a character they cannot see.
    client = await aiohttp_client(bootstrap.build_app(gw))
    token = csrf_token(await (await client.get("/")).text())
    text = "Jalan rusak di depan pasar\x0bsejak hari Senin\x0cmohon segera diperbaiki"
    resp = await client.post("/", data=form_data(token, {**FORM, "isi": text}))
    assert resp.status == 200 and TID.search(await resp.text())
    [complaint] = await opened_complaints(gw.engine, gw.keys)
    assert complaint.body == "Jalan rusak di depan pasar\nsejak hari Senin\nmohon segera diperbaiki"
