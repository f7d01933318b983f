"""Admin-only: invites for doctors and other admins, accounts, and the audit log."""

from __future__ import annotations

from domain import accounts, audit, users
from handlers.base import APIHandler
from schemas.auth import (AuditQuerySchema, InviteCreatedSchema, InviteCreateSchema, InviteListQuerySchema,
                          UserListQuerySchema, UserPatchSchema, audit_entry_schema, listed_invite, public_user)
from schemas.base import load_body

invite_create_schema = InviteCreateSchema()
invite_created_schema = InviteCreatedSchema()
invite_list_query_schema = InviteListQuerySchema()
user_list_query_schema = UserListQuerySchema()
user_patch_schema = UserPatchSchema()
audit_query_schema = AuditQuerySchema()


class InvitesHandler(APIHandler):
    async def post(self) -> None:
        principal = self.caller_of(accounts.create_invite)
        body = load_body(invite_create_schema, self.json_body())
        invite, token = await accounts.create_invite(self.services, principal, body)
        self.send_json(invite_created_schema.dump({**invite, "token": token}), 201)

    async def get(self) -> None:
        admin = self.caller_of(accounts.page_invites)
        params = load_body(invite_list_query_schema, self.query_arguments())
        items, total = await accounts.page_invites(self.services, admin, params)
        self.send_page([listed_invite(i) for i in items], total, params)


class InviteHandler(APIHandler):
    async def delete(self, invite_id: str) -> None:
        admin = self.caller_of(accounts.revoke_invite)
        await accounts.revoke_invite(self.services, admin, self.path_id(invite_id, "Invite"))
        self.set_status(204)
        self.finish()


class UsersHandler(APIHandler):
    async def get(self) -> None:
        admin = self.caller_of(users.page)
        params = load_body(user_list_query_schema, self.query_arguments())
        items, total = await users.page(self.services, admin, params)
        self.send_page([public_user(u) for u in items], total, params)


class UserHandler(APIHandler):
    async def patch(self, user_id: str) -> None:
        admin = self.caller_of(users.set_disabled)
        user_id = self.path_id(user_id, "User")
        body = load_body(user_patch_schema, self.json_body())
        self.send_json(public_user(await users.set_disabled(self.services, admin, user_id, body["disabled"])))

    async def delete(self, user_id: str) -> None:
        admin = self.caller_of(users.delete)
        await users.delete(self.services, admin, self.path_id(user_id, "User"))
        self.set_status(204)
        self.finish()


class AuditHandler(APIHandler):
    async def get(self) -> None:
        admin = self.caller_of(audit.page)
        params = load_body(audit_query_schema, self.query_arguments())
        items, total = await audit.page(self.services, admin, params)
        self.send_page([audit_entry_schema.dump(e) for e in items], total, params)
