"""The identity graph: persons and the identities (NIK, phone, e-mail, handles) linked to them.

Identities link when they are seen together in one message (a web form with NIK, phone and
e-mail; an SMS carrying a NIK; a Telegram contact share). NIK is the anchor:

- two different NIKs are never one person;
- an identity already linked to the person of NIK A that appears with NIK B stays with A, and the
  clash is recorded in ``identity_conflicts`` (never silently moved);
- persons without a NIK that are seen together with another person merge into it (their
  identities and complaints move; the merged person points at the survivor).

Everything runs inside the intake transaction. The unique constraint on ``(kind, value_hash)``
and a row lock on the chosen person (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite has a single
writer) make concurrent messages of one person take turns, on one replica or many. A unique
index on the NIK of a person (``uq_identities_one_nik_per_person``, migration 0008) backs the
first rule in the database: a write that would break it fails, and the intake writes the
message again, seeing what was committed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Table, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.crypto import Keys
from gateway.domain import Channel, ComplaintDraft
from gateway.ids import new_id
from gateway.storage.schema import complaints, identities, identity_conflicts, persons
from normalizer import (
    email_mailbox,
    normalize_email,
    normalize_phone,
    normalize_telegram_user_id,
    normalize_telegram_username,
    normalize_twitter_handle,
    normalize_twitter_user_id,
    parse_nik,
)

# The identity a channel's transport vouches for: who sent the message (dedup tier 2).
SENDER_KIND = {
    Channel.SMS: "phone",
    Channel.EMAIL: "email",
    Channel.TWITTER: "twitter",
    Channel.TELEGRAM: "telegram",
}


@dataclass(frozen=True, slots=True)
class Identity:
    """One normalised identity of a message, with its lookup hash."""

    kind: str
    value: str
    value_hash: str


@dataclass(frozen=True, slots=True)
class Resolution:
    """Who sent a message: the person, how they were recognised, the sender's hash."""

    person_id: str | None
    matched_kind: str | None  # the identity kind through which an existing person was found
    sender_hash: str | None
    conflicts: int
    created: bool = False  # the person was first seen in this message


def identities_of(channel: Channel, draft: ComplaintDraft, keys: Keys) -> list[Identity]:
    """The valid, normalised identities a draft carries (invalid ones are ignored)."""
    rep = draft.reporter
    found: list[tuple[str, str | None]] = []
    if rep.nik:
        nik = parse_nik(rep.nik)
        found.append(("nik", nik.nik if nik.valid else None))
    if rep.phone:
        found.append(("phone", normalize_phone(rep.phone)))
    if rep.email:
        email = normalize_email(rep.email)
        found.append(("email", email))
        if email is not None:
            # Gmail's mailbox too ("budisantoso@gmail.com" for "budi.santoso+lapor@gmail.com"):
            # the citizen who types the address without its dots on the form is the one whose
            # e-mail arrives with them. After the address as given, which stays the sender (dedup
            # tier 2) and is how identities stored before this key were looked up.
            found.append(("email", email_mailbox(email)))
    for kind, value in rep.handles.items():
        norm: str | None
        if kind == "twitter":
            norm = normalize_twitter_user_id(value) or _twitter_username(value)
        elif kind == "telegram":
            norm = normalize_telegram_user_id(value) or normalize_telegram_username(value)
        else:
            continue
        found.append((kind, norm))
    seen: set[tuple[str, str]] = set()
    out: list[Identity] = []
    for kind, found_value in found:
        if found_value and (kind, found_value) not in seen:
            seen.add((kind, found_value))
            out.append(Identity(kind, found_value, keys.lookup_hash(kind, found_value)))
    return out


def _twitter_username(value: str) -> str | None:
    """A Twitter/X username as an identity value. A username may be all digits ("@12345"),
    and so is a numeric user id ("12345", another account): such a username keeps its "@", so
    that the two never become one identity (and their persons one person)."""
    name = normalize_twitter_handle(value)
    return f"@{name}" if name is not None and name.isdigit() else name


def vouched_by(channel: Channel, ids: list[Identity]) -> frozenset[str]:
    """The lookup hashes of the identities the channel's transport vouches for: the phone number
    an SMS came from, an e-mail's address (with its Gmail mailbox), an account. None for a web
    form or a letter, where every identity is typed."""
    kind = SENDER_KIND.get(channel)
    return frozenset(i.value_hash for i in ids if i.kind == kind) if kind else frozenset()


