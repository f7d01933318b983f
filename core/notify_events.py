"""The webhook events of the API contract, in its order (schemas validate with it, domain emits them)."""

WEBHOOK_EVENTS = ("appointment.booked", "appointment.rescheduled", "appointment.cancelled", "appointment.soon",
                  "appointment.called", "appointment.delayed", "appointment.no_show", "appointment.completed")
