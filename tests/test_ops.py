"""Operations: metrics that move when they should, the probes, 503 on a lost store, and logs that
carry what an operator needs (request id, route, status, duration, user) and never a secret."""

from __future__ import annotations

import asyncio
import gc
import io
import json
import logging
import re
from contextlib import contextmanager
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from pymongo.errors import ServerSelectionTimeoutError

import infra.store
from core import metrics
from server.app import GC_YOUNG_THRESHOLD, tune_garbage_collector
from infra.logs import JsonFormatter
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, eventually, start_harness, stop_harness

DRIVER_MESSAGE = "No servers found yet, Timeout: 30s, Topology Description: <secret-driver-detail>"


def sample(name: str, **labels) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def scraped(text: str) -> dict[tuple[str, frozenset], float]:
    values = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            values[(s.name, frozenset(s.labels.items()))] = s.value
    return values


# -- metrics ---------------------------------------------------------------------------------------

async def test_request_counted_under_its_route_pattern_not_its_raw_path(harness):
    doctor = await harness.create_doctor()
    labels = dict(method="GET", route="/api/doctors/{id}", status="200")
    before = sample("medpharma_http_requests_total", **labels)
    before_count = sample("medpharma_http_request_duration_seconds_count", method="GET", route="/api/doctors/{id}")
    before_missing = sample("medpharma_http_requests_total", method="GET", route="unmatched", status="404")

    for _ in range(2):
        assert (await harness.api.get(f"/api/doctors/{doctor['id']}")).status == 200
    assert (await harness.api.get("/no/such/thing/here")).status == 404

    assert sample("medpharma_http_requests_total", **labels) == before + 2
    assert sample("medpharma_http_request_duration_seconds_count",
                  method="GET", route="/api/doctors/{id}") == before_count + 2
    assert sample("medpharma_http_requests_total", method="GET", route="unmatched", status="404") \
        == before_missing + 1

    scrape = await harness.api.get("/metrics")
    assert scrape.status == 200
    assert scrape.headers["Content-Type"].startswith("text/plain")
    assert doctor["id"] not in scrape.text and "/no/such" not in scrape.text
    values = scraped(scrape.text)
    assert values[("medpharma_http_requests_total", frozenset(labels.items()))] == before + 2
    routes = {dict(key[1]).get("route") for key in values if key[0] == "medpharma_http_requests_total"}
    assert "/api/doctors/{id}" in routes
    assert all(r == "unmatched" or r.startswith("/") for r in routes)


async def test_every_declared_family_is_exported_with_the_prefix(harness):
    scrape = await harness.api.get("/metrics")
    names = {family.name for family in text_string_to_metric_families(scrape.text)}
    ours = {name for name in names if name.startswith("medpharma_")}
    for expected in ("medpharma_http_requests", "medpharma_http_request_duration_seconds",
                     "medpharma_ws_connections_open", "medpharma_ws_messages_sent", "medpharma_ws_sockets_dropped",
                     "medpharma_actors_live", "medpharma_event_loop_lag_seconds", "medpharma_store_errors",
                     "medpharma_auth_failures", "medpharma_push_lag_seconds"):
        assert expected in ours, expected
    # Pre-created label values: a dashboard sees zeros before the first event.
    assert 'medpharma_ws_messages_sent_total{event="queue:update"}' in scrape.text
    assert 'medpharma_ws_sockets_dropped_total{reason="shutdown"}' in scrape.text


async def test_socket_gauge_follows_open_and_close(harness):
    token, _ = await harness.register()
    start = sample("medpharma_ws_connections_open")
    dropped = sample("medpharma_ws_sockets_dropped_total", reason="client_closed")

    first = await harness.ws(token)
    second = await harness.ws(token, query_token=True)
    assert sample("medpharma_ws_connections_open") == start + 2
    values = scraped((await harness.api.get("/metrics")).text)
    assert values[("medpharma_ws_connections_open", frozenset())] == start + 2

    first.connection.close(1000)  # a normal close, with its status code as browsers send it
    assert await first.connection.read_message() is None
    await eventually(lambda: sample("medpharma_ws_connections_open") == start + 1, "gauge down to one")
    second.connection.close(1000)
    await eventually(lambda: sample("medpharma_ws_connections_open") == start, "gauge back to start")
    assert sample("medpharma_ws_sockets_dropped_total", reason="client_closed") == dropped + 2


