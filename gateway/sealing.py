"""How stored bodies are sealed at rest, table by table (migration 0006).

A raw inbound message is kept exactly as received, and an event keeps the exact JSON the routing
core receives: both carry the citizen's NIK, phone number and words. They are stored sealed
with AES-256-GCM under the data key (:meth:`gateway.crypto.Keys.seal`), each bound to its row,
and opened only where the gateway needs them again: quarantine replay, the relay publishing,
the SMS channel joining the parts of a long message. The columns that select, join and count
rows (ids, channel, status, hashes, times) stay in the clear.

Rows written before migration 0006 have ``sealed`` false and are read as they are. Letter drafts
have no such flag: each of their JSON columns is sealed on its own (a sealed value is an object
whose only key is ``sealed``, which no unsealed value of those columns is), so a draft written
before this change reads as it is and is sealed column by column as it is next written.
"""

from __future__ import annotations

import json
from typing import Any

from cryptography.exceptions import InvalidTag
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.crypto import Keys
from gateway.storage.schema import outbox

# The JSON column of a sealed row holds a single key with the sealed JSON text.
_SEALED_JSON = "sealed"


def raw_columns(
    keys: Keys, raw_id: str, body: bytes | None, meta: dict[str, Any]
) -> dict[str, Any]:
    """``body``, ``transport_meta`` and ``sealed`` of a new raw inbound row."""
    return {
        "body": None if body is None else keys.seal(body, f"raw_inbound:{raw_id}:body"),
        "transport_meta": _seal_json(keys, meta, f"raw_inbound:{raw_id}:meta"),
        "sealed": True,
    }


def raw_body(keys: Keys, raw_id: str, body: bytes | None, sealed: bool) -> bytes | None:
    """The ``body`` of a raw inbound row as received (None when it lives in the file store)."""
    if body is None:
        return None
    return keys.unseal(bytes(body), f"raw_inbound:{raw_id}:body") if sealed else bytes(body)


def raw_meta(keys: Keys, raw_id: str, meta: Any, sealed: bool) -> dict[str, Any]:
    """The ``transport_meta`` of a raw inbound row."""
    if not sealed:
        return dict(meta)
    return _open_json(keys, meta, f"raw_inbound:{raw_id}:meta")


def event_body(keys: Keys, message_id: str, body: str) -> str:
    """The stored form of an event's JSON (the ``body`` of a new outbox row, ``sealed`` true)."""
    return keys.seal_text(body, f"outbox:{message_id}")


def open_event(keys: Keys, message_id: str, body: str, sealed: bool) -> str:
    """The exact JSON of an outbox row, as published."""
    return keys.unseal_text(body, f"outbox:{message_id}") if sealed else body


def complaint_columns(
    keys: Keys,
    complaint_id: str,
    title: str | None,
    body: str,
    location: dict[str, Any] | None,
    confidential: bool,
) -> dict[str, Any]:
    """``title``, ``body``, ``location`` and ``sealed`` of a new complaint row.

    The title and the location stay in the clear unless the complaint is confidential: they are
    what the public status pages show of a complaint that is not.
    """
    shown = (
        confidential_columns(keys, complaint_id, title, location)
        if confidential
        else {"title": title, "location": location}
    )
    body_sealed = keys.seal_text(body, f"complaints:{complaint_id}:body")
    return {**shown, "body": body_sealed, "sealed": True}


def confidential_columns(
    keys: Keys, complaint_id: str, title: str | None, location: dict[str, Any] | None
) -> dict[str, Any]:
    """``title`` and ``location`` of a (sealed) complaint row that is confidential: sealed, like
    its body. Also for a complaint a later message made confidential."""
    context = f"complaints:{complaint_id}"
    return {
        "title": keys.seal_text(title, f"{context}:title") if title else title,
        "location": _seal_json(keys, location, f"{context}:location") if location else location,
    }


def complaint_tokens(keys: Keys, complaint_id: str, tokens: str) -> str:
    """The stored form of a new complaint's dedup tokens (its words, stemmed)."""
    return keys.seal_text(tokens, f"complaints:{complaint_id}:match_tokens")


