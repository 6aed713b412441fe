"""The OpenAPI 3.1 document of the web channel, served at ``/api/v1/openapi.json``.

It is also committed as ``channels/web/openapi.json`` for client authors; rewrite that file with

    python -m channels.web.openapi

``tests/channels/web/test_openapi.py`` fails when the routes and the document drift apart, or
when the committed file is not what this module renders.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TARGET = Path(__file__).resolve().parent / "openapi.json"

PROBLEM = {"$ref": "#/components/responses/Problem"}
# 429 and 503: the same, with the seconds to wait in Retry-After.
PROBLEM_RETRY = {"$ref": "#/components/responses/ProblemRetry"}
O311_ERROR = {
    "json": {"$ref": "#/components/responses/Open311Error"},
    "xml": {"$ref": "#/components/responses/Open311ErrorXml"},
}
O311_RETRY = {
    "json": {"$ref": "#/components/responses/Open311ErrorRetry"},
    "xml": {"$ref": "#/components/responses/Open311ErrorXmlRetry"},
}
RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before sending the request again.",
        "required": True,
        "schema": {"type": "integer", "minimum": 0},
    }
}
HTML = {"description": "HTML page", "content": {"text/html": {"schema": {"type": "string"}}}}
# What the pages answer for a failure nobody expected: aiohttp's own 500 page.
HTML_SERVER_ERROR = {"$ref": "#/components/responses/ServerErrorPage"}
HTML_RETRY = {"description": "HTML page; send again after Retry-After seconds",
              "headers": RETRY_AFTER, "content": HTML["content"]}


def _o311_ok(fmt: str, ref: str, status: str = "OK") -> dict[str, Any]:
    if fmt == "xml":
        return {"description": f"{status} (XML)",
                "content": {"text/xml": {"schema": {"type": "string"}}}}
    return {"description": status, "content": {"application/json": {"schema": {"$ref": ref}}}}


def _open311_schemas() -> dict[str, Any]:
    nullable = {"type": ["string", "null"]}
    attribute = {
        "type": "object",
        "required": ["variable", "code", "datatype", "required", "order", "description"],
        "properties": {
            "variable": {"type": "boolean"},
            "code": {"type": "string"},
            "datatype": {"type": "string", "enum": [
                "string", "number", "datetime", "text", "singlevaluelist", "multivaluelist"]},
            "required": {"type": "boolean"},
            "datatype_description": nullable,
            "order": {"type": "integer", "minimum": 1},
            "description": {"type": "string"},
            "values": {"type": "array", "items": {
                "type": "object", "required": ["key", "name"],
                "properties": {"key": {"type": "string"}, "name": {"type": "string"}}}},
        },
    }
    return {
        "Services": {"type": "array", "items": {"$ref": "#/components/schemas/Service"}},
        "ServiceRequests": {
            "type": "array", "items": {"$ref": "#/components/schemas/ServiceRequest"}},
        "ServiceDefinition": {
            "type": "object",
            "required": ["service_code", "attributes"],
            "properties": {"service_code": {"type": "string"},
                           "attributes": {"type": "array", "items": attribute}},
        },
        "Discovery": {
            "type": "object",
            "required": ["changeset", "contact", "key_service", "endpoints"],
            "properties": {
                "changeset": {"type": "string"},
                "contact": {"type": "string"},
                "key_service": {"type": "string"},
                "endpoints": {"type": "array", "items": {
                    "type": "object",
                    "required": ["specification", "url", "changeset", "type", "formats"],
                    "properties": {
                        "specification": {"type": "string"},
                        "url": {"type": "string"},
                        "changeset": {"type": "string"},
                        "type": {"type": "string", "enum": ["production", "test"]},
                        "formats": {"type": "array", "items": {"type": "string"}},
                    },
                }},
            },
        },
        "Created": {"type": "array", "items": {
            "type": "object",
            "required": ["service_request_id"],
            "properties": {
                "service_request_id": {"type": "string"},
                "token": {"type": "string"},
                "service_notice": nullable,
                "account_id": nullable,
            },
        }},
        "Tokens": {"type": "array", "items": {
            "type": "object",
            "required": ["service_request_id", "token"],
            "properties": {"service_request_id": {"type": "string"},
                           "token": {"type": "string"}},
        }},
        "Open311Errors": {"type": "array", "items": {
            "type": "object", "required": ["code", "description"],
            "properties": {"code": {"type": "integer"}, "description": {"type": "string"}}}},
    }


def _open311_paths(jurisdiction: dict[str, Any]) -> dict[str, Any]:
    """The GeoReport v2 resources, each as .json and .xml."""
    o311_post = {
        "type": "object",
        "required": ["api_key", "service_code"],
        "properties": {
            k: {"type": "string"}
            for k in (
                "api_key", "jurisdiction_id", "service_code", "lat", "long", "address_string",
                "address_id", "email", "device_id", "account_id", "first_name", "last_name",
                "phone", "description", "media_url",
            )
        },
        "patternProperties": {r"^attribute\[[A-Za-z0-9_.-]+\](\[\])?$": {"type": "string"}},
    }

    def path_param(name: str) -> dict[str, Any]:
        return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}

    schema = "#/components/schemas/"
    paths: dict[str, Any] = {}
    for fmt in ("json", "xml"):
        err = O311_ERROR[fmt]
        retry = O311_RETRY[fmt]
        paths[f"/open311/v2/discovery.{fmt}"] = {"get": {
            "summary": f"Service Discovery ({fmt})",
            "description": "The endpoint's url is the gateway's configured public address; "
            "without one, the request's Host when it is a well-formed host[:port], else the "
            "address the request came in on.",
            "responses": {"200": _o311_ok(fmt, schema + "Discovery")},
        }}
        paths[f"/open311/v2/services.{fmt}"] = {"get": {
            "summary": f"GeoReport v2 service list ({fmt})",
            "parameters": [jurisdiction],
            "responses": {"200": _o311_ok(fmt, schema + "Services"), "404": err},
        }}
        paths[f"/open311/v2/services/{{service_code}}.{fmt}"] = {"get": {
            "summary": f"GeoReport v2 service definition: the attributes ({fmt})",
            "parameters": [path_param("service_code"), jurisdiction],
            "responses": {"200": _o311_ok(fmt, schema + "ServiceDefinition"), "404": err},
        }}
        paths[f"/open311/v2/requests.{fmt}"] = {
            "get": {
                "summary": f"GeoReport v2 service requests ({fmt})",
                "parameters": [
                    jurisdiction,
                    *(
                        {"name": n, "in": "query", "required": False,
                         "schema": {"type": "string"}}
                        for n in ("service_request_id", "service_code", "start_date",
                                  "end_date", "status")
                    ),
                ],
                "responses": {"200": _o311_ok(fmt, schema + "ServiceRequests"),
                              "400": err, "404": err, "503": retry},
            },
            "post": {
                "summary": f"Create a GeoReport v2 service request ({fmt})",
                "requestBody": {
                    "required": True,
                    "content": {"application/x-www-form-urlencoded": {"schema": o311_post}},
                },
                "responses": {
                    "200": _o311_ok(fmt, schema + "Created"),
                    "400": err, "403": err, "404": err, "429": retry, "503": retry,
                },
            },
        }
        paths[f"/open311/v2/requests/{{service_request_id}}.{fmt}"] = {"get": {
            "summary": f"One GeoReport v2 service request ({fmt})",
            "parameters": [path_param("service_request_id"), jurisdiction],
            "responses": {"200": _o311_ok(fmt, schema + "ServiceRequests"),
                          "404": err, "503": retry},
        }}
        paths[f"/open311/v2/tokens/{{token}}.{fmt}"] = {"get": {
            "summary": f"The service request id of a token ({fmt})",
            "parameters": [path_param("token"), jurisdiction],
            "responses": {"200": _o311_ok(fmt, schema + "Tokens"), "404": err, "503": retry},
        }}
        # A failure nobody expected: the error list too, 500 (spec_errors).
        for path, ops in paths.items():
            if path.endswith(f".{fmt}"):
                for op in ops.values():
                    op["responses"] = dict(sorted({**op["responses"], "500": err}.items()))
    return paths


def _posted(part: str, schema: str, accepted: str, refused: dict[str, Any]) -> dict[str, Any]:
    """A JSON API post: its body as JSON (``schema``) or multipart (the JSON in the part
    ``part``, files in ``attachments``), the 202 receipt (``accepted`` says when), and the
    problems it may answer (``refused``)."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": [part],
                        "properties": {
                            part: {"type": "string", "contentMediaType": "application/json"},
                            "attachments": {
                                "type": "array",
                                "items": {"type": "string", "format": "binary"},
                            },
                        },
                    }
                },
            },
        },
        "responses": {
            "202": {
                "description": accepted,
                "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/Receipt"}}},
            },
            **refused,
        },
    }


