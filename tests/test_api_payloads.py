"""What a real server sends, against the published descriptions: every socket frame against its
AsyncAPI message, and the queue answers built as plain dicts (the staff and the public view, with a
consultation running) against their OpenAPI schemas. A field added to a payload without being added to
its schema in `schemas/responses.py` fails here, so the descriptions cannot drift from the code."""

from __future__ import annotations

from openapi_schema_validator import OAS31Validator

from handlers.spec import asyncapi_document, openapi_document
from schemas.asyncapi import SERVER_MESSAGES, message_key
from tests.conftest import future


def frame_errors(frame: dict) -> list[str]:
    document = asyncapi_document()
    message = document["components"]["messages"].get(message_key(frame.get("event", "?"), "server"))
    if message is None:
        return [f"undescribed event {frame.get('event')!r}"]
    validator = OAS31Validator({**message["payload"], "components": document["components"]},
                               format_checker=OAS31Validator.FORMAT_CHECKER)
    return [f"{frame['event']}: {e.message}" for e in validator.iter_errors(frame)]


def answer_errors(path: str, method: str, status: int, body) -> list[str]:
    document = openapi_document()
    schema = document["paths"][path][method]["responses"][str(status)]["content"]["application/json"]["schema"]
    validator = OAS31Validator({**schema, "components": document["components"]},
                               format_checker=OAS31Validator.FORMAT_CHECKER)
    return [f"{method} {path}: {e.message}" for e in validator.iter_errors(body)]


async def test_every_frame_a_real_day_sends_matches_its_description(harness):
    admin = await harness.admin_token()
    doctor = await harness.create_doctor(admin, avgConsultMinutes=15)
    doctor_token, _ = await harness.doctor_account(doctor, admin)
    first_token, _ = await harness.register()
    second_token, second_user = await harness.register(password="second-password")
    first = await harness.book(first_token, doctor["id"], future(2), reason="Cough")
    second = await harness.book(second_token, doctor["id"], future(30))  # be ready by: 20 minutes away

    staff = await harness.ws(doctor_token)
    patient = await harness.ws(second_token)
    await staff.send({"type": "queue:subscribe", "doctorId": doctor["id"]})
    await patient.send({"type": "queue:subscribe", "appointmentId": second["id"], "doctorId": doctor["id"]})
    await patient.send({"type": "ping"})
    fresh = await harness.api.post("/api/auth/login", {"email": second_user["email"], "password": "second-password"})
    await patient.send({"type": "auth", "token": fresh.body["token"]})
    await patient.send({"type": "queue:subscribe", "appointmentId": "0" * 24})        # → error
    await harness.api.patch(f"/api/doctors/{doctor['id']}/status", {"isRunningLate": True, "lateByMinutes": 5},
                            token=doctor_token)                                           # → doctor:status
    call_next = f"/api/doctors/{doctor['id']}/queue/next"
    await harness.api.post(call_next, {"expectCurrent": None}, token=doctor_token)       # second is next: turn:soon
    await harness.api.post(call_next, {"expectCurrent": first["id"]}, token=doctor_token)  # → turn:now
    frames = await staff.drain(0.5) + await patient.drain(0.5)
    staff.close()
    patient.close()

    assert {f["event"] for f in frames} == set(SERVER_MESSAGES), "the day should show every kind of frame"
    assert [error for frame in frames for error in frame_errors(frame)] == []
    assert frame_errors({"event": "turn:now", "data": {"appointmentId": second["id"]}}), "a missing joinUrl is caught"


async def test_the_queue_answers_with_a_consultation_running_match_their_schemas(harness):
    admin = await harness.admin_token()
    doctor = await harness.create_doctor(admin)
    doctor_token, _ = await harness.doctor_account(doctor, admin)
    patient_token, _ = await harness.register()
    await harness.book(patient_token, doctor["id"], future(5))
    other_token, _ = await harness.register()
    other = await harness.book(other_token, doctor["id"], future(10))
    called = await harness.api.post(f"/api/doctors/{doctor['id']}/queue/next", {"expectCurrent": None},
                                    token=doctor_token)
    assert called.status == 200 and called.body["current"] is not None
    errors = answer_errors("/api/doctors/{doctorId}/queue/next", "post", 200, called.body)
    for token in (doctor_token, admin, patient_token, other_token):
        queue = await harness.api.get(f"/api/queue/doctor/{doctor['id']}", token=token)
        assert queue.body["inConsultation"] is not None and queue.body["list"]
        errors += answer_errors("/api/queue/doctor/{doctorId}", "get", 200, queue.body)
    position = await harness.api.get(f"/api/queue/appointment/{other['id']}/position", token=other_token)
    errors += answer_errors("/api/queue/appointment/{appointmentId}/position", "get", 200, position.body)
    stats = await harness.api.get(f"/api/doctors/{doctor['id']}/stats", token=doctor_token)
    errors += answer_errors("/api/doctors/{doctorId}/stats", "get", 200, stats.body)
    assert errors == []
    staff_entry = (await harness.api.get(f"/api/queue/doctor/{doctor['id']}", token=doctor_token)).body["list"][0]
    assert answer_errors("/api/queue/doctor/{doctorId}", "get", 200, {**(await harness.api.get(
        f"/api/queue/doctor/{doctor['id']}", token=doctor_token)).body, "list": [{**staff_entry, "extra": 1}]}), \
        "a field the schema does not name must be refused"


async def test_a_plain_get_of_the_socket_address_answers_the_json_error(harness):
    patient_token, _ = await harness.register()
    answer = await harness.api.get("/ws", token=patient_token)
    assert answer.status == 400
    assert answer.body["code"] == "not_websocket" and answer.headers["Content-Type"].startswith("application/json")
