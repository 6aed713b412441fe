"""Edges of masking in both log formats, migrations run end to end from every revision, and
the own ID of a phone that asks confidentiality again."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway import logs
from gateway.cli import main
from gateway.settings import DatabaseSettings
from gateway.storage import migrate
from gateway.storage.database import create_engine
from tests.conftest import TEST_KEYS
from tests.support import pg_admin

pytestmark = pytest.mark.integration

NIK = "3201014101900001"
REVISIONS = [f"{n:04d}" for n in range(1, 16)]


def _record(msg: str, args: tuple[object, ...] = (), **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("gateway.test", logging.INFO, __file__, 1, msg, args, None)
    for k, v in extra.items():
        setattr(record, k, v)
    return record


# --- defects -------------------------------------------------------------------------------


def test_text_log_line_with_unformattable_arguments_is_written_masked_not_lost() -> None:
    """With ``logging.format = "text"``, a call whose arguments do not fit its message is still
    one masked line, as in JSON: not lost, with logging's own report printing the arguments (a
    NIK) in clear to stderr."""
    logs.configure("INFO", "text")
    root = logging.getLogger()
    stream = io.StringIO()
    root.handlers[0].stream = stream  # type: ignore[attr-defined]
    saved_err = sys.stderr
    sys.stderr = err = io.StringIO()
    try:
        logging.getLogger("gateway.test").info("lookup of NIK %d", NIK)
    finally:
        sys.stderr = saved_err
        root.handlers[:] = []
    written = stream.getvalue() + err.getvalue()
    assert NIK not in written, f"NIK in clear: {written[-400:]!r}"
    assert "lookup of NIK" in stream.getvalue(), "line lost"


def test_json_extra_field_named_extra_time_is_not_overwritten() -> None:
    """An extra field named ``time`` is kept under a name of its own without losing a field the
    caller itself named ``extra_time``."""
    line = json.loads(
        logs.JsonFormatter().format(
            _record("sent", time="2026-12-01T08:00", extra_time="queued 3s")
        )
    )
    assert list(line)[0] == "time"
    values = set(map(str, line.values()))
    assert "queued 3s" in values and "2026-12-01T08:00" in values, line


# --- checks that passed --------------------------------------------------------------------


def test_json_line_order_and_masking() -> None:
    """Time first, then level, logger, message; bytes and extras masked."""
    line = json.loads(
        logs.JsonFormatter().format(
            _record("x %s", (b"a\n" + NIK.encode(),), time=NIK, data=b"\n" + NIK.encode())
        )
    )
    assert list(line)[:4] == ["time", "level", "logger", "message"]
    assert NIK not in json.dumps(line)
    assert line["extra_time"] != NIK


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LAPOR_STORAGE__FILE_STORE", str(tmp_path / "files"))
    monkeypatch.setenv("LAPOR_LOGGING__FORMAT", "text")
    monkeypatch.setenv("LAPOR_SECURITY__IDENTITY_KEY", TEST_KEYS["identity_key"])
    monkeypatch.setenv("LAPOR_SECURITY__DATA_KEY", TEST_KEYS["data_key"])
    yield tmp_path
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_cli_migrate_fresh_and_from_each_older_revision(
    kind: str, cli_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`lapor-gateway migrate` on a fresh database, and from each revision."""
    for start in [None, *REVISIONS]:
        name = f"lapor_rv_{uuid.uuid4().hex[:10]}"
        if kind == "sqlite":
            url = f"sqlite+aiosqlite:///{cli_env}/{name}.db"
        else:
            asyncio.run(pg_admin(f'CREATE DATABASE "{name}"'))
            url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
        try:
            if start is not None:

                async def up(url: str = url, start: str = start) -> None:
                    engine = create_engine(DatabaseSettings(url=url))
                    try:
                        await migrate.upgrade(engine, start)
                    finally:
                        await engine.dispose()

                asyncio.run(up())
            monkeypatch.setenv("LAPOR_DATABASE__URL", url)
            assert main(["migrate"]) == 0, (start, capsys.readouterr().err)
            head = migrate.head_revision()
            assert f"database at migration {head}" in capsys.readouterr().out
        finally:
            if kind != "sqlite":
                asyncio.run(pg_admin(f'DROP DATABASE "{name}" WITH (FORCE)'))


@pytest.fixture
async def gw(settings):  # type: ignore[no-untyped-def]
    from gateway import bootstrap
    from tests.integration.test_identity_dedup import T0
    from tests.integration.test_own_tracking_ids import CLOCK

    CLOCK.now = T0
    gateway = bootstrap.build(settings, clock=CLOCK)
    yield gateway
    await gateway.close()


@pytest.mark.parametrize("complaint_confidential", [True, False], ids=["defect", "control"])
async def test_own_id_holder_resending_with_rahasia_into_a_confidential_complaint(
    gw, complaint_confidential: bool  # type: ignore[no-untyped-def]
) -> None:
    """A phone holding an ID of its own that writes the same words again, now asking
    confidentiality, gets that ID made confidential (no title, no place, off the Open311 listing
    by date), also when the complaint it joined is confidential already and the message is taken
    for a retry of its first."""
    from datetime import timedelta

    from gateway import queries
    from gateway.domain import Channel, ReceiptStatus
    from tests.integration.test_identity_dedup import NIK_A, PARSER, ROAD, ROAD_SMS, T0
    from tests.integration.test_own_tracking_ids import msg

    siti = await gw.intake.accept(
        msg(Channel.SMS, 0, body=ROAD, nik=NIK_A, phone="+6281234567890",
            confidential=complaint_confidential),
        PARSER,
    )
    stranger = "+6285700001111"
    first = await gw.intake.accept(
        msg(Channel.SMS, 60, body=ROAD_SMS, title="Siliwangi", nik=NIK_A, phone=stranger), PARSER
    )
    assert first.status is ReceiptStatus.ACCEPTED
    assert first.tracking_id not in (None, siti.tracking_id)
    shown = await queries.public_request(gw.engine, first.tracking_id)
    assert shown is not None and shown.title == "Siliwangi"  # its own, not confidential
    later = await gw.intake.accept(
        msg(Channel.SMS, 62, body=ROAD_SMS, title="Siliwangi", nik=NIK_A, phone=stranger,
            confidential=True),
        PARSER,
    )
    assert later.tracking_id == first.tracking_id, later
    async with gw.engine.connect() as conn:
        tiers = (await conn.exec_driver_sql(
            "SELECT tier FROM dedup_decisions ORDER BY created_at")).scalars().all()
    one = await queries.public_request(gw.engine, first.tracking_id)
    assert one is not None and (one.title, one.address) == (None, None), (tiers, one)
    listed = await queries.list_public_requests(
        gw.engine, start=T0 + timedelta(minutes=59), end=T0 + timedelta(minutes=61)
    )
    assert first.tracking_id not in {r.tracking_id for r in listed}, listed
