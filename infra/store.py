"""MongoDB access: connection, indexes and the named queries the handlers and actors use.

One code path serves a real MongoDB (PyMongo's `AsyncMongoClient`) and the embedded store (mongomock
behind PyMongo's async API, via `pymongo-async-mock`). Only standard queries are used, so whatever
passes on one passes on the other.

Every write is a single-document atomic operation. Invariants that span documents are held by unique
*sparse* indexes on fields that exist only while the invariant applies:
- `appointments.waitingKey` = "<patient>:<doctor>" while waiting → one waiting booking per pair;
- `appointments.consultingDoctor` = doctor id while in consultation → one consultation per doctor;
- `invites.activeKey` = "<role>:<email>" while usable → one active invite per email and role;
- `appointments.slot` = "<doctor>|<UTC start>" while the appointment holds its slot (waiting, in
  consultation or completed, for a doctor with hours) → one booking per slot. This one is a *partial*
  index (`partialFilterExpression: {slot: {$exists: true}}`), as MongoDB recommends over `sparse`.

Each call goes through `_run`, which times it by operation name, counts it (tests use the counter to
prove a read path does no store round trip) and turns "unreachable / timed out" into `StoreUnavailable`.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import Counter
from datetime import datetime
from typing import Any, Awaitable

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError, OperationFailure, PyMongoError

from actors.today import DAY_FIELDS
from core import metrics
from core.errors import StartupError, StoreUnavailable
from core.statuses import ACTIVE, IN_CONSULTATION, WAITING
from core.values import as_utc

log = logging.getLogger("medpharma.store")

PING_TIMEOUT_SECONDS = 2.0
STARTUP_PING_TIMEOUT_SECONDS = 5.0  # the driver's server selection gives up after 3 s
IDEMPOTENCY_SECONDS = 24 * 3600  # how long an Idempotency-Key answers again (the API contract)
THREAD_READ_ATTEMPTS = 5  # an embedded read off the event loop, retried if a write raced it (Store._scan)
REPORT_FIELDS = {field: 1 for field in DAY_FIELDS}  # what a report's day row reads, and nothing else
QUEUE_ORDER = [("date", ASCENDING), ("createdAt", ASCENDING), ("_id", ASCENDING)]  # the API contract's queue order

__all__ = ["Store", "DuplicateKeyError", "duplicated_field"]


def duplicated_field(error: DuplicateKeyError) -> str | None:
    """Which unique index refused a write: the first field of its key (MongoDB and the embedded store
    both name it in the error's `keyPattern`), so a workflow can tell "slot taken" from "already
    booked" when one insert could break either."""
    pattern = (error.details or {}).get("keyPattern") or {}
    if pattern:
        return next(iter(pattern))
    found = re.search(r"dup key: \{ ?\"?(\w+)", str(error))  # a server too old to send keyPattern
    return found.group(1) if found else None


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
        self.doctor_stats = self.db["doctor_stats"]
        self.idempotency = self.db["idempotencyKeys"]
        self.audit = self.db["audit"]
        self.sessions = self.db["sessions"]
        self.day_summaries = self.db["daySummaries"]

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
        await self._create_partial_unique_index(self.appointments, "slot", "one_booking_per_slot",
                                                {"slot": {"$exists": True}})
        await self.appointments.create_index([("doctor", ASCENDING), ("date", ASCENDING)], name="doctor_date",
                                             partialFilterExpression={"slot": {"$exists": True}})
        # Sessions were once found by their refresh token's hash: its unique index would now refuse
        # every second session (none has the field), so it goes, with the spent hashes' index.
        existing = await self.sessions.index_information()
        for retired in ("refresh_hash_unique", "spent_hashes"):
            if retired in existing:
                await self.sessions.drop_index(retired)
        await self.sessions.create_index([("userId", ASCENDING), ("revokedAt", ASCENDING)], name="by_user")
        await self.sessions.create_index([("revokedAt", ASCENDING)], name="by_revocation")
        await self.audit.create_index([("at", DESCENDING), ("_id", DESCENDING)], name="newest_first")
        await self.audit.create_index([("action", ASCENDING), ("at", DESCENDING)], name="by_action")
        await self.users.create_index([("role", ASCENDING), ("createdAt", DESCENDING)], name="by_role")
        await self.invites.create_index([("createdAt", DESCENDING)], name="newest_first")
        await self.invites.create_index([("email", ASCENDING)], name="by_email")
        await self.idempotency.create_index([("userId", ASCENDING), ("key", ASCENDING)], unique=True,
                                            name="one_answer_per_user_key")
        await self.idempotency.create_index([("createdAt", ASCENDING)], expireAfterSeconds=IDEMPOTENCY_SECONDS,
                                            name="keys_expire")
        await self.appointments.create_index([("date", ASCENDING)], name="by_date")  # reports: a span, all doctors
        await self.day_summaries.create_index([("zone", ASCENDING), ("date", ASCENDING)], name="zone_date")
        await self.day_summaries.create_index([("start", ASCENDING), ("end", ASCENDING)], name="bounds")

    async def _create_partial_unique_index(self, collection, field: str, name: str, partial: dict) -> None:
        """A unique index on `field` over the documents `partial` selects. MongoDB checks only those
        documents when it builds one; mongomock checks every document (so every appointment without a
        slot would "collide" on a restart of the embedded store), so there the same check is done here,
        as MongoDB does it, and the index registered without mongomock's own. Writes after that are
        checked by mongomock with the filter applied, as MongoDB does."""
        if not self.embedded:
            await collection.create_index([(field, ASCENDING)], unique=True, name=name,
                                          partialFilterExpression=partial)
            return
        inner = collection._AsyncMongoMockCollection__collection  # the synchronous mongomock collection
        wanted = {"key": [(field, ASCENDING)], "unique": True, "partialFilterExpression": partial}
        existing = inner._store.indexes.get(name)
        if existing is not None:
            if existing != wanted:
                raise OperationFailure(f"Index with name: {name} already exists with different options")
            return
        seen = set()
        for document in inner.find(partial, {field: 1}):
            value = repr(document.get(field))
            if value in seen:
                raise DuplicateKeyError("E11000 duplicate key error", 11000,
                                        {"keyPattern": {field: 1}, "keyValue": {field: document.get(field)}})
            seen.add(value)
        inner._store.create_index(name, wanted)

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

    # The same wrapper for the collections other infra modules own (infra/notify/records.py).
    async def run(self, operation: str, awaitable: Awaitable):
        return await self._run(operation, awaitable)

    async def find_list(self, operation: str, cursor) -> list[dict]:
        return await self._find_list(operation, cursor)

    async def page(self, name: str, collection, query: dict, order: list, limit: int,
                   offset: int) -> tuple[list[dict], int]:
        return await self._page(name, collection, query, order, limit, offset)

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

    async def set_password(self, user_id: ObjectId, password_hash: str, now: datetime) -> None:
        await self._run("update_user", self.users.update_one(
            {"_id": user_id}, {"$set": {"passwordHash": password_hash, "updatedAt": now}}))

    async def set_user_disabled(self, user_id: ObjectId, disabled: bool, now: datetime) -> dict | None:
        return _normalise(await self._run("update_user", self.users.find_one_and_update(
            {"_id": user_id}, {"$set": {"disabled": disabled, "updatedAt": now}},
            return_document=ReturnDocument.AFTER)))

    async def disable_doctor_accounts(self, doctor_id: ObjectId, now: datetime) -> list[dict]:
        """Disables every account linked to a doctor profile; returns those that were enabled."""
        linked = await self._find_list("find_user", self.users.find({"doctorId": doctor_id, "disabled": {"$ne": True}}))
        if linked:
            await self._run("update_user", self.users.update_many(
                {"_id": {"$in": [u["_id"] for u in linked]}}, {"$set": {"disabled": True, "updatedAt": now}}))
        return linked

    async def disabled_user_ids(self) -> list[ObjectId]:
        found = await self._find_list("find_user", self.users.find({"disabled": True}, {"_id": 1}))
        return [u["_id"] for u in found]

    async def page_users(self, query: dict, limit: int, offset: int) -> tuple[list[dict], int]:
        return await self._page("users", self.users, query, [("createdAt", DESCENDING), ("_id", DESCENDING)],
                                limit, offset)

    async def user_email_taken(self, email: str) -> bool:
        return await self._run("find_user", self.users.count_documents({"email": email}, limit=1)) > 0

    async def user_has_history(self, user_id: ObjectId) -> bool:
        """An appointment of theirs, or anything they did that the audit log records."""
        booked = await self._run("count_appointments", self.appointments.count_documents({"patient": user_id}, limit=1))
        if booked:
            return True
        return await self._run("count_audit", self.audit.count_documents({"actorId": user_id}, limit=1)) > 0

    async def delete_user(self, user_id: ObjectId) -> bool:
        result = await self._run("delete_user", self.users.delete_one({"_id": user_id}))
        return result.deleted_count == 1

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

    async def end_break(self, doctor_id: ObjectId, now: datetime) -> dict | None:
        """Clears the doctor's `awayUntil` if one is set (bumping `version`); None if there was none."""
        return _normalise(await self._run("update_doctor", self.doctors.find_one_and_update(
            {"_id": doctor_id, "awayUntil": {"$ne": None}},
            {"$set": {"awayUntil": None, "updatedAt": now}, "$inc": {"version": 1}},
            return_document=ReturnDocument.AFTER)))

    async def claim_call_next(self, doctor_id: ObjectId, token: str, now: datetime, stale_before: datetime,
                              quiet_since: datetime | None) -> bool:
        """Marks a call-next for this doctor as in flight (`callNextClaim`), unless another one is (and
        began after `stale_before`: a claim whose node died does not block for ever). With
        `quiet_since`, also only if the last call-next that did something (`lastCallNext`) is older:
        of two call-nexts within the double-submit window, one runs. This is bookkeeping, not a
        profile change, so `version` is left alone."""
        conditions: list[dict] = [{"$or": [{"callNextClaim": None}, {"callNextClaim.at": {"$lte": stale_before}}]}]
        if quiet_since is not None:
            conditions.append({"$or": [{"lastCallNext": None}, {"lastCallNext.at": {"$lte": quiet_since}}]})
        result = await self._run("claim_call_next", self.doctors.update_one(
            {"_id": doctor_id, "$and": conditions}, {"$set": {"callNextClaim": {"at": now, "token": token}}}))
        return result.matched_count == 1

    async def finish_call_next(self, doctor_id: ObjectId, token: str, began: datetime, completed: ObjectId | None,
                               current: ObjectId | None) -> None:
        """Records what the claimed call-next did (a double submit answers the same) and ends the claim."""
        await self._run("claim_call_next", self.doctors.update_one(
            {"_id": doctor_id, "callNextClaim.token": token},
            {"$set": {"lastCallNext": {"at": began, "token": token, "completed": completed, "current": current}},
             "$unset": {"callNextClaim": ""}}))

    async def abandon_call_next(self, doctor_id: ObjectId, token: str) -> None:
        """A claimed call-next that failed ends its claim and leaves the last one that worked as it was."""
        await self._run("claim_call_next", self.doctors.update_one(
            {"_id": doctor_id, "callNextClaim.token": token}, {"$unset": {"callNextClaim": ""}}))

    async def delete_doctor(self, doctor_id: ObjectId) -> bool:
        result = await self._run("delete_doctor", self.doctors.delete_one({"_id": doctor_id}))
        return result.deleted_count == 1

    # -- invites -----------------------------------------------------------------------------------
    async def email_has_active_invite(self, email: str, now: datetime) -> bool:
        return await self._run("find_invite", self.invites.count_documents(
            {"email": email, "usedAt": None, "revokedAt": None, "expiresAt": {"$gt": now}}, limit=1)) > 0

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
            {"tokenHash": token_hash, "usedAt": None, "revokedAt": None, "expiresAt": {"$gt": now}},
            {"$set": {"usedAt": now}, "$unset": {"activeKey": ""}},
            return_document=ReturnDocument.AFTER)))

    async def release_invite(self, invite: dict) -> None:
        """Undoes a claim whose account could not be created, so the invite is not lost. It does not
        take back its place as the active invite (`activeKey`): a failure like this one (email taken,
        doctor profile gone) means a fresh invite may be needed, and this one must not block it."""
        await self._run("release_invite", self.invites.update_one(
            {"_id": invite["_id"], "usedAt": invite["usedAt"]},
            {"$set": {"usedAt": None}}))

    async def revoke_invite(self, invite_id: ObjectId, now: datetime) -> dict | None:
        """Revokes an invite nobody has used (one conditional update); None if it was used meanwhile."""
        return _normalise(await self._run("update_invite", self.invites.find_one_and_update(
            {"_id": invite_id, "usedAt": None}, {"$set": {"revokedAt": now}, "$unset": {"activeKey": ""}},
            return_document=ReturnDocument.AFTER)))

    async def find_invite(self, invite_id: ObjectId) -> dict | None:
        return _normalise(await self._run("find_invite", self.invites.find_one({"_id": invite_id})))

    async def page_invites(self, query: dict, limit: int, offset: int) -> tuple[list[dict], int]:
        return await self._page("invites", self.invites, query, [("createdAt", DESCENDING), ("_id", DESCENDING)],
                                limit, offset)

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
        updated = _normalise(await self._run("update_appointment", self.appointments.find_one_and_update(
            {"_id": appointment_id, "status": expected_status, "version": expected_version},
            update, return_document=ReturnDocument.AFTER)))
        if updated is not None:
            await self.forget_day_summary(updated["date"])
        return updated

    async def find_appointments(self, appointment_ids: list[ObjectId]) -> list[dict]:
        return await self._find_list("find_appointment", self.appointments.find({"_id": {"$in": appointment_ids}}))

    async def appointments_of_patient(self, patient_id: ObjectId) -> list[dict]:
        return await self._find_list("list_appointments", self.appointments.find(
            {"patient": patient_id}).sort([("createdAt", DESCENDING), ("_id", DESCENDING)]))

    async def active_appointments_of_doctor(self, doctor_id: ObjectId) -> list[dict]:
        """Waiting and in-consultation appointments: what a doctor's actor loads."""
        return await self._find_list("load_queue", self.appointments.find(
            {"doctor": doctor_id, "status": {"$in": sorted(ACTIVE)}}))

    async def held_slots_of_doctor(self, doctor_id: ObjectId, since: datetime) -> list[dict]:
        """The doctor's appointments dated `since` or later that hold a slot (only `_id`, `date` and
        `slot`): what the doctor's actor keeps in memory to answer the free slots of a day."""
        return await self._find_list("load_slots", self.appointments.find(
            {"doctor": doctor_id, "slot": {"$exists": True}, "date": {"$gte": since}},
            {"_id": 1, "date": 1, "slot": 1}))

    async def queue_head(self, doctor_id: ObjectId, before: datetime) -> dict | None:
        """The first waiting appointment dated before `before` (the end of today): today's head."""
        heads = await self._find_list("queue_head", self.appointments.find(
            {"doctor": doctor_id, "status": {"$in": sorted(WAITING)}, "date": {"$lt": before}}
        ).sort(QUEUE_ORDER).limit(1))
        return heads[0] if heads else None

    async def waiting_of_doctor(self, doctor_id: ObjectId) -> list[dict]:
        return await self._find_list("list_appointments", self._waiting_cursor(doctor_id))

    def _waiting_cursor(self, doctor_id: ObjectId):
        """Waiting appointments in queue order: (date, createdAt, id), as the API contract defines it."""
        return self.appointments.find({"doctor": doctor_id, "status": {"$in": sorted(WAITING)}}).sort(QUEUE_ORDER)

    async def consultation_of_doctor(self, doctor_id: ObjectId) -> dict | None:
        return _normalise(await self._run("find_appointment", self.appointments.find_one(
            {"doctor": doctor_id, "status": IN_CONSULTATION})))

    async def doctor_has_active_appointments(self, doctor_id: ObjectId) -> bool:
        count = await self._run("count_appointments", self.appointments.count_documents(
            {"doctor": doctor_id, "status": {"$in": sorted(ACTIVE)}}, limit=1))
        return count > 0

    async def appointments_of_doctor_since(self, doctor_id: ObjectId, since: datetime) -> list[dict]:
        """Every appointment of a doctor booked for `since` or later: the history `eta-replay` replays."""
        return await self._find_list("list_appointments", self.appointments.find(
            {"doctor": doctor_id, "date": {"$gte": since}}).sort([("createdAt", ASCENDING), ("_id", ASCENDING)]))

    async def appointments_in(self, start: datetime, end: datetime, doctor_id: ObjectId | None = None) -> list[dict]:
        """Every appointment dated in [start, end), of one doctor or of all: the days a report summarises.
        Only the fields a summary reads are fetched. On MongoDB a range of the `by_date` index; on the
        embedded store a filter of every appointment ever booked (about 0.7 s per 100,000 on an idle
        machine), off the event loop."""
        query: dict = {"date": {"$gte": start, "$lt": end}}
        if doctor_id is not None:
            query["doctor"] = doctor_id
        return await self._scan("report_appointments", self.appointments, query, REPORT_FIELDS)

    async def _scan(self, operation: str, collection, query: dict, projection: dict, *, sort: list | None = None,
                    limit: int = 0) -> list[dict]:
        """A read that may return or filter many documents. On MongoDB, a plain query. The embedded store
        filters (and sorts) in Python, which for the appointments means all of them: it does that in
        a worker thread (mongomock locks its document store while it takes the list of documents to
        filter), so the event loop serves every other request meanwhile."""
        if not self.embedded:
            cursor = collection.find(query, projection)
            if sort:
                cursor = cursor.sort(sort)
            return await self._find_list(operation, cursor.limit(limit))
        synchronous = self.db.delegate[collection.name]  # the mongomock collection behind the async one

        def read() -> list[dict]:
            # mongomock changes a document in place; copying one out while the loop's thread writes to
            # it can raise "dictionary changed size during iteration": then the read starts again.
            for attempt in range(THREAD_READ_ATTEMPTS):
                try:
                    cursor = synchronous.find(query, dict(projection))
                    if sort:
                        cursor = cursor.sort(sort)
                    return [_normalise(d) for d in cursor.limit(limit)]
                except RuntimeError:
                    if attempt == THREAD_READ_ATTEMPTS - 1:
                        raise
            return []

        return await self._run(operation, asyncio.to_thread(read))

    async def appointments_between(self, doctor_id: ObjectId, start: datetime, end: datetime) -> list[dict]:
        """Every appointment of the doctor dated in [start, end): one clinic day, whatever its status."""
        return await self._find_list("list_appointments", self.appointments.find(
            {"doctor": doctor_id, "date": {"$gte": start, "$lt": end}}))

    # -- idempotency keys ----------------------------------------------------------------------------
    async def claim_idempotency_key(self, record: dict, expired_before: datetime) -> dict | None:
        """Inserts the claim for (user, key); None if it is new, else the record already there. A record
        older than the key's lifetime is replaced (the TTL index removes them only once a minute)."""
        for _ in range(2):
            try:
                await self._run("claim_idempotency", self.idempotency.insert_one(dict(record)))
                return None
            except DuplicateKeyError:
                existing = _normalise(await self._run("claim_idempotency", self.idempotency.find_one(
                    {"userId": record["userId"], "key": record["key"]})))
                if existing is None:
                    continue
                if existing["createdAt"] > expired_before:
                    return existing
                await self._run("claim_idempotency", self.idempotency.delete_one(
                    {"_id": existing["_id"], "createdAt": existing["createdAt"]}))
        raise DuplicateKeyError("idempotency key keeps being claimed")

    async def find_idempotency_key(self, user_id: str, key: str) -> dict | None:
        return _normalise(await self._run("claim_idempotency", self.idempotency.find_one(
            {"userId": user_id, "key": key})))

    async def answer_idempotency_key(self, user_id: str, key: str, status: int, body: dict) -> None:
        await self._run("claim_idempotency", self.idempotency.update_one(
            {"userId": user_id, "key": key}, {"$set": {"status": status, "body": body}}))

    async def release_idempotency_key(self, user_id: str, key: str) -> None:
        await self._run("claim_idempotency", self.idempotency.delete_one(
            {"userId": user_id, "key": key, "status": None}))

    async def page_appointments(self, query: dict, limit: int, offset: int) -> tuple[list[dict], int]:
        return await self._page("appointments", self.appointments, query, [("date", DESCENDING), ("_id", DESCENDING)],
                                limit, offset)

    # -- sessions ------------------------------------------------------------------------------------------
    async def insert_session(self, document: dict) -> None:
        await self._run("insert_session", self.sessions.insert_one(document))

    async def find_session(self, session_id: ObjectId) -> dict | None:
        return _normalise(await self._run("find_session", self.sessions.find_one({"_id": session_id})))

    async def rotate_session(self, session_id: ObjectId, generation: int, now: datetime) -> dict | None:
        """Moves a live session from `generation` to the next one, in one conditional update: of two
        uses of the same refresh token, one rotates and the other finds it spent."""
        return _normalise(await self._run("rotate_session", self.sessions.find_one_and_update(
            {"_id": session_id, "generation": generation, "revokedAt": None, "expiresAt": {"$gt": now}},
            {"$inc": {"generation": 1}, "$set": {"lastUsedAt": now}},
            return_document=ReturnDocument.AFTER)))

    async def revoke_sessions(self, query: dict, now: datetime, reason: str) -> list[str]:
        """Ends the live sessions matching `query`; returns their ids."""
        live = await self._find_list("find_session", self.sessions.find({**query, "revokedAt": None}, {"_id": 1}))
        ids = [d["_id"] for d in live]
        if ids:
            await self._run("revoke_session", self.sessions.update_many(
                {"_id": {"$in": ids}, "revokedAt": None}, {"$set": {"revokedAt": now, "revokedReason": reason}}))
        return [str(i) for i in ids]

    async def revoked_since(self, since: datetime) -> list[tuple[str, datetime]]:
        found = await self._find_list("find_session", self.sessions.find({"revokedAt": {"$gt": since}},
                                                                         {"_id": 1, "revokedAt": 1}))
        return [(str(d["_id"]), d["revokedAt"]) for d in found]

    # -- the audit log (append-only: nothing here updates or deletes an entry) --------------------------
    async def insert_audit(self, entry: dict) -> None:
        await self._run("insert_audit", self.audit.insert_one(entry))

    async def page_audit(self, query: dict, limit: int, offset: int) -> tuple[list[dict], int]:
        return await self._page("audit", self.audit, query, [("at", DESCENDING), ("_id", DESCENDING)], limit, offset)

    async def _page(self, name: str, collection, query: dict, order: list, limit: int,
                    offset: int) -> tuple[list[dict], int]:
        """One page of a listing, newest first, and how many there are in all."""
        total = await self._run(f"count_{name}", collection.count_documents(query))
        items = await self._find_list(f"list_{name}", collection.find(query).sort(order).skip(offset).limit(limit))
        return items, total

    # -- what is learned about each doctor (see actors.learning) ------------------------------------
    async def find_doctor_stats(self, doctor_id: ObjectId) -> dict | None:
        return _normalise(await self._run("find_doctor_stats", self.doctor_stats.find_one({"_id": doctor_id})))

    async def record_learning(self, doctor_id: ObjectId, condition: dict, update: dict) -> bool:
        """Applies one learning event (`actors.learning.store_update` makes the condition and update)
        to the doctor's statistics in one atomic write; False if it was already recorded (the same
        change announced twice, or replayed): the condition then matches nothing and the upsert
        collides with the existing `_id`."""
        extra_filter = condition
        try:
            result = await self._run("record_learning", self.doctor_stats.update_one(
                {"_id": doctor_id, **extra_filter}, update, upsert=True))
        except DuplicateKeyError:
            return False
        return result.matched_count == 1 or result.upserted_id is not None

    # -- the clinic over weeks: one summary document per closed clinic day (see domain.reports) ----------
    async def day_summaries_between(self, zone: str, first: str, last: str) -> list[dict]:
        """The summaries of the clinic days `first`..`last` (YYYY-MM-DD) kept for this clinic zone."""
        return await self._find_list("day_summaries", self.day_summaries.find(
            {"zone": zone, "date": {"$gte": first, "$lte": last}}))

    async def first_appointment_date(self) -> datetime | None:
        """When the oldest appointment is booked for (the roll-up summarises no day before it)."""
        first = await self._scan("report_appointments", self.appointments, {}, {"date": 1},
                                 sort=[("date", ASCENDING)], limit=1)
        return first[0]["date"] if first else None

    async def save_day_summary(self, document: dict, held_by: str | None = None) -> bool:
        """Writes (or replaces) one day's summary; its `_id` names the zone and the day. With `held_by`,
        only in place of that holder's placeholder: False, and nothing written, if a change to the day
        deleted it meanwhile (see `domain.reports.closed_days`)."""
        if held_by is None:
            await self._run("save_day_summary", self.day_summaries.replace_one(
                {"_id": document["_id"]}, document, upsert=True))
            return True
        result = await self._run("save_day_summary", self.day_summaries.replace_one(
            {"_id": document["_id"], "heldBy": held_by}, document))
        return result.matched_count == 1

    async def forget_day_summary(self, moment: datetime) -> None:
        """An appointment dated `moment` changed: the summary of its day, if one is kept, is stale and
        goes (the next report or roll-up makes it again from the appointments)."""
        await self._run("forget_day_summary", self.day_summaries.delete_many(
            {"start": {"$lte": moment}, "end": {"$gt": moment}}))
