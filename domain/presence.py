"""Who is here: a patient's own socket on its own appointment makes the patient present.

The WebSocket edge reports arrivals and departures here; this node's count moves, the doctor's staff
view re-renders its `present` flags, and the other nodes hear of it over the bus.
"""

from __future__ import annotations


def arrived(services, appointment_id: str) -> None:
    if services.queues.presence.join(appointment_id):
        _changed(services, appointment_id)


def left(services, appointment_id: str) -> None:
    if services.queues.presence.leave(appointment_id):
        _changed(services, appointment_id)


def _changed(services, appointment_id: str) -> None:
    services.queues.presence_changed([appointment_id])
    services.bus.local_presence_changed()
