"""Data keys rotate: what was sealed under a previous key still opens, nothing new uses it."""

from __future__ import annotations

import base64
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag

from gateway.crypto import Keys, check_keys, load_keys, missing_key_files
from gateway.errors import ConfigError
from gateway.filestore import FileStore
from gateway.settings import Settings, load_settings

CONFIG = Path(__file__).resolve().parents[2] / "config" / "gateway.toml"
IDENTITY = b"i" * 32
OLD, NEW = b"o" * 32, b"n" * 32


def test_values_sealed_under_a_previous_key_still_open() -> None:
    before = Keys(IDENTITY, OLD)
    after = Keys(IDENTITY, NEW, (OLD,))
    token = before.encrypt("3201014101900001")
    sealed = before.seal(b"NIK 3201014101900001", "raw_inbound:a:body")
    assert after.decrypt(token) == "3201014101900001"
    assert after.unseal(sealed, "raw_inbound:a:body") == b"NIK 3201014101900001"
    # New values are sealed under the new key only: the old key alone cannot open them.
    with pytest.raises(InvalidTag):
        before.unseal(after.seal(b"baru", "raw_inbound:b:body"), "raw_inbound:b:body")
    with pytest.raises(InvalidTag):
        before.decrypt(after.encrypt("baru"))
    # A key that was never given opens nothing.
    with pytest.raises(InvalidTag):
        Keys(IDENTITY, NEW).unseal(sealed, "raw_inbound:a:body")


async def test_files_sealed_under_a_previous_key_still_open(tmp_path: Path) -> None:
    sha = await FileStore(tmp_path, Keys(IDENTITY, OLD)).put_bytes(b"scan of a letter")
    rotated = FileStore(tmp_path, Keys(IDENTITY, NEW, (OLD,)))
    assert await rotated.read(sha) == b"scan of a letter"
    new_sha = await rotated.put_bytes(b"a new scan")
    assert await FileStore(tmp_path, Keys(IDENTITY, NEW)).read(new_sha) == b"a new scan"


def test_previous_keys_come_from_the_environment_and_are_masked() -> None:
    old = base64.b64encode(os.urandom(32)).decode()
    env = {
        "LAPOR_SECURITY__IDENTITY_KEY": base64.b64encode(IDENTITY).decode(),
        "LAPOR_SECURITY__DATA_KEY": base64.b64encode(NEW).decode(),
        "LAPOR_SECURITY__PREVIOUS_DATA_KEYS": f'["{old}"]',
    }
    settings = load_settings(CONFIG, environ=env)
    keys = load_keys(settings)
    assert keys.data_key == NEW and keys.previous_data_keys == (base64.b64decode(old),)
    assert settings.masked()["security"]["previous_data_keys"] == ["********"]
    assert old not in str(settings.masked())
    bad = load_settings(CONFIG, environ={**env, "LAPOR_SECURITY__PREVIOUS_DATA_KEYS": '["c2hvcnQ="]'})
    with pytest.raises(ConfigError, match=r"security\.previous_data_keys\[0\]"):
        load_keys(bad)


@pytest.mark.parametrize("previous", [False, True])
def test_an_identity_key_that_is_also_a_data_key_is_refused(previous: bool) -> None:
    # One secret as both the HMAC key of the lookup hashes and the AES-GCM key of the values.
    same = base64.b64encode(IDENTITY).decode()
    env = {
        "LAPOR_SECURITY__IDENTITY_KEY": same,
        "LAPOR_SECURITY__DATA_KEY": base64.b64encode(NEW).decode() if previous else same,
        "LAPOR_SECURITY__PREVIOUS_DATA_KEYS": f'["{same}"]' if previous else "[]",
    }
    settings = load_settings(CONFIG, environ=env)
    with pytest.raises(ConfigError, match=r"security\.identity_key: the same key as a data key"):
        load_keys(settings)
    with pytest.raises(ConfigError, match=r"security\.identity_key"):
        check_keys(settings)


def _embedded(keys_dir: Path) -> Settings:
    """Settings of the embedded SQLite default, generating keys in ``keys_dir``."""
    return load_settings(
        CONFIG, environ={}, overrides={"security": {"generated_keys_dir": str(keys_dir)}}
    )


