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
O311_ERROR = {"$ref": "#/components/responses/Open311Error"}
HTML = {"description": "HTML page", "content": {"text/html": {"schema": {"type": "string"}}}}


def _o311_list(ref: str) -> dict[str, Any]:
    return {
        "description": "OK",
        "content": {
            "application/json": {"schema": {"type": "array", "items": {"$ref": ref}}}
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
    complaint = {
        "type": "object",
        "additionalProperties": False,
        "required": ["body"],
        "properties": {
            "title": {"type": "string", "maxLength": 300},
            "body": {"type": "string", "minLength": 1, "maxLength": 20000},
            "kind": {"type": "string", "enum": ["pengaduan", "aspirasi", "informasi"]},
            "reporter": {"$ref": "#/components/schemas/Reporter"},
            "privacy": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "anonymous": {"type": "boolean"},
                    "confidential": {"type": "boolean"},
                },
            },
            "location": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "text": {"type": "string", "maxLength": 500},
                    "latitude": {"type": "number", "minimum": -90, "maximum": 90},
                    "longitude": {"type": "number", "minimum": -180, "maximum": 180},
                },
            },
            "agency": {"type": "string", "maxLength": 255},
        },
    }
    receipt = {
        "type": "object",
        "required": ["tracking_id", "status", "status_url"],
        "properties": {
            "tracking_id": {"type": "string"},
            "status": {"type": "string", "enum": ["accepted", "duplicate", "quarantined"]},
            "status_url": {"type": "string"},
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
        },
    }
    problem = {
        "type": "object",
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
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
            "address": {"type": ["string", "null"]},
            "lat": {"type": ["number", "null"]},
            "long": {"type": ["number", "null"]},
        },
    }
    o311_post = {
        "type": "object",
        "required": ["api_key", "service_code"],
        "properties": {
            k: {"type": "string"}
            for k in (
                "api_key", "jurisdiction_id", "service_code", "lat", "long", "address_string",
                "email", "first_name", "last_name", "phone", "description", "media_url",
            )
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
                "documents (Indonesian; English with Accept-Language: en)."
            ),
        },
        "paths": {
            "/": {
                "get": {
                    "summary": "The citizen form",
                    "parameters": [lang_q],
                    "responses": {"200": HTML},
                },
                "post": {
                    "summary": "Submit the citizen form (needs the CSRF token and cookie)",
                    "parameters": [lang_q],
                    "requestBody": {
                        "content": {"multipart/form-data": {"schema": form}}
                    },
                    "responses": {
                        "200": HTML, "400": HTML, "403": HTML, "413": HTML, "415": HTML,
                        "422": HTML, "429": HTML, "503": HTML,
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
                    "responses": {"200": HTML, "404": HTML, "503": HTML},
                }
            },
            "/api/v1/complaints": {
                "post": {
                    "summary": "Submit a complaint",
                    "parameters": [
                        {
                            "name": "Idempotency-Key", "in": "header", "required": False,
                            "schema": {"type": "string", "minLength": 1, "maxLength": 200},
                            "description": "The same key with the same body returns the first "
                            "receipt; with a different body, 422.",
                        },
                        accept_lang,
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/Complaint"}
                            },
                            "multipart/form-data": {
                                "schema": {
                                    "type": "object",
                                    "required": ["complaint"],
                                    "properties": {
                                        "complaint": {"type": "string",
                                                      "contentMediaType": "application/json"},
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
                            "description": "Accepted after the commit",
                            "content": {"application/json": {
                                "schema": {"$ref": "#/components/schemas/Receipt"}}},
                        },
                        "400": PROBLEM, "413": PROBLEM, "415": PROBLEM, "422": PROBLEM,
                        "429": PROBLEM, "503": PROBLEM,
                    },
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
                        "404": PROBLEM, "503": PROBLEM,
                    },
                }
            },
            "/api/v1/openapi.json": {
                "get": {
                    "summary": "This document",
                    "responses": {"200": {"description": "OpenAPI 3.1",
                                          "content": {"application/json": {}}}},
                }
            },
            "/open311/v2/services.json": {
                "get": {
                    "summary": "GeoReport v2 service list",
                    "parameters": [jurisdiction],
                    "responses": {"200": _o311_list("#/components/schemas/Service"),
                                  "404": O311_ERROR},
                }
            },
            "/open311/v2/services.xml": {
                "get": {
                    "summary": "GeoReport v2 service list (XML)",
                    "parameters": [jurisdiction],
                    "responses": {
                        "200": {"description": "OK",
                                "content": {"text/xml": {"schema": {"type": "string"}}}},
                        "404": O311_ERROR,
                    },
                }
            },
            "/open311/v2/requests.json": {
                "get": {
                    "summary": "GeoReport v2 service requests",
                    "parameters": [
                        jurisdiction,
                        *(
                            {"name": n, "in": "query", "required": False,
                             "schema": {"type": "string"}}
                            for n in ("service_request_id", "service_code", "start_date",
                                      "end_date", "status")
                        ),
                    ],
                    "responses": {"200": _o311_list("#/components/schemas/ServiceRequest"),
                                  "400": O311_ERROR, "404": O311_ERROR},
                },
                "post": {
                    "summary": "Create a GeoReport v2 service request",
                    "requestBody": {
                        "required": True,
                        "content": {"application/x-www-form-urlencoded": {"schema": o311_post}},
                    },
                    "responses": {
                        "201": {"description": "Created",
                                "content": {"application/json": {"schema": {"type": "array"}}}},
                        "400": O311_ERROR, "403": O311_ERROR, "404": O311_ERROR,
                        "429": O311_ERROR, "503": O311_ERROR,
                    },
                },
            },
            "/open311/v2/requests/{service_request_id}.json": {
                "get": {
                    "summary": "One GeoReport v2 service request",
                    "parameters": [{"name": "service_request_id", "in": "path",
                                    "required": True, "schema": {"type": "string"}}],
                    "responses": {"200": _o311_list("#/components/schemas/ServiceRequest"),
                                  "404": O311_ERROR},
                }
            },
            "/open311/v2/tokens/{token}.json": {
                "get": {
                    "summary": "The service request id of a token",
                    "parameters": [{"name": "token", "in": "path", "required": True,
                                    "schema": {"type": "string"}}],
                    "responses": {"200": {"description": "OK",
                                          "content": {"application/json": {}}},
                                  "404": O311_ERROR},
                }
            },
        },
        "components": {
            "schemas": {
                "Reporter": reporter,
                "Complaint": complaint,
                "Receipt": receipt,
                "Status": status,
                "Problem": problem,
                "Service": service,
                "ServiceRequest": service_request,
            },
            "responses": {
                "Problem": {
                    "description": "RFC 9457 problem",
                    "content": {"application/problem+json": {
                        "schema": {"$ref": "#/components/schemas/Problem"}}},
                },
                "Open311Error": {
                    "description": "GeoReport v2 errors",
                    "content": {"application/json": {"schema": {"type": "array", "items": {
                        "type": "object", "required": ["code", "description"],
                        "properties": {"code": {"type": "integer"},
                                       "description": {"type": "string"}}}}}},
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
