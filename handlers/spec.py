"""`/api/openapi.json`, `/api/asyncapi.json` and `/api/docs`: the API's own descriptions, served by it.

The documents are generated once per process (the schemas do not change while it runs) and kept as
serialized bytes, so a request costs a write, not a rebuild. The reference page is HTML rendered on
the server from the same two documents: no script at all, one stylesheet from `/app/`, so it lives
within the web app's Content-Security-Policy unchanged.
"""

from __future__ import annotations

import functools
import html
import json
import os
import re

from tornado import template

from handlers.base import APIHandler
from core.limits import CLOSE_CODES, MAX_FRAME_BYTES, MAX_SUBSCRIPTIONS, PING_INTERVAL_SECONDS
from handlers.web import CONTENT_SECURITY_POLICY
from schemas.asyncapi import build_asyncapi
from schemas.openapi import build_openapi

TEMPLATES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates")
LIMITS = (f"Frames up to {MAX_FRAME_BYTES} bytes; at most {MAX_SUBSCRIPTIONS} subscriptions per socket. The "
          f"server pings every {PING_INTERVAL_SECONDS} s and drops peers that do not answer.")


@functools.cache
def openapi_document() -> dict:
    return build_openapi()


@functools.cache
def asyncapi_document() -> dict:
    return build_asyncapi(CLOSE_CODES, LIMITS)


@functools.cache
def _serialized(name: str) -> bytes:
    document = openapi_document() if name == "openapi" else asyncapi_document()
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


@functools.cache
def reference_page() -> bytes:
    loader = template.Loader(TEMPLATES, autoescape="xhtml_escape")
    return loader.load("api_docs.html").generate(
        openapi=openapi_document(), asyncapi=asyncapi_document(), type_of=type_of, constraints_of=constraints_of,
        properties_of=properties_of, example_json=example_json, anchor=anchor, prose=prose)


class OpenApiHandler(APIHandler):
    async def get(self) -> None:
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(_serialized("openapi"))


class AsyncApiHandler(APIHandler):
    async def get(self) -> None:
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(_serialized("asyncapi"))


class ApiDocsHandler(APIHandler):
    async def get(self) -> None:
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Cache-Control", "no-cache")
        self.finish(reference_page())


# -- helpers the page template uses to read JSON Schema ---------------------------------------------
def prose(text: str) -> str:
    """The descriptions' little Markdown (`code` and **bold**) as escaped HTML."""
    parts = re.split(r"(`[^`]+`|\*\*[^*]+\*\*)", text or "")
    rendered = []
    for part in parts:
        if part.startswith("`") and part.endswith("`") and len(part) > 1:
            rendered.append(f"<code>{html.escape(part[1:-1])}</code>")
        elif part.startswith("**") and part.endswith("**") and len(part) > 3:
            rendered.append(f"<strong>{html.escape(part[2:-2])}</strong>")
        else:
            rendered.append(html.escape(part))
    return "".join(rendered)


def anchor(kind: str, name: str) -> str:
    return f"{kind}-" + "".join(c if c.isalnum() else "-" for c in name)


def type_of(schema: dict) -> str:
    """A JSON Schema as a few words: `Doctor`, `array of Appointment`, `string (date-time) or null`."""
    if not schema:
        return "any"
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    for combinator, word in (("anyOf", " or "), ("oneOf", " or "), ("allOf", " and ")):
        if combinator in schema:
            return word.join(type_of(s) for s in schema[combinator])
    kinds = schema.get("type", "any")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    words = []
    for kind in kinds:
        if kind == "array":
            words.append(f"array of {type_of(schema.get('items', {}))}")
        elif kind == "string" and "format" in schema:
            words.append(f"string ({schema['format']})")
        else:
            words.append(kind)
    return " or ".join(words)


def constraints_of(schema: dict) -> str:
    parts = []
    if "const" in schema:
        parts.append(f"always {json.dumps(schema['const'])}")
    if "enum" in schema:
        parts.append("one of " + ", ".join(json.dumps(v) for v in schema["enum"]))
    for key, words in (("minimum", "≥"), ("maximum", "≤"), ("minLength", "length ≥"), ("maxLength", "length ≤"),
                       ("maxItems", "items ≤"), ("pattern", "matches")):
        if key in schema:
            parts.append(f"{words} {schema[key]}")
    if "default" in schema and schema["default"] is not None:
        parts.append(f"default {json.dumps(schema['default'])}")
    if schema.get("description"):
        parts.append(schema["description"])
    return "; ".join(parts)


def properties_of(schema: dict) -> list[tuple[str, dict, bool]]:
    required = set(schema.get("required", ()))
    return [(name, prop, name in required) for name, prop in schema.get("properties", {}).items()]


def example_json(value) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)
