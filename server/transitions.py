"""Who may move an appointment from which status to which: API.md's table, as data.

Pure and separate from the handlers so the whole matrix (every from × to × role) is testable.
The order of checks is part of the contract: a caller whose role may never set the target status
gets `403`; a caller who may, asking for a move the table does not have, gets `409 invalid_transition`.
"""

from __future__ import annotations

from server.errors import Conflict, Forbidden

WAITING = frozenset({"pending", "confirmed"})
STAFF = frozenset({"doctor", "admin"})
EVERYONE_RELATED = frozenset({"owner", "doctor", "admin"})

# (from, to) → roles allowed; "owner" is the patient who booked, "doctor" the appointment's doctor.
TRANSITIONS: dict[tuple[str, str], frozenset[str]] = {
    ("pending", "confirmed"): STAFF,
    ("pending", "cancelled"): EVERYONE_RELATED,
    ("confirmed", "cancelled"): EVERYONE_RELATED,
    ("pending", "in_consultation"): STAFF,
    ("confirmed", "in_consultation"): STAFF,
    ("pending", "completed"): STAFF,
    ("confirmed", "completed"): STAFF,
    ("in_consultation", "completed"): STAFF,
    ("pending", "no_show"): STAFF,
    ("confirmed", "no_show"): STAFF,
}
ROLES_BY_TARGET: dict[str, frozenset[str]] = {}
for (_from, _to), _roles in TRANSITIONS.items():
    ROLES_BY_TARGET[_to] = ROLES_BY_TARGET.get(_to, frozenset()) | _roles


def relation(principal, appointment: dict) -> str | None:
    """How the caller stands to this appointment: admin, its doctor, its owner, or unrelated."""
    if principal.is_admin:
        return "admin"
    if principal.is_doctor_of(str(appointment["doctor"])):
        return "doctor"
    if principal.role == "patient" and principal.user_id == str(appointment["patient"]):
        return "owner"
    return None


def check_transition(current: str, target: str, caller: str | None) -> None:
    if caller is None:
        raise Forbidden("This is not your appointment.")
    allowed_for_target = ROLES_BY_TARGET.get(target)
    if allowed_for_target is not None and caller not in allowed_for_target:
        raise Forbidden("You may not set this status on this appointment.")
    if caller not in TRANSITIONS.get((current, target), frozenset()):
        raise Conflict(f"An appointment cannot go from {current} to {target}.", code="invalid_transition",
                       details={"from": current, "to": target})
