"""Data keys rotate: what was sealed under a previous key still opens, nothing new uses it."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag

from gateway.crypto import Keys, load_keys
from gateway.errors import ConfigError
from gateway.filestore import FileStore
from gateway.settings import load_settings

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
