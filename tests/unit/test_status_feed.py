"""The routing core's status messages: the parser and the published schema refuse the same bodies,
and the AsyncAPI document says what the code declares."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from channels.sms.replies import STATUS_NAMES
from gateway import periodic, status_feed
from gateway.metrics import Metrics
from gateway.queries import CLOSED_STATUSES
from gateway.settings import Settings, StatusFeedSettings
from gateway.status_feed import Refused, parse

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "contract" / "complaint-status.v1.schema.json").read_text())
VALIDATOR = jsonschema.Draft7Validator(SCHEMA, format_checker=jsonschema.FormatChecker())
ASYNCAPI = yaml.safe_load((ROOT / "contract" / "asyncapi.yaml").read_text())

GOOD: dict[str, Any] = {
    "schema_version": "1.0",
    "complaint_id": "0190a8b2-7c1e-7d3f-9a4b-5c6d7e8f9a0b",
    "tracking_id": "K7QM4XRT9",
    "status": "forwarded",
    "changed_at": "2026-12-05T09:30:00+07:00",
    "agency": "Dinas Pekerjaan Umum Kabupaten Cirebon",
}


def _without(key: str) -> dict[str, Any]:
    return {k: v for k, v in GOOD.items() if k != key}


VALID = [
    GOOD,
    _without("agency"),
    {**GOOD, "agency": None},
    {**GOOD, "status": "in_progress", "changed_at": "2026-12-05T02:30:00Z"},
    {**GOOD, "changed_at": "2026-12-05T02:30:00.123456-05:00"},
    {**GOOD, "changed_at": "2026-12-05T15:15:00+12:45"},  # Chatham Islands
    {**GOOD, "changed_at": "2026-12-05T02:30:00-00:00"},
    {**GOOD, "status": "ditindaklanjuti"},  # a word the gateway does not know: shown as it is
]
INVALID = [
    {**GOOD, "surprise": 1},
    _without("status"),
    _without("changed_at"),
    _without("tracking_id"),
    {**GOOD, "schema_version": "2.0"},
    {**GOOD, "complaint_id": "not-a-uuid"},
    {**GOOD, "complaint_id": 7},
    {**GOOD, "tracking_id": "K7QM-4XRT9"},  # as displayed, not as published
    {**GOOD, "tracking_id": "k7qm4xrt9"},
    {**GOOD, "tracking_id": "K7QM4XRT0"},  # 0 is not a tracking ID symbol
    {**GOOD, "status": "Forwarded"},
    {**GOOD, "status": "x"},
    {**GOOD, "status": "a" * 25},
    {**GOOD, "status": 3},
    {**GOOD, "changed_at": "2026-12-05T09:30:00"},  # no offset: whose 09:30?
    {**GOOD, "changed_at": "yesterday Z"},
    {**GOOD, "changed_at": "2026-12-05 09:30:00Z"},
    {**GOOD, "changed_at": "2026-12-05"},
    {**GOOD, "changed_at": 1733380200},
    # RFC 3339 offsets are hours 00-23 and minutes 00-59; Python reads "+07:99" as +08:39.
    {**GOOD, "changed_at": "2026-12-05T09:30:00+07:60"},
    {**GOOD, "changed_at": "2026-12-05T09:30:00+07:99"},
    {**GOOD, "changed_at": "2026-12-05T09:30:00+24:00"},
    {**GOOD, "agency": "x" * 256},
    {**GOOD, "agency": 5},
    {**GOOD, "agency": ""},
    {**GOOD, "agency": "Dinas\u0000PU"},  # PostgreSQL's text cannot hold a NUL
]


@pytest.mark.parametrize("body", VALID, ids=range(len(VALID)))
def test_a_valid_body_is_valid_for_both(body: dict[str, Any]) -> None:
    VALIDATOR.validate(body)
    change = parse(json.dumps(body).encode(), "m-1")
    assert change.status == body["status"]
    assert change.complaint_id == body["complaint_id"]
    assert change.agency == body.get("agency")
    assert change.changed_at.tzinfo is UTC


@pytest.mark.parametrize("body", INVALID, ids=range(len(INVALID)))
def test_an_invalid_body_is_refused_by_both(body: dict[str, Any]) -> None:
    assert not VALIDATOR.is_valid(body)
    with pytest.raises(Refused):
        parse(json.dumps(body).encode(), "m-1")


@pytest.mark.parametrize("raw", [b"", b"{", b"\xff\xfe", b"[]", b'"forwarded"', b"null"])
def test_what_is_not_a_json_object_is_refused(raw: bytes) -> None:
    with pytest.raises(Refused, match="JSON"):
        parse(raw, "m-1")


@pytest.mark.parametrize("raw", [b"[" * 100_000, b'{"agency": ' * 100_000])
def test_a_body_nested_past_the_parser_is_refused_at_once(raw: bytes) -> None:
    # A RecursionError is not a refusal: the consumer would take the message for a bug, drop
    # its connection and back off up to POISON_ATTEMPTS times (on every replica) before
    # setting it aside, holding up every status change behind it.
    with pytest.raises(Refused, match="JSON"):
        parse(raw, "m-1")


@pytest.mark.parametrize(
    "body",
    [
        # The spec's regexes (ECMA 262) end at $; Python's jsonschema searches with re, whose $
        # also matches before a final newline: the parser holds to the spec.
        {**GOOD, "status": "resolved\n"},
        {**GOOD, "status": "a" * 24 + "\n"},  # 25 characters: longer than the column
        {**GOOD, "tracking_id": "K7QM4XRT9\n"},
        {**GOOD, "changed_at": "2026-12-05T02:30:00Z\n"},
        # Valid text for the pattern, but no UTC time exists for them.
        {**GOOD, "changed_at": "0001-01-01T00:30:00+01:00"},
        {**GOOD, "changed_at": "9999-12-31T23:30:00-01:00"},
        {**GOOD, "changed_at": "2026-02-30T00:00:00Z"},
        {**GOOD, "agency": "Dinas \ud800 PU"},  # a lone surrogate is not UTF-8
    ],
    ids=range(8),
)
def test_what_no_database_could_keep_is_refused(body: dict[str, Any]) -> None:
    # Refused here, so dead-lettered: were it passed on, the database would refuse it on every
    # delivery and the feed would stop behind it.
    with pytest.raises(Refused):
        parse(json.dumps(body).encode(), "m-1")


def test_the_change_is_read_in_utc() -> None:
    change = parse(json.dumps(GOOD).encode(), "m-1")
    assert change.changed_at == datetime(2026, 12, 5, 2, 30, tzinfo=UTC)


def test_the_message_id_is_the_key_and_without_one_the_body_is() -> None:
    body = json.dumps(GOOD).encode()
    assert parse(body, "0190a8b2-0000-7000-8000-000000000001").key == (
        "0190a8b2-0000-7000-8000-000000000001"
    )
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    assert parse(body, None).key == parse(body, "").key == digest
    long_id = "x" * 200  # longer than the column: the same id still gives the same key
    assert parse(body, long_id).key == parse(b" " + body, long_id).key != digest
    assert len(parse(body, long_id).key) <= status_feed.MAX_MESSAGE_ID


def test_code_and_schema_have_the_same_fields() -> None:
    assert set(SCHEMA["properties"]) == status_feed.FIELDS
    assert set(SCHEMA["required"]) == status_feed.REQUIRED
    assert SCHEMA["properties"]["schema_version"]["const"] == status_feed.SCHEMA_VERSION
    assert SCHEMA["additionalProperties"] is False


def test_asyncapi_names_what_the_consumer_declares() -> None:
    defaults = Settings().status_feed
    channels = ASYNCAPI["channels"]
    exchange = channels["complaintStatus"]["bindings"]["amqp"]["exchange"]
    assert (exchange["name"], exchange["type"]) == (defaults.exchange, "topic")
    assert channels["complaintStatus"]["address"].replace("{status}", "#") == (
        status_feed.ROUTING_KEY_PATTERN
    )
    queue = channels["gatewayStatusQueue"]
    assert queue["address"] == defaults.queue
    for name in (
        status_feed.ROUTING_KEY_PATTERN,
        defaults.dead_letter_exchange,
        defaults.dead_letter_queue,
        "x-dead-letter-strategy: at-least-once",
        "x-overflow: reject-publish",
    ):
        assert name in queue["description"]
    operation = ASYNCAPI["operations"]["receiveComplaintStatus"]
    assert operation["action"] == "receive"
    assert operation["channel"]["$ref"] == "#/channels/gatewayStatusQueue"
    payload = ASYNCAPI["components"]["messages"]["complaintStatus"]["payload"]
    assert (ROOT / "contract" / payload["schema"]["$ref"]).resolve() == (
        ROOT / "contract" / "complaint-status.v1.schema.json"
    )


@pytest.mark.parametrize(
    "raw",
    [
        b"\xef\xbb\xbf" + json.dumps(GOOD).encode(),  # a UTF-8 byte order mark
        json.dumps(GOOD).encode("utf-16"),  # JSON may be UTF-16 or UTF-32, with its mark
        json.dumps(GOOD, ensure_ascii=False, indent=2).encode(),
    ],
    ids=["bom", "utf-16", "indented"],
)
def test_json_text_in_any_of_its_encodings_is_read(raw: bytes) -> None:
    assert parse(raw, "m-1").changed_at == datetime(2026, 12, 5, 2, 30, tzinfo=UTC)


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "ISO-8859-1"])
def test_a_body_that_cannot_be_read_names_its_content_encoding(encoding: str) -> None:
    # What the operator reads in the log beside the dead-lettered message: "body is not JSON:
    # 'utf-8' codec can't decode byte 0x8b" alone does not say the routing core compressed it.
    body = json.dumps({**GOOD, "agency": "Dinas Pekerjaan Umum Kab. Bone – Bidang Jalan"})
    raw = gzip.compress(body.encode()) if encoding != "ISO-8859-1" else b"\xe9" + body.encode()
    with pytest.raises(Refused, match=f"content_encoding '{encoding}'"):
        parse(raw, "m-1", encoding)
    with pytest.raises(Refused) as plain:
        parse(raw, "m-1", "UTF-8")
    assert "content_encoding" not in str(plain.value)


def test_the_schema_names_every_status_the_gateway_knows() -> None:
    # A routing core reading the schema learns which words the citizen sees named, and which
    # ones close an Open311 request: selesai is both.
    description = SCHEMA["properties"]["status"]["description"]
    known, closed = description.split("Known to the gateway")[1].split(";")[:2]
    for word in STATUS_NAMES:
        assert f" {word}," in known or f" {word};" in known + ";", word
    assert set(closed.split(" are closed")[0].replace(" and ", ", ").strip().split(", ")) == set(
        CLOSED_STATUSES
    )


def test_a_new_outage_backs_off_afresh_after_a_while_consuming(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The delay doubled across outages for the life of the process: after a few of them, a
    # database restarted for a second kept the feed away for backoff_max.
    settings = StatusFeedSettings(backoff_initial=1.0, backoff_max=8.0)
    consumer = status_feed.StatusConsumer(
        None,  # type: ignore[arg-type]  # never reached: _consume is played below
        Settings().broker,
        settings,
        Metrics(),
    )
    sessions = iter([0.0, 0.0, 0.0, 100.0, 0.0, 0.0])  # seconds each one consumed
    waits: list[float] = []
    stop = asyncio.Event()

    async def consume(_: asyncio.Event) -> None:
        lasted = next(sessions)
        if lasted:
            consumer._consuming_since = asyncio.get_running_loop().time() - lasted
        raise status_feed._Failure("broker", "the broker closed the connection")

    async def stopped(_: asyncio.Event, seconds: float) -> bool:
        waits.append(seconds)
        if len(waits) == 6:
            stop.set()
        return stop.is_set()

    monkeypatch.setattr(consumer, "_consume", consume)
    monkeypatch.setattr(periodic, "stopped", stopped)
    asyncio.run(consumer.run(stop))
    assert waits == [1.0, 2.0, 4.0, 1.0, 2.0, 4.0]


class _Message:
    """What the consumer reads of an AMQP delivery, and how it settles it."""

    def __init__(self, body: bytes, message_id: str | None) -> None:
        self.body, self.message_id = body, message_id
        self.routing_key, self.content_encoding = "status.forwarded", None
        self.settled: list[str] = []

    async def reject(self, requeue: bool = False) -> None:
        self.settled.append(f"reject requeue={requeue}")


def test_a_refusal_is_logged_with_what_finds_the_message(caplog: pytest.LogCaptureFixture) -> None:
    # A message without message_id was logged as "message_id: None": nothing to find it by in
    # the dead-letter queue, nor in the log once the operator had found it there.
    consumer = status_feed.StatusConsumer(
        None,  # type: ignore[arg-type]  # a body refused as read never reaches the database
        Settings().broker,
        StatusFeedSettings(),
        Metrics(),
    )
    body = json.dumps({**GOOD, "status": "Forwarded"}).encode()
    message = _Message(body, None)
    assert asyncio.run(consumer.handle(message)) == "refused"  # type: ignore[arg-type]
    assert message.settled == ["reject requeue=False"]
    [record] = [r for r in caplog.records if r.getMessage().startswith("status message refused")]
    assert getattr(record, "message_id", None) == "sha256:" + hashlib.sha256(body).hexdigest()
    assert getattr(record, "routing_key", None) == "status.forwarded"


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        ("IN_PROGRESS", "status 'IN_PROGRESS' is not"),  # an enum's name, as a Java core sends it
        ("Selesai", "status 'Selesai' is not"),
        ("a" * 25, "status 'aaaa"),
        ("x" * 41, "status is not"),  # too long to be a word: not repeated
        ("3201014101900001", "status is not"),  # personal data is not repeated in the log
        ("+6281234567890", "status is not"),
        ("Siti Aminah", "status is not"),
        ("dinas\npu", "status is not"),
        (7, "status is not"),
    ],
)
def test_a_status_refused_is_named_when_it_is_a_word(status: Any, reason: str) -> None:
    # The operator sends the routing core the reason: "status is not a word of a-z" alone left
    # them to open the dead-letter queue to see which word it was.
    with pytest.raises(Refused, match=reason):
        parse(json.dumps({**GOOD, "status": status}).encode(), "m-1")


def test_the_contract_gives_the_clock_drift_the_code_allows() -> None:
    minutes = int(status_feed.MAX_AHEAD.total_seconds() // 60)
    assert f"Not more than {minutes} minutes ahead" in SCHEMA["properties"]["changed_at"][
        "description"
    ]
    assert f"more than {minutes} minutes ahead" in " ".join(
        ASYNCAPI["info"]["description"].split()
    )
