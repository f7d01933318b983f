"""Admin-only onboarding: invites for doctors and other admins."""

from __future__ import annotations

from datetime import timedelta

from server.auth import hash_invite_token, new_invite_token
from server.errors import ApiError, Conflict
from server.store import DuplicateKeyError, to_object_id, utcnow
from handlers.base import APIHandler
from schemas.auth import InviteCreateSchema, InviteCreatedSchema
from schemas.base import load_body

invite_create_schema = InviteCreateSchema()
invite_created_schema = InviteCreatedSchema()


class InvitesHandler(APIHandler):
    async def post(self) -> None:
        principal = self.require_user("admin")
        body = load_body(invite_create_schema, self.json_body())
        store = self.services.store
        doctor_id = None
        if body["role"] == "doctor":
            doctor_id = await self._linked_doctor(body)
        elif body["doctorId"] is not None:
            raise ApiError(details={"doctorId": ["Only a doctor invite is linked to a doctor profile."]},
                           code="validation_error")
        if await store.user_email_taken(body["email"]):
            raise Conflict("An account with this email already exists.", code="email_taken")

        now = utcnow()
        active_key = f"{body['role']}:{body['email']}"
        await store.release_expired_invites(active_key, now)
        token = new_invite_token()
        invite = {"email": body["email"], "role": body["role"], "tokenHash": hash_invite_token(token),
                  "activeKey": active_key, "expiresAt": now + timedelta(hours=body["expiresInHours"]),
                  "usedAt": None, "createdBy": to_object_id(principal.user_id), "createdAt": now}
        if doctor_id is not None:
            invite["doctorId"] = doctor_id
        try:
            invite = await store.insert_invite(invite)
        except DuplicateKeyError:
            raise Conflict("An active invite for this email and role already exists.",
                           code="invite_exists") from None
        self.send_json(invite_created_schema.dump({**invite, "token": token}), 201)

    async def _linked_doctor(self, body: dict):
        store = self.services.store
        if body["doctorId"] is not None:
            doctor = await store.find_doctor(body["doctorId"])
            if doctor is None:
                raise ApiError(details={"doctorId": ["No doctor profile has this id."]},
                               code="validation_error")
            return doctor["_id"]
        doctor = await store.find_doctor_by_email(body["email"])
        if doctor is None:
            raise ApiError("A doctor invite needs a doctorId or a doctor profile with the same email.",
                           code="validation_error",
                           details={"doctorId": ["Give doctorId, or create the doctor profile first."]})
        return doctor["_id"]
