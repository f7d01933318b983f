"""Admin-only onboarding: invites for doctors and other admins."""

from __future__ import annotations

from domain import accounts
from handlers.base import APIHandler
from schemas.auth import InviteCreateSchema, InviteCreatedSchema
from schemas.base import load_body

invite_create_schema = InviteCreateSchema()
invite_created_schema = InviteCreatedSchema()


class InvitesHandler(APIHandler):
    async def post(self) -> None:
        principal = self.require_user("admin")
        body = load_body(invite_create_schema, self.json_body())
        invite, token = await accounts.create_invite(self.services, principal, body)
        self.send_json(invite_created_schema.dump({**invite, "token": token}), 201)