async def test_pushed_queue_update_is_counted(harness):
    admin = await harness.admin_token()
    doctor = await harness.create_doctor(admin)
    token, _ = await harness.register()
    appointment = await harness.book(token, doctor["id"])
    ws = await harness.ws(token)
    await ws.send({"type": "queue:subscribe", "appointmentId": appointment["id"]})
    await ws.expect("queue:update")

    sent = lambda: sample("medpharma_ws_messages_sent_total", event="queue:update")  # noqa: E731
    before = sent()
    changed = await harness.api.patch(f"/api/doctors/{doctor['id']}/status",
                                      {"isRunningLate": True, "lateByMinutes": 15}, token=admin)
    assert changed.status == 200
    update = await ws.expect("queue:update")
    assert update["data"]["lateByMinutes"] == 15
    await eventually(lambda: sent() >= before + 1, "queue:update counted")
    assert sent() == before + 1

    pongs = sample("medpharma_ws_messages_sent_total", event="pong")
    await ws.send({"type": "ping"})
    assert (await ws.recv()) == {"event": "pong"}
    await eventually(lambda: sample("medpharma_ws_messages_sent_total", event="pong") == pongs + 1, "pong counted")
    ws.close()


async def test_metrics_token_guards_the_scrape():
    h = await start_harness(settings={"metrics_token": "scrape-token-0123456789"})
    try:
        missing = await h.api.get("/metrics")
        assert missing.status == 401
        assert set(missing.body) >= {"message", "code"}
        assert missing.headers.get("WWW-Authenticate") == "Bearer"
        assert "medpharma_" not in missing.text

        wrong = await h.api.get("/metrics", token="scrape-token-not-this-one")
        assert wrong.status == 401 and "medpharma_" not in wrong.text
        basic = await h.api.get("/metrics", headers={"Authorization": "Basic c2NyYXBlOnRva2Vu"})
        assert basic.status == 401

        right = await h.api.get("/metrics", token="scrape-token-0123456789")
        assert right.status == 200
        assert "medpharma_http_requests_total" in right.text
    finally:
        await stop_harness(h)


async def test_metrics_open_when_no_token_is_configured(harness):
    assert harness.services.settings.metrics_token is None
    assert (await harness.api.get("/metrics")).status == 200


async def test_event_loop_lag_is_measured(harness):
    observed = lambda: sample("medpharma_event_loop_lag_observed_seconds_count")  # noqa: E731
    before = observed()
    await eventually(lambda: observed() > before, "an event-loop probe")
    assert sample("medpharma_event_loop_lag_seconds") >= 0


# -- probes ------------------------------------------------------------------------------------------

async def test_healthz(harness):
    response = await harness.api.get("/healthz")
    assert response.status == 200 and response.body == {"status": "ok"}
    assert response.headers.get("X-Request-Id")


async def test_readyz_follows_the_store(harness, monkeypatch):
    db = harness.services.store.db
    ok = await harness.api.get("/readyz")
    assert ok.status == 200 and ok.body == {"status": "ready"}
    errors = sample("medpharma_store_errors_total", operation="ping")

    async def unreachable(*args, **kwargs):
        raise ServerSelectionTimeoutError(DRIVER_MESSAGE)

    monkeypatch.setattr(db, "command", unreachable)
    down = await harness.api.get("/readyz")
    assert down.status == 503
    assert down.body["code"] == "store_unavailable" and down.body["message"]
    assert set(down.body) <= {"message", "code", "details"}
    assert "secret-driver-detail" not in down.text and "ServerSelection" not in down.text
    assert sample("medpharma_store_errors_total", operation="ping") == errors + 1
    # The process itself is fine: liveness stays green while readiness is red.
    assert (await harness.api.get("/healthz")).status == 200

    async def hangs(*args, **kwargs):
        await asyncio.get_running_loop().create_future()  # never answers: the readiness ping must time out

    monkeypatch.setattr(infra.store, "PING_TIMEOUT_SECONDS", 0.05)
    monkeypatch.setattr(db, "command", hangs)
    stuck = await harness.api.get("/readyz")
    assert stuck.status == 503 and stuck.body["code"] == "store_unavailable"

    monkeypatch.undo()
    again = await harness.api.get("/readyz")
    assert again.status == 200 and again.body == {"status": "ready"}


