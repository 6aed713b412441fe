"""The SMS channel as citizens write and bridges deliver: words that pass for an ID, polite
queries, thank-yous, service commands, labelled NIKs, new provinces, late parts of long
messages, Gammu ids reused, Kannel's post-url."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from channels.sms.grammar import Intent, interpret
from channels.sms.settings import DEFAULT_REGIONS
from gateway import bootstrap
from gateway.settings import Settings
from tests.support import opened_complaints

Client = Callable[..., Awaitable[TestClient[Any, Any]]]
SENDER = "+6281200000001"


def read(text: str) -> Any:
    return interpret(text, SENDER, DEFAULT_REGIONS)


# ---- grammar ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Cek PDAM Taman Sari, air mati sudah 3 hari tidak ada kabar",
        "Status BPJS pasar Minggu tidak bisa dipakai berobat",
        "Cek dana kapan cair? sudah 3 bulan belum diterima warga",
    ],
)
def test_complaint_starting_with_cek_and_two_ordinary_words_is_not_swallowed_as_a_status_query(
    text: str,
) -> None:
    """A citizen reports "Cek PDAM Taman Sari, air mati sudah 3 hari ...": a complaint about
    the water company, filed and answered with a new tracking ID. "PDAM"+"TAMAN" passes an ID's
    check symbol (1 in 30 such word pairs does): read as a status query, the complaint was lost."""
    result = read(text)
    assert result.intent is Intent.COMPLAINT, (result.intent, result.tracking_id)


def test_papua_pegunungan_is_not_filed_under_the_province_papua() -> None:
    """A citizen in Wamena writes "PAPUA PEGUNUNGAN jalan trans putus longsor": the province
    Papua Pegunungan (95, since UU 16/2022), not Papua (91, another government), and no stray
    "PEGUNUNGAN" at the start of the body."""
    result = read("PAPUA PEGUNUNGAN jalan trans putus longsor")
    assert result.intent is Intent.COMPLAINT and result.draft is not None
    location = result.draft.location
    assert location is None or location.region_code != "91", location


@pytest.mark.parametrize("text", ["REG LAPOR", "UNREG LAPOR", "INFO LAPOR", "STOP SMS"])
def test_an_unknown_or_service_style_command_of_two_words_is_not_filed_as_a_complaint(
    text: str,
) -> None:
    """Indonesian SMS services are driven by "REG <name>", "UNREG <name>", "INFO <name>"; a
    citizen texted unasked answers "STOP SMS". Those are answered with how to use the service,
    as "REG" or "STOP" alone are, not filed as complaints for an agency."""
    result = read(text)
    assert result.intent is not Intent.COMPLAINT, (text, result.draft)


VALID_NIK = "3201014101900001"


@pytest.mark.parametrize(
    "text",
    [
        f"Jalan rusak parah di depan balai desa. NIK saya {VALID_NIK}",
        f"NIK saya: {VALID_NIK} jalan rusak parah di depan balai desa",
        f"Jalan rusak parah di depan balai desa, no KTP saya {VALID_NIK}",
    ],
)
def test_a_nik_labelled_the_way_people_write_it_is_taken_out_of_the_body(text: str) -> None:
    """A citizen writes "... NIK saya 3201014101900001" ("my NIK is ..."), the most natural way
    to label it in Indonesian: the NIK is read (reporter.nik) and taken out of the body, which
    may be published."""
    result = read(text)
    assert result.draft is not None
    assert result.draft.reporter.nik == VALID_NIK, result.draft.body
    assert VALID_NIK not in result.draft.body


# ---- status queries read as new complaints (Kannel route, both databases) ---------------------


@pytest.fixture
async def gw(settings: Settings) -> AsyncIterator[bootstrap.Gateway]:
    gateway = bootstrap.build(settings)
    yield gateway
    await gateway.close()


@pytest.fixture
async def client(gw: bootstrap.Gateway, aiohttp_client: Client) -> TestClient[Any, Any]:
    return await aiohttp_client(bootstrap.build_app(gw))


def kannel_query(text: str, message_id: str, sender: str = "%2B6281200000001") -> str:
    from urllib.parse import quote_plus

    return f"p={sender}&P=1708&b={quote_plus(text)}&c=0&C=UTF-8&I={message_id}&u=&i=inject"


async def kannel_text(client: TestClient[Any, Any], text: str, message_id: str) -> str:
    resp = await client.get(f"/sms/kannel?{kannel_query(text, message_id)}")
    assert resp.status == 200
    return await resp.text()


@pytest.mark.integration
@pytest.mark.parametrize(
    "template",
    [
        "Cek status laporan saya no lacak {tid} terima kasih",
        "Tolong cek {tid}",
        "CEK {typo} terima kasih",
        "Cek status laporan saya dong",
    ],
)
async def test_a_status_query_in_a_polite_sentence_does_not_file_a_second_complaint(
    client: TestClient[Any, Any], gw: bootstrap.Gateway, template: str
) -> None:
    """A citizen asks "Cek status laporan saya no lacak K7QM4XRT9 terima kasih" (or "Tolong cek
    K7QM4XRT9", or "CEK <ID with one typo> terima kasih"): the status (or "not found"), never a
    second complaint with a new tracking ID for a message reading CEK."""
    first = await kannel_text(client, "Jalan berlubang besar di depan pasar Cibubur", "pq-1")
    assert "No. lacak" in first
    tid = first.split("Cek status: kirim CEK ")[1].split(" ")[0]
    typo = tid[:-1] + ("2" if tid[-1] != "2" else "3")
    answer = await kannel_text(client, template.format(tid=tid, typo=typo), "pq-2")
    assert await gw.intake.count_complaints() == 1, answer
    assert "Laporan diterima" not in answer, answer


# ---- long messages whose part Kannel hands over alone -------------------------------------------


@pytest.mark.integration
async def test_a_part_kannel_hands_over_late_is_joined_with_its_sibling(
    settings: Settings, aiohttp_client: Client
) -> None:
    """A citizen sends a 2-part SMS; part 2 reaches Kannel 100 s after Kannel's own wait for it
    (``sms-combine-concatenated-mo-timeout = 1800`` in the shipped ``config/kannel/kannel.conf``)
    ended, so Kannel hands part 1 over alone, and part 2 alone 1900 s later. The gateway's
    ``sms.fragment_timeout`` outlasts Kannel's: the parts are joined into ONE message, not filed
    as two incomplete complaints with two tracking IDs."""
    from datetime import UTC, datetime, timedelta

    from tests.support import FixedClock, kannel_mo

    clock = FixedClock(datetime(2026, 12, 5, 2, 0, tzinfo=UTC))
    gateway = bootstrap.build(settings, clock=clock)
    try:
        assert gateway.sms is not None
        client = await aiohttp_client(bootstrap.build_app(gateway))
        sender = "+6281200000077"
        one = kannel_mo("Jalan Siliwangi rusak parah sejak bulan lalu, banyak motor ", sender)
        one["u"] = "0500032A0201"  # part 1 of 2, reference 0x2A
        two = kannel_mo("jatuh di depan pasar. Mohon segera diperbaiki.", sender)
        two["u"] = "0500032A0202"  # part 2 of 2
        assert await (await client.get("/sms/kannel", params=one)).text() == ""
        # The reply sender's loop sweeps timed-out sets every minute.
        clock.now += timedelta(seconds=1800 + 60)
        await gateway.sms.service.sweep()
        clock.now += timedelta(seconds=40)  # G + 1900 s: Kannel hands part 2 over
        await client.get("/sms/kannel", params=two)
        clock.now += timedelta(seconds=1800 + 60)
        await gateway.sms.service.sweep()
        complaints = await opened_complaints(gateway.engine, gateway.keys)
        assert [(c.title, c.body) for c in complaints] == [
            (
                None,
                "Jalan Siliwangi rusak parah sejak bulan lalu, banyak motor jatuh di depan pasar."
                " Mohon segera diperbaiki.",
            )
        ]
    finally:
        await gateway.close()


# ---- Gammu SMSD on an SQL backend -----------------------------------------------------------------


@pytest.mark.integration
async def test_gammu_inbox_row_id_reused_by_a_new_smsd_database_is_not_taken_for_a_redelivery(
    settings: Settings, aiohttp_client: Client
) -> None:
    """Gammu SMSD on an SQL backend passes inbox row ids to RunOnReceive. When the SMSD database
    is created anew (the modem box reinstalled, the inbox truncated) ids start at 1 again: a new
    SMS under a reused id is a new message, not a redelivery of the old one (which would file
    nothing and text the new sender the first sender's tracking ID)."""
    from urllib.parse import urlencode

    from pydantic import SecretStr

    from tests.support import with_section

    token = "gammu-test-token"
    gateway = bootstrap.build(with_section(settings, "sms", gammu_token=SecretStr(token)))
    auth = {
        "Authorization": "Basic " + base64.b64encode(f"lapor:{token}".encode()).decode(),
        "Content-Type": "application/x-www-form-urlencoded",
    }

    def form(number: str, text: str) -> bytes:
        return urlencode(
            {
                "ids": "1",  # the inbox table's ID column
                "DECODED_PARTS": "0",
                "PHONE_ID": "modem-1",
                "SMS_1_CLASS": "-1",
                "SMS_1_NUMBER": number,
                "SMS_1_REFERENCE": "0",
                "SMS_1_TEXT": text,
                "SMS_MESSAGES": "1",
            }
        ).encode()

    try:
        client = await aiohttp_client(bootstrap.build_app(gateway))
        old = await client.post(
            "/sms/gammu",
            data=form("+6281200000031", "Lampu jalan mati di gang Kenanga"),
            headers=auth,
        )
        first = await old.text()
        assert old.status == 200 and "No. lacak" in first
        # Months later, a new SMSD database: its first inbox row is id 1 again.
        new = await client.post(
            "/sms/gammu",
            data=form("+6281200000032", "Sampah menumpuk di depan SDN 4 Cibeunying sudah seminggu"),
            headers=auth,
        )
        second = await new.text()
        assert new.status == 200
        assert len(await opened_complaints(gateway.engine, gateway.keys)) == 2, second
        assert second != first
    finally:
        await gateway.close()


@pytest.mark.integration
@pytest.mark.parametrize("thanks", ["Terima kasih", "Ok makasih min", "Baik, terima kasih pak"])
async def test_thanking_for_the_receipt_does_not_file_a_new_complaint(
    client: TestClient[Any, Any], gw: bootstrap.Gateway, thanks: str
) -> None:
    """After "LAPOR! Laporan diterima. No. lacak: ...", many citizens answer "Terima kasih". They
    expect nothing more: no complaint filed, no second receipt (to which some answer "ok" again)."""
    first = await kannel_text(client, "Lampu penerangan jalan mati di gang Melati", "ty-1")
    assert "No. lacak" in first
    answer = await kannel_text(client, thanks, "ty-2")
    assert await gw.intake.count_complaints() == 1, answer
    assert "Laporan diterima" not in answer, answer


# ---- Kannel post-url ------------------------------------------------------------------------------


@pytest.mark.integration
async def test_kannel_post_url_requests_without_a_query_are_not_merged_into_one(
    client: TestClient[Any, Any], gw: bootstrap.Gateway
) -> None:
    """smsbox's ``post-url`` in its usual form (``post-url = "http://gw/sms/kannel"``, the message
    in the body and the sender in ``X-Kannel-From``): two citizens texting 1708 are two messages
    stored, not one kept and every later one taken for its redelivery (the same empty query
    hashed) and dropped."""
    from tests.support import opened_raw

    for n, text in enumerate(["Jalan rusak parah di gang Mawar", "Sampah menumpuk di pasar Baru"]):
        resp = await client.post(
            "/sms/kannel",
            data=text.encode(),
            headers={
                "Content-Type": "text/plain; charset=UTF-8",
                "X-Kannel-From": f"+62812000001{n}",
                "X-Kannel-To": "1708",
            },
        )
        assert resp.status == 200
    assert len(await opened_raw(gw.engine, gw.keys)) == 2
