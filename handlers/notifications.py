"""Notification endpoints: the VAPID key, a patient's push subscriptions, the clinic's webhooks."""

from __future__ import annotations

from core.languages import preferred as preferred_language
from domain import notifications
from handlers.base import APIHandler
from schemas.base import load_body
from schemas.notifications import (CreatedIdSchema, DeliveryQuerySchema, PushSubscriptionSchema,
                                   WebhookCreateSchema, listed_delivery, webhook_created_schema, webhook_schema)

subscription_schema = PushSubscriptionSchema()
created_id_schema = CreatedIdSchema()
webhook_create_schema = WebhookCreateSchema()
delivery_query_schema = DeliveryQuerySchema()


class PushKeyHandler(APIHandler):
    async def get(self) -> None:
        self.send_json({"publicKey": notifications.push_key(self.services, self.caller_of(notifications.push_key))})


class PushSubscriptionsHandler(APIHandler):
    async def post(self) -> None:
        principal = self.caller_of(notifications.subscribe)
        body = load_body(subscription_schema, self.json_body())
        language = preferred_language(self.request.headers.get("Accept-Language"))
        subscription, created = await notifications.subscribe(self.services, principal, body, language)
        self.send_json(created_id_schema.dump(subscription), 201 if created else 200)


class PushSubscriptionHandler(APIHandler):
    async def delete(self, subscription_id: str) -> None:
        principal = self.caller_of(notifications.unsubscribe)
        await notifications.unsubscribe(self.services, principal, self.path_id(subscription_id, "Push subscription"))
        self.set_status(204)
        self.finish()


class WebhooksHandler(APIHandler):
    async def post(self) -> None:
        admin = self.caller_of(notifications.create_webhook)
        body = load_body(webhook_create_schema, self.json_body())
        self.send_json(webhook_created_schema.dump(await notifications.create_webhook(self.services, admin, body)), 201)

    async def get(self) -> None:
        admin = self.caller_of(notifications.list_webhooks)
        self.send_json([webhook_schema.dump(w) for w in await notifications.list_webhooks(self.services, admin)])


class WebhookHandler(APIHandler):
    async def delete(self, webhook_id: str) -> None:
        admin = self.caller_of(notifications.delete_webhook)
        await notifications.delete_webhook(self.services, admin, self.path_id(webhook_id, "Webhook"))
        self.set_status(204)
        self.finish()


class WebhookDeliveriesHandler(APIHandler):
    async def get(self, webhook_id: str) -> None:
        admin = self.caller_of(notifications.webhook_deliveries)
        webhook_id = self.path_id(webhook_id, "Webhook")
        params = load_body(delivery_query_schema, self.query_arguments())
        items, total = await notifications.webhook_deliveries(self.services, admin, webhook_id, params)
        self.send_page([listed_delivery(d) for d in items], total, params)