def test_first_starts_at_the_same_time_all_get_the_same_keys(tmp_path: Path) -> None:
    starts = 8
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # interleave the threads as finely as possible
    try:
        for round_ in range(25):
            settings = _embedded(tmp_path / f"round-{round_}" / "secrets")
            barrier = threading.Barrier(starts)

            def start(settings: Settings = settings, barrier: threading.Barrier = barrier) -> Keys:
                barrier.wait()
                return load_keys(settings)

            with ThreadPoolExecutor(starts) as pool:
                got = list(pool.map(lambda _: start(), range(starts)))
            assert len({(k.identity_key, k.data_key) for k in got}) == 1, f"round {round_}"
            assert load_keys(settings).data_key == got[0].data_key
            folder = settings.security.generated_keys_dir
            assert sorted(p.name for p in folder.iterdir()) == ["data_key.b64", "identity_key.b64"]
            assert all(p.stat().st_mode & 0o777 == 0o600 for p in folder.iterdir())
    finally:
        sys.setswitchinterval(switch)


class _Crash(BaseException):
    """The process dying at this point."""


@pytest.mark.parametrize("step", ["urandom", "fsync", "link"])
def test_a_first_start_that_dies_halfway_leaves_no_broken_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    settings = _embedded(tmp_path / "secrets")
    real = getattr(os, step)

    def crash(*args: object, **kwargs: object) -> object:
        raise _Crash(step)

    with monkeypatch.context() as m:
        m.setattr(os, step, crash)
        with pytest.raises(_Crash):
            load_keys(settings)
    assert getattr(os, step) is real
    keys = load_keys(settings)  # the next start works...
    assert len(keys.identity_key) == len(keys.data_key) == 32
    again = load_keys(settings)  # ...and its keys stay
    assert (again.identity_key, again.data_key) == (keys.identity_key, keys.data_key)


def test_leftover_temporary_key_files_do_not_matter(tmp_path: Path) -> None:
    folder = tmp_path / "secrets"
    folder.mkdir()
    (folder / ".identity_key.b64.4242.0a1b2c3d4e5f.tmp").write_text("")
    (folder / ".data_key.b64.4242.0a1b2c3d4e60.tmp").write_text("c2hvcnQ")
    keys = load_keys(_embedded(folder))
    assert len(keys.identity_key) == len(keys.data_key) == 32
    assert load_keys(_embedded(folder)).data_key == keys.data_key


def test_an_empty_key_file_is_named_in_the_error(tmp_path: Path) -> None:
    folder = tmp_path / "secrets"
    folder.mkdir()
    (folder / "identity_key.b64").write_text("")
    with pytest.raises(ConfigError, match=r"security\.identity_key: the key file .* is empty"):
        load_keys(_embedded(folder))


def test_missing_key_files_are_those_the_embedded_default_would_make(tmp_path: Path) -> None:
    # The CLI lets only `migrate` of a new database make them (tests/integration/test_cli.py).
    folder = tmp_path / "secrets"
    settings = _embedded(folder)
    assert missing_key_files(settings) == [folder / "identity_key.b64", folder / "data_key.b64"]
    env = {"LAPOR_SECURITY__DATA_KEY": base64.b64encode(NEW).decode()}
    with_data_key = load_settings(
        CONFIG, environ=env, overrides={"security": {"generated_keys_dir": str(folder)}}
    )
    assert missing_key_files(with_data_key) == [folder / "identity_key.b64"]
    assert not folder.exists()  # looked for, not made
    load_keys(settings)
    assert missing_key_files(settings) == []
    postgres = load_settings(CONFIG, environ={
        "LAPOR_DATABASE__URL": "postgresql+asyncpg://lapor@db:5432/lapor",
        "LAPOR_SECURITY__IDENTITY_KEY": base64.b64encode(IDENTITY).decode(),
        "LAPOR_SECURITY__DATA_KEY": base64.b64encode(NEW).decode(),
    })
    assert missing_key_files(postgres) == []