def open_complaint(
    keys: Keys, complaint_id: str, field: str, value: Any, sealed: bool, confidential: bool
) -> Any:
    """A complaint's ``title``, ``body``, ``location`` or ``match_tokens`` as written."""
    public = field in ("title", "location") and not confidential
    if not value or not sealed or public:
        return value
    if field == "location":
        return _open_json(keys, value, f"complaints:{complaint_id}:location")
    return keys.unseal_text(value, f"complaints:{complaint_id}:{field}")


def fragment_columns(
    keys: Keys, raw_id: str, text: str, meta: dict[str, Any]
) -> dict[str, Any]:
    """``text``, ``meta`` and ``sealed`` of a held SMS part."""
    return {
        "text": keys.seal_text(text, f"sms_fragments:{raw_id}:text"),
        "meta": _seal_json(keys, meta, f"sms_fragments:{raw_id}:meta"),
        "sealed": True,
    }


def fragment_text(keys: Keys, raw_id: str, text: str, sealed: bool) -> str:
    """The ``text`` of a held SMS part (``raw_id``: the part's raw inbound id)."""
    return keys.unseal_text(text, f"sms_fragments:{raw_id}:text") if sealed else text


def fragment_meta(keys: Keys, raw_id: str, meta: Any, sealed: bool) -> dict[str, Any]:
    """The ``meta`` of a held SMS part."""
    if not sealed:
        return dict(meta)
    return _open_json(keys, meta, f"sms_fragments:{raw_id}:meta")


def draft_column(keys: Keys, draft_id: str, column: str, value: Any) -> Any:
    """A letter draft's ``files``, ``pages``, ``fields`` or ``reviewed`` as stored (None stays
    None)."""
    if value is None:
        return None
    return _seal_json(keys, value, f"letter_drafts:{draft_id}:{column}")


def open_draft_column(keys: Keys, draft_id: str, column: str, stored: Any) -> Any:
    """The value :func:`draft_column` stored, or an unsealed value as it is."""
    if isinstance(stored, dict) and stored.keys() == {_SEALED_JSON}:
        return json.loads(
            keys.unseal_text(stored[_SEALED_JSON], f"letter_drafts:{draft_id}:{column}")
        )
    return stored


# How many of the newest sealed events the key check opens.
KEY_CHECK_EVENTS = 5


async def newest_opens(engine: AsyncEngine, keys: Keys) -> bool:
    """Whether most of the newest sealed events open with ``keys`` (True when nothing is sealed
    yet).

    A replica started with another data key than the rest would seal what it takes under a key
    the others cannot open: ``/readyz`` asks this, and such a replica takes no traffic. Most of
    the newest :data:`KEY_CHECK_EVENTS`, not the newest alone: one event sealed by such a
    replica before it was taken out, or one damaged event, would otherwise take every
    replica with the right key out of the load balancer with it. The events are found through
    the outbox's primary key, so the check stays a few index steps however large the table.
    """
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                select(outbox.c.message_id, outbox.c.body)
                .where(outbox.c.sealed.is_(True))
                .order_by(outbox.c.id.desc())
                .limit(KEY_CHECK_EVENTS)
            )
        ).all()
    if not rows:
        return True
    opened = 0
    for row in rows:
        try:
            open_event(keys, row.message_id, row.body, True)
        except (InvalidTag, ValueError):  # ValueError: not even base64 (damaged)
            continue
        opened += 1
    return opened * 2 > len(rows)


def _seal_json(keys: Keys, value: Any, context: str) -> dict[str, str]:
    return {_SEALED_JSON: keys.seal_text(json.dumps(value, ensure_ascii=False), context)}


def _open_json(keys: Keys, stored: dict[str, str], context: str) -> dict[str, Any]:
    opened = json.loads(keys.unseal_text(stored[_SEALED_JSON], context))
    assert isinstance(opened, dict)
    return opened
