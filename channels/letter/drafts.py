"""Letter drafts: a scanned letter between upload and confirmation, kept in the database.

A draft is created per letter at upload (status ``reading``), read in the background by any
replica (:mod:`channels.letter.reading` takes a lease on it: ``claimed_by``/``claim_expires``,
renewed after each page, so a letter whose reader died is read again), then waits as ``ready``
for the clerk, who may save the fields any number of times (the draft survives a closed browser)
and confirms it once: ``confirmed`` with the tracking ID and the values that were sent. A letter
that could not be read is ``failed`` with the reason; the clerk may read it again.

Readers take the letters in turns between uploads (:meth:`DraftStore.claim`): the first letter
of every upload before the next letter of any, so a letter a citizen is waiting for at the
counter does not wait behind a whole complaint box uploaded a minute earlier.

The clerk's values carry a version (:func:`values_version`): the review form sends the version
it was drawn from, so a save that would overwrite what another clerk saved meanwhile is noticed.
The row has a version of its own too (``version``, raised by every write of the status or the
values): :meth:`DraftStore.save` writes only over the version it read, and so does
:meth:`DraftStore.confirmed`, which records the values that were sent and, when a save landed
after the confirmation began (its hold ran out, or was named failed, while the intake port
still committed it), keeps that save's values beside them as ``unsent`` (who, when), never
writing over them unawares.
"""

from __future__ import annotations

import enum
import hashlib
import json
import secrets
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, case, func, literal, or_, select, union_all, update
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from channels.letter.parse import Scan
from gateway import sealing
from gateway.crypto import Keys
from gateway.intake import Clock, utcnow
from gateway.storage.schema import letter_drafts, staff_accounts

MAX_ATTEMPTS = 3  # a letter whose reading crashed the reader this often is marked failed
# A confirmation holds the letter (``claimed_by`` = ``confirm:<id>:<username>``, unused once a
# letter is ready; the id is this one confirmation's, see new_hold) from its save until the
# intake port has committed it, so that no other save lands in between and is then overwritten
# unawares by the values sent. A confirming process that died leaves the hold to run out after
# this long; one that was told the intake could not take the letter releases it, and when the
# database is away for that too, its answer names the hold as failed (DraftStore.save's
# ``failed``), so the clerk's next Save or Confirm need not wait for it to run out.
CONFIRM_HOLD = timedelta(seconds=120)
_HOLD_PREFIX = "confirm:"
# The namespace of the batch ids derived from an upload's key (create_batch).
_UPLOAD_KEYS = uuid.UUID("6c9f3e1a-52b4-4d0e-9a7f-1c2b3d4e5f60")


class DraftStatus(enum.StrEnum):
    """Where a letter is."""

    READING = "reading"
    READY = "ready"
    FAILED = "failed"
    CONFIRMED = "confirmed"
    # Set aside by a clerk or a supervisor: not a letter to send (uploaded twice, not a
    # complaint, the wrong file). Off the list of letters to send, kept (its scans too) and
    # listed apart, until someone puts it back.
    SET_ASIDE = "set_aside"


# The reason a letter that could not be read shows once put back (it is read again on request).
PUT_BACK_UNREAD = (
    "Dikembalikan dari surat yang disisihkan; belum terbaca. / Put back from the letters set "
    "aside; not read yet."
)
# Why a letter is set aside (a code, never free text: it would be the citizen's words).
SET_ASIDE_REASONS = ("twice", "not_a_report", "wrong_file")


