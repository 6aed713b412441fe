"""A letter brought to the counter about the citizen's earlier report.

The citizen shows the receipt or SMS with the tracking ID of their earlier report and their KTP;
the clerk types the ID ("No. lacak laporan sebelumnya") and ticks "NIK sesuai KTP". When that
report carries the NIK, the letter is added to it: a ``followup`` event of the report, the
receipt naming its ID. Without the KTP check, or for a report of someone else's NIK, the letter
is a report like any other. Through the staff pages, the intake and the SMS reply outbox.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pydantic import SecretStr

from channels.letter.auth import StaffStore
from channels.letter.parse import validate
from gateway import bootstrap, tracking
from gateway.domain import Channel
from gateway.settings import Settings
from tests.channels.letter.conftest import add_staff, login
from tests.channels.letter.test_routes import Client, ready_letter
from tests.integration.test_identity_dedup import NIK_A, NIK_B, PARSER, ROAD, msg
from tests.support import opened_events, validate_event

pytestmark = pytest.mark.integration

TID = re.compile(r'id="tracking-id">([^<]+)<')
NEWS = "Menindaklanjuti laporan saya, lubang di depan pasar makin besar dan dua motor jatuh."


@pytest.fixture
async def gw(letter_settings: Settings) -> AsyncIterator[bootstrap.Gateway]:
    sms = letter_settings.sms.model_copy(
        update={"kannel_sendsms_url": "http://127.0.0.1:9/cgi-bin/sendsms"}  # never reached here
    )
    web = letter_settings.web.model_copy(update={"csrf_key": SecretStr("k")})
    gateway = bootstrap.build(letter_settings.model_copy(update={"sms": sms, "web": web}))
    yield gateway
    await gateway.close()


@pytest.fixture
async def desk(gw: bootstrap.Gateway, aiohttp_client: Client) -> tuple[TestClient[Any, Any], str]:
    client = await aiohttp_client(bootstrap.build_app(gw))
    await add_staff(StaffStore(gw.engine, gw.settings.letter), "budi")
    return client, await login(client, "budi")


async def earlier_report(gw: bootstrap.Gateway, nik: str = NIK_A) -> tuple[str, str]:
    """Siti's report on the web form, with her NIK: (complaint id, tracking ID)."""
    first = await gw.intake.accept(
        msg(Channel.WEB, 0, body=ROAD, title="Jalan berlubang", nik=nik), PARSER
    )
    assert first.complaint_id is not None and first.tracking_id is not None
    return first.complaint_id, first.tracking_id


async def confirm(
    desk: tuple[TestClient[Any, Any], str], about: str, nik: str = NIK_A, checked: bool = True
) -> str:
    """A letter read, reviewed with ``about`` and confirmed: its receipt page."""
    client, token = desk
    review = await ready_letter(client, token)
    values = {
        "csrf": token, "sender_name": "Siti Aminah", "kind": "pengaduan", "nik": nik,
        "phone": "0812-3456-7890", "body": NEWS, "about": about, "action": "confirm",
    }
    if checked:
        values["nik_checked"] = "on"
    resp = await client.post(review, data=values)
    assert resp.status == 200, await resp.text()
    return await (await client.get(review + "/receipt")).text()


async def events(gw: bootstrap.Gateway) -> list[dict[str, Any]]:
    bodies = [json.loads(e) for e in await opened_events(gw.engine, gw.keys)]
    for body in bodies:
        validate_event(body)
    return bodies


def shown_id(receipt: str) -> str:
    found = TID.search(receipt)
    assert found is not None, receipt
    tid = tracking.normalize(found.group(1))
    assert tid is not None
    return tid


async def test_a_letter_naming_the_senders_report_is_added_to_it(
    gw: bootstrap.Gateway, desk: tuple[TestClient[Any, Any], str]
) -> None:
    cid, tid = await earlier_report(gw)
    receipt = await confirm(desk, tracking.display(tid))
    assert shown_id(receipt) == tid
    assert 'id="followup"' in receipt and "ditambahkan ke laporan Anda sebelumnya" in receipt
    created, followup = await events(gw)
    assert (created["event"], followup["event"]) == ("created", "followup")
    assert (followup["complaint_id"], followup["tracking_id"]) == (cid, tid)
    assert followup["channel"] == "letter" and followup["body"] == NEWS
    assert followup["source"]["nik_checked"] == "ktp"
    # The SMS acknowledgement says so too, under that ID.
    async with gw.engine.connect() as conn:
        rows = (await conn.exec_driver_sql("SELECT kind, tracking_id, body FROM sms_replies")).all()
    [(kind, told, body)] = rows
    assert (kind, told) == ("followup", tid)
    assert body.startswith(f"LAPOR! Tambahan info untuk laporan {tracking.display(tid)}")


@pytest.mark.parametrize(
    "case", ["nik not checked against the KTP", "another NIK's report"]
)
async def test_a_letter_naming_a_report_it_does_not_hold_is_a_report_of_its_own(
    gw: bootstrap.Gateway, desk: tuple[TestClient[Any, Any], str], case: str
) -> None:
    _, tid = await earlier_report(gw, NIK_B if case == "another NIK's report" else NIK_A)
    receipt = await confirm(desk, tid, checked=case != "nik not checked against the KTP")
    assert shown_id(receipt) != tid
    assert 'id="followup"' not in receipt
    assert "followup" not in [e["event"] for e in await events(gw)]
    # The clerk is told (above the receipt, never printed) that it was not added.
    notice = receipt.split('id="notice"')[1].split("</div>")[0]
    assert f"TIDAK ditambahkan ke laporan {tid}" in notice


def test_a_mistyped_tracking_id_is_told_next_to_the_field() -> None:
    values = {"sender_name": "Siti", "body": NEWS, "about": "K7QM-4XRT8"}
    letter, errors = validate(values, date(2026, 12, 5))
    assert letter is None and errors["about"][0].startswith("Nomor lacak tidak valid")
    good = "K7QM4XRT" + tracking._check_symbol("K7QM4XRT")
    letter, errors = validate({**values, "about": f" {good[:4]}-{good[4:].lower()} "}, date.today())
    assert not errors and letter is not None and letter.about == good
    letter, errors = validate({**values, "about": ""}, date.today())
    assert letter is not None and letter.about is None


async def test_the_printed_receipt_gives_the_code_that_adds_to_the_report_on_the_web(
    gw: bootstrap.Gateway, desk: tuple[TestClient[Any, Any], str]
) -> None:
    """A letter's sender has no phone the transport vouches for: the receipt prints the
    follow-up code, and with it the web's /tambah adds to the report the letter filed."""
    client, _ = desk
    receipt = await confirm(desk, about="", nik=NIK_B)
    shown = TID.search(receipt)
    code = re.search(r'<strong class="code">([^<]+)</strong>', receipt)
    assert shown and code, receipt
    assert "/tambah" in receipt and "rahasiakan" in receipt
    page = await (await client.get("/tambah", params={"id": shown.group(1)})).text()
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf
    resp = await client.post("/tambah", data={
        "csrf": csrf.group(1), "nomor": shown.group(1), "kode": code.group(1),
        "tambahan": "Foto terbaru: lubangnya sudah ditutup sementara dengan papan.",
    })
    assert resp.status == 200 and "ditambahkan" in await resp.text()
    letter, followup = [json.loads(e) for e in await opened_events(gw.engine, gw.keys)]
    assert letter["channel"] == "letter" and followup["event"] == "followup"
    assert followup["channel"] == "web" and followup["tracking_id"] == letter["tracking_id"]
