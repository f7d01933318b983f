"""Doctor profiles: public reads, admin-only writes, defaults, validation and malformed ids."""

from __future__ import annotations

import re
import uuid
from datetime import datetime

import pytest
from bson import ObjectId

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z$")
HEX24 = re.compile(r"^[0-9a-f]{24}$")
DOCTOR_KEYS = {"id", "name", "specialization", "email", "phone", "availability", "avgConsultMinutes",
               "isRunningLate", "lateByMinutes", "awayUntil", "hours", "slotMinutes", "createdAt", "updatedAt"}
CONTACTS = {"email", "phone"}
PUBLIC_DOCTOR_KEYS = DOCTOR_KEYS - CONTACTS


def public_view(doctor: dict) -> dict:
    return {k: v for k, v in doctor.items() if k not in CONTACTS}
MALFORMED_IDS = ["abc", "z" * 24, "0" * 23, "0" * 25, "null", "-1", "%20", "%E2%82%AC", "0123456789abcdef0123456g"]


def unique_email(prefix: str = "doc") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.org"


def doctor_body(**fields) -> dict:
    return {"name": "Dr. Grace", "specialization": "Cardiology", "email": unique_email(),
            "phone": "+1 555 0123", **fields}


def parse_z(text: str) -> datetime:
    assert ISO_Z.match(text), text
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def assert_doctor_shape(doctor: dict, keys: set = DOCTOR_KEYS) -> None:
    assert set(doctor) == keys, doctor
    assert HEX24.match(doctor["id"])
    parse_z(doctor["createdAt"])
    parse_z(doctor["updatedAt"])


# -- reads -------------------------------------------------------------------------------------------
async def test_list_is_public_and_an_array(harness):
    response = await harness.api.get("/api/doctors")
    assert response.status == 200 and response.body == []
    admin = await harness.admin_token()
    first = await harness.create_doctor(admin, name="Dr. Zed")
    second = await harness.create_doctor(admin, name="Dr. Amy")
    response = await harness.api.get("/api/doctors")
    assert response.status == 200
    assert isinstance(response.body, list) and len(response.body) == 2
    assert {d["id"] for d in response.body} == {first["id"], second["id"]}
    for doctor in response.body:
        assert_doctor_shape(doctor, PUBLIC_DOCTOR_KEYS)
    assert "_id" not in response.text
    as_admin = await harness.api.get("/api/doctors", token=admin)
    for doctor in as_admin.body:
        assert_doctor_shape(doctor)


async def test_get_one_is_public(harness):
    doctor = await harness.create_doctor()
    response = await harness.api.get(f"/api/doctors/{doctor['id']}")
    assert response.status == 200
    assert response.body == public_view(doctor)


async def test_reads_work_with_any_role(harness):
    doctor = await harness.create_doctor()
    patient, _ = await harness.register()
    assert (await harness.api.get("/api/doctors", token=patient)).status == 200
    assert (await harness.api.get(f"/api/doctors/{doctor['id']}", token=patient)).body == public_view(doctor)


async def test_staff_contacts_only_for_admins_and_that_doctor(harness):
    """A public directory does not hand out staff email and phone: not anonymously, not to a
    patient, not to another doctor; that doctor and admins see them, upper-case id or not."""
    admin = await harness.admin_token()
    doctor = await harness.create_doctor(admin)
    other = await harness.create_doctor(admin)
    own_token, _ = await harness.doctor_account(doctor, admin)
    other_token, _ = await harness.doctor_account(other, admin)
    patient, _ = await harness.register()
    for path in (f"/api/doctors/{doctor['id']}", f"/api/doctors/{doctor['id'].upper()}"):
        for token in (None, patient, other_token):
            seen = (await harness.api.get(path, token=token)).body
            assert CONTACTS.isdisjoint(seen) and seen["id"] == doctor["id"]
        for token in (own_token, admin):
            assert (await harness.api.get(path, token=token)).body == doctor
    listing = {d["id"]: d for d in (await harness.api.get("/api/doctors", token=own_token)).body}
    assert listing[doctor["id"]] == doctor and CONTACTS.isdisjoint(listing[other["id"]])


async def test_unknown_id_is_404(harness):
    response = await harness.api.get(f"/api/doctors/{ObjectId()}")
    assert response.status == 404
    assert response.body["code"] == "not_found"
    assert set(response.body) == {"message", "code"}


# -- create ------------------------------------------------------------------------------------------
async def test_create_requires_a_token(harness):
    response = await harness.api.post("/api/doctors", doctor_body())
    assert response.status == 401 and response.body["code"] == "unauthorized"


