"""Invites: who may create them, how they are stored, linked, redeemed once, and expire."""

from __future__ import annotations

import asyncio
import hashlib
import re
import uuid
from datetime import datetime, timedelta, timezone

import jwt
import pytest
from bson import ObjectId

from tests.conftest import JWT_SECRET

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z$")
URL_SAFE = re.compile(r"^[A-Za-z0-9_-]+$")


def unique_email(prefix: str = "invitee") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.org"


def parse_z(text: str) -> datetime:
    assert ISO_Z.match(text), text
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def invite(harness, admin: str, **body):
    body.setdefault("email", unique_email())
    body.setdefault("role", "admin")
    return await harness.api.post("/api/admin/invites", body, token=admin)


async def redeem(harness, token: str, name: str = "Invited", password: str = "invited-password"):
    return await harness.api.post("/api/auth/register/invite", {"token": token, "name": name, "password": password})


# -- who may invite ----------------------------------------------------------------------------------
async def test_anonymous_cannot_invite(harness):
    response = await harness.api.post("/api/admin/invites", {"email": unique_email(), "role": "admin"})
    assert response.status == 401 and response.body["code"] == "unauthorized"


async def test_patient_cannot_invite(harness):
    patient, _ = await harness.register()
    response = await harness.api.post("/api/admin/invites", {"email": unique_email(), "role": "admin"},
                                      token=patient)
    assert response.status == 403 and response.body["code"] == "forbidden"


async def test_doctor_cannot_invite(harness):
    admin = await harness.admin_token()
    doctor = await harness.create_doctor(admin)
    doctor_token, _ = await harness.doctor_account(doctor, admin)
    response = await harness.api.post("/api/admin/invites", {"email": unique_email(), "role": "admin"},
                                      token=doctor_token)
    assert response.status == 403 and response.body["code"] == "forbidden"


async def test_forbidden_is_decided_before_the_body_is_validated(harness):
    patient, _ = await harness.register()
    response = await harness.api.post("/api/admin/invites", {"nonsense": True}, token=patient)
    assert response.status == 403


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
async def test_other_methods_on_invites_are_405(harness, method):
    admin = await harness.admin_token()
    response = await harness.api.request(method, "/api/admin/invites", token=admin,
                                         body={} if method == "PUT" else None)
    assert response.status == 405 and response.body["code"] == "method_not_allowed"


# -- creating ----------------------------------------------------------------------------------------
async def test_admin_invite_answer_shape_and_default_expiry(harness):
    admin = await harness.admin_token()
    before = datetime.now(timezone.utc)
    response = await invite(harness, admin)
    after = datetime.now(timezone.utc)
    assert response.status == 201, response.body
    assert set(response.body) == {"inviteId", "token", "expiresAt"}
    assert ObjectId.is_valid(response.body["inviteId"]) and len(response.body["inviteId"]) == 24
    expires = parse_z(response.body["expiresAt"])
    assert before + timedelta(hours=72) - timedelta(seconds=1) <= expires <= after + timedelta(hours=72)


async def test_invite_token_is_long_random_and_url_safe(harness):
    admin = await harness.admin_token()
    tokens = set()
    for _ in range(5):
        response = await invite(harness, admin)
        token = response.body["token"]
        assert len(token) >= 43 and URL_SAFE.match(token), token
        tokens.add(token)
    assert len(tokens) == 5


async def test_store_holds_only_the_token_hash(harness):
    admin = await harness.admin_token()
    email = unique_email()
    response = await invite(harness, admin, email=email)
    token = response.body["token"]
    documents = await harness.services.store.invites.find({}).to_list(None)
    assert documents
    for document in documents:
        assert token not in repr(document)
        assert all(token not in str(value) for value in document.values())
    mine = await harness.services.store.invites.find_one({"_id": ObjectId(response.body["inviteId"])})
    assert mine["email"] == email and mine["role"] == "admin"
    assert mine["tokenHash"] == hashlib.sha256(token.encode()).hexdigest()
    assert "token" not in mine


@pytest.mark.parametrize("hours", [1, 720])
async def test_expires_in_hours_bounds_accepted(harness, hours):
    admin = await harness.admin_token()
    before = datetime.now(timezone.utc)
    response = await invite(harness, admin, expiresInHours=hours)
    assert response.status == 201, response.body
    expires = parse_z(response.body["expiresAt"])
    assert abs(expires - (before + timedelta(hours=hours))) < timedelta(minutes=5)


