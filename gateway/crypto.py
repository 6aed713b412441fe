"""Keys for personal data: keyed lookup hashes and encryption at rest.

NIK is protected personal data (UU 23/2006 art. 84; UU 27/2022 on personal data protection), and
so are phone numbers, e-mail addresses and handles. The gateway never looks them up by value:
it looks them up by HMAC-SHA256 under the *identity key*, and keeps the value itself encrypted
with AES-256-GCM under the *data key* (random 96-bit nonce per value, NIST SP 800-38D). Stored
bodies that carry them (a raw inbound message and its transport metadata, an event's JSON) are
sealed whole under the same key, bound to the row they belong to (:meth:`Keys.seal`).

Both keys come from the environment (``LAPOR_SECURITY__IDENTITY_KEY``,
``LAPOR_SECURITY__DATA_KEY``, 32 bytes in base64). Only the embedded SQLite default, meant for one
machine and for trying the gateway out, creates them once in ``security.generated_keys_dir``
(mode 0600) when they are not set: ``lapor-gateway migrate`` does, with a new database; any other
command stops when they are not there (:func:`missing_key_files`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from gateway.durable import flush_and_sync, sync_folder
from gateway.errors import ConfigError
from gateway.ids import random_bytes
from gateway.settings import Settings
from gateway.tracking import ALPHABET

log = logging.getLogger(__name__)

KEY_BYTES = 32


# Follow-up codes (:meth:`Keys.followup_code`) are typed and read like tracking IDs, in their
# symbols (nothing looks like another).
FOLLOWUP_CODE_LENGTH = 8


@dataclass(frozen=True)
class Keys:
    """The two secrets, decoded, and the data keys ``data_key`` replaced.

    Everything is sealed under ``data_key``; what was sealed under a previous data key is still
    opened (AES-GCM and the file store's name check tell a wrong key from the right one). So a
    data key is rotated by setting the new one and moving the old one to
    ``LAPOR_SECURITY__PREVIOUS_DATA_KEYS``: new values are sealed under the new key at once, and
    the old key stays needed for as long as values sealed under it are kept.
    """

    identity_key: bytes
    data_key: bytes
    previous_data_keys: tuple[bytes, ...] = ()

    def lookup_hash(self, kind: str, value: str) -> str:
        """HMAC-SHA256 hex of ``kind:value``: equal values of one kind give equal hashes."""
        return hmac.new(self.identity_key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()

    def followup_code(self, tracking_id: str) -> str:
        """The follow-up code of ``tracking_id``: eight symbols of the tracking-ID alphabet
        (about 39 bits), an HMAC of the ID under the identity key. Told with the ID to a web
        form's or an API client's sender, who has no phone, address or account the transport
        vouches for, it shows they hold the ID when they add to the complaint
        (:meth:`followup_code_matches`). Nothing is stored: the same ID always has the same
        code, which an Idempotency-Key's answer repeats, and which a new identity key changes
        (as it changes every lookup hash)."""
        digest = hmac.new(
            self.identity_key, f"followup-code:v1:{tracking_id}".encode(), hashlib.sha256
        ).digest()
        number = int.from_bytes(digest[:8], "big")
        symbols = []
        for _ in range(FOLLOWUP_CODE_LENGTH):
            number, index = divmod(number, len(ALPHABET))
            symbols.append(ALPHABET[index])
        return "".join(symbols)

    def followup_code_matches(self, tracking_id: str, typed: str) -> bool:
        """Whether ``typed`` (spaces, dashes and case ignored) is ``tracking_id``'s follow-up
        code, compared in constant time."""
        candidate = "".join(typed.split()).replace("-", "").upper()
        return hmac.compare_digest(candidate.encode(), self.followup_code(tracking_id).encode())

    @cached_property
    def file_keys(self) -> tuple[bytes, ...]:
        """The file store's AES-256 keys, derived from the data keys for that use alone: the
        current one (to seal and to open) first, then the previous ones (to open)."""
        return tuple(
            HKDF(
                algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=b"lapor file store v1"
            ).derive(key)
            for key in (self.data_key, *self.previous_data_keys)
        )

    @cached_property
    def _aead(self) -> AESGCM:
        # The key schedule is computed once, not for every value sealed.
        return AESGCM(self.data_key)

    @cached_property
    def _openers(self) -> tuple[AESGCM, ...]:
        return (self._aead, *(AESGCM(key) for key in self.previous_data_keys))

    def _open(self, sealed: bytes, aad: bytes) -> tuple[bytes, bool]:
        """The plaintext of nonce + ciphertext + tag, and whether the current key opened it."""
        nonce, body = sealed[:12], sealed[12:]
        for aead in self._openers[:-1]:
            try:
                return aead.decrypt(nonce, body, aad), aead is self._aead
            except InvalidTag:
                continue
        return self._openers[-1].decrypt(nonce, body, aad), len(self._openers) == 1

    def _seal(self, data: bytes, aad: bytes) -> bytes:
        nonce = random_bytes(12)
        return nonce + self._aead.encrypt(nonce, data, aad)

    def encrypt(self, value: str) -> str:
        """AES-256-GCM of ``value`` as base64 (nonce + ciphertext + tag)."""
        return base64.b64encode(self._seal(value.encode(), b"lapor")).decode()

    def decrypt(self, token: str) -> str:
        """The value :meth:`encrypt` sealed (raises on a wrong key or tampering)."""
        return self._open(base64.b64decode(token), b"lapor")[0].decode()

    def reencrypt(self, token: str) -> str | None:
        """:meth:`encrypt`'s ``token`` under the current key, or None when it already is."""
        value, current = self._open(base64.b64decode(token), b"lapor")
        return None if current else base64.b64encode(self._seal(value, b"lapor")).decode()

    def seal(self, data: bytes, context: str) -> bytes:
        """AES-256-GCM of a stored body (nonce + ciphertext + tag), bound to ``context``.

        ``context`` names where the value lives (``"outbox:<message id>"``): it is
        authenticated, so a sealed value copied into another row does not open there.
        """
        return self._seal(data, b"lapor:" + context.encode())

    def unseal(self, sealed: bytes, context: str) -> bytes:
        """The bytes :meth:`seal` sealed under the same ``context`` (raises on any mismatch)."""
        return self._open(sealed, b"lapor:" + context.encode())[0]

    def reseal(self, sealed: bytes, context: str) -> bytes | None:
        """:meth:`seal`'s ``sealed`` under the current key, or None when it already is."""
        data, current = self._open(sealed, b"lapor:" + context.encode())
        return None if current else self.seal(data, context)

    def seal_text(self, value: str, context: str) -> str:
        """:meth:`seal` of a text, as base64 for a text column."""
        return base64.b64encode(self.seal(value.encode(), context)).decode()

    def unseal_text(self, token: str, context: str) -> str:
        """The text :meth:`seal_text` sealed under ``context``."""
        return self.unseal(base64.b64decode(token), context).decode()


def _decode(name: str, text: str) -> bytes:
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"security.{name}: not base64") from None
    if len(key) != KEY_BYTES:
        raise ConfigError(f"security.{name}: must be {KEY_BYTES} bytes (base64 of 32 random bytes)")
    return key


