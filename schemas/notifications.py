"""Bodies and answers of the notification endpoints: push subscriptions, webhooks, deliveries."""

from __future__ import annotations

from marshmallow import fields, validate

from core.notify_events import WEBHOOK_EVENTS
from schemas.base import PageQuerySchema, StrictSchema
from schemas.fields import ObjectIdField, StrictInteger, UtcDateTime

BASE64URL = validate.Regexp(r"^[A-Za-z0-9_-]+={0,2}$", error="Must be base64url.")


class PushKeysSchema(StrictSchema):
    p256dh = fields.String(required=True, validate=[validate.Length(min=80, max=100), BASE64URL])
    auth = fields.String(required=True, validate=[validate.Length(min=16, max=32), BASE64URL])


class PushSubscriptionSchema(StrictSchema):
    """The browser's `PushSubscription.toJSON()`."""

    endpoint = fields.String(required=True, validate=validate.Length(min=1, max=2048))
    expirationTime = StrictInteger(load_default=None, allow_none=True,
                                   validate=validate.Range(min=0, max=2**53))
    keys = fields.Nested(PushKeysSchema, required=True)


class PushKeySchema(StrictSchema):
    publicKey = fields.String(required=True)


class CreatedIdSchema(StrictSchema):
    id = ObjectIdField(required=True, attribute="_id")


class WebhookCreateSchema(StrictSchema):
    url = fields.String(required=True, validate=validate.Length(min=1, max=2048))
    events = fields.List(fields.String(validate=validate.OneOf(WEBHOOK_EVENTS)), required=True,
                         validate=validate.Length(min=1, max=len(WEBHOOK_EVENTS)))
    description = fields.String(load_default="", validate=validate.Length(max=500))


class WebhookSchema(StrictSchema):
    """A webhook as listed: never its secret."""

    id = ObjectIdField(required=True, attribute="_id")
    url = fields.String(required=True)
    events = fields.List(fields.String(), required=True)
    description = fields.String(required=True)
    createdAt = UtcDateTime(required=True)


class WebhookCreatedSchema(WebhookSchema):
    """The answer to a creation, the only one that carries the signing secret."""

    secret = fields.String(required=True)


class DeliveryQuerySchema(PageQuerySchema):
    status = fields.String(load_default=None, validate=validate.OneOf(("pending", "delivered", "failed")))


class DeliverySchema(StrictSchema):
    id = ObjectIdField(required=True, attribute="_id")
    event = fields.String(required=True)
    status = fields.String(required=True)
    attempts = fields.Integer(required=True)
    lastStatusCode = fields.Integer(required=True, allow_none=True)
    lastError = fields.String(required=True, allow_none=True)
    nextAttemptAt = UtcDateTime(required=True, allow_none=True)
    createdAt = UtcDateTime(required=True)
    deliveredAt = UtcDateTime(required=True, allow_none=True)


webhook_schema = WebhookSchema()
webhook_created_schema = WebhookCreatedSchema()
delivery_schema = DeliverySchema()


def listed_delivery(delivery: dict) -> dict:
    return delivery_schema.dump({**delivery, "nextAttemptAt": delivery.get("nextAttemptAt")
                                 if delivery.get("status") == "pending" else None})