class _FailingOperation:
    """Stands for any collection call: awaiting it (or its cursor's to_list) fails like a lost server."""

    def __await__(self):
        raise ServerSelectionTimeoutError(DRIVER_MESSAGE)
        yield  # pragma: no cover

    def sort(self, *args, **kwargs):
        return self

    limit = skip = sort

    async def to_list(self, *args, **kwargs):
        raise ServerSelectionTimeoutError(DRIVER_MESSAGE)


class _UnreachableCollection:
    def __getattr__(self, name):
        return lambda *args, **kwargs: _FailingOperation()


@contextmanager
def store_down(harness, monkeypatch):
    store = harness.services.store
    with monkeypatch.context() as patch:
        for collection in ("users", "doctors", "appointments", "invites"):
            patch.setattr(store, collection, _UnreachableCollection())
        yield


async def test_rest_calls_answer_503_when_the_store_is_unreachable(harness, monkeypatch):
    admin = await harness.admin_token()
    doctor = await harness.create_doctor(admin)
    patient, _ = await harness.register()
    errors_before = sum(sample("medpharma_store_errors_total", operation=op)
                        for op in ("list_doctors", "find_doctor", "find_user", "load_queue"))
    calls = [
        ("GET", "/api/doctors", None, None),
        ("GET", f"/api/doctors/{doctor['id']}", None, None),
        ("POST", "/api/auth/login", {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}, None),
        ("POST", "/api/auth/register", {"name": "N", "email": "new@example.org", "password": "password-123"}, None),
        ("GET", "/api/auth/me", None, patient),
        ("GET", f"/api/queue/doctor/{doctor['id']}", None, patient),
        ("GET", "/api/appointments/my", None, patient),
        ("POST", "/api/doctors", {"name": "Dr. B", "specialization": "x", "email": "b@example.org",
                                  "phone": "+1 555 0101"}, admin),
    ]
    with store_down(harness, monkeypatch):
        for method, path, body, token in calls:
            response = await harness.api.request(method, path, body, token=token)
            assert response.status == 503, (method, path, response.status, response.text)
            assert response.body["code"] == "store_unavailable", (method, path, response.body)
            assert response.body["message"]
            assert "secret-driver-detail" not in response.text and "Traceback" not in response.text
    errors_after = sum(sample("medpharma_store_errors_total", operation=op)
                       for op in ("list_doctors", "find_doctor", "find_user", "load_queue"))
    assert errors_after > errors_before
    # Back to normal once the store is back, including the queue whose actor could not load.
    assert (await harness.api.get(f"/api/doctors/{doctor['id']}")).status == 200
    assert (await harness.api.get(f"/api/queue/doctor/{doctor['id']}", token=patient)).status == 200


# -- request ids and logs ----------------------------------------------------------------------------

async def test_request_id_is_echoed_or_made_up(harness):
    given = await harness.api.get("/healthz", headers={"X-Request-Id": "trace-abc-123"})
    assert given.headers["X-Request-Id"] == "trace-abc-123"
    made = await harness.api.get("/healthz")
    assert len(made.headers["X-Request-Id"]) >= 16 and made.headers["X-Request-Id"] != "trace-abc-123"
    # Errors keep it too: they are the answers someone will want to trace.
    for path, kwargs in (("/api/auth/me", {}), ("/no/such/thing", {}), ("/api/doctors/not-an-id", {})):
        response = await harness.api.get(path, headers={"X-Request-Id": "trace-err-1"}, **kwargs)
        assert response.status in (401, 404)
        assert response.headers.get("X-Request-Id") == "trace-err-1", path
    unfit = await harness.api.get("/healthz", headers={"X-Request-Id": "x" * 500})
    assert unfit.headers["X-Request-Id"] != "x" * 500


