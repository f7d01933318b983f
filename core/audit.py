"""What the audit log records (the API contract's list) and what it must never hold."""

ACTIONS = ("invite.created", "invite.redeemed", "invite.revoked", "doctor.created", "doctor.updated",
           "doctor.deleted", "doctor.status_changed", "appointment.status_changed", "appointment.rescheduled", "queue.call_next",
           "user.disabled", "user.enabled", "user.deleted", "password.changed", "admin.seeded",
           "webhook.created", "webhook.deleted")
SECRET_WORDS = ("password", "token", "secret", "hash")  # no detail key may name one of these
