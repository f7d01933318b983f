"""Sessions that can end, accounts an admin can stop, invites an admin can see and take back, and the
audit log. Each rule is tried the way someone would try to break it."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid

import pytest
from bson import ObjectId

from tests.conftest import ADMIN_PASSWORD, future, short_lived, start_harness


async def sign_in(harness, email: str, password: str):
    return await harness.api.post("/api/auth/login", {"email": email, "password": password})


async def new_patient(harness, password: str = "patient-password"):
    email = f"p-{uuid.uuid4().hex[:8]}@example.org"
    response = await harness.api.post("/api/auth/register", {"name": "Pat", "email": email, "password": password})
    assert response.status == 201
    return email, response.body


async def closed_with(ws, timeout: float = 2.0) -> int | None:
    message = await asyncio.wait_for(ws.connection.read_message(), timeout)
    while message is not None:
        message = await asyncio.wait_for(ws.connection.read_message(), timeout)
    return ws.connection.close_code


# -- refresh, reuse, logout, password ---------------------------------------------------------------------------
async def test_refresh_rotates_and_a_replayed_refresh_token_ends_the_session(harness):
    email, signed = await new_patient(harness)
    first_refresh = signed["refreshToken"]
    renewed = await harness.api.post("/api/auth/refresh", {"refreshToken": first_refresh})
    assert renewed.status == 200 and set(renewed.body) == {"token", "refreshToken"}
    assert renewed.body["refreshToken"] != first_refresh
    assert (await harness.api.get("/api/auth/me", token=renewed.body["token"])).status == 200

    replayed = await harness.api.post("/api/auth/refresh", {"refreshToken": first_refresh})  # a stolen copy
    assert replayed.status == 401
    # The whole session is over: the thief's and the owner's latest tokens alike.
    assert (await harness.api.post("/api/auth/refresh", {"refreshToken": renewed.body["refreshToken"]})).status == 401
    for token in (signed["token"], renewed.body["token"]):
        refused = await harness.api.get("/api/auth/me", token=token)
        assert refused.status == 401 and refused.body["code"] == "session_revoked"
    # Another sign-in is another session, untouched.
    again = await sign_in(harness, email, "patient-password")
    assert (await harness.api.get("/api/auth/me", token=again.body["token"])).status == 200
    for bad in ({"refreshToken": "nope"}, {"refreshToken": ""}, {}, {"refreshToken": 5}, {"token": "x"}):
        refused = await harness.api.post("/api/auth/refresh", bad)
        assert refused.status in (400, 401), bad


async def test_a_spent_refresh_token_ends_the_session_however_many_rotations_ago(harness):
    """The attack: a thief rotates a stolen refresh token again and again (65 times was enough when the
    server remembered the last 64 spent ones), then the real device presents its spent copy."""
    _, signed = await new_patient(harness)
    original = signed["refreshToken"]
    latest = original
    for _ in range(70):
        renewed = await harness.api.post("/api/auth/refresh", {"refreshToken": latest})
        assert renewed.status == 200
        latest, access = renewed.body["refreshToken"], renewed.body["token"]
    assert (await harness.api.get("/api/auth/me", token=access)).status == 200

    presented = await harness.api.post("/api/auth/refresh", {"refreshToken": original})
    assert presented.status == 401 and presented.body["code"] == "invalid_refresh_token"
    # The session is over for the thief too: its newest refresh and access tokens are dead.
    assert (await harness.api.post("/api/auth/refresh", {"refreshToken": latest})).status == 401
    refused = await harness.api.get("/api/auth/me", token=access)
    assert refused.status == 401 and refused.body["code"] == "session_revoked"
    stored = await harness.services.store.sessions.find_one({"_id": ObjectId(access_session(access))})
    assert stored["revokedReason"] == "refresh_token_reused"
    # What the store keeps per session does not grow with the rotations: no list of spent tokens.
    assert set(stored) <= {"_id", "userId", "createdAt", "lastUsedAt", "expiresAt", "generation", "tokenValue",
                           "revokedAt", "revokedReason"}
    assert original not in json.dumps(stored, default=str) and latest not in json.dumps(stored, default=str)


async def test_a_refresh_token_the_server_did_not_make_revokes_nothing(harness):
    """Knowing a session's id (it is in every access token) and guessing a generation is not enough to end
    someone's session: only a token whose MAC checks out counts as a spent one."""
    _, signed = await new_patient(harness)
    session_id, generation, mac = signed["refreshToken"].split(".")
    altered = mac[:-1] + ("B" if mac[-1] != "B" else "C")
    renewed = await harness.api.post("/api/auth/refresh", {"refreshToken": signed["refreshToken"]})
    assert renewed.status == 200
    for forged in (f"{session_id}.{generation}.{'A' * 43}", f"{session_id}.1.{'A' * 43}",
                   f"{session_id}.0.{altered}", signed["refreshToken"] + "x",
                   f"{'0' * 24}.0.{'A' * 43}", session_id):
        refused = await harness.api.post("/api/auth/refresh", {"refreshToken": forged})
        assert refused.status == 401 and refused.body["code"] == "invalid_refresh_token", forged
    assert (await harness.api.get("/api/auth/me", token=renewed.body["token"])).status == 200
    assert (await harness.api.post("/api/auth/refresh", {"refreshToken": renewed.body["refreshToken"]})).status == 200


