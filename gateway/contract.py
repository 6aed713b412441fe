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
        "source": dict(complaint.source),
    }


def encode(body: dict[str, Any]) -> str:
    """The exact JSON text stored in the outbox and published."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
