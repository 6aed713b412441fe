"""Web and API follow-ups at their edges: bodies /tambah cannot read, posts from other sites,
a double tap over the limit, an app retrying from another network, text pasted from an office
program, a report still in quarantine, the receipt read in the other language, a citizen who
reported by SMS; and the code never logged."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient

from gateway import bootstrap, tracking
from gateway.settings import Settings
from tests.channels.web.conftest import NIK, csrf_token, web_settings
from tests.channels.web.test_web_followups import NEWS, REPORT, filed
from tests.support import opened_events

Client = Callable[..., Awaitable[TestClient[Any, Any]]]


async def published(gw: bootstrap.Gateway) -> list[dict[str, Any]]:
    return [json.loads(e) for e in await opened_events(gw.engine, gw.keys)]


async def page_token(client: TestClient[Any, Any]) -> str:
    """The /tambah page's CSRF token (and its cookie, kept by the client)."""
    return csrf_token(await (await client.get("/tambah")).text())


# ---- /tambah: bodies the page cannot read ---------------------------------------------------


@pytest.mark.parametrize(
    "case",
    ["file-part", "octet-stream-part", "unknown-charset", "utf7-surrogate"],
)
async def test_tambah_answers_an_unreadable_post_with_its_page_not_a_500(
    gw: bootstrap.Gateway, aiohttp_client: Client, case: str
) -> None:
    """A post to /tambah the page cannot read (a file where text belongs, a part that is not
    text, an unknown charset, UTF-7's lone surrogates) gets the page back with a message, as
    the citizen form does: never a 500, nothing filed."""
    client = await aiohttp_client(bootstrap.build_app(gw))
    receipt = await filed(client)
    tid, code = receipt["tracking_id"], receipt["followup_code"]
    token = await page_token(client)
    if case == "file-part":
        form = FormData()
        form.add_field("csrf", token)
        form.add_field("nomor", tid.encode(), filename="nomor.txt", content_type="text/plain")
        form.add_field("kode", code)
        form.add_field("tambahan", NEWS)
        resp = await client.post("/tambah", data=form)
    elif case == "octet-stream-part":
        form = FormData()
        form.add_field("csrf", token)
        form.add_field("nomor", tid)
        form.add_field("kode", code)
        form.add_field("tambahan", io.BytesIO(NEWS.encode()), content_type="application/octet-stream")
        resp = await client.post("/tambah", data=form)
    elif case == "unknown-charset":
        body = f"csrf={token}&nomor={tid}&kode={code}&tambahan=ok"
        resp = await client.post(
            "/tambah", data=body.encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded; charset=x-nope"},
        )
    else:  # "+2AA-" is U+D800 in UTF-7: a lone surrogate, no Unicode text
        body = f"csrf={token}&nomor={tid}&kode={code}&tambahan=+2AA-"
        resp = await client.post(
            "/tambah", data=body.encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-7"},
        )
    text = await resp.text()
    assert resp.status < 500, (resp.status, text[:300])
    assert await gw.intake.count_complaints() == 1


async def test_cross_site_posts_to_tambah_do_not_use_up_the_address_limit(
    settings: Settings, aiohttp_client: Client
) -> None:
    """Another site's page can make a visitor's browser post to /tambah, without the page's
    cookie (SameSite=Lax): such a post can never pass the CSRF check, and is refused before it
    is counted, or it would use up the limit of everyone sharing the address (a school, an
    operator's NAT), whose real complaints would then be refused 429."""
    gw = bootstrap.build(web_settings(settings, rate_limit_requests=3))
    try:
        client = await aiohttp_client(bootstrap.build_app(gw))
        # The hostile page's posts: no cookie (a fresh client, no GET first).
        forged = await aiohttp_client(bootstrap.build_app(gw))
        for _ in range(3):
            resp = await forged.post("/tambah", data={"csrf": "x", "nomor": "K7QM-4XRT9",
                                                      "kode": "AAAA-AAAA", "tambahan": "spam"})
            assert resp.status in (403, 429)
        # The citizen sharing the address fills in the complaint form.
        html = await (await client.get("/")).text()
        form = {
            "csrf": csrf_token(html), "judul": "Jalan berlubang",
            "isi": "Jalan Siliwangi depan pasar berlubang besar.", "klasifikasi": "pengaduan",
            "nama": "Siti Aminah", "nik": NIK, "hp": "0812 3456 7890",
        }
        resp = await client.post("/", data=form)
        assert resp.status == 200, (resp.status, (await resp.text())[:300])
    finally:
        await gw.close()