def access_session(token: str) -> str:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sid"]


async def test_concurrent_refreshes_with_one_token_rotate_once(harness):
    _, signed = await new_patient(harness)
    answers = await asyncio.gather(*(harness.api.post("/api/auth/refresh", {"refreshToken": signed["refreshToken"]})
                                     for _ in range(3)))
    assert sorted(a.status for a in answers)[0] == 200 and [a.status for a in answers].count(200) == 1


async def test_logout_ends_the_session_and_its_sockets(harness):
    _, signed = await new_patient(harness)
    other = await harness.api.post("/api/auth/refresh", {"refreshToken": signed["refreshToken"]})
    token = other.body["token"]
    ws = await harness.ws(token)
    await ws.send({"type": "ping"})
    assert await ws.recv() == {"event": "pong"}
    assert (await harness.api.post("/api/auth/logout")).status == 401
    out = await harness.api.post("/api/auth/logout", token=token)
    assert out.status == 204 and out.text == ""
    assert await closed_with(ws) == 4001
    refused = await harness.api.get("/api/auth/me", token=token)
    assert refused.status == 401 and refused.body["code"] == "session_revoked"
    assert (await harness.api.post("/api/auth/refresh", {"refreshToken": other.body["refreshToken"]})).status == 401
    with pytest.raises(Exception):  # a new socket with the ended session's token is refused at the upgrade
        await harness.ws(token)


async def test_password_change_ends_every_other_session(harness):
    email, first = await new_patient(harness)
    second = (await sign_in(harness, email, "patient-password")).body
    wrong = await harness.api.post("/api/auth/password", {"currentPassword": "not-it-at-all",
                                                          "newPassword": "a-new-password"}, token=first["token"])
    assert wrong.status == 401
    short = await harness.api.post("/api/auth/password", {"currentPassword": "patient-password",
                                                          "newPassword": "short"}, token=first["token"])
    assert short.status == 400 and "newPassword" in short.body["details"]
    changed = await harness.api.post("/api/auth/password", {"currentPassword": "patient-password",
                                                            "newPassword": "a-new-password"}, token=first["token"])
    assert changed.status == 204
    assert (await harness.api.get("/api/auth/me", token=first["token"])).status == 200     # this session stays
    assert (await harness.api.get("/api/auth/me", token=second["token"])).status == 401    # the others end
    assert (await harness.api.post("/api/auth/refresh", {"refreshToken": second["refreshToken"]})).status == 401
    assert (await sign_in(harness, email, "patient-password")).status == 401
    assert (await sign_in(harness, email, "a-new-password")).status == 200