@pytest.mark.parametrize("hours", [0, -1, 721, "5", True, False, 1.5, None, [5]])
async def test_expires_in_hours_bad_values_are_400(harness, hours):
    admin = await harness.admin_token()
    response = await invite(harness, admin, expiresInHours=hours)
    assert response.status == 400, (hours, response.body)
    assert response.body["code"] == "validation_error"
    assert set(response.body["details"]) == {"expiresInHours"}


@pytest.mark.parametrize("body, fields", [
    ({}, {"email", "role"}),
    ({"email": "nope", "role": "admin"}, {"email"}),
    ({"email": "a@example.org", "role": "patient"}, {"role"}),
    ({"email": "a@example.org", "role": "root"}, {"role"}),
    ({"email": "a@example.org", "role": "admin", "extra": 1}, {"extra"}),
    ({"email": "a@example.org", "role": "doctor", "doctorId": "abc"}, {"doctorId"}),
])
async def test_invite_validation(harness, body, fields):
    admin = await harness.admin_token()
    response = await harness.api.post("/api/admin/invites", body, token=admin)
    assert response.status == 400, response.body
    assert response.body["code"] == "validation_error"
    assert set(response.body["details"]) == fields


async def test_active_invite_for_same_email_and_role_is_409(harness):
    admin = await harness.admin_token()
    email = unique_email()
    first = await invite(harness, admin, email=email)
    assert first.status == 201
    second = await invite(harness, admin, email=f"  {email.upper()} ")
    assert second.status == 409 and second.body["code"] == "invite_exists"
    assert await harness.services.store.invites.count_documents({"email": email}) == 1


async def test_same_email_different_role_is_allowed(harness):
    admin = await harness.admin_token()
    doctor = await harness.create_doctor(admin)
    as_doctor = await invite(harness, admin, email=doctor["email"], role="doctor")
    as_admin = await invite(harness, admin, email=doctor["email"], role="admin")
    assert as_doctor.status == 201 and as_admin.status == 201


async def test_an_expired_invite_does_not_block_a_new_one(harness):
    admin = await harness.admin_token()
    email = unique_email()
    first = await invite(harness, admin, email=email)
    await harness.services.store.invites.update_one(
        {"_id": ObjectId(first.body["inviteId"])},
        {"$set": {"expiresAt": datetime.now(timezone.utc) - timedelta(minutes=1)}})
    second = await invite(harness, admin, email=email)
    assert second.status == 201, second.body
    assert (await redeem(harness, first.body["token"])).body["code"] == "invite_expired"
    assert (await redeem(harness, second.body["token"])).status == 201


async def test_invite_for_an_email_that_has_an_account_is_409(harness):
    admin = await harness.admin_token()
    email = unique_email()
    await harness.register(email=email)
    response = await invite(harness, admin, email=email.upper())
    assert response.status == 409 and response.body["code"] == "email_taken"


# -- doctor links ------------------------------------------------------------------------------------
async def test_doctor_invite_linked_by_doctor_id(harness):
    admin = await harness.admin_token()
    doctor = await harness.create_doctor(admin)
    email = unique_email("other-address")
    response = await invite(harness, admin, email=email, role="doctor", doctorId=doctor["id"])
    assert response.status == 201, response.body
    stored = await harness.services.store.invites.find_one({"_id": ObjectId(response.body["inviteId"])})
    assert stored["doctorId"] == ObjectId(doctor["id"])
    registered = await redeem(harness, response.body["token"], name="Dr. Linked")
    assert registered.status == 201
    assert registered.body["user"] == {"id": registered.body["user"]["id"], "name": "Dr. Linked",
                                       "email": email, "role": "doctor", "doctorId": doctor["id"], "disabled": False}


async def test_doctor_invite_linked_by_profile_email(harness):
    admin = await harness.admin_token()
    doctor = await harness.create_doctor(admin)
    response = await invite(harness, admin, email=doctor["email"].upper(), role="doctor")
    assert response.status == 201, response.body
    registered = await redeem(harness, response.body["token"])
    assert registered.status == 201
    assert registered.body["user"]["role"] == "doctor"
    assert registered.body["user"]["doctorId"] == doctor["id"]
    assert registered.body["user"]["email"] == doctor["email"]


async def test_doctor_invite_without_link_is_400(harness):
    admin = await harness.admin_token()
    response = await invite(harness, admin, email=unique_email("no-profile"), role="doctor")
    assert response.status == 400
    assert response.body["code"] == "validation_error"
    assert set(response.body["details"]) == {"doctorId"}
    assert await harness.services.store.invites.count_documents({}) == 0


async def test_doctor_invite_with_unknown_doctor_id_is_400(harness):
    admin = await harness.admin_token()
    response = await invite(harness, admin, role="doctor", doctorId=str(ObjectId()))
    assert response.status == 400 and set(response.body["details"]) == {"doctorId"}


