"""Registration, login, `me`, and every way a token can be wrong."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid

import jwt
from bson import ObjectId
import pytest

from infra.auth import TokenIssuer
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, JWT_SECRET

USER_KEYS = {"id", "name", "email", "role", "disabled"}
FORBIDDEN_KEYS = {"password", "passwordHash", "_id"}


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.org"


def assert_public_user(user: dict) -> None:
    assert set(user) == USER_KEYS, user
    assert not FORBIDDEN_KEYS & set(user)
    assert len(user["id"]) == 24 and all(c in "0123456789abcdef" for c in user["id"])


def b64url(data: dict | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def claims_for(user_id: str, role: str = "patient", **extra) -> dict:
    now = int(time.time())
    return {"sub": user_id, "role": role, "iat": now, "exp": now + 3600, **extra}


# -- register ------------------------------------------------------------------------------------------
async def test_register_returns_token_and_public_user(harness):
    email = unique_email()
    response = await harness.api.post("/api/auth/register",
                                      {"name": "Pat", "email": email, "password": "patient-password"})
    assert response.status == 201, response.body
    assert set(response.body) == {"token", "refreshToken", "user"}
    user = response.body["user"]
    assert_public_user(user)
    assert user == {"id": user["id"], "name": "Pat", "email": email, "role": "patient", "disabled": False}
    assert "passwordHash" not in response.text and "$2b$" not in response.text
    me = await harness.api.get("/api/auth/me", token=response.body["token"])
    assert me.status == 200 and me.body == {"user": user}


async def test_register_stores_a_bcrypt_hash_not_the_password(harness):
    email = unique_email()
    await harness.register(email=email, password="plain-text-secret")
    document = await harness.services.store.users.find_one({"email": email})
    assert document["role"] == "patient"
    assert "password" not in document
    assert document["passwordHash"].startswith("$2") and "plain-text-secret" not in document["passwordHash"]


@pytest.mark.parametrize("role", ["admin", "doctor", "patient"])
async def test_register_refuses_a_role_field(harness, role):
    email = unique_email()
    response = await harness.api.post("/api/auth/register", {"name": "Mallory", "email": email,
                                                             "password": "patient-password", "role": role})
    assert response.status == 400
    assert response.body["code"] == "validation_error"
    assert "role" in response.body["details"]
    assert await harness.services.store.users.count_documents({"email": email}) == 0


async def test_register_refuses_other_unknown_fields(harness):
    response = await harness.api.post("/api/auth/register", {"name": "Pat", "email": unique_email(),
                                                             "password": "patient-password", "doctorId": "x"})
    assert response.status == 400 and response.body["code"] == "validation_error"
    assert set(response.body["details"]) == {"doctorId"}


async def test_register_trims_and_lowercases_the_email(harness):
    local = f"MiXeD-{uuid.uuid4().hex[:8]}"
    response = await harness.api.post("/api/auth/register", {"name": "Pat", "email": f"  {local}@Example.ORG ",
                                                             "password": "patient-password"})
    assert response.status == 201, response.body
    assert response.body["user"]["email"] == f"{local.lower()}@example.org"
    login = await harness.api.post("/api/auth/login", {"email": f"{local.upper()}@EXAMPLE.org ",
                                                       "password": "patient-password"})
    assert login.status == 200 and login.body["user"]["id"] == response.body["user"]["id"]


@pytest.mark.parametrize("variant", [str.upper, lambda e: f"  {e}  ", lambda e: f" {e.title()}\t"])
async def test_register_duplicate_email_in_any_case_or_spacing_is_409(harness, variant):
    email = unique_email("dup")
    await harness.register(email=email)
    response = await harness.api.post("/api/auth/register", {"name": "Again", "email": variant(email),
                                                             "password": "patient-password"})
    assert response.status == 409, response.body
    assert response.body["code"] == "email_taken"
    assert set(response.body) == {"message", "code"}
    assert await harness.services.store.users.count_documents({"email": email}) == 1


def full_width(text: str) -> str:
    """ASCII letters and digits as their full-width forms (U+FF01..U+FF5E), which look the same to a reader."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" and c != "@" else c for c in text)


