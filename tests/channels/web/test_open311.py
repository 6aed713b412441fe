"""Open311 GeoReport v2 (wiki.open311.org/GeoReport_v2) on the real databases and RabbitMQ.

The requests are the specification's own examples; the answers are checked against the shapes of
the specification's example responses, element by element, in XML and in JSON, and every JSON
answer must be the Spark-convention mapping of the XML one. In the example POST body four values
are ours: api_key, jurisdiction_id, service_code, and the phone (the spec's "111111111" is not a
phone number here and is refused with 400).
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp.test_utils import TestClient

from gateway import bootstrap
from gateway.settings import Settings
from tests.channels.web.conftest import NIK, OPEN311_KEY, web_settings
from tests.support import FixedClock, drain, opened_events, with_section

pytestmark = pytest.mark.integration

Client = Callable[..., Awaitable[TestClient[Any, Any]]]
FORM = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
V2 = "/open311/v2"
# The spec's "Example Request" of POST Service Request, as sent (attribute[...] included).
SPEC_REQUEST = (
    "api_key=xyz&jurisdiction_id=city.gov&service_code=001&lat=37.76524078&long=-122.4212043"
    "&address_string=1234+5th+street&email=smit333%40sfgov.edu&device_id=tt222111"
    "&account_id=123456&first_name=john&last_name=smith&phone=111111111"
    "&description=A+large+sinkhole+is+destroying+the+street&media_url=http%3A%2F%2Ffarm3.static"
    ".flickr.com%2F2002%2F2212426634_5ed477a060.jpg&attribute[WHISPAWN]=123456"
    "&attribute[WHISDORN]=COISL001"
)
EXAMPLE_BODY = (
    SPEC_REQUEST.replace("api_key=xyz", f"api_key={OPEN311_KEY}")
    .replace("jurisdiction_id=city.gov", "jurisdiction_id=lapor.go.id")
    .replace("service_code=001", "service_code=pengaduan")
    .replace("phone=111111111", "phone=081234567890")
)
# Element names (in order) of the spec's example responses.
SERVICE_FIELDS = [
    "service_code", "service_name", "description", "metadata", "type", "keywords", "group",
]
REQUEST_FIELDS = [
    "service_request_id", "status", "status_notes", "service_name", "service_code",
    "description", "agency_responsible", "service_notice", "requested_datetime",
    "updated_datetime", "expected_datetime", "address", "address_id", "zipcode", "lat", "long",
    "media_url",
]
ATTRIBUTE_FIELDS = [
    "variable", "code", "datatype", "required", "datatype_description", "order", "description",
]
# A date-time as the spec writes it: "2010-01-01T00:00:00Z", "2010-04-14T06:37:38-08:00".
W3C = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)")
LISTS = {"services", "service_requests", "errors", "attributes", "values", "endpoints",
         "formats"}


def spark(element: ET.Element) -> Any:
    """The JSON the Spark convention makes of an XML element (values stay text)."""
    if element.tag in LISTS:
        return [spark(child) for child in element]
    if len(element):
        return {child.tag: spark(child) for child in element}
    return element.text


def as_text(value: Any) -> Any:
    """A JSON value as the XML text it maps to."""
    if isinstance(value, list):
        return [as_text(v) for v in value]
    if isinstance(value, dict):
        return {k: as_text(v) for k, v in value.items()}
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None or value == "":
        return None
    return str(value)


async def both(client: TestClient[Any, Any], path: str, **kw: Any) -> tuple[Any, ET.Element, int]:
    """GET ``path`` as .json and .xml; check they say the same; return both and the status."""
    as_json = await client.get(f"{V2}/{path}.json", **kw)
    as_xml = await client.get(f"{V2}/{path}.xml", **kw)
    assert as_json.status == as_xml.status
    assert as_json.headers["Content-Type"] == "application/json; charset=utf-8"
    assert as_xml.headers["Content-Type"] == "text/xml; charset=utf-8"
    text = await as_xml.text()
    assert text.startswith('<?xml version="1.0" encoding="utf-8"?>')
    root = ET.fromstring(text)
    data = await as_json.json()
    assert as_text(data) == spark(root), path
    return data, root, as_json.status


async def test_discovery_in_both_formats(gw: bootstrap.Gateway, aiohttp_client: Client) -> None:
    client = await aiohttp_client(bootstrap.build_app(gw))
    doc, root, status = await both(client, "discovery")
    assert status == 200 and root.tag == "discovery"
    assert [c.tag for c in root] == ["changeset", "contact", "key_service", "endpoints"]
    [endpoint] = doc["endpoints"]
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert endpoint["url"] == f"http://{client.host}:{client.port}{V2}"
    assert endpoint["type"] == "production" and endpoint["changeset"] <= doc["changeset"]
    assert endpoint["formats"] == ["text/xml", "application/json"]
    assert [f.text for f in root.iter("format")] == ["text/xml", "application/json"]


async def test_services_and_service_definitions(
    gw: bootstrap.Gateway, aiohttp_client: Client
) -> None:
    client = await aiohttp_client(bootstrap.build_app(gw))
    services, root, _ = await both(client, "services")
    assert root.tag == "services" and [s.tag for s in root] == ["service"] * 3
    assert [c.tag for c in root[0]] == SERVICE_FIELDS
    assert [s["service_code"] for s in services] == ["pengaduan", "aspirasi", "informasi"]
    assert all(s["metadata"] is True and s["type"] == "realtime" for s in services)
    assert root.find("service/metadata").text == "true"  # type: ignore[union-attr]

    definition, root, status = await both(client, "services/pengaduan")
    assert status == 200 and root.tag == "service_definition"
    assert [c.tag for c in root] == ["service_code", "attributes"]
    assert definition["service_code"] == "pengaduan"
    attrs = {a["code"]: a for a in definition["attributes"]}
    assert list(attrs) == ["judul", "tanggal", "instansi", "nik", "anonim", "rahasia"]
    assert [a["order"] for a in attrs.values()] == [1, 2, 3, 4, 5, 6]
    for attribute in root.iter("attribute"):
        assert [c.tag for c in attribute][: len(ATTRIBUTE_FIELDS)] == ATTRIBUTE_FIELDS
    assert attrs["anonim"]["datatype"] == "singlevaluelist"
    assert [v["key"] for v in attrs["rahasia"]["values"]] == ["ya", "tidak"]
    assert attrs["tanggal"]["datatype"] == "datetime" and not attrs["nik"]["required"]

    for path in ("services/lampu-jalan", "services/pengaduan"):
        wrong = {"jurisdiction_id": "x.gov"} if path.endswith("pengaduan") else {}
        missing, root, status = await both(client, path, params=wrong)
        assert status == 404 and root.tag == "errors"
        assert missing[0]["code"] == 404 and "tidak dikenal" in missing[0]["description"]
    _, _, status = await both(client, "services", params={"jurisdiction_id": "x.gov"})
    assert status == 404


async def test_the_specs_example_request_then_every_way_to_follow_it(
    gw: bootstrap.Gateway, aiohttp_client: Client, settings: Settings
) -> None:
    client = await aiohttp_client(bootstrap.build_app(gw))
    resp = await client.post(f"{V2}/requests.xml", data=EXAMPLE_BODY, headers=FORM)
    text = await resp.text()
    # 200 like every GeoReport v2 server: the reference Android client (GeoReporter) reads only a
    # 200 as success and tells the citizen that a 201 failed, though the complaint is in.
    assert resp.status == 200, text
    root = ET.fromstring(text)
    assert root.tag == "service_requests" and [r.tag for r in root] == ["request"]
    created = {c.tag: c.text for c in root[0]}
    # The spec's example response: service_request_id, service_notice, account_id (empty).
    assert {"service_request_id", "service_notice", "account_id"} <= set(created)
    assert created["account_id"] is None and created["service_notice"]
    rid, token = created["service_request_id"], created["token"]
    assert rid and token

    [one], root, status = await both(client, f"requests/{rid}")
    assert status == 200 and root.tag == "service_requests"
    assert [c.tag for c in root[0]] == REQUEST_FIELDS  # the spec's elements, in its order
    assert one["service_request_id"] == rid and one["status"] == "open"
    assert one["service_code"] == "pengaduan" and one["service_name"] == "Pengaduan"
    assert (one["lat"], one["long"]) == (37.76524078, -122.4212043)
    assert one["address"] == "1234 5th street"
    # The spec's w3 form to the second, "2010-01-01T00:00:00Z": GeoReporter for iOS reads it with
    # yyyy-MM-dd'T'HH:mm:ssZZZZZ and shows no date at all for one with a fraction of a second.
    for key in ("requested_datetime", "updated_datetime"):
        assert W3C.fullmatch(one[key]), one[key]
        assert abs(datetime.fromisoformat(one[key]) - datetime.now(UTC)) < timedelta(minutes=5)
    dumped = json.dumps(one)
    assert "smith" not in dumped and "sinkhole" not in dumped and "sfgov" not in dumped

    [tok], root, _ = await both(client, f"tokens/{token}")
    assert tok == {"service_request_id": rid, "token": token}
    assert [c.tag for c in root[0]] == ["service_request_id", "token"]
    _, root, status = await both(client, "tokens/nope")
    assert status == 404 and root.find("error/code").text == "404"  # type: ignore[union-attr]
    # Only the token given: one with anything after it was cut to its first 36 characters and
    # resolved, echoed back as if it were a token of ours.
    _, root, status = await both(client, f"tokens/{token}0")
    assert status == 404 and root.find("error/code").text == "404"  # type: ignore[union-attr]

    listed, _, _ = await both(client, "requests")
    assert [r["service_request_id"] for r in listed] == [rid]
    # The spec's sample query (a range in 2010): nothing.
    sample = {"start_date": "2010-05-24T00:00:00Z", "end_date": "2010-06-24T00:00:00Z",
              "status": "open", "jurisdiction_id": "lapor.go.id"}
    empty, root, _ = await both(client, "requests", params=sample)
    assert empty == [] and root.tag == "service_requests" and len(root) == 0
    for params in ({"service_code": "aspirasi"}, {"status": "closed"},
                   {"start_date": (datetime.now(UTC) + timedelta(days=1)).isoformat()}):
        assert (await both(client, "requests", params=params))[0] == []
    assert len((await both(client, "requests", params={"service_request_id": rid}))[0]) == 1
    bad, root, status = await both(client, "requests", params={"start_date": "yesterday"})
    assert status == 400 and bad[0]["code"] == 400 and root.tag == "errors"

    assert gw.relay is not None
    await gw.relay.publish_batch()
    await gw.relay._close()
    [msg] = await drain(settings.broker.queue, 1)
    event = json.loads(msg.body)
    assert event["tracking_id"] == rid and event["body"] == "A large sinkhole is destroying the street"
    assert event["reporter"]["name"] == "john smith"
    assert event["reporter"]["email"] == "smit333@sfgov.edu"
    assert OPEN311_KEY not in msg.body.decode()  # the api_key is never stored nor published
    # The photo the client stored elsewhere reaches the routing core as its address.
    assert event["source"]["media_url"] == (
        "http://farm3.static.flickr.com/2002/2212426634_5ed477a060.jpg"
    )


async def test_lapor_attributes_carry_title_date_agency_nik_and_privacy(
    gw: bootstrap.Gateway, aiohttp_client: Client, settings: Settings
) -> None:
    client = await aiohttp_client(bootstrap.build_app(gw))
    body = EXAMPLE_BODY + "&" + urlencode({
        "attribute[judul]": "Lubang di jalan", "attribute[tanggal]": "2026-11-01",
        "attribute[instansi]": "Dinas PUPR", "attribute[nik]": NIK,
        "attribute[anonim]": "ya", "attribute[rahasia]": "ya",
    })
    resp = await client.post(f"{V2}/requests.json", data=body, headers=FORM)
    assert resp.status == 200, await resp.text()
    [created] = await resp.json()
    [one] = await (await client.get(f"{V2}/requests/{created['service_request_id']}.json")).json()
    assert one["description"] is None and one["address"] is None  # confidential: not shown
    assert one.get("lat") is None and one.get("long") is None  # nor where it is
    assert one["agency_responsible"] is None  # nor whom it concerns

    assert gw.relay is not None
    await gw.relay.publish_batch()
    await gw.relay._close()
    [msg] = await drain(settings.broker.queue, 1)
    event = json.loads(msg.body)
    assert event["title"] == "Lubang di jalan" and event["occurred_on"] == "2026-11-01"
    assert event["agency"] == "Dinas PUPR" and event["reporter"]["nik"] == NIK
    assert event["privacy"] == {"anonymous": True, "confidential": True}


async def test_errors_are_the_specs_error_list_in_both_formats(
    gw: bootstrap.Gateway, aiohttp_client: Client
) -> None:
    client = await aiohttp_client(bootstrap.build_app(gw))

    async def post(fmt: str, body: str, **headers: str) -> tuple[int, Any]:
        resp = await client.post(f"{V2}/requests.{fmt}", data=body, headers={**FORM, **headers})
        text = await resp.text()
        return resp.status, ET.fromstring(text) if fmt == "xml" else json.loads(text)

    # The spec's error example: HTTP 403 with <errors><error><code>403</code>…
    status, root = await post("xml", SPEC_REQUEST)
    assert status == 403 and root.tag == "errors" and [e.tag for e in root] == ["error"]
    assert [c.tag for c in root[0]] == ["code", "description"]
    assert root[0][0].text == "403" and "api_key" in (root[0][1].text or "")
    status, errs = await post("json", SPEC_REQUEST, **{"Accept-Language": "en"})
    assert status == 403 and errs == [{"code": 403, "description": "api_key is missing or not "
                                       "valid."}]
    # The example as sent, with our key: the phone 111111111 is no phone number here.
    with_key = SPEC_REQUEST.replace("api_key=xyz", f"api_key={OPEN311_KEY}")
    status, errs = await post("json", with_key.replace("jurisdiction_id=city.gov&", ""))
    assert status == 404 and "service_code" in errs[0]["description"]  # 001 is not ours
    status, errs = await post("json", EXAMPLE_BODY.replace("phone=081234567890", "phone=111111111"))
    assert status == 400 and "phone" in errs[0]["description"]
    status, errs = await post("json", EXAMPLE_BODY.replace("service_code=pengaduan", "x=y"))
    assert status == 400 and "service_code" in errs[0]["description"]
    status, errs = await post("json", EXAMPLE_BODY.replace("lapor.go.id", "city.gov"))
    assert status == 404 and "jurisdiction_id" in errs[0]["description"]
    nowhere = "&".join(p for p in EXAMPLE_BODY.split("&")
                       if not p.startswith(("lat=", "long=", "address_string=")))
    status, root = await post("xml", nowhere)
    assert status == 400 and root[0][0].text == "400"
    for attribute in ("attribute[anonim]=mungkin", "attribute[tanggal]=2999-01-01",
                      "attribute[nik]=3209014101900000", "attribute[tanggal]=kemarin"):
        status, errs = await post("json", f"{EXAMPLE_BODY}&{attribute}", **{"Accept-Language": "en"})
        assert status == 400 and attribute.split("=")[0] in errs[0]["description"], errs
    status, errs = await post("json", "not=form", **{"Content-Type": "application/json"})
    assert status == 400
    _, root, status = await both(client, "requests/ABCDEFGH2")
    assert status == 404 and root.tag == "errors"
    assert await gw.intake.count_complaints() == 0


async def test_what_the_server_answers_by_itself_under_the_endpoint_is_the_specs_error_list(
    settings: Settings, aiohttp_client: Client
) -> None:
    # No such resource, a method the resource does not take, a body over http.client_max_size:
    # the spec's error list in the format the path names (XML, the required one, without), 404
    # for what does not exist and 400 for the rest ("basically 400 for any other error").
    gateway = bootstrap.build(with_section(web_settings(settings), "http", client_max_size=4096))
    try:
        client = await aiohttp_client(bootstrap.build_app(gateway))
        big = EXAMPLE_BODY.replace("description=A+large", "description=" + "a" * 5000 + "A+large")
        for method, path, status, body in [
            ("GET", "requests/ABCDEFGH2/notes.json", 404, None),
            ("GET", "request.xml", 404, None),
            ("GET", "requests", 404, None),
            ("PUT", "requests.json", 400, EXAMPLE_BODY),
            ("POST", "services.xml", 400, EXAMPLE_BODY),
            ("DELETE", "requests/ABCDEFGH2.json", 400, None),
            ("POST", "requests.json", 400, big),
        ]:
            resp = await client.request(
                method, f"{V2}/{path}", data=body, headers={**FORM, "Accept-Language": "en"}
            )
            text = await resp.text()
            assert resp.status == status, (method, path, text)
            if path.endswith(".json"):
                assert resp.headers["Content-Type"] == "application/json; charset=utf-8"
                [error] = json.loads(text)
            else:
                assert resp.headers["Content-Type"] == "text/xml; charset=utf-8"
                root = ET.fromstring(text)
                assert root.tag == "errors" and [e.tag for e in root] == ["error"]
                error = {c.tag: c.text for c in root[0]}
                error["code"] = int(error["code"])
            assert list(error) == ["code", "description"] and error["code"] == status, error
            assert error["description"]
        assert await gateway.intake.count_complaints() == 0
        outside = await client.get("/nothing.json")  # only the Open311 endpoint answers so
        assert outside.status == 404 and "json" not in outside.headers["Content-Type"]
    finally:
        await gateway.close()


async def test_optional_arguments_sent_empty_or_repeated(
    gw: bootstrap.Gateway, aiohttp_client: Client
) -> None:
    client = await aiohttp_client(bootstrap.build_app(gw))
    resp = await client.post(f"{V2}/requests.json", data=EXAMPLE_BODY, headers=FORM)
    assert resp.status == 200, await resp.text()
    [created] = await resp.json()
    rid = created["service_request_id"]
    # The spec's "Optional Arguments": passed empty is the same as not passed at all.
    empty = {name: "" for name in ("jurisdiction_id", "service_request_id", "service_code",
                                   "start_date", "end_date", "status")}
    listed, _, status = await both(client, "requests", params=empty)
    assert status == 200 and [r["service_request_id"] for r in listed] == [rid]
    # service_code and status "can be declared multiple times, comma delimited".
    for params in ([("service_code", "aspirasi"), ("service_code", "pengaduan")],
                   [("status", "closed"), ("status", "open")],
                   [("service_code", "aspirasi,pengaduan"), ("status", "closed,open")]):
        listed, _, status = await both(client, "requests", params=params)
        assert status == 200 and [r["service_request_id"] for r in listed] == [rid], params


async def test_dates_at_the_edge_of_the_calendar_are_a_400_not_a_server_error(
    gw: bootstrap.Gateway, aiohttp_client: Client
) -> None:
    client = await aiohttp_client(bootstrap.build_app(gw))
    # Valid W3C date-times whose UTC form (or the default window before them) falls outside
    # what a date-time can hold: the client's mistake, answered 400, never 500 nor 503.
    for name in ("start_date", "end_date"):
        for moment in ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00+14:00",
                       "9999-12-31T23:59:59-14:00"):
            data, _, status = await both(client, "requests", params={name: moment})
            if status == 200:
                assert data == [], (name, moment)
            else:
                assert status == 400 and data[0]["code"] == 400, (name, moment, data)
                assert name in data[0]["description"]


async def test_service_request_id_overrides_all_other_arguments(
    gw: bootstrap.Gateway, aiohttp_client: Client
) -> None:
    client = await aiohttp_client(bootstrap.build_app(gw))
    ids = []
    for body in (EXAMPLE_BODY, EXAMPLE_BODY.replace("service_code=pengaduan", "service_code=informasi")
                 .replace("A+large+sinkhole+is+destroying+the+street", "Minta+data+anggaran+jalan")):
        resp = await client.post(f"{V2}/requests.json", data=body, headers=FORM)
        assert resp.status == 200, await resp.text()
        ids.append((await resp.json())[0]["service_request_id"])
    # The spec's sample query, which matches neither, and a service_code of neither: the ids win.
    others = {"start_date": "2010-05-24T00:00:00Z", "end_date": "2010-06-24T00:00:00Z",
              "status": "closed", "service_code": "aspirasi", "jurisdiction_id": "lapor.go.id"}
    listed, _, status = await both(
        client, "requests", params={"service_request_id": ",".join(ids), **others}
    )
    assert status == 200 and sorted(r["service_request_id"] for r in listed) == sorted(ids)
    # Arguments that would be refused on their own are overridden too.
    listed, _, status = await both(client, "requests", params={
        "service_request_id": ids[1], "start_date": "yesterday", "status": "pending"})
    assert status == 200 and [r["service_request_id"] for r in listed] == [ids[1]]


async def test_a_datetime_attribute_as_georeporter_for_ios_sends_it(
    gw: bootstrap.Gateway, aiohttp_client: Client, settings: Settings
) -> None:
    # GeoReporter for iOS posts a datetime attribute as its NSDate's description; the spec asks
    # only that it "be able to transform into a valid ISO 8601 date".
    client = await aiohttp_client(bootstrap.build_app(gw))
    body = EXAMPLE_BODY + "&" + urlencode({"attribute[tanggal]": "2026-11-01 08:30:00 +0000"})
    resp = await client.post(f"{V2}/requests.json", data=body, headers=FORM)
    assert resp.status == 200, await resp.text()

    assert gw.relay is not None
    await gw.relay.publish_batch()
    await gw.relay._close()
    [msg] = await drain(settings.broker.queue, 1)
    assert json.loads(msg.body)["occurred_on"] == "2026-11-01"


async def test_no_get_ever_shows_the_reporter_nor_a_confidential_complaint(
    gw: bootstrap.Gateway, aiohttp_client: Client
) -> None:
    client = await aiohttp_client(bootstrap.build_app(gw))
    who = {"attribute[nik]": NIK, "attribute[anonim]": "ya"}
    secret = {"attribute[judul]": "Pungli di kantor camat", "attribute[rahasia]": "ya",
              "attribute[instansi]": "Polres Cirebon"}  # whom it is about: content too
    public = {"attribute[judul]": "Jalan berlubang", "attribute[instansi]": "Dinas PUPR"}
    hidden = (EXAMPLE_BODY.replace("1234+5th+street", "Jl.+Melati+7")
              .replace("lat=37.76524078", "lat=-6.2088").replace("long=-122.4212043", "long=106.8456"))
    text = "A+large+sinkhole+is+destroying+the+street"
    tokens = []
    for body, extra in ((hidden, {**who, **secret}),  # each its own text: no duplicates
                        (EXAMPLE_BODY.replace(text, "Lampu+jalan+mati+sejak+Senin"), who),
                        (EXAMPLE_BODY.replace(text, "Sampah+menumpuk+di+pasar"), public)):
        resp = await client.post(
            f"{V2}/requests.json", data=f"{body}&{urlencode(extra)}", headers=FORM
        )
        assert resp.status == 200, await resp.text()
        tokens.append((await resp.json())[0])
    paths = ["requests", *(f"requests/{t['service_request_id']}" for t in tokens),
             *(f"tokens/{t['token']}" for t in tokens)]
    # The reporter of any (name, e-mail, phone as sent and as stored, NIK, device, account), any
    # complaint's text, and the title and place of the confidential one.
    never = [NIK, "john", "smith", "smit333", "sfgov", "081234567890", "6281234567890",
             "sinkhole", "Lampu", "Sampah", "tt222111", "123456", "flickr", "Pungli", "camat", "Melati", "-6.2088",
             "106.8456", "Polres"]
    for path in paths:
        for fmt in ("json", "xml"):
            resp = await client.get(f"{V2}/{path}.{fmt}")
            text = await resp.text()
            assert resp.status == 200, text
            assert not [word for word in never if word.lower() in text.lower()], (path, text)
    [listed] = [r for r in (await both(client, "requests"))[0]
                if r["service_request_id"] == tokens[2]["service_request_id"]]
    assert listed["description"] == "Jalan berlubang"  # what is public still is
    assert listed["agency_responsible"] == "Dinas PUPR"


async def test_post_is_rate_limited_with_retry_after(
    settings: Settings, aiohttp_client: Client
) -> None:
    # A fixed clock: the limit's windows start on the minute (a real one could cross one).
    clock = FixedClock(datetime(2026, 11, 23, 8, 0, 15, tzinfo=UTC))
    gateway = bootstrap.build(web_settings(settings, rate_limit_requests=1), clock=clock)
    try:
        client = await aiohttp_client(bootstrap.build_app(gateway))
        first = await client.post(f"{V2}/requests.xml", data=EXAMPLE_BODY, headers=FORM)
        assert first.status == 200
        again = await client.post(f"{V2}/requests.xml", data=EXAMPLE_BODY, headers=FORM)
        root = ET.fromstring(await again.text())
        assert again.status == 429 and root[0][0].text == "429"
        assert 0 < int(again.headers["Retry-After"]) <= 60
        assert await gateway.intake.count_complaints() == 1
    finally:
        await gateway.close()


async def test_tanggal_of_today_in_indonesia_is_taken_before_it_is_today_in_utc(
    settings: Settings, aiohttp_client: Client
) -> None:
    # 20:30 UTC on 4 December: 05:30 on 5 December in Jayapura (WIT), 03:30 in Jakarta (WIB).
    clock = FixedClock(datetime(2026, 12, 4, 20, 30, tzinfo=UTC))
    gateway = bootstrap.build(web_settings(settings), clock=clock)
    try:
        client = await aiohttp_client(bootstrap.build_app(gateway))
        en = {**FORM, "Accept-Language": "en"}
        later = await client.post(
            f"{V2}/requests.json", data=f"{EXAMPLE_BODY}&attribute[tanggal]=2026-12-06", headers=en
        )
        assert later.status == 400
        assert (await later.json())[0]["description"] == "attribute[tanggal] is in the future"
        today = await client.post(
            f"{V2}/requests.json", data=f"{EXAMPLE_BODY}&attribute[tanggal]=2026-12-05", headers=FORM
        )
        assert today.status == 200, await today.text()
        assert await gateway.intake.count_complaints() == 1
    finally:
        await gateway.close()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (("description=A+large+sinkhole+is+destroying+the+street", "description="),
         "description"),
        (("description=A+large", "description=" + "a" * 20_001 + "A+large"), "description"),
        (("lat=37.76524078", "lat=utara"), "lat"),
        (("lat=37.76524078", "lat=91"), "lat"),
        (("long=-122.4212043", "long=181"), "long"),
        (("&long=-122.4212043", ""), "long"),
        (("lat=37.76524078&", ""), "lat"),
        (("phone=081234567890", "phone=12"), "phone"),
        (("email=smit333%40sfgov.edu", "email=smit333"), "email"),
        (("", "&attribute[judul]=" + "j" * 301), "attribute[judul]"),
        (("", "&attribute[instansi]=" + "i" * 256), "attribute[instansi]"),
        (("", "&attribute[nik]=12345"), "attribute[nik]"),
        (("", "&attribute[nik]=3209014101900000"), "attribute[nik]"),
        (("", "&attribute[rahasia]=mungkin"), "attribute[rahasia]"),
        (("", "&attribute[tanggal]=kemarin"), "attribute[tanggal]"),
    ],
)
async def test_every_refusal_of_a_request_names_its_parameter_in_english_as_in_indonesian(
    gw: bootstrap.Gateway, aiohttp_client: Client, change: tuple[str, str], field: str
) -> None:
    client = await aiohttp_client(bootstrap.build_app(gw))
    old, new = change
    body = EXAMPLE_BODY.replace(old, new) if old else EXAMPLE_BODY + new
    named = re.compile(rf"(?<![\w.]){re.escape(field)}(?![\w.\[])")
    en = await client.post(f"{V2}/requests.json", data=body, headers={**FORM, "Accept-Language": "en"})
    [error] = await en.json()
    assert en.status == 400 and named.search(error["description"]), error
    assert not re.search(r"\b(harus|wajib|lebih dari|di luar|bukan)\b", error["description"])
    id_ = await client.post(f"{V2}/requests.json", data=body, headers=FORM)
    [error] = await id_.json()
    indonesian, english = error["description"].split(" / ", 1)
    assert named.search(indonesian) and named.search(english), error
    assert await gw.intake.count_complaints() == 0


@pytest.mark.parametrize(
    "media_url", ["javascript:alert(1)", "farm3.static.flickr.com/a.jpg", "http://[::1", ""]
)
async def test_a_media_url_that_is_no_web_address_is_not_passed_on(
    gw: bootstrap.Gateway, aiohttp_client: Client, media_url: str
) -> None:
    client = await aiohttp_client(bootstrap.build_app(gw))
    body = EXAMPLE_BODY.replace(
        "media_url=http%3A%2F%2Ffarm3.static.flickr.com%2F2002%2F2212426634_5ed477a060.jpg",
        urlencode({"media_url": media_url}),
    )
    resp = await client.post(f"{V2}/requests.json", data=body, headers=FORM)
    assert resp.status == 200, await resp.text()
    (event,) = [json.loads(e) for e in await opened_events(gw.engine, gw.keys)]
    assert "media_url" not in event["source"]


def test_a_stored_request_that_is_not_utf8_is_refused_in_the_gateways_words() -> None:
    # The reason carried Python's "'utf-8' codec can't decode byte 0xe9 in position 12" into
    # the Indonesian half too.
    from channels.web.open311 import parse_open311
    from gateway.domain import Channel, RawInbound
    from gateway.errors import ParseError

    raw = RawInbound(
        Channel.WEB, b"description=caf\xe9", datetime(2026, 11, 23, tzinfo=UTC), "o311:1",
        "application/x-www-form-urlencoded",
    )
    with pytest.raises(ParseError) as info:
        parse_open311(raw)
    indonesian, english = info.value.reason.split(" / ", 1)
    assert "byte ke-16 bukan UTF-8" in indonesian and "byte 16 is not UTF-8" in english
    assert "codec" not in info.value.reason


async def test_an_error_aiohttp_raises_is_described_in_indonesian_too() -> None:
    # Any status but 404, 405 and 413 was described by aiohttp's English reason phrase, in the
    # Indonesian answer too.
    from aiohttp import web
    from aiohttp.test_utils import make_mocked_request

    from channels.web.open311 import spec_errors

    async def handler(request: web.Request) -> web.StreamResponse:
        raise web.HTTPLengthRequired()

    for headers, expected in (({}, "Permintaan tidak dapat diproses (HTTP 411)."),
                              ({"Accept-Language": "en"}, "Length Required")):
        request = make_mocked_request("POST", f"{V2}/requests.json", headers=headers)
        answer = await spec_errors(request, handler)
        assert isinstance(answer, web.Response) and answer.status == 400 and answer.text
        assert json.loads(answer.text) == [{"code": 400, "description": expected}]


async def test_a_body_that_cannot_be_decoded_is_the_specs_400_not_a_server_error(
    gw: bootstrap.Gateway, aiohttp_client: Client
) -> None:
    # "Content-Encoding: gzip" over a body that is not gzip: the route's read raised aiohttp's
    # RequestPayloadError, answered "500 Internal Server Error" in text/plain.
    client = await aiohttp_client(bootstrap.build_app(gw))
    headers = {**FORM, "Content-Encoding": "gzip", "Connection": "close"}
    resp = await client.post(f"{V2}/requests.json", data=EXAMPLE_BODY, headers=headers)
    assert resp.status == 400 and resp.content_type == "application/json"
    [error] = await resp.json()
    assert error["code"] == 400 and "Content-Encoding" in error["description"]
    resp = await client.post(
        f"{V2}/requests.xml", data=EXAMPLE_BODY, headers={**headers, "Accept-Language": "en"}
    )
    root = ET.fromstring(await resp.text())
    assert resp.status == 400 and resp.content_type == "text/xml"
    assert root.tag == "errors" and [c.tag for c in root[0]] == ["code", "description"]
    assert root[0][0].text == "400" and "cannot be read" in (root[0][1].text or "")
    assert await gw.intake.count_complaints() == 0


async def test_an_unexpected_failure_is_answered_in_the_specs_error_format() -> None:
    # A handler's bug was aiohttp's "500 Internal Server Error" in text/plain: an Open311 client
    # reads errors as the spec's list, in the format it asked for.
    from aiohttp import web
    from aiohttp.test_utils import make_mocked_request

    from channels.web.open311 import spec_errors

    async def broken(request: web.Request) -> web.StreamResponse:
        raise RuntimeError("bug")

    request = make_mocked_request("GET", f"{V2}/requests.xml", headers={"Accept-Language": "en"})
    answer = await spec_errors(request, broken)
    assert isinstance(answer, web.Response) and answer.status == 500 and answer.text
    root = ET.fromstring(answer.text)
    assert root.tag == "errors" and root[0][0].text == "500"
    assert "server failed" in (root[0][1].text or "")
    request = make_mocked_request("GET", f"{V2}/requests.json")
    answer = await spec_errors(request, broken)
    assert isinstance(answer, web.Response) and answer.text
    assert answer.status == 500 and json.loads(answer.text)[0]["code"] == 500
    with pytest.raises(RuntimeError):  # outside the endpoint aiohttp answers as before
        await spec_errors(make_mocked_request("GET", "/cek"), broken)


async def test_a_zone_offset_whose_plus_was_not_encoded_is_still_read(
    settings: Settings, aiohttp_client: Client
) -> None:
    # "start_date=2026-12-05T09:00:00+07:00" typed into a query unencoded reaches the server as
    # "...09:00:00 07:00" (a "+" in a query is a space): it was refused with 400, although
    # every Indonesian zone (WIB +07, WITA +08, WIT +09) is written with a "+".
    clock = FixedClock(datetime(2026, 12, 5, 2, 30, tzinfo=UTC))  # 09:30 WIB
    gateway = bootstrap.build(web_settings(settings), clock=clock)
    try:
        client = await aiohttp_client(bootstrap.build_app(gateway))
        filed = await client.post(f"{V2}/requests.json", data=EXAMPLE_BODY, headers=FORM)
        assert filed.status == 200, await filed.text()
        [created] = await filed.json()
        for start, found in (("09:00:00+07:00", 1), ("10:00:00+07:00", 0),
                             ("09:00+0700", 1), ("10:00+08", 1)):
            resp = await client.get(f"{V2}/requests.json?start_date=2026-12-05T{start}")
            answer = await resp.json()
            assert resp.status == 200, (start, answer)
            assert [r["service_request_id"] for r in answer] == (
                [created["service_request_id"]] * found
            ), start
        resp = await client.get(f"{V2}/requests.json?end_date=2026-12-05T09:00:00+07:00")
        assert resp.status == 200 and await resp.json() == []
        resp = await client.get(f"{V2}/requests.json?start_date=2026-12-05 09:00:00 07:00")
        assert resp.status == 400  # no "T": not a W3C date-time, with or without the "+"
    finally:
        await gateway.close()
