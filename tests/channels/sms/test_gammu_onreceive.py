"""``config/gammu/lapor-onreceive`` run by ``sh`` with stand-ins for ``curl`` and
``gammu-smsd-inject`` that write down how they were called: the variables it reads, and that
SMSD and the gateway can share one environment. (``test_gammu_live.py`` runs it under a real
Gammu SMSD.)"""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import pytest

from gateway.errors import ConfigError
from gateway.settings import load_settings

ROOT = Path(__file__).resolve().parents[3]
ONRECEIVE = ROOT / "config" / "gammu" / "lapor-onreceive"
CONFIG = ROOT / "config" / "gateway.toml"
URL = "http://gateway.internal:8080/sms/gammu"
REPLY = "LAPOR! Laporan diterima. No. lacak: K7QM-4XRT9."


def _stand_ins(tmp_path: Path) -> Path:
    """A folder with ``curl`` (answers REPLY) and ``gammu-smsd-inject``, each writing its
    arguments, one a line, to ``<name>.args``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, answer in (("curl", REPLY), ("gammu-smsd-inject", "")):
        script = bin_dir / name
        record = shlex.quote(str(tmp_path / f"{name}.args"))
        script.write_text(
            f'#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done > {record}\n'
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
        capture_output=True,
        text=True,
        timeout=30,
    )


def _args(tmp_path: Path, name: str) -> list[str]:
    return (tmp_path / f"{name}.args").read_text().splitlines()


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
    assert curl[curl.index("--user") + 1] == "lapor:s3cret-gammu"
    assert "SMS_1_TEXT=Jalan rusak" in curl
    # The token goes only as the password, never among the fields the gateway stores.
    assert [a for a in curl if "s3cret" in a] == ["lapor:s3cret-gammu"]
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
    assert curl[-1] == URL and curl[curl.index("--user") + 1] == "lapor:old-token"
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
    assert curl[-1] == URL and curl[curl.index("--user") + 1] == "lapor:new-token"


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