async def test_a_full_width_email_is_the_same_account(harness):
    """The attack: `ａdmin@…` in full-width letters looked like `admin@…` in the admin's lists yet was a
    separate account. NFKC makes it the same address: taken, and it signs in to the one account."""
    email = unique_email("twin")
    _, user = await harness.register(email=email)
    for spelling in (full_width(email), full_width(email.split("@")[0]) + "@" + email.split("@")[1]):
        twin = await harness.api.post("/api/auth/register", {"name": "Twin", "email": spelling,
                                                             "password": "patient-password"})
        assert twin.status == 409 and twin.body["code"] == "email_taken", spelling
        login = await harness.api.post("/api/auth/login", {"email": spelling, "password": "patient-password"})
        assert login.status == 200 and login.body["user"]["id"] == user["id"]
    admin = await harness.admin_token()
    refused = await harness.api.post("/api/admin/invites", {"email": full_width(email), "role": "admin"}, token=admin)
    assert refused.status == 409 and refused.body["code"] == "email_taken"


async def test_a_homoglyph_domain_is_stored_and_shown_in_its_xn_form(harness):
    """`exаmple.org` with a Cyrillic `а` is another domain; it is kept as `xn--exmple-4nf.org`, so the two
    never look alike in a list."""
    local = f"pat-{uuid.uuid4().hex[:8]}"
    latin = await harness.api.post("/api/auth/register", {"name": "Pat", "email": f"{local}@example.org",
                                                          "password": "patient-password"})
    cyrillic = await harness.api.post("/api/auth/register", {"name": "Pat", "email": f"{local}@ex\u0430mple.org",
                                                             "password": "patient-password"})
    assert latin.status == cyrillic.status == 201
    assert cyrillic.body["user"]["email"] == f"{local}@xn--exmple-4nf.org"
    admin = await harness.admin_token()
    listed = await harness.api.get(f"/api/admin/users?q={local}", token=admin)
    assert sorted(u["email"] for u in listed.body["items"]) == [f"{local}@example.org", f"{local}@xn--exmple-4nf.org"]
    # Typed either way, the Cyrillic one is the same account.
    login = await harness.api.post("/api/auth/login", {"email": f"{local}@ex\u0430mple.org", "password": "patient-password"})
    assert login.status == 200 and login.body["user"]["id"] == cyrillic.body["user"]["id"]
    login = await harness.api.post("/api/auth/login", {"email": f"{local}@xn--exmple-4nf.org",
                                                       "password": "patient-password"})
    assert login.status == 200 and login.body["user"]["id"] == cyrillic.body["user"]["id"]


@pytest.mark.parametrize("email", [
    "ad\u200bmin@example.org",         # zero-width space in the local part
    "admin@exam\u200bple.org",         # … in the domain
    "admin\u200d@example.org",         # zero-width joiner
    "\u202eadmin@example.org",         # right-to-left override
    "ad\u00admin@example.org",         # soft hyphen
    "admin\u3164@example.org",         # Hangul filler, a "letter" drawn as nothing
    "adm\u0456n@example.org",          # Cyrillic і in the local part: not ASCII
    "jos\u00e9@example.org",           # é: not ASCII either
    "ad min@example.org", "admin@exa\tmple.org", "admin@example.org\u0000",
    "admin@xn--.org", "@example.org", "admin@",
])
async def test_a_look_alike_or_invisible_email_is_refused(harness, email):
    response = await harness.api.post("/api/auth/register", {"name": "Pat", "email": email,
                                                             "password": "patient-password"})
    assert response.status == 400 and set(response.body["details"]) == {"email"}, (email, response.body)
    login = await harness.api.post("/api/auth/login", {"email": email, "password": "patient-password"})
    assert login.status == 401 and login.body["code"] == "invalid_credentials"


@pytest.mark.parametrize("password", ["password", "PASSWORD", " password ", "12345678", "iloveyou", "aaaaaaaa",
                                      "qwertyuiop", "football", "baseball", "superman", "trustno1"])
