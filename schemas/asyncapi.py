"""The AsyncAPI 3 document of `/ws`, generated from the same marshmallow schemas as the REST answers.

Every frame is a JSON object: the client sends `{"type", ...}`, the server `{"event", "data"?}`. The
message table below names each frame and the schema of its fields; the envelopes are built here so
that `event` and `type` are exact constants a client can switch on. The close codes are passed in
by the caller (they belong to the socket handler and the session code, which this layer cannot import).
"""

from __future__ import annotations

from schemas import responses as r
from schemas.openapi import API_VERSION, TITLE, json_schemas, schema_name

ASYNCAPI_VERSION = "3.0.0"

# event → (payload schema or None, when it is sent)
SERVER_MESSAGES: dict[str, tuple[type | None, str]] = {
    "queue:state": ((r.StaffQueueStateSchema, r.PublicQueueStateSchema),
                    "The doctor's queue, on subscribing and whenever it changes: names only for that doctor "
                    "and admins (the same shape and redaction as GET /api/queue/doctor/{id})."),
    "queue:update": (r.QueueUpdateSchema, "An appointment's place, on subscribing and whenever its status, "
                                          "booked time (`date`, a reschedule), position, ETA or the doctor's "
                                          "lateness changes."),
    "turn:now": (r.TurnNowSchema, "The appointment went into consultation: join the call."),
    "turn:soon": (r.TurnSoonSchema, "Once, when the appointment first becomes next or its earliestStartAt (be ready by) comes within SOON_MINUTES."),
    "doctor:status": (r.DoctorStatusEventSchema, "The doctor's lateness, consultation length or break changed."),
    "auth:ok": (r.AuthOkSchema, "An `auth` frame was accepted: the socket now lives until `expiresAt`."),
    "error": (r.FrameErrorSchema, "A bad frame or a forbidden subscription; the socket stays open."),
    "pong": (None, "The answer to `ping` (no `data`)."),
}
# message name → (schema, what it does)
CLIENT_MESSAGES: dict[str, tuple[type, str]] = {
    "queue:subscribe": (r.SubscribeFrameSchema, "Join the doctor's and/or the appointment's room; answered at "
                                                "once with `queue:state` and/or `queue:update` (and `turn:now` "
                                                "if the appointment is already in consultation)."),
    "queue:unsubscribe": (r.UnsubscribeFrameSchema, "Leave those rooms."),
    "ping": (r.PingFrameSchema, "Answered with `pong`."),
    "auth": (r.AuthFrameSchema, "Swap in a fresh access token of the same user before the old one expires; "
                                "answered with `auth:ok`, or `error` (the old expiry stands)."),
}


def message_key(name: str, direction: str) -> str:
    """`queue:state` → `serverQueueState`: a component name AsyncAPI accepts."""
    words = name.replace(":", " ").split()
    return direction + "".join(w[:1].upper() + w[1:] for w in words)


def _ref(schema: type) -> dict:
    return {"$ref": f"#/components/schemas/{schema_name(schema)}"}


def server_envelope(event: str, payload) -> dict:
    envelope = {"type": "object", "properties": {"event": {"type": "string", "const": event}},
                "required": ["event"], "additionalProperties": False}
    if payload is not None:
        data = {"anyOf": [_ref(s) for s in payload]} if isinstance(payload, tuple) else _ref(payload)
        envelope["properties"]["data"] = data
        envelope["required"].append("data")
    return envelope


