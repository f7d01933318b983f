"""Who is calling, and how they stand to a doctor or an appointment: the one access relation.

Every rule of the form "admin, or that doctor, or the owning patient" in the API contract is answered by
`relation()`; handlers, workflows, the WebSocket and the redaction of payloads all ask it rather than
spell the rule again. Ids compared here are canonical (lower-case hex) strings, made so at the edge.
"""

from __future__ import annotations

from dataclasses import dataclass

ADMIN, DOCTOR, OWNER = "admin", "doctor", "owner"
PATIENT = "patient"  # the role; a patient relates to their own appointment as its OWNER
STAFF = frozenset({DOCTOR, ADMIN})  # relations that see identities and run a doctor's queue
ROLES = (PATIENT, DOCTOR, ADMIN)


@dataclass(frozen=True)
class Principal:
    """Who is calling, as the token says. Roles never change, so the token is enough to authorize."""

    user_id: str
    role: str
    doctor_id: str | None = None
    expires_at: float | None = None  # the token's `exp`, so a long-lived socket can end with it
    session_id: str | None = None    # the sign-in this token belongs to (`sid`), so it can be ended


def relation(principal: Principal | None, doctor_id: str, patient_id: str | None = None) -> str | None:
    """`admin`, `doctor` (this doctor's own account), `owner` (the patient of this appointment) or None.

    Pass `patient_id` when asking about an appointment; without it, only staff relations exist."""
    if principal is None:
        return None
    if principal.role == ADMIN:
        return ADMIN
    if principal.role == DOCTOR and principal.doctor_id is not None and principal.doctor_id == doctor_id:
        return DOCTOR
    if patient_id is not None and principal.role == PATIENT and principal.user_id == patient_id:
        return OWNER
    return None


def is_staff_of(principal: Principal | None, doctor_id: str) -> bool:
    """Admin, or this doctor: may run the doctor's queue and see its patients' names and contacts."""
    return relation(principal, doctor_id) in STAFF