async def test_a_client_that_only_uses_the_access_token_keeps_working(harness):
    _, signed = await new_patient(harness)
    for _ in range(3):
        assert (await harness.api.get("/api/appointments/my", token=signed["token"])).status == 200


async def test_revocations_survive_a_restart(harness):
    """A node that starts later still refuses a session ended before it started."""
    email, signed = await new_patient(harness)
    await harness.api.post("/api/auth/logout", token=signed["token"])
    later = await start_harness(store=harness.services.store,
                                settings={"mongo_db": harness.services.settings.mongo_db})
    try:
        refused = await later.api.get("/api/auth/me", token=signed["token"])
        assert refused.status == 401 and refused.body["code"] == "session_revoked"
    finally:
        await later.server.stop()


# -- the WebSocket auth frame --------------------------------------------------------------------------------------
async def test_an_auth_frame_keeps_a_socket_open_past_its_first_token(harness):
    email, signed = await new_patient(harness)
    short_lived(harness.services.tokens, seconds=1)
    first = await harness.api.post("/api/auth/refresh", {"refreshToken": signed["refreshToken"]})  # ends in 1-2 s
    harness.services.tokens.clock = time.time
    fresher = await harness.api.post("/api/auth/refresh", {"refreshToken": first.body["refreshToken"]})
    ws = await harness.ws(first.body["token"])
    witness = await harness.ws(first.body["token"])  # opened after `ws` with the same token, never renewed
    await ws.send({"type": "auth", "token": fresher.body["token"]})
    ok = await ws.expect("auth:ok")
    assert ok["data"]["expiresAt"].endswith("Z")
    assert await closed_with(witness, timeout=10) == 4001   # the first token has expired by now
    await ws.send({"type": "ping"})
    assert (await ws.expect("pong"))["event"] == "pong"
    ws.close()


async def test_an_auth_frame_with_someone_elses_token_changes_nothing(harness):
    _, mine = await new_patient(harness)
    _, theirs = await new_patient(harness)
    short_lived(harness.services.tokens, seconds=1)
    short = await harness.api.post("/api/auth/refresh", {"refreshToken": mine["refreshToken"]})  # ends in 1-2 s
    harness.services.tokens.clock = time.time
    ws = await harness.ws(short.body["token"])
    for token in (theirs["token"], "not-a-token", 5):
        await ws.send({"type": "auth", "token": token})
        error = await ws.expect("error")
        assert error["data"]["code"] in ("bad_token", "bad_frame")
    assert await closed_with(ws, timeout=10) == 4001         # still ends with its own token


# -- accounts an admin can stop ----------------------------------------------------------------------------------
async def test_admin_lists_finds_disables_and_enables_accounts(harness):
    admin = await harness.admin_token()
    email, patient = await new_patient(harness)
    ws = await harness.ws(patient["token"])
    listing = await harness.api.get("/api/admin/users?role=patient&q=" + email.split("@")[0].upper(), token=admin)
    assert listing.status == 200 and [u["email"] for u in listing.body["items"]] == [email]
    assert listing.body["items"][0]["disabled"] is False and "passwordHash" not in listing.text
    assert set(listing.body) == {"items", "total", "limit", "offset"} and listing.body["total"] == 1
    user_id = patient["user"]["id"]
    disabled = await harness.api.patch(f"/api/admin/users/{user_id.upper()}", {"disabled": True}, token=admin)
    assert disabled.status == 200 and disabled.body["disabled"] is True and disabled.body["id"] == user_id
    assert await closed_with(ws, timeout=1.0) == 4003
    refused = await sign_in(harness, email, "patient-password")
    assert refused.status == 403 and refused.body["code"] == "account_disabled"
    assert (await harness.api.get("/api/auth/me", token=patient["token"])).status == 401
    assert (await harness.api.post("/api/auth/refresh", {"refreshToken": patient["refreshToken"]})).status == 401
    enabled = await harness.api.patch(f"/api/admin/users/{user_id}", {"disabled": False}, token=admin)
    assert enabled.status == 200 and enabled.body["disabled"] is False
    assert (await sign_in(harness, email, "patient-password")).status == 200
    assert (await harness.api.get("/api/auth/me", token=patient["token"])).status == 401  # ended stays ended