def load_keys(settings: Settings) -> Keys:
    """The keys from the settings, or generated ones for the embedded SQLite default (a key
    file missing is made: the CLI lets only ``migrate`` of a new database get that far, see
    :func:`missing_key_files`)."""
    values, previous = _configured_keys(settings)
    for name in ("identity_key", "data_key"):
        if name not in values:  # the embedded SQLite default
            values[name] = _generated(_key_file(settings, name), name)
    _apart(values, previous)
    return Keys(values["identity_key"], values["data_key"], previous)


def missing_key_files(settings: Settings) -> list[Path]:
    """The key files of the embedded SQLite default that :func:`load_keys` would have to make:
    for each key not set in the environment, its file under ``security.generated_keys_dir``
    when there is none. A command run from another directory (the folder is relative, like the
    default database's path) would otherwise make a second pair of keys beside a database
    whose rows were sealed under the first."""
    if not settings.database.is_sqlite:
        return []
    return [
        path
        for name in ("identity_key", "data_key")
        if getattr(settings.security, name) is None
        and not (path := _key_file(settings, name)).exists()
    ]


def _key_file(settings: Settings, name: str) -> Path:
    return settings.security.generated_keys_dir / f"{name}.b64"


def check_keys(settings: Settings) -> dict[str, Any]:
    """Raise :class:`ConfigError`, naming the key, for what :func:`load_keys` would refuse in
    the settings (``check-config``); no key file is read or made. The fingerprint of each key
    set (:func:`fingerprint`), so that replicas' keys can be compared without showing them."""
    values, previous = _configured_keys(settings)
    return {
        **{name: fingerprint(key) for name, key in values.items()},
        "previous_data_keys": [fingerprint(key) for key in previous],
    }