def holding_proof(
    channel: Channel, ids: list[Identity], metadata: Mapping[str, str]
) -> frozenset[str]:
    """The lookup hashes of the identities that show a message's sender holds a tracking ID
    they name (a follow-up, gateway.intake): what the transport vouches for
    (:func:`vouched_by`), and for a letter the NIK the clerk checked against the sender's KTP
    at the counter (``nik_checked: ktp`` in its metadata)."""
    proof = vouched_by(channel, ids)
    if channel is Channel.LETTER and metadata.get("nik_checked") == "ktp":
        proof |= {i.value_hash for i in ids if i.kind == "nik"}
    return proof


def sender_of(channel: Channel, ids: list[Identity]) -> Identity | None:
    """The identity the transport vouches for, else the strongest one given (NIK first)."""
    kind = SENDER_KIND.get(channel)
    if kind is not None:
        return next((i for i in ids if i.kind == kind), None)
    return ids[0] if ids else None


class IdentityGraph:
    """The identity graph as one intake transaction sees it.

    :meth:`load` reads what is stored about every identity of a whole batch of messages in a
    few statements: the identities; then their persons, locked on PostgreSQL in id order (so two
    batches do not deadlock on each other), with ``merged_into`` as it is once the lock is held;
    then which of them hold a NIK. Everything the decisions rest on is read under the lock, so a
    transaction that waited for it sees what the one before it committed. (A person merged away
    while this transaction waited leads to a second round of locks, for the survivor; a
    deadlock there is written again by the intake, like a unique conflict.)
    :meth:`resolve` then decides each message in memory, in arrival order, and queues the new
    persons, identities and conflicts as rows of the transaction; only a merge (rare) writes
    at once. A later message of the batch sees what an earlier one linked.
    """

    def __init__(self, keys: Keys, lock: bool) -> None:
        self._keys = keys
        self._lock = lock
        self._owner: dict[tuple[str, str], str] = {}  # identity -> person, as stored
        self._looked_up: set[tuple[str, str]] = set()
        self._merged: dict[str, str] = {}  # person -> the person it was merged into
        self._nik_people: set[str] = set()
        self._locked: set[str] = set()

    def current(self, person_id: str) -> str:
        """Follow ``merged_into`` to the person that survives."""
        for _ in range(16):
            nxt = self._merged.get(person_id)
            if nxt is None:
                break
            person_id = nxt
        return person_id

    async def load(self, conn: AsyncConnection, ids: Iterable[Identity]) -> None:
        """Read (and lock) what is stored about ``ids``; identities read before are skipped."""
        pairs = sorted({(i.kind, i.value_hash) for i in ids} - self._looked_up)
        if not pairs:
            return
        self._looked_up.update(pairs)
        found: set[str] = set()
        for chunk in _chunks(pairs, 200):
            kinds = sorted({kind for kind, _ in chunk})
            hashes = sorted({value for _, value in chunk})
            rows = await conn.execute(
                # Two IN lists: both databases probe the unique index on (kind, value_hash)
                # with them (SQLite scans the whole table for a row-value IN). The keyed hash
                # covers the kind, so the cross product adds no rows; pairs are checked below.
                select(identities.c.kind, identities.c.value_hash, identities.c.person_id).where(
                    identities.c.kind.in_(kinds), identities.c.value_hash.in_(hashes)
                )
            )
            for r in rows:
                if (r.kind, r.value_hash) in self._looked_up:
                    self._owner[(r.kind, r.value_hash)] = r.person_id
                    found.add(r.person_id)
        if found:
            await self._settle(conn, found)

    async def _settle(self, conn: AsyncConnection, found: set[str]) -> None:
        """Lock the surviving persons behind ``found``, then read which of them hold a NIK.

        What was read before a lock was granted may be stale: a transaction that held it may
        have merged the person away or given it a NIK meanwhile. So the persons are read under
        their lock: the locking statement returns the row as it is once the lock is held (a
        merged person leads to its survivor, locked in the next round, until every survivor is
        locked), and the NIKs are read after the last lock. Merges and NIKs only change under
        the person's lock, so what is read then holds until this transaction ends.
        """
        newly: set[str] = set()
        for _ in range(16):
            to_lock = sorted({self.current(p) for p in found} - self._locked)
            if not to_lock:
                break
            query = select(persons.c.id, persons.c.merged_into).where(persons.c.id.in_(to_lock))
            if self._lock:
                query = query.order_by(persons.c.id).with_for_update()
            for r in await conn.execute(query):
                if r.merged_into is not None:
                    self._merged[r.id] = r.merged_into
            self._locked.update(to_lock)
            newly.update(to_lock)
        survivors = sorted(p for p in newly if p not in self._merged)
        if survivors:
            rows = await conn.execute(
                select(identities.c.person_id)
                .where(identities.c.person_id.in_(survivors), identities.c.kind == "nik")
                .distinct()
            )
            self._nik_people.update(rows.scalars())

    async def resolve(
        self,
        conn: AsyncConnection,
        channel: Channel,
        ids: list[Identity],
        raw_id: str,
        now: datetime,
        rows: RowSink,
    ) -> Resolution:
        """Find or create the person behind ``ids`` and link what was seen together.

        New rows go to ``rows`` (inserted with the rest of the transaction); ``rows`` is
        flushed before a merge, whose updates must see them.
        """
        sender = sender_of(channel, ids)
        if not ids:
            return Resolution(None, None, None, 0)
        await self.load(conn, ids)  # a no-op when the batch was loaded up front
        owner = {
            (i.kind, i.value_hash): self.current(self._owner[(i.kind, i.value_hash)])
            for i in ids
            if (i.kind, i.value_hash) in self._owner
        }
        known = [i for i in ids if (i.kind, i.value_hash) in owner]
        nik_people = self._nik_people

        nik = next((i for i in ids if i.kind == "nik"), None)
        anchor: str | None = None
        matched_kind: str | None = None
        if nik is not None and (nik.kind, nik.value_hash) in owner:
            anchor, matched_kind = owner[(nik.kind, nik.value_hash)], "nik"
        elif nik is not None:
            # A new NIK: a person seen with it who has no NIK yet takes it on.
            without_nik = [i for i in known if owner[(i.kind, i.value_hash)] not in nik_people]
            if without_nik:
                first = _prefer(without_nik, sender)
                anchor, matched_kind = owner[(first.kind, first.value_hash)], first.kind
        elif known:
            with_nik = [i for i in known if owner[(i.kind, i.value_hash)] in nik_people]
            first = _prefer(with_nik or known, sender)
            anchor, matched_kind = owner[(first.kind, first.value_hash)], first.kind
        created = anchor is None
        if anchor is None:
            anchor = new_id()
            rows.add(persons, {"id": anchor, "created_at": now, "merged_into": None})

        anchor_has_nik = anchor in nik_people or nik is not None
        conflicts = 0
        for ident in ids:
            key = (ident.kind, ident.value_hash)
            current = self.current(self._owner[key]) if key in self._owner else None
            if current is None:
                rows.add(
                    identities,
                    {
                        "kind": ident.kind,
                        "value_hash": ident.value_hash,
                        "value_enc": self._keys.encrypt(ident.value),
                        "person_id": anchor,
                        "first_seen_at": now,
                    },
                )
                self._owner[key] = anchor
                if ident.kind == "nik":
                    nik_people.add(anchor)
            elif current == anchor:
                continue
            elif current in nik_people and anchor_has_nik:
                # Linked to another NIK's person: record the clash, move nothing.
                conflicts += 1
                rows.add(
                    identity_conflicts,
                    {
                        "kind": ident.kind,
                        "value_hash": ident.value_hash,
                        "person_id": current,
                        "claimed_by_person_id": anchor,
                        "raw_inbound_id": raw_id,
                        "created_at": now,
                    },
                )
            elif current not in nik_people:
                await rows.flush(conn)
                await _merge(conn, current, anchor)
                self._merged[current] = anchor
        sender_hash = sender.value_hash if sender else None
        return Resolution(anchor, matched_kind, sender_hash, conflicts, created)