async def test_who_may_manage_accounts(harness):
    admin = await harness.admin_token()
    me = (await harness.api.get("/api/auth/me", token=admin)).body["user"]
    own = await harness.api.patch(f"/api/admin/users/{me['id']}", {"disabled": True}, token=admin)
    assert own.status == 409
    _, patient = await new_patient(harness)
    doctor = await harness.create_doctor(admin)
    doctor_token, _ = await harness.doctor_account(doctor, admin)
    for token in (patient["token"], doctor_token):
        assert (await harness.api.get("/api/admin/users", token=token)).status == 403
        assert (await harness.api.patch(f"/api/admin/users/{me['id']}", {"disabled": True}, token=token)).status == 403
        assert (await harness.api.get("/api/admin/audit", token=token)).status == 403
        assert (await harness.api.get("/api/admin/invites", token=token)).status == 403
    assert (await harness.api.get("/api/admin/users")).status == 401
    assert (await harness.api.patch(f"/api/admin/users/{ObjectId()}", {"disabled": True}, token=admin)).status == 404
    for bad in ({"disabled": "yes"}, {}, {"disabled": True, "role": "admin"}):
        assert (await harness.api.patch(f"/api/admin/users/{patient['user']['id']}", bad, token=admin)).status == 400
    assert (await harness.api.get("/api/admin/users?role=king", token=admin)).status == 400


async def test_deleting_an_account_without_history_frees_it_and_ends_its_sessions(harness):
    admin = await harness.admin_token()
    email, signed = await new_patient(harness)
    user_id = signed["user"]["id"]
    for who in ((await new_patient(harness))[1]["token"], None):
        refused = await harness.api.delete(f"/api/admin/users/{user_id}", token=who)
        assert refused.status == (403 if who else 401)
    doctor = await harness.create_doctor(admin)
    doctor_token, _ = await harness.doctor_account(doctor, admin)
    assert (await harness.api.delete(f"/api/admin/users/{user_id}", token=doctor_token)).status == 403
    ws = await harness.ws(signed["token"])
    deleted = await harness.api.delete(f"/api/admin/users/{user_id}", token=admin)
    assert deleted.status == 204 and deleted.text == ""
    assert await closed_with(ws) == 4001
    assert (await harness.api.get("/api/auth/me", token=signed["token"])).status == 401
    assert (await harness.api.post("/api/auth/refresh", {"refreshToken": signed["refreshToken"]})).status == 401
    assert (await sign_in(harness, email, "patient-password")).status == 401
    assert (await harness.api.delete(f"/api/admin/users/{user_id}", token=admin)).status == 404
    assert (await harness.api.delete(f"/api/admin/users/{ObjectId()}", token=admin)).status == 404
    assert (await harness.api.delete("/api/admin/users/not-an-id", token=admin)).status == 404
    again = await harness.api.post("/api/auth/register", {"name": "Pat", "email": email, "password": "patient-password"})
    assert again.status == 201 and again.body["user"]["id"] != user_id


