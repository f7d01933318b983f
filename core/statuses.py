"""Appointment statuses and who may move an appointment from which to which: the API contract's table, as data.

The one home of the status vocabulary: the store's queries, the actors' queues, the schemas and the
workflows all read `WAITING`, `ACTIVE` and `TRANSITIONS` from here. Pure, so the whole matrix
(every from × to × relation) is testable on its own. The order of checks is part of the contract: a
caller whose relation may never set the target status gets `403`; a caller who may, asking for a move
the table does not have, gets `409 invalid_transition`.
"""

from __future__ import annotations

from core.access import ADMIN, DOCTOR, OWNER, STAFF
from core.errors import Conflict, Forbidden

PENDING, CONFIRMED, IN_CONSULTATION = "pending", "confirmed", "in_consultation"
COMPLETED, CANCELLED, NO_SHOW = "completed", "cancelled", "no_show"
STATUSES = (PENDING, CONFIRMED, IN_CONSULTATION, COMPLETED, CANCELLED, NO_SHOW)
WAITING = frozenset({PENDING, CONFIRMED})  # in a queue, not yet called
ACTIVE = WAITING | {IN_CONSULTATION}        # what a doctor's live queue holds
FINISHED = frozenset(STATUSES) - ACTIVE
# whose booked slot stays taken: a cancellation or a no-show frees it at once (the API contract)
HOLDS_SLOT = ACTIVE | {COMPLETED}

EVERYONE_RELATED = frozenset({OWNER, DOCTOR, ADMIN})

# (from, to) → relations allowed; "owner" is the patient who booked, "doctor" the appointment's doctor.
TRANSITIONS: dict[tuple[str, str], frozenset[str]] = {
    (PENDING, CONFIRMED): STAFF,
    (PENDING, CANCELLED): EVERYONE_RELATED,
    (CONFIRMED, CANCELLED): EVERYONE_RELATED,
    (PENDING, IN_CONSULTATION): STAFF,
    (CONFIRMED, IN_CONSULTATION): STAFF,
    (PENDING, COMPLETED): STAFF,
    (CONFIRMED, COMPLETED): STAFF,
    (IN_CONSULTATION, COMPLETED): STAFF,
    (PENDING, NO_SHOW): STAFF,       # only once its booked time has passed: `check_timing`
    (CONFIRMED, NO_SHOW): STAFF,
    (IN_CONSULTATION, NO_SHOW): STAFF,  # called, never joined
}
ROLES_BY_TARGET: dict[str, frozenset[str]] = {}
for (_from, _to), _roles in TRANSITIONS.items():
    ROLES_BY_TARGET[_to] = ROLES_BY_TARGET.get(_to, frozenset()) | _roles


def check_timing(current: str, target: str, booked_at, now) -> None:
    """A waiting patient is no no-show before the time they booked: `409 too_early` (they may be in the
    waiting room, early). Checked after `check_transition`, so a move the table refuses says so first."""
    if target == NO_SHOW and current in WAITING and booked_at > now:
        raise Conflict("This appointment's time has not come yet; it cannot be a no-show before it.",
                       code="too_early", details={"date": booked_at.isoformat().replace("+00:00", "Z")})


def check_transition(current: str, target: str, caller: str | None) -> None:
    """Raises the API's answer for a move `caller` (a relation from `core.access`) may not make."""
    if caller is None:
        raise Forbidden("This is not your appointment.")
    allowed_for_target = ROLES_BY_TARGET.get(target)
    if allowed_for_target is not None and caller not in allowed_for_target:
        raise Forbidden("You may not set this status on this appointment.")
    if caller not in TRANSITIONS.get((current, target), frozenset()):
        raise Conflict(f"An appointment cannot go from {current} to {target}.", code="invalid_transition",
                       details={"from": current, "to": target})