class RowSink(Protocol):
    """Rows of the running transaction, inserted together (see the intake's row buffer)."""

    def add(self, table: Table, row: dict[str, Any]) -> None:
        """Queue ``row`` for ``table``."""

    async def flush(self, conn: AsyncConnection) -> None:
        """Insert everything queued so far."""


def _chunks(items: list[tuple[str, str]], size: int) -> Iterator[list[tuple[str, str]]]:
    for k in range(0, len(items), size):
        yield items[k : k + size]


def _prefer(candidates: list[Identity], sender: Identity | None) -> Identity:
    """The sender's own identity when it is among ``candidates``, else the first (NIK first)."""
    order = {"nik": 0, "phone": 1, "email": 2, "telegram": 3, "twitter": 4}
    if sender is not None and sender in candidates:
        return sender
    return min(candidates, key=lambda i: order.get(i.kind, 9))


async def _merge(conn: AsyncConnection, source: str, target: str) -> None:
    """Move a NIK-less person's identities and complaints to ``target`` (both already locked)."""
    await conn.execute(
        update(identities).where(identities.c.person_id == source).values(person_id=target)
    )
    await conn.execute(
        update(complaints).where(complaints.c.person_id == source).values(person_id=target)
    )
    await conn.execute(update(persons).where(persons.c.id == source).values(merged_into=target))