async def test_an_account_with_history_or_your_own_is_not_deleted(harness):
    admin = await harness.admin_token()
    me = await harness.api.get("/api/auth/me", token=admin)
    refused = await harness.api.delete(f"/api/admin/users/{me.body['user']['id']}", token=admin)
    assert refused.status == 409 and refused.body["code"] == "cannot_delete_self"
    doctor = await harness.create_doctor(admin)
    _, booked = await new_patient(harness)
    appointment = await harness.book(booked["token"], doctor["id"], future(30))
    cancelled = await harness.api.patch(f"/api/appointments/{appointment['id']}/status", {"status": "cancelled"},
                                        token=booked["token"])
    assert cancelled.status == 200
    _, changed = await new_patient(harness)
    assert (await harness.api.post("/api/auth/password", {"currentPassword": "patient-password",
                                                          "newPassword": "another-password-2"},
                                   token=changed["token"])).status == 204  # audited: history
    _, invited = await harness.doctor_account(await harness.create_doctor(admin), admin)  # redeemed: audited
    for user in (booked["user"], changed["user"], invited):
        refused = await harness.api.delete(f"/api/admin/users/{user['id']}", token=admin)
        assert refused.status == 409 and refused.body["code"] == "user_has_history", user
        assert (await harness.services.store.users.find_one({"_id": ObjectId(user["id"])})) is not None
    assert (await harness.api.get("/api/auth/me", token=booked["token"])).status == 200


async def test_deleting_a_doctor_profile_disables_its_accounts(harness):
    admin = await harness.admin_token()
    doctor = await harness.create_doctor(admin)
    doctor_token, user = await harness.doctor_account(doctor, admin)
    assert (await harness.api.delete(f"/api/doctors/{doctor['id']}", token=admin)).status == 200
    assert (await harness.api.get("/api/auth/me", token=doctor_token)).status == 401
    refused = await sign_in(harness, user["email"], "doctor-password")
    assert refused.status == 403 and refused.body["code"] == "account_disabled"


# -- invites an admin can see and take back -----------------------------------------------------------------------
async def test_invites_are_listed_without_tokens_and_can_be_revoked(harness):
    admin = await harness.admin_token()
    made = [await harness.api.post("/api/admin/invites", {"email": f"a{i}-{uuid.uuid4().hex[:6]}@example.org",
                                                          "role": "admin"}, token=admin) for i in range(3)]
    listing = await harness.api.get("/api/admin/invites?status=active", token=admin)
    assert listing.status == 200 and [i["inviteId"] for i in listing.body["items"]] == [
        m.body["inviteId"] for m in reversed(made)]                        # newest first
    for item in listing.body["items"]:
        assert set(item) == {"inviteId", "email", "role", "status", "createdAt", "expiresAt", "createdBy"}
    assert not any(m.body["token"] in listing.text for m in made)
    revoke = await harness.api.delete(f"/api/admin/invites/{made[0].body['inviteId']}", token=admin)
    assert revoke.status == 204
    redeem = await harness.api.post("/api/auth/register/invite", {"token": made[0].body["token"], "name": "X",
                                                                  "password": "some-password"})
    assert redeem.status == 400 and redeem.body["code"] == "invite_revoked"
    used = await harness.api.post("/api/auth/register/invite", {"token": made[1].body["token"], "name": "Y",
                                                                "password": "some-password"})
    assert used.status == 201
    again = await harness.api.delete(f"/api/admin/invites/{made[1].body['inviteId']}", token=admin)
    assert again.status == 409
    statuses = {i["inviteId"]: i["status"] for i in (await harness.api.get("/api/admin/invites", token=admin)).body["items"]}
    assert [statuses[m.body["inviteId"]] for m in made] == ["revoked", "used", "active"]
    assert (await harness.api.get("/api/admin/invites?status=revoked", token=admin)).body["total"] == 1
    assert (await harness.api.delete(f"/api/admin/invites/{ObjectId()}", token=admin)).status == 404
    assert (await harness.api.get("/api/admin/invites?status=lost", token=admin)).status == 400


