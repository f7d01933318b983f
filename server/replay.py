"""`python -m server eta-replay`: the live server's own queue and estimator, run over a recorded history.

Anyone can measure the ETA's accuracy on their own days with it (see bench/eta for the measurement
we publish). There is no second implementation here: the replay builds what the server builds (an
embedded store, the hub, the queue registry, the in-process bus) with `services.clock` set to each
event's time, and calls the server's own workflows for each event (creating a doctor and changing its
status, booking, changing an appointment's status, as an admin and a patient would), so every
document is written, published and learned from by the same code as in the server; each `observe` is
answered from the doctor's actor. What is learned therefore carries across the days of one replay
exactly as it would in the server. The replay never writes to a real database, not even with
`--from-store`.

Input, JSON Lines in time order (times ISO 8601 with a zone; ids 24-hex):
    {"at", "event": "doctor", "doctorId", "avgConsultMinutes"?, "isRunningLate"?, "lateByMinutes"?, "awayUntil"?}
    {"at", "event": "booked", "doctorId", "appointmentId", "date"}
    {"at", "event": "status", "appointmentId", "status"}
    {"at", "event": "observe", "doctorId"}
Output, per `observe`, one line per waiting appointment in queue order:
    {"at", "appointmentId", "position", "etaMinutes", "expectedStartAt", "earliestStartAt", "latestStartAt",
     "delayMinutes"}
A malformed line stops the replay with its line number on stderr (exit status 2).
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Iterable, Iterator, TextIO

from bson import ObjectId
from marshmallow import ValidationError, fields, validate

from core.access import Principal
from core.doctors import DEFAULT_AVG_CONSULT_MINUTES
from core.errors import ApiError
from core.values import format_utc
from domain import appointments, doctors
from infra.store import Store
from schemas.base import StrictSchema
from schemas.doctors import DoctorStatusSchema
from schemas.fields import ObjectIdField, UtcDateTime

REPLAY_STATUSES = ("confirmed", "in_consultation", "completed", "no_show", "cancelled")
# --from-store: how often the queue is observed while someone waits whose booking is near (within
# OBSERVE_AHEAD), as a patient's app would see it.
OBSERVE_EVERY = timedelta(minutes=5)
OBSERVE_AHEAD = timedelta(hours=3)
# Who the replay acts as: the clinic's admin for the doctors and every status, a new patient per booking.
REPLAY_ADMIN = Principal("0" * 23 + "1", "admin")


class ReplayError(ValueError):
    """A line that cannot be replayed; the CLI prints it with its line number and exits 2."""


class _Event(StrictSchema):
    at = UtcDateTime(required=True)
    event = fields.String(required=True)


class DoctorEvent(_Event, DoctorStatusSchema):
    doctorId = ObjectIdField(required=True)
    awayUntil = UtcDateTime(allow_none=True)


class BookedEvent(_Event):
    doctorId = ObjectIdField(required=True)
    appointmentId = ObjectIdField(required=True)
    date = UtcDateTime(required=True)


class StatusEvent(_Event):
    appointmentId = ObjectIdField(required=True)
    status = fields.String(required=True, validate=validate.OneOf(REPLAY_STATUSES))


class ObserveEvent(_Event):
    doctorId = ObjectIdField(required=True)


SCHEMAS = {"doctor": DoctorEvent(), "booked": BookedEvent(), "status": StatusEvent(), "observe": ObserveEvent()}


def parse_line(text: str) -> dict:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReplayError(f"not JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise ReplayError("not a JSON object")
    schema = SCHEMAS.get(data.get("event"))
    if schema is None:
        raise ReplayError(f"unknown event {data.get('event')!r}; expected one of {', '.join(SCHEMAS)}")
    try:
        return schema.load(data)
    except ValidationError as exc:
        problems = "; ".join(f"{name}: {' '.join(map(str, msgs if isinstance(msgs, list) else [msgs]))}"
                             for name, msgs in exc.messages.items())
        raise ReplayError(problems) from None


class Replay:
    """One replay: an embedded server without HTTP, whose clock is the event being replayed."""

    def __init__(self, settings):
        from server.app import build_services  # the app module imports the handlers; keep the CLI light

        self.now: datetime | None = None
        settings = replace(settings, mongo_uri=None, redis_url=None)
        self.services = build_services(settings, store=Store.connect(None, "eta_replay"), clock=self.clock)
        self.services.notifier.sender.close()
        self.services.notifier = None  # a replay notifies nobody (and reads nothing for it)
        self.store = self.services.store

    def clock(self) -> datetime:
        return self.now

    async def start(self) -> None:
        await self.store.ensure_indexes()

    async def stop(self) -> None:
        await self.services.queues.stop()
        self.services.hasher.close()

    async def apply(self, event: dict) -> list[dict]:
        """Applies one parsed event; answers the output lines (only `observe` has any). A workflow's
        refusal (a transition not allowed, a booking in the past) stops the replay with its message."""
        if self.now is not None and event["at"] < self.now:
            raise ReplayError(f"time goes backwards ({format_utc(event['at'])} is before {format_utc(self.now)})")
        self.now = event["at"]
        kind = event["event"]
        try:
            if kind == "doctor":
                await self._doctor(event)
            elif kind == "booked":
                await self._booked(event)
            elif kind == "status":
                await self._status(event)
            else:
                return await self._observe(event["doctorId"])
        except ApiError as exc:
            details = "; ".join(f"{name}: {' '.join(map(str, messages))}"
                                for name, messages in (exc.details or {}).items())
            raise ReplayError(f"{exc.message} {details}".strip()) from None
        return []

    async def _doctor(self, event: dict) -> None:
        doctor_id = str(event["doctorId"])
        status = {k: v for k, v in event.items() if k not in ("at", "event", "doctorId")}
        if await self.store.find_doctor(event["doctorId"]) is None:
            await doctors.create_doctor(self.services, REPLAY_ADMIN, {
                "name": f"Doctor {doctor_id}", "specialization": "", "email": f"{doctor_id}@replay.invalid",
                "phone": ""}, doctor_id=doctor_id)
        if status:
            await doctors.set_status(self.services, REPLAY_ADMIN, doctor_id, status)

    async def _booked(self, event: dict) -> None:
        doctor_id, appointment_id = event["doctorId"], event["appointmentId"]
        if await self.store.find_doctor(doctor_id) is None:
            raise ReplayError(f"doctor {doctor_id} has no doctor event before this booking")
        if await self.store.find_appointment(appointment_id) is not None:
            raise ReplayError(f"appointment {appointment_id} is already booked")
        patient = Principal(str(ObjectId()), "patient")
        await appointments.book(self.services, patient, {
            "patientName": "", "patientEmail": "", "patientPhone": "", "doctor": doctor_id,
            "date": event["date"], "reason": ""}, appointment_id=str(appointment_id))

    async def _status(self, event: dict) -> None:
        if await self.store.find_appointment(event["appointmentId"]) is None:
            raise ReplayError(f"appointment {event['appointmentId']} was never booked")
        await appointments.change_status(self.services, REPLAY_ADMIN, str(event["appointmentId"]), event["status"])

    async def _observe(self, doctor_id: ObjectId) -> list[dict]:
        if await self.store.find_doctor(doctor_id) is None:
            raise ReplayError(f"doctor {doctor_id} has no doctor event before this observation")
        snapshot = await self.services.queues.snapshot(str(doctor_id))
        at = format_utc(self.now)
        return [{"at": at, "appointmentId": entry.id, "position": estimate.position,
                 "etaMinutes": estimate.eta_minutes, "expectedStartAt": format_utc(estimate.expected_start_at),
                 "earliestStartAt": format_utc(estimate.earliest_start_at),
                 "latestStartAt": format_utc(estimate.latest_start_at), "delayMinutes": estimate.delay_minutes}
                for entry, estimate in zip(snapshot.waiting, snapshot.estimates)]


async def replay_lines(settings, lines: Iterable[str], out: TextIO) -> None:
    """Replays JSON Lines; a bad line raises `ReplayError` with its (1-based) line number."""
    replay = Replay(settings)
    await replay.start()
    try:
        for number, text in enumerate(lines, start=1):
            if not text.strip():
                continue
            try:
                outputs = await replay.apply(parse_line(text))
            except ReplayError as exc:
                raise ReplayError(f"line {number}: {exc}") from None
            for output in outputs:
                out.write(json.dumps(output, separators=(",", ":")) + "\n")
    finally:
        await replay.stop()


# -- --from-store ----------------------------------------------------------------------------------
async def history_from_store(store: Store, doctor_id: ObjectId, since: datetime) -> list[str]:
    """The store's record of one doctor since a date, as replay lines: the doctor (with its settings
    today: their history is not kept), each booking at its creation, each status change at the time
    the appointment records for it, and an observation every `OBSERVE_EVERY` while anyone waits."""
    doctor = await store.find_doctor(doctor_id)
    if doctor is None:
        raise ReplayError(f"no doctor {doctor_id} in the store")
    appointments = await store.appointments_of_doctor_since(doctor_id, since)
    events: list[tuple[datetime, int, dict]] = []
    for a in appointments:
        aid = str(a["_id"])
        events.append((a["createdAt"], 1, {"event": "booked", "doctorId": str(doctor_id), "appointmentId": aid,
                                           "date": format_utc(a["date"])}))
        if a.get("startedAt") is not None:
            events.append((a["startedAt"], 2, {"event": "status", "appointmentId": aid, "status": "in_consultation"}))
        if a["status"] == "completed" and a.get("completedAt") is not None:
            events.append((a["completedAt"], 2, {"event": "status", "appointmentId": aid, "status": "completed"}))
        elif a["status"] in ("no_show", "cancelled"):
            events.append((a["updatedAt"], 2, {"event": "status", "appointmentId": aid, "status": a["status"]}))
    events.sort(key=lambda e: (e[0], e[1]))
    first = events[0][0] if events else since
    lines = [_line(first, {"event": "doctor", "doctorId": str(doctor_id),
                           "avgConsultMinutes": int(doctor.get("avgConsultMinutes", DEFAULT_AVG_CONSULT_MINUTES))})]
    lines += [_line(at, event) for at, event in _with_observations(events, str(doctor_id))]
    return lines


def _with_observations(events: list[tuple[datetime, int, dict]], doctor_id: str) -> Iterator[tuple[datetime, dict]]:
    waiting: dict[str, datetime] = {}  # appointment id → booked time
    observe = {"event": "observe", "doctorId": doctor_id}

    def someone_due(at: datetime) -> bool:
        return any(date - at <= OBSERVE_AHEAD for date in waiting.values())

    next_observe: datetime | None = None
    for at, _, event in events:
        while next_observe is not None and next_observe < at:
            if someone_due(next_observe):
                yield next_observe, observe
            next_observe += OBSERVE_EVERY
        yield at, event
        if event["event"] == "booked":
            waiting[event["appointmentId"]] = datetime.fromisoformat(event["date"].replace("Z", "+00:00"))
        else:
            waiting.pop(event["appointmentId"], None)
        if someone_due(at):
            yield at, observe
        next_observe = at + OBSERVE_EVERY


def _line(at: datetime, event: dict) -> str:
    return json.dumps({"at": format_utc(at), **event})