@contextmanager
def captured_logs():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


async def test_logs_are_json_and_never_carry_secrets(harness):
    secrets_seen: list[str] = []
    with captured_logs() as stream:
        admin = await harness.admin_token()
        secrets_seen += [admin, ADMIN_PASSWORD]
        doctor = await harness.create_doctor(admin)
        invite = await harness.api.post("/api/admin/invites", {"email": doctor["email"], "role": "doctor",
                                                               "doctorId": doctor["id"]}, token=admin)
        assert invite.status == 201
        secrets_seen.append(invite.body["token"])
        redeemed = await harness.api.post("/api/auth/register/invite",
                                          {"token": invite.body["token"], "name": "Dr. Ada",
                                           "password": "doctor-secret-pw-1"})
        assert redeemed.status == 201
        secrets_seen += [redeemed.body["token"], "doctor-secret-pw-1"]
        reused = await harness.api.post("/api/auth/register/invite",
                                        {"token": invite.body["token"], "name": "Again",
                                         "password": "doctor-secret-pw-2"})
        assert reused.status == 400
        secrets_seen.append("doctor-secret-pw-2")

        patient, user = await harness.register(password="patient-secret-pw-1")
        secrets_seen += [patient, "patient-secret-pw-1"]
        wrong = await harness.api.post("/api/auth/login", {"email": user["email"], "password": "wrong-secret-pw-9"})
        assert wrong.status == 401
        secrets_seen.append("wrong-secret-pw-9")
        bad_json = await harness.api.post("/api/auth/login", raw='{"email": "a@b.c", "password": "raw-secret-pw-7"')
        assert bad_json.status == 400
        secrets_seen.append("raw-secret-pw-7")

        appointment = await harness.book(patient, doctor["id"])
        assert (await harness.api.get(f"/api/queue/appointment/{appointment['id']}/position",
                                      token=patient)).status == 200
        assert (await harness.api.get("/api/auth/me", token="bogus-bearer-secret-xyz")).status == 401
        secrets_seen.append("bogus-bearer-secret-xyz")

        ws = await harness.ws(patient, query_token=True)
        await ws.send({"type": "queue:subscribe", "appointmentId": appointment["id"]})
        await ws.expect("queue:update")
        ws.close()
        from tornado.httpclient import HTTPClientError
        with pytest.raises(HTTPClientError):
            await harness.ws("query-secret-not-a-jwt", query_token=True)
        secrets_seen.append("query-secret-not-a-jwt")
        await eventually(lambda: "/ws" in stream.getvalue(), "the refused upgrade logged")

    lines = [line for line in stream.getvalue().splitlines() if line.strip()]
    assert lines
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    text = stream.getvalue()
    for secret in secrets_seen:
        assert secret not in text, f"a secret reached the log: {secret[:12]}..."
    secret_parts = [s.split(".")[2] for s in secrets_seen if s.count(".") == 2]  # JWT signatures
    for part in secret_parts:
        assert part not in text

    access = [e for e in entries if e["logger"] == "medpharma.access"]
    assert len(access) >= 10
    for entry in access:
        for key in ("requestId", "method", "route", "status", "durationMs", "userId"):
            assert key in entry, (key, entry)
        assert entry["requestId"], entry
        assert isinstance(entry["status"], int) and isinstance(entry["durationMs"], (int, float))
        assert "?" not in entry["path"]
    routes = {(e["method"], e["route"], e["status"]) for e in access}
    assert ("POST", "/api/auth/login", 200) in routes
    assert ("POST", "/api/auth/register/invite", 201) in routes
    assert ("GET", "/api/queue/appointment/{id}/position", 200) in routes
    assert ("GET", "/ws", 401) in routes
    signed_in = [e for e in access if e["route"] == "/api/queue/appointment/{id}/position"]
    assert signed_in[0]["userId"] == user["id"]
    anonymous = [e for e in access if e["route"] == "/api/auth/login"]
    assert all(e["userId"] is None for e in anonymous)