# -- the audit log ----------------------------------------------------------------------------------------------------
async def test_the_audit_log_records_who_did_what_and_never_a_secret(harness):
    admin = await harness.admin_token()
    secrets = [ADMIN_PASSWORD, "doctor-password", "patient-password", "a-new-password"]
    doctor = await harness.create_doctor(admin)
    invite = await harness.api.post("/api/admin/invites", {"email": doctor["email"], "role": "doctor"}, token=admin,
                                    headers={"X-Request-Id": "audit-trail-1"})
    secrets.append(invite.body["token"])
    redeemed = await harness.api.post("/api/auth/register/invite", {"token": invite.body["token"], "name": "Dr",
                                                                    "password": "doctor-password"})
    secrets += [redeemed.body["token"], redeemed.body["refreshToken"]]
    doctor_token = redeemed.body["token"]
    await harness.api.put(f"/api/doctors/{doctor['id']}", {"specialization": "ENT"}, token=admin)
    await harness.api.patch(f"/api/doctors/{doctor['id']}/status", {"isRunningLate": True, "lateByMinutes": 5},
                            token=doctor_token)
    email, patient = await new_patient(harness)
    secrets += [patient["token"], patient["refreshToken"]]
    booked = await harness.book(patient["token"], doctor["id"], future(20))
    await harness.api.patch(f"/api/appointments/{booked['id']}/status", {"status": "confirmed"}, token=doctor_token)
    await harness.api.post(f"/api/doctors/{doctor['id']}/queue/next", token=doctor_token)
    await harness.api.post("/api/auth/password", {"currentPassword": "patient-password",
                                                  "newPassword": "a-new-password"}, token=patient["token"])
    await harness.api.patch(f"/api/admin/users/{patient['user']['id']}", {"disabled": True}, token=admin)
    await harness.api.patch(f"/api/admin/users/{patient['user']['id']}", {"disabled": False}, token=admin)
    other = await harness.create_doctor(admin)
    await harness.api.delete(f"/api/doctors/{other['id']}", token=admin)

    log = await harness.api.get("/api/admin/audit?limit=200", token=admin)
    assert log.status == 200
    actions = [e["action"] for e in log.body["items"]]
    for action in ("admin.seeded", "doctor.created", "invite.created", "invite.redeemed", "doctor.updated",
                   "doctor.status_changed", "appointment.status_changed", "queue.call_next", "password.changed",
                   "user.disabled", "user.enabled", "doctor.deleted"):
        assert action in actions, action
    assert actions[0] == "doctor.deleted" and actions[-1] == "admin.seeded"   # newest first
    entry = next(e for e in log.body["items"] if e["action"] == "invite.created")
    assert set(entry) == {"id", "at", "actorId", "actorRole", "action", "target", "details", "requestId", "ip"}
    assert (entry["actorRole"], entry["requestId"], entry["ip"]) == ("admin", "audit-trail-1", "127.0.0.1")
    assert entry["target"] == invite.body["inviteId"]
    status_change = next(e for e in log.body["items"] if e["action"] == "appointment.status_changed")
    assert status_change["actorRole"] == "doctor" and status_change["details"] == {"from": "pending", "to": "confirmed"}
    # Filters.
    only = await harness.api.get("/api/admin/audit?action=queue.call_next", token=admin)
    assert [e["action"] for e in only.body["items"]] == ["queue.call_next"]
    by_target = await harness.api.get(f"/api/admin/audit?target={doctor['id']}", token=admin)
    assert {e["action"] for e in by_target.body["items"]} == {"doctor.created", "doctor.updated",
                                                              "doctor.status_changed", "queue.call_next"}
    by_actor = await harness.api.get(f"/api/admin/audit?actor={status_change['actorId']}", token=admin)
    assert {e["actorRole"] for e in by_actor.body["items"]} == {"doctor"}
    # Never a secret, in what the API shows or in what the store holds.
    stored = json.dumps([e async for e in harness.services.store.audit.find({})], default=str)
    for secret in secrets:
        assert secret not in log.text and secret not in stored
    assert "$2b$" not in stored
    assert (await harness.api.get("/api/admin/audit?action=deleted", token=admin)).status == 400


