"""The event bus between handlers and actors.

In one process it is a direct call into the registry: `publish` returns once the doctor's live actor
has taken the change in (read-your-writes). A multi-process deployment would put Redis pub/sub
behind the same `publish`, with every node's registry delivering to its own actors; each change
carries the appointment's `version`, so late or repeated deliveries are already harmless.
"""

from __future__ import annotations

from actors.messages import AppointmentChanged, DoctorChanged, DoctorDeleted


class InProcessBus:
    def __init__(self, registry):
        self.registry = registry

    async def publish(self, change: AppointmentChanged | DoctorChanged | DoctorDeleted) -> None:
        await self.registry.deliver(change)