async def test_create_refused_to_patients(harness):
    patient, _ = await harness.register()
    response = await harness.api.post("/api/doctors", doctor_body(), token=patient)
    assert response.status == 403 and response.body["code"] == "forbidden"


async def test_create_refused_to_doctors(harness):
    admin = await harness.admin_token()
    doctor = await harness.create_doctor(admin)
    doctor_token, _ = await harness.doctor_account(doctor, admin)
    response = await harness.api.post("/api/doctors", doctor_body(), token=doctor_token)
    assert response.status == 403 and response.body["code"] == "forbidden"
    assert len((await harness.api.get("/api/doctors")).body) == 1


async def test_create_fills_defaults(harness):
    admin = await harness.admin_token()
    body = doctor_body()
    response = await harness.api.post("/api/doctors", body, token=admin)
    assert response.status == 201, response.body
    doctor = response.body
    assert_doctor_shape(doctor)
    assert doctor["avgConsultMinutes"] == 12
    assert doctor["isRunningLate"] is False
    assert doctor["lateByMinutes"] == 0
    assert doctor["availability"] == []
    assert doctor["createdAt"] == doctor["updatedAt"]
    assert {k: doctor[k] for k in ("name", "specialization", "email", "phone")} == \
        {k: body[k] for k in ("name", "specialization", "email", "phone")}
    stored = await harness.services.store.doctors.find_one({"_id": ObjectId(doctor["id"])})
    assert stored is not None and stored["email"] == body["email"]


async def test_create_with_every_field(harness):
    admin = await harness.admin_token()
    body = doctor_body(availability=["Mon 09:00-12:00", " Wed 14:00-17:00 "], avgConsultMinutes=20)
    body["email"] = "  Dr.Upper-" + uuid.uuid4().hex[:6] + "@Example.ORG "
    response = await harness.api.post("/api/doctors", body, token=admin)
    assert response.status == 201, response.body
    assert response.body["availability"] == ["Mon 09:00-12:00", "Wed 14:00-17:00"]
    assert response.body["avgConsultMinutes"] == 20
    assert response.body["email"] == body["email"].strip().lower()


@pytest.mark.parametrize("minutes", [1, 240])
async def test_create_avg_consult_bounds_accepted(harness, minutes):
    admin = await harness.admin_token()
    response = await harness.api.post("/api/doctors", doctor_body(avgConsultMinutes=minutes), token=admin)
    assert response.status == 201 and response.body["avgConsultMinutes"] == minutes


async def test_create_duplicate_email_in_other_case_is_409(harness):
    admin = await harness.admin_token()
    first = await harness.create_doctor(admin)
    response = await harness.api.post("/api/doctors", doctor_body(email=f" {first['email'].upper()} "),
                                      token=admin)
    assert response.status == 409
    assert response.body["code"] == "email_taken"
    assert len((await harness.api.get("/api/doctors")).body) == 1


async def test_create_missing_fields_maps_each_one(harness):
    admin = await harness.admin_token()
    response = await harness.api.post("/api/doctors", {}, token=admin)
    assert response.status == 400 and response.body["code"] == "validation_error"
    assert set(response.body["details"]) == {"name", "specialization", "email", "phone"}


@pytest.mark.parametrize("field, value", [
    ("avgConsultMinutes", "10"),
    ("avgConsultMinutes", 0),
    ("avgConsultMinutes", 241),
    ("avgConsultMinutes", True),
    ("avgConsultMinutes", 12.5),
    ("avgConsultMinutes", None),
    ("email", "not-an-email"),
    ("name", "   "),
    ("name", 5),
    ("phone", ["+1"]),
    ("availability", "Mon"),
    ("availability", [1, 2]),
    ("availability", [""]),
    ("isRunningLate", True),
    ("lateByMinutes", 5),
    ("id", "0123456789abcdef01234567"),
    ("createdAt", "2026-01-01T00:00:00Z"),
])
async def test_create_bad_values_are_400(harness, field, value):
    admin = await harness.admin_token()
    response = await harness.api.post("/api/doctors", doctor_body(**{field: value}), token=admin)
    assert response.status == 400, (field, value, response.body)
    assert response.body["code"] == "validation_error"
    assert list(response.body["details"])[0].split(".")[0] == field
    assert {key.split(".")[0] for key in response.body["details"]} == {field}