async def test_a_common_password_is_refused_everywhere_a_password_is_chosen(harness, password):
    """"password" was accepted as a password. Any of the 10,000 most common ones is a 400 now: at
    registration, at an invite's redemption and as a new password."""
    response = await harness.api.post("/api/auth/register", {"name": "Pat", "email": unique_email(),
                                                             "password": password})
    assert response.status == 400 and set(response.body["details"]) == {"password"}, response.body
    assert "most common" in response.body["details"]["password"][0]
    token, _ = await harness.register()
    changed = await harness.api.post("/api/auth/password", {"currentPassword": "patient-password",
                                                            "newPassword": password}, token=token)
    assert changed.status == 400 and set(changed.body["details"]) == {"newPassword"}
    admin = await harness.admin_token()
    invite = await harness.api.post("/api/admin/invites", {"email": unique_email(), "role": "admin"}, token=admin)
    redeemed = await harness.api.post("/api/auth/register/invite", {"token": invite.body["token"], "name": "A",
                                                                    "password": password})
    assert redeemed.status == 400 and set(redeemed.body["details"]) == {"password"}


def test_the_common_password_list_is_the_ten_thousand_most_common():
    from core.passwords import COMMON_PASSWORDS_FILE, common_passwords, is_common
    assert len(common_passwords()) == 10_000
    notice = COMMON_PASSWORDS_FILE.with_name("common-passwords-10k.LICENSE.txt").read_text()
    assert "Django 5.2.20" in notice and "Redistribution and use in source and binary forms" in notice
    assert is_common("Password") and is_common("123456") and not is_common("patient-password")


async def test_register_with_the_seed_admin_email_is_409(harness):
    response = await harness.api.post("/api/auth/register", {"name": "Fake root", "email": ADMIN_EMAIL.upper(),
                                                             "password": "patient-password"})
    assert response.status == 409 and response.body["code"] == "email_taken"


@pytest.mark.parametrize("password, status", [
    ("a" * 7, 400),
    ("qz" * 4, 201),            # 8 bytes ("a" × 8 is a common password: tested below)
    ("a" * 72, 201),
    ("a" * 73, 400),
    ("é" * 36, 201),            # 72 bytes in UTF-8
    ("é" * 37, 400),            # 37 characters, 74 bytes
    ("a" * 71 + "é", 400),      # 72 characters, 73 bytes
    ("€" * 24, 201),            # 72 bytes
    ("€" * 25, 400),            # 75 bytes
    ("ab€", 400),               # 5 bytes
])
async def test_register_password_length_counts_utf8_bytes(harness, password, status):
    email = unique_email()
    response = await harness.api.post("/api/auth/register", {"name": "Pat", "email": email, "password": password})
    assert response.status == status, (len(password.encode()), response.body)
    if status == 400:
        assert response.body["code"] == "validation_error"
        assert set(response.body["details"]) == {"password"}
    else:
        login = await harness.api.post("/api/auth/login", {"email": email, "password": password})
        assert login.status == 200


async def test_register_missing_fields_maps_each_one(harness):
    response = await harness.api.post("/api/auth/register", {})
    assert response.status == 400
    assert response.body["code"] == "validation_error"
    assert set(response.body["details"]) == {"name", "email", "password"}
    for messages in response.body["details"].values():
        assert isinstance(messages, list) and messages and all(isinstance(m, str) for m in messages)


async def test_register_bad_values_map_each_field(harness):
    response = await harness.api.post("/api/auth/register", {"name": "   ", "email": "not-an-email",
                                                             "password": 12345678})
    assert response.status == 400 and response.body["code"] == "validation_error"
    assert set(response.body["details"]) == {"name", "email", "password"}


async def test_register_only_email_missing(harness):
    response = await harness.api.post("/api/auth/register", {"name": "Pat", "password": "patient-password"})
    assert response.status == 400 and set(response.body["details"]) == {"email"}


async def test_concurrent_registrations_with_one_email_create_one_account(harness):
    email = unique_email("race")
    responses = await asyncio.gather(*[
        harness.api.post("/api/auth/register", {"name": f"P{i}", "email": email, "password": "patient-password"})
        for i in range(6)])
    statuses = sorted(r.status for r in responses)
    assert statuses == [201] + [409] * 5, [r.body for r in responses]
    assert await harness.services.store.users.count_documents({"email": email}) == 1


