"""``lapor-gateway keys reseal``: seal under the current data key whatever is not yet.

After a data key rotation (``LAPOR_SECURITY__PREVIOUS_DATA_KEYS``) the values sealed under a
previous key still open, but that key cannot be retired while they exist. This goes through
every table that holds sealed values, and the file store, and seals again under the current key
each value that does not open with it: values of a previous key, and rows stored in the clear
before migration 0006. Each batch of rows is one short transaction, read in primary-key order,
so it may run beside live replicas, be stopped and be run again: a value already under the
current key is left as it is. When a run reports nothing resealed, the previous keys can go.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway import sealing
from gateway.crypto import Keys
from gateway.filestore import FileStore
from gateway.storage.schema import (
    complaints,
    identities,
    letter_drafts,
    outbox,
    raw_inbound,
    sms_fragments,
    sms_replies,
)

log = logging.getLogger(__name__)

BATCH = 500


@dataclass
class Report:
    """How many rows (or files) of each kind were sealed again, and how many were looked at."""

    resealed: dict[str, int] = field(default_factory=dict)
    seen: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """Everything sealed again in this run."""
        return sum(self.resealed.values())


class _Again:
    """Seal again under the current key what does not open with it (None: already does)."""

    def __init__(self, keys: Keys) -> None:
        self.keys = keys

    def bytes_(self, sealed: bytes, context: str) -> bytes | None:
        if self.keys.opens_with_current(sealed, context):
            return None
        return self.keys.seal(self.keys.unseal(sealed, context), context)

    def text(self, token: str, context: str) -> str | None:
        again = self.bytes_(base64.b64decode(token), context)
        return None if again is None else base64.b64encode(again).decode()

    def json(self, stored: dict[str, str], context: str) -> dict[str, str] | None:
        again = self.text(stored["sealed"], context)
        return None if again is None else {"sealed": again}

    def value(self, token: str) -> str | None:
        """A value of :meth:`Keys.encrypt` (identities, reporters, reply recipients)."""
        if self.keys.decrypts_with_current(token):
            return None
        return self.keys.encrypt(self.keys.decrypt(token))


def _raw(again: _Again, r: Row[Any]) -> dict[str, Any] | None:
    keys = again.keys
    if not r.sealed:
        return sealing.raw_columns(
            keys, r.id, None if r.body is None else bytes(r.body), dict(r.transport_meta)
        )
    changes: dict[str, Any] = {}
    if r.body is not None:
        body = again.bytes_(bytes(r.body), f"raw_inbound:{r.id}:body")
        if body is not None:
            changes["body"] = body
    meta = again.json(r.transport_meta, f"raw_inbound:{r.id}:meta")
    if meta is not None:
        changes["transport_meta"] = meta
    return changes or None


def _reporter(again: _Again, reporter: dict[str, Any]) -> dict[str, Any] | None:
    """A complaint's reporter with every value encrypted under the current key."""
    changed = False

    def one(value: Any) -> Any:
        nonlocal changed
        if isinstance(value, dict) and "enc" in value:
            token = again.value(value["enc"])
            if token is None:
                return value
            changed = True
            return {"enc": token}
        if value:  # stored in the clear before every field was encrypted
            changed = True
            return {"enc": again.keys.encrypt(str(value))}
        return value

    out = {k: one(v) for k, v in reporter.items() if k != "handles"}
    out["handles"] = {k: one(v) for k, v in dict(reporter.get("handles") or {}).items()}
    return out if changed else None


def _complaint(again: _Again, r: Row[Any]) -> dict[str, Any] | None:
    keys = again.keys
    context = f"complaints:{r.id}"
    changes: dict[str, Any] = {}
    if not r.sealed:
        changes = sealing.complaint_columns(
            keys, r.id, r.title, r.body, r.location, r.confidential
        )
        changes["match_tokens"] = sealing.complaint_tokens(keys, r.id, r.match_tokens)
    else:
        for column in ("body", "match_tokens") + (("title",) if r.confidential else ()):
            value = getattr(r, column)
            if value:
                token = again.text(value, f"{context}:{column}")
                if token is not None:
                    changes[column] = token
        if r.confidential and r.location:
            location = again.json(r.location, f"{context}:location")
            if location is not None:
                changes["location"] = location
    reporter = _reporter(again, dict(r.reporter))
    if reporter is not None:
        changes["reporter"] = reporter
    return changes or None


