"""The gateway's tables, as SQLAlchemy Core metadata.

The Alembic migrations in ``gateway/migrations`` create exactly these tables on SQLite and on
PostgreSQL; a test compares the two and fails when they drift.

- ``raw_inbound``: every message as received. Its payload columns (body, metadata, hash) are never
  updated; only its outcome (status, complaint id) changes when a quarantined message is replayed.
  ``UNIQUE(channel, provider_message_id)`` is transport-redelivery dedup.
- ``complaints``: canonical complaints, one per tracking ID.
- ``outbox``: events waiting for (or done with) publication to RabbitMQ. ``id`` gives the order;
  ``message_id`` is stable across re-publication.
- ``outbox_set_aside``: events no relay can open, taken out of the outbox by an operator (and
  put back by ``outbox restore``).
- ``quarantine``: what could not be parsed, with the stage and the reason.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    text,
)

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit identity.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps always in UTC and always timezone-aware in Python.

    SQLite has no timezone type: values are stored as naive UTC text, which also keeps string
    comparison in ``WHERE claim_expires < :now`` correct.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass an aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


raw_inbound = Table(
    "raw_inbound",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("channel", String(16), nullable=False),
    Column("provider_message_id", String(255), nullable=False),
    Column("parser", String(64), nullable=False),
    Column("received_at", UTCDateTime(), nullable=False),
    Column("stored_at", UTCDateTime(), nullable=False),
    Column("content_type", String(255), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    # The body itself when small; NULL when it lives in the file store under ``sha256``.
    Column("body", LargeBinary, nullable=True),
    Column("transport_meta", JSON, nullable=False),
    # Migration 0006: body and transport_meta sealed under the data key (gateway.sealing).
    Column("sealed", Boolean, nullable=False, server_default=false()),
    # Outcome: accepted | duplicate | quarantined | recorded.
    Column("status", String(16), nullable=False),
    Column("tracking_id", String(12), nullable=True, index=True),
    Column("complaint_id", String(36), nullable=True),
    UniqueConstraint("channel", "provider_message_id"),
    # Migration 0013: what a message told an ID of its own (gateway.intake) shows under it, as a
    # new complaint would: its kind, agency, and title and place unless it asked for
    # confidentiality (they are in the clear, as a complaint's that is not); NULL for others.
    Column("shown", JSON(none_as_null=True), nullable=True),
    # Migration 0013: the messages that joined a complaint (their IDs, for status SMS).
    Index("ix_raw_inbound_complaint_id", "complaint_id"),
    # Migration 0013: the messages told an ID of their own, by arrival (Open311's listing).
    Index(
        "ix_raw_inbound_own_ids",
        "received_at",
        postgresql_where=text("shown IS NOT NULL"),
        sqlite_where=text("shown IS NOT NULL"),
    ),
)

complaints = Table(
    "complaints",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tracking_id", String(12), nullable=False, unique=True),
    Column("channel", String(16), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("status", String(24), nullable=False),
    Column("title", Text, nullable=True),
    Column("body", Text, nullable=False),
    Column("received_at", UTCDateTime(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("anonymous", Boolean, nullable=False),
    Column("confidential", Boolean, nullable=False),
    Column("reporter", JSON, nullable=False),
    Column("location", JSON, nullable=True),
    Column("attachments", JSON, nullable=False),
    Column("occurred_on", Date, nullable=True),
    Column("agency", String(255), nullable=True),
    Column("raw_inbound_id", String(36), ForeignKey("raw_inbound.id"), nullable=False),
    # Identity and dedup (migration 0002): the person who sent it, the keyed hash of the
    # transport's sender identity (dedup tier 2) and the comparison tokens (tier 3).
    Column("person_id", String(36), nullable=True),
    Column("sender_hash", String(64), nullable=True),
    Column("match_tokens", Text, nullable=False, server_default=text("''")),
    # Migration 0013: the lookup hashes of every identity the complaint's message carried,
    # space-separated: a later message from one of them is told this complaint's ID
    # (gateway.intake); NULL for complaints stored before.
    Column("identity_hashes", Text, nullable=True),
    # Migration 0011: when the routing core last changed ``status`` (its ``changed_at``); NULL
    # while the complaint is as the gateway received it. Set by gateway.status_feed.
    Column("status_changed_at", UTCDateTime(), nullable=True),
    # Migration 0006: body, match_tokens and a confidential complaint's title sealed under the
    # data key (gateway.sealing).
    Column("sealed", Boolean, nullable=False, server_default=false()),
    # Candidate lookup for dedup: one person's complaints inside a time window.
    Index("ix_complaints_person_id_received_at", "person_id", "received_at"),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("message_id", String(36), nullable=False, unique=True),
    Column("event", String(16), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("routing_key", String(255), nullable=False),
    Column("complaint_id", String(36), nullable=True),
    # The exact JSON published, fixed at intake so every re-publication sends the same bytes.
    Column("body", Text, nullable=False),
    # Migration 0006: body sealed under the data key, as base64 (gateway.sealing).
    Column("sealed", Boolean, nullable=False, server_default=false()),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("claimed_by", String(64), nullable=True),
    Column("claim_expires", UTCDateTime(), nullable=True),
    Column("published_at", UTCDateTime(), nullable=True),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("last_error", Text, nullable=True),
    # Migration 0007: when ``outbox republish`` queued a published event again (the lag counts
    # from here for it); NULL otherwise.
    Column("queued_at", UTCDateTime(), nullable=True),
    # Partial index: the relay and the lag metric only ever look at unpublished rows.
    Index(
        "ix_outbox_pending",
        "id",
        postgresql_where=text("published_at IS NULL"),
        sqlite_where=text("published_at IS NULL"),
    ),
)

# Migration 0010: events taken out of the outbox by ``lapor-gateway outbox set-aside`` because
# no relay can open them (damaged, or sealed under a data key no replica has any more), so that
# the relays stop trying them; ``outbox restore`` puts one back, with its message_id and body.
# The outbox's columns (``id`` is the one it had there), with when and why.
outbox_set_aside = Table(
    "outbox_set_aside",
    metadata,
    Column("message_id", String(36), primary_key=True),
    Column("id", BigInteger, nullable=False),
    Column("event", String(16), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("routing_key", String(255), nullable=False),
    Column("complaint_id", String(36), nullable=True),
    Column("body", Text, nullable=False),
    Column("sealed", Boolean, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("claimed_by", String(64), nullable=True),
    Column("claim_expires", UTCDateTime(), nullable=True),
    Column("published_at", UTCDateTime(), nullable=True),
    Column("attempts", Integer, nullable=False),
    Column("last_error", Text, nullable=True),
    Column("queued_at", UTCDateTime(), nullable=True),
    Column("set_aside_at", UTCDateTime(), nullable=False),
    Column("reason", Text, nullable=True),
)

# Migration 0011: every status change the routing core sent (gateway.status_feed), applied or
# not: ``message_id`` is its AMQP message_id (a redelivery finds it and changes nothing);
# ``applied`` is false for one older than the complaint's current status (several consumers
# take messages in no set order; the newest ``changed_at`` wins).
complaint_status_events = Table(
    "complaint_status_events",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("message_id", String(80), nullable=False, unique=True),
    Column("complaint_id", String(36), nullable=False),
    Column("status", String(24), nullable=False),
    Column("agency", String(255), nullable=True),
    Column("changed_at", UTCDateTime(), nullable=False),
    Column("received_at", UTCDateTime(), nullable=False),
    Column("applied", Boolean, nullable=False),
    Index("ix_complaint_status_events_complaint_id", "complaint_id", "changed_at"),
)

quarantine = Table(
    "quarantine",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("raw_inbound_id", String(36), ForeignKey("raw_inbound.id"), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("stage", String(32), nullable=False),
    Column("reason", Text, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("replay_count", Integer, nullable=False, server_default=text("0")),
    Column("last_replay_at", UTCDateTime(), nullable=True),
    Column("last_replay_error", Text, nullable=True),
    Column("resolved_at", UTCDateTime(), nullable=True),
    Index(
        "ix_quarantine_open",
        "id",
        postgresql_where=text("resolved_at IS NULL"),
        sqlite_where=text("resolved_at IS NULL"),
    ),
)

# ---- identity graph and dedup (migration 0002) ----------------------------------------------

persons = Table(
    "persons",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("created_at", UTCDateTime(), nullable=False),
    # Set when this person turned out to be another (identities seen together); lookups follow it.
    Column("merged_into", String(36), nullable=True),
)

identities = Table(
    "identities",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),  # nik | phone | email | twitter | telegram
    # HMAC-SHA256 of the normalised value under the identity key: equality lookups only.
    Column("value_hash", String(64), nullable=False),
    # The value itself, AES-256-GCM under the data key (protected personal data, UU 27/2022).
    Column("value_enc", Text, nullable=False),
    Column("person_id", String(36), ForeignKey("persons.id"), nullable=False, index=True),
    Column("first_seen_at", UTCDateTime(), nullable=False),
    UniqueConstraint("kind", "value_hash"),
    # Migration 0008: a person holds at most one NIK (two NIKs are never one person).
    Index(
        "uq_identities_one_nik_per_person",
        "person_id",
        unique=True,
        postgresql_where=text("kind = 'nik'"),
        sqlite_where=text("kind = 'nik'"),
    ),
)

identity_conflicts = Table(
    "identity_conflicts",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),
    Column("value_hash", String(64), nullable=False),
    Column("person_id", String(36), nullable=False),  # the person the identity belongs to
    Column("claimed_by_person_id", String(36), nullable=False),  # the other NIK's person
    Column("raw_inbound_id", String(36), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

dedup_decisions = Table(
    "dedup_decisions",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("raw_inbound_id", String(36), nullable=False, unique=True),
    # new | retry (tier 2) | similar (tier 3)
    Column("tier", String(16), nullable=False),
    Column("complaint_id", String(36), nullable=True),
    # The complaint joined or retried; for ``new``, a closed one of the same matter it repeats.
    Column("matched_tracking_id", String(12), nullable=True),
    Column("person_id", String(36), nullable=True),
    Column("identity_kind", String(16), nullable=True),
    Column("score", Float, nullable=True),
    Column("candidates", Integer, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    # Migration 0014, for a message that joined a complaint (tier ``similar``): its sender's
    # lookup hash and a keyed hash of its comparison tokens (gateway.dedup.tokens_hash), so that
    # a provider's retry of it is recognised (tier 2); NULL on every other row. The partial
    # index finds a batch's senders' recent ones.
    Column("sender_hash", String(64), nullable=True),
    Column("tokens_hash", String(64), nullable=True),
    # Migration 0015, on the same rows: the lookup hashes of the identities the message carried
    # (space-separated), so that a phone or address it gave is told the ID it was told.
    Column("identity_hashes", Text, nullable=True),
    Index(
        "ix_dedup_decisions_sender_hash",
        "sender_hash",
        "created_at",
        postgresql_where=text("sender_hash IS NOT NULL"),
        sqlite_where=text("sender_hash IS NOT NULL"),
    ),
)

# ---- web channel: per-IP rate limits (migration 0003) ---------------------------------------

# One row per (scope, client) with a fixed counting window, shared by every replica. A request
# increments its row in one upsert; a new window resets the count (see gateway/ratelimit.py).
web_rate_limits = Table(
    "web_rate_limits",
    metadata,
    Column("bucket", String(160), primary_key=True),  # "<scope>:<client ip>"
    Column("window_start", BigInteger, nullable=False),  # epoch seconds of the window's start
    Column("hits", Integer, nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Index("ix_web_rate_limits_updated_at", "updated_at"),
)

# ---- SMS channel: reply outbox and held fragments (migration 0004) ---------------------------

# One reply per inbound SMS (UNIQUE raw_inbound_id: written after the intake commit, idempotent,
# so a redelivered message or a restart never queues a second reply). The sender in
# channels/sms/senders.py claims pending rows (SKIP LOCKED on PostgreSQL) and sends each once
# through the bridge it came in on; delivery reports land in the dlr_* columns.
sms_replies = Table(
    "sms_replies",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("raw_inbound_id", String(36), nullable=False, unique=True),
    Column("bridge", String(16), nullable=False),  # kannel | jasmin | modem
    Column("recipient", Text, nullable=False),  # MSISDN, encrypted under the data key
    Column("sender_hash", String(64), nullable=True),  # keyed hash: flood control per sender
    Column("service_number", String(32), nullable=True),  # the number the citizen wrote to
    Column("smsc", String(64), nullable=True),  # Kannel smsc-id to answer through
    Column("tracking_id", String(12), nullable=True),
    Column("kind", String(24), nullable=False),  # receipt | help | status | rejected | ...
    Column("body", Text, nullable=False),
    # pending | sent | failed | suppressed | inline (answered in the HTTP body)
    Column("status", String(16), nullable=False),
    Column("reason", Text, nullable=True),  # why suppressed / failed
    Column("created_at", UTCDateTime(), nullable=False),
    Column("next_attempt_at", UTCDateTime(), nullable=False),
    Column("claimed_by", String(64), nullable=True),
    Column("claim_expires", UTCDateTime(), nullable=True),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("last_error", Text, nullable=True),
    Column("sent_at", UTCDateTime(), nullable=True),
    Column("provider_ref", String(255), nullable=True),  # Jasmin message id; DLR correlation
    Column("dlr_status", String(32), nullable=True),  # delivered | undelivered | buffered | ...
    Column("dlr_at", UTCDateTime(), nullable=True),
    Column("dlr_detail", Text, nullable=True),
    Index(
        "ix_sms_replies_pending",
        "next_attempt_at",
        postgresql_where=text("status = 'pending'"),
        sqlite_where=text("status = 'pending'"),
    ),
    Index("ix_sms_replies_sender_hash_created_at", "sender_hash", "created_at"),
    Index("ix_sms_replies_provider_ref", "provider_ref"),
    # Migration 0011: a complaint's receipts, for telling the numbers a status change.
    Index("ix_sms_replies_tracking_id_kind", "tracking_id", "kind"),
)

# Parts of a concatenated SMS that reached us on their own (Kannel gave up reassembling, or a
# bridge that never reassembles). Held until the set is complete (joined into one message) or
# until the timeout (joined with what arrived, marked incomplete).
sms_fragments = Table(
    "sms_fragments",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("raw_inbound_id", String(36), nullable=False, unique=True),
    Column("bridge", String(16), nullable=False),
    Column("group_key", String(160), nullable=False),  # bridge:sender hash:reference:total
    Column("reference", Integer, nullable=False),
    Column("total", Integer, nullable=False),
    Column("sequence", Integer, nullable=False),
    Column("text", Text, nullable=False),
    Column("meta", JSON, nullable=False),  # what the joined message needs from its parts
    # Migration 0006: text and meta sealed under the data key (gateway.sealing).
    Column("sealed", Boolean, nullable=False, server_default=false()),
    Column("received_at", UTCDateTime(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("closed_at", UTCDateTime(), nullable=True),
    Column("joined_raw_inbound_id", String(36), nullable=True),
    Index(
        "ix_sms_fragments_open",
        "group_key",
        postgresql_where=text("closed_at IS NULL"),
        sqlite_where=text("closed_at IS NULL"),
    ),
    Index(
        "ix_sms_fragments_open_created_at",
        "created_at",
        postgresql_where=text("closed_at IS NULL"),
        sqlite_where=text("closed_at IS NULL"),
    ),
)

# ---- letter channel: front-desk staff and letter drafts (migration 0005) --------------------

# Front-desk accounts. Passwords are argon2id hashes (argon2-cffi); ``failed_logins`` counts
# wrong passwords since the last success and ``locked_until`` holds the lockout they caused.
staff_accounts = Table(
    "staff_accounts",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("role", String(16), nullable=False),  # clerk | supervisor
    Column("password_hash", Text, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("disabled_at", UTCDateTime(), nullable=True),
    Column("failed_logins", Integer, nullable=False, server_default=text("0")),
    Column("locked_until", UTCDateTime(), nullable=True),
    Column("last_login_at", UTCDateTime(), nullable=True),
)

# Server-side sessions: the browser holds a random token, the table only its SHA-256. A row
# without ``staff_id`` is the pre-login session that carries the login form's CSRF token.
staff_sessions = Table(
    "staff_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("staff_id", String(36), ForeignKey("staff_accounts.id"), nullable=True, index=True),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("last_seen_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False, index=True),
)

# One scanned letter between upload and confirmation. ``files`` are the scans as received (file
# store references); ``pages`` the OCR result per page (image, text, confidence); ``fields`` the
# extracted fields, ``reviewed`` the values the clerk saved. ``claimed_by``/``claim_expires``
# are the lease of the replica reading it, so a letter whose reader died is read again.
letter_drafts = Table(
    "letter_drafts",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("batch_id", String(36), nullable=False, index=True),
    Column("status", String(16), nullable=False),  # reading | ready | failed | confirmed
    Column("files", JSON, nullable=False),
    Column("pages_total", Integer, nullable=True),
    Column("pages_done", Integer, nullable=False, server_default=text("0")),
    Column("pages", JSON, nullable=False),
    Column("fields", JSON, nullable=True),
    Column("reviewed", JSON, nullable=True),
    Column("error", Text, nullable=True),
    Column("claimed_by", String(64), nullable=True),
    Column("claim_expires", UTCDateTime(), nullable=True),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("created_by", String(36), ForeignKey("staff_accounts.id"), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_by", String(36), nullable=True),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("confirmed_by", String(36), nullable=True),
    Column("confirmed_at", UTCDateTime(), nullable=True),
    Column("tracking_id", String(12), nullable=True),
    Column("receipt_status", String(16), nullable=True),  # accepted | duplicate | quarantined
    Column("acks", JSON, nullable=True),  # where else the receipt went (masked), e.g. SMS
    # Raised by every write of the status or the values: a save writes only over the row it read.
    Column("version", Integer, nullable=False, server_default=text("0")),
    # Values saved after a confirmation began and not sent with it (sealed), by whom and when.
    Column("unsent", JSON, nullable=True),
    Column("unsent_by", String(36), nullable=True),
    Column("unsent_at", UTCDateTime(), nullable=True),
    Index("ix_letter_drafts_status_created_at", "status", "created_at"),
    # The desk's list (DraftStore.desk): a clerk's letters not confirmed, and the ones sent
    # last, as index ranges; everybody's sent last (migration 0016).
    Index(
        "ix_letter_drafts_created_by_status_confirmed_at", "created_by", "status", "confirmed_at"
    ),
    Index("ix_letter_drafts_status_confirmed_at", "status", "confirmed_at"),
)