# -- login ---------------------------------------------------------------------------------------------
async def test_login_returns_token_and_user(harness):
    email = unique_email()
    _, user = await harness.register(email=email, password="patient-password")
    response = await harness.api.post("/api/auth/login", {"email": email, "password": "patient-password"})
    assert response.status == 200, response.body
    assert set(response.body) == {"token", "refreshToken", "user"}
    assert response.body["user"] == user
    assert_public_user(response.body["user"])
    claims = jwt.decode(response.body["token"], JWT_SECRET, algorithms=["HS256"])
    assert claims["sub"] == user["id"] and claims["role"] == "patient"
    assert claims["exp"] > claims["iat"]


async def test_login_as_seed_admin(harness):
    response = await harness.api.post("/api/auth/login", {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    assert response.status == 200
    assert response.body["user"]["role"] == "admin"
    assert response.body["user"]["email"] == ADMIN_EMAIL


async def test_wrong_password_and_unknown_email_answer_the_same(harness):
    email = unique_email()
    await harness.register(email=email, password="patient-password")
    wrong = await harness.api.post("/api/auth/login", {"email": email, "password": "wrong-password"})
    unknown = await harness.api.post("/api/auth/login", {"email": unique_email("nobody"),
                                                         "password": "patient-password"})
    assert wrong.status == 401 and unknown.status == 401
    assert wrong.body == unknown.body
    assert wrong.body["code"] == "invalid_credentials"
    assert set(wrong.body) == {"message", "code"}


async def test_login_with_an_overlong_password_is_401_not_500(harness):
    email = unique_email()
    await harness.register(email=email, password="patient-password")
    for password in ("x" * 100, "patient-password" + "y" * 80):
        response = await harness.api.post("/api/auth/login", {"email": email, "password": password})
        assert response.status == 401, response.body
        assert response.body["code"] == "invalid_credentials"
    unknown = await harness.api.post("/api/auth/login", {"email": unique_email("none"), "password": "z" * 100})
    assert unknown.status == 401 and unknown.body["code"] == "invalid_credentials"


async def test_login_validation(harness):
    response = await harness.api.post("/api/auth/login", {"email": ADMIN_EMAIL})
    assert response.status == 400 and set(response.body["details"]) == {"password"}
    response = await harness.api.post("/api/auth/login", {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD,
                                                          "role": "admin"})
    assert response.status == 400 and set(response.body["details"]) == {"role"}
    response = await harness.api.post("/api/auth/login", {"email": 5, "password": ["x"]})
    assert response.status == 400 and set(response.body["details"]) == {"email", "password"}


# -- me and tokens -------------------------------------------------------------------------------------
async def test_me_without_token_is_401(harness):
    response = await harness.api.get("/api/auth/me")
    assert response.status == 401
    assert response.body["code"] == "unauthorized"
    assert set(response.body) == {"message", "code"}


async def test_me_returns_the_user_for_each_role(harness):
    admin = await harness.admin_token()
    me = await harness.api.get("/api/auth/me", token=admin)
    assert me.status == 200 and me.body["user"]["role"] == "admin"
    assert_public_user(me.body["user"])
    doctor = await harness.create_doctor(admin)
    doctor_token, doctor_user = await harness.doctor_account(doctor, admin)
    me = await harness.api.get("/api/auth/me", token=doctor_token)
    assert me.status == 200
    assert me.body["user"] == doctor_user
    assert me.body["user"]["role"] == "doctor" and me.body["user"]["doctorId"] == doctor["id"]


async def test_forged_token_is_401(harness):
    _, user = await harness.register()
    forged = jwt.encode(claims_for(user["id"], "admin"), "another-secret-that-is-also-32-characters!!",
                        algorithm="HS256")
    response = await harness.api.get("/api/auth/me", token=forged)
    assert response.status == 401 and response.body["code"] == "bad_token"


async def test_alg_none_token_is_401(harness):
    _, user = await harness.register()
    header = b64url({"alg": "none", "typ": "JWT"})
    payload = b64url(claims_for(user["id"], "admin"))
    for token in (f"{header}.{payload}.", f"{header}.{payload}"):
        response = await harness.api.get("/api/auth/me", token=token)
        assert response.status == 401, token
        assert response.body["code"] == "bad_token"
    invites = await harness.api.post("/api/admin/invites", {"email": unique_email(), "role": "admin"},
                                     token=f"{header}.{payload}.")
    assert invites.status == 401


async def test_token_with_another_hmac_algorithm_is_401(harness):
    _, user = await harness.register()
    header = b64url({"alg": "HS512", "typ": "JWT"})
    payload = b64url(claims_for(user["id"]))
    signature = hmac.new(JWT_SECRET.encode(), f"{header}.{payload}".encode(), hashlib.sha512).digest()
    token = f"{header}.{payload}.{b64url(signature)}"
    response = await harness.api.get("/api/auth/me", token=token)
    assert response.status == 401 and response.body["code"] == "bad_token"


async def test_expired_token_is_401(harness):
    _, user = await harness.register()
    expired = TokenIssuer(JWT_SECRET, -60).issue({"_id": user["id"], "role": "patient"}, str(ObjectId()))
    response = await harness.api.get("/api/auth/me", token=expired)
    assert response.status == 401
    assert response.body["code"] == "expired_token"
    now = int(time.time())
    crafted = jwt.encode({"sub": user["id"], "role": "patient", "iat": now - 7200, "exp": now - 3600},
                         JWT_SECRET, algorithm="HS256")
    response = await harness.api.get("/api/auth/me", token=crafted)
    assert response.status == 401 and response.body["code"] == "expired_token"


async def test_valid_token_issued_by_the_test_secret_is_accepted(harness):
    """The control for the negative cases above: the same construction with good claims works."""
    _, user = await harness.register()
    token = TokenIssuer(JWT_SECRET, 600).issue({"_id": user["id"], "role": "patient"}, str(ObjectId()))
    response = await harness.api.get("/api/auth/me", token=token)
    assert response.status == 200 and response.body["user"] == user


@pytest.mark.parametrize("role", ["superuser", "Admin", "", None, 5])
async def test_token_with_unknown_role_claim_is_401(harness, role):
    _, user = await harness.register()
    token = jwt.encode(claims_for(user["id"], role), JWT_SECRET, algorithm="HS256")
    response = await harness.api.get("/api/auth/me", token=token)
    assert response.status == 401 and response.body["code"] == "bad_token"


@pytest.mark.parametrize("missing", ["sub", "role", "iat", "exp"])
async def test_token_missing_a_required_claim_is_401(harness, missing):
    _, user = await harness.register()
    claims = claims_for(user["id"])
    del claims[missing]
    token = jwt.encode(claims, JWT_SECRET, algorithm="HS256")
    response = await harness.api.get("/api/auth/me", token=token)
    assert response.status == 401 and response.body["code"] == "bad_token"


async def test_token_of_a_user_that_no_longer_exists_is_401(harness):
    token = jwt.encode(claims_for("0123456789abcdef01234567"), JWT_SECRET, algorithm="HS256")
    response = await harness.api.get("/api/auth/me", token=token)
    assert response.status == 401
    assert response.body["code"] == "unknown_user"


@pytest.mark.parametrize("authorization", [
    "Bearer",
    "Bearer ",
    "Bearer not-a-jwt",
    "Bearer a.b.c",
    "Token {token}",
    "Basic dXNlcjpwYXNz",
    "{token}",
    "Bearer {token}x",
])
async def test_malformed_authorization_header_is_401(harness, authorization):
    token, _ = await harness.register()
    response = await harness.api.get("/api/auth/me", headers={"Authorization": authorization.format(token=token)})
    assert response.status == 401, response.body
    assert response.body["code"] in ("unauthorized", "bad_token")
    assert set(response.body) == {"message", "code"}


async def test_bearer_scheme_is_case_insensitive(harness):
    token, user = await harness.register()
    response = await harness.api.get("/api/auth/me", headers={"Authorization": f"bearer {token}"})
    assert response.status == 200 and response.body["user"] == user
