"""``lapor-gateway`` subcommands, run the way an operator runs them (same settings, same DB)."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, func, select

from gateway import bootstrap, status_feed, tracking
from gateway.cli import main
from gateway.crypto import fingerprint
from gateway.domain import Channel, ComplaintDraft, RawInbound
from gateway.errors import ParseError
from gateway.intake import Parser
from gateway.settings import Settings, load_settings
from gateway.storage.schema import complaints, outbox, sms_replies
from tests.conftest import TEST_KEYS
from tests.support import delete_topology, drain

pytestmark = pytest.mark.integration


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level  # main() configures logging; put it back
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LAPOR_DATABASE__URL", f"sqlite+aiosqlite:///{tmp_path}/cli.db")
    monkeypatch.setenv("LAPOR_STORAGE__FILE_STORE", str(tmp_path / "files"))
    monkeypatch.setenv("LAPOR_LOGGING__FORMAT", "text")
    yield tmp_path
    root.handlers[:] = handlers
    root.setLevel(level)


def _quarantine_one() -> str:
    """A web message that an older, buggy web.json parser could not read."""

    def buggy(_raw: RawInbound) -> ComplaintDraft:
        raise ParseError("old parser bug", stage="decode")

    async def run() -> str:
        gw = bootstrap.build(load_settings())
        try:
            body = json.dumps({"body": "Pungli di kantor kelurahan, NIK 3201014101900001"})
            raw = RawInbound(Channel.WEB, body.encode(), datetime.now(UTC), "cli-1")
            receipt = await gw.intake.accept(raw, Parser("web.json", buggy))
            assert receipt.tracking_id is not None
            return receipt.tracking_id
        finally:
            await gw.close()

    return asyncio.run(run())


def test_check_config_prints_masked_settings_and_refuses_bad_ones(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAPOR_BROKER__PASSWORD", "rahasia-sekali")
    assert main(["check-config"]) == 0
    out = capsys.readouterr().out
    assert json.loads(out)["database"]["url"].endswith("cli.db")
    assert "rahasia-sekali" not in out
    monkeypatch.setenv("LAPOR_OUTBOX__BATCH_SIZE", "0")
    assert main(["check-config"]) == 2
    assert "outbox.batch_size" in capsys.readouterr().err


def test_serve_refuses_an_unmigrated_database(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve"]) == 1
    assert "lapor-gateway migrate" in capsys.readouterr().err


def test_quarantine_list_show_replay_and_outbox_status(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["migrate"]) == 0
    tracking_id = _quarantine_one()
    capsys.readouterr()

    assert main(["quarantine", "list"]) == 0
    listing = capsys.readouterr().out
    assert "old parser bug" in listing and "web.json" in listing and "1 entries" in listing

    assert main(["quarantine", "show", "1"]) == 0
    shown = capsys.readouterr().out
    assert "Pungli di kantor kelurahan" in shown
    assert "3201014101900001" not in shown  # masked unless --reveal
    assert main(["quarantine", "show", "1", "--reveal"]) == 0
    assert "3201014101900001" in capsys.readouterr().out
    assert main(["quarantine", "show", "99"]) == 1

    # replay with today's web.json parser: the message becomes a complaint, same tracking ID
    assert main(["quarantine", "replay"]) == 0
    assert f"1: accepted {tracking_id}" in capsys.readouterr().out
    assert main(["quarantine", "list"]) == 0
    assert "0 entries" in capsys.readouterr().out
    assert main(["quarantine", "replay"]) == 0  # nothing left: said, not silence
    assert "nothing to replay" in capsys.readouterr().out

    assert main(["outbox", "status"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["pending"] == 1 and status["by_channel"]["web"]["pending"] == 1

    assert main(["dedup", "show", tracking_id.lower()]) == 0
    assert "web      new" in capsys.readouterr().out
    assert main(["dedup", "show", "ABCDEFGH2"]) == 1


def test_dedup_show_prints_conflicts_and_how_close_a_new_complaint_came(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.integration.test_identity_dedup import NIK_A, NIK_B, PARSER, ROAD, ROAD_SMS, msg

    assert main(["migrate"]) == 0
    email = "warga.cirebon@contoh.id"

    async def run() -> tuple[str, str, str]:
        gw = bootstrap.build(load_settings())
        try:
            await gw.intake.accept(msg(Channel.WEB, 0, body="Lampu mati", nik=NIK_B, email=email),
                                   PARSER)
            await gw.intake.accept(msg(Channel.WEB, 1, body=ROAD, nik=NIK_A), PARSER)
            # NIK A's person again, with an address NIK B gave: a clash, left with B; the
            # words are near the road complaint, not near enough.
            near = "Parkir liar di depan Pasar Sumber bikin macet tiap pagi."
            new = await gw.intake.accept(msg(Channel.WEB, 30, body=near, nik=NIK_A, email=email),
                                         PARSER)
            joined = await gw.intake.accept(msg(Channel.WEB, 60, body=ROAD_SMS, nik=NIK_A),
                                            PARSER)
            assert new.tracking_id is not None and joined.tracking_id is not None
            assert new.complaint_id != joined.complaint_id
            return new.tracking_id, joined.tracking_id, NIK_B
        finally:
            await gw.close()

    near_id, joined_id, nik_b = asyncio.run(run())
    capsys.readouterr()
    assert main(["dedup", "show", near_id]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2, lines
    assert " web      new      via=nik       best=0.395 " in lines[0]
    assert "candidates=1" in lines[0] and lines[0].endswith("below threshold 0.450 by 0.055")
    assert lines[1].startswith("    conflict: its email was already linked to another NIK's")
    assert email not in lines[1] and nik_b not in lines[1]
    assert main(["dedup", "show", joined_id]) == 0  # the road complaint, by the ID a join got
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[3] for line in lines] == ["new", "similar"]
    assert "best=" not in lines[0] and "score=" in lines[1] and "conflict" not in "".join(lines)


def test_dedup_show_names_the_closed_complaint_a_new_one_repeats(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.integration.test_identity_dedup import NIK_A, PARSER, ROAD, ROAD_SMS, msg

    assert main(["migrate"]) == 0

    async def run() -> tuple[str, str]:
        gw = bootstrap.build(load_settings())
        try:
            first = await gw.intake.accept(msg(Channel.WEB, 0, body=ROAD, nik=NIK_A), PARSER)
            async with gw.engine.begin() as conn:
                await conn.execute(
                    complaints.update()
                    .where(complaints.c.id == first.complaint_id)
                    .values(status="resolved")
                )
            again = await gw.intake.accept(msg(Channel.WEB, 90, body=ROAD_SMS, nik=NIK_A), PARSER)
            assert again.complaint_id != first.complaint_id
            assert first.tracking_id is not None and again.tracking_id is not None
            return first.tracking_id, again.tracking_id
        finally:
            await gw.close()

    closed_id, again_id = asyncio.run(run())
    capsys.readouterr()
    assert main(["dedup", "show", again_id]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and " new " in lines[0], lines
    assert lines[1] == f"    repeats {closed_id[:4]}-{closed_id[4:]}, closed: the same matter reported again"
    assert main(["dedup", "show", closed_id]) == 0
    assert "repeats" not in capsys.readouterr().out


def test_dedup_show_names_the_id_a_followup_named(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from dataclasses import replace

    from gateway.intake import Parser
    from tests.integration.test_identity_dedup import PARSER, ROAD, msg

    assert main(["migrate"]) == 0

    async def run() -> str:
        gw = bootstrap.build(load_settings())
        try:
            first = await gw.intake.accept(
                msg(Channel.SMS, 0, body=ROAD, phone="+6281234567890"), PARSER
            )
            assert first.tracking_id is not None
            tid = first.tracking_id

            def about(raw: RawInbound) -> ComplaintDraft:
                # As the SMS grammar reads "Laporan <ID> ...": the draft names the ID.
                draft = PARSER.parse(raw)
                assert isinstance(draft, ComplaintDraft)
                return replace(draft, about=tid)

            news = msg(Channel.SMS, 30, body=f"Laporan {tid} makin parah", phone="+6281234567890")
            added = await gw.intake.accept(news, Parser("test.about", about))
            assert (added.status.value, added.tracking_id) == ("followup", tid)
            return tid
        finally:
            await gw.close()

    tid = asyncio.run(run())
    capsys.readouterr()
    assert main(["dedup", "show", tid]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[3] for line in lines if not line.startswith(" ")] == ["new", "followup"]
    assert lines[-1] == (
        f"    named {tid[:4]}-{tid[4:]}, which its sender holds: added as a follow-up"
    )


def test_status_show_prints_the_status_and_every_change(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["migrate"]) == 0

    async def run() -> tuple[str, str]:
        gw = bootstrap.build(load_settings())
        try:
            raw = RawInbound(Channel.WEB, b'{"body": "Lampu mati"}', datetime.now(UTC), "cli-st")
            receipt = await gw.intake.accept(raw, gw.parsers.get("web.json"))
            tid = receipt.tracking_id
            assert tid is not None
            async with gw.engine.connect() as conn:
                cid = (
                    await conn.execute(select(complaints.c.id).where(complaints.c.tracking_id == tid))
                ).scalar_one()
            for key, word, at, agency in [
                ("m-2", "forwarded", "2026-12-05T03:00:00Z", "Dinas PU"),
                ("m-1", "verified", "2026-12-05T02:00:00Z", None),  # arrived after: older
            ]:
                body = {"schema_version": "1.0", "complaint_id": cid, "tracking_id": tid,
                        "status": word, "changed_at": at, "agency": agency}
                change = status_feed.parse(json.dumps(body).encode(), key)
                await status_feed.apply(gw.engine, change, datetime.now(UTC))
            return tid, gw.intake.followup_code(tid)
        finally:
            await gw.close()

    tid, code = asyncio.run(run())
    capsys.readouterr()
    assert main(["status", "show", tid.lower()]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"{tid[:4]}-{tid[4:]}  status=forwarded")
    assert "updated=2026-12-05 03:00" in lines[0] and "agency=Dinas PU" in lines[0]
    assert lines[1].startswith("2026-12-05 02:00  verified") and "older" in lines[1]
    assert lines[2].startswith("2026-12-05 03:00  forwarded") and "shown" in lines[2]
    assert "message_id=m-2" in lines[2] and len(lines) == 3
    assert main(["status", "show", "ABCDEFGH2"]) == 1
    # The help desk, for a citizen who lost the receipt: the code the receipt gave.
    assert main(["status", "show", "--code", tid]) == 0
    shown = capsys.readouterr().out.splitlines()
    assert shown[1] == f"  follow-up code: {tracking.display_code(code)}"


@pytest.fixture
def own_broker(
    env: Path, broker_names: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    """The CLI's broker names for this test only (removed after)."""
    for key, name in broker_names.items():
        monkeypatch.setenv(f"LAPOR_BROKER__{key.upper()}", name)
    yield broker_names
    asyncio.run(delete_topology(broker_names))