def fingerprint(key: bytes) -> str:
    """A short public name of a key: equal keys, equal names; the key cannot be found from it
    (a hash of 256 random bits, under a label of its own)."""
    return hashlib.sha256(b"lapor key fingerprint v1:" + key).hexdigest()[:16]


def _configured_keys(settings: Settings) -> tuple[dict[str, bytes], tuple[bytes, ...]]:
    """The keys set in the environment, decoded, and the previous data keys."""
    sec = settings.security
    values: dict[str, bytes] = {}
    for name in ("identity_key", "data_key"):
        secret = getattr(sec, name)
        if secret is not None:
            values[name] = _decode(name, secret.get_secret_value())
        elif not settings.database.is_sqlite:
            env = f"LAPOR_SECURITY__{name.upper()}"
            raise ConfigError(f"security.{name}: required with PostgreSQL; set {env}")
    previous = tuple(
        _decode(f"previous_data_keys[{i}]", key.get_secret_value())
        for i, key in enumerate(sec.previous_data_keys)
    )
    _apart(values, previous)
    return values, previous


def _apart(values: dict[str, bytes], previous: tuple[bytes, ...]) -> None:
    """Refuse an identity key that is also a data key (current or previous): one secret would
    be the HMAC key of the lookup hashes and the AES key of the values, two uses that must not
    share a key, and the identity key cannot be rotated away afterwards."""
    identity = values.get("identity_key")
    if identity is not None and identity in (values.get("data_key"), *previous):
        raise ConfigError(
            "security.identity_key: the same key as a data key; each must be its own random key"
        )


def _generated(path: Path, name: str) -> bytes:
    """The key kept in ``path``, created there by the first start that finds none.

    The key file appears whole or not at all: the key is written to a temporary file in the same
    folder and synced, then hard-linked into place, which fails when the file is already there
    (another process starting at the same time won: its key is read and used), and the folder
    is synced so the name survives a crash. A start that dies halfway leaves at most a temporary
    file, which nothing reads.
    """
    try:
        text = path.read_text()
    except FileNotFoundError:
        text = _create_key_file(path, name)
    if not text.strip():
        # Only a start before keys were written this way could leave it so.
        raise ConfigError(
            f"security.{name}: the key file {path} is empty; if nothing was stored under it yet,"
            f" delete it to have a new key made, else set LAPOR_SECURITY__{name.upper()}"
        )
    return _decode(name, text.strip())


def _create_key_file(path: Path, name: str) -> str:
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    text = base64.b64encode(os.urandom(KEY_BYTES)).decode()
    tmp = folder / f".{path.name}.{os.getpid()}.{os.urandom(6).hex()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            flush_and_sync(fh)
        try:
            os.link(tmp, path)
        except FileExistsError:
            text = path.read_text()  # another process made it first: use its key
        else:
            log.warning(
                "generated security.%s for the embedded default; set LAPOR_SECURITY__%s in"
                " production",
                name,
                name.upper(),
            )
        sync_folder(folder)
        sync_folder(folder.parent)  # the folder itself may be new
    finally:
        tmp.unlink(missing_ok=True)
    return text


