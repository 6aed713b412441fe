"""The SMS grammar as citizens spell it: slang and abbreviations of status queries, a NIK in a
query, courtesies around CEK, INFO and thanks, a comma before the NIK's digits."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from channels.sms.grammar import Intent, interpret
from channels.sms.settings import DEFAULT_REGIONS
from gateway import bootstrap, tracking
from tests.channels.sms.test_routes import (  # noqa: F401  (fixtures)
    STATUS_REPLY,
    client,
    gw,
    query,
    tracking_of,
)
from tests.support import opened_complaints

SENDER = "+6281234567890"
VALID_NIK = "3174095505900002"
ID_WITH_DIGIT = "ST5ABPHE2"  # a valid tracking ID (check symbol), nobody's


def read(text: str):  # type: ignore[no-untyped-def]
    return interpret(text, SENDER, DEFAULT_REGIONS)


# ---- grammar: status queries filed as complaints -------------------------------------------


@pytest.mark.parametrize(
    ("slang", "spelled_out"),
    [
        ("Gmn status laporan saya?", "Gimana status laporan saya?"),
        ("Cek laporan sy dong kak", "Cek laporan saya dong kak"),
        ("cek status laporan sy gmn ya min", "cek status laporan saya gimana ya min"),
    ],
)
def test_slang_status_query_without_id_is_a_query_like_its_spelled_out_form(
    slang: str, spelled_out: str
) -> None:
    """"gmn" / "sy" (the usual SMS spellings of "gimana" / "saya", "sy" is even a NIK filler word)
    ask for the status exactly like the spelled-out message, which is a STATUS query ("how to
    ask" answer, nothing filed)."""
    assert read(spelled_out).intent is Intent.STATUS
    assert read(slang).intent is Intent.STATUS, read(slang)


def test_status_query_naming_the_nik_is_not_filed_as_a_complaint() -> None:
    """"Cek status laporan NIK saya <NIK>" (a citizen thinking the NIK finds the report) is a
    STATUS query (answered how to ask: CEK <no. lacak>), the NIK not filed."""
    result = read(f"Cek status laporan NIK saya {VALID_NIK}")
    assert result.intent is Intent.STATUS, result


# ---- grammar: a NIK left in the body ----------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        f"Jalan rusak depan SDN 3. NIK saya, {VALID_NIK}",
        f"Lampu jalan mati, NIK, {VALID_NIK}",
    ],
)
def test_nik_after_a_comma_is_read_and_taken_out_of_the_body(text: str) -> None:
    """A labelled NIK followed by a comma ("NIK saya, 3174...") is read like "NIK saya: 3174..."
    and removed from the (publishable) body."""
    result = read(text)
    assert result.draft is not None
    assert VALID_NIK not in result.draft.body, result.draft.body
    assert result.draft.reporter.nik == VALID_NIK


# ---- grammar: a help request filed ---------------------------------------------------------------


@pytest.mark.parametrize("text", ["Info dong min", "Info dong", "Bantuan pak"])
def test_help_word_with_courtesies_gets_help_not_a_tracking_id(text: str) -> None:
    """INFO/BANTUAN with only courtesies ("Info dong min") is HELP, as "INFO" and "INFO LAPOR"
    are, and as courtesies never change a status query."""
    assert read(text).intent is Intent.HELP, read(text)


# ---- routes: a polite status query with its reason filed as a new complaint -----------------


