"""The operator's surface at its edges: commands run as typed at a shell (a process of their
own), settings, log lines, migrations and the gauges the alerts read."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from gateway.cli import main
from gateway.logs import JsonFormatter
from gateway.settings import DatabaseSettings
from gateway.storage import migrate
from gateway.storage.database import create_engine
from tests.conftest import TEST_KEYS

pytestmark = pytest.mark.integration

NIK = "3201014101900001"
PHONE = "081234567890"


def _env(tmp_path: Path, url: str, **extra: str) -> dict[str, str]:
    """The environment an operator runs lapor-gateway with: no LAPOR_ variable of this process
    (the test run's), the database URL, a file store and the keys."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAPOR_")}
    env.update(
        LAPOR_DATABASE__URL=url,
        LAPOR_STORAGE__FILE_STORE=str(tmp_path / "files"),
        LAPOR_SECURITY__IDENTITY_KEY=TEST_KEYS["identity_key"],
        LAPOR_SECURITY__DATA_KEY=TEST_KEYS["data_key"],
    )
    env.update(extra)
    return env


def _run(tmp_path: Path, env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    """``lapor-gateway ARGV`` in a process of its own, from ``tmp_path``, as typed at a shell."""
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *argv],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )


# --- 1. migrate on a database a newer release migrated ------------------------------------------


async def test_migrate_on_a_database_a_newer_release_migrated_is_one_line_not_a_traceback(
    empty_url: str, tmp_path: Path
) -> None:
    """The operator (or docker-compose's `migrate` job, run on every `up`) runs `lapor-gateway
    migrate` after rolling the image back to the previous release: exit 1 and one line on stderr,
    the words `serve` and the runbook use ("database is at migration ..., which this release does
    not know"), not Alembic's traceback."""
    engine = create_engine(DatabaseSettings(url=empty_url))
    try:
        await migrate.upgrade(engine)
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = '0099_future'"))
    finally:
        await engine.dispose()
    done = _run(tmp_path, _env(tmp_path, empty_url), "migrate")
    assert done.returncode == 1, done.stderr[-2000:]
    assert "Traceback" not in done.stderr, done.stderr[-1500:]
    assert "0099_future" in done.stderr and "does not know" in done.stderr, done.stderr[-1500:]


# --- 2. the JSON log formatter and a number after a line break ---------------------------------


@pytest.mark.parametrize("value", [PHONE, "812 3456 7890"])
def test_json_log_lines_mask_a_phone_number_that_starts_a_line_of_an_exception(
    value: str,
) -> None:
    """The formatter masks phone numbers in every part of every line, exception text included,
    in JSON (the default) as in text: also a number right after a line break, which JSON writes
    as the two characters `\\n` (masked after encoding, the number followed the letter "n" and
    was taken for the middle of a word)."""
    try:
        raise ValueError(f"isi SMS tidak terbaca:\n{value} jalan rusak")
    except ValueError:
        record = logging.getLogger("gateway.test").makeRecord(
            "gateway.test", logging.ERROR, __file__, 1, "pesan:\n%s", (value,),
            sys.exc_info(),
        )
    line = JsonFormatter().format(record)
    entry = json.loads(line)
    digits = "".join(c for c in value if c.isdigit())
    for part in ("message", "exception"):
        shown = "".join(c for c in entry[part] if c.isdigit() or c == "*")
        assert digits not in shown, (part, entry[part])


# --- 3. sms.default_region -----------------------------------------------------------------------


