"""``lapor-gateway keys reseal``: seal under the current data key whatever is not yet.

After a data key rotation (``LAPOR_SECURITY__PREVIOUS_DATA_KEYS``) the values sealed under a
previous key still open, but that key cannot be retired while they exist. This goes through
every table that holds sealed values, and the file store, and seals again under the current key
each value that does not open with it: values of a previous key, and rows stored in the clear
before migration 0006. Each batch of rows is one short transaction, read in primary-key order,
so it may run beside live replicas, be stopped and be run again: a value already under the
current key is left as it is. When a run reports nothing resealed, the previous keys can go.

Events set aside (``lapor-gateway outbox set-aside``) are sealed again too when a key opens
them, so that retiring a previous key does not strand one an operator may still restore; one
that no key opens (why it was set aside) is left as it is.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidTag
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
    outbox_set_aside,
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
    # Rows that needed sealing again but changed between the read and the write (the write is
    # refused, a concurrent change wins): left for the next run, under the previous key still.
    left: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """Everything sealed again in this run, and what it left for the next: 0 only when
        nothing is left under a previous key (the sign that the previous keys can go)."""
        return sum(self.resealed.values()) + sum(self.left.values())


def _text(keys: Keys, token: str, context: str) -> str | None:
    """A :meth:`Keys.seal_text` token under the current key (None: it already is)."""
    again = keys.reseal(base64.b64decode(token), context)
    return None if again is None else base64.b64encode(again).decode()


def _json(keys: Keys, stored: dict[str, str], context: str) -> dict[str, str] | None:
    """A sealed JSON column under the current key (None: it already is)."""
    again = _text(keys, stored["sealed"], context)
    return None if again is None else {"sealed": again}


def _changed(**columns: Any) -> dict[str, Any] | None:
    """The columns that were sealed again (a None value: already under the current key)."""
    changes = {name: value for name, value in columns.items() if value is not None}
    return changes or None


def _raw(keys: Keys, r: Row[Any]) -> dict[str, Any] | None:
    if not r.sealed:
        return sealing.raw_columns(
            keys, r.id, None if r.body is None else bytes(r.body), dict(r.transport_meta)
        )
    return _changed(
        body=None if r.body is None else keys.reseal(bytes(r.body), f"raw_inbound:{r.id}:body"),
        transport_meta=_json(keys, r.transport_meta, f"raw_inbound:{r.id}:meta"),
    )


class _Encrypted:
    """Re-encrypts values stored ``{"enc": token}`` (or in the clear, from before) under the
    current key, noting whether any changed."""

    def __init__(self, keys: Keys) -> None:
        self._keys = keys
        self.changed = False

    def __call__(self, value: Any) -> Any:
        if isinstance(value, dict) and "enc" in value:
            token = self._keys.reencrypt(value["enc"])
            if token is None:
                return value
            self.changed = True
            return {"enc": token}
        if value:  # stored in the clear before the field was encrypted
            self.changed = True
            return {"enc": self._keys.encrypt(str(value))}
        return value


def _reporter(keys: Keys, reporter: dict[str, Any]) -> dict[str, Any] | None:
    """A complaint's reporter with every value encrypted under the current key."""
    one = _Encrypted(keys)
    out = {k: one(v) for k, v in reporter.items() if k != "handles"}
    out["handles"] = {k: one(v) for k, v in dict(reporter.get("handles") or {}).items()}
    return out if one.changed else None