def build_asyncapi(close_codes: dict[int, str], limits: str) -> dict:
    payload_schemas = [s for s, _ in CLIENT_MESSAGES.values()]
    for payload, _ in SERVER_MESSAGES.values():
        payload_schemas.extend(payload if isinstance(payload, tuple) else [payload] if payload else [])
    messages, channel_messages = {}, {}
    for name, (schema, words) in CLIENT_MESSAGES.items():
        key = message_key(name, "client")
        messages[key] = {"name": name, "title": f"{name} (client → server)", "summary": words,
                         "contentType": "application/json", "payload": _ref(schema)}
    for name, (payload, words) in SERVER_MESSAGES.items():
        key = message_key(name, "server")
        messages[key] = {"name": name, "title": f"{name} (server → client)", "summary": words,
                         "contentType": "application/json", "payload": server_envelope(name, payload)}
    for key in messages:
        channel_messages[key] = {"$ref": f"#/components/messages/{key}"}
    closes = "\n".join(f"- `{code}`: {words}" for code, words in sorted(close_codes.items()))
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {"title": f"{TITLE} live queue", "version": API_VERSION,
                 "description": "One WebSocket per client at `/ws`. Authenticate on the upgrade with "
                                "`Authorization: Bearer <JWT>` or `?token=<JWT>` (browsers); a missing or bad "
                                "token is refused with 401 before the upgrade, a disallowed Origin with 403. "
                                f"{limits}\n\nClose codes:\n{closes}\n\n"
                                "The same messages are spoken over Socket.IO (v5, Engine.IO v4; WebSocket and "
                                "long-polling) at `/socket.io/` (server `socketio`), for clients written for the "
                                "original design: each message's `event` is the Socket.IO event name and its "
                                "`data` the event's one argument; a client message's `type` is the event it emits "
                                "(`queue:subscribe`, `queue:unsubscribe`, `auth`) with the other fields as its "
                                "argument. The token goes in the connection's `auth: {token}`, `?token=` or the "
                                "`Authorization` header; a missing or bad token, a disallowed Origin or a full "
                                "per-user cap refuse the connection with a `connect_error` whose data is `{code, "
                                "message}`. Where `/ws` closes with a code, a Socket.IO client gets an `error` "
                                "event whose `code` says why (`session_ended`, `token_expired`, `account_disabled`, "
                                "`shutdown`) and is disconnected."},
        "defaultContentType": "application/json",
        "servers": {"this": {"host": "localhost:5000", "protocol": "ws",
                             "description": "The server that serves this document (wss behind TLS).",
                             "security": [{"$ref": "#/components/securitySchemes/bearer"},
                                          {"$ref": "#/components/securitySchemes/queryToken"}]},
                    "socketio": {"host": "localhost:5000", "pathname": "/socket.io/", "protocol": "socketio",
                                 "protocolVersion": "5",
                                 "description": "The same messages over Socket.IO, for the original design's "
                                                "clients (see the description above).",
                                 "security": [{"$ref": "#/components/securitySchemes/bearer"},
                                              {"$ref": "#/components/securitySchemes/queryToken"}]}},
        "channels": {"queue": {"address": "/ws", "title": "Live queue",
                               "description": "Rooms: `doctor:{id}` (anyone signed in) and `appointment:{id}` "
                                              "(its patient, its doctor, admins).",
                               "messages": channel_messages}},
        "operations": {
            **{f"send{key[len('client'):]}": {"action": "send", "channel": {"$ref": "#/channels/queue"},
                                              "summary": messages[key]["summary"],
                                              "messages": [{"$ref": f"#/channels/queue/messages/{key}"}]}
               for key in messages if key.startswith("client")},
            **{f"receive{key[len('server'):]}": {"action": "receive", "channel": {"$ref": "#/channels/queue"},
                                                 "summary": messages[key]["summary"],
                                                 "messages": [{"$ref": f"#/channels/queue/messages/{key}"}]}
               for key in messages if key.startswith("server")},
        },
        "components": {
            "messages": messages,
            "schemas": json_schemas(*payload_schemas),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                           "description": "The access token, on the upgrade request."},
                "queryToken": {"type": "httpApiKey", "name": "token", "in": "query",
                               "description": "The access token as `?token=` (browsers cannot set headers)."}},
        },
        "x-close-codes": [{"code": code, "meaning": words} for code, words in sorted(close_codes.items())],
    }
