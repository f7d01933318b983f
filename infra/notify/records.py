"""The store documents of notifications: push subscriptions, webhooks, deliveries and per-appointment
notification state. Standard MongoDB queries only (the embedded store runs the same ones).

**Deliveries are written before the first attempt**, one document per (receiver, event), so a restart
or a crash loses none: a fresh process finds them `pending` and goes on. The document's `_id` is
derived from what it delivers (receiver, event, appointment, a per-event discriminator), so when two
nodes' queue replicas both notice the same `turn:soon`, the second insert is a duplicate key and
nothing is sent twice.

**Claims with a lease**: a node takes a due delivery with one `find_one_and_update` on
`{status: pending, nextAttemptAt <= now, leaseUntil < now}` that sets `leaseUntil` and its node id;
only one node can match. A node that dies mid-attempt holds the lease until it ends (`LEASE`, longer
than any attempt can take), then another node takes it again: at least once, never lost.

**Back-off** (the API contract): about 5 s, 30 s, 2 min, 10 min, 30 min, 1 h, then hourly, until 24 h
after the delivery was created; then `failed`.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
DELIVERY_STATUSES = (PENDING, DELIVERED, FAILED)
BACKOFF = (timedelta(seconds=5), timedelta(seconds=30), timedelta(minutes=2), timedelta(minutes=10),
           timedelta(minutes=30), timedelta(hours=1))
GIVE_UP_AFTER = timedelta(hours=24)
LEASE = timedelta(seconds=60)  # longer than an attempt can take (connect + 10 s answer + encryption)
NEVER = datetime(1970, 1, 1)   # `leaseUntil` of a delivery nobody holds
MAX_SUBSCRIPTIONS_PER_USER = 10
KEPT_ANSWER_BYTES = 1024
DELIVERIES_KEPT_SECONDS = 30 * 86400  # a delivery (delivered or failed: pending ones end within 24 h) is
                                      # listed for a month, then the store's TTL index removes it
STATE_KEPT_SECONDS = 30 * 86400  # what an appointment was told (soon, delay) matters while it waits on its
                                 # day; a month after the last change the TTL index removes it


def next_attempt_after(attempts: int, created_at: datetime, now: datetime) -> datetime | None:
    """When to try again after `attempts` failed attempts, or None once 24 h have passed."""
    wait = BACKOFF[attempts - 1] if attempts <= len(BACKOFF) else BACKOFF[-1]
    at = now + wait
    return at if at - created_at <= GIVE_UP_AFTER else None


def delivery_id(*parts: str) -> ObjectId:
    """A deterministic ObjectId from what a delivery is about: the same event for the same receiver
    gives the same id on every node (the unique `_id` makes a second insert a no-op)."""
    return ObjectId(hashlib.sha256("\x1f".join(parts).encode()).digest()[:12])


class NotifyRecords:
    """Named queries over the notification collections, through the store's timed, counted `run`."""

    def __init__(self, store):
        self.store = store
        db = store.db
        self.subscriptions = db["pushSubscriptions"]
        self.webhooks = db["webhooks"]
        self.deliveries = db["notificationDeliveries"]
        self.state = db["notificationState"]

    async def _run(self, operation: str, awaitable):
        return await self.store.run(operation, awaitable)

    async def _list(self, operation: str, cursor) -> list[dict]:
        return await self.store.find_list(operation, cursor)

    async def ensure_indexes(self) -> None:
        async def create() -> None:
            await self.subscriptions.create_index([("endpoint", ASCENDING)], unique=True, name="endpoint_unique")
            await self.subscriptions.create_index([("userId", ASCENDING)], name="by_user")
            await self.webhooks.create_index([("createdAt", DESCENDING)], name="newest_first")
            await self.deliveries.create_index([("status", ASCENDING), ("nextAttemptAt", ASCENDING)], name="due")
            await self.deliveries.create_index([("target", ASCENDING), ("createdAt", DESCENDING)], name="by_target")
            await self.deliveries.create_index([("createdAt", ASCENDING)], expireAfterSeconds=DELIVERIES_KEPT_SECONDS,
                                               name="deliveries_expire")
            await self.state.create_index([("touchedAt", ASCENDING)], expireAfterSeconds=STATE_KEPT_SECONDS,
                                          name="state_expire")
        await self._run("create_indexes", create())

    # -- push subscriptions ------------------------------------------------------------------------
    async def save_subscription(self, user_id: ObjectId, body: dict, now: datetime,
                                language: str) -> tuple[dict, bool]:
        """Upserts by endpoint: (document, created). An endpoint another account registered moves to
        this one (the browser is now theirs); a user's eleventh → `LookupError` (the caller's 409)."""
        existing = await self._run("find_subscription", self.subscriptions.find_one({"endpoint": body["endpoint"]}))
        fields = {"keys": body["keys"], "expirationTime": body.get("expirationTime"), "updatedAt": now,
                  "userId": user_id, "lang": language}
        if existing is not None and existing["userId"] == user_id:
            await self._run("update_subscription", self.subscriptions.update_one({"_id": existing["_id"]},
                                                                                 {"$set": fields}))
            return {**existing, **fields}, False
        if await self._run("count_subscriptions", self.subscriptions.count_documents(
                {"userId": user_id})) >= MAX_SUBSCRIPTIONS_PER_USER:
            raise LookupError("too many subscriptions")
        if existing is not None:
            await self._run("update_subscription", self.subscriptions.update_one({"_id": existing["_id"]},
                                                                                 {"$set": fields}))
            return {**existing, **fields}, True
        document = {"endpoint": body["endpoint"], "createdAt": now, **fields}
        try:
            result = await self._run("insert_subscription", self.subscriptions.insert_one(document))
        except DuplicateKeyError:  # the same endpoint registered at the same moment: take that one
            return await self.save_subscription(user_id, body, now, language)
        document["_id"] = result.inserted_id
        # Two subscribes of one user at the same moment both counted nine: the first ten by id (every
        # racer sorts them alike) stay, and one beyond them takes itself back.
        kept = await self._list("list_subscriptions", self.subscriptions.find(
            {"userId": user_id}, {"_id": 1}).sort("_id", ASCENDING).limit(MAX_SUBSCRIPTIONS_PER_USER))
        if all(k["_id"] != document["_id"] for k in kept):
            await self._run("delete_subscription", self.subscriptions.delete_one({"_id": document["_id"]}))
            raise LookupError("too many subscriptions")
        return document, True

    async def delete_subscription(self, subscription_id: ObjectId, user_id: ObjectId | None = None) -> bool:
        query: dict = {"_id": subscription_id}
        if user_id is not None:
            query["userId"] = user_id
        result = await self._run("delete_subscription", self.subscriptions.delete_one(query))
        return result.deleted_count == 1

    async def delete_subscriptions_of(self, user_id: ObjectId) -> int:
        result = await self._run("delete_subscription", self.subscriptions.delete_many({"userId": user_id}))
        return result.deleted_count

    async def subscriptions_of(self, user_id: ObjectId) -> list[dict]:
        return await self._list("list_subscriptions", self.subscriptions.find({"userId": user_id}))

    async def find_subscription(self, subscription_id: ObjectId) -> dict | None:
        return await self._run("find_subscription", self.subscriptions.find_one({"_id": subscription_id}))

    async def subscribed_user_ids(self) -> list[ObjectId]:
        return await self._run("list_subscriptions", self.subscriptions.distinct("userId"))

    # -- webhooks ------------------------------------------------------------------------------------
    async def insert_webhook(self, document: dict) -> dict:
        result = await self._run("insert_webhook", self.webhooks.insert_one(document))
        document["_id"] = result.inserted_id
        return document

    async def list_webhooks(self) -> list[dict]:
        return await self._list("list_webhooks", self.webhooks.find({}).sort([("createdAt", DESCENDING),
                                                                                ("_id", DESCENDING)]))

    async def webhooks_for(self, event: str) -> list[dict]:
        return await self._list("list_webhooks", self.webhooks.find({"events": event}))

    async def find_webhook(self, webhook_id: ObjectId) -> dict | None:
        return await self.store.run("find_webhook", self.webhooks.find_one({"_id": webhook_id}))

    async def delete_webhook(self, webhook_id: ObjectId, now: datetime) -> bool:
        """Deletes it; its pending deliveries end as `failed` (nobody to deliver to)."""
        result = await self._run("delete_webhook", self.webhooks.delete_one({"_id": webhook_id}))
        if result.deleted_count:
            await self._run("update_deliveries", self.deliveries.update_many(
                {"target": webhook_id, "status": PENDING},
                {"$set": {"status": FAILED, "lastError": "webhook deleted", "nextAttemptAt": None,
                          "finishedAt": now}}))
        return result.deleted_count == 1

    # -- deliveries ----------------------------------------------------------------------------------
    async def create_delivery(self, document: dict) -> bool:
        """Writes a pending delivery; False when the same one (same deterministic id) exists already."""
        document.setdefault("status", PENDING)
        document.setdefault("attempts", 0)
        document.setdefault("leaseUntil", NEVER)
        document.setdefault("lastStatusCode", None)
        document.setdefault("lastError", None)
        document.setdefault("deliveredAt", None)
        try:
            await self._run("insert_delivery", self.deliveries.insert_one(document))
        except DuplicateKeyError:
            return False
        return True

    async def claim_due(self, now: datetime, node: str) -> dict | None:
        """Takes one due delivery for `LEASE`, or None."""
        return await self._run("claim_delivery", self.deliveries.find_one_and_update(
            {"status": PENDING, "nextAttemptAt": {"$lte": now}, "leaseUntil": {"$lt": now}},
            {"$set": {"leaseUntil": now + LEASE, "leaseNode": node}},
            sort=[("nextAttemptAt", ASCENDING)], return_document=ReturnDocument.AFTER))

    async def next_due(self, now: datetime) -> datetime | None:
        """When the earliest pending delivery nobody holds is due (None: nothing pending)."""
        found = await self._run("next_delivery", self.deliveries.find_one(
            {"status": PENDING, "leaseUntil": {"$lt": now}}, sort=[("nextAttemptAt", ASCENDING)], projection={"nextAttemptAt": 1}))
        return None if found is None else found["nextAttemptAt"]

    async def finish_attempt(self, delivery: dict, node: str, changes: dict) -> bool:
        """Records an attempt's result, if this node still holds the claim; releases the lease."""
        update = {"$set": {**changes, "leaseUntil": NEVER}, "$inc": {"attempts": 1}}
        result = await self._run("finish_delivery", self.deliveries.update_one(
            {"_id": delivery["_id"], "leaseNode": node, "status": PENDING}, update))
        return result.modified_count == 1

    async def page_deliveries(self, target: ObjectId, status: str | None, limit: int,
                              offset: int) -> tuple[list[dict], int]:
        query: dict = {"target": target}
        if status:
            query["status"] = status
        return await self.store.page("deliveries", self.deliveries, query,
                                      [("createdAt", DESCENDING), ("_id", DESCENDING)], limit, offset)

    # -- per-appointment state: decides, once across nodes, that a `soon` or a `delay` is news -------
    async def open_soon(self, appointment_id: str, now: datetime) -> int | None:
        """Marks the appointment as told `turn:soon`; its episode number, or None if already told."""
        try:
            found = await self._run("notification_state", self.state.find_one_and_update(
                {"_id": appointment_id, "soonOpen": {"$ne": True}},
                {"$set": {"soonOpen": True, "touchedAt": now}, "$inc": {"soonEpisode": 1}},
                upsert=True, return_document=ReturnDocument.AFTER))
        except DuplicateKeyError:  # exists and already open
            return None
        return None if found is None else int(found["soonEpisode"])

    async def close_soon(self, appointment_id: str, now: datetime) -> None:
        await self._run("notification_state", self.state.update_one(
            {"_id": appointment_id, "soonOpen": True}, {"$set": {"soonOpen": False, "touchedAt": now}}))

    async def grow_delay(self, appointment_id: str, delay_minutes: int, step: int, now: datetime) -> bool:
        """Records `delay_minutes` as told if it is at least `step` more than the last one told."""
        try:
            found = await self._run("notification_state", self.state.find_one_and_update(
                {"_id": appointment_id, "$or": [{"delayTold": {"$lte": delay_minutes - step}},
                                                {"delayTold": {"$exists": False}}]},
                {"$set": {"delayTold": delay_minutes, "touchedAt": now}}, upsert=True,
                return_document=ReturnDocument.AFTER))
        except DuplicateKeyError:
            return False
        return found is not None

    async def forget_delay(self, appointment_id: str) -> None:
        """A rescheduled appointment's delay counts from its new time."""
        await self._run("notification_state", self.state.update_one({"_id": appointment_id},
                                                                    {"$unset": {"delayTold": ""}}))