async def test_admin_invite_with_doctor_id_is_400(harness):
    admin = await harness.admin_token()
    doctor = await harness.create_doctor(admin)
    response = await invite(harness, admin, role="admin", doctorId=doctor["id"])
    assert response.status == 400 and set(response.body["details"]) == {"doctorId"}


async def test_doctor_token_carries_its_doctor_id(harness):
    admin = await harness.admin_token()
    doctor = await harness.create_doctor(admin)
    token, user = await harness.doctor_account(doctor, admin)
    claims = jwt.decode(token, JWT_SECRET, algorithms=["HS256"])
    assert claims["role"] == "doctor" and claims["doctorId"] == doctor["id"] and claims["sub"] == user["id"]


async def test_doctor_profile_deleted_before_redemption(harness):
    admin = await harness.admin_token()
    doctor = await harness.create_doctor(admin)
    response = await invite(harness, admin, email=doctor["email"], role="doctor")
    deleted = await harness.api.delete(f"/api/doctors/{doctor['id']}", token=admin)
    assert deleted.status == 200
    registered = await redeem(harness, response.body["token"])
    assert registered.status == 404 and registered.body["code"] == "doctor_not_found"
    assert await harness.services.store.users.count_documents({"email": doctor["email"]}) == 0


# -- redeeming ---------------------------------------------------------------------------------------
async def test_admin_invite_creates_an_admin_who_can_invite(harness):
    admin = await harness.admin_token()
    email = unique_email("second-admin")
    created = await invite(harness, admin, email=email, role="admin")
    registered = await redeem(harness, created.body["token"], name="Second Admin")
    assert registered.status == 201, registered.body
    assert set(registered.body) == {"token", "refreshToken", "user"}
    user = registered.body["user"]
    assert user == {"id": user["id"], "name": "Second Admin", "email": email, "role": "admin", "disabled": False}
    assert "passwordHash" not in registered.text
    new_admin = registered.body["token"]
    again = await invite(harness, new_admin, email=unique_email(), role="admin")
    assert again.status == 201, again.body
    login = await harness.api.post("/api/auth/login", {"email": email, "password": "invited-password"})
    assert login.status == 200 and login.body["user"]["role"] == "admin"
    stored = await harness.services.store.invites.find_one({"_id": ObjectId(created.body["inviteId"])})
    assert stored["usedAt"] is not None and str(stored["usedBy"]) == user["id"]


async def test_reused_invite_is_400_invite_used(harness):
    admin = await harness.admin_token()
    created = await invite(harness, admin)
    assert (await redeem(harness, created.body["token"])).status == 201
    again = await redeem(harness, created.body["token"], name="Someone else")
    assert again.status == 400
    assert again.body["code"] == "invite_used"
    assert set(again.body) == {"message", "code"}


@pytest.mark.parametrize("token", ["x", "A" * 43, "not-a-real-invite-token-at-all-0123456789abcdef"])
async def test_unknown_invite_is_400_invite_invalid(harness, token):
    response = await redeem(harness, token)
    assert response.status == 400
    assert response.body["code"] == "invite_invalid"


async def test_expired_invite_is_400_invite_expired(harness):
    admin = await harness.admin_token()
    created = await invite(harness, admin)
    result = await harness.services.store.invites.update_one(
        {"_id": ObjectId(created.body["inviteId"])},
        {"$set": {"expiresAt": datetime.now(timezone.utc) - timedelta(seconds=1)}})
    assert result.modified_count == 1
    response = await redeem(harness, created.body["token"])
    assert response.status == 400
    assert response.body["code"] == "invite_expired"


@pytest.mark.parametrize("body, fields", [
    ({}, {"token", "name", "password"}),
    ({"token": "t", "name": "N", "password": "short"}, {"password"}),
    ({"token": "t", "name": "N", "password": "a" * 73}, {"password"}),
    ({"token": "t", "name": "N", "password": "long-enough", "role": "admin"}, {"role"}),
    ({"token": "t", "name": "N", "password": "long-enough", "email": "x@example.org"}, {"email"}),
    ({"token": "", "name": "N", "password": "long-enough"}, {"token"}),
])
async def test_invite_registration_validation(harness, body, fields):
    response = await harness.api.post("/api/auth/register/invite", body)
    assert response.status == 400
    assert response.body["code"] == "validation_error"
    assert set(response.body["details"]) == fields


