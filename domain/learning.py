"""The write side of the learned ETA: what a committed appointment write teaches about its doctor.

`actors.learning` says what an appointment document teaches (pure); this records it in the doctor's
statistics document, once per event whatever node or retry announces it. Part of the publish step
(`domain.publish`), so every workflow that starts or ends a consultation or marks a no-show teaches,
and so does `eta-replay`, which publishes the same way.
"""

from __future__ import annotations

import logging

from actors.learning import DoctorStats, events_for, may_teach, store_update
from core.errors import StoreUnavailable

log = logging.getLogger("medpharma.learning")


async def learn_from(store, appointment: dict) -> None:
    """Best effort: the appointment's own write has committed, and a lost lesson only makes the
    estimate a little less informed, so a store failure is logged, not raised."""
    if not may_teach(appointment):
        return
    doctor_id = appointment["doctor"]
    try:
        stats = DoctorStats.from_document(await store.find_doctor_stats(doctor_id))
        for event in events_for(stats, appointment):
            await store.record_learning(doctor_id, *store_update(event))
    except StoreUnavailable:
        log.warning("could not record what a consultation taught", extra={"doctor": str(doctor_id)})