# -- update ------------------------------------------------------------------------------------------
async def test_put_partial_update(harness):
    admin = await harness.admin_token()
    doctor = await harness.create_doctor(admin, availability=["Mon"])
    response = await harness.api.put(f"/api/doctors/{doctor['id']}", {"specialization": "Dermatology",
                                                                      "avgConsultMinutes": 15}, token=admin)
    assert response.status == 200, response.body
    updated = response.body
    assert_doctor_shape(updated)
    assert updated["specialization"] == "Dermatology" and updated["avgConsultMinutes"] == 15
    unchanged = {k for k in DOCTOR_KEYS if k not in ("specialization", "avgConsultMinutes", "updatedAt")}
    assert {k: updated[k] for k in unchanged} == {k: doctor[k] for k in unchanged}
    assert parse_z(updated["updatedAt"]) >= parse_z(doctor["updatedAt"])
    again = await harness.api.get(f"/api/doctors/{doctor['id']}", token=admin)
    assert again.body == updated


async def test_put_normalises_email_and_refuses_a_taken_one(harness):
    admin = await harness.admin_token()
    first = await harness.create_doctor(admin)
    second = await harness.create_doctor(admin)
    new_email = unique_email("moved")
    moved = await harness.api.put(f"/api/doctors/{second['id']}", {"email": f" {new_email.upper()}"}, token=admin)
    assert moved.status == 200 and moved.body["email"] == new_email
    clash = await harness.api.put(f"/api/doctors/{second['id']}", {"email": first["email"].upper()}, token=admin)
    assert clash.status == 409 and clash.body["code"] == "email_taken"
    assert (await harness.api.get(f"/api/doctors/{second['id']}", token=admin)).body["email"] == new_email


async def test_put_unknown_field_is_400(harness):
    admin = await harness.admin_token()
    doctor = await harness.create_doctor(admin)
    for body in ({"nickname": "Doc"}, {"isRunningLate": True}, {"_id": "x"}, {"name": "Ok", "lateByMinutes": 3}):
        response = await harness.api.put(f"/api/doctors/{doctor['id']}", body, token=admin)
        assert response.status == 400, body
        assert response.body["code"] == "validation_error"
    assert (await harness.api.get(f"/api/doctors/{doctor['id']}", token=admin)).body == doctor


@pytest.mark.parametrize("value", ["10", 0, 241, True, -5, 9.5, None])
async def test_put_bad_avg_consult_minutes_is_400(harness, value):
    admin = await harness.admin_token()
    doctor = await harness.create_doctor(admin)
    response = await harness.api.put(f"/api/doctors/{doctor['id']}", {"avgConsultMinutes": value}, token=admin)
    assert response.status == 400, (value, response.body)
    assert response.body["code"] == "validation_error"
    assert set(response.body["details"]) == {"avgConsultMinutes"}
    assert (await harness.api.get(f"/api/doctors/{doctor['id']}")).body["avgConsultMinutes"] == 12


@pytest.mark.parametrize("body", [{"name": ""}, {"name": 3}, {"availability": "Mon"}, {"phone": None}])
async def test_put_bad_types_are_400(harness, body):
    admin = await harness.admin_token()
    doctor = await harness.create_doctor(admin)
    response = await harness.api.put(f"/api/doctors/{doctor['id']}", body, token=admin)
    assert response.status == 400 and response.body["code"] == "validation_error"
    assert {key.split(".")[0] for key in response.body["details"]} == set(body)


async def test_put_auth(harness):
    admin = await harness.admin_token()
    doctor = await harness.create_doctor(admin)
    patient, _ = await harness.register()
    doctor_token, _ = await harness.doctor_account(doctor, admin)
    anonymous = await harness.api.put(f"/api/doctors/{doctor['id']}", {"name": "X"})
    assert anonymous.status == 401
    for token in (patient, doctor_token):
        response = await harness.api.put(f"/api/doctors/{doctor['id']}", {"name": "X"}, token=token)
        assert response.status == 403 and response.body["code"] == "forbidden"
    assert (await harness.api.get(f"/api/doctors/{doctor['id']}")).body["name"] == doctor["name"]


async def test_put_unknown_id_is_404(harness):
    admin = await harness.admin_token()
    response = await harness.api.put(f"/api/doctors/{ObjectId()}", {"name": "Nobody"}, token=admin)
    assert response.status == 404 and response.body["code"] == "not_found"
    assert await harness.services.store.doctors.count_documents({}) == 0


