"""MongoDB access: connection, indexes and the named queries the handlers and actors use.

One code path serves a real MongoDB (PyMongo's `AsyncMongoClient`) and the embedded store (mongomock
behind PyMongo's async API, via `pymongo-async-mock`). Only standard queries are used, so whatever
passes on one passes on the other.

Every write is a single-document atomic operation. Invariants that span documents are held by unique
*sparse* indexes on fields that exist only while the invariant applies:
- `appointments.waitingKey` = "<patient>:<doctor>" while waiting → one waiting booking per pair;
- `appointments.consultingDoctor` = doctor id while in consultation → one consultation per doctor;
- `invites.activeKey` = "<role>:<email>" while usable → one active invite per email and role.

Each call goes through `_run`, which times it by operation name, counts it (tests use the counter to
prove a read path does no store round trip) and turns "unreachable / timed out" into `StoreUnavailable`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from datetime import datetime
from typing import Any, Awaitable, Iterable

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError, PyMongoError

from server import metrics
from server.errors import StartupError, StoreUnavailable
from server.values import as_utc, to_object_id, truncate_ms, utcnow  # noqa: F401  (re-exported)

log = logging.getLogger("medpharma.store")

WAITING_STATUSES = ("pending", "confirmed")
ACTIVE_STATUSES = ("pending", "confirmed", "in_consultation")
PING_TIMEOUT_SECONDS = 2.0
STARTUP_PING_TIMEOUT_SECONDS = 5.0  # the driver's server selection gives up after 3 s

__all__ = ["Store", "DuplicateKeyError", "utcnow", "to_object_id", "WAITING_STATUSES", "ACTIVE_STATUSES"]


def _normalise(document: dict | None) -> dict | None:
    """Datetimes as aware UTC whichever client produced them."""
    if document is None:
        return None
    for key, value in document.items():
        if isinstance(value, datetime):
            document[key] = as_utc(value)
    return document


class Store:
    def __init__(self, client: Any, database_name: str, *, embedded: bool):
        self.client = client
        self.db = client[database_name]
        self.embedded = embedded
        self.calls: Counter[str] = Counter()
        self.users = self.db["users"]
        self.doctors = self.db["doctors"]
        self.invites = self.db["invites"]
        self.appointments = self.db["appointments"]

    # -- lifecycle -------------------------------------------------------------------------------
    @classmethod
    def connect(cls, mongo_uri: str | None, database_name: str) -> "Store":
        if mongo_uri is None:
            from pymongo_async_mock import AsyncMongoMockClient
            return cls(AsyncMongoMockClient(tz_aware=True), database_name, embedded=True)
        from pymongo import AsyncMongoClient
        client = AsyncMongoClient(mongo_uri, tz_aware=True, serverSelectionTimeoutMS=3000,
                                  connectTimeoutMS=3000, timeoutMS=5000, appname="medpharma-queue")
        return cls(client, database_name, embedded=False)

    async def close(self) -> None:
        if not self.embedded:
            await self.client.close()

    async def ensure_indexes(self) -> None:
        await self._run("create_indexes", self._create_indexes())

    async def _create_indexes(self) -> None:
        await self.users.create_index([("email", ASCENDING)], unique=True, name="email_unique")
        await self.doctors.create_index([("email", ASCENDING)], unique=True, name="email_unique")
        await self.invites.create_index([("tokenHash", ASCENDING)], unique=True, name="token_hash_unique")
        await self.invites.create_index([("activeKey", ASCENDING)], unique=True, sparse=True,
                                        name="one_active_invite")
        await self.appointments.create_index(
            [("doctor", ASCENDING), ("status", ASCENDING), ("date", ASCENDING)], name="doctor_status_date")
        await self.appointments.create_index([("patient", ASCENDING), ("createdAt", DESCENDING)],
                                             name="patient_created")
        await self.appointments.create_index([("waitingKey", ASCENDING)], unique=True, sparse=True,
                                             name="one_waiting_per_patient_doctor")
        await self.appointments.create_index([("consultingDoctor", ASCENDING)], unique=True, sparse=True,
                                             name="one_consultation_per_doctor")

    async def ping(self) -> None:
        await self._run("ping", asyncio.wait_for(self.db.command("ping"), PING_TIMEOUT_SECONDS))

    async def ensure_reachable(self) -> None:
        """At start: the store answers, or one `StartupError` line says it does not (the runtime path,
        `_run`, would log a warning first; a start that fails should print one line only)."""
        try:
            await asyncio.wait_for(self.db.command("ping"), STARTUP_PING_TIMEOUT_SECONDS)
        except (PyMongoError, asyncio.TimeoutError, OSError) as exc:
            raise StartupError(f"MONGO_URI: the data store is unreachable ({type(exc).__name__})") from None

    # -- the wrapper every call goes through -----------------------------------------------------
    async def _run(self, operation: str, awaitable: Awaitable):
        self.calls[operation] += 1
        started = time.perf_counter()
        try:
            return await awaitable
        except DuplicateKeyError:
            raise
        except (PyMongoError, asyncio.TimeoutError, OSError) as exc:
            metrics.store_errors_total.labels(operation).inc()
            log.warning("store operation failed", extra={"operation": operation, "error": type(exc).__name__})
            raise StoreUnavailable() from None
        finally:
            metrics.store_operation_duration_seconds.labels(operation).observe(time.perf_counter() - started)

    async def _find_list(self, operation: str, cursor) -> list[dict]:
        documents = await self._run(operation, cursor.to_list(None))
        return [_normalise(d) for d in documents]

    # -- users -------------------------------------------------------------------------------------
    async def insert_user(self, document: dict) -> dict:
        result = await self._run("insert_user", self.users.insert_one(document))
        document["_id"] = result.inserted_id
        return document

    async def find_user_by_email(self, email: str) -> dict | None:
        return _normalise(await self._run("find_user", self.users.find_one({"email": email})))

    async def find_user(self, user_id: ObjectId) -> dict | None:
        return _normalise(await self._run("find_user", self.users.find_one({"_id": user_id})))

    async def user_email_taken(self, email: str) -> bool:
        return await self._run("find_user", self.users.count_documents({"email": email}, limit=1)) > 0

    # -- doctors -----------------------------------------------------------------------------------
    async def insert_doctor(self, document: dict) -> dict:
        result = await self._run("insert_doctor", self.doctors.insert_one(document))
        document["_id"] = result.inserted_id
        return document

    async def list_doctors(self) -> list[dict]:
        return await self._find_list("list_doctors", self.doctors.find({}).sort([("name", ASCENDING),
                                                                                  ("_id", ASCENDING)]))

    async def find_doctor(self, doctor_id: ObjectId) -> dict | None:
        return _normalise(await self._run("find_doctor", self.doctors.find_one({"_id": doctor_id})))

    async def find_doctor_by_email(self, email: str) -> dict | None:
        return _normalise(await self._run("find_doctor", self.doctors.find_one({"email": email})))

    async def update_doctor(self, doctor_id: ObjectId, changes: dict) -> dict | None:
        """Applies `changes` and bumps `version`, which orders the doctor's writes for the actors."""
        return _normalise(await self._run("update_doctor", self.doctors.find_one_and_update(
            {"_id": doctor_id}, {"$set": changes, "$inc": {"version": 1}}, return_document=ReturnDocument.AFTER)))

    async def delete_doctor(self, doctor_id: ObjectId) -> bool:
        result = await self._run("delete_doctor", self.doctors.delete_one({"_id": doctor_id}))
        return result.deleted_count == 1

    # -- invites -----------------------------------------------------------------------------------
    async def release_expired_invites(self, active_key: str, now: datetime) -> None:
        await self._run("release_invites", self.invites.update_many(
            {"activeKey": active_key, "expiresAt": {"$lte": now}}, {"$unset": {"activeKey": ""}}))

    async def insert_invite(self, document: dict) -> dict:
        result = await self._run("insert_invite", self.invites.insert_one(document))
        document["_id"] = result.inserted_id
        return document

    async def find_invite_by_hash(self, token_hash: str) -> dict | None:
        return _normalise(await self._run("find_invite", self.invites.find_one({"tokenHash": token_hash})))

    async def claim_invite(self, token_hash: str, now: datetime) -> dict | None:
        """Marks a usable invite used in one conditional update: of N concurrent claims, one wins."""
        return _normalise(await self._run("claim_invite", self.invites.find_one_and_update(
            {"tokenHash": token_hash, "usedAt": None, "expiresAt": {"$gt": now}},
            {"$set": {"usedAt": now}, "$unset": {"activeKey": ""}},
            return_document=ReturnDocument.AFTER)))

    async def release_invite(self, invite: dict) -> None:
        """Undoes a claim whose account could not be created, so the invite is not lost. It does not
        take back its place as the active invite (`activeKey`): a failure like this one (email taken,
        doctor profile gone) means a fresh invite may be needed, and this one must not block it."""
        await self._run("release_invite", self.invites.update_one(
            {"_id": invite["_id"], "usedAt": invite["usedAt"]},
            {"$set": {"usedAt": None}}))

    async def mark_invite_used_by(self, invite_id: ObjectId, user_id: ObjectId) -> None:
        await self._run("claim_invite", self.invites.update_one({"_id": invite_id},
                                                                {"$set": {"usedBy": user_id}}))

    # -- appointments ------------------------------------------------------------------------------
    async def insert_appointment(self, document: dict) -> dict:
        result = await self._run("insert_appointment", self.appointments.insert_one(document))
        document["_id"] = result.inserted_id
        return document

    async def find_appointment(self, appointment_id: ObjectId) -> dict | None:
        return _normalise(await self._run("find_appointment",
                                          self.appointments.find_one({"_id": appointment_id})))

    async def update_appointment_if(self, appointment_id: ObjectId, expected_status: str,
                                    expected_version: int, update: dict) -> dict | None:
        """Applies `update` only if the appointment is still as read; None when someone got there first."""
        update.setdefault("$inc", {})["version"] = 1
        return _normalise(await self._run("update_appointment", self.appointments.find_one_and_update(
            {"_id": appointment_id, "status": expected_status, "version": expected_version},
            update, return_document=ReturnDocument.AFTER)))

    async def appointments_of_patient(self, patient_id: ObjectId) -> list[dict]:
        return await self._find_list("list_appointments", self.appointments.find(
            {"patient": patient_id}).sort([("createdAt", DESCENDING), ("_id", DESCENDING)]))

    async def active_appointments_of_doctor(self, doctor_id: ObjectId) -> list[dict]:
        """Waiting and in-consultation appointments: what a doctor's actor loads."""
        return await self._find_list("load_queue", self.appointments.find(
            {"doctor": doctor_id, "status": {"$in": list(ACTIVE_STATUSES)}}))

    async def queue_heads(self, doctor_id: ObjectId, count: int) -> list[dict]:
        return await self._find_list("queue_head", self._waiting_cursor(doctor_id).limit(count))

    async def waiting_of_doctor(self, doctor_id: ObjectId) -> list[dict]:
        return await self._find_list("list_appointments", self._waiting_cursor(doctor_id))

    def _waiting_cursor(self, doctor_id: ObjectId):
        """Waiting appointments in queue order: (date, createdAt, id), as API.md defines it."""
        return self.appointments.find({"doctor": doctor_id, "status": {"$in": list(WAITING_STATUSES)}}).sort(
            [("date", ASCENDING), ("createdAt", ASCENDING), ("_id", ASCENDING)])

    async def consultation_of_doctor(self, doctor_id: ObjectId) -> dict | None:
        return _normalise(await self._run("find_appointment", self.appointments.find_one(
            {"doctor": doctor_id, "status": "in_consultation"})))

    async def doctor_has_active_appointments(self, doctor_id: ObjectId) -> bool:
        count = await self._run("count_appointments", self.appointments.count_documents(
            {"doctor": doctor_id, "status": {"$in": list(ACTIVE_STATUSES)}}, limit=1))
        return count > 0

    async def page_appointments(self, query: dict, limit: int, offset: int) -> tuple[list[dict], int]:
        total = await self._run("count_appointments", self.appointments.count_documents(query))
        cursor = self.appointments.find(query).sort([("date", DESCENDING), ("_id", DESCENDING)])
        items = await self._find_list("list_appointments", cursor.skip(offset).limit(limit))
        return items, total


def object_ids(values: Iterable[Any]) -> list[ObjectId]:
    return [oid for oid in (to_object_id(v) for v in values) if oid is not None]
