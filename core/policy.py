"""Who may call each operation: declared once here, checked by the domain, described by the API.

Every workflow in `domain/` that a client can reach is wrapped by `guarded(name)`, which admits the
caller by role before the workflow runs; a workflow that is about one doctor or one appointment then
asks `relate(...)` once it knows whose it is. The HTTP and socket edges hold no rule of their own
(they may ask `admit` early, so a stranger gets `401` before a body is even read), and the OpenAPI
generator words each operation's security from the same `Rule`. A new entry point (a socket command,
the CLI, the replay) that calls a workflow inherits its rule.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

from core import metrics
from core.access import ADMIN, DOCTOR, OWNER, PATIENT, STAFF, Principal, relation
from core.errors import Forbidden, Unauthorized


@dataclass(frozen=True)
class Rule:
    """`public`: no token needed (a valid one may change the answer). Otherwise signed in, with one of
    `roles` if any are named. `relations`: how the caller must stand to the doctor or appointment the
    operation is about (`core.access.relation`); `says` is how the API description words that."""

    public: bool = False
    roles: tuple[str, ...] = ()
    relations: frozenset[str] = frozenset()
    says: str = ""
    refusal: str = "You are not allowed to do this."

    def admit(self, principal: Principal | None) -> Principal | None:
        """The role half, checked before anything is read: `401` without a caller, `403` for a role
        the rule does not name."""
        if self.public:
            return principal
        if principal is None:
            metrics.auth_failures_total.labels("missing_token").inc()
            raise Unauthorized("Sign in first: send Authorization: Bearer <token>.", code="unauthorized")
        if self.roles and principal.role not in self.roles:
            metrics.auth_failures_total.labels("forbidden").inc()
            raise Forbidden()
        return principal

    @property
    def callers(self) -> tuple[str, ...]:
        """The roles that can ever pass, for the API description: those named, or those a staff
        relation implies (only a doctor or an admin can be "that doctor" or an admin); () for any."""
        if self.roles:
            return self.roles
        if self.relations and self.relations <= STAFF:
            return tuple(role for role in (DOCTOR, ADMIN) if role in self.relations)
        return ()

    def relate(self, principal: Principal | None, doctor_id: str, patient_id: str | None = None) -> str:
        """The relation half, once the resource is known: the caller's relation to it, or `403`."""
        found = relation(principal, doctor_id, patient_id)
        if found not in self.relations:
            metrics.auth_failures_total.labels("forbidden").inc()
            raise Forbidden(self.refusal)
        return found


ANYONE = Rule(public=True)
SIGNED_IN = Rule()
ADMINS = Rule(roles=(ADMIN,))
PATIENTS = Rule(roles=(PATIENT,))
# No role named: whoever is signed in is admitted, and the relation decides once the body is valid
# (so a malformed body is a 400 for anyone, as it always was).
STAFF_OF_DOCTOR = Rule(relations=STAFF, says="admins, or that doctor",
                       refusal="Only this doctor or an admin may do this.")
PARTIES = frozenset({ADMIN, DOCTOR, OWNER})
PARTY_TO_APPOINTMENT = Rule(relations=PARTIES, says="its patient, its doctor, admins",
                            refusal="This is not your appointment.")

# operation → who may call it. The names are the ones the API description and the tests use.
RULES: dict[str, Rule] = {
    "auth.register": ANYONE,
    "auth.login": ANYONE,
    "auth.register_invite": ANYONE,
    "auth.refresh": ANYONE,
    "auth.me": SIGNED_IN,
    "auth.logout": SIGNED_IN,
    "auth.change_password": SIGNED_IN,
    "invites.create": ADMINS,
    "invites.list": ADMINS,
    "invites.revoke": ADMINS,
    "users.list": ADMINS,
    "users.set_disabled": ADMINS,
    "users.delete": ADMINS,
    "audit.list": ADMINS,
    "doctors.list": ANYONE,
    "doctors.get": ANYONE,
    "doctors.create": ADMINS,
    "doctors.update": ADMINS,
    "doctors.delete": ADMINS,
    "doctors.set_status": STAFF_OF_DOCTOR,
    "doctors.call_next": STAFF_OF_DOCTOR,
    "doctors.day_stats": STAFF_OF_DOCTOR,
    "doctors.slots": ANYONE,
    "appointments.book": PATIENTS,
    "appointments.list": ADMINS,
    "appointments.mine": PATIENTS,
    "appointments.of_doctor": STAFF_OF_DOCTOR,
    "appointments.get": PARTY_TO_APPOINTMENT,
    # the transition table (`core.statuses`) says which party may move it to which status
    "appointments.set_status": Rule(relations=PARTIES, refusal="This is not your appointment.",
                                    says="see the transition table: the owning patient may only cancel"),
    # moving a waiting appointment: any party; changing its `reason` is the patient's alone (the
    # workflow refuses `reason` from staff with 403 once it knows how the caller stands)
    "appointments.reschedule": Rule(relations=PARTIES, refusal="This is not your appointment.",
                                    says="its patient, its doctor, admins; `reason` only its patient"),
    "queue.of_doctor": SIGNED_IN,
    "queue.position": PARTY_TO_APPOINTMENT,
    "live.watch_doctor": SIGNED_IN,
    # the clinic over weeks: an admin for any doctor (or all), a doctor for their own days only
    "reports.days": Rule(roles=(DOCTOR, ADMIN), relations=STAFF, says="admins (any doctor or all), or that doctor",
                         refusal="A doctor may read only their own days."),
    # notifications: the VAPID key is public; a subscription is its owner's (anyone else's is "not found")
    "push.key": ANYONE,
    "push.subscribe": SIGNED_IN,
    "push.unsubscribe": SIGNED_IN,
    "webhooks.create": ADMINS,
    "webhooks.list": ADMINS,
    "webhooks.delete": ADMINS,
    "webhooks.deliveries": ADMINS,
}


def rule(name: str) -> Rule:
    return RULES[name]


def guarded(name: str) -> Callable:
    """Declares a workflow as operation `name`: unless the rule is public, its caller (the argument
    after `services`) is admitted by that rule first. The wrapper keeps the rule as `.rule` and the
    name as `.operation`, so an edge can admit early and a test can find every guarded workflow."""
    declared = RULES[name]

    def wrap(workflow: Callable) -> Callable:
        if declared.public:  # anyone may call it: nothing to admit, only the declaration to keep
            workflow.rule, workflow.operation = declared, name
            return workflow

        @functools.wraps(workflow)
        def guarded_workflow(services, principal, *args, **kwargs):
            return workflow(services, declared.admit(principal), *args, **kwargs)

        guarded_workflow.rule = declared
        guarded_workflow.operation = name
        return guarded_workflow

    return wrap