async def test_tambah_says_a_too_long_code_is_wrong_next_to_the_code(
    gw: bootstrap.Gateway, aiohttp_client: Client
) -> None:
    """A citizen who pastes the receipt's whole line ("Kode tambahan: ABCD-EFGH") into the code
    field is told so next to the code field, in the page's words; the text they wrote is not
    flagged."""
    client = await aiohttp_client(bootstrap.build_app(gw))
    receipt = await filed(client)
    token = await page_token(client)
    resp = await client.post("/tambah", data={
        "csrf": token, "nomor": tracking.display(receipt["tracking_id"]),
        "kode": f"Kode tambahan: {receipt['followup_code']}", "tambahan": NEWS,
    })
    html = await resp.text()
    assert resp.status == 422
    assert 'id="kode-err"' in html and 'id="tambahan-err"' not in html, html
    assert "followup_code" not in html


async def test_tambah_over_client_max_size_gives_the_page_back_not_a_bare_413(
    settings: Settings, aiohttp_client: Client
) -> None:
    """A text over ``http.client_max_size`` is answered with the page and a message (413,
    HTML), not aiohttp's bare text: the citizen can shorten it and send again."""
    from tests.support import with_section

    gw = bootstrap.build(with_section(web_settings(settings), "http", client_max_size=4096))
    try:
        client = await aiohttp_client(bootstrap.build_app(gw))
        receipt = await filed(client)
        token = await page_token(client)
        resp = await client.post("/tambah", data={
            "csrf": token, "nomor": receipt["tracking_id"], "kode": receipt["followup_code"],
            "tambahan": "Lubangnya makin besar. " * 300,
        })
        text = await resp.text()
        assert resp.status == 413
        assert resp.content_type == "text/html" and 'name="csrf"' in text, text[:200]
    finally:
        await gw.close()


async def test_a_followup_retried_from_another_network_with_its_key_is_added_once(
    settings: Settings, aiohttp_client: Client
) -> None:
    """An app's follow-up, its answer lost as the phone moves from Wi-Fi to mobile data, sent
    again with the same Idempotency-Key from another address, is added once: a follow-up's key
    is scoped by the complaint it adds to (whose code it carries), not by the address."""
    gw = bootstrap.build(web_settings(settings, trusted_proxies=["127.0.0.1/32"]))
    try:
        client = await aiohttp_client(bootstrap.build_app(gw))
        receipt = await filed(client, **{"X-Forwarded-For": "203.0.113.7"})
        url = f"/api/v1/complaints/{receipt['tracking_id']}/followups"
        body = {"body": NEWS, "followup_code": receipt["followup_code"]}
        answers = []
        for address in ("203.0.113.7", "198.51.100.9"):  # Wi-Fi, then mobile data
            resp = await client.post(url, json=body, headers={
                "Idempotency-Key": "followup-7f3a", "X-Forwarded-For": address,
            })
            assert resp.status == 202, await resp.text()
            answers.append(await resp.json())
        assert answers[0] == answers[1]
        events = [e["event"] for e in await published(gw)]
        assert events.count("followup") == 1, events
    finally:
        await gw.close()


