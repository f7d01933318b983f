"""The day in numbers: one clinic day of one doctor, read from the store, so it survives restarts."""

from __future__ import annotations

from datetime import date
from statistics import fmean

from core.access import Principal
from core.metrics import ETA_RANGE_OUTCOMES
from core.errors import NotFound
from core.policy import guarded
from core.statuses import CANCELLED, COMPLETED, NO_SHOW, WAITING
from core.values import to_object_id


@guarded("doctors.day_stats")
async def day_stats(services, principal: Principal, doctor_id: str, day: date | None) -> dict:
    day_stats.rule.relate(principal, doctor_id)
    store, calendar = services.store, services.calendar
    oid = to_object_id(doctor_id)
    if await store.find_doctor(oid) is None:
        raise NotFound("Doctor not found.")
    day = day or calendar.day_of(services.clock())
    booked = await store.appointments_between(oid, calendar.start_of(day), calendar.end_of(day))
    waits = [max(0.0, _minutes(a["startedAt"] - a["date"])) for a in booked if a.get("startedAt") is not None]
    consults = [_minutes(a["completedAt"] - a["startedAt"]) for a in booked
                if a["status"] == COMPLETED and a.get("startedAt") is not None and a.get("completedAt") is not None]
    scored = [float(a["etaErrorMinutes"]) for a in booked if a.get("etaErrorMinutes") is not None]
    ranges = [a.get("etaRange") for a in booked]
    count = lambda statuses: sum(1 for a in booked if a["status"] in statuses)  # noqa: E731
    return {"date": day.isoformat(), "booked": len(booked), "completed": count({COMPLETED}),
            "noShows": count({NO_SHOW}), "cancelled": count({CANCELLED}), "waiting": count(WAITING),
            "meanWaitMinutes": _mean(waits), "meanConsultMinutes": _mean(consults),
            "etaMaeMinutes": _mean(scored), "etaScored": len(scored),
            "etaRange": {outcome: ranges.count(outcome) for outcome in ETA_RANGE_OUTCOMES}}


def _minutes(delta) -> float:
    return delta.total_seconds() / 60


def _mean(values: list[float]) -> float | None:
    return round(fmean(values), 1) if values else None