async def test_a_refused_redemption_does_not_use_up_the_invite(harness):
    admin = await harness.admin_token()
    created = await invite(harness, admin)
    bad = await redeem(harness, created.body["token"], password="short")
    assert bad.status == 400 and bad.body["code"] == "validation_error"
    assert (await redeem(harness, created.body["token"])).status == 201


async def test_invite_email_taken_meanwhile_is_409_and_invite_stays_usable(harness):
    """An account of the invite's email that appears anyway (a registration whose check ran just before the
    invite was made: registering an invited email is refused now, so the store is written directly)."""
    admin = await harness.admin_token()
    email = unique_email()
    created = await invite(harness, admin, email=email)
    await harness.services.store.users.insert_one({"name": "Early", "email": email, "passwordHash": "x",
                                                   "role": "patient"})
    response = await redeem(harness, created.body["token"])
    assert response.status == 409 and response.body["code"] == "email_taken"
    stored = await harness.services.store.invites.find_one({"_id": ObjectId(created.body["inviteId"])})
    assert stored["usedAt"] is None


# -- squatting an invited email -------------------------------------------------------------------------
async def test_an_email_with_a_pending_invite_cannot_be_registered(harness):
    """The attack: someone who learns a new doctor's email registers it as a patient before the doctor
    redeems the invite, which then fails for good. The registration is refused; the invite still works."""
    admin = await harness.admin_token()
    doctor = await harness.create_doctor(admin)
    created = await invite(harness, admin, email=doctor["email"], role="doctor")
    assert created.status == 201
    for email in (doctor["email"], doctor["email"].upper(), f"  {doctor['email']} "):
        squat = await harness.api.post("/api/auth/register", {"name": "Squatter", "email": email,
                                                              "password": "squatter-password"})
        assert squat.status == 409 and squat.body["code"] == "email_taken", email
    redeemed = await redeem(harness, created.body["token"])
    assert redeemed.status == 201 and redeemed.body["user"]["role"] == "doctor"

    # Only a usable invite keeps its email: a revoked one frees it.
    other = unique_email()
    revoked = await invite(harness, admin, email=other)
    assert (await harness.api.delete(f"/api/admin/invites/{revoked.body['inviteId']}", token=admin)).status == 204
    assert (await harness.api.post("/api/auth/register", {"name": "P", "email": other,
                                                          "password": "patient-password"})).status == 201


async def test_an_email_squatted_before_its_invite_is_freed_by_deleting_the_account(harness):
    """Registered before the invite was made: the invite is refused (`email_taken`), disabling the squatter
    does not free the email, deleting the account (it has no history) does."""
    admin = await harness.admin_token()
    doctor = await harness.create_doctor(admin)
    squatter_token, squatter = await harness.register(email=doctor["email"])
    refused = await invite(harness, admin, email=doctor["email"], role="doctor")
    assert refused.status == 409 and refused.body["code"] == "email_taken"
    disabled = await harness.api.patch(f"/api/admin/users/{squatter['id']}", {"disabled": True}, token=admin)
    assert disabled.status == 200
    assert (await invite(harness, admin, email=doctor["email"], role="doctor")).status == 409

    deleted = await harness.api.delete(f"/api/admin/users/{squatter['id']}", token=admin)
    assert deleted.status == 204, deleted.body
    created = await invite(harness, admin, email=doctor["email"], role="doctor")
    assert created.status == 201
    redeemed = await redeem(harness, created.body["token"])
    assert redeemed.status == 201 and redeemed.body["user"]["email"] == doctor["email"]
    assert redeemed.body["user"]["id"] != squatter["id"]
    assert (await harness.api.get("/api/auth/me", token=squatter_token)).status == 401
    log = await harness.api.get(f"/api/admin/audit?action=user.deleted&target={squatter['id']}", token=admin)
    assert log.body["total"] == 1 and log.body["items"][0]["details"]["email"] == doctor["email"]


async def test_concurrent_redemptions_of_one_invite_create_one_account(harness):
    admin = await harness.admin_token()
    email = unique_email("race")
    created = await invite(harness, admin, email=email)
    responses = await asyncio.gather(*[redeem(harness, created.body["token"], name=f"Racer {i}")
                                       for i in range(8)])
    winners = [r for r in responses if r.status == 201]
    losers = [r for r in responses if r.status != 201]
    assert len(winners) == 1, [(r.status, r.body) for r in responses]
    for loser in losers:
        assert (loser.status, loser.body["code"]) in ((400, "invite_used"), (409, "email_taken")), loser.body
    assert await harness.services.store.users.count_documents({"email": email}) == 1
    stored = await harness.services.store.invites.find_one({"_id": ObjectId(created.body["inviteId"])})
    assert str(stored["usedBy"]) == winners[0].body["user"]["id"]
