"""Information added to a report from the web: the follow-up code the receipt gives with the
tracking ID, the API's ``POST /api/v1/complaints/{tracking_id}/followups`` and the ``/tambah``
page, on both databases and the real RabbitMQ: a ``followup`` event of the complaint for the
holder of the ID and its code; anyone else is answered as for an unknown ID and files nothing."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import FormData
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from gateway import bootstrap, tracking
from gateway.settings import Settings
from gateway.storage.schema import complaints
from tests.channels.web.conftest import NIK, csrf_token, web_settings
from tests.support import drain, phone_photo

Client = Callable[..., Awaitable[TestClient[Any, Any]]]
CODE = re.compile(r'id="followup-code">([^<]+)<')
TID = re.compile(r'id="tracking-id">([^<]+)<')
REPORT = {
    "title": "Jalan berlubang",
    "body": "Jalan Siliwangi depan pasar berlubang besar.",
    "reporter": {"nik": NIK, "phone": "0812 3456 7890"},
    "agency": "Dinas PUPR",
}
NEWS = "Lubangnya makin besar, kemarin dua motor jatuh."


async def publish(gw: bootstrap.Gateway) -> None:
    assert gw.relay is not None
    await gw.relay.publish_batch()
    await gw.relay._close()


async def events(gw: bootstrap.Gateway, settings: Settings, n: int) -> list[dict[str, Any]]:
    await publish(gw)
    return [json.loads(m.body) for m in await drain(settings.broker.queue, n)]


async def filed(client: TestClient[Any, Any], **headers: str) -> dict[str, Any]:
    """REPORT through the API: its 202 answer (tracking ID, follow-up code)."""
    resp = await client.post("/api/v1/complaints", json=REPORT, headers=headers)
    assert resp.status == 202, await resp.text()
    receipt: dict[str, Any] = await resp.json()
    return receipt


async def test_the_api_gives_a_code_with_the_id_and_adds_what_its_holder_sends(
    gw: bootstrap.Gateway, aiohttp_client: Client, settings: Settings
) -> None:
    client = await aiohttp_client(bootstrap.build_app(gw))
    receipt = await filed(client)
    tid, code = receipt["tracking_id"], receipt["followup_code"]
    assert re.fullmatch(r"[2-9A-HJKMNP-TV-Z]{4}-[2-9A-HJKMNP-TV-Z]{4}", code), code
    assert receipt["status"] == "accepted"
    # The code as a citizen may type it: lower case, spaces, no dash.
    typed = code.lower().replace("-", " ")
    resp = await client.post(
        f"/api/v1/complaints/{tracking.display(tid).lower()}/followups",
        json={"body": NEWS, "followup_code": typed, "privacy": {"confidential": True}},
    )
    added = await resp.json()
    assert resp.status == 202, added
    assert added["status"] == "followup" and added["tracking_id"] == tid
    assert added["followup_code"] == code
    assert await gw.intake.count_complaints() == 1

    created, followup = await events(gw, settings, 2)
    assert created["event"] == "created" and followup["event"] == "followup"
    assert followup["tracking_id"] == tid and followup["complaint_id"] == created["complaint_id"]
    assert followup["duplicate_of"] is None and followup["channel"] == "web"
    assert followup["body"] == NEWS
    assert followup["privacy"]["confidential"] is True
    # The code is the holder's alone: never in what the routing core reads.
    for event in (created, followup):
        flat = json.dumps(event)
        assert code not in flat and code.replace("-", "") not in flat
    # The follow-up asked confidentiality: the complaint is confidential from now on.
    async with gw.engine.connect() as conn:
        row = (await conn.execute(select(complaints).where(complaints.c.tracking_id == tid))).one()
    assert row.confidential


async def test_a_wrong_code_answers_like_an_unknown_id_and_files_nothing(
    gw: bootstrap.Gateway, aiohttp_client: Client, settings: Settings
) -> None:
    client = await aiohttp_client(bootstrap.build_app(gw))
    receipt = await filed(client)
    tid, code = receipt["tracking_id"], receipt["followup_code"]
    other = tracking.new_tracking_id()
    answers = []
    for target, typed in (
        (tid, "2222-2222"),  # the right ID, a wrong code
        (other, code),  # another ID (unknown), this ID's code
        (other, gw.intake.followup_code(other)),  # the right code of an ID never filed
        ("K7QM-4XRT8", code),  # a wrong check symbol
    ):
        resp = await client.post(
            f"/api/v1/complaints/{target}/followups",
            json={"body": NEWS, "followup_code": typed},
            headers={"Accept-Language": "en"},
        )
        answers.append((resp.status, resp.content_type, (await resp.json()).get("detail")))
    assert answers[:2] == [answers[0]] * 2 and answers[3] == answers[0]
    assert answers[0] == (404, "application/problem+json",
                          "Tracking ID not found, or wrong follow-up code.")
    # An ID with its right code but no complaint behind it: later (a report in quarantine).
    assert answers[2][:2] == (409, "application/problem+json")
    assert await gw.intake.count_complaints() == 1
    await events(gw, settings, 1)


async def test_wrong_codes_count_against_the_address_limit(
    settings: Settings, aiohttp_client: Client
) -> None:
    gw = bootstrap.build(web_settings(settings, rate_limit_requests=3))
    try:
        client = await aiohttp_client(bootstrap.build_app(gw))
        tid = (await filed(client))["tracking_id"]
        statuses = []
        for guess in ("AAAA-AAAA", "BBBB-BBBB", "CCCC-CCCC"):
            resp = await client.post(
                f"/api/v1/complaints/{tid}/followups",
                json={"body": NEWS, "followup_code": guess},
            )
            statuses.append(resp.status)
            retry = resp.headers.get("Retry-After")
        assert statuses == [404, 404, 429] and retry is not None and int(retry) > 0
    finally:
        await gw.close()


async def test_a_followup_sent_again_with_its_key_is_answered_once(
    gw: bootstrap.Gateway, aiohttp_client: Client, settings: Settings
) -> None:
    client = await aiohttp_client(bootstrap.build_app(gw))
    first = await filed(client)
    second = await filed(client)  # the same person, another complaint (a duplicate or not)
    body = {"body": NEWS, "followup_code": first["followup_code"]}
    key = {"Idempotency-Key": "tambah-1"}
    url = f"/api/v1/complaints/{first['tracking_id']}/followups"
    answers = [await client.post(url, json=body, headers=key) for _ in range(2)]
    assert [a.status for a in answers] == [202, 202]
    assert (await answers[0].json()) == (await answers[1].json())
    # Another body with the same key is refused; the same key about another complaint is
    # that complaint's (a key is scoped by the complaint followed).
    changed = await client.post(url, json={**body, "body": NEWS + " Lagi."}, headers=key)
    assert changed.status == 422, await changed.text()
    other = await client.post(
        f"/api/v1/complaints/{second['tracking_id']}/followups",
        json={"body": NEWS, "followup_code": second["followup_code"]},
        headers=key,
    )
    assert other.status == 202 and (await other.json())["tracking_id"] == second["tracking_id"]
    published = await events(gw, settings, 4)
    assert [e["event"] for e in published].count("followup") == 2


async def test_a_followup_brings_photos(
    gw: bootstrap.Gateway, aiohttp_client: Client, settings: Settings
) -> None:
    client = await aiohttp_client(bootstrap.build_app(gw))
    receipt = await filed(client)
    photo = phone_photo()
    data = FormData()
    data.add_field(
        "followup",
        json.dumps({"body": NEWS, "followup_code": receipt["followup_code"]}),
        content_type="application/json",
    )
    data.add_field("attachments", photo, filename="lubang.jpg", content_type="image/jpeg")
    resp = await client.post(f"/api/v1/complaints/{receipt['tracking_id']}/followups", data=data)
    assert resp.status == 202, await resp.text()
    # A complaint's part name is not a follow-up's: said, not taken for an empty body.
    wrong = FormData()
    wrong.add_field("complaint", json.dumps({"body": NEWS}), content_type="application/json")
    refused = await client.post(
        f"/api/v1/complaints/{receipt['tracking_id']}/followups", data=wrong
    )
    assert refused.status == 400 and "'followup'" in (await refused.json())["detail"]
    _, followup = await events(gw, settings, 2)
    [att] = followup["attachments"]
    assert att["filename"] == "lubang.jpg" and att["media_type"] == "image/jpeg"
    assert await gw.files.read(att["sha256"]) == photo


async def test_unknown_fields_of_a_followup_are_refused(
    gw: bootstrap.Gateway, aiohttp_client: Client
) -> None:
    client = await aiohttp_client(bootstrap.build_app(gw))
    receipt = await filed(client)
    url = f"/api/v1/complaints/{receipt['tracking_id']}/followups"
    for body, said in (
        ({"body": NEWS, "followup_code": receipt["followup_code"], "kind": "aspirasi"},
         "kolom tidak dikenal: kind"),
        ({"body": NEWS}, "followup_code wajib diisi"),
        ({"body": " ", "followup_code": receipt["followup_code"]}, "body wajib diisi"),
    ):
        resp = await client.post(url, json=body)
        assert resp.status == 400 and said in (await resp.json())["detail"]
    assert await gw.intake.count_complaints() == 1


async def test_the_form_receipt_gives_the_code_and_the_page_adds_to_the_report(
    gw: bootstrap.Gateway, aiohttp_client: Client, settings: Settings
) -> None:
    client = await aiohttp_client(bootstrap.build_app(gw))
    html = await (await client.get("/")).text()
    form = FormData()
    for name, value in (
        ("csrf", csrf_token(html)), ("judul", "Jalan berlubang"),
        ("isi", "Jalan Siliwangi depan pasar berlubang besar."), ("klasifikasi", "pengaduan"),
        ("nama", "Siti Aminah"), ("nik", NIK), ("hp", "0812 3456 7890"),
    ):
        form.add_field(name, value)
    receipt = await (await client.post("/", data=form)).text()
    shown, code = TID.search(receipt), CODE.search(receipt)
    assert shown and code, receipt
    assert f'href="/tambah?id={shown.group(1)}"' in receipt and "Jangan berikan" in receipt

    # The status page of the report leads there too (the receipt may be long closed).
    cek = await (await client.get("/cek", params={"id": shown.group(1)})).text()
    assert f'href="/tambah?id={shown.group(1)}"' in cek
    page = await client.get("/tambah", params={"id": shown.group(1)})
    html = await page.text()
    assert page.status == 200 and f'value="{shown.group(1)}"' in html
    fields = {"csrf": csrf_token(html), "nomor": shown.group(1), "kode": "2222-2222",
              "tambahan": NEWS}
    wrong = await client.post("/tambah", data=fields)
    again = await wrong.text()
    assert wrong.status == 422 and 'id="kode-err"' in again and "tidak cocok" in again
    assert NEWS in again and f'value="{shown.group(1)}"' in again  # what was typed is kept
    right = {**fields, "csrf": csrf_token(again), "kode": code.group(1)}
    answers = [await client.post("/tambah", data=right) for _ in range(2)]  # a double tap
    texts = [await a.text() for a in answers]
    assert [a.status for a in answers] == [200, 200] and "ditambahkan" in texts[0]
    assert TID.search(texts[0]).group(1) == TID.search(texts[1]).group(1) == shown.group(1)  # type: ignore[union-attr]
    created, followup = await events(gw, settings, 2)
    assert followup["event"] == "followup" and followup["tracking_id"] == created["tracking_id"]
    assert followup["body"] == NEWS and followup["privacy"]["confidential"] is False


async def test_the_page_refuses_a_post_without_its_token_and_keeps_the_text(
    gw: bootstrap.Gateway, aiohttp_client: Client
) -> None:
    client = await aiohttp_client(bootstrap.build_app(gw))
    await client.get("/tambah")  # the cookie
    resp = await client.post(
        "/tambah?lang=en",
        data={"csrf": "forged", "nomor": "K7QM-4XRT9", "kode": "x", "tambahan": NEWS},
    )
    html = await resp.text()
    assert resp.status == 403 and NEWS in html and 'lang="en"' in html
    empty = await client.post("/tambah", data={"csrf": csrf_token(html)})
    text = await empty.text()
    assert empty.status == 422
    for name in ("nomor", "kode", "tambahan"):
        assert f'id="{name}-err"' in text


async def test_the_page_changes_language_keeping_what_was_typed(
    gw: bootstrap.Gateway, aiohttp_client: Client
) -> None:
    client = await aiohttp_client(bootstrap.build_app(gw))
    html = await (await client.get("/tambah", params={"id": "K7QM-4XRTX"})).text()
    assert 'formaction="/tambah?lang=en&amp;ganti_bahasa=1"' in html
    typed = {"csrf": csrf_token(html), "nomor": "K7QM-4XRTX", "kode": "ABCD-EFGH",
             "tambahan": NEWS, "rahasia": "1"}
    for url, switch in (("/tambah?lang=en&ganti_bahasa=1", "en"), ("/tambah", "en")):
        # The button's formaction, and a browser that ignored it (the field alone).
        resp = await client.post(url, data={**typed, "ganti_bahasa": switch})
        page = await resp.text()
        assert resp.status == 200 and '<html lang="en">' in page and "Follow-up code" in page
        assert NEWS in page and 'value="ABCD-EFGH"' in page and "checked" in page
    assert await gw.intake.count_complaints() == 0