@pytest.mark.parametrize(
    "template",
    [
        "Mohon cek laporan {tid} sudah 2 minggu belum ada tindak lanjut dari dinas",
        "Pak, tolong cek laporan saya {dashed}, sudah 2 minggu belum ada kabar",
    ],
)
async def test_polite_cek_of_an_existing_id_with_a_reason_gets_its_status(
    client: TestClient[Any, Any],  # noqa: F811
    gw: bootstrap.Gateway,  # noqa: F811
    template: str,
) -> None:
    """"Mohon cek laporan <ID> sudah 2 minggu belum ada tindak lanjut" (CEK after a courtesy, the
    README's "Tolong cek <id> ya kak" plus why) of an EXISTING ID is answered with that ID's
    status and files nothing."""
    first = await (await client.get(f"/sms/kannel?{query('Jalan berlubang besar', 'e-1')}")).text()
    tid = tracking_of(first)
    text = template.format(tid=tid, dashed=tracking.display(tid))
    reply = await (await client.get(f"/sms/kannel?{query(text, 'e-2')}")).text()
    assert STATUS_REPLY.fullmatch(reply) and tracking.display(tid) in reply, reply
    assert await gw.intake.count_complaints() == 1
    assert len(await opened_complaints(gw.engine, gw.keys)) == 1




# ---- thank-yous filed as complaints (a new tracking ID sent in answer to "thanks") -----------


@pytest.mark.parametrize(
    "text",
    ["Ok trm ksh min", "Makasih bnyk pak", f"Siap pak, terima kasih. {tracking.display(ID_WITH_DIGIT)}"],
)
def test_thank_you_in_sms_spelling_or_quoting_the_id_is_thanks(text: str) -> None:
    """A thank-you after the receipt, in the usual SMS spellings ("trm ksh", "bnyk") or repeating
    the tracking ID just received, is THANKS (recorded, not answered), like "Terima kasih" /
    "Ok makasih min"."""
    assert read(text).intent is Intent.THANKS, read(text)


async def test_thanks_quoting_the_received_id_files_nothing_and_is_not_answered(
    client: TestClient[Any, Any],  # noqa: F811
    gw: bootstrap.Gateway,  # noqa: F811
) -> None:
    """"Siap pak, terima kasih. <the ID just received>" files nothing and gets no reply."""
    first = await (await client.get(f"/sms/kannel?{query('Lampu jalan mati', 'k-1')}")).text()
    tid = tracking_of(first)
    text = f"Siap pak, terima kasih. {tracking.display(tid)}"
    resp = await client.get(f"/sms/kannel?{query(text, 'k-2')}")
    assert await resp.text() == ""
    assert await gw.intake.count_complaints() == 1


async def test_status_query_naming_the_nik_gets_how_to_ask_not_a_new_id(
    client: TestClient[Any, Any],  # noqa: F811
    gw: bootstrap.Gateway,  # noqa: F811
) -> None:
    """"Cek status laporan NIK saya <NIK>" is answered how to ask (CEK <no. lacak>) and files
    nothing."""
    text = f"Cek status laporan NIK saya {VALID_NIK}"
    reply = await (await client.get(f"/sms/kannel?{query(text, 'n-1')}")).text()
    assert "Untuk cek status" in reply, reply
    assert await gw.intake.count_complaints() == 0


@pytest.mark.parametrize(
    "template", ["Mohon dicek {dashed}", "Tolong dicek laporan saya {tid} ya min"]
)
async def test_dicek_of_an_existing_id_gets_its_status(
    client: TestClient[Any, Any],  # noqa: F811
    gw: bootstrap.Gateway,  # noqa: F811
    template: str,
) -> None:
    """"Mohon dicek <ID>" / "Tolong dicek laporan saya <ID> ya min" ("dicek", the passive form
    every polite request uses) of an existing ID is answered with its status, as "Tolong cek
    <ID>" is."""
    first = await (await client.get(f"/sms/kannel?{query('Sampah menumpuk di pasar', 'd-1')}")).text()
    tid = tracking_of(first)
    text = template.format(tid=tid, dashed=tracking.display(tid))
    reply = await (await client.get(f"/sms/kannel?{query(text, 'd-2')}")).text()
    assert STATUS_REPLY.fullmatch(reply) and tracking.display(tid) in reply, reply
    assert await gw.intake.count_complaints() == 1
