"""The file store's garbage collection: delete the files no row refers to. ``serve`` runs it
every ``storage.gc_interval`` (:func:`run_every`); ``lapor-gateway files gc`` runs it once.

A file is stored before the row that refers to it is committed (an upload is streamed to disk
while the rest of its request is still being read), so a request refused after that (a form with
an invalid NIK, a refused second attachment, a rate limit, a CSRF failure, a 503 from the intake)
leaves files nothing refers to. Nothing else ever deletes a file. This deletes a file only when
both hold:

- its mtime is older than the grace (at least :data:`MIN_GRACE`). Requests in flight hold files
  no row refers to yet, and so does a refused form that keeps a citizen's attachments for
  ``web.csrf_max_age``; storing the same bytes again refreshes the mtime, and so does a form
  carrying a kept attachment.
- no row refers to it. The references, read in primary-key order, :data:`BATCH` rows at a time:

  - ``raw_inbound.sha256`` of a body kept in the file store (``body`` NULL);
  - every raw inbound message that is not ``accepted`` (``duplicate``, ``quarantined``,
    ``recorded``) of a channel that can carry files (all but SMS, :data:`WITHOUT_FILES`: its
    status queries and help requests are most of what is not accepted, and a text names no
    file), its body and transport metadata opened: a quarantined message must find its
    attachments when it is replayed, and a duplicate's attachments are in its event. How such a
    message names a file is each channel's own encoding (the form's URL-encoded attachment
    references in the body, the API's ``attachment_refs`` and the form's EXIF positions in the
    metadata, a letter's scans), so the search is generic and errs on the side of keeping:
    every string of 64 hex digits found there is a reference, and so is every 64-digit stretch
    of a longer run (the form's body holds ``%22<sha256>%22``, a run of 68 digits);
  - ``complaints.attachments``;
  - ``letter_drafts.files`` (the scans) and ``letter_drafts.pages`` (the page images), both
    sealed columns.

  An accepted message's attachments are its complaint's, and an event's are those of its
  complaint or of its duplicate message, so the outbox adds none.

The order makes it safe beside running replicas: the old files are listed first, the references
read next, and each file is deleted only if its mtime is still old (it is renamed aside first, so
a request storing the same bytes at that moment either refreshed it before, and it goes back, or
writes it anew). A row committed after the listing refers to a file stored after it (young), or
to one that an earlier row already referred to: raw messages are read before complaints, so a
quarantined message replayed meanwhile is found as the one or as the other. A value that does
not open (a data key missing from the previous keys) stops the run before anything is deleted.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, Table, and_, case, select
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway import periodic, sealing
from gateway.crypto import Keys
from gateway.domain import Channel, ReceiptStatus
from gateway.filestore import FileStore
from gateway.metrics import Metrics
from gateway.storage.schema import complaints, letter_drafts, raw_inbound

log = logging.getLogger(__name__)

BATCH = 500
# Channels whose messages name no stored file: their messages that were not accepted are not
# opened (a channel that gains attachments must leave this set).
WITHOUT_FILES = frozenset({Channel.SMS})
MIN_GRACE = timedelta(hours=1)
DEFAULT_GRACE = timedelta(hours=24)
_SHA256_DIGITS = 64
_HEX_RUN = re.compile(rb"[0-9a-fA-F]{64,}")


@dataclass(frozen=True, slots=True)
class Report:
    """What one run found. In a dry run, ``deleted``, ``temporaries`` and ``freed`` are what it
    would have deleted."""

    grace: timedelta
    dry_run: bool
    scanned: int  # files in the store (temporaries aside)
    referenced: int  # older than the grace, kept: a row refers to them
    young: int  # kept: written, or stored again, within the grace
    deleted: int
    temporaries: int  # temporaries older than the grace (left by a process killed mid-write)
    freed: int  # bytes, temporaries included


def hashes_in(data: bytes) -> Iterator[str]:
    """Every string of 64 hex digits in ``data`` (lowercase), each 64-digit stretch of a longer
    run of hex digits included."""
    for run in _HEX_RUN.findall(data):
        text = run.decode("ascii").lower()
        for start in range(len(text) - _SHA256_DIGITS + 1):
            yield text[start : start + _SHA256_DIGITS]


def _json_hashes(value: Any) -> Iterator[str]:
    return hashes_in(json.dumps(value).encode())


async def _batches(
    engine: AsyncEngine,
    table: Table,
    columns: Sequence[ColumnElement[Any]],
    batch: int,
) -> AsyncIterator[list[Row[Any]]]:
    """``columns`` of every row of ``table``, ``batch`` rows at a time in primary-key order, each
    batch read in a short transaction of its own."""
    key = table.c.id
    last: Any = None
    while True:
        query = select(key, *columns).order_by(key).limit(batch)
        if last is not None:
            query = query.where(key > last)
        async with engine.connect() as conn:
            rows = list((await conn.execute(query)).all())
        if not rows:
            return
        yield rows
        last = rows[-1].id


# A source of references: the hashes its rows refer to, one list per batch of rows.
Source = Callable[[AsyncEngine, FileStore, Keys, int], AsyncIterator[list[str]]]


async def _raw_references(
    engine: AsyncEngine, files: FileStore, keys: Keys, batch: int
) -> AsyncIterator[list[str]]:
    """Raw messages: a body kept in the file store, and what a message not accepted names."""
    not_accepted = and_(
        raw_inbound.c.status != ReceiptStatus.ACCEPTED.value,
        raw_inbound.c.channel.not_in(sorted(c.value for c in WITHOUT_FILES)),
    )
    columns = (
        not_accepted.label("named"),
        raw_inbound.c.sha256,
        raw_inbound.c.sealed,
        raw_inbound.c.body.is_(None).label("in_store"),
        # Only the messages not accepted are opened: the others' bodies stay in the database.
        case((not_accepted, raw_inbound.c.body)).label("body"),
        case((not_accepted, raw_inbound.c.transport_meta)).label("meta"),
    )
    async for rows in _batches(engine, raw_inbound, columns, batch):
        found: list[str] = []
        for r in rows:
            if r.in_store:
                found.append(r.sha256)
            if r.named:
                found += await _named_by(files, keys, r)
        yield found


async def _named_by(files: FileStore, keys: Keys, r: Row[Any]) -> list[str]:
    """What a raw message (body and transport metadata, opened) may refer to."""
    body = sealing.raw_body(keys, r.id, r.body, r.sealed)
    if body is None:  # kept in the file store
        try:
            body = await files.read(r.sha256)
        except FileNotFoundError:  # lost already: it names nothing that can be found
            body = b""
    meta = sealing.raw_meta(keys, r.id, r.meta, r.sealed)
    return [*hashes_in(body), *_json_hashes(meta)]


async def _complaint_references(
    engine: AsyncEngine, _files: FileStore, _keys: Keys, batch: int
) -> AsyncIterator[list[str]]:
    """Complaints: their attachments (hashes in the clear, names encrypted)."""
    async for rows in _batches(engine, complaints, (complaints.c.attachments,), batch):
        yield [sha for r in rows for sha in _json_hashes(r.attachments)]


async def _draft_references(
    engine: AsyncEngine, _files: FileStore, keys: Keys, batch: int
) -> AsyncIterator[list[str]]:
    """Letter drafts: the scans, and the page images read from them (sealed columns)."""
    columns = (letter_drafts.c.files, letter_drafts.c.pages)
    async for rows in _batches(engine, letter_drafts, columns, batch):
        found: list[str] = []
        for r in rows:
            found += _json_hashes(sealing.open_draft_column(keys, r.id, "files", r.files))
            found += _json_hashes(sealing.open_draft_column(keys, r.id, "pages", r.pages))
        yield found


# Raw messages before complaints: see the module's docstring.
_SOURCES: tuple[Source, ...] = (_raw_references, _complaint_references, _draft_references)


async def collect(
    engine: AsyncEngine,
    files: FileStore,
    keys: Keys,
    grace: timedelta = DEFAULT_GRACE,
    *,
    dry_run: bool = False,
    batch: int = BATCH,
) -> Report:
    """Delete the files older than ``grace`` that no row refers to, and the temporaries older
    than it (``dry_run``: only count them). Raises ValueError for a grace under
    :data:`MIN_GRACE`, and InvalidTag or CorruptFile, before deleting anything, when a sealed
    value or a stored body does not open with ``keys``."""
    if grace < MIN_GRACE:
        raise ValueError(f"a grace under {MIN_GRACE} would take the files of requests in flight")
    cutoff = time.time() - grace.total_seconds()
    aged = await files.aged(cutoff)
    unreferenced = set(aged.old)
    for source in _SOURCES:
        if not unreferenced:
            break
        async for found in source(engine, files, keys, batch):
            unreferenced.difference_update(found)
    deleted = freed = refreshed = 0
    for sha in unreferenced:
        size = await files.collect(files.path(sha), cutoff, dry_run)
        if size is None:  # stored again since the listing
            refreshed += 1
            continue
        deleted += 1
        freed += size
        log.info("unreferenced file %s", "found" if dry_run else "deleted", extra={"sha256": sha})
    temporaries = 0
    for path in aged.temporaries:
        size = await files.collect(path, cutoff, dry_run)
        if size is not None:
            temporaries += 1
            freed += size
    report = Report(
        grace=grace,
        dry_run=dry_run,
        scanned=len(aged.old) + aged.young,
        referenced=len(aged.old) - len(unreferenced),
        young=aged.young + refreshed,
        deleted=deleted,
        temporaries=temporaries,
        freed=freed,
    )
    log.info(
        "file store collected" if not dry_run else "file store collection, dry run",
        extra={
            "scanned": report.scanned,
            "referenced": report.referenced,
            "young": report.young,
            "deleted": report.deleted,
            "temporaries": report.temporaries,
            "freed_bytes": report.freed,
        },
    )
    return report


def summary(report: Report) -> str:
    """The report as the CLI prints it."""
    would = report.dry_run
    hours = report.grace.total_seconds() / 3600
    return "\n".join(
        (
            f"files scanned: {report.scanned}",
            f"kept, referenced by a row: {report.referenced}",
            f"kept, younger than {hours:g} h: {report.young}",
            f"{'would delete' if would else 'deleted'}: {report.deleted}",
            f"leftover temporaries {'to delete' if would else 'deleted'}: {report.temporaries}",
            f"bytes {'that would be freed' if would else 'freed'}: {report.freed}",
        )
    )


async def run_every(
    engine: AsyncEngine,
    files: FileStore,
    keys: Keys,
    metrics: Metrics,
    *,
    interval: float,
    grace: timedelta,
    stop: asyncio.Event,
) -> None:
    """Collect every ``interval`` seconds until ``stop`` (``serve`` runs this; see
    :func:`gateway.periodic.run_every`)."""

    async def job() -> None:
        report = await collect(engine, files, keys, grace)
        metrics.gc_deleted.inc(report.deleted + report.temporaries)
        metrics.gc_freed.inc(report.freed)

    await periodic.run_every(
        interval, stop, job, what="file store collection", runs=metrics.gc_runs
    )
