"""``config/gammu/lapor-onreceive`` run by ``sh`` with stand-ins for ``curl`` and
``gammu-smsd-inject`` that write down how they were called: the variables it reads, and that
SMSD and the gateway can share one environment. Then with the real curl against the gateway,
every program it starts writing down its arguments: neither the token nor the sender's number
or text is on any command line (where every local user reads them with ps), and the gateway
takes the request and stores the text exactly.
(``test_gammu_live.py`` runs it under a real Gammu SMSD.)"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from channels.sms.kannel import split_query
from gateway import bootstrap
from gateway.errors import ConfigError
from gateway.settings import load_settings
from gateway.storage import migrate
from gateway.storage.schema import raw_inbound
from tests.support import opened_complaints, opened_raw, serving_app

ROOT = Path(__file__).resolve().parents[3]
ONRECEIVE = ROOT / "config" / "gammu" / "lapor-onreceive"
CONFIG = ROOT / "config" / "gateway.toml"
URL = "http://gateway.internal:8080/sms/gammu"
REPLY = "LAPOR! Laporan diterima. No. lacak: K7QM-4XRT9."


def _stand_ins(tmp_path: Path) -> Path:
    """A folder with ``curl`` (answers REPLY) and ``gammu-smsd-inject``, each writing its
    arguments, one a line, to ``<name>.args`` and what it read on its standard input to
    ``<name>.stdin``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, answer in (("curl", REPLY), ("gammu-smsd-inject", "")):
        script = bin_dir / name
        record = shlex.quote(str(tmp_path / f"{name}.args"))
        stdin = shlex.quote(str(tmp_path / f"{name}.stdin"))
        script.write_text(
            f'#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done > {record}\n'
            f"cat > {stdin}\n"
            f"printf %s {shlex.quote(answer)}\n"
        )
        script.chmod(0o755)
    return bin_dir


