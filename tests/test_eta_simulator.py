"""The ETA bench's simulator hands the clairvoyant bound the habits behind its events: they must be
the same doctors, and every simulated day must end with nobody left waiting (the bound and the
scorer read the events as a finished history)."""

from bench.eta.simulate import simulate, simulate_clinic

RESOLVED = {"completed", "no_show", "cancelled"}


def test_habits_are_those_of_the_doctors_in_the_events():
    events, habits = simulate_clinic(seed=5, doctors=3, days=2)
    created = {e["doctorId"]: e["avgConsultMinutes"] for e in events if e["event"] == "doctor" and "avgConsultMinutes" in e}
    assert set(created) == set(habits)
    assert all(habits[doctor].typed_avg == typed for doctor, typed in created.items())


def test_the_events_are_those_simulate_returns_and_every_booking_is_resolved():
    events, _ = simulate_clinic(seed=5, doctors=3, days=2)
    assert events == simulate(seed=5, doctors=3, days=2)
    last = {}
    for event in events:
        if event["event"] == "booked":
            last[event["appointmentId"]] = "pending"
        elif event["event"] == "status":
            last[event["appointmentId"]] = event["status"]
    assert last and set(last.values()) <= RESOLVED
