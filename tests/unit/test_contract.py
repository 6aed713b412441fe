"""The published contract files and the code that builds messages cannot drift apart."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import jsonschema
import pytest
import yaml

from gateway import contract, tracking
from gateway.domain import (
    Attachment,
    Channel,
    Complaint,
    ComplaintDraft,
    Event,
    Kind,
    Location,
    Privacy,
    Reporter,
)
from gateway.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "contract" / "complaint-event.v1.schema.json").read_text())
ASYNCAPI = yaml.safe_load((ROOT / "contract" / "asyncapi.yaml").read_text())
VALIDATOR = jsonschema.Draft7Validator(SCHEMA, format_checker=jsonschema.FormatChecker())

FULL = Complaint(
    id="5f0c8f8e-6a43-4c4e-9a59-2d0f3d1f7b11",
    tracking_id=tracking.new_tracking_id(),
    channel=Channel.LETTER,
    received_at=datetime(2026, 11, 23, 3, 4, 5, tzinfo=UTC),
    draft=ComplaintDraft(
        body="Dengan hormat, kami melaporkan jembatan putus.",
        kind=Kind.ASPIRASI,
        title="Jembatan putus",
        reporter=Reporter(
            nik="3209014101900001",
            name="Budi",
            phone="+6281234567890",
            email="budi@example.id",
            handles={"twitter": "12345", "telegram": "67890"},
        ),
        privacy=Privacy(anonymous=True, confidential=True),
        location=Location("Desa Sumber", -6.7, 108.4, "32.09.01"),
        attachments=(Attachment("a" * 64, "application/pdf", 1234, "surat.pdf"),),
        occurred_on=date(2026, 11, 1),
        agency="Dinas PUPR",
    ),
    source={"provider_message_id": "scan-1", "raw_inbound_id": "r-1"},
)
MINIMAL = Complaint(
    id="5f0c8f8e-6a43-4c4e-9a59-2d0f3d1f7b12",
    tracking_id=tracking.new_tracking_id(),
    channel=Channel.SMS,
    received_at=datetime(2026, 11, 23, tzinfo=UTC),
    draft=ComplaintDraft(body="lampu mati"),
    source={"provider_message_id": "x", "raw_inbound_id": "y"},
)


@pytest.mark.parametrize("complaint", [FULL, MINIMAL])
@pytest.mark.parametrize("event", list(Event))
def test_bodies_the_code_builds_are_valid(complaint: Complaint, event: Event) -> None:
    dup = tracking.new_tracking_id() if event is Event.DUPLICATE else None
    body = json.loads(contract.encode(contract.event_body(complaint, event, dup)))
    VALIDATOR.validate(body)
    assert body["received_at"].endswith("Z")


def test_schema_and_code_have_the_same_fields() -> None:
    body = contract.event_body(FULL)
    assert set(body) == set(SCHEMA["properties"]) == set(SCHEMA["required"])
    reporter = SCHEMA["properties"]["reporter"]
    assert set(body["reporter"]) == set(reporter["properties"]) == set(reporter["required"])
    loc = SCHEMA["properties"]["location"]["oneOf"][1]
    assert set(body["location"]) == set(loc["properties"])
    att = SCHEMA["properties"]["attachments"]["items"]
    assert set(body["attachments"][0]) == set(att["properties"])


def test_source_carries_the_listed_keys_only_each_described_in_the_schema() -> None:
    source = SCHEMA["properties"]["source"]
    assert source["properties"] == {
        key: {"type": "string", "description": text} for key, text in contract.SOURCE_KEYS.items()
    }
    assert set(source["required"]) <= set(contract.SOURCE_KEYS)
    private = {
        "remote": "203.0.113.9",
        "peer": "10.0.0.2",
        "user_agent": "UA/1.0",
        "sender": "081234567890",
        "attachment_refs": "[]",
    }
    listed = {"provider_message_id": "p", "raw_inbound_id": "r", "smsc": "tsel", "receiver": "1708"}
    body = contract.event_body(replace(MINIMAL, source=listed | private))
    assert body["source"] == listed
    VALIDATOR.validate(body)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("nik", "abc"),
        ("nik", "320901410190000"),
        ("phone", "0812-3456-7890"),
        ("phone", "hubungi saya"),
    ],
)
def test_schema_refuses_an_identity_not_in_its_canonical_form(field: str, value: str) -> None:
    body = contract.event_body(FULL)
    body["reporter"][field] = value
    with pytest.raises(jsonschema.ValidationError):
        VALIDATOR.validate(body)


def test_schema_enums_match_the_domain() -> None:
    props = SCHEMA["properties"]
    assert props["channel"]["enum"] == [c.value for c in Channel]
    assert props["kind"]["enum"] == [k.value for k in Kind]
    assert props["event"]["enum"] == [e.value for e in Event]
    assert props["schema_version"]["const"] == contract.SCHEMA_VERSION
    alphabet = re.fullmatch(r"\^\[(.+)\]\{(\d+)\}\$", props["tracking_id"]["pattern"])
    assert alphabet is not None
    expanded = "23456789" + alphabet.group(1).removeprefix("2-9")
    assert expanded == tracking.ALPHABET and int(alphabet.group(2)) == tracking.LENGTH


def test_schema_rejects_drift() -> None:
    body = contract.event_body(MINIMAL)
    body["surprise"] = 1
    with pytest.raises(jsonschema.ValidationError):
        VALIDATOR.validate(body)
    body = contract.event_body(MINIMAL)
    body["channel"] = "fax"
    with pytest.raises(jsonschema.ValidationError):
        VALIDATOR.validate(body)


def test_asyncapi_matches_code_and_settings() -> None:
    defaults = Settings().broker
    assert ASYNCAPI["asyncapi"].startswith("3.")
    events = ASYNCAPI["channels"]["complaintEvents"]
    assert events["bindings"]["amqp"]["exchange"]["name"] == defaults.exchange
    assert events["bindings"]["amqp"]["exchange"]["type"] == "topic"
    params = events["parameters"]
    assert params["event"]["enum"] == [e.value for e in Event]
    assert params["channel"]["enum"] == [c.value for c in Channel]
    address = events["address"]
    for e in Event:
        for c in Channel:
            key = address.replace("{event}", e.value).replace("{channel}", c.value)
            assert key == contract.routing_key(e, c)
    queue = ASYNCAPI["channels"]["routingCoreQueue"]
    assert queue["address"] == defaults.queue
    assert contract.ROUTING_KEY_PATTERN in queue["description"]
    assert defaults.dead_letter_exchange in queue["description"]
    message = ASYNCAPI["components"]["messages"]["complaintEvent"]
    assert message["contentType"] == contract.CONTENT_TYPE
    assert message["headers"]["properties"]["schema_version"]["const"] == contract.SCHEMA_VERSION
    ref = message["payload"]["schema"]["$ref"]
    assert (
        ROOT / "contract" / ref
    ).resolve() == ROOT / "contract" / "complaint-event.v1.schema.json"
    assert "draft-07" in message["payload"]["schemaFormat"] and "draft-07" in SCHEMA["$schema"]


EXAMPLE_PHOTO = "d52b26674ffc2b4481adc1b68ec3d3a6d14c495f1a906d5aef9259725bd9fa6a"
EXAMPLE_CREATED = Complaint(
    id="01a24618-7711-74d4-b3e6-ed9f78c5b324",
    tracking_id="VRV584M6F",
    channel=Channel.SMS,
    received_at=datetime(2026, 11, 23, 3, 4, 5, 120000, tzinfo=UTC),
    draft=ComplaintDraft(
        body="jln siliwangi dpn pasar sumber berlubang bsr, motor srg jatuh",
        reporter=Reporter(nik="3209014101900001", phone="+6281234567890"),
        privacy=Privacy(anonymous=True),
        location=Location(region_code="32"),
    ),
    source={
        "provider_message_id": "kannel-8841",
        "raw_inbound_id": "01a24618-7711-71c9-9649-4f65d0c8b61f",
        "receiver": "1708",
        "smsc": "tsel",
        "sender": "081234567890",  # stays in the gateway
    },
)
# The same citizen on the web form two days later: the new message, under the first
# complaint's ids, with the first message's privacy added (as the intake builds it).
EXAMPLE_DUPLICATE = Complaint(
    id=EXAMPLE_CREATED.id,
    tracking_id=EXAMPLE_CREATED.tracking_id,
    channel=Channel.WEB,
    received_at=datetime(2026, 11, 25, 9, 30, 0, 450000, tzinfo=UTC),
    draft=ComplaintDraft(
        body="Lubang di Jalan Siliwangi depan Pasar Sumber makin besar, foto terlampir.",
        title="Jalan Siliwangi berlubang",
        reporter=Reporter(
            nik="3209014101900001",
            name="Siti Aminah",
            phone="+6281234567890",
            email="siti@example.id",
        ),
        privacy=Privacy(anonymous=True),
        location=Location(text="Depan Pasar Sumber, Kab. Cirebon"),
        attachments=(Attachment(EXAMPLE_PHOTO, "image/jpeg", 184233, "IMG_20261125_0921.jpg"),),
        occurred_on=date(2026, 11, 20),
    ),
    source={
        "provider_message_id": "form:01a2461b-04c2-7f30-8d0e-5b7a9c6e2f11",
        "raw_inbound_id": "01a2461b-04c2-7a55-b1f4-2e8d6c0a9b37",
        "exif_gps": f"{EXAMPLE_PHOTO}=-6.7612,108.4801",
        "remote": "203.0.113.9",  # stays in the gateway
    },
)
# A week later, by SMS from the first message's phone, naming the complaint's ID with news.
EXAMPLE_FOLLOWUP = Complaint(
    id=EXAMPLE_CREATED.id,
    tracking_id=EXAMPLE_CREATED.tracking_id,
    channel=Channel.SMS,
    received_at=datetime(2026, 11, 30, 6, 12, 40, 80000, tzinfo=UTC),
    draft=ComplaintDraft(
        body="Laporan VRV5-84M6F lubangnya makin besar, kemarin 2 motor jatuh",
        reporter=Reporter(phone="+6281234567890"),
        privacy=Privacy(anonymous=True),
        about=EXAMPLE_CREATED.tracking_id,  # stays in the gateway
    ),
    source={
        "provider_message_id": "kannel-9310",
        "raw_inbound_id": "01a2461e-3b52-7c04-9e1a-6f2d8b4c7a90",
        "receiver": "1708",
        "smsc": "tsel",
    },
)


def test_the_asyncapi_examples_are_what_the_code_sends() -> None:
    message = ASYNCAPI["components"]["messages"]["complaintEvent"]
    examples = {example["name"]: example for example in message["examples"]}
    sent = {
        "created": contract.event_body(EXAMPLE_CREATED),
        "duplicate": contract.event_body(
            EXAMPLE_DUPLICATE, Event.DUPLICATE, EXAMPLE_CREATED.tracking_id
        ),
        "followup": contract.event_body(EXAMPLE_FOLLOWUP, Event.FOLLOWUP),
    }
    assert set(examples) == set(sent)
    for name, example in examples.items():
        assert example["headers"] == {"schema_version": contract.SCHEMA_VERSION}
        jsonschema.validate(example["headers"], message["headers"])
        assert example["payload"] == json.loads(contract.encode(sent[name])), name
        VALIDATOR.validate(example["payload"])
        assert tracking.is_valid(example["payload"]["tracking_id"])