def test_outbox_republish_takes_explicit_times_and_queues_published_events(
    own_broker: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["migrate"]) == 0
    _quarantine_one()
    assert main(["quarantine", "replay"]) == 0  # one complaint, its event pending

    async def publish_all() -> None:
        gw = bootstrap.build(load_settings())
        try:
            assert gw.relay is not None
            while await gw.relay.publish_batch():
                pass
            await gw.relay.close()
        finally:
            await gw.close()

    asyncio.run(publish_all())
    capsys.readouterr()
    with pytest.raises(SystemExit) as refused:  # a time without its offset is not guessed
        main(["outbox", "republish", "--since", "2026-12-01T00:00"])
    assert refused.value.code == 2 and "+07:00" in capsys.readouterr().err
    assert main(["outbox", "republish", "--since", "2026-12-02T00:00Z",
                 "--until", "2026-12-01T00:00+07:00"]) == 2
    assert "later than --since" in capsys.readouterr().err

    since = "2000-01-01T00:00+07:00"
    assert main(["outbox", "republish", "--since", since, "--channel", "sms"]) == 0
    assert "queued again 0 published events" in capsys.readouterr().out
    assert main(["outbox", "republish", "--since", since, "--dry-run"]) == 0
    assert capsys.readouterr().out.startswith("would queue again 1 published events committed ")
    assert main(["outbox", "status"]) == 0
    assert json.loads(capsys.readouterr().out)["pending"] == 0  # the dry run changed nothing
    assert main(["outbox", "republish", "--since", since]) == 0
    assert "queued again 1 published events" in capsys.readouterr().out
    assert main(["outbox", "status"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["pending"] == 1 and status["published"] == 0
    asyncio.run(publish_all())
    drained = asyncio.run(drain(own_broker["queue"], expected=2))
    assert len({m.message_id for m in drained}) == 1  # sent twice, one id


def test_outbox_prune_dry_run_counts_then_prunes(
    env: Path, database_url: str, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LAPOR_DATABASE__URL", database_url)  # each test database in turn
    for key, value in TEST_KEYS.items():
        monkeypatch.setenv(f"LAPOR_SECURITY__{key.upper()}", value)
    assert main(["migrate"]) == 0
    now = datetime.now(UTC)

    def row(created: datetime, published: datetime | None) -> dict[str, Any]:
        return {"message_id": str(uuid.uuid4()), "event": "created", "channel": "web",
                "routing_key": "complaint.created.web", "body": "{}", "created_at": created,
                "published_at": published}

    old = now - timedelta(days=100)
    rows = [row(old, None), row(old, old), row(old, old), row(now, now)]

    async def seed() -> None:
        gw = bootstrap.build(load_settings())
        try:
            async with gw.engine.begin() as conn:
                await conn.execute(delete(outbox))
                await conn.execute(outbox.insert(), rows)
        finally:
            await gw.close()

    async def left() -> int:
        gw = bootstrap.build(load_settings())
        try:
            async with gw.engine.connect() as conn:
                return int((await conn.execute(select(func.count()).select_from(outbox))).scalar_one())
        finally:
            await gw.close()

    asyncio.run(seed())
    capsys.readouterr()
    assert main(["outbox", "prune", "--dry-run"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["dry_run"] is True and report["would_remove"] == 2
    assert report["keep_published_seconds"] == 90 * 86400
    assert asyncio.run(left()) == 4  # the dry run deleted nothing
    assert main(["outbox", "prune"]) == 0
    assert json.loads(capsys.readouterr().out)["removed"] == 2
    assert asyncio.run(left()) == 2  # the pending one and the recent one
    assert main(["outbox", "republish", "--since", "2000-01-01T00:00Z", "--dry-run"]) == 0
    assert "are not sent again (outbox.keep_published" in capsys.readouterr().err
    asyncio.run(seed())
    # Published 100 days ago and not pruned yet: still not sent again (the routing core keeps a
    # message_id keep_published after it last received it, not longer); only the recent one.
    assert main(["outbox", "republish", "--since", "2000-01-01T00:00Z", "--dry-run"]) == 0
    assert "would queue again 1 published events" in capsys.readouterr().out
    monkeypatch.setenv("LAPOR_OUTBOX__KEEP_PUBLISHED", "0")
    assert main(["outbox", "prune"]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["removed"] == 0 and "kept for ever" in out.err
    assert asyncio.run(left()) == 4


def test_sms_prune_counts_then_deletes_old_replies(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in TEST_KEYS.items():
        monkeypatch.setenv(f"LAPOR_SECURITY__{key.upper()}", value)
    assert main(["migrate"]) == 0
    old = datetime.now(UTC) - timedelta(days=100)

    async def seed() -> None:
        gw = bootstrap.build(load_settings())
        try:
            async with gw.engine.begin() as conn:
                await conn.execute(sms_replies.insert(), [
                    {"raw_inbound_id": str(uuid.uuid4()), "bridge": "kannel", "recipient": "x",
                     "kind": "receipt", "body": "b", "status": status, "created_at": old,
                     "next_attempt_at": old}
                    for status in ("sent", "failed", "pending")
                ])
        finally:
            await gw.close()

    asyncio.run(seed())
    capsys.readouterr()
    assert main(["sms", "prune", "--dry-run"]) == 0
    assert "would delete 2 replies and 0 joined parts" in capsys.readouterr().out
    assert main(["sms", "prune"]) == 0
    assert "deleted 2 replies" in capsys.readouterr().out
    assert main(["sms", "prune"]) == 0
    assert "deleted 0 replies" in capsys.readouterr().out


def test_keys_reseal_after_a_rotation_then_nothing_left(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["migrate"]) == 0
    _quarantine_one()  # sealed under the generated data key of the embedded default
    old = (env / "var" / "secrets" / "data_key.b64").read_text().strip()
    identity = (env / "var" / "secrets" / "identity_key.b64").read_text().strip()
    new = base64.b64encode(os.urandom(32)).decode()
    monkeypatch.setenv("LAPOR_SECURITY__IDENTITY_KEY", identity)
    monkeypatch.setenv("LAPOR_SECURITY__DATA_KEY", new)
    monkeypatch.setenv("LAPOR_SECURITY__PREVIOUS_DATA_KEYS", json.dumps([old]))
    capsys.readouterr()
    assert main(["keys", "reseal"]) == 0
    first = capsys.readouterr().out
    assert json.loads(first[: first.rindex("}") + 1])["resealed"]["raw_inbound"] == 1
    monkeypatch.delenv("LAPOR_SECURITY__PREVIOUS_DATA_KEYS")
    assert main(["keys", "reseal"]) == 0
    assert capsys.readouterr().out.rstrip().endswith(
        "0 sealed again under the current data key or left for the next run")
    assert main(["quarantine", "show", "1"]) == 0  # the new key alone opens it
    assert "Pungli di kantor kelurahan" in capsys.readouterr().out
    # The old key alone opens nothing any more, and says so without a traceback.
    monkeypatch.setenv("LAPOR_SECURITY__DATA_KEY", old)
    assert main(["keys", "reseal"]) == 1
    err = capsys.readouterr().err
    assert "LAPOR_SECURITY__PREVIOUS_DATA_KEYS" in err and "Traceback" not in err


def test_files_gc_dry_run_then_deletes_and_refuses_a_short_grace(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["migrate"]) == 0
    _quarantine_one()  # a row to read (sealed under the generated data key)

    async def orphan() -> Path:
        gw = bootstrap.build(load_settings())
        try:
            path = gw.files.path(await gw.files.put_bytes(b"photo of a refused form"))
        finally:
            await gw.close()
        then = time.time() - 2 * 86_400
        os.utime(path, (then, then))
        return path

    path = asyncio.run(orphan())
    capsys.readouterr()
    assert main(["files", "gc", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "files scanned: 1" in out and "would delete: 1" in out and path.exists()
    assert main(["files", "gc", "--grace-hours", "0.5"]) == 2
    assert "--grace-hours must be a number of hours, at least 1" in capsys.readouterr().err and path.exists()
    assert main(["files", "gc", "--dry-run", "--grace-hours", "2"]) == 0
    assert "web.csrf_max_age" in capsys.readouterr().err  # deletes no sooner than forms expire
    assert main(["files", "gc"]) == 0
    out = capsys.readouterr().out
    assert "deleted: 1" in out and "kept, younger than 24 h: 0" in out and not path.exists()


def test_outbox_unopenable_set_aside_and_restore(
    own_broker: dict[str, str], settings: Settings, database_url: str,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    # ``settings`` only empties the test database's tables (PostgreSQL's is shared).
    monkeypatch.setenv("LAPOR_DATABASE__URL", database_url)  # each test database in turn
    for key, value in TEST_KEYS.items():
        monkeypatch.setenv(f"LAPOR_SECURITY__{key.upper()}", value)
    assert main(["migrate"]) == 0
    lost_key = base64.b64encode(os.urandom(32)).decode()  # a replica's key, gone since
    plain = Parser("test.plain", lambda r: ComplaintDraft(body=r.body.decode()))

    async def accept(text: str, provider_id: str, publish: bool = False) -> tuple[str, str]:
        """(message_id, tracking ID) of a new complaint; ``publish``: then run one batch."""
        gw = bootstrap.build(load_settings())
        try:
            raw = RawInbound(Channel.WEB, text.encode(), datetime.now(UTC), provider_id)
            receipt = await gw.intake.accept(raw, plain)
            async with gw.engine.connect() as conn:
                mid = (await conn.execute(select(outbox.c.message_id).where(
                    outbox.c.complaint_id == receipt.complaint_id))).scalar_one()
            if publish:
                assert gw.relay is not None
                await gw.relay.publish_batch()
                await gw.relay.close()
            assert receipt.tracking_id is not None
            return mid, receipt.tracking_id
        finally:
            await gw.close()

    def json_out() -> Any:
        return json.loads(capsys.readouterr().out)

    monkeypatch.setenv("LAPOR_SECURITY__DATA_KEY", lost_key)
    lost, lost_tracking = asyncio.run(accept("lampu mati", "cli-sa-1"))
    monkeypatch.setenv("LAPOR_SECURITY__DATA_KEY", TEST_KEYS["data_key"])
    # A relay publishes this one and gives the other back.
    published, _ = asyncio.run(accept("jalan rusak", "cli-sa-2", publish=True))
    pending, _ = asyncio.run(accept("sampah menumpuk", "cli-sa-3"))
    capsys.readouterr()

    assert main(["outbox", "status"]) == 0
    status = json_out()
    assert (status["pending"], status["unopenable"], status["set_aside"]) == (1, 1, 0)
    assert main(["outbox", "unopenable"]) == 0
    listing = json_out()
    assert listing["count"] == 1 and listing["given_back_but_open_here"] == 0
    [event] = listing["unopenable"]
    assert (event["message_id"], event["tracking_id"], event["channel"]) == (
        lost, lost_tracking, "web")
    assert event["attempts"] == 1 and event["last_error"].startswith("data-key:")
    assert datetime.fromisoformat(event["created_at"]) < datetime.now(UTC)

    # One transaction per event: the one that opens is refused, the other set aside.
    assert main(["outbox", "set-aside", pending, lost, "--reason", "kunci hilang"]) == 1
    out = capsys.readouterr()
    assert f"{pending}: it opens with this process's data keys" in out.err
    [aside] = json.loads(out.out)["set_aside"]
    assert (aside["message_id"], aside["tracking_id"], aside["reason"]) == (
        lost, lost_tracking, "kunci hilang")
    assert main(["outbox", "status"]) == 0
    status = json_out()
    assert (status["pending"], status["unopenable"], status["set_aside"]) == (1, 0, 1)
    assert main(["outbox", "unopenable"]) == 0
    assert json_out() == {"unopenable": [], "count": 0, "given_back_but_open_here": 0}
    assert main(["outbox", "unopenable", "--set-aside"]) == 0
    [kept] = json_out()["set_aside"]
    assert (kept["message_id"], kept["opens_now"], kept["reason"]) == (lost, False, "kunci hilang")

    for refused, why in ((published, "not pending: published at"),
                         (str(uuid.uuid4()), "no such event in the outbox"),
                         (lost, "already set aside")):
        assert main(["outbox", "set-aside", refused, "--force"]) == 1
        out = capsys.readouterr()
        assert why in out.err and json.loads(out.out) == {"set_aside": []}
    assert main(["outbox", "restore", lost]) == 1  # no key opens it yet
    assert "LAPOR_SECURITY__PREVIOUS_DATA_KEYS" in capsys.readouterr().err

    # The key turned up: added as a previous key, the event opens and goes back.
    monkeypatch.setenv("LAPOR_SECURITY__PREVIOUS_DATA_KEYS", json.dumps([lost_key]))
    assert main(["outbox", "unopenable", "--set-aside"]) == 0
    assert json_out()["set_aside"][0]["opens_now"] is True
    assert main(["outbox", "restore", lost]) == 0
    [back] = json_out()["restored"]
    assert (back["message_id"], back["tracking_id"]) == (lost, lost_tracking)
    assert main(["outbox", "status"]) == 0
    status = json_out()
    assert (status["pending"], status["unopenable"], status["set_aside"]) == (2, 0, 0)


def _keys_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in TEST_KEYS.items():
        monkeypatch.setenv(f"LAPOR_SECURITY__{key.upper()}", value)


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("lapor-gateway")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# Every subcommand that reads the database, as the operator types it on a fresh one.
_READERS = [
    ["quarantine", "list"],
    ["quarantine", "show", "1"],
    ["quarantine", "replay"],
    ["outbox", "status"],
    ["outbox", "republish", "--since", "2026-12-01T08:00+07:00", "--dry-run"],
    ["dedup", "show", "G69P5CAWW"],
    ["status", "show", "G69P5CAWW"],
    ["staff", "list"],
    ["staff", "create", "--username", "ani", "--role", "supervisor"],
    ["sms", "prune", "--dry-run"],
]


def test_every_command_on_an_unmigrated_database_says_run_migrate(
    env: Path, empty_url: str, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LAPOR_DATABASE__URL", empty_url)
    _keys_in_env(monkeypatch)
    for argv in _READERS:
        monkeypatch.setattr("sys.stdin", io.StringIO("kata-sandi-panjang\n"))
        assert main(argv) == 1, argv
        assert "run `lapor-gateway migrate`" in _one_line_error(capsys), argv


def test_a_mistyped_sqlite_path_is_named_and_no_empty_database_made_there(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _keys_in_env(monkeypatch)
    typo = env / "vra" / "lapor.db"  # var/ mistyped
    monkeypatch.setenv("LAPOR_DATABASE__URL", f"sqlite+aiosqlite:///{typo}")
    for argv in [["serve"], ["files", "gc", "--dry-run"], *_READERS]:
        monkeypatch.setattr("sys.stdin", io.StringIO("kata-sandi-panjang\n"))
        assert main(argv) == 1, argv
        error = _one_line_error(capsys)
        assert f"no database at {typo}" in error and "LAPOR_DATABASE__URL" in error, argv
    assert not typo.parent.exists()
    assert main(["migrate"]) == 0 and typo.exists()  # made where migrate is told to


def test_a_database_that_cannot_be_reached_is_one_line_not_a_traceback(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _keys_in_env(monkeypatch)
    (env / "not-a-folder").write_text("")
    unreachable = {
        # PostgreSQL: a database nobody created, a port nothing listens on
        f"postgresql+asyncpg://postgres@127.0.0.1:5432/lapor_missing_{uuid.uuid4().hex[:8]}":
            "does not exist",
        "postgresql+asyncpg://postgres@127.0.0.1:1/lapor": "database postgresql+asyncpg://",
        # a host name: the error names the addresses it resolved to, not the name
        "postgresql+asyncpg://postgres@localhost:1/lapor": "database postgresql+asyncpg://",
        # SQLite: a file that cannot be made
        f"sqlite+aiosqlite:///{env}/not-a-folder/lapor.db": "not-a-folder",
    }
    for url, why in unreachable.items():
        monkeypatch.setenv("LAPOR_DATABASE__URL", url)
        for argv in [["migrate"], ["outbox", "prune", "--dry-run"], *_READERS]:
            monkeypatch.setattr("sys.stdin", io.StringIO("kata-sandi-panjang\n"))
            assert main(argv) == 1, (url, argv)
            assert why in _one_line_error(capsys), (url, argv)


def test_serve_on_a_port_in_use_is_one_line(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["migrate"]) == 0
    capsys.readouterr()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        monkeypatch.setenv("LAPOR_HTTP__PORT", str(taken.getsockname()[1]))
        monkeypatch.setenv("LAPOR_LETTER__ENABLED", "false")
        assert main(["serve"]) == 1
    assert "address already in use" in _one_line_error(capsys)


def test_keys_that_are_not_keys_are_invalid_settings(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["migrate"]) == 0
    capsys.readouterr()
    monkeypatch.setenv("LAPOR_SECURITY__DATA_KEY", "rahasia")  # not 32 bytes of base64
    for argv in (["check-config"], ["outbox", "status"], ["quarantine", "list"]):
        assert main(argv) == 2, argv
        assert "security.data_key" in _one_line_error(capsys)
    monkeypatch.delenv("LAPOR_SECURITY__DATA_KEY")
    monkeypatch.setenv("LAPOR_SECURITY__PREVIOUS_DATA_KEYS", '["c2hvcnQ="]')
    assert main(["check-config"]) == 2
    assert "security.previous_data_keys[0]" in _one_line_error(capsys)
    monkeypatch.delenv("LAPOR_SECURITY__PREVIOUS_DATA_KEYS")
    # PostgreSQL without keys: refused by check-config too, and without connecting.
    monkeypatch.setenv("LAPOR_DATABASE__URL", "postgresql+asyncpg://postgres@127.0.0.1:1/lapor")
    assert main(["check-config"]) == 2
    assert "LAPOR_SECURITY__IDENTITY_KEY" in _one_line_error(capsys)
    # The embedded default makes no key file for check-config.
    monkeypatch.setenv("LAPOR_SECURITY__GENERATED_KEYS_DIR", str(env / "fresh-secrets"))
    monkeypatch.delenv("LAPOR_DATABASE__URL")
    assert main(["check-config"]) == 0
    assert not (env / "fresh-secrets").exists()


def _quarantined_id(capsys: pytest.CaptureFixture[str]) -> str:
    """The id of the one open quarantine entry (PostgreSQL's sequence goes on across tests)."""
    capsys.readouterr()
    assert main(["quarantine", "list"]) == 0
    return capsys.readouterr().out.split()[0]


def test_quarantine_show_and_replay_when_no_data_key_opens_the_message(
    env: Path, settings: Settings, database_url: str, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # ``settings`` only empties the test database's tables (PostgreSQL's is shared).
    monkeypatch.setenv("LAPOR_DATABASE__URL", database_url)
    _keys_in_env(monkeypatch)
    _quarantine_one()
    entry = _quarantined_id(capsys)
    monkeypatch.setenv("LAPOR_SECURITY__DATA_KEY", base64.b64encode(os.urandom(32)).decode())
    assert main(["quarantine", "show", entry]) == 1
    assert "LAPOR_SECURITY__PREVIOUS_DATA_KEYS" in _one_line_error(capsys)
    assert main(["quarantine", "replay"]) == 1
    out = capsys.readouterr()
    assert f"{entry}: not replayed" in out.out and "PREVIOUS_DATA_KEYS" in out.out, out
    assert "Traceback" not in out.err
    monkeypatch.setenv("LAPOR_SECURITY__DATA_KEY", TEST_KEYS["data_key"])
    assert main(["quarantine", "replay", entry]) == 0  # the right key: replayed after all
    assert f"{entry}: accepted" in capsys.readouterr().out


def test_times_are_printed_as_stored_and_numbers_in_a_form_body_masked(
    env: Path, settings: Settings, database_url: str, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A time whose microseconds start with 0 ("…52.096123+00:00") reads like a phone number.
    monkeypatch.setenv("LAPOR_DATABASE__URL", database_url)
    _keys_in_env(monkeypatch)
    moment = datetime(2026, 12, 5, 0, 2, 52, 96123, UTC)
    # A Gammu post as stored (curl --data-urlencode): spaces are "+", the inbox file names the
    # sender.
    body = (
        "SMS_1_NUMBER=&SMS_1_TEXT=lampu+mati+hubungi+081234567899+atau+nomor+6281298765432"
        "&ids=IN20261204_135929_00_%2B6281234567890_00.txt"
    )

    def buggy(_raw: RawInbound) -> ComplaintDraft:
        raise ParseError("sender missing", stage="decode")

    async def seed() -> None:
        gw = bootstrap.build(load_settings(), clock=lambda: moment)
        try:
            raw = RawInbound(Channel.SMS, body.encode(), moment, "cli-times")
            await gw.intake.accept(raw, Parser("sms.gammu", buggy))
            async with gw.engine.begin() as conn:
                await conn.execute(outbox.insert(), {
                    "message_id": str(uuid.uuid4()), "event": "created", "channel": "web",
                    "routing_key": "complaint.created.web", "body": "{}", "created_at": moment,
                })
        finally:
            await gw.close()

    asyncio.run(seed())
    entry = _quarantined_id(capsys)
    assert main(["outbox", "status"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["by_channel"]["web"]["oldest"] == moment.isoformat()
    assert main(["quarantine", "show", entry]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert datetime.fromisoformat(shown["created_at"]) == moment
    assert datetime.fromisoformat(shown["received_at"]) == moment
    for number in ("1234567899", "1298765432", "1234567890"):
        assert number not in shown["body"], shown["body"]
    assert "lampu+mati+hubungi+081" in shown["body"]  # the rest as stored
    assert main(["quarantine", "show", entry, "--reveal"]) == 0
    assert json.loads(capsys.readouterr().out)["body"] == body


def test_a_time_without_offset_is_refused_with_an_example_that_is_accepted(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for written, example in (("2026-12-01", "2026-12-01T00:00+07:00"),
                             ("2026-12-01T08:00", "2026-12-01T08:00+07:00"),
                             ("2026-12-01T08:00:30", "2026-12-01T08:00:30+07:00")):
        with pytest.raises(SystemExit) as refused:
            main(["outbox", "republish", "--since", written, "--dry-run"])
        err = capsys.readouterr().err
        assert refused.value.code == 2 and f"e.g. {example} for WIB" in err, err


def test_the_migration_check_adds_no_lines_to_a_command(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["migrate"]) == 0
    assert "Running upgrade" in capsys.readouterr().err  # migrate says what it does
    for argv in (["quarantine", "list"], ["outbox", "status"], ["outbox", "prune", "--dry-run"]):
        assert main(argv) == 0
        assert capsys.readouterr().err == "", argv  # not alembic's "Context impl SQLiteImpl."


def test_migrate_needs_only_the_database_settings_as_the_compose_migrate_service_has(
    env: Path, empty_url: str, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # docker-compose.yml gives its `migrate` job the database URL and password, no keys:
    # migrate refusing for want of LAPOR_SECURITY__IDENTITY_KEY kept both replicas from starting.
    monkeypatch.setenv("LAPOR_DATABASE__URL", empty_url)
    for name in ("IDENTITY_KEY", "DATA_KEY"):
        monkeypatch.delenv(f"LAPOR_SECURITY__{name}", raising=False)
    assert main(["migrate"]) == 0, capsys.readouterr().err
    assert "database at migration" in capsys.readouterr().out


def test_check_config_and_metrics_tell_the_data_key_by_its_fingerprint(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _keys_in_env(monkeypatch)
    old = base64.b64encode(os.urandom(32)).decode()
    monkeypatch.setenv("LAPOR_SECURITY__PREVIOUS_DATA_KEYS", json.dumps([old]))
    assert main(["check-config"]) == 0
    out = capsys.readouterr().out
    shown = json.loads(out)["security"]
    data_key = base64.b64decode(TEST_KEYS["data_key"])
    assert shown["data_key"] == "********"
    assert shown["key_fingerprints"] == {
        "identity_key": fingerprint(base64.b64decode(TEST_KEYS["identity_key"])),
        "data_key": fingerprint(data_key),
        "previous_data_keys": [fingerprint(base64.b64decode(old))],
    }
    assert TEST_KEYS["data_key"] not in out and old not in out
    assert fingerprint(data_key) != fingerprint(base64.b64decode(old))
    # Each process reports the same fingerprint on /metrics (LaporDataKeysDiffer compares them).
    gateway = bootstrap.build(load_settings())
    try:
        sample = gateway.metrics.registry.get_sample_value(
            "lapor_data_key_info", {"fingerprint": fingerprint(data_key)}
        )
        assert sample == 1
    finally:
        asyncio.run(gateway.close())


def test_check_config_masks_a_password_or_token_in_a_url_query(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A Kannel sendsms URL written with its password, a Jasmin URL with a token: check-config
    # printed both in clear (only the database and broker URLs' user info was masked).
    monkeypatch.setenv(
        "LAPOR_SMS__KANNEL_SENDSMS_URL",
        "http://kannel:13013/cgi-bin/sendsms?username=lapor&password=kannel-s3cret",
    )
    monkeypatch.setenv("LAPOR_SMS__JASMIN_SEND_URL", "http://jasmin:1401/send?token=jasmin-s3cret")
    monkeypatch.setenv("LAPOR_SMS__CALLBACK_URL", "http://lapor:s3cret-callback@gw:8080")
    assert main(["check-config"]) == 2  # a password in the user info: refused, not printed
    assert "s3cret-callback" not in capsys.readouterr().err
    monkeypatch.delenv("LAPOR_SMS__CALLBACK_URL")
    assert main(["check-config"]) == 0
    out = capsys.readouterr().out
    assert "kannel-s3cret" not in out and "jasmin-s3cret" not in out
    sms = json.loads(out)["sms"]
    assert sms["kannel_sendsms_url"].endswith("?username=lapor&password=********")
    assert sms["jasmin_send_url"] == "http://jasmin:1401/send?token=********"
    # Written in the file, it is a secret in the file: refused at start, without repeating it.
    conf = env / "gateway.toml"
    conf.write_text('[sms]\njasmin_send_url = "http://jasmin:1401/send?token=jasmin-s3cret"\n')
    monkeypatch.delenv("LAPOR_SMS__JASMIN_SEND_URL")
    monkeypatch.setenv("LAPOR_CONFIG", str(conf))
    assert main(["check-config"]) == 2
    error = _one_line_error(capsys)
    assert "sms.jasmin_send_url" in error and "jasmin-s3cret" not in error


def test_http_port_zero_fails_at_start_naming_the_key(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Taken, serve listened on a port the system chose, that nothing in front of it knew.
    monkeypatch.setenv("LAPOR_HTTP__PORT", "0")
    assert main(["serve"]) == 2
    assert "http.port" in _one_line_error(capsys)


def test_quarantine_replay_run_twice_does_nothing_the_second_time(
    env: Path, settings: Settings, database_url: str, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The second run of the same replay (a dropped terminal, a retried cron job) said "not
    # found or already resolved" and failed with 1, as for an id that never existed.
    monkeypatch.setenv("LAPOR_DATABASE__URL", database_url)
    _keys_in_env(monkeypatch)
    tracking_id = _quarantine_one()
    entry = _quarantined_id(capsys)
    assert main(["quarantine", "replay", entry]) == 0
    assert f"{entry}: accepted {tracking_id}" in capsys.readouterr().out

    async def counts() -> tuple[int, int]:
        gw = bootstrap.build(load_settings())
        try:
            async with gw.engine.connect() as conn:
                made = (await conn.execute(select(func.count()).select_from(complaints))).scalar()
                events = (await conn.execute(select(func.count()).select_from(outbox))).scalar()
            return int(made or 0), int(events or 0)
        finally:
            await gw.close()

    before = asyncio.run(counts())
    assert main(["quarantine", "replay", entry]) == 0
    assert capsys.readouterr().out.strip() == f"{entry}: already resolved, nothing done"
    assert asyncio.run(counts()) == before == (1, 1)
    missing = str(int(entry) + 1000)
    assert main(["quarantine", "replay", entry, missing]) == 1  # one id that has no entry
    out = capsys.readouterr().out.splitlines()
    assert out == [
        f"{entry}: already resolved, nothing done",
        f"{missing}: no quarantine entry {missing}",
    ]


@pytest.mark.parametrize("bad", ["99999999999999999999", "9223372036854775808", "0", "-5", "x1"])
@pytest.mark.parametrize("action", ["show", "replay"])
def test_a_quarantine_id_no_entry_can_have_is_a_usage_error(
    env: Path, capsys: pytest.CaptureFixture[str], action: str, bad: str
) -> None:
    # An id beyond a 64-bit integer ended in an OverflowError traceback (SQLite).
    assert main(["migrate"]) == 0
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        main(["quarantine", action, bad])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "not a quarantine entry id" in err and "Traceback" not in err


@pytest.mark.parametrize("command", ["status", "dedup"])
@pytest.mark.parametrize("typed", ["3201014101900001", "081234567890"])
def test_a_nik_or_phone_typed_as_a_tracking_id_is_masked_in_the_answer(
    env: Path, capsys: pytest.CaptureFixture[str], command: str, typed: str
) -> None:
    assert main(["migrate"]) == 0
    capsys.readouterr()
    assert main([command, "show", typed]) == 1
    err = capsys.readouterr().err
    assert "no complaint with tracking ID" in err and typed not in err
    assert typed[:3] in err  # masked, not dropped: the operator still sees what was typed


def test_serve_on_a_host_name_that_does_not_resolve_names_http_host(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # "lapor-gateway: [Errno -2] Name or service not known": which name, of which setting?
    assert main(["migrate"]) == 0
    capsys.readouterr()
    monkeypatch.setenv("LAPOR_HTTP__HOST", "lapor-gateway-nowhere.invalid")
    monkeypatch.setenv("LAPOR_LETTER__ENABLED", "false")
    assert main(["serve"]) == 1
    assert "http.host lapor-gateway-nowhere.invalid: " in _one_line_error(capsys)


def test_a_relative_sqlite_path_is_named_in_full_when_there_is_no_database(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The default is relative (var/lapor.db): run from another directory, the command said
    # "no database at var/lapor.db", which is there, just not where it looked.
    _keys_in_env(monkeypatch)
    monkeypatch.setenv("LAPOR_DATABASE__URL", "sqlite+aiosqlite:///var/lapor.db")
    assert main(["quarantine", "list"]) == 1
    error = _one_line_error(capsys)
    assert f"no database at {env / 'var' / 'lapor.db'} (var/lapor.db in the working" in error


def test_check_config_says_which_file_and_variables_it_read(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Run from another directory, check-config read no file and printed the defaults as "the
    # effective settings", saying nothing of it.
    monkeypatch.setenv("LAPOR_BROKER__PASSWORD", "rahasia-sekali")
    assert main(["check-config"]) == 0
    err = capsys.readouterr().err
    assert f"no config/gateway.toml in {env}: the documented defaults" in err
    assert "LAPOR_BROKER__PASSWORD" in err and "LAPOR_DATABASE__URL" in err
    assert "rahasia-sekali" not in err  # names, never values
    conf = env / "lapor.toml"
    conf.write_text("[http]\nport = 9090\n")
    monkeypatch.setenv("LAPOR_CONFIG", str(conf))
    assert main(["check-config"]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["http"]["port"] == 9090
    assert f"settings from {conf}, overridden by " in out.err


def test_only_migrate_of_a_new_database_makes_the_embedded_defaults_keys(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # var/secrets is relative to the working directory, like the default database: run from
    # another directory on the same database, every command made a second pair of keys there
    # and carried on with them.
    assert main(["migrate"]) == 0
    assert (env / "var" / "secrets" / "data_key.b64").exists()
    elsewhere = env / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    capsys.readouterr()
    for argv in [["serve"], ["files", "gc", "--dry-run"], *_READERS]:
        monkeypatch.setattr("sys.stdin", io.StringIO("kata-sandi-panjang\n"))
        assert main(argv) == 1, argv
        error = _one_line_error(capsys)
        assert "no key file identity_key.b64, data_key.b64 in" in error, argv
        assert f"{elsewhere / 'var' / 'secrets'} (var/secrets in the working directory)" in error
    # migrate itself migrates, but makes no keys beside a database that has tables.
    assert main(["migrate"]) == 0
    assert "not made for a database that already has tables" in _one_line_error(capsys)
    assert not (elsewhere / "var").exists()
    # A key set in the environment is not looked for; the other still is.
    monkeypatch.setenv("LAPOR_SECURITY__DATA_KEY", TEST_KEYS["data_key"])
    assert main(["outbox", "status"]) == 1
    error = _one_line_error(capsys)
    assert "no key file identity_key.b64 in" in error and "LAPOR_SECURITY__IDENTITY_KEY" in error
    # Back where the keys are, the commands run.
    monkeypatch.delenv("LAPOR_SECURITY__DATA_KEY")
    monkeypatch.chdir(env)
    assert main(["outbox", "status"]) == 0


def test_quarantine_replay_masks_a_nik_typed_as_the_entry_id(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["migrate"]) == 0
    capsys.readouterr()
    assert main(["quarantine", "replay", "3201014101900001"]) == 1
    out = capsys.readouterr().out
    assert "3201014101900001" not in out and "no quarantine entry 320101********01" in out