# -- delete ------------------------------------------------------------------------------------------
async def test_delete_then_get_is_404(harness):
    admin = await harness.admin_token()
    doctor = await harness.create_doctor(admin)
    response = await harness.api.delete(f"/api/doctors/{doctor['id']}", token=admin)
    assert response.status == 200
    assert response.body["id"] == doctor["id"]
    gone = await harness.api.get(f"/api/doctors/{doctor['id']}")
    assert gone.status == 404 and gone.body["code"] == "not_found"
    assert (await harness.api.get("/api/doctors")).body == []
    again = await harness.api.delete(f"/api/doctors/{doctor['id']}", token=admin)
    assert again.status == 404


async def test_delete_auth(harness):
    admin = await harness.admin_token()
    doctor = await harness.create_doctor(admin)
    patient, _ = await harness.register()
    doctor_token, _ = await harness.doctor_account(doctor, admin)
    assert (await harness.api.delete(f"/api/doctors/{doctor['id']}")).status == 401
    for token in (patient, doctor_token):
        response = await harness.api.delete(f"/api/doctors/{doctor['id']}", token=token)
        assert response.status == 403
    assert (await harness.api.get(f"/api/doctors/{doctor['id']}")).status == 200


async def test_delete_with_a_waiting_appointment_is_409(harness):
    admin = await harness.admin_token()
    doctor = await harness.create_doctor(admin)
    patient, _ = await harness.register()
    appointment = await harness.book(patient, doctor["id"])
    response = await harness.api.delete(f"/api/doctors/{doctor['id']}", token=admin)
    assert response.status == 409 and response.body["code"] == "doctor_has_appointments"
    assert (await harness.api.get(f"/api/doctors/{doctor['id']}")).status == 200
    cancelled = await harness.api.patch(f"/api/appointments/{appointment['id']}/status", {"status": "cancelled"},
                                        token=patient)
    assert cancelled.status == 200
    assert (await harness.api.delete(f"/api/doctors/{doctor['id']}", token=admin)).status == 200


async def test_delete_unknown_id_is_404(harness):
    admin = await harness.admin_token()
    response = await harness.api.delete(f"/api/doctors/{ObjectId()}", token=admin)
    assert response.status == 404 and response.body["code"] == "not_found"


# -- malformed ids -----------------------------------------------------------------------------------
@pytest.mark.parametrize("bad_id", MALFORMED_IDS)
async def test_malformed_ids_are_404_on_every_doctor_path(harness, bad_id):
    admin = await harness.admin_token()
    calls = [
        ("GET", f"/api/doctors/{bad_id}", None),
        ("PUT", f"/api/doctors/{bad_id}", {"name": "X"}),
        ("DELETE", f"/api/doctors/{bad_id}", None),
        ("PATCH", f"/api/doctors/{bad_id}/status", {"isRunningLate": True}),
        ("POST", f"/api/doctors/{bad_id}/queue/next", None),
        ("GET", f"/api/queue/doctor/{bad_id}", None),
        ("GET", f"/api/appointments/doctor/{bad_id}", None),
    ]
    for method, path, body in calls:
        response = await harness.api.request(method, path, body, token=admin)
        assert response.status == 404, (method, path, response.status, response.body)
        assert response.body == {"message": response.body["message"], "code": "not_found"}


@pytest.mark.parametrize("bad_id", ["abc", "z" * 24])
async def test_malformed_ids_without_a_token(harness, bad_id):
    public = await harness.api.get(f"/api/doctors/{bad_id}")
    assert public.status == 404 and public.body["code"] == "not_found"
    # The caller is checked before the id, on every protected doctor path.
    for method, path, body in [("PUT", f"/api/doctors/{bad_id}", {"name": "X"}),
                               ("DELETE", f"/api/doctors/{bad_id}", None),
                               ("PATCH", f"/api/doctors/{bad_id}/status", {"isRunningLate": True}),
                               ("POST", f"/api/doctors/{bad_id}/queue/next", None)]:
        response = await harness.api.request(method, path, body)
        assert response.status == 401 and response.body["code"] == "unauthorized", (method, response.body)


async def test_unknown_but_well_formed_id_is_404_on_every_doctor_path(harness):
    admin = await harness.admin_token()
    missing = str(ObjectId())
    calls = [
        ("GET", f"/api/doctors/{missing}", None),
        ("PUT", f"/api/doctors/{missing}", {"name": "X"}),
        ("DELETE", f"/api/doctors/{missing}", None),
        ("PATCH", f"/api/doctors/{missing}/status", {"isRunningLate": True}),
        ("POST", f"/api/doctors/{missing}/queue/next", None),
        ("GET", f"/api/queue/doctor/{missing}", None),
    ]
    for method, path, body in calls:
        response = await harness.api.request(method, path, body, token=admin)
        assert response.status == 404, (method, path, response.status, response.body)
        assert response.body["code"] == "not_found"
