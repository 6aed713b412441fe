"""The contract with the routing core: routing keys, message properties and the body.

Published files, kept in step with this module by tests:
``contract/complaint-event.v1.schema.json`` (JSON Schema of the body) and ``contract/asyncapi.yaml``
(AsyncAPI 3 of the broker side). A change that adds, removes or renames a body field is a new
``SCHEMA_VERSION`` and a new schema file.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from gateway.domain import Channel, Complaint, Event

SCHEMA_VERSION = "1.0"
CONTENT_TYPE = "application/json"
ROUTING_KEY_PATTERN = "complaint.#"

# What the body's ``source`` may carry: the message's ids and transport facts, each described in
# the schema. Anything else a channel keeps about a message (the client's address and user
# agent, an SMS sender's number as the bridge wrote it, internal file references) stays in the
# gateway's raw inbound store and never reaches the routing core.
GIVEN_TRACKING_ID = "given_tracking_id"
REPEATS_TRACKING_ID = "repeats_tracking_id"
SOURCE_KEYS: dict[str, str] = {
    "provider_message_id": "The channel's own id of the message: the SMS gateway's (Kannel "
    "%I, Jasmin id...), idem:<Idempotency-Key> or uuid:... from the API, open311:..., form:... "
    "from the web form, add:... from its page that adds to a report, letter-draft:... from the "
    "front desk, joined:... for a joined SMS.",
    "raw_inbound_id": "The gateway's id of the message as it was received (stored unchanged).",
    GIVEN_TRACKING_ID: "On a followup event: the ID of its own its sender named (one told when "
    "an earlier message of theirs joined the complaint). "
    "On a duplicate event whose sender was told another ID than tracking_id: "
    "a message quarantined, then replayed by an operator (the ID given when it arrived), or one "
    "the identity graph joined to the complaint through what anyone may type (a NIK, a phone "
    "number or an address on a form, in a text or a letter) rather than through the phone "
    "number, address or account that sent or was given in the complaint: told an ID of its own, "
    "so that an answer never tells a stranger who typed someone's NIK that this person "
    "complained. Status queries with it answer the status of tracking_id as changed since the "
    "message arrived.",
    REPEATS_TRACKING_ID: "On a created event: the tracking ID of a complaint the routing core "
    "has closed that the same person (as the identity graph knows them) sent of the same matter "
    "within the dedup window: the matter is back. The gateway does not join a closed complaint; "
    "this one stands on its own with its own status, and whether to open the earlier one again "
    "is the routing core's decision. Its sender was told only this complaint's ID.",
    "api": "open311 when the complaint came through the Open311 GeoReport v2 API.",
    "media_url": "Open311: the address of a photo the client stored elsewhere (media_url, "
    "http or https), as given. The gateway does not fetch it: evidence outside its store.",
    "exif_gps": "Web form and JSON API (multipart): where photos were taken, from their EXIF, as "
    "<sha256>=<lat>,<long> separated by ';' (evidence of the matter).",
    "receiver": "SMS: the number the citizen wrote to (the short code).",
    "smsc": "SMS: the operator link, Jasmin connector or SIM that received it.",
    "coding": "SMS: the data coding the gateway reported.",
    "charset": "SMS: the character set the gateway reported.",
    "time": "SMS: when the SMS gateway received it, as that gateway wrote it.",
    "udh": "SMS: the user data header of a part, in hex.",
    "parts": "SMS: <parts received>/<parts sent> of a long SMS (or the modem's part count).",
    "bridge": "SMS: the gateway that delivered the parts of a joined SMS.",
    "event": "SMS: the Android gateway app's webhook event.",
    "letter_draft_id": "Letter: the front desk's draft the complaint was confirmed from.",
    "pages": "Letter: how many scanned pages.",
    "entered_by": "Letter: the clerk (staff account) who confirmed it.",
    "uploaded_by": "Letter: the clerk who uploaded the scans, when not the one who confirmed.",
    "letter_date": "Letter: the date written on the letter (YYYY-MM-DD).",
    "letter_place": "Letter: the place written on the letter.",
    "sender_address": "Letter: the sender's address as written. Personal data: hidden from "
    "agencies like reporter when privacy.anonymous is true.",
    "nik_checked": "Letter: ktp when the clerk checked reporter.nik against the sender's KTP "
    "(the card shown at the desk, or the copy sent with the letter); absent when not checked. "
    "The gateway does not take a checked NIK as the sender's proof of identity: a KTP copy can "
    "be anyone's.",
}


def routing_key(event: Event, channel: Channel) -> str:
    """``complaint.<event>.<channel>``, e.g. ``complaint.created.sms``."""
    return f"complaint.{event.value}.{channel.value}"


def message_type(event: Event) -> str:
    """The AMQP ``type`` property: the event name (``complaint.created``)."""
    return f"complaint.{event.value}"


def rfc3339(moment: datetime) -> str:
    """UTC timestamp in RFC 3339 with a ``Z`` suffix."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def event_body(
    complaint: Complaint,
    event: Event = Event.CREATED,
    duplicate_of: str | None = None,
) -> dict[str, Any]:
    """The message body for ``complaint`` as the routing core receives it."""
    draft = complaint.draft
    reporter = draft.reporter
    location = draft.location
    return {
        "schema_version": SCHEMA_VERSION,
        "event": event.value,
        "complaint_id": complaint.id,
        "tracking_id": complaint.tracking_id,
        "channel": complaint.channel.value,
        "received_at": rfc3339(complaint.received_at),
        "kind": draft.kind.value,
        "title": draft.title,
        "body": draft.body,
        "occurred_on": draft.occurred_on.isoformat() if draft.occurred_on else None,
        "agency": draft.agency,
        "reporter": {
            "nik": reporter.nik,
            "name": reporter.name,
            "phone": reporter.phone,
            "email": reporter.email,
            "handles": dict(reporter.handles),
        },
        "privacy": {
            "anonymous": draft.privacy.anonymous,
            "confidential": draft.privacy.confidential,
        },
        "location": None
        if location is None
        else {
            "text": location.text,
            "latitude": location.latitude,
            "longitude": location.longitude,
            "region_code": location.region_code,
        },
        "attachments": [
            {
                "sha256": a.sha256,
                "media_type": a.media_type,
                "size": a.size,
                "filename": a.filename,
                "href": f"/files/{a.sha256}",
            }
            for a in draft.attachments
        ],
        "duplicate_of": duplicate_of,
        "source": {k: v for k, v in complaint.source.items() if k in SOURCE_KEYS},
    }


def encode(body: dict[str, Any]) -> str:
    """The exact JSON text stored in the outbox and published."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