async def test_tambah_sent_again_over_the_limit_is_answered_added_and_added_once(
    settings: Settings, aiohttp_client: Client
) -> None:
    """A double tap (or the answer reloaded) when the address's limit is reached is answered as
    the first post was, "added", and adds nothing: not a 429 whose fresh token would add the
    same text a second time."""
    import asyncio

    gw = bootstrap.build(web_settings(settings, rate_limit_requests=2, rate_limit_window=1.0))
    try:
        client = await aiohttp_client(bootstrap.build_app(gw))
        receipt = await filed(client)  # 1 of 2
        fields = {"csrf": await page_token(client), "nomor": receipt["tracking_id"],
                  "kode": receipt["followup_code"], "tambahan": NEWS}
        first = await client.post("/tambah", data=fields)  # 2 of 2
        assert first.status == 200 and "ditambahkan" in await first.text()
        again = await client.post("/tambah", data=fields)  # the double tap
        html = await again.text()
        statuses = [again.status]
        if again.status == 429:
            await asyncio.sleep(1.2)  # "try again in a moment", with the page's fresh token
            retry = await client.post("/tambah", data={**fields, "csrf": csrf_token(html)})
            statuses.append(retry.status)
        events = [e["event"] for e in await published(gw)]
        assert (statuses, events.count("followup")) == ([200], 1)
    finally:
        await gw.close()


async def test_tambah_takes_a_text_pasted_from_an_office_program(
    gw: bootstrap.Gateway, aiohttp_client: Client
) -> None:
    """Text pasted from Word or PowerPoint, whose manual line breaks come as U+000B or U+000C,
    is taken with line breaks, as on the citizen form: never an error naming a character the
    citizen cannot see."""
    client = await aiohttp_client(bootstrap.build_app(gw))
    receipt = await filed(client)
    resp = await client.post("/tambah", data={
        "csrf": await page_token(client), "nomor": receipt["tracking_id"],
        "kode": receipt["followup_code"],
        "tambahan": "Lubangnya makin besar.\x0bKemarin dua motor jatuh.\x0cFoto menyusul.",
    })
    html = await resp.text()
    assert resp.status == 200 and "ditambahkan" in html, (resp.status, html[-600:])
    followup = [e for e in await published(gw) if e["event"] == "followup"]
    assert followup and followup[0]["body"] == (
        "Lubangnya makin besar.\nKemarin dua motor jatuh.\nFoto menyusul."
    )


async def test_a_followup_to_a_report_in_quarantine_waits_for_it(
    gw: bootstrap.Gateway, aiohttp_client: Client
) -> None:
    """A report that went to quarantine was told its tracking ID and code. A follow-up with
    them before an operator replays it is answered 409 with Retry-After and files nothing (not
    a complaint of its own, unrelated to the report); after the replay, the same follow-up is
    added to the report."""
    from datetime import UTC, datetime

    from channels.web import JSON_PARSER
    from gateway.domain import Channel, RawInbound
    from gateway.errors import ParseError

    client = await aiohttp_client(bootstrap.build_app(gw))
    report = {**REPORT, "body": "Lampu jalan Jl. Cipto mati sejak seminggu."}
    raw = RawInbound(
        channel=Channel.WEB, body=json.dumps(report).encode(), received_at=datetime.now(UTC),
        provider_message_id="uuid:quarantined-1", content_type="application/json",
        metadata={"remote": "127.0.0.1"},
    )
    held = await gw.intake.accept(raw, JSON_PARSER, ParseError("normalize-crash", "normalize"))
    assert held.status.value == "quarantined" and held.tracking_id is not None
    code = tracking.display_code(gw.intake.followup_code(held.tracking_id))
    url = f"/api/v1/complaints/{held.tracking_id}/followups"
    body = {"body": NEWS, "followup_code": code}

    early = await client.post(url, json=body)
    assert early.status == 409 and int(early.headers["Retry-After"]) > 0
    assert "masih diperiksa" in (await early.json())["detail"]
    assert await gw.intake.count_complaints() == 0
    page = await client.post("/tambah", data={
        "csrf": await page_token(client), "nomor": held.tracking_id, "kode": code,
        "tambahan": NEWS,
    })
    html = await page.text()
    assert page.status == 409 and "masih diperiksa" in html and NEWS in html

    [entry] = await gw.intake.list_quarantine()
    await gw.intake.replay(entry["id"], gw.parsers)
    later = await client.post(url, json=body)
    assert later.status == 202 and (await later.json())["status"] == "followup"
    events = await published(gw)
    about_news = [e for e in events if e["body"] == NEWS]
    report_events = [e for e in events if e["body"] == report["body"]]
    assert len(about_news) == 1 and len(report_events) == 1
    assert about_news[0]["complaint_id"] == report_events[0]["complaint_id"]