@pytest.mark.parametrize("region", ["XX", "12"])
def test_an_sms_default_region_that_is_no_region_fails_at_start_naming_the_key(
    region: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`default_region` is the ISO 3166 country whose numbering plan reads a sender number
    written without "+"; one that is no region (`XX`, `12`) stops the gateway at start naming
    the key. Taken, every SMS whose sender comes without "+" would be filed with no phone number
    and no sender identity (no call-back, no dedup by number)."""
    from normalizer.phone import normalize_phone

    assert normalize_phone(PHONE, region) is None  # what the setting does once taken
    handlers, level = logging.getLogger().handlers[:], logging.getLogger().level
    monkeypatch.chdir(tmp_path)
    for k in [k for k in os.environ if k.startswith("LAPOR_")]:
        monkeypatch.delenv(k)
    monkeypatch.setenv("LAPOR_SMS__DEFAULT_REGION", region)
    try:
        code = main(["check-config"])
    finally:
        logging.getLogger().handlers[:] = handlers
        logging.getLogger().setLevel(level)
    err = capsys.readouterr().err
    assert code == 2, err
    assert "sms.default_region" in err


# --- 4. database.echo --------------------------------------------------------------------------


def test_database_echo_keeps_log_lines_off_stdout_and_through_the_masking_formatter(
    tmp_path: Path,
) -> None:
    """`[database] echo` logs every SQL statement: through the gateway's masking formatter on
    stderr, like every log line, not through a plain handler of SQLAlchemy's own on stdout, in
    the middle of a command's output (`outbox status` must stay JSON) and with the statement's
    parameters (a NIK typed as an id) in clear."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'lapor.db'}"
    env = _env(tmp_path, url)
    assert _run(tmp_path, env, "migrate").returncode == 0
    env["LAPOR_DATABASE__ECHO"] = "true"
    done = _run(tmp_path, env, "outbox", "status")
    assert done.returncode == 0, done.stderr[-1500:]
    try:
        json.loads(done.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"outbox status printed more than its JSON:\n{done.stdout[:800]}")
    shown = _run(tmp_path, env, "quarantine", "show", NIK)
    assert NIK not in shown.stdout, shown.stdout[:800]


# --- 5. quarantine show/replay echo a NIK typed as the entry id ---------------------------------


@pytest.mark.parametrize("argv", [["quarantine", "show"], ["quarantine", "replay"]])
def test_a_nik_typed_as_a_quarantine_id_is_masked_in_the_answer(
    argv: list[str], tmp_path: Path
) -> None:
    """A NIK pasted as the quarantine entry id (a whole number in range, so argparse takes it)
    is masked in the answer, as in `status show` and `dedup show`."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'lapor.db'}"
    env = _env(tmp_path, url)
    assert _run(tmp_path, env, "migrate").returncode == 0
    done = _run(tmp_path, env, *argv, NIK)
    assert done.returncode == 1
    assert NIK not in done.stdout + done.stderr, done.stdout + done.stderr


# --- 6. SQLite: the way back from 0013 with messages stored ------------------------------------


async def _store_a_quarantined_message(url: str, tmp_path: Path) -> None:
    """A migrated database holding one web message its parser refused (a quarantine row, which
    refers to its raw_inbound row)."""

    from gateway import bootstrap
    from gateway.domain import Channel, ComplaintDraft, RawInbound
    from gateway.errors import ParseError
    from gateway.intake import Parser
    from gateway.settings import load_settings
    from tests.conftest import CONFIG

    settings = load_settings(CONFIG, environ={}, overrides={
        "database": {"url": url},
        "storage": {"file_store": str(tmp_path / "files")},
        "security": TEST_KEYS,
    })
    engine = create_engine(settings.database)
    await migrate.upgrade(engine)
    await engine.dispose()

    def buggy(_raw: RawInbound) -> ComplaintDraft:
        raise ParseError("old parser bug", stage="decode")

    gateway = bootstrap.build(settings)
    try:
        raw = RawInbound(Channel.WEB, b'{"body": "Jalan rusak"}', datetime.now(UTC), "rev-1")
        await gateway.intake.accept(raw, Parser("web.json", buggy))
    finally:
        await gateway.close()


async def test_sqlite_migrations_go_back_past_0013_with_messages_stored(tmp_path: Path) -> None:
    """The migrations go up and down on both databases. On SQLite, 0013's way back recreates
    raw_inbound (copy, drop, rename): with foreign keys on, one quarantine row referring to a
    message made the drop fail; they are off for the migration run and checked after it."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'lapor.db'}"
    await _store_a_quarantined_message(url, tmp_path)
    engine = create_engine(DatabaseSettings(url=url))
    try:
        await migrate.downgrade(engine, "0012")
        assert await migrate.current_revision(engine) == "0012"
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM quarantine"))).scalar() == 1
        await migrate.upgrade(engine)
    finally:
        await engine.dispose()


# --- 7. the embedded default's keys, made again by any command --------------------------------


def test_a_command_run_from_another_directory_makes_no_new_keys_for_an_existing_database(
    tmp_path: Path,
) -> None:
    """The embedded SQLite default creates its keys once, under var/secrets/ (relative to the
    working directory, like the database's path). A command run from another directory names
    the key files it looked for and stops, as for the database file, rather than mint a second
    identity key and data key there: rows sealed under the first would open with neither, and
    a `serve` started there would seal and hash identities under keys of its own."""
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    home.mkdir()
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAPOR_")}
    env.update(
        LAPOR_DATABASE__URL=f"sqlite+aiosqlite:///{home / 'var' / 'lapor.db'}",
        LAPOR_STORAGE__FILE_STORE=str(home / "var" / "files"),
    )
    done = _run(home, env, "migrate")
    assert done.returncode == 0, done.stderr[-800:]
    assert (home / "var" / "secrets" / "data_key.b64").exists()
    done = _run(elsewhere, env, "outbox", "status")
    assert not (elsewhere / "var" / "secrets").exists(), (
        "a second set of keys was made for the existing database: " + done.stderr[-600:]
    )
    assert done.returncode != 0


# --- 8. status show when the database does not answer in time ---------------------------------


@pytest.mark.parametrize("empty_url", ["postgresql"], indirect=True)
async def test_status_show_on_a_database_that_times_out_is_one_line_not_a_traceback(
    empty_url: str, tmp_path: Path
) -> None:
    """Exit status 1 is an operational failure: one line on stderr, no traceback. `status show`
    goes through the intake port, which turns a database failure (here asyncpg's command timeout
    while something holds the complaints table) into its retry signal, IntakeUnavailable: the
    command says it in one line, naming the database and the cause."""
    import asyncpg

    from gateway import bootstrap
    from gateway.domain import Channel, RawInbound
    from gateway.settings import load_settings
    from tests.conftest import CONFIG

    settings = load_settings(CONFIG, environ={}, overrides={
        "database": {"url": empty_url},
        "storage": {"file_store": str(tmp_path / "files")},
        "security": TEST_KEYS,
    })
    engine = create_engine(settings.database)
    await migrate.upgrade(engine)
    await engine.dispose()
    from channels.web import PARSERS

    gateway = bootstrap.build(settings)
    try:
        body = json.dumps({"title": "Jalan rusak", "body": "Jalan Siliwangi depan pasar rusak"})
        raw = RawInbound(Channel.WEB, body.encode(), datetime.now(UTC), "rev-lock",
                         content_type="application/json")
        receipt = await gateway.intake.accept(raw, PARSERS[0])
        assert receipt.tracking_id
    finally:
        await gateway.close()
    holder = await asyncpg.connect(empty_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        held = holder.transaction()
        await held.start()
        await holder.execute("LOCK TABLE complaints IN ACCESS EXCLUSIVE MODE")
        done = await asyncio.to_thread(
            _run, tmp_path, _env(tmp_path, empty_url), "status", "show", receipt.tracking_id
        )
        await held.rollback()
    finally:
        await holder.close()
    assert done.returncode == 1, done.stderr[-1500:]
    assert "Traceback" not in done.stderr, done.stderr[-1500:]
    assert done.stderr.startswith("lapor-gateway: "), done.stderr[-1500:]


# --- 9. the relay process's status-feed gauge ---------------------------------------------------


async def test_a_relay_process_does_not_report_that_it_runs_the_status_feed(
    tmp_path: Path, broker_names: dict[str, str]
) -> None:
    """`lapor_status_feed_enabled` is 1 when this process runs the status feed, and
    LaporStatusFeedDown reads it. `lapor-gateway relay` builds the gateway but runs only the
    outbox relay: it reports 0, or the alert would page about a feed nobody is meant to run
    wherever only the `serve` replicas were given `status_feed.enabled = false`."""
    import aiohttp

    from tests.support import delete_topology, free_port

    url = f"sqlite+aiosqlite:///{tmp_path / 'lapor.db'}"
    port = free_port()
    env = _env(tmp_path, url, LAPOR_OUTBOX__RELAY_PORT=str(port))
    for key, value in broker_names.items():
        env[f"LAPOR_BROKER__{key.upper()}"] = value
    assert _run(tmp_path, env, "migrate").returncode == 0
    relay = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.cli", "relay", cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        exposition = ""
        async with aiohttp.ClientSession() as session:
            for _ in range(100):
                try:
                    async with session.get(f"http://127.0.0.1:{port}/metrics") as answer:
                        exposition = await answer.text()
                        break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.1)
        assert "lapor_status_feed_connected" in exposition, "the relay did not answer"
        assert "lapor_status_feed_enabled 0.0" in exposition, [
            line for line in exposition.splitlines() if line.startswith("lapor_status_feed")
        ]
    finally:
        relay.terminate()
        await asyncio.wait_for(relay.wait(), 30)
        await delete_topology(broker_names)
