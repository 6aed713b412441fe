"""The JSON API checks the reporter's identity as the form and Open311 do: a wrong NIK, phone
number or e-mail address is a 400 naming its field; a right one reaches the routing core in its
canonical form (16 digits, E.164, lower case), valid against the contract's schema."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gateway import bootstrap
from tests.channels.web.conftest import NIK
from tests.support import opened_complaints, opened_events, opened_raw, validate_event

pytestmark = pytest.mark.integration

Client = Callable[..., Awaitable[TestClient[Any, Any]]]


@pytest.mark.parametrize(
    ("reporter", "field", "reason"),
    [
        ({"nik": "3209014101900000"}, "reporter.nik", "0000"),  # serial 0000 is never issued
        ({"nik": "abc"}, "reporter.nik", "digits only"),
        ({"nik": "9909014101900001"}, "reporter.nik", "99"),  # no province 99
        ({"phone": "hubungi saya"}, "reporter.phone", "phone number"),
        ({"phone": "12"}, "reporter.phone", "phone number"),
        ({"email": "siti@"}, "reporter.email", "e-mail"),
        ({"email": "siti aminah@contoh.id"}, "reporter.email", "e-mail"),
    ],
)
async def test_a_wrong_identity_is_refused_naming_its_field(
    gw: bootstrap.Gateway,
    aiohttp_client: Client,
    reporter: dict[str, str],
    field: str,
    reason: str,
) -> None:
    client = await aiohttp_client(bootstrap.build_app(gw))
    body = {"body": "Lampu jalan mati sejak seminggu", "reporter": reporter}
    en = await client.post("/api/v1/complaints", json=body, headers={"Accept-Language": "en"})
    problem = await en.json()
    assert en.status == 400 and en.content_type == "application/problem+json"
    assert problem["detail"].startswith(field) and reason in problem["detail"], problem
    id_ = await client.post("/api/v1/complaints", json=body)
    indonesian = (await id_.json())["detail"]
    assert id_.status == 400 and indonesian.startswith(field) and " / " in indonesian
    assert await opened_complaints(gw.engine, gw.keys) == []
    assert await opened_raw(gw.engine, gw.keys) == []  # answered at once, nothing stored


async def test_a_right_identity_travels_in_its_canonical_form(
    gw: bootstrap.Gateway, aiohttp_client: Client
) -> None:
    client = await aiohttp_client(bootstrap.build_app(gw))
    dotted = f"{NIK[:2]}.{NIK[2:4]}.{NIK[4:6]}.{NIK[6:12]}.{NIK[12:]}"
    body = {
        "body": "Jalan Siliwangi berlubang besar",
        "reporter": {
            "nik": dotted,
            "name": "Siti Aminah",
            "phone": "0812-3456-7890",
            "email": "Siti@Contoh.ID",
        },
        "privacy": {"anonymous": True},
    }
    resp = await client.post("/api/v1/complaints", json=body)
    assert resp.status == 202
    (event_json,) = await opened_events(gw.engine, gw.keys)
    event = json.loads(event_json)
    validate_event(event)
    assert event["reporter"] | {"handles": None} == {
        "nik": NIK,
        "name": "Siti Aminah",
        "phone": "+6281234567890",
        "email": "siti@contoh.id",
        "handles": None,
    }
    # Who sent it over HTTP stays in the gateway: not in the event's source.
    assert set(event["source"]) == {"provider_message_id", "raw_inbound_id"}
    (raw,) = await opened_raw(gw.engine, gw.keys)
    assert raw["transport_meta"]["remote"] and "user_agent" in raw["transport_meta"]