async def test_access_line_carries_the_echoed_request_id(harness):
    with captured_logs() as stream:
        response = await harness.api.get("/healthz", headers={"X-Request-Id": "trace-log-42"})
    assert response.headers["X-Request-Id"] == "trace-log-42"
    access = [json.loads(line) for line in stream.getvalue().splitlines()
              if json.loads(line)["logger"] == "medpharma.access"]
    assert [(e["requestId"], e["route"], e["status"]) for e in access] == [("trace-log-42", "/healthz", 200)]


# -- the event loop stays free while bcrypt works ------------------------------------------------------

@pytest.mark.slow  # ten bcrypt hashes at cost 12 (the point: hashing that takes long), 2-7 s
async def test_ping_is_answered_while_a_burst_of_logins_hashes():
    """bcrypt runs in an executor: with 8 logins at cost 12 all inside the hasher, a WebSocket ping is
    still answered before they finish. Ordering only; the latency figure lives in bench/."""
    h = await start_harness(settings={"bcrypt_rounds": 12})
    try:
        token = await h.admin_token()  # the seed admin was hashed at cost 12
        ws = await h.ws(token)
        hasher = h.services.hasher
        verify = hasher.verify
        entered = 0
        all_hashing = asyncio.Event()

        async def counting_verify(*args, **kwargs):
            nonlocal entered
            entered += 1
            if entered == 8:
                all_hashing.set()
            return await verify(*args, **kwargs)

        hasher.verify = counting_verify
        logins = [asyncio.ensure_future(h.api.post("/api/auth/login",
                                                   {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
                  for _ in range(8)]
        await asyncio.wait_for(all_hashing.wait(), 60)  # every login is now inside bcrypt
        await ws.send({"type": "ping"})
        pong = await ws.recv(timeout=60)
        finished_when_pong_arrived = sum(task.done() for task in logins)
        assert pong == {"event": "pong"}
        assert finished_when_pong_arrived < 8

        responses = await asyncio.gather(*logins)
        assert [r.status for r in responses] == [200] * 8
        ws.close()
    finally:
        await stop_harness(h)


# -- docs/operations.md names exactly what core/metrics.py declares ----------------------------------

def test_operations_doc_covers_every_declared_metric_and_no_other():
    root = Path(__file__).resolve().parent.parent
    declared = set(re.findall(r'"(medpharma_[a-z_]+)"', (root / "core" / "metrics.py").read_text()))
    doc = (root / "docs" / "operations.md").read_text()
    assert declared
    for name in declared:
        assert f"`{name}`" in doc, f"{name} is not explained in docs/operations.md"
    mentioned = {re.sub(r"_(bucket|count|sum)$", "", name) for name in re.findall(r"medpharma_[a-z_]+", doc)}
    mentioned -= {"medpharma_refresh"}  # the session cookie's name (API.md), not a metric
    assert mentioned <= declared, f"docs/operations.md names undeclared metrics: {mentioned - declared}"


async def test_start_up_raises_the_collectors_young_threshold(harness):
    """A change fanned out to thousands of sockets must not set off collections mid-way
    (`server.app.tune_garbage_collector`); a higher threshold set by the process is kept."""
    assert gc.get_threshold()[0] >= GC_YOUNG_THRESHOLD
    before = gc.get_threshold()
    try:
        gc.set_threshold(GC_YOUNG_THRESHOLD * 2, 10, 10)
        tune_garbage_collector()
        assert gc.get_threshold() == (GC_YOUNG_THRESHOLD * 2, 10, 10)
    finally:
        gc.set_threshold(*before)