def _event(again: _Again, r: Row[Any]) -> dict[str, Any] | None:
    if not r.sealed:
        return {"body": sealing.event_body(again.keys, r.message_id, r.body), "sealed": True}
    body = again.text(r.body, f"outbox:{r.message_id}")
    return None if body is None else {"body": body}


def _fragment(again: _Again, r: Row[Any]) -> dict[str, Any] | None:
    if not r.sealed:
        return sealing.fragment_columns(again.keys, r.raw_inbound_id, r.text, dict(r.meta))
    changes: dict[str, Any] = {}
    text = again.text(r.text, f"sms_fragments:{r.raw_inbound_id}:text")
    if text is not None:
        changes["text"] = text
    meta = again.json(r.meta, f"sms_fragments:{r.raw_inbound_id}:meta")
    if meta is not None:
        changes["meta"] = meta
    return changes or None


def _draft(again: _Again, r: Row[Any]) -> dict[str, Any] | None:
    changes: dict[str, Any] = {}
    for column in ("pages", "fields", "reviewed"):
        stored = getattr(r, column)
        if stored is None:
            continue
        if isinstance(stored, dict) and stored.keys() == {"sealed"}:
            value = again.json(stored, f"letter_drafts:{r.id}:{column}")
        else:  # written before drafts were sealed
            value = sealing.draft_column(again.keys, r.id, column, stored)
        if value is not None:
            changes[column] = value
    return changes or None


def _identity(again: _Again, r: Row[Any]) -> dict[str, Any] | None:
    token = again.value(r.value_enc)
    return None if token is None else {"value_enc": token}


def _recipient(again: _Again, r: Row[Any]) -> dict[str, Any] | None:
    token = again.value(r.recipient)
    return None if token is None else {"recipient": token}


Resealer = Callable[[_Again, Row[Any]], dict[str, Any] | None]

# Table, the columns a resealer reads, the column the row must still hold for the update to
# apply (a concurrent change wins; the next run takes the row again), and the resealer.
_TABLES: tuple[tuple[Table, tuple[str, ...], str | None, Resealer], ...] = (
    (raw_inbound, ("body", "transport_meta", "sealed"), None, _raw),
    (
        complaints,
        ("title", "body", "location", "match_tokens", "reporter", "confidential", "sealed"),
        None,
        _complaint,
    ),
    (outbox, ("message_id", "body", "sealed"), None, _event),
    (sms_fragments, ("raw_inbound_id", "text", "meta", "sealed"), None, _fragment),
    (letter_drafts, ("pages", "fields", "reviewed", "updated_at"), "updated_at", _draft),
    (identities, ("value_enc",), None, _identity),
    (sms_replies, ("recipient",), None, _recipient),
)


async def reseal(engine: AsyncEngine, keys: Keys, files: FileStore, batch: int = BATCH) -> Report:
    """Seal again under ``keys.data_key`` every stored value that does not open with it."""
    again = _Again(keys)
    report = Report()
    for table, columns, guard, resealer in _TABLES:
        key = table.c.id
        last: Any = None
        resealed = seen = 0
        while True:
            query = select(key, *(table.c[c] for c in columns)).order_by(key).limit(batch)
            if last is not None:
                query = query.where(key > last)
            async with engine.begin() as conn:
                rows = (await conn.execute(query)).all()
                for r in rows:
                    changes = resealer(again, r)
                    if changes is None:
                        continue
                    stmt = update(table).where(key == r.id)
                    if guard is not None:
                        stmt = stmt.where(table.c[guard] == getattr(r, guard))
                    result = await conn.execute(stmt.values(**changes))
                    resealed += result.rowcount
            if not rows:
                break
            seen += len(rows)
            last = rows[-1].id
        report.resealed[table.name] = resealed
        report.seen[table.name] = seen
        log.info("resealed %d of %d rows", resealed, seen, extra={"table": table.name})
    resealed_files, seen_files = await files.reseal()
    report.resealed["files"] = resealed_files
    report.seen["files"] = seen_files
    return report


def dumps(report: Report) -> str:
    """The report as the CLI prints it."""
    return json.dumps({"resealed": report.resealed, "seen": report.seen}, indent=2)