@dataclass(frozen=True, slots=True)
class PageInfo:
    """One page as read: its image (PNG in the file store), text and confidence (0-100)."""

    number: int
    image_sha256: str
    confidence: float
    source: str  # "ocr" | "text-layer"
    text: str
    file_index: int = 0

    def as_json(self) -> dict[str, Any]:
        """As stored in the ``pages`` column."""
        return {
            "number": self.number,
            "image_sha256": self.image_sha256,
            "confidence": self.confidence,
            "source": self.source,
            "text": self.text,
            "file_index": self.file_index,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PageInfo:
        """Read back from the ``pages`` column."""
        return cls(
            number=int(data["number"]),
            image_sha256=str(data["image_sha256"]),
            confidence=float(data["confidence"]),
            source=str(data["source"]),
            text=str(data.get("text", "")),
            file_index=int(data.get("file_index", 0)),
        )


@dataclass(frozen=True, slots=True)
class FieldInfo:
    """One extracted field: value, confidence 0..1 and a note (e.g. the NIK's region)."""

    value: str | None
    confidence: float
    note: str | None = None

    def as_json(self) -> dict[str, Any]:
        """As stored in the ``fields`` column."""
        return {"value": self.value, "confidence": self.confidence, "note": self.note}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FieldInfo:
        """Read back from the ``fields`` column."""
        value = data.get("value")
        note = data.get("note")
        return cls(
            value=None if value is None else str(value),
            confidence=float(data.get("confidence", 0.0)),
            note=None if note is None else str(note),
        )


@dataclass(frozen=True, slots=True)
class Draft:
    """One letter draft as the pages show it."""

    id: str
    batch_id: str
    status: DraftStatus
    files: tuple[Scan, ...]
    pages_total: int | None
    pages_done: int
    pages: tuple[PageInfo, ...]
    fields: Mapping[str, FieldInfo]
    values: Mapping[str, str]
    error: str | None
    created_by: str
    created_by_name: str
    created_at: datetime
    updated_at: datetime
    confirmed_at: datetime | None = None
    tracking_id: str | None = None
    confirmed_by: str | None = None
    confirmed_by_name: str | None = None
    receipt_status: str | None = None
    acks: tuple[str, ...] = ()
    attempts: int = 0
    updated_by_name: str | None = None  # who last saved the values (or read it again)
    held_by: str | None = None  # who is confirming it right now (the username), if anyone
    held_until: datetime | None = None
    hold: str | None = None  # that confirmation's hold (new_hold), if any
    version: int = 0  # the row's version: raised by every write of the status or the values
    # Values saved after the confirmation began and not sent with it (confirmed letters only),
    # who saved them and when.
    unsent: Mapping[str, str] | None = None
    unsent_by_name: str | None = None
    unsent_at: datetime | None = None

    def held(self, now: datetime, failed: str | None = None) -> bool:
        """Whether a confirmation holds the letter at ``now`` (no save may land); a hold named
        ``failed`` (by the answer of a confirmation the intake could not take) does not."""
        return (
            self.held_by is not None
            and self.held_until is not None
            and self.held_until > now
            and not (failed is not None and failed == self.hold)
        )

    @property
    def label(self) -> str:
        """A short name for lists: the first file's name, or the draft id."""
        names = [f.filename for f in self.files if f.filename]
        if not names:
            return self.id[:8]
        return names[0] if len(names) == 1 else f"{names[0]} (+{len(names) - 1})"


# Letters not confirmed yet: always on the desk's list (DraftStore.desk), with the newest
# confirmed ones, this many.
DESK_SENT = 100
_OPEN = (DraftStatus.READING.value, DraftStatus.READY.value, DraftStatus.FAILED.value)


@dataclass(frozen=True, slots=True)
class Desk:
    """The desk's list: every letter not confirmed (``waiting``: to review or read again, the
    longest waiting first, then those being read), and the ones confirmed last (``sent``,
    newest first); ``more_sent`` when older confirmed letters were left out; the newest
    letters set aside (``set_aside``, as many as ``sent``, the last set aside first);
    ``more_set_aside`` when letters set aside earlier were left out."""

    waiting: list[Draft]
    sent: list[Draft]
    more_sent: bool = False
    set_aside: list[Draft] = field(default_factory=list)
    more_set_aside: bool = False


def _draft(row: Row[Any], keys: Keys) -> Draft:
    # What was read and typed (names, NIK, the letter's text), and the files' names, are sealed
    # at rest.
    files = sealing.open_draft_column(keys, row.id, "files", row.files)
    pages = sealing.open_draft_column(keys, row.id, "pages", row.pages)
    fields = sealing.open_draft_column(keys, row.id, "fields", row.fields) or {}
    reviewed = sealing.open_draft_column(keys, row.id, "reviewed", row.reviewed)
    unsent = sealing.open_draft_column(keys, row.id, "unsent", row.unsent)
    claimed = row.claimed_by or ""
    hold = (
        claimed
        if row.status == DraftStatus.READY.value and claimed.startswith(_HOLD_PREFIX)
        else None
    )
    return Draft(
        id=row.id,
        batch_id=row.batch_id,
        status=DraftStatus(row.status),
        files=tuple(Scan.from_json(f) for f in files),
        pages_total=row.pages_total,
        pages_done=row.pages_done,
        pages=tuple(PageInfo.from_json(p) for p in pages),
        fields={k: FieldInfo.from_json(v) for k, v in fields.items()},
        values=dict(reviewed or {}),
        error=row.error,
        created_by=row.created_by,
        created_by_name=row.username,
        created_at=row.created_at,
        updated_at=row.updated_at,
        confirmed_at=row.confirmed_at,
        tracking_id=row.tracking_id,
        confirmed_by=row.confirmed_by,
        confirmed_by_name=row.confirmer,
        receipt_status=row.receipt_status,
        acks=tuple(row.acks or ()),
        attempts=row.attempts,
        updated_by_name=row.editor,
        held_by=None if hold is None else _holder(hold),
        held_until=row.claim_expires if hold is not None else None,
        hold=hold,
        version=row.version,
        unsent=None if unsent is None else dict(unsent),
        unsent_by_name=row.late_editor,
        unsent_at=row.unsent_at,
    )


def new_hold(username: str) -> str:
    """The hold of one confirmation by ``username`` (``claimed_by``): who confirms, and a
    random id of this confirmation, so that its own answer, and only it, can name it failed."""
    return f"{_HOLD_PREFIX}{secrets.token_hex(4)}:{username}"[:64]


def held_by_own(hold: str | None, username: str) -> bool:
    """Whether ``hold`` is one :func:`new_hold` made for ``username`` (compared as stored, cut to
    64 characters like the hold itself, so a long username is still its own)."""
    if not hold or not hold.startswith(_HOLD_PREFIX):
        return False
    token, sep, _ = hold.removeprefix(_HOLD_PREFIX).partition(":")
    return bool(sep) and hold == f"{_HOLD_PREFIX}{token}:{username}"[:64]


def failed_hold_of(sent: str | None, username: str) -> str | None:
    """The failed hold a clerk's form names (``failed_hold``), when it is one of this clerk's
    own confirmations (:func:`new_hold`, with its random id); None otherwise. A form is the
    client's to write: naming another clerk's hold, or an earlier release's guessable
    ``confirm:<username>``, must not end it."""
    if sent is None or not held_by_own(sent, username):
        return None
    token = sent.removeprefix(_HOLD_PREFIX).partition(":")[0]
    return sent if len(token) == 8 and all(c in "0123456789abcdef" for c in token) else None


def _holder(hold: str) -> str:
    """The username of a hold (a hold of an earlier release is ``confirm:<username>``; a
    username has no colon)."""
    rest = hold.removeprefix(_HOLD_PREFIX)
    return rest.split(":", 1)[1] if ":" in rest else rest


def values_version(values: Mapping[str, str]) -> str:
    """A short fingerprint of a clerk's values: the review form sends the one it was drawn
    from, so a save over values another clerk saved meanwhile is recognised."""
    text = json.dumps(dict(values), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:20]


_confirmer = staff_accounts.alias("confirmer")
_editor = staff_accounts.alias("editor")
_late_editor = staff_accounts.alias("late_editor")


def _select() -> Select[Any]:
    return (
        select(
            letter_drafts,
            staff_accounts.c.username,
            _confirmer.c.username.label("confirmer"),
            _editor.c.username.label("editor"),
            _late_editor.c.username.label("late_editor"),
        )
        .join(staff_accounts, staff_accounts.c.id == letter_drafts.c.created_by)
        .outerjoin(_confirmer, _confirmer.c.id == letter_drafts.c.confirmed_by)
        .outerjoin(_editor, _editor.c.id == letter_drafts.c.updated_by)
        .outerjoin(_late_editor, _late_editor.c.id == letter_drafts.c.unsent_by)
    )


class DraftStore:
    """Letter drafts in the database."""

    def __init__(self, engine: AsyncEngine, keys: Keys, clock: Clock = utcnow) -> None:
        self._engine = engine
        self._keys = keys
        self._clock = clock

    def _sealed(self, draft_id: str, column: str, value: Any) -> Any:
        return sealing.draft_column(self._keys, draft_id, column, value)

    async def create_batch(
        self, letters: Sequence[Sequence[Scan]], staff_id: str, key: str | None = None
    ) -> tuple[str, bool]:
        """One draft per letter (each a list of its files, in page order); the batch id, and
        False when ``key`` names a batch made already (nothing is made again).

        ``key`` makes the upload idempotent: the batch and draft ids are derived from it, so
        the same form posted twice (a double click, a reload of the answer) finds the batch the
        first post made, through the drafts' primary key, also when both arrive at once.
        """
        if key is None:
            batch = uuid.uuid4()
            ids = [str(uuid.uuid4()) for _ in letters]
        else:
            batch = uuid.uuid5(_UPLOAD_KEYS, key)
            ids = [str(uuid.uuid5(batch, str(i))) for i in range(len(letters))]
        batch_id = str(batch)
        now = self._clock()
        rows = [
            {
                "id": draft_id,
                "batch_id": batch_id,
                "status": DraftStatus.READING.value,
                "files": self._sealed(draft_id, "files", [s.as_json() for s in scans]),
                "pages_total": None,
                "pages_done": 0,
                "pages": self._sealed(draft_id, "pages", []),
                "fields": None,
                "reviewed": None,
                "created_by": staff_id,
                # A tiny offset keeps the upload order when listing by time.
                "created_at": now + timedelta(microseconds=i),
                "updated_at": now,
                "attempts": 0,
                "version": 0,
            }
            for i, (draft_id, scans) in enumerate(zip(ids, letters, strict=True))
        ]
        try:
            async with self._engine.begin() as conn:
                await conn.execute(letter_drafts.insert(), rows)
        except IntegrityError:
            if key is None or not await self.batch(batch_id):
                raise
            return batch_id, False
        return batch_id, True

    async def get(self, draft_id: str) -> Draft | None:
        """One draft, or None."""
        async with self._engine.connect() as conn:
            row = (await conn.execute(_select().where(letter_drafts.c.id == draft_id))).first()
        return None if row is None else _draft(row, self._keys)

    async def batch(self, batch_id: str) -> list[Draft]:
        """The drafts of one upload, in upload order."""
        query = _select().where(letter_drafts.c.batch_id == batch_id)
        async with self._engine.connect() as conn:
            rows = await conn.execute(query.order_by(letter_drafts.c.created_at))
            return [_draft(r, self._keys) for r in rows]

    async def desk(self, created_by: str | None, limit: int = DESK_SENT) -> Desk:
        """The letters of the desk's list, of one clerk or (None) of everybody: every letter
        not confirmed yet, whatever its age, and the ``limit`` confirmed last.

        One statement, three parts, each read through an index, never the letters of every
        year: the letters not confirmed (for a clerk through ``(created_by, status,
        confirmed_at)``; for everybody through ``(status, created_at)``), the confirmed ones
        sent last, ``limit`` + 1 of them (the one more says that older ones were left out),
        in the order they were sent through ``(created_by, status, confirmed_at)`` or
        ``(status, confirmed_at)``, and the ``limit`` set aside last (few; ``limit`` + 1 of
        them as well).
        """
        mine = () if created_by is None else (letter_drafts.c.created_by == created_by,)
        waiting = _select().where(letter_drafts.c.status.in_(_OPEN), *mine)
        sent = (
            _select()
            .where(letter_drafts.c.status == DraftStatus.CONFIRMED.value, *mine)
            .order_by(letter_drafts.c.confirmed_at.desc())
            .limit(limit + 1)
            .subquery()
        )
        aside = (  # the last set aside first (few: no index orders them)
            _select()
            .where(letter_drafts.c.status == DraftStatus.SET_ASIDE.value, *mine)
            .order_by(letter_drafts.c.updated_at.desc())
            .limit(limit + 1)
            .subquery()
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(union_all(waiting, select(sent), select(aside)))).all()
        drafts = [_draft(r, self._keys) for r in rows]
        put_aside = sorted(
            (d for d in drafts if d.status is DraftStatus.SET_ASIDE),
            key=lambda d: d.updated_at,
            reverse=True,
        )
        drafts = [d for d in drafts if d.status is not DraftStatus.SET_ASIDE]
        done = sorted(
            (d for d in drafts if d.status is DraftStatus.CONFIRMED),
            key=lambda d: d.confirmed_at or d.created_at,
            reverse=True,
        )
        # What needs the clerk first (to review, to read again), the longest waiting on top;
        # then what is being read, in upload order (about the order it is read in).
        todo = sorted(
            (d for d in drafts if d.status is not DraftStatus.CONFIRMED),
            key=lambda d: (d.status is DraftStatus.READING, d.created_at),
        )
        return Desk(
            waiting=todo,
            sent=done[:limit],
            more_sent=len(done) > limit,
            set_aside=put_aside[:limit],
            more_set_aside=len(put_aside) > limit,
        )

    # ---- the reader's side ----------------------------------------------------------------

    async def backlog(self) -> tuple[dict[str, int], datetime | None]:
        """Letters not confirmed, by status, and since when the oldest unread one waits (its
        upload, or the clerk's "read again")."""
        async with self._engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(
                        letter_drafts.c.status,
                        func.count(),
                        func.min(letter_drafts.c.updated_at),
                    )
                    .where(letter_drafts.c.status.in_(_OPEN))
                    .group_by(letter_drafts.c.status)
                )
            ).all()
        counts = {row[0]: int(row[1]) for row in rows}
        waiting = next((row[2] for row in rows if row[0] == DraftStatus.READING.value), None)
        return counts, waiting

    async def claim(self, reader: str, lease: float) -> Draft | None:
        """Take a letter nobody is reading (or whose reader's lease ran out): uploads take
        turns, oldest upload first.

        Each letter waiting is numbered within its upload (its turn: 1 for the first letter of
        the upload still unread, counting those being read), and the lowest turn goes first,
        the oldest letter among equal turns. A batch of fifty letters from the complaint box
        is read in upload order as before, but a letter uploaded after it is read as soon as
        a reader is free, not after the fifty.
        """
        now = self._clock()
        free = or_(letter_drafts.c.claim_expires.is_(None), letter_drafts.c.claim_expires < now)
        waiting = (
            select(
                letter_drafts.c.id,
                letter_drafts.c.created_at,
                letter_drafts.c.claim_expires,
                func.row_number()
                .over(partition_by=letter_drafts.c.batch_id, order_by=letter_drafts.c.created_at)
                .label("turn"),
            )
            .where(letter_drafts.c.status == DraftStatus.READING.value)
            .subquery()
        )
        async with self._engine.connect() as conn:
            ids = (
                await conn.execute(
                    select(waiting.c.id)
                    .where(
                        or_(waiting.c.claim_expires.is_(None), waiting.c.claim_expires < now)
                    )
                    .order_by(waiting.c.turn, waiting.c.created_at)
                    .limit(8)
                )
            ).scalars().all()
        for draft_id in ids:
            # Conditional update: of two replicas racing for the same letter, one changes the row.
            async with self._engine.begin() as conn:
                result = await conn.execute(
                    update(letter_drafts)
                    .where(
                        letter_drafts.c.id == draft_id,
                        letter_drafts.c.status == DraftStatus.READING.value,
                        free,
                    )
                    .values(
                        claimed_by=reader,
                        claim_expires=now + timedelta(seconds=lease),
                        attempts=letter_drafts.c.attempts + 1,
                        pages_done=0,
                    )
                )
            if result.rowcount == 1:
                return await self.get(draft_id)
        return None

    async def progress(
        self, draft_id: str, reader: str, done: int, total: int | None, lease: float
    ) -> bool:
        """Record pages read so far and renew the lease; False when the lease was lost."""
        values: dict[str, Any] = {
            "pages_done": done,
            "claim_expires": self._clock() + timedelta(seconds=lease),
        }
        if total is not None:
            values["pages_total"] = total
        return await self._reader_update(draft_id, reader, **values)

    async def finish(
        self,
        draft_id: str,
        reader: str,
        pages: Sequence[PageInfo],
        fields: Mapping[str, FieldInfo],
        values: Mapping[str, str],
    ) -> bool:
        """Store what was read; the letter is ready for review."""
        return await self._reader_update(
            draft_id,
            reader,
            status=DraftStatus.READY.value,
            pages=self._sealed(draft_id, "pages", [p.as_json() for p in pages]),
            pages_total=len(pages),
            pages_done=len(pages),
            fields=self._sealed(draft_id, "fields", {k: f.as_json() for k, f in fields.items()}),
            reviewed=self._sealed(draft_id, "reviewed", dict(values)),
            error=None,
            claimed_by=None,
            claim_expires=None,
            updated_at=self._clock(),
            version=letter_drafts.c.version + 1,
        )

    async def fail(self, draft_id: str, reader: str | None, error: str) -> bool:
        """The letter could not be read; the clerk sees ``error`` and may try again."""
        return await self._reader_update(
            draft_id,
            reader,
            status=DraftStatus.FAILED.value,
            error=error[:2000],
            claimed_by=None,
            claim_expires=None,
            updated_at=self._clock(),
            version=letter_drafts.c.version + 1,
        )

    async def give_back(self, reader: str) -> int:
        """The letters ``reader`` is reading go back to the queue at once (its process stops):
        the lease ends, the progress is cleared and the interrupted reading is not counted as
        an attempt (it did not crash). How many letters were given back."""
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(letter_drafts)
                .where(
                    letter_drafts.c.claimed_by == reader,
                    letter_drafts.c.status == DraftStatus.READING.value,
                    letter_drafts.c.attempts > 0,
                )
                .values(
                    claimed_by=None,
                    claim_expires=None,
                    pages_done=0,
                    attempts=letter_drafts.c.attempts - 1,
                )
            )
        return int(result.rowcount or 0)

    async def _reader_update(self, draft_id: str, reader: str | None, **values: Any) -> bool:
        query = update(letter_drafts).where(
            letter_drafts.c.id == draft_id,
            letter_drafts.c.status == DraftStatus.READING.value,
        )
        if reader is not None:
            query = query.where(letter_drafts.c.claimed_by == reader)
        async with self._engine.begin() as conn:
            result = await conn.execute(query.values(**values))
        return bool(result.rowcount)

    # ---- the clerk's side -----------------------------------------------------------------

    async def read_again(self, draft_id: str, staff_id: str) -> bool:
        """Put a failed letter back in the reading queue."""
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(letter_drafts)
                .where(
                    letter_drafts.c.id == draft_id,
                    letter_drafts.c.status == DraftStatus.FAILED.value,
                )
                .values(
                    status=DraftStatus.READING.value,
                    error=None,
                    attempts=0,
                    pages_done=0,
                    claimed_by=None,
                    claim_expires=None,
                    updated_by=staff_id,
                    updated_at=self._clock(),
                    version=letter_drafts.c.version + 1,
                )
            )
        return bool(result.rowcount)

    async def set_aside(self, draft_id: str, staff_id: str, reason: str) -> bool:
        """Take a letter off the list of letters to send (``reason``, one of
        :data:`SET_ASIDE_REASONS`): only one ready for review or that could not be read, and
        not while a confirmation holds it. What it was is kept with the reason (``error``:
        ``<reason>:<status>``, then ``:<why it could not be read>`` for one that could not),
        so :meth:`put_back` returns it as it was. False when nothing was written."""
        if reason not in SET_ASIDE_REASONS:
            raise ValueError(f"unknown reason {reason!r}")
        now = self._clock()
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(letter_drafts)
                .where(
                    letter_drafts.c.id == draft_id,
                    letter_drafts.c.status.in_(
                        (DraftStatus.READY.value, DraftStatus.FAILED.value)
                    ),
                    or_(
                        letter_drafts.c.claim_expires.is_(None),
                        letter_drafts.c.claim_expires < now,
                    ),
                )
                .values(
                    status=DraftStatus.SET_ASIDE.value,
                    error=literal(f"{reason}:")
                    + letter_drafts.c.status
                    + case(
                        (letter_drafts.c.error.is_(None), literal("")),
                        else_=literal(":") + letter_drafts.c.error,
                    ),
                    claimed_by=None,
                    claim_expires=None,
                    updated_by=staff_id,
                    updated_at=now,
                    version=letter_drafts.c.version + 1,
                )
            )
        return bool(result.rowcount)

    async def put_back(self, draft_id: str, staff_id: str) -> bool:
        """Return a letter set aside to the list, as it was: ready for review (its saved
        values kept), or to be read again with the reason it could not be read. False when it
        was not set aside."""
        async with self._engine.begin() as conn:
            row = (
                await conn.execute(
                    select(letter_drafts.c.error).where(
                        letter_drafts.c.id == draft_id,
                        letter_drafts.c.status == DraftStatus.SET_ASIDE.value,
                    )
                )
            ).first()
            if row is None:
                return False
            parts = (row.error or "").split(":", 2)  # reason, status before, why unread
            ready = len(parts) > 1 and parts[1] == DraftStatus.READY.value
            why = parts[2] if len(parts) > 2 else ""
            result = await conn.execute(
                update(letter_drafts)
                .where(
                    letter_drafts.c.id == draft_id,
                    letter_drafts.c.status == DraftStatus.SET_ASIDE.value,
                    letter_drafts.c.error == row.error,  # nobody put it back meanwhile
                )
                .values(
                    status=DraftStatus.READY.value if ready else DraftStatus.FAILED.value,
                    error=None if ready else (why or PUT_BACK_UNREAD),
                    updated_by=staff_id,
                    updated_at=self._clock(),
                    version=letter_drafts.c.version + 1,
                )
            )
        return bool(result.rowcount)

    async def save(
        self,
        draft_id: str,
        staff_id: str,
        values: Mapping[str, str],
        over: int | None = None,
        hold: str | None = None,
        failed: str | None = None,
    ) -> bool:
        """Keep the clerk's values (only while the letter is ready, not after confirmation,
        and not while a confirmation holds it); with ``over`` (the ``version`` of the draft
        as read), only when nobody has changed the row since. With ``hold`` (:func:`new_hold`)
        the save also holds the letter for :data:`CONFIRM_HOLD`, until :meth:`confirmed` or
        :meth:`release`. ``failed`` is the hold of a confirmation whose answer said the intake
        could not take it (nothing was committed, and it sends nothing more): the save may
        land over that hold, and ends it. False when nothing was written."""
        now = self._clock()
        free = [letter_drafts.c.claim_expires.is_(None), letter_drafts.c.claim_expires < now]
        if failed is not None and failed.startswith(_HOLD_PREFIX):
            free.append(letter_drafts.c.claimed_by == failed)
        query = update(letter_drafts).where(
            letter_drafts.c.id == draft_id,
            letter_drafts.c.status == DraftStatus.READY.value,
            or_(*free),
        )
        if over is not None:
            query = query.where(letter_drafts.c.version == over)
        # A ready letter's claim is only ever a confirmation's hold: this one's, or none (one
        # that ran out, or the failed one, is ended).
        held: dict[str, Any] = {"claimed_by": None, "claim_expires": None}
        if hold is not None:
            held = {"claimed_by": hold[:64], "claim_expires": now + CONFIRM_HOLD}
        async with self._engine.begin() as conn:
            result = await conn.execute(
                query.values(
                    reviewed=self._sealed(draft_id, "reviewed", dict(values)),
                    updated_by=staff_id,
                    updated_at=now,
                    version=letter_drafts.c.version + 1,
                    **held,
                )
            )
        return bool(result.rowcount)

    async def release(self, draft_id: str, hold: str) -> None:
        """End the hold of a confirmation that did not go through (the intake was away)."""
        async with self._engine.begin() as conn:
            await conn.execute(
                update(letter_drafts)
                .where(
                    letter_drafts.c.id == draft_id,
                    letter_drafts.c.status == DraftStatus.READY.value,
                    letter_drafts.c.claimed_by == hold[:64],
                )
                .values(claimed_by=None, claim_expires=None)
            )

    async def staff_id(self, username: str) -> str | None:
        """The id of the account ``username`` (who confirmed a letter, read from what was
        sent), None when there is none."""
        async with self._engine.connect() as conn:
            found = await conn.execute(
                select(staff_accounts.c.id).where(staff_accounts.c.username == username)
            )
            return found.scalar_one_or_none()

    async def confirmed(
        self,
        draft_id: str,
        staff_id: str,
        tracking_id: str,
        receipt_status: str,
        acks: Sequence[str] = (),
        values: Mapping[str, str] | None = None,
    ) -> Mapping[str, str] | None:
        """Record the confirmation (after the intake port committed the complaint), with the
        ``values`` that were sent: the receipt shows them.

        Values saved after the confirmation began (its hold ran out while the intake was slow,
        or a save ended a hold named failed whose confirmation went through after all) were not
        sent: they are not written over unawares but kept as ``unsent``, with who saved them
        and when, and returned (None when the values as saved are the ones sent, or the letter
        was recorded confirmed already). The row is written only over the version read, so a
        save landing between this read and write is kept too."""
        while True:
            row = await self._confirm_read(draft_id)
            if row is None or row.status == DraftStatus.CONFIRMED.value:
                return None
            now = self._clock()
            sent: dict[str, Any] = {}
            late: dict[str, str] | None = None
            if values is not None:
                sent["reviewed"] = self._sealed(draft_id, "reviewed", dict(values))
                saved = sealing.open_draft_column(self._keys, draft_id, "reviewed", row.reviewed)
                if saved is not None and dict(saved) != dict(values):
                    late = {str(k): str(v) for k, v in dict(saved).items()}
                    sent["unsent"] = self._sealed(draft_id, "unsent", late)
                    sent["unsent_by"] = row.updated_by
                    sent["unsent_at"] = row.updated_at
            async with self._engine.begin() as conn:
                result = await conn.execute(
                    update(letter_drafts)
                    .where(
                        letter_drafts.c.id == draft_id,
                        letter_drafts.c.status != DraftStatus.CONFIRMED.value,
                        letter_drafts.c.version == row.version,
                    )
                    .values(
                        **sent,
                        status=DraftStatus.CONFIRMED.value,
                        confirmed_by=staff_id,
                        confirmed_at=now,
                        tracking_id=tracking_id,
                        receipt_status=receipt_status,
                        acks=list(acks),
                        claimed_by=None,
                        claim_expires=None,
                        updated_by=staff_id,
                        updated_at=now,
                        version=letter_drafts.c.version + 1,
                    )
                )
            if result.rowcount:
                return late
            # Changed since it was read (a save landed, or another request recorded it): again.

    async def _confirm_read(self, draft_id: str) -> Any:
        """What :meth:`confirmed` reads of the draft before writing over that version (its
        status, version, reviewed values, who saved them and when), or None."""
        query = select(
            letter_drafts.c.status,
            letter_drafts.c.version,
            letter_drafts.c.reviewed,
            letter_drafts.c.updated_by,
            letter_drafts.c.updated_at,
        ).where(letter_drafts.c.id == draft_id)
        async with self._engine.connect() as conn:
            return (await conn.execute(query)).first()
