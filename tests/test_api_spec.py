"""The API descriptions against the code: the routes, the OpenAPI and AsyncAPI standards, the examples.

Whether a real server keeps to them is checked elsewhere: every REST answer by schemathesis
(`test_api_contract.py`), every socket frame by `test_api_payloads.py`.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import jsonschema
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate as validate_openapi
from tornado import web

from handlers.spec import asyncapi_document, openapi_document
from server.app import ID, ROUTES
from tests.conftest import start_harness, stop_harness

ASYNCAPI_SCHEMA = Path(__file__).parent / "vendor" / "asyncapi-3.0.0.schema.json"
METHODS = ("get", "post", "put", "patch", "delete")


def implemented_methods(handler: type) -> set[str]:
    """The methods a handler class answers (CORS preflight `options` aside: no route documents it)."""
    return {m for m in METHODS if getattr(handler, m, None) is not getattr(web.RequestHandler, m)}


def route_key(pattern: str) -> str:
    return pattern.replace(ID, "{}").replace("(.*)", "{}")


def spec_key(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path)


def test_every_route_and_method_is_described_and_nothing_else():
    routed = {(route_key(pattern), method) for pattern, handler in ROUTES for method in implemented_methods(handler)}
    described = {(spec_key(path), method) for path, operations in openapi_document()["paths"].items()
                 for method in operations if method in METHODS}
    assert routed - described == set(), "routes without a description"
    assert described - routed == set(), "described operations the server does not have"
    assert len(routed) > 30


def test_the_openapi_document_is_valid_openapi_3_1():
    document = openapi_document()
    assert document["openapi"].startswith("3.1")
    validate_openapi(copy.deepcopy(document))


def test_the_asyncapi_document_is_valid_asyncapi_3():
    schema = json.loads(ASYNCAPI_SCHEMA.read_text())
    validator = jsonschema.Draft7Validator(schema)
    document = json.loads(json.dumps(asyncapi_document()))
    assert [e.message for e in validator.iter_errors(document)] == []
    broken = copy.deepcopy(document)
    broken["channels"]["queue"]["address"] = 5
    assert list(validator.iter_errors(broken)), "the vendored schema must be able to refuse a document"


def test_every_operation_documents_its_auth_and_the_error_shape():
    document = openapi_document()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if method not in METHODS:
                continue
            assert "security" in operation, (method, path)
            for status, answer in operation["responses"].items():
                if int(status) >= 400:
                    schema = answer["content"]["application/json"]["schema"]
                    expected = "ValidationError" if status == "400" else "Error"
                    assert schema == {"$ref": f"#/components/schemas/{expected}"}, (method, path, status)
    metrics = document["paths"]["/metrics"]["get"]
    assert {"metricsToken": []} in metrics["security"]
    booking = document["paths"]["/api/appointments"]["post"]
    assert any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in booking["parameters"])


def _examples(document: dict):
    """(where, schema, example) for every example in the document."""
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if method not in METHODS:
                continue
            media = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
            if "example" in media:
                yield f"{method} {path} request", media["schema"], media["example"]
            for status, answer in operation["responses"].items():
                for media in answer.get("content", {}).values():
                    if "example" in media:
                        yield f"{method} {path} {status}", media["schema"], media["example"]


def example_errors(document: dict) -> list[str]:
    errors = []
    for where, schema, example in _examples(document):
        validator = OAS31Validator({**schema, "components": document["components"]},
                                   format_checker=OAS31Validator.FORMAT_CHECKER)
        errors.extend(f"{where}: {e.message}" for e in validator.iter_errors(example))
    return errors


def test_every_documented_example_matches_its_schema():
    document = openapi_document()
    assert len(list(_examples(document))) >= 15
    assert example_errors(document) == []


def test_a_wrong_example_would_be_caught():
    document = copy.deepcopy(openapi_document())
    media = document["paths"]["/api/doctors/{doctorId}"]["get"]["responses"]["200"]["content"]["application/json"]
    del media["example"]["createdAt"]
    media["example"]["extra"] = True
    errors = example_errors(document)
    assert any("createdAt" in e for e in errors) and any("extra" in e for e in errors)


def test_socket_messages_cover_every_frame_type_the_handler_reads():
    from live.ws import FRAME_KEYS
    messages = asyncapi_document()["components"]["messages"]
    client = {m["name"] for k, m in messages.items() if k.startswith("client")}
    assert client == {"queue:subscribe", "queue:unsubscribe", "ping", "auth"}
    schemas = asyncapi_document()["components"]["schemas"]
    frame_fields = set().union(*(set(schemas[name]["properties"])
                                 for name in ("SubscribeFrame", "UnsubscribeFrame", "PingFrame", "AuthFrame")))
    assert frame_fields == FRAME_KEYS
    codes = {c["code"] for c in asyncapi_document()["x-close-codes"]}
    assert {1001, 1009, 1013, 4001, 4003} <= codes


async def test_the_documents_and_the_reference_are_served():
    harness = await start_harness()
    try:
        openapi = await harness.api.get("/api/openapi.json")
        assert openapi.status == 200 and openapi.body == json.loads(json.dumps(openapi_document()))
        asyncapi = await harness.api.get("/api/asyncapi.json")
        assert asyncapi.status == 200 and asyncapi.body["asyncapi"] == "3.0.0"
        docs = await harness.api.get("/api/docs")
        assert docs.status == 200
        assert docs.headers["Content-Type"].startswith("text/html")
        policy = docs.headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "default-src 'self'" in policy
        assert "<script" not in docs.text and "style=" not in docs.text and "http://" not in docs.text.replace(
            "http://www.w3.org", "")
        for operation in ("POST /api/appointments", "GET /api/queue/doctor/{doctorId}", "PATCH /api/admin/users"):
            assert operation in docs.text
        for frame in ("queue:state", "turn:now", "queue:subscribe", "4001"):
            assert frame in docs.text
        assert "&lt;" in docs.text and "<access token>" not in docs.text  # text is escaped
        stylesheet = await harness.api.get("/app/api-docs.css")
        assert stylesheet.status == 200 and stylesheet.headers["Content-Type"].startswith("text/css")
    finally:
        await stop_harness(harness)


def test_the_reference_page_escapes_what_it_renders():
    from handlers.spec import prose
    assert prose("`<script>` and **<b>** and <img src=x>") == (
        "<code>&lt;script&gt;</code> and <strong>&lt;b&gt;</strong> and &lt;img src=x&gt;")
