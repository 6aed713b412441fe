"""Open311 GeoReport v2 (wiki.open311.org/GeoReport_v2) on the real databases and RabbitMQ.

The POST body is the spec's own example request (service_code and api_key ours, the phone an
Indonesian number: the spec's "111111111" is not a phone number here and is refused with 400).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp.test_utils import TestClient

from gateway import bootstrap
from gateway.settings import Settings
from tests.channels.web.conftest import OPEN311_KEY
from tests.support import drain

pytestmark = pytest.mark.integration

Client = Callable[..., Awaitable[TestClient[Any, Any]]]
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
# The spec's example: POST https://[API endpoint]/requests.xml (here .json).
SPEC_EXAMPLE = {
    "api_key": OPEN311_KEY,
    "service_code": "pengaduan",
    "lat": "37.76524078",
    "long": "-122.4212043",
    "address_string": "1234 5th street",
    "email": "smit222@sfgov.edu",
    "device_id": "tt222111",
    "account_id": "123456",
    "first_name": "john",
    "last_name": "smith",
    "phone": "081234567890",
    "description": "A large sinkhole is destroying the street",
    "media_url": "http://example.com/image.jpg",
}


async def test_services_json_and_xml(gw: bootstrap.Gateway, aiohttp_client: Client) -> None:
    client = await aiohttp_client(bootstrap.build_app(gw))
    services = await (await client.get("/open311/v2/services.json")).json()
    assert [s["service_code"] for s in services] == ["pengaduan", "aspirasi", "informasi"]
    assert all(s["metadata"] is False and s["type"] == "realtime" for s in services)
    xml = await client.get("/open311/v2/services.xml")
    text = await xml.text()
    assert xml.content_type == "text/xml" and text.startswith('<?xml version="1.0"')
    assert text.count("<service>") == 3 and "<metadata>false</metadata>" in text
    wrong = await client.get("/open311/v2/services.json", params={"jurisdiction_id": "x.gov"})
    assert wrong.status == 404


async def test_post_then_get_request_token_and_listing(
    gw: bootstrap.Gateway, aiohttp_client: Client, settings: Settings
) -> None:
    client = await aiohttp_client(bootstrap.build_app(gw))
    resp = await client.post(
        "/open311/v2/requests.json", data=urlencode(SPEC_EXAMPLE), headers=FORM
    )
    assert resp.status == 201, await resp.text()
    [created] = await resp.json()
    rid, token = created["service_request_id"], created["token"]
    assert created["account_id"] is None and created["service_notice"]

    [one] = await (await client.get(f"/open311/v2/requests/{rid}.json")).json()
    assert one["service_request_id"] == rid and one["status"] == "open"
    assert one["service_code"] == "pengaduan" and one["service_name"] == "Pengaduan"
    assert (one["lat"], one["long"]) == (37.76524078, -122.4212043)
    assert one["address"] == "1234 5th street"
    dumped = json.dumps(one)
    assert "smith" not in dumped and "sinkhole" not in dumped and "sfgov" not in dumped

    [tok] = await (await client.get(f"/open311/v2/tokens/{token}.json")).json()
    assert tok == {"service_request_id": rid, "token": token}
    assert (await client.get("/open311/v2/tokens/nope.json")).status == 404

    listed = await (await client.get("/open311/v2/requests.json")).json()
    assert [r["service_request_id"] for r in listed] == [rid]
    by_code = await client.get("/open311/v2/requests.json", params={"service_code": "aspirasi"})
    assert await by_code.json() == []
    closed = await client.get("/open311/v2/requests.json", params={"status": "closed"})
    assert await closed.json() == []
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    future = await client.get("/open311/v2/requests.json", params={"start_date": later})
    assert await future.json() == []
    by_id = await client.get("/open311/v2/requests.json", params={"service_request_id": rid})
    assert len(await by_id.json()) == 1
    bad = await client.get("/open311/v2/requests.json", params={"start_date": "yesterday"})
    assert bad.status == 400 and (await bad.json())[0]["code"] == 400

    assert gw.relay is not None
    await gw.relay.publish_batch()
    await gw.relay._close()
    [msg] = await drain(settings.broker.queue, 1)
    event = json.loads(msg.body)
    assert event["tracking_id"] == rid and event["body"] == SPEC_EXAMPLE["description"]
    assert event["reporter"]["name"] == "john smith"
    assert event["reporter"]["email"] == "smit222@sfgov.edu"
    assert OPEN311_KEY not in msg.body.decode()  # the api_key is never stored nor published


async def test_post_errors_follow_the_spec(gw: bootstrap.Gateway, aiohttp_client: Client) -> None:
    client = await aiohttp_client(bootstrap.build_app(gw))
    no_key = {k: v for k, v in SPEC_EXAMPLE.items() if k != "api_key"}
    resp = await client.post("/open311/v2/requests.json", data=urlencode(no_key), headers=FORM)
    assert resp.status == 403 and (await resp.json())[0]["code"] == 403
    spec_phone = {**SPEC_EXAMPLE, "phone": "111111111"}
    resp = await client.post("/open311/v2/requests.json", data=urlencode(spec_phone), headers=FORM)
    assert resp.status == 400 and "phone" in (await resp.json())[0]["description"]
    nowhere = {k: v for k, v in SPEC_EXAMPLE.items() if k not in ("lat", "long", "address_string")}
    resp = await client.post("/open311/v2/requests.json", data=urlencode(nowhere), headers=FORM)
    assert resp.status == 400
    assert (await client.get("/open311/v2/requests/ABCDEFGH2.json")).status == 404
    assert await gw.intake.count_complaints() == 0