async def test_the_receipts_language_switch_keeps_the_followup_code(
    gw: bootstrap.Gateway, aiohttp_client: Client
) -> None:
    """The form's receipt is the only page that shows the follow-up code (a post answer, not
    stored, kept out of /cek). Its language switch posts the form's token back and shows the
    same receipt, code included, in the other language; another browser (without the form's
    cookie) or a forged token gets the status page, no code."""
    import re

    client = await aiohttp_client(bootstrap.build_app(gw))
    html = await (await client.get("/")).text()
    form = {
        "csrf": csrf_token(html), "judul": "Jalan berlubang",
        "isi": "Jalan Siliwangi depan pasar berlubang besar.", "klasifikasi": "pengaduan",
        "nama": "Siti Aminah", "nik": NIK, "hp": "0812 3456 7890",
    }
    receipt = await (await client.post("/", data=form)).text()
    code = re.search(r'id="followup-code">([^<]+)<', receipt)
    switch = re.search(r'<form method="post" action="([^"]+)"><input type="hidden" '
                       r'name="csrf" value="([^"]+)">', receipt)
    assert code and switch, receipt
    assert 'href="#ganti-bahasa"' in receipt  # the header's link leads to the button
    action = switch.group(1).replace("&amp;", "&")
    english = await client.post(action, data={"csrf": switch.group(2)})
    text = await english.text()
    assert english.status == 200 and '<html lang="en">' in text and code.group(1) in text
    back = await client.post("/tanda-terima", data={"csrf": switch.group(2)})
    assert code.group(1) in await back.text() and '<html lang="id">' in await back.text()
    stranger = await aiohttp_client(bootstrap.build_app(gw))
    for who, token in ((stranger, switch.group(2)), (client, "forged")):
        refused = await who.post(action, data={"csrf": token})
        assert refused.status == 403 and code.group(1) not in await refused.text()


async def test_the_page_tells_a_citizen_who_reported_by_sms_how_to_add(
    gw: bootstrap.Gateway, aiohttp_client: Client
) -> None:
    """/cek links every report found to /tambah, but only web, API and letter receipts give a
    code. The page says that a report sent by SMS or from an account is added to by a message
    naming its ID from the same number or account, with the short code to text."""
    client = await aiohttp_client(bootstrap.build_app(gw))
    for lang, said in (("id", "Tidak perlu kode"), ("en", "No code needed")):
        html = await (await client.get("/tambah", params={"lang": lang})).text()
        assert said in html and "1708" in html and "Laporan K7QM-4XRTX" in html


# ---- the code in logs -----------------------------------------------------------------------


async def test_pin_the_followup_code_is_never_logged(
    gw: bootstrap.Gateway, aiohttp_client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    """Neither a right nor a wrong follow-up code reaches a log record (message or extra
    fields), through the API (JSON, a refused body) or /tambah."""
    caplog.set_level(logging.DEBUG)
    client = await aiohttp_client(bootstrap.build_app(gw))
    receipt = await filed(client)
    tid, code = receipt["tracking_id"], receipt["followup_code"]
    wrong = "2222-3333"
    url = f"/api/v1/complaints/{tid}/followups"
    for body in ({"body": NEWS, "followup_code": code},
                 {"body": NEWS, "followup_code": wrong},
                 {"body": NEWS, "followup_code": code, "kind": "aspirasi"}):
        await client.post(url, json=body)
    await client.post("/tambah", data={"csrf": await page_token(client), "nomor": tid,
                                       "kode": code.lower(), "tambahan": NEWS + " lagi"})
    await client.post("/tambah", data={"csrf": await page_token(client), "nomor": tid,
                                       "kode": wrong, "tambahan": NEWS})
    logged = " ".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert "followup" in logged or "added to the complaint" in logged  # records were captured
    for secret in (code, wrong):
        for form in (secret, secret.replace("-", ""), secret.lower()):
            assert form not in logged