def document() -> dict[str, Any]:
    """The whole document."""
    reporter = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "nik": {"type": "string", "maxLength": 32},
            "name": {"type": "string", "maxLength": 200},
            "phone": {"type": "string", "maxLength": 32},
            "email": {"type": "string", "maxLength": 254},
        },
    }
    privacy = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "anonymous": {"type": "boolean"},
            "confidential": {"type": "boolean"},
        },
    }
    location = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "text": {"type": "string", "maxLength": 500},
            "latitude": {"type": "number", "minimum": -90, "maximum": 90},
            "longitude": {"type": "number", "minimum": -180, "maximum": 180},
        },
    }
    complaint = {
        "type": "object",
        "additionalProperties": False,
        "required": ["body"],
        "properties": {
            "title": {"type": "string", "maxLength": 300},
            "body": {"type": "string", "minLength": 1, "maxLength": 20000},
            "kind": {"type": "string", "enum": ["pengaduan", "aspirasi", "informasi"]},
            "reporter": {"$ref": "#/components/schemas/Reporter"},
            "privacy": privacy,
            "location": location,
            "agency": {"type": "string", "maxLength": 255},
        },
    }
    followup = {
        "type": "object",
        "additionalProperties": False,
        "required": ["body", "followup_code"],
        "properties": {
            "body": {"type": "string", "minLength": 1, "maxLength": 20000},
            "followup_code": {
                "type": "string", "maxLength": 20,
                "description": "The follow-up code the complaint's receipt gave with its "
                "tracking ID, two groups of four such as 7KQD-M2XH (case, spaces and the "
                "dash do not matter).",
            },
            "privacy": privacy,
            "location": location,
        },
    }
    receipt = {
        "type": "object",
        "required": ["tracking_id", "status", "status_url"],
        "properties": {
            "tracking_id": {"type": "string"},
            "status": {
                "type": "string",
                "enum": ["accepted", "duplicate", "followup", "quarantined"],
                "description": "followup: added to the complaint of tracking_id (only in "
                "answer to a follow-up).",
            },
            "status_url": {"type": "string"},
            "followup_code": {
                "type": "string",
                "description": "What adds to this complaint later (POST .../followups), with "
                "tracking_id. Only its holder is told it: keep it like a password.",
            },
        },
    }
    status = {
        "type": "object",
        "required": ["tracking_id", "status", "received_at", "kind"],
        "properties": {
            "tracking_id": {"type": "string"},
            "status": {"type": "string"},
            "received_at": {"type": "string", "format": "date-time"},
            "kind": {"type": ["string", "null"]},
            "updated_at": {
                "type": ["string", "null"],
                "format": "date-time",
                "description": "When the routing core last changed the status; null while it is"
                " as received.",
            },
            "agency": {
                "type": ["string", "null"],
                "description": "The agency handling the complaint, when one is named.",
            },
        },
    }
    problem = {
        "type": "object",
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer", "description": "The HTTP status of the answer."},
            "detail": {"type": "string"},
            "field": {
                "type": "string",
                "description": "The multipart part or file at fault, when it is one.",
            },
        },
    }
    service = {
        "type": "object",
        "required": ["service_code", "service_name", "metadata", "type"],
        "properties": {
            "service_code": {"type": "string"},
            "service_name": {"type": "string"},
            "description": {"type": "string"},
            "metadata": {"type": "boolean"},
            "type": {"type": "string", "enum": ["realtime", "batch", "blackbox"]},
            "keywords": {"type": "string"},
            "group": {"type": "string"},
        },
    }
    service_request = {
        "type": "object",
        "required": ["service_request_id", "status", "service_code", "requested_datetime"],
        "properties": {
            "service_request_id": {"type": "string"},
            "status": {"type": "string", "enum": ["open", "closed"]},
            "status_notes": {"type": ["string", "null"]},
            "service_name": {"type": "string"},
            "service_code": {"type": "string"},
            "description": {"type": ["string", "null"]},
            "agency_responsible": {"type": ["string", "null"]},
            "requested_datetime": {"type": "string", "format": "date-time"},
            "updated_datetime": {"type": ["string", "null"], "format": "date-time"},
            "service_notice": {"type": ["string", "null"]},
            "expected_datetime": {"type": ["string", "null"], "format": "date-time"},
            "address": {"type": ["string", "null"]},
            "address_id": {"type": ["string", "null"]},
            "zipcode": {"type": ["string", "null"]},
            "lat": {"type": ["number", "null"]},
            "long": {"type": ["number", "null"]},
            "media_url": {"type": ["string", "null"]},
        },
    }
    form = {
        "type": "object",
        "properties": {
            **{
                k: {"type": "string"}
                for k in (
                    "csrf", "judul", "isi", "klasifikasi", "tanggal", "lokasi", "instansi",
                    "nama", "nik", "hp", "email", "anonim", "rahasia",
                )
            },
            "lampiran": {"type": "array", "items": {"type": "string", "format": "binary"}},
        },
    }
    lang_q = {
        "name": "lang", "in": "query", "required": False,
        "schema": {"type": "string", "enum": ["id", "en"]},
    }
    accept_lang = {
        "name": "Accept-Language", "in": "header", "required": False,
        "schema": {"type": "string"},
        "description": "`en` for English problem documents; Indonesian otherwise.",
    }
    jurisdiction = {
        "name": "jurisdiction_id", "in": "query", "required": False, "schema": {"type": "string"}
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "LAPOR! web channel",
            "version": "1.0.0",
            "description": (
                "The citizen form, the status page, the JSON complaint API and Open311 GeoReport "
                "v2 of the LAPOR! intake gateway. Errors of /api/v1 are RFC 9457 problem "
                "documents (Indonesian; English with Accept-Language: en), also what the "
                "server answers by itself there: 404 for a path that does not exist, 405 (with "
                "Allow) for a method a resource does not take, 413 for a body over the size "
                "limit, 400 for a body that cannot be read, 500 for a failure of the server. "
                "Errors of /open311/v2 are the GeoReport v2 error list in the format the "
                "path's extension names (XML without one): 404 for what does not exist, 400 "
                "for any other refusal, 403 for a missing or wrong api_key, 500 for a failure "
                "of the server. The pages' 500 is the server's own page. 429 and 503 carry "
                "Retry-After."
            ),
        },
        "paths": {
            "/": {
                "get": {
                    "summary": "The citizen form",
                    "parameters": [lang_q],
                    "responses": {"200": HTML, "500": HTML_SERVER_ERROR},
                },
                "post": {
                    "summary": "Submit the citizen form (needs the CSRF token and cookie)",
                    "parameters": [lang_q],
                    "requestBody": {
                        "content": {"multipart/form-data": {"schema": form}}
                    },
                    "responses": {
                        "200": HTML, "400": HTML, "403": HTML, "413": HTML, "415": HTML,
                        "422": HTML, "429": HTML_RETRY, "500": HTML_SERVER_ERROR,
                        "503": HTML_RETRY,
                    },
                },
            },
            "/cek": {
                "get": {
                    "summary": "Status check page",
                    "parameters": [
                        lang_q,
                        {"name": "id", "in": "query", "required": False,
                         "schema": {"type": "string"}},
                    ],
                    "responses": {"200": HTML, "404": HTML, "500": HTML_SERVER_ERROR,
                                  "503": HTML_RETRY},
                }
            },
            "/api/v1/complaints": {
                "post": {
                    "summary": "Submit a complaint",
                    "parameters": [
                        {
                            "name": "Idempotency-Key", "in": "header", "required": False,
                            "schema": {"type": "string", "minLength": 1, "maxLength": 200},
                            "description": "The same key with the same body (and the same "
                            "attachments) returns the first receipt; with a different body or "
                            "other attachments, 422. A key is the caller's, not global: it is "
                            "scoped by the reporter's identity in the body (NIK, phone, e-mail, "
                            "canonical), or by the client's address when the body names none, "
                            "so two applications that pick the same key never meet; an "
                            "anonymous retry from another address files a new complaint. "
                            "A UTF-8 byte order mark before the JSON (allowed, and skipped) "
                            "does not make it another body. Use a random key (a UUID): anyone "
                            "who types the same identity can try keys, and a 422 tells them a "
                            "key was used. Over a rate limit, only the same key with the same "
                            "body and attachments is answered its receipt; anything else 429.",
                        },
                        accept_lang,
                    ],
                    **_posted("complaint", "Complaint", "Accepted after the commit", {
                        "400": PROBLEM, "413": PROBLEM, "415": PROBLEM, "422": PROBLEM,
                        "429": PROBLEM_RETRY, "500": PROBLEM, "503": PROBLEM_RETRY,
                    }),
                }
            },
            "/tanda-terima": {
                "get": {
                    "summary": "The switched receipt's address opened again: the status page "
                    "(a receipt cannot be fetched)",
                    "parameters": [lang_q],
                    "responses": {"200": HTML, "500": HTML_SERVER_ERROR},
                },
                "post": {
                    "summary": "The form's receipt again, in the language of ?lang= (the "
                    "receipt's language switch: the CSRF token the form was sent with, and its "
                    "cookie); the status page when the token is no longer valid",
                    "parameters": [lang_q],
                    "requestBody": {"content": {"application/x-www-form-urlencoded": {
                        "schema": {"type": "object", "properties": {
                            "csrf": {"type": "string"}}}}}},
                    "responses": {"200": HTML, "403": HTML, "429": HTML_RETRY,
                                  "500": HTML_SERVER_ERROR, "503": HTML_RETRY},
                },
            },
            "/tambah": {
                "get": {
                    "summary": "The page that adds information to a report",
                    "parameters": [
                        lang_q,
                        {"name": "id", "in": "query", "required": False,
                         "schema": {"type": "string"}},
                    ],
                    "responses": {"200": HTML, "500": HTML_SERVER_ERROR},
                },
                "post": {
                    "summary": "Add information to a report (its tracking ID and follow-up "
                    "code; needs the CSRF token and cookie)",
                    "parameters": [lang_q],
                    "requestBody": {"content": {"application/x-www-form-urlencoded": {
                        "schema": {"type": "object", "properties": {
                            k: {"type": "string"}
                            for k in ("csrf", "nomor", "kode", "tambahan", "rahasia")
                        }}}}},
                    "responses": {
                        "200": HTML, "400": HTML, "403": HTML, "409": HTML, "413": HTML,
                        "422": HTML, "429": HTML_RETRY, "500": HTML_SERVER_ERROR,
                        "503": HTML_RETRY,
                    },
                },
            },
            "/api/v1/complaints/{tracking_id}/followups": {
                "post": {
                    "summary": "Add information to a complaint",
                    "description": "From whoever holds its tracking ID and follow-up code "
                    "(the 202 of POST /api/v1/complaints and the web form's receipt give "
                    "both): a followup event of that complaint for the routing core. An "
                    "unknown ID and a wrong code both answer 404, and count against the "
                    "rate limits. 409 (with Retry-After) while the complaint is not yet filed "
                    "(a report still in quarantine). An Idempotency-Key is scoped by the "
                    "complaint followed: the same key and body answer the first receipt, "
                    "another body 422.",
                    "parameters": [
                        {"name": "tracking_id", "in": "path", "required": True,
                         "schema": {"type": "string"}},
                        {"name": "Idempotency-Key", "in": "header", "required": False,
                         "schema": {"type": "string", "minLength": 1, "maxLength": 200}},
                        accept_lang,
                    ],
                    **_posted("followup", "Followup", "Added after the commit", {
                        "400": PROBLEM, "404": PROBLEM, "409": PROBLEM_RETRY, "413": PROBLEM,
                        "415": PROBLEM, "422": PROBLEM, "429": PROBLEM_RETRY, "500": PROBLEM,
                        "503": PROBLEM_RETRY,
                    }),
                }
            },
            "/api/v1/complaints/{tracking_id}": {
                "get": {
                    "summary": "Status and dates of a complaint (no personal data)",
                    "parameters": [
                        {"name": "tracking_id", "in": "path", "required": True,
                         "schema": {"type": "string"}},
                        accept_lang,
                    ],
                    "responses": {
                        "200": {
                            "description": "Found",
                            "content": {"application/json": {
                                "schema": {"$ref": "#/components/schemas/Status"}}},
                        },
                        "404": PROBLEM, "500": PROBLEM, "503": PROBLEM_RETRY,
                    },
                }
            },
            "/api/v1/openapi.json": {
                "get": {
                    "summary": "This document",
                    "responses": {"200": {"description": "OpenAPI 3.1",
                                          "content": {"application/json": {}}},
                                  "500": PROBLEM},
                }
            },
            **_open311_paths(jurisdiction),
        },
        "components": {
            "schemas": {
                "Reporter": reporter,
                "Complaint": complaint,
                "Followup": followup,
                "Receipt": receipt,
                "Status": status,
                "Problem": problem,
                "Service": service,
                "ServiceRequest": service_request,
                **_open311_schemas(),
            },
            "responses": {
                "Problem": {
                    "description": "RFC 9457 problem",
                    "content": {"application/problem+json": {
                        "schema": {"$ref": "#/components/schemas/Problem"}}},
                },
                "ProblemRetry": {
                    "description": "RFC 9457 problem; send again after Retry-After seconds",
                    "headers": RETRY_AFTER,
                    "content": {"application/problem+json": {
                        "schema": {"$ref": "#/components/schemas/Problem"}}},
                },
                "Open311ErrorRetry": {
                    "description": "GeoReport v2 errors; send again after Retry-After seconds",
                    "headers": RETRY_AFTER,
                    "content": {"application/json": {"schema": {
                        "$ref": "#/components/schemas/Open311Errors"}}},
                },
                "Open311ErrorXmlRetry": {
                    "description": "GeoReport v2 errors (XML); send again after Retry-After "
                    "seconds",
                    "headers": RETRY_AFTER,
                    "content": {"text/xml": {"schema": {"type": "string"}}},
                },
                "Open311Error": {
                    "description": "GeoReport v2 errors",
                    "content": {"application/json": {"schema": {
                        "$ref": "#/components/schemas/Open311Errors"}}},
                },
                "ServerErrorPage": {
                    "description": "The server failed: its own page, HTML when the client "
                    "accepts it, else plain text",
                    "content": {"text/html": {"schema": {"type": "string"}},
                                "text/plain": {"schema": {"type": "string"}}},
                },
                "Open311ErrorXml": {
                    "description": "GeoReport v2 errors: <errors><error><code/><description/>",
                    "content": {"text/xml": {"schema": {"type": "string"}}},
                },
            },
        },
    }


def render() -> str:
    """The document as committed."""
    return json.dumps(document(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    TARGET.write_text(render(), encoding="utf-8")
    print(f"wrote {TARGET.name}")
