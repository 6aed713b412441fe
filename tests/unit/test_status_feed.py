"""The routing core's status messages: the parser and the published schema refuse the same bodies,
and the AsyncAPI document says what the code declares."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from gateway import status_feed
from gateway.settings import Settings
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
