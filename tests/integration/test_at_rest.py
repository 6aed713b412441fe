"""Personal data at rest: after complaints arrive by SMS and by the web API, with NIK, name,
phone and e-mail, and are published, no table holds any of them in the clear. The routing core
still receives them, and quarantine replay still reads the message as received."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote_plus

import pikepdf
import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient
from cryptography.exceptions import InvalidTag
from pydantic import SecretStr
from sqlalchemy import select

from gateway import bootstrap, sealing
from gateway import reseal as reseal_module
from gateway.crypto import Keys
from gateway.filestore import FileStore
from gateway.outbox import outbox_status
from gateway.reseal import reseal
from gateway.settings import Settings
from gateway.storage.database import create_engine
from gateway.storage.schema import (
    identities,
    letter_drafts,
    metadata,
    outbox,
    raw_inbound,
    sms_fragments,
    sms_replies,
    staff_accounts,
)
from tests.channels.letter.conftest import empty_letter_tables
from tests.support import drain, opened_complaints, opened_events, opened_raw, with_section

pytestmark = pytest.mark.integration

Client = Callable[..., Awaitable[TestClient[Any, Any]]]

NIK = "3201014101900001"
SMS_PHONE = "6281200000077"
WEB_PHONE = "6281398765432"
EMAIL = "dewi.lestari@contoh.id"
NAME = "Dewi Lestari"
SECRETS = (NIK, SMS_PHONE, WEB_PHONE, "81200000077", "81398765432", EMAIL, NAME)
KTP_TEXT = f"KARTU TANDA PENDUDUK NIK {NIK} {NAME}".encode()


def ktp_pdf() -> bytes:
    """A scanned identity card as a PDF whose page says the NIK and name in the clear."""
    pdf = pikepdf.new()
    pdf.add_blank_page()
    pdf.pages[0].Contents = pdf.make_stream(b"BT 20 100 Td (" + KTP_TEXT + b") Tj ET")
    out = io.BytesIO()
    pdf.save(out, compress_streams=False)
    return out.getvalue()


KTP_PDF = ktp_pdf()


@pytest.fixture
async def gw(settings: Settings) -> AsyncIterator[bootstrap.Gateway]:
    core = with_section(settings, "storage", fetch_token=SecretStr("core-t0ken"))
    gateway = bootstrap.build(core)
    yield gateway
    await gateway.close()


def kannel(text: str, message_id: str, udh: str = "") -> str:
    return (
        f"/sms/kannel?p=%2B{SMS_PHONE}&P=1708&b={quote_plus(text)}&c=0&C=UTF-8"
        f"&I={message_id}&u={udh}&i=inject"
    )


REPORTER = {"nik": NIK, "name": NAME, "phone": f"+{WEB_PHONE}", "email": EMAIL}


def web_complaint() -> FormData:
    """An API complaint with every identity field, confidential (so its title and place are
    sealed too), with a photo of the identity card and a body long enough for the file store
    (the tests keep bodies over 1 KB there)."""
    form = FormData()
    complaint = {
        "title": "Lampu padam di RT 05",
        "body": "Lampu jalan mati. " * 80,
        "reporter": REPORTER,
        "privacy": {"confidential": True},
        "location": {"text": "Jl. Siliwangi 12, Sumber"},
    }
    form.add_field("complaint", json.dumps(complaint), content_type="application/json")
    # Named after its owner, as people do: the name is personal data too.
    form.add_field(
        "attachments", KTP_PDF, filename=f"KTP-{NIK}.pdf", content_type="application/pdf"
    )
    return form


def fresh_key() -> SecretStr:
    return SecretStr(base64.b64encode(os.urandom(32)).decode())


def keyed(settings: Settings, data_key: SecretStr, *previous: SecretStr) -> bootstrap.Gateway:
    """A gateway on ``settings`` with another data key (and previous keys)."""
    security = settings.security.model_copy(
        update={"data_key": data_key, "previous_data_keys": list(previous)}
    )
    return bootstrap.build(settings.model_copy(update={"security": security}))


async def every_value(gw: bootstrap.Gateway) -> str:
    """Every column of every row of every table, and every file of the file store, as one text
    (bytes read as Latin-1)."""
    out = [p.read_bytes().decode("latin-1") for p in gw.files.root.rglob("*") if p.is_file()]
    async with gw.engine.connect() as conn:
        for table in metadata.sorted_tables:
            for row in await conn.execute(select(table)):
                for value in row:
                    if isinstance(value, bytes | memoryview):
                        out.append(bytes(value).decode("latin-1"))
                    else:
                        out.append(json.dumps(value, default=str, ensure_ascii=False))
    return "\n".join(out)


async def test_no_personal_data_in_the_clear_in_any_table(
    gw: bootstrap.Gateway, aiohttp_client: Client, settings: Settings
) -> None:
    client = await aiohttp_client(bootstrap.build_app(gw))
    # An SMS with a NIK, and the first part of a long one (held until its sibling comes).
    resp = await client.get(kannel(f"NIK {NIK} pungli di kantor kelurahan", "rest-1"))
    reply = await resp.text()
    assert resp.status == 200 and "No. lacak" in reply
    tracking_id = reply.split("CEK ")[1].split()[0]
    resp = await client.get(kannel(f"NIK {NIK} bagian pertama", "rest-2", udh="0500032a0201"))
    assert resp.status == 200
    resp = await client.post("/api/v1/complaints", data=web_complaint())
    assert resp.status == 202, await resp.text()
    assert gw.relay is not None
    await gw.relay.publish_batch()
    await gw.relay._close()

    # The routing core receives the identities in the clear...
    events = [json.loads(m.body) for m in await drain(settings.broker.queue, 2)]
    by_event = {e["channel"]: e for e in events}
    by_channel = {e["channel"]: e["reporter"] for e in events}
    assert by_channel["sms"]["nik"] == NIK and by_channel["sms"]["phone"] == f"+{SMS_PHONE}"
    assert by_channel["web"] == {**REPORTER, "handles": {}}
    assert by_event["web"]["title"] == "Lampu padam di RT 05"

    # ...and no table holds any of them: not the raw messages, not the events, not the held
    # part, not the complaints, identities or replies.
    stored = await every_value(gw)
    assert tracking_id in stored  # the scan does see the rows' contents
    # Nor the complaint's words (its body and its dedup tokens), nor the confidential title.
    for words in ("pungli", "kantor", "kelurahan", "Lampu", "lampu", "padam", "Siliwangi"):
        assert words not in stored, words
    assert len([p for p in gw.files.root.rglob("*") if p.is_file()]) == 2  # body and photo
    for secret in SECRETS:
        assert secret not in stored, secret

    # The routing core fetches the attachment as it was sent.
    (attachment,) = by_event["web"]["attachments"]
    fetched = await client.get(
        attachment["href"], headers={"Authorization": "Bearer core-t0ken"}
    )
    assert fetched.status == 200
    with pikepdf.open(io.BytesIO(await fetched.read())) as served:  # the card, its metadata gone
        assert KTP_TEXT in served.pages[0].Contents.read_bytes()

    # The gateway opens them where it needs them.
    raws = await opened_raw(gw.engine, gw.keys)
    assert len(raws) == 3 and all(r["sealed"] for r in raws)
    assert sum(r["body"] is None for r in raws) == 1  # the long one lives in the file store
    sms, web = await opened_complaints(gw.engine, gw.keys)
    assert (sms.title, sms.body) == (None, "pungli di kantor kelurahan")
    assert web.title == "Lampu padam di RT 05" and web.body.startswith("Lampu jalan mati.")
    assert web.location["text"] == "Jl. Siliwangi 12, Sumber"
    assert "pungli" in sms.match_tokens.split()
    assert f"NIK+{NIK}".encode() in raws[0]["body"]
    assert raws[0]["transport_meta"]["sender"] == f"+{SMS_PHONE}"
    assert sorted(json.loads(e)["channel"] for e in await opened_events(gw.engine, gw.keys)) == [
        "sms",
        "web",
    ]


async def test_a_held_part_is_joined_from_its_sealed_text(
    gw: bootstrap.Gateway, aiohttp_client: Client
) -> None:
    client = await aiohttp_client(bootstrap.build_app(gw))
    second = await client.get(kannel("kelurahan Sukamaju.", "part-2", udh="050003330202"))
    assert second.status == 200 and await second.text() == ""
    first = await client.get(kannel(f"NIK {NIK} pungli di kantor ", "part-1", udh="050003330201"))
    assert first.status == 200 and "No. lacak" in await first.text()
    assert NIK not in await every_value(gw)
    (event,) = [json.loads(e) for e in await opened_events(gw.engine, gw.keys)]
    assert event["body"] == "pungli di kantor kelurahan Sukamaju."
    assert event["reporter"]["nik"] == NIK


async def test_a_sealed_body_does_not_open_in_another_row(gw: bootstrap.Gateway) -> None:
    sealed = gw.keys.seal(b"NIK 3201014101900001", "raw_inbound:a:body")
    assert gw.keys.unseal(sealed, "raw_inbound:a:body") == b"NIK 3201014101900001"
    with pytest.raises(InvalidTag):
        gw.keys.unseal(sealed, "raw_inbound:b:body")


async def test_a_rotated_data_key_opens_what_the_old_one_sealed(
    settings: Settings, aiohttp_client: Client
) -> None:
    # Complaints arrive under one data key; the gateway restarts with a new one and the old one
    # among the previous keys: the waiting events still go out, and new ones use the new key.
    old = bootstrap.build(settings)
    client = await aiohttp_client(bootstrap.build_app(old))
    assert (await client.get(kannel(f"NIK {NIK} jalan rusak", "rot-1"))).status == 200
    await old.close()
    assert settings.security.data_key is not None
    rotated = keyed(settings, fresh_key(), settings.security.data_key)
    try:
        client = await aiohttp_client(bootstrap.build_app(rotated))
        assert (await client.get(kannel("lampu jalan mati", "rot-2"))).status == 200
        assert rotated.relay is not None
        assert await rotated.relay.publish_batch() == 2
        await rotated.relay._close()
        events = [json.loads(m.body) for m in await drain(settings.broker.queue, 2)]
        assert sorted(e["body"] for e in events) == ["jalan rusak", "lampu jalan mati"]
        raws = await opened_raw(rotated.engine, rotated.keys)
        assert [r["provider_message_id"] for r in raws] == ["rot-1", "rot-2"]
        # The old key alone opens the first message, not the second.
        async with rotated.engine.connect() as conn:
            stored = (await conn.execute(select(raw_inbound).order_by(raw_inbound.c.stored_at)))
            first, second = stored.all()
        assert b"jalan+rusak" in old.keys.unseal(first.body, f"raw_inbound:{first.id}:body")
        with pytest.raises(InvalidTag):
            old.keys.unseal(second.body, f"raw_inbound:{second.id}:body")
    finally:
        await rotated.close()


async def test_a_replica_with_another_data_key_takes_no_traffic_and_publishes_nothing(
    settings: Settings, aiohttp_client: Client
) -> None:
    # The right replica's clock runs a little ahead: the row the wrong one gave back rests a few
    # seconds before any relay claims it again.
    right = bootstrap.build(settings, clock=lambda: datetime.now(UTC) + timedelta(seconds=10))
    client = await aiohttp_client(bootstrap.build_app(right))
    assert (await client.get(kannel("jalan rusak", "key-1"))).status == 200
    wrong = keyed(settings, fresh_key())
    try:
        # /readyz names the key: the load balancer sends this replica nothing to seal.
        wrong_client = await aiohttp_client(bootstrap.build_app(wrong))
        resp = await wrong_client.get("/readyz")
        body = await resp.json()
        assert resp.status == 503 and body["checks"]["keys"]["ok"] is False
        assert "LAPOR_SECURITY__DATA_KEY" in body["checks"]["keys"]["error"]
        ready = await (await client.get("/readyz")).json()
        assert ready["checks"]["keys"] == {"ok": True}
        # Its relay does not crash on the event it cannot open: it gives the row back.
        assert wrong.relay is not None and right.relay is not None
        stop = asyncio.Event()
        task = asyncio.create_task(wrong.relay.run(stop))
        errors = wrong.metrics.relay_errors.labels("data-key")
        for _ in range(250):  # a claim, then its release
            if errors._value.get() >= 1:
                break
            await asyncio.sleep(0.02)
        assert errors._value.get() >= 1 and not task.done()
        stop.set()
        await task
        async with wrong.engine.connect() as conn:
            (row,) = (await conn.execute(select(outbox))).all()
        assert row.published_at is None and row.claimed_by is None
        assert "data key" in row.last_error
        # A replica with the right key publishes it.
        assert await right.relay.publish_batch() == 1
        await right.relay._close()
        [msg] = await drain(settings.broker.queue, 1)
        assert json.loads(msg.body)["body"] == "jalan rusak"
    finally:
        await wrong.close()
        await right.close()


async def test_one_event_sealed_under_another_key_does_not_take_the_right_replicas_out(
    settings: Settings, aiohttp_client: Client
) -> None:
    right = bootstrap.build(settings)
    wrong = keyed(settings, fresh_key())
    try:
        client = await aiohttp_client(bootstrap.build_app(right))
        wrong_client = await aiohttp_client(bootstrap.build_app(wrong))
        for i in range(2):
            assert (await client.get(kannel(f"laporan {i}", f"ok-{i}"))).status == 200
        # The newest event is the wrong replica's (taken before its /readyz took it out).
        other_sender = kannel("lampu mati", "w-1").replace("6281200000077", "6281200000088")
        assert (await wrong_client.get(other_sender)).status == 200
        right_keys = (await (await client.get("/readyz")).json())["checks"]["keys"]
        wrong_keys = (await (await wrong_client.get("/readyz")).json())["checks"]["keys"]
        assert right_keys == {"ok": True} and wrong_keys["ok"] is False
    finally:
        await wrong.close()
        await right.close()


async def test_an_event_the_relay_cannot_open_does_not_hold_up_the_others(
    settings: Settings, aiohttp_client: Client
) -> None:
    right = bootstrap.build(settings)
    wrong = keyed(settings, fresh_key())  # a replica briefly started with another key
    try:
        client = await aiohttp_client(bootstrap.build_app(right))
        wrong_client = await aiohttp_client(bootstrap.build_app(wrong))
        assert (await client.get(kannel("jalan rusak", "mix-1"))).status == 200
        other_sender = kannel("lampu mati", "mix-2").replace("6281200000077", "6281200000088")
        assert (await wrong_client.get(other_sender)).status == 200
        assert (await client.get(kannel("sampah menumpuk", "mix-3"))).status == 200
        assert right.relay is not None
        # The oldest-first claim takes all three; the one sealed under the other key goes back.
        assert await right.relay.publish_batch() == 2
        messages = await drain(settings.broker.queue, 2)
        assert [json.loads(m.body)["body"] for m in messages] == ["jalan rusak", "sampah menumpuk"]
        assert right.metrics.relay_errors.labels("data-key")._value.get() == 1
        async with right.engine.connect() as conn:
            [waiting] = (await conn.execute(
                select(outbox).where(outbox.c.published_at.is_(None)))).all()
        assert waiting.claimed_by is None and "data key" in waiting.last_error
        # It waits for a relay with its key, reported apart: it is not a lag that would take
        # every replica out of the load balancer while the other events go out.
        status = await outbox_status(right.engine)
        assert (status.pending, status.unopenable, status.lag_seconds(datetime.now(UTC))) == (
            0, 1, 0.0)
        probe = await (await client.get("/readyz")).json()
        assert probe["checks"]["outbox"]["ok"] and probe["checks"]["outbox"]["unopenable"] == 1
        # It rests a lease's length before it is claimed again: it does not head every claim
        # (nor flood the log) while it waits for a relay with its key.
        right.relay._last_claim = 0.0  # the next batch reads the table
        assert await right.relay.publish_batch() == 0
        assert right.metrics.relay_errors.labels("data-key")._value.get() == 1
        await right.relay.close()
    finally:
        await wrong.close()
        await right.close()


async def test_reseal_moves_everything_to_the_current_key_and_seals_old_clear_rows(
    settings: Settings, aiohttp_client: Client
) -> None:
    # Stored under the old key: an SMS with its reply, a held part, an API complaint with an
    # attachment and a long body (file store), identities; and one message stored in the clear,
    # as the code before sealing wrote it.
    old = bootstrap.build(settings)
    client = await aiohttp_client(bootstrap.build_app(old))
    assert (await client.get(kannel(f"NIK {NIK} pungli di kantor kelurahan", "rs-1"))).status == 200
    assert (await client.get(kannel("bagian pertama", "rs-2", udh="0500032b0201"))).status == 200
    assert (await client.post("/api/v1/complaints", data=web_complaint())).status == 202
    now = datetime.now(UTC)
    async with old.engine.begin() as conn:
        await conn.execute(
            raw_inbound.insert().values(
                id="raw-clear", channel="sms", provider_message_id="clear-1", parser="sms.kannel",
                received_at=now, stored_at=now, content_type="text/plain", sha256="0" * 64,
                size=28, body=f"NIK {NIK} lama".encode(), transport_meta={"sender": "+62"},
                status="recorded", sealed=False,
            )
        )
    old_files = FileStore(old.files.root, Keys(b"i" * 32, b"o" * 32))  # a file of another key
    await old_files.put_bytes(b"scan " + NAME.encode())
    await old.close()

    new_key = fresh_key()
    older = SecretStr(base64.b64encode(b"o" * 32).decode())
    assert settings.security.data_key is not None
    rotated = keyed(settings, new_key, settings.security.data_key, older)
    try:
        first = await reseal(rotated.engine, rotated.keys, rotated.files, batch=2)
        assert first.total > 0
        for table in ("raw_inbound", "complaints", "outbox", "sms_fragments", "identities",
                      "sms_replies", "files"):
            assert first.resealed[table] == first.seen[table] > 0, (table, first)
        again = await reseal(rotated.engine, rotated.keys, rotated.files)
        assert again.total == 0 and again.seen == first.seen
    finally:
        await rotated.close()

    # The new key alone now opens everything, and the clear row is clear no more.
    gw = keyed(settings, new_key)
    try:
        assert NIK not in await every_value(gw)
        raws = {r["provider_message_id"]: r for r in await opened_raw(gw.engine, gw.keys)}
        assert raws["clear-1"]["body"] == f"NIK {NIK} lama".encode() and raws["clear-1"]["sealed"]
        complaints_ = await opened_complaints(gw.engine, gw.keys)
        web = next(c for c in complaints_ if c.channel == "web")
        assert web.title == "Lampu padam di RT 05" and web.location["text"].startswith("Jl.")
        assert gw.keys.decrypt(web.reporter["nik"]["enc"]) == NIK
        [attachment] = web.attachments
        assert gw.keys.decrypt(attachment["filename"]["enc"]) == f"KTP-{NIK}.pdf"
        assert len(await opened_events(gw.engine, gw.keys)) == 2
        async with gw.engine.connect() as conn:
            for value in (await conn.execute(select(identities.c.value_enc))).scalars():
                gw.keys.decrypt(value)
            for value in (await conn.execute(select(sms_replies.c.recipient))).scalars():
                assert gw.keys.decrypt(value) == f"+{SMS_PHONE}"
            (fragment,) = (await conn.execute(select(sms_fragments))).all()
        assert sealing.fragment_text(gw.keys, fragment.raw_inbound_id, fragment.text, True) == (
            "bagian pertama"
        )
        for path in gw.files.root.rglob("*"):
            if path.is_file():
                assert await gw.files.read(path.name)
    finally:
        await gw.close()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_row_changed_while_it_is_resealed_is_not_reported_done(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The only value left under the old key is a letter draft, and a clerk saves it between
    # the run's read and its write: the run's write is refused (the row changed), and the
    # draft's scans, pages and fields are still under the old key. The run must not report 0,
    # the sign that the old key can go.
    await empty_letter_tables(settings)
    old_key = fresh_key()
    old = keyed(settings, old_key)
    draft_id, now = "d-1", datetime.now(UTC)

    def column(keys: Keys, name: str, value: Any) -> Any:
        return sealing.draft_column(keys, draft_id, name, value)

    async with old.engine.begin() as conn:
        await conn.execute(
            staff_accounts.insert().values(
                id="s-1", username="siti", role="clerk", password_hash="x", created_at=now
            )
        )
        await conn.execute(
            letter_drafts.insert().values(
                id=draft_id, batch_id="b-1", status="ready", created_by="s-1", created_at=now,
                updated_at=now, files=column(old.keys, "files", [{"name": f"KTP {NIK}.pdf"}]),
                pages=column(old.keys, "pages", []), fields=column(old.keys, "fields", {}),
            )
        )
    await old.close()
    new_key = fresh_key()
    rotated = keyed(settings, new_key, old_key)

    def clerk_saves() -> None:  # another replica, on the new key, while the run holds the row
        async def save() -> None:
            engine = create_engine(settings.database)
            try:
                async with engine.begin() as conn:
                    await conn.execute(
                        letter_drafts.update()
                        .where(letter_drafts.c.id == draft_id)
                        .values(
                            reviewed=column(rotated.keys, "reviewed", {"nama": NAME}),
                            updated_at=now + timedelta(seconds=1),
                        )
                    )
            finally:
                await engine.dispose()

        thread = threading.Thread(target=asyncio.run, args=(save(),))
        thread.start()
        thread.join()

    def racing(table: Any, resealer: Any) -> Any:
        if table is not letter_drafts:
            return resealer

        def during(keys: Keys, r: Any) -> Any:
            changes = resealer(keys, r)
            clerk_saves()
            return changes

        return during

    monkeypatch.setattr(
        reseal_module,
        "_TABLES",
        tuple((t, c, g, racing(t, f)) for t, c, g, f in reseal_module._TABLES),
    )
    try:
        first = await reseal(rotated.engine, rotated.keys, rotated.files)
        assert first.total > 0, first
        monkeypatch.undo()
        second = await reseal(rotated.engine, rotated.keys, rotated.files)
        assert second.resealed["letter_drafts"] == 1
        assert (await reseal(rotated.engine, rotated.keys, rotated.files)).total == 0
    finally:
        await rotated.close()
    gw = keyed(settings, new_key)  # the old key gone: the draft still opens whole
    try:
        async with gw.engine.connect() as conn:
            row = (await conn.execute(select(letter_drafts))).one()
        for name in ("files", "pages", "fields", "reviewed"):
            sealing.open_draft_column(gw.keys, draft_id, name, getattr(row, name))
    finally:
        await gw.close()
