"""Bodies of the auth and invite endpoints, and the public shape of a user."""

from __future__ import annotations

from marshmallow import fields, validate

from schemas.base import StrictSchema
from schemas.fields import CleanString, NormalisedEmail, ObjectIdField, Password, StrictInteger, UtcDateTime

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


class UserSchema(StrictSchema):
    id = ObjectIdField(attribute="_id")
    name = fields.String()
    email = fields.String()
    role = fields.String()
    doctorId = ObjectIdField()


class InviteCreatedSchema(StrictSchema):
    inviteId = ObjectIdField(attribute="_id")
    token = fields.String()
    expiresAt = UtcDateTime()


user_schema = UserSchema()


def public_user(user: dict) -> dict:
    data = user_schema.dump(user)
    if data.get("doctorId") is None:
        data.pop("doctorId", None)
    return data
