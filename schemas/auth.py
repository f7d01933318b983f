"""Bodies of the auth and invite endpoints, and the public shape of a user."""

from __future__ import annotations

from marshmallow import fields, validate

from schemas.base import PageQuerySchema, StrictSchema
from core.access import ROLES
from core.audit import ACTIONS
from schemas.fields import (CleanString, NormalisedEmail, ObjectIdField, Password, StrictBoolean, StrictInteger,
                            UtcDateTime)

NAME = validate.Length(min=1, max=100)


class RegisterSchema(StrictSchema):
    name = CleanString(required=True, validate=NAME)
    email = NormalisedEmail(required=True, validate=validate.Length(max=254))
    password = Password(required=True)


class LoginSchema(StrictSchema):
    email = fields.String(required=True, validate=validate.Length(max=254))
    password = fields.String(required=True, validate=validate.Length(max=1024))


class InviteRegisterSchema(StrictSchema):
    token = fields.String(required=True, validate=validate.Length(min=1, max=200))
    name = CleanString(required=True, validate=NAME)
    password = Password(required=True)


class InviteCreateSchema(StrictSchema):
    email = NormalisedEmail(required=True, validate=validate.Length(max=254))
    role = fields.String(required=True, validate=validate.OneOf(("admin", "doctor")))
    expiresInHours = StrictInteger(load_default=72, validate=validate.Range(min=1, max=720))
    doctorId = ObjectIdField(load_default=None, allow_none=True)


class RefreshSchema(StrictSchema):
    """`refreshToken`, or nothing (no body, or `{}`) to use the session cookie."""

    refreshToken = fields.String(load_default=None, validate=validate.Length(min=1, max=200))


class PasswordChangeSchema(StrictSchema):
    currentPassword = fields.String(required=True, validate=validate.Length(max=1024))
    newPassword = Password(required=True)


class UserPatchSchema(StrictSchema):
    disabled = StrictBoolean(required=True)


class UserListQuerySchema(PageQuerySchema):
    role = fields.String(load_default=None, validate=validate.OneOf(ROLES))
    q = fields.String(load_default=None, validate=validate.Length(min=1, max=100))


class InviteListQuerySchema(PageQuerySchema):
    status = fields.String(load_default=None, validate=validate.OneOf(("active", "used", "expired", "revoked")))


class AuditQuerySchema(PageQuerySchema):
    action = fields.String(load_default=None, validate=validate.OneOf(ACTIONS))
    actor = ObjectIdField(load_default=None)
    target = fields.String(load_default=None, validate=validate.Length(min=1, max=100))


class UserSchema(StrictSchema):
    id = ObjectIdField(required=True, attribute="_id")
    name = fields.String(required=True)
    email = fields.String(required=True)
    role = fields.String(required=True)
    doctorId = ObjectIdField()
    disabled = fields.Boolean(required=True, dump_default=False)


class InviteSchema(StrictSchema):
    """An invite as an admin lists it: never its token (only the hash is stored anyway)."""

    inviteId = ObjectIdField(required=True, attribute="_id")
    email = fields.String(required=True)
    role = fields.String(required=True)
    doctorId = ObjectIdField()
    status = fields.String(required=True)
    createdAt = UtcDateTime(required=True)
    expiresAt = UtcDateTime(required=True)
    createdBy = ObjectIdField(required=True)
    usedAt = UtcDateTime()


class AuditEntrySchema(StrictSchema):
    id = ObjectIdField(required=True, attribute="_id")
    at = UtcDateTime(required=True)
    actorId = ObjectIdField(required=True, allow_none=True)
    actorRole = fields.String(required=True, allow_none=True)
    action = fields.String(required=True)
    target = fields.String(required=True, allow_none=True)
    details = fields.Dict(required=True)
    requestId = fields.String(required=True, allow_none=True)
    ip = fields.String(required=True, allow_none=True)


class InviteCreatedSchema(StrictSchema):
    inviteId = ObjectIdField(required=True, attribute="_id")
    token = fields.String(required=True)
    expiresAt = UtcDateTime(required=True)


user_schema = UserSchema()
invite_schema = InviteSchema()
audit_entry_schema = AuditEntrySchema()


def public_user(user: dict) -> dict:
    data = user_schema.dump(user)
    data["disabled"] = bool(user.get("disabled", False))
    if data.get("doctorId") is None:
        data.pop("doctorId", None)
    return data


def listed_invite(invite: dict) -> dict:
    data = invite_schema.dump(invite)
    for optional in ("doctorId", "usedAt"):
        if data.get(optional) is None:
            data.pop(optional, None)
    return data