# -- two nodes over the real Redis -----------------------------------------------------------------------------------
async def test_an_ended_session_and_a_disabled_account_are_refused_on_every_node(two_nodes):
    node_a, node_b = two_nodes
    _, leaving = await new_patient(node_a)
    assert (await node_b.api.get("/api/auth/me", token=leaving["token"])).status == 200
    on_b = await node_b.ws(leaving["token"])
    await node_a.api.post("/api/auth/logout", token=leaving["token"])
    assert await closed_with(on_b, timeout=1.0) == 4001
    assert (await node_b.api.get("/api/auth/me", token=leaving["token"])).status == 401

    admin = await node_a.admin_token()
    _, stopped = await new_patient(node_a)
    socket_b = await node_b.ws(stopped["token"])
    await node_a.api.patch(f"/api/admin/users/{stopped['user']['id']}", {"disabled": True}, token=admin)
    assert await closed_with(socket_b, timeout=1.0) == 4003
    assert (await node_b.api.get("/api/auth/me", token=stopped["token"])).status == 401


# -- the session cookie ----------------------------------------------------------------------------------------
COOKIE = "medpharma_refresh"


def set_cookie(response) -> dict:
    """The attributes of the one `medpharma_refresh` Set-Cookie of an answer (lower-case names)."""
    found = [value for value in response.headers.get_list("Set-Cookie") if value.startswith(f"{COOKIE}=")]
    assert len(found) == 1, response.headers.get_list("Set-Cookie")
    first, *attributes = [part.strip() for part in found[0].split(";")]
    parsed = {"value": first.split("=", 1)[1]}
    for attribute in attributes:
        name, _, value = attribute.partition("=")
        parsed[name.lower()] = value
    return parsed


async def cookie_sign_in(harness, email: str, password: str = "patient-password"):
    return await harness.api.post("/api/auth/login", {"email": email, "password": password},
                                  headers={"X-Session-Cookie": "1"})


async def cookie_refresh(harness, cookie: str, origin: str | None = "own", **extra):
    headers = {"Cookie": f"{COOKIE}={cookie}", **extra}
    if origin is not None:
        headers["Origin"] = harness.base if origin == "own" else origin
    return await harness.api.post("/api/auth/refresh", headers=headers)


async def test_a_browser_sign_in_puts_the_refresh_token_in_an_http_only_cookie(harness):
    email, _ = await new_patient(harness)
    signed = await cookie_sign_in(harness, email)
    assert signed.status == 200 and set(signed.body) == {"token", "user"}
    cookie = set_cookie(signed)
    assert "httponly" in cookie and cookie["samesite"] == "Strict" and cookie["path"] == "/api/auth"
    assert "secure" not in cookie  # plain http to 127.0.0.1: a developer's machine
    assert int(cookie["max-age"]) == harness.services.settings.refresh_expires_seconds
    # Registration and invite redemption take the header too.
    registered = await harness.api.post("/api/auth/register", {"name": "Pat", "email": f"c-{uuid.uuid4().hex[:8]}@example.org",
                                                               "password": "patient-password"},
                                        headers={"X-Session-Cookie": "1"})
    assert registered.status == 201 and "refreshToken" not in registered.body and set_cookie(registered)["value"]
    admin = await harness.admin_token()
    invite = await harness.api.post("/api/admin/invites", {"email": f"i-{uuid.uuid4().hex[:8]}@example.org",
                                                           "role": "admin"}, token=admin)
    redeemed = await harness.api.post("/api/auth/register/invite", {"token": invite.body["token"], "name": "A",
                                                                    "password": "invited-password"},
                                      headers={"X-Session-Cookie": "1"})
    assert redeemed.status == 201 and "refreshToken" not in redeemed.body and set_cookie(redeemed)["value"]
    # Served under any other name than a loopback one, the cookie is Secure.
    elsewhere = await harness.api.post("/api/auth/login", {"email": email, "password": "patient-password"},
                                       headers={"X-Session-Cookie": "1", "Host": "clinic.example.org"})
    assert "secure" in set_cookie(elsewhere)
    # Without the header nothing changes: the token is in the body and no cookie is set.
    plain = await sign_in(harness, email, "patient-password")
    assert "refreshToken" in plain.body and not plain.headers.get_list("Set-Cookie")