def _attachments(keys: Keys, attachments: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """A complaint's attachments with their file names encrypted under the current key."""
    one = _Encrypted(keys)
    out = [{**a, "filename": one(a.get("filename"))} for a in attachments]
    return out if one.changed else None


def _complaint(keys: Keys, r: Row[Any]) -> dict[str, Any] | None:
    context = f"complaints:{r.id}"
    reporter = _reporter(keys, dict(r.reporter))
    attachments = _attachments(keys, [dict(a) for a in r.attachments])
    if not r.sealed:
        return {
            **sealing.complaint_columns(keys, r.id, r.title, r.body, r.location, r.confidential),
            "match_tokens": sealing.complaint_tokens(keys, r.id, r.match_tokens),
            **({} if reporter is None else {"reporter": reporter}),
            **({} if attachments is None else {"attachments": attachments}),
        }
    private = r.confidential  # title and place are sealed only then
    return _changed(
        body=_text(keys, r.body, f"{context}:body") if r.body else None,
        match_tokens=_text(keys, r.match_tokens, f"{context}:match_tokens")
        if r.match_tokens
        else None,
        title=_text(keys, r.title, f"{context}:title") if private and r.title else None,
        location=_json(keys, r.location, f"{context}:location") if private and r.location else None,
        reporter=reporter,
        attachments=attachments,
    )


def _event(keys: Keys, r: Row[Any]) -> dict[str, Any] | None:
    if not r.sealed:
        return {"body": sealing.event_body(keys, r.message_id, r.body), "sealed": True}
    return _changed(body=_text(keys, r.body, f"outbox:{r.message_id}"))


def _set_aside(keys: Keys, r: Row[Any]) -> dict[str, Any] | None:
    try:
        return _event(keys, r)
    except (InvalidTag, ValueError):  # no key opens it: why it was set aside
        return None


def _fragment(keys: Keys, r: Row[Any]) -> dict[str, Any] | None:
    if not r.sealed:
        return sealing.fragment_columns(keys, r.raw_inbound_id, r.text, dict(r.meta))
    return _changed(
        text=_text(keys, r.text, f"sms_fragments:{r.raw_inbound_id}:text"),
        meta=_json(keys, r.meta, f"sms_fragments:{r.raw_inbound_id}:meta"),
    )


def _draft(keys: Keys, r: Row[Any]) -> dict[str, Any] | None:
    def column(name: str) -> Any:
        stored = getattr(r, name)
        if stored is None:
            return None
        if isinstance(stored, dict) and stored.keys() == {"sealed"}:
            return _json(keys, stored, f"letter_drafts:{r.id}:{name}")
        return sealing.draft_column(keys, r.id, name, stored)  # written before sealing

    return _changed(
        files=column("files"),
        pages=column("pages"),
        fields=column("fields"),
        reviewed=column("reviewed"),
        unsent=column("unsent"),
    )


def _identity(keys: Keys, r: Row[Any]) -> dict[str, Any] | None:
    return _changed(value_enc=keys.reencrypt(r.value_enc))


def _recipient(keys: Keys, r: Row[Any]) -> dict[str, Any] | None:
    return _changed(recipient=keys.reencrypt(r.recipient))


Resealer = Callable[[Keys, Row[Any]], dict[str, Any] | None]

# Table, the columns a resealer reads besides the primary key, the column the row must still
# hold for the update to apply (a concurrent change wins; the next run takes the row again),
# and the resealer.
_TABLES: tuple[tuple[Table, tuple[str, ...], str | None, Resealer], ...] = (
    (raw_inbound, ("body", "transport_meta", "sealed"), None, _raw),
    (
        complaints,
        (
            "title", "body", "location", "match_tokens", "reporter", "attachments",
            "confidential", "sealed",
        ),
        None,
        _complaint,
    ),
    (outbox, ("message_id", "body", "sealed"), None, _event),
    (outbox_set_aside, ("body", "sealed"), None, _set_aside),  # its key: message_id
    (sms_fragments, ("raw_inbound_id", "text", "meta", "sealed"), None, _fragment),
    (
        letter_drafts,
        ("files", "pages", "fields", "reviewed", "unsent", "updated_at"),
        "updated_at",
        _draft,
    ),
    (identities, ("value_enc",), None, _identity),
    (sms_replies, ("recipient",), None, _recipient),
)


async def reseal(engine: AsyncEngine, keys: Keys, files: FileStore, batch: int = BATCH) -> Report:
    """Seal again under ``keys.data_key`` every stored value that does not open with it."""
    report = Report()
    for table, columns, guard, resealer in _TABLES:
        (key,) = table.primary_key.columns  # ``id``, but ``message_id`` for outbox_set_aside
        last: Any = None
        resealed = seen = left = 0
        while True:
            query = select(key, *(table.c[c] for c in columns)).order_by(key).limit(batch)
            if last is not None:
                query = query.where(key > last)
            async with engine.begin() as conn:
                rows = (await conn.execute(query)).all()
                for r in rows:
                    changes = resealer(keys, r)
                    if changes is None:
                        continue
                    stmt = update(table).where(key == getattr(r, key.name))
                    if guard is not None:
                        stmt = stmt.where(table.c[guard] == getattr(r, guard))
                    result = await conn.execute(stmt.values(**changes))
                    resealed += result.rowcount
                    left += 1 - result.rowcount
            if not rows:
                break
            seen += len(rows)
            last = getattr(rows[-1], key.name)
        report.resealed[table.name] = resealed
        report.seen[table.name] = seen
        report.left[table.name] = left
        log.info(
            "resealed %d of %d rows",
            resealed,
            seen,
            extra={"table": table.name, "left_for_next_run": left},
        )
    resealed_files, seen_files = await files.reseal()
    report.resealed["files"] = resealed_files
    report.seen["files"] = seen_files
    return report


def dumps(report: Report) -> str:
    """The report as the CLI prints it."""
    return json.dumps(
        {"resealed": report.resealed, "seen": report.seen, "left": report.left}, indent=2
    )
