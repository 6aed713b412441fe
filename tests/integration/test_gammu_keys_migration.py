"""Migration 0009: Gammu keys stored before they were hashed become the hashed keys."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest
from sqlalchemy import select

from channels.sms import gammu
from gateway.settings import DatabaseSettings
from gateway.storage import migrate
from gateway.storage.database import create_engine
from gateway.storage.schema import raw_inbound

pytestmark = pytest.mark.integration

IDS = "IN20261204_135929_00_+6281234567890_00.txt IN20261204_135929_00_+6281234567890_01.txt"


def _row(row_id: str, key: str, channel: str = "sms") -> dict[str, object]:
    now = datetime(2026, 12, 1, tzinfo=UTC)
    return {
        "id": row_id, "channel": channel, "provider_message_id": key, "parser": "sms.gammu",
        "received_at": now, "stored_at": now, "content_type": "application/x-www-form-urlencoded",
        "sha256": "0" * 64, "size": 1, "body": b"x", "transport_meta": {}, "status": "accepted",
    }


async def test_old_gammu_keys_are_hashed_as_the_channel_hashes_them_now(empty_url: str) -> None:
    engine = create_engine(DatabaseSettings(url=empty_url))
    try:
        await migrate.upgrade(engine, "0008")
        already = gammu.provider_id(urlencode({"PHONE_ID": "modem-2", "ids": "IN1.txt"}).encode())
        async with engine.begin() as conn:
            await conn.execute(raw_inbound.insert(), [
                _row("a", f"gammu:modem-1:{IDS}"),
                _row("b", f"gammu:{IDS}"),  # an SMSD without a PhoneID
                _row("c", already),  # stored by this release: left as it is
                _row("d", "kannel-7f1c"),
                _row("e", "gammu:x:y", channel="web"),  # another channel's id: not Gammu's
            ])
        await migrate.upgrade(engine)
        async with engine.connect() as conn:
            keys = dict((await conn.execute(
                select(raw_inbound.c.id, raw_inbound.c.provider_message_id))).all())
        # What the channel makes of the same message posted again: the same key.
        for row_id, form in (("a", {"PHONE_ID": "modem-1", "ids": IDS}), ("b", {"ids": IDS})):
            assert keys[row_id] == gammu.provider_id(urlencode(form).encode()), row_id
            assert "6281234567890" not in keys[row_id]
        assert (keys["c"], keys["d"], keys["e"]) == (already, "kannel-7f1c", "gammu:x:y")
    finally:
        await engine.dispose()