def _run(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    sms = {
        "PATH": f"{_stand_ins(tmp_path)}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "SMS_MESSAGES": "1",
        "SMS_1_NUMBER": "+6281200000001",
        "SMS_1_TEXT": "Jalan rusak",
        "GAMMU_SMSDRC": str(tmp_path / "smsdrc"),
    }
    return subprocess.run(
        ["sh", str(ONRECEIVE), "IN20261205_101500_00_+6281200000001_00.txt"],
        env=sms | env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
    )


def _args(tmp_path: Path, name: str) -> list[str]:
    return (tmp_path / f"{name}.args").read_text().splitlines()


def _curl_config(tmp_path: Path) -> list[str]:
    """The lines of configuration curl read on its standard input."""
    return (tmp_path / "curl.stdin").read_text().splitlines()


def _curl_user(tmp_path: Path) -> str:
    """The ``user`` curl was given: on its standard input (``--config -``), never in its
    arguments, where every local user could read it (ps, /proc/<pid>/cmdline)."""
    args = _args(tmp_path, "curl")
    assert "--user" not in args and "-u" not in args
    assert args[args.index("--config") + 1] == "-"
    config = (tmp_path / "curl.stdin").read_text()
    (line,) = [line for line in config.splitlines() if line.startswith("user = ")]
    value = line.removeprefix("user = ")
    assert value.startswith('"') and value.endswith('"'), value
    # curl's escapes inside quotes: \\ and \" (the program writes no others).
    return re.sub(r"\\(.)", r"\1", value[1:-1])


def test_the_program_and_the_gateway_share_one_environment(tmp_path: Path) -> None:
    # The program read LAPOR_GAMMU_URL and LAPOR_GAMMU_TOKEN: in the gateway's namespace, where
    # a LAPOR_ variable that is not a setting stops the gateway at start (a typo guard). On a
    # host running both from one environment, one of them could not run.
    env = {
        "GAMMU_LAPOR_URL": URL,
        "GAMMU_LAPOR_TOKEN": "s3cret-gammu",
        "LAPOR_SMS__GAMMU_TOKEN": "s3cret-gammu",
    }
    done = _run(tmp_path, env)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    curl = _args(tmp_path, "curl")
    assert curl[-1] == URL
    assert _curl_user(tmp_path) == "lapor:s3cret-gammu"
    # The message too is on curl's standard input, not among its arguments.
    assert 'data-urlencode = "SMS_1_TEXT=Jalan rusak"' in _curl_config(tmp_path)
    assert [a for a in curl if "Jalan" in a or "6281200000001" in a] == []
    # The token goes only as the password, never among the fields the gateway stores, nor
    # anywhere on the command line.
    assert [a for a in curl if "s3cret" in a] == []
    assert [line for line in _curl_config(tmp_path) if "s3cret" in line] == [
        'user = "lapor:s3cret-gammu"'
    ]
    inject = _args(tmp_path, "gammu-smsd-inject")
    assert inject == ["-c", str(tmp_path / "smsdrc"), "TEXT", "+6281200000001", "-text", REPLY]
    # The very same environment starts the gateway.
    settings = load_settings(CONFIG, environ=env)
    assert settings.sms.gammu_token is not None
    assert settings.sms.gammu_token.get_secret_value() == "s3cret-gammu"


def test_the_old_names_are_still_read_with_a_warning(tmp_path: Path) -> None:
    # An SMSD set up for an earlier release keeps handing messages over; stderr (SMSD's log)
    # says to rename the variables, which would stop a gateway sharing its environment.
    old = {"LAPOR_GAMMU_URL": URL, "LAPOR_GAMMU_TOKEN": "old-token"}
    done = _run(tmp_path, old)
    assert done.returncode == 0, done.stderr
    assert "LAPOR_GAMMU_URL and LAPOR_GAMMU_TOKEN are old names" in done.stderr
    curl = _args(tmp_path, "curl")
    assert curl[-1] == URL and _curl_user(tmp_path) == "lapor:old-token"
    with pytest.raises(ConfigError, match="LAPOR_GAMMU_URL: unknown setting"):
        load_settings(CONFIG, environ=old)


def test_the_new_names_win_over_the_old_ones(tmp_path: Path) -> None:
    env = {
        "GAMMU_LAPOR_URL": URL,
        "GAMMU_LAPOR_TOKEN": "new-token",
        "LAPOR_GAMMU_URL": "http://old.invalid/sms/gammu",
        "LAPOR_GAMMU_TOKEN": "old-token",
    }
    done = _run(tmp_path, env)
    assert done.returncode == 0, done.stderr
    curl = _args(tmp_path, "curl")
    assert curl[-1] == URL and _curl_user(tmp_path) == "lapor:new-token"


@pytest.mark.parametrize("missing", ["GAMMU_LAPOR_URL", "GAMMU_LAPOR_TOKEN"])
def test_a_missing_variable_is_named_and_nothing_is_posted(tmp_path: Path, missing: str) -> None:
    env = {"GAMMU_LAPOR_URL": URL, "GAMMU_LAPOR_TOKEN": "t"}
    del env[missing]
    done = _run(tmp_path, env)
    assert done.returncode != 0
    assert f"set {missing}" in done.stderr
    assert not (tmp_path / "curl.args").exists()


def test_no_variable_the_program_documents_is_in_the_gateway_s_namespace() -> None:
    # The header lists what to set in SMSD's environment; the README's Gammu section too.
    header = [
        line.split()[1]
        for line in ONRECEIVE.read_text().splitlines()
        if line.startswith("#     ") and line.split()[1].isupper()
    ]
    assert header == ["GAMMU_LAPOR_URL", "GAMMU_LAPOR_TOKEN", "GAMMU_SMSDRC"]
    readme = (ROOT / "channels" / "sms" / "README.md").read_text()
    assert "`GAMMU_LAPOR_URL=https://" in readme and "`GAMMU_LAPOR_TOKEN` (=" in readme


# A token with what curl's configuration syntax would read otherwise: quotes, backslashes, a
# "#", spaces; and "$", which a shell would expand.
HARD_TOKEN = 'gammu "t\\ok\\"en $HOME #1  x'
# Every program the script runs (printf is the shell's own): each one's arguments are written
# down, as ps shows them to every local user.
RUN_BY_THE_SCRIPT = ("curl", "env", "grep", "tr", "sort", "sed")


def _recording_path(tmp_path: Path) -> Path:
    """A folder in front of PATH whose programs write their arguments (one a line, after the
    program's name) to ``argv.log`` and run the real one; ``curl`` also writes what it reads on
    its standard input to ``curl.stdin`` and hands it on; ``gammu-smsd-inject`` (no SMSD here)
    writes its arguments to ``gammu-smsd-inject.args`` only."""
    bin_dir = tmp_path / "recording"
    bin_dir.mkdir()
    log = shlex.quote(str(tmp_path / "argv.log"))
    for name in RUN_BY_THE_SCRIPT:
        real = shutil.which(name)
        assert real is not None, name
        stdin = ""
        if name == "curl":
            saved = shlex.quote(str(tmp_path / "curl.stdin"))
            stdin = f"cat > {saved}\nexec < {saved}\n"
        (bin_dir / name).write_text(
            f'#!/bin/sh\n{{ printf "%s\\n" {name}; for a in "$@"; do printf "%s\\n" "$a"; done; }}'
            f" >> {log}\n{stdin}exec {shlex.quote(real)} \"$@\"\n"
        )
        (bin_dir / name).chmod(0o755)
    record = shlex.quote(str(tmp_path / "gammu-smsd-inject.args"))
    (bin_dir / "gammu-smsd-inject").write_text(
        f'#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done > {record}\n'
    )
    (bin_dir / "gammu-smsd-inject").chmod(0o755)
    return bin_dir


@pytest.fixture
async def gateway_url(tmp_path: Path) -> AsyncIterator[tuple[str, bootstrap.Gateway]]:
    """The gateway (SQLite), with HARD_TOKEN as its Gammu token, served on a free port."""
    settings = load_settings(
        CONFIG, environ={},
        overrides={"database": {"url": f"sqlite+aiosqlite:///{tmp_path / 'lapor.db'}"},
                   "storage": {"file_store": str(tmp_path / "files")},
                   "outbox": {"enabled": False}},
    )
    sms = settings.sms.model_copy(update={"gammu_token": SecretStr(HARD_TOKEN)})
    gateway = bootstrap.build(settings.model_copy(update={"sms": sms}))
    await migrate.upgrade(gateway.engine)
    try:
        async with serving_app(bootstrap.build_app(gateway)) as port:
            yield f"http://127.0.0.1:{port}/sms/gammu", gateway
    finally:
        await gateway.close()


SENDER = "+6281200000001"
INBOX_ID = f"IN20261205_101500_00_{SENDER}_00.txt"
TEXT = "Jalan Siliwangi rusak parah di depan pasar"


async def _run_for_real(
    tmp_path: Path, url: str, token: str, sms: dict[str, str] | None = None
) -> tuple[int, str]:
    env = {
        "PATH": f"{_recording_path(tmp_path)}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "LANG": "C.UTF-8",
        "GAMMU_LAPOR_URL": url,
        "GAMMU_LAPOR_TOKEN": token,
        "GAMMU_SMSDRC": str(tmp_path / "smsdrc"),
    }
    env |= sms or {
        "SMS_MESSAGES": "1",
        "SMS_1_NUMBER": SENDER,
        "SMS_1_TEXT": TEXT,
        "DECODED_PARTS": "0",
    }
    process = await asyncio.create_subprocess_exec(
        "sh", str(ONRECEIVE), INBOX_ID,
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, stderr.decode()


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
async def test_the_token_is_on_no_command_line_and_the_real_request_authenticates(
    tmp_path: Path, gateway_url: tuple[str, bootstrap.Gateway]
) -> None:
    # curl's --user put the token in its arguments, which every local user reads with ps.
    url, gateway = gateway_url
    code, stderr = await _run_for_real(tmp_path, url, HARD_TOKEN)
    assert code == 0, stderr
    argv = (tmp_path / "argv.log").read_text()
    assert "curl\n" in argv and "sed\n" in argv  # the recording saw the programs run
    for piece in ("gammu ", "ok\\", "$HOME #1"):
        assert piece not in argv, piece
    # On curl's standard input instead, as a line of its configuration.
    assert (tmp_path / "curl.stdin").read_text().startswith('user = "lapor:gammu \\"t')
    # The gateway took the password (a wrong one is answered 401, and nothing is stored) and
    # answered the reply, which the program queued on the modem.
    async with gateway.engine.connect() as conn:
        (row,) = (await conn.execute(select(raw_inbound))).all()
    assert row.channel == "sms"
    inject = _args(tmp_path, "gammu-smsd-inject")
    assert inject[:4] == ["-c", str(tmp_path / "smsdrc"), "TEXT", "+6281200000001"]
    assert inject[5].startswith("LAPOR! ")


# A long message in two parts, as SMSD passes it, with what curl's configuration syntax would
# read otherwise (quotes, backslashes, the last character one of them, "#", line breaks, a tab),
# what a form would (& = % +), what a shell would expand, and text beyond ASCII.
HARD_TEXT = (
    'Lapor: "jalan" rusak\n\tdi Jl. Merdeka #5 \\ C:\\new \\" 😡🚧\r\n'
    "biaya 100% & a=b+c %41 `$HOME` 'ok' \\"
)
HARD_SMS = {
    "SMS_MESSAGES": "2",
    "SMS_1_NUMBER": SENDER,
    "SMS_1_TEXT": HARD_TEXT[:40],
    "SMS_2_NUMBER": SENDER,
    "SMS_2_TEXT": HARD_TEXT[40:],
    "DECODED_PARTS": "1",
    "DECODED_1_TEXT": HARD_TEXT,
    "PHONE_ID": 'modem "1"',
}


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
async def test_the_message_is_on_no_command_line_and_arrives_exactly(
    tmp_path: Path, gateway_url: tuple[str, bootstrap.Gateway]
) -> None:
    # As curl arguments (--data-urlencode name=value) the sender's number and the text were in
    # every local user's reach (ps, /proc/<pid>/cmdline), like the token before them.
    url, gateway = gateway_url
    code, stderr = await _run_for_real(tmp_path, url, HARD_TOKEN, HARD_SMS)
    assert code == 0, stderr
    argv = (tmp_path / "argv.log").read_text()
    # The recording saw the programs run (sed and tr escape the text, reading it from a pipe).
    assert all(f"{name}\n" in argv for name in ("curl", "env", "sed", "tr"))
    for piece in (SENDER.removeprefix("+"), "Lapor", "rusak", "Merdeka", "😡", "biaya", "modem"):
        assert piece not in argv, piece
    # The gateway stored the form with every field exactly as SMSD set it, in the order the
    # program sends them (ids, then the variables by name), and nothing else.
    (raw,) = await opened_raw(gateway.engine, gateway.keys)
    body = raw["body"]
    assert [pair.partition(b"=")[0] for pair in body.split(b"&")] == [
        b"ids", *(name.encode() for name in sorted(HARD_SMS))
    ]
    assert split_query(body) == {"ids": INBOX_ID.encode()} | {
        name: value.encode() for name, value in HARD_SMS.items()
    }
    (complaint,) = await opened_complaints(gateway.engine, gateway.keys)
    assert complaint.body == HARD_TEXT
    # The reply goes back to the sender: gammu-smsd-inject takes the number only as an argument.
    assert _args(tmp_path, "gammu-smsd-inject")[3] == SENDER


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
async def test_a_wrong_token_is_refused_by_the_gateway(
    tmp_path: Path, gateway_url: tuple[str, bootstrap.Gateway]
) -> None:
    url, gateway = gateway_url
    code, stderr = await _run_for_real(tmp_path, url, HARD_TOKEN + "x")
    assert code != 0
    assert "the gateway did not take" in stderr and "401" in stderr
    async with gateway.engine.connect() as conn:
        assert (await conn.execute(select(raw_inbound))).all() == []
    assert not (tmp_path / "gammu-smsd-inject.args").exists()


def test_a_token_with_a_line_break_is_refused_before_anything_is_posted(
    tmp_path: Path,
) -> None:
    # It could not be written as a line of curl's configuration.
    done = _run(tmp_path, {"GAMMU_LAPOR_URL": URL, "GAMMU_LAPOR_TOKEN": "t\nuser = x:y"})
    assert done.returncode != 0
    assert "GAMMU_LAPOR_TOKEN holds a line break" in done.stderr
    assert not (tmp_path / "curl.args").exists()


def test_gammu_a_text_with_a_line_naming_an_unset_sms_variable_is_still_posted(
    tmp_path: Path,
) -> None:
    # env prints a multi-line text's later lines as if they were variables: a line of the
    # citizen's text that looks like "DECODED_7_TEXT=..." names a variable that is not set.
    # Under `set -u` reading it stopped the program; nothing was posted, and running it again
    # failed the same way: the SMS never arrived.
    text = "Jalan rusak\nDECODED_7_TEXT=ini bukan variabel"
    done = _run(
        tmp_path,
        {"GAMMU_LAPOR_URL": URL, "GAMMU_LAPOR_TOKEN": "s3cret", "SMS_1_TEXT": text},
    )
    assert done.returncode == 0, done.stderr
    assert any(line.startswith('data-urlencode = "SMS_1_TEXT=') for line in _curl_config(tmp_path))
