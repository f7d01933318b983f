"""The server against its own OpenAPI description, with schemathesis, as each role and signed out.

A real server runs on an event loop in a background thread with a small world in it (a doctor with
an account, a patient with two waiting appointments, a spare user, an invite). For every operation
of the description the server serves, schemathesis generates requests (the description's examples,
valid ones, and ones that break it), half of them about the world's real ids so answers past a 404
are reached too, and each is sent with a fresh access token of the role (or none). Every answer
must be: not a 5xx, a documented status, of the documented content type and headers, valid against
the documented schema; and a request that breaks the description must not succeed.

Bounded by MAX_EXAMPLES per operation and role (derandomized, so a run is repeatable): 148 cases of
that many examples, about 45 s on 2 cores.
"""

from __future__ import annotations

import copy
import uuid

import pytest
import schemathesis
from marshmallow import ValidationError
from hypothesis import HealthCheck, given, settings, strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (content_type_conformance, negative_data_rejection,
                                               response_headers_conformance, response_schema_conformance,
                                               status_code_conformance)

from handlers.spec import openapi_document
from schemas.doctors import DoctorCreateSchema
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, LoopThread, future, start_harness, stop_harness

MAX_EXAMPLES = 25
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          negative_data_rejection, response_headers_conformance]
PASSWORD = "contract-password"


class World:
    """The live server and the people in it."""

    def __init__(self, loop: LoopThread, harness):
        self.loop, self.harness = loop, harness
        self.base = harness.base
        self.credentials: dict[str, tuple[str, str]] = {"admin": (ADMIN_EMAIL, ADMIN_PASSWORD)}
        self.ids: dict[str, str] = {}

    def populate(self) -> None:
        async def build():
            h = self.harness
            admin = await h.admin_token()
            doctor = await h.create_doctor(admin)
            invite = await h.api.post("/api/admin/invites", {"email": doctor["email"], "role": "doctor",
                                                             "doctorId": doctor["id"]}, token=admin)
            doctor_user = await h.api.post("/api/auth/register/invite", {"token": invite.body["token"],
                                                                         "name": "Dr. Ada", "password": PASSWORD})
            patient_email = f"patient-{uuid.uuid4().hex[:8]}@example.org"
            patient_token, _ = await h.register(email=patient_email, password=PASSWORD)
            appointment = await h.book(patient_token, doctor["id"], future(30))
            await h.book(patient_token, (await h.create_doctor(admin))["id"], future(40))
            _, spare = await h.register()
            spare_invite = await h.api.post("/api/admin/invites", {"email": "spare@example.org", "role": "admin"},
                                            token=admin)
            self.credentials["doctor"] = (doctor["email"], PASSWORD)
            self.credentials["patient"] = (patient_email, PASSWORD)
            self.ids = {"doctorId": doctor["id"], "appointmentId": appointment["id"], "userId": spare["id"],
                        "inviteId": spare_invite.body["inviteId"]}
            assert doctor_user.status == 201
        self.loop.run(build())

    def token(self, role: str) -> str:
        """A fresh sign-in for every request: a case that logged out (ending its session) cannot starve the next."""
        email, password = self.credentials[role]
        answer = self.loop.run(self.harness.api.post("/api/auth/login", {"email": email, "password": password}))
        assert answer.status == 200, answer.body
        return answer.body["token"]


@pytest.fixture(scope="module")
def world():
    loop = LoopThread("contract-server")
    harness = loop.run(start_harness())
    world = World(loop, harness)
    try:
        world.populate()
        yield world
    finally:
        loop.run(stop_harness(harness))
        loop.close()


SCHEMA = schemathesis.openapi.from_dict(copy.deepcopy(openapi_document()))
# The tokens are ours to give (one per role, below): schemathesis generates no Authorization header.
SCHEMA.config.generation.update(with_security_parameters=False)
# /socket.io/ speaks the Engine.IO protocol, answered by python-socketio rather than by our schemas:
# tests/test_socketio.py and tests/test_socketio_js.py hold it to the contract.
OPERATIONS = [operation for operation in (result.ok() for result in SCHEMA.get_all_operations())
              if not operation.path.startswith("/socket.io")]
ROLES = (None, "patient", "doctor", "admin")
bounded = settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
                   suppress_health_check=list(HealthCheck))


def requests_for(operation) -> st.SearchStrategy:
    """The description's own examples, valid requests, and requests that break the description."""
    return st.one_of(*SCHEMA.get_strategies_from_examples(operation),
                     operation.as_strategy(GenerationMode.POSITIVE),
                     operation.as_strategy(GenerationMode.NEGATIVE))


@pytest.mark.parametrize("role", ROLES, ids=lambda role: role or "signed-out")
@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda operation: operation.label)
def test_every_answer_keeps_to_the_description(operation, role, world):
    @given(case=requests_for(operation), real_ids=st.booleans())
    @bounded
    def run(case, real_ids):
        if real_ids:  # reach past the 404: the same request about the world's real doctor, appointment…
            for name in list(case.path_parameters or {}):
                if name in world.ids:
                    case.path_parameters[name] = world.ids[name]
        headers = {"Authorization": f"Bearer {world.token(role)}"} if role else {}
        if case.headers:
            case.headers.pop("Authorization", None)
        case.call_and_validate(base_url=world.base, headers=headers, checks=CHECKS, timeout=15)

    run()


# -- what schemathesis found, kept as plain regressions ------------------------------------------------
def test_length_limits_hold_for_what_was_sent_not_what_is_left_after_trimming():
    """A 101-character name that is 100 after trimming was accepted, though the description says
    `maxLength: 100` (found by negative_data_rejection on POST /api/doctors)."""
    body = {"name": "Dr. Ada", "specialization": "General practice", "email": "ada@clinic.example", "phone": "123"}
    for field, padded in (("name", "\r" + "a" * 100), ("email", " " * 250 + "ada@clinic.example")):
        with pytest.raises(ValidationError) as refused:
            DoctorCreateSchema().load({**body, field: padded})
        assert field in refused.value.messages
    assert DoctorCreateSchema().load({**body, "name": " " + "a" * 99})["name"] == "a" * 99


def test_the_described_password_bounds_admit_every_password_the_server_accepts():
    """The rule is 8 to 72 *bytes*; the description had said 8 *characters*, so a 7-character password
    of 2-byte characters, which the server rightly accepts, broke it (found on POST /api/auth/register)."""
    from schemas.auth import RegisterSchema

    described = openapi_document()["components"]["schemas"]["Register"]["properties"]["password"]
    base = {"name": "Pat", "email": "pat@example.org"}
    for accepted in ("é" * 4, "\U0001f600" * 2, "qz" * 4, "a" * 72, "é" * 36):  # ("a" × 8 is a common password)
        assert RegisterSchema().load({**base, "password": accepted})
        assert described["minLength"] <= len(accepted) <= described["maxLength"]
    for refused in ("a" * 7, "é" * 37, "a" * 73):
        with pytest.raises(ValidationError):
            RegisterSchema().load({**base, "password": refused})
