"""The whole transition matrix: every from-status × to-status × caller, against the API contract's table.

The expectation is written out here from the API contract, independently of `core.statuses.TRANSITIONS`:

| from                                | to              | who                           |
| pending                             | confirmed       | doctor, admin                 |
| pending, confirmed                  | cancelled       | the owning patient, doctor, admin |
| pending, confirmed                  | in_consultation | doctor, admin                 |
| pending, confirmed, in_consultation | completed       | doctor, admin                 |
| pending, confirmed                  | no_show         | doctor, admin (once its date has passed) |
| in_consultation                     | no_show         | doctor, admin (called, never joined) |

Anything else → 409 invalid_transition; a role not listed (for that target) → 403. An unrelated
caller (None) may change nothing → 403.
"""

import itertools

import pytest

from core.access import Principal
from core.access import relation as access_relation
from core.errors import Conflict, Forbidden
from core.statuses import check_timing, check_transition


def relation(principal, appointment):
    return access_relation(principal, str(appointment["doctor"]), str(appointment["patient"]))


STATUSES = ["pending", "confirmed", "in_consultation", "completed", "cancelled", "no_show"]
CALLERS = ["owner", "doctor", "admin", None]

API_TABLE = [
    (("pending",), "confirmed", {"doctor", "admin"}),
    (("pending", "confirmed"), "cancelled", {"owner", "doctor", "admin"}),
    (("pending", "confirmed"), "in_consultation", {"doctor", "admin"}),
    (("pending", "confirmed", "in_consultation"), "completed", {"doctor", "admin"}),
    (("pending", "confirmed"), "no_show", {"doctor", "admin"}),
    (("in_consultation",), "no_show", {"doctor", "admin"}),
]


def expected_outcome(current: str, target: str, caller: str | None) -> str:
    if caller is None:
        return "forbidden"
    rows = [(froms, roles) for froms, to, roles in API_TABLE if to == target]
    if any(current in froms and caller in roles for froms, roles in rows):
        return "allowed"
    roles_for_target = set().union(*(roles for _, roles in rows)) if rows else None
    if roles_for_target is not None and caller not in roles_for_target:
        return "forbidden"
    return "conflict"


MATRIX = list(itertools.product(STATUSES, STATUSES, CALLERS))


def test_matrix_is_complete_and_expectations_are_sane():
    assert len(MATRIX) == 6 * 6 * 4
    outcomes = [expected_outcome(*case) for case in MATRIX]
    # 11 (from, to) rows: each for doctor and admin, 2 (the cancellations) for the owner too. (The
    # in_consultation → no_show row is new with API.md's second security pass.)
    assert outcomes.count("allowed") == 11 * 2 + 2
    assert expected_outcome("pending", "confirmed", "owner") == "forbidden"
    assert expected_outcome("completed", "cancelled", "owner") == "conflict"
    assert expected_outcome("completed", "cancelled", "doctor") == "conflict"
    assert expected_outcome("pending", "pending", "admin") == "conflict"
    assert expected_outcome("in_consultation", "cancelled", "admin") == "conflict"
    assert expected_outcome("in_consultation", "completed", "owner") == "forbidden"
    assert expected_outcome("pending", "cancelled", None) == "forbidden"


@pytest.mark.parametrize("current,target,caller", MATRIX,
                         ids=[f"{c}->{t}-as-{r}" for c, t, r in MATRIX])
def test_transition_matrix(current, target, caller):
    outcome = expected_outcome(current, target, caller)
    if outcome == "allowed":
        assert check_transition(current, target, caller) is None
    elif outcome == "forbidden":
        with pytest.raises(Forbidden) as info:
            check_transition(current, target, caller)
        assert info.value.status == 403
        assert info.value.code == "forbidden"
    else:
        with pytest.raises(Conflict) as info:
            check_transition(current, target, caller)
        assert info.value.status == 409
        assert info.value.code == "invalid_transition"
        assert not isinstance(info.value, Forbidden)


DOCTOR_ID = "a" * 24
OTHER_DOCTOR_ID = "b" * 24
OWNER_ID = "c" * 24
APPOINTMENT = {"doctor": DOCTOR_ID, "patient": OWNER_ID}


@pytest.mark.parametrize("principal,expected", [
    (Principal(OWNER_ID, "patient"), "owner"),
    (Principal("d" * 24, "patient"), None),
    (Principal("e" * 24, "doctor", DOCTOR_ID), "doctor"),
    (Principal("e" * 24, "doctor", OTHER_DOCTOR_ID), None),
    (Principal("e" * 24, "doctor", None), None),
    (Principal(OWNER_ID, "doctor", OTHER_DOCTOR_ID), None),   # a doctor is never an "owner"
    (Principal("f" * 24, "admin"), "admin"),
])
def test_relation(principal, expected):
    assert relation(principal, APPOINTMENT) == expected


def test_a_waiting_appointment_is_no_no_show_before_its_time():
    from datetime import datetime, timedelta, timezone
    now = datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc)
    for current in ("pending", "confirmed"):
        with pytest.raises(Conflict) as info:
            check_timing(current, "no_show", now + timedelta(minutes=40), now)
        assert info.value.code == "too_early" and info.value.status == 409
        check_timing(current, "no_show", now, now)
        check_timing(current, "no_show", now - timedelta(minutes=1), now)
    check_timing("in_consultation", "no_show", now + timedelta(minutes=40), now)  # called early, never joined
    check_timing("pending", "cancelled", now + timedelta(minutes=40), now)