async def test_the_cookie_refreshes_rotates_and_a_spent_one_ends_the_session(harness):
    email, _ = await new_patient(harness)
    first = set_cookie(await cookie_sign_in(harness, email))["value"]
    renewed = await cookie_refresh(harness, first)
    assert renewed.status == 200 and set(renewed.body) == {"token"}
    second = set_cookie(renewed)
    assert second["value"] != first and "httponly" in second and second["path"] == "/api/auth"
    assert (await harness.api.get("/api/auth/me", token=renewed.body["token"])).status == 200
    also_empty_body = await harness.api.post("/api/auth/refresh", {}, headers={
        "Cookie": f"{COOKIE}={second['value']}", "Origin": harness.base})
    assert also_empty_body.status == 200
    third = set_cookie(also_empty_body)["value"]
    # The first cookie, stolen and presented again: the session ends for everyone.
    stolen = await cookie_refresh(harness, first)
    assert stolen.status == 401 and stolen.body["code"] == "invalid_refresh_token"
    assert int(set_cookie(stolen).get("max-age", "0")) == 0 and "expires" in set_cookie(stolen)  # cleared
    assert (await cookie_refresh(harness, third)).status == 401
    assert (await harness.api.get("/api/auth/me", token=also_empty_body.body["token"])).status == 401


async def test_a_cookie_refresh_from_a_foreign_origin_is_refused(harness):
    """The cookie goes with any request the browser sends; only the app's own pages (or CLIENT_ORIGIN) may
    use it to refresh. A refused one rotates nothing: the session and its cookie still work."""
    email, _ = await new_patient(harness)
    cookie = set_cookie(await cookie_sign_in(harness, email))["value"]
    for origin in ("https://evil.example", "null", "http://127.0.0.1:1", f"https://{harness.base[7:]}.evil.example",
                   None):
        refused = await cookie_refresh(harness, cookie, origin=origin)
        assert refused.status == 403 and refused.body["code"] == "origin_not_allowed", origin
        assert not refused.headers.get_list("Set-Cookie")
    assert (await cookie_refresh(harness, cookie)).status == 200
    assert (await harness.api.post("/api/auth/refresh")).status == 401  # no cookie, no body: nothing to refresh


async def test_a_cookie_refresh_from_client_origin_is_accepted():
    app = "https://app.example.com"
    harness = await start_harness(settings={"client_origins": (app,)})
    try:
        email, _ = await new_patient(harness)
        cookie = set_cookie(await cookie_sign_in(harness, email))["value"]
        renewed = await cookie_refresh(harness, cookie, origin=app)
        assert renewed.status == 200 and set_cookie(renewed)["value"] != cookie
        assert renewed.headers["Access-Control-Allow-Origin"] == app
        assert renewed.headers["Access-Control-Allow-Credentials"] == "true"
        assert (await cookie_refresh(harness, set_cookie(renewed)["value"], origin="https://other.example.com")).status == 403
    finally:
        from tests.conftest import stop_harness
        await stop_harness(harness)


async def test_logout_clears_the_cookie_and_ends_its_session(harness):
    email, _ = await new_patient(harness)
    signed = await cookie_sign_in(harness, email)
    cookie = set_cookie(signed)["value"]
    logged_out = await harness.api.post("/api/auth/logout", token=signed.body["token"],
                                        headers={"Cookie": f"{COOKIE}={cookie}"})
    assert logged_out.status == 204
    cleared = set_cookie(logged_out)
    assert cleared["value"] in ("", '""') and cleared["path"] == "/api/auth"
    assert int(cleared.get("max-age", "0")) == 0 and "expires" in cleared
    assert (await cookie_refresh(harness, cookie)).status == 401
