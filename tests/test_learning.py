"""What the server learns about a doctor (actors/learning.py) and how the estimator uses it (actors/eta.py)."""

import asyncio
from datetime import datetime, timedelta, timezone

import pytest
from bson import ObjectId

from actors import learning
from actors.eta import estimate_queue
from actors.learning import (CALL_BUSY, CALL_FIRST, CALL_IDLE, CONSULTATION, NO_SHOW, DoctorStats, LearningEvent, apply,
                             apply_all, conditional_quantile, events_for, store_update)
from infra.store import Store

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc)


def at(minutes: float) -> datetime:
    return NOW + timedelta(minutes=minutes)


def consultations(lengths, start_key: int = 0) -> DoctorStats:
    stats = DoctorStats()
    for i, minutes in enumerate(lengths, start=start_key):
        stats = apply(stats, LearningEvent(f"a{i}:{CONSULTATION}", CONSULTATION, float(minutes), free_at=at(-60 + i)))
    return stats


QUEUES = [
    ([at(0), at(0), at(30), at(31)], None, 0, None),
    ([at(-20), at(5), at(60)], at(-4), 0, None),
    ([at(0), at(0)], at(-30), 15, None),
    ([at(10), at(10)], None, 0, at(25)),
    ([at(24 * 60)], None, 0, None),
]


def plain(booked, started, late, away):
    return estimate_queue(booked, now=NOW, avg_minutes=12, late_minutes=late, consultation_started_at=started,
                          away_until=away, learning=False)


@pytest.mark.parametrize("booked,started,late,away", QUEUES)
def test_no_history_is_exactly_the_plain_rule(booked, started, late, away):
    for stats in (None, DoctorStats(), consultations([30, 30, 30, 30])):  # fewer than 5 valid
        assert estimate_queue(booked, now=NOW, avg_minutes=12, late_minutes=late, consultation_started_at=started,
                              away_until=away, stats=stats) == plain(booked, started, late, away)


@pytest.mark.parametrize("booked,started,late,away", QUEUES)
def test_learning_off_pins_the_plain_rule_whatever_was_learned(booked, started, late, away):
    slow = consultations([30] * 40)
    assert estimate_queue(booked, now=NOW, avg_minutes=12, late_minutes=late, consultation_started_at=started,
                          away_until=away, stats=slow, learning=False) == plain(booked, started, late, away)


def test_away_until_in_the_future_holds_the_first_start():
    estimates = plain([at(0), at(0)], None, 0, at(25))
    assert [e.expected_start_at for e in estimates] == [at(25), at(37)]
    assert [e.delay_minutes for e in estimates] == [25, 37]
    assert plain([at(0)], None, 0, at(-5))[0].expected_start_at == NOW  # a break that ended is ignored


def test_a_history_of_outliers_teaches_nothing():
    outliers = consultations([0.2, 0.5, 241, 600, 0.9, 1000, 300])
    assert outliers.consultations == 0 and outliers.consult_minutes == ()
    booked = [at(0), at(0), at(0)]
    assert estimate_queue(booked, now=NOW, avg_minutes=12, late_minutes=0, consultation_started_at=at(-3),
                          stats=outliers) == plain(booked, at(-3), 0, None)
    valid = consultations([20, 22, 18, 25, 21, 19])
    with_outliers = apply_all(valid, [LearningEvent(f"x{i}:{CONSULTATION}", CONSULTATION, m)
                                      for i, m in enumerate([0.1, 500, 241])])
    assert with_outliers.model(12) == valid.model(12)


def test_five_valid_consultations_are_needed():
    assert not consultations([20] * 4).usable
    assert consultations([20] * 5).usable


def test_a_slow_doctor_is_learned_and_shrunk_towards_the_configuration():
    booked = [at(0), at(0), at(0), at(0)]
    few = consultations([24] * 5)
    many = consultations([24] * 150)
    starts = {}
    for name, stats in (("few", few), ("many", many)):
        starts[name] = [e.expected_start_at for e in estimate_queue(
            booked, now=NOW, avg_minutes=12, late_minutes=0, consultation_started_at=at(-1), stats=stats)]
    plain_last = plain(booked, at(-1), 0, None)[-1].expected_start_at
    # Both expect later starts than the plain rule's 12 minutes; a longer history moves further.
    assert plain_last < starts["few"][-1] < starts["many"][-1]
    gap = (starts["many"][-1] - starts["many"][-2]).total_seconds() / 60
    assert 20 < gap < 28


def test_running_consultation_remaining_grows_as_it_overruns():
    model = consultations([10, 12, 15, 11, 30, 9, 14, 13, 12, 10]).model(12)
    remaining = [model.remaining_consultation_minutes(e) for e in (0, 5, 10, 20, 40, 80)]
    assert remaining[0] > remaining[1] > 0  # early on, time passing brings the end nearer
    ends = [e + r for e, r in zip((0, 5, 10, 20, 40, 80), remaining)]
    assert ends == sorted(ends) and ends[-1] > 80  # never "avg minus elapsed" = 0
    assert remaining[-1] > 0


def test_no_shows_shorten_what_a_patient_ahead_costs():
    base = consultations([15] * 30)
    with_no_shows = apply_all(base, [LearningEvent(f"n{i}:{NO_SHOW}", NO_SHOW) for i in range(20)])
    assert with_no_shows.no_shows == 20
    assert with_no_shows.model(12).slot_minutes()[0] < base.model(12).slot_minutes()[0]


def test_lateness_read_from_the_clock_when_the_head_is_due_and_nobody_is_called():
    stats = consultations([12] * 20)
    late_starts = [LearningEvent(f"c{i}:call", CALL_FIRST, minutes) for i, minutes in
                   enumerate([15, 18, 20, 16, 0, 0, 1, 17, 19, 22, 14, 16, 0, 18, 20])]
    stats = apply_all(stats, late_starts)
    stats = DoctorStats(**{**stats.__dict__, "free_since": at(-24 * 60)})

    def head_start(now_minutes):
        now = at(now_minutes)
        return estimate_queue([at(0), at(12)], now=now, avg_minutes=12, late_minutes=0,
                              consultation_started_at=None, stats=stats)[0].expected_start_at

    # Five minutes past the booked time and nobody called: this doctor is probably 15+ late today.
    assert head_start(5) > at(10)
    # The estimate only moves later as the wait goes on (no back and forth).
    starts = [head_start(m) for m in range(0, 30)]
    assert starts == sorted(starts)
    assert all(s >= at(m) for s, m in zip(starts, range(0, 30)))


def test_delay_minutes_counts_whole_minutes_after_the_booking():
    estimates = plain([at(-10), at(0), at(100)], None, 0, None)
    assert [e.delay_minutes for e in estimates] == [10, 12, 0]


def test_conditional_quantile_is_smooth_and_above_its_floor():
    samples = sorted([-5, -3, -2, 0, 0, 0, 4, 15, 20, 25])
    values = [conditional_quantile(samples, f / 4, 0.5) for f in range(-40, 120)]
    assert values == sorted(values)
    assert all(v >= f / 4 for v, f in zip(values, range(-40, 120)))
    assert conditional_quantile(samples, 30, 0.5) == 30
    assert max(b - a for a, b in zip(values, values[1:])) < 3  # no jumps from sample to sample


# -- events from appointments ---------------------------------------------------------------------
def appointment(status, **fields):
    return {"_id": ObjectId("6563a1f0c2b1e4a7d9f01234"), "doctor": ObjectId(), "date": at(0), "status": status,
            **fields}


def test_events_from_appointment_documents():
    assert events_for(DoctorStats(), appointment("pending")) == []
    assert events_for(DoctorStats(), appointment("cancelled")) == []
    [no_show] = events_for(DoctorStats(), appointment("no_show"))
    assert no_show.kind == NO_SHOW
    [early] = events_for(DoctorStats(free_since=at(-30)), appointment("in_consultation", startedAt=at(-4)))
    assert (early.kind, early.minutes) == (CALL_IDLE, -4.0)
    [gap] = events_for(DoctorStats(free_since=at(5)), appointment("in_consultation", startedAt=at(7)))
    assert (gap.kind, gap.minutes) == (CALL_BUSY, 2.0)
    # After a night (or any absence longer than SESSION_GAP) the call opens a session: a late start.
    [first] = events_for(DoctorStats(free_since=at(-15 * 60)), appointment("in_consultation", startedAt=at(12)))
    assert (first.kind, first.minutes) == (CALL_FIRST, 12.0)
    [first] = events_for(DoctorStats(), appointment("in_consultation", startedAt=at(3)))
    assert first.kind == CALL_FIRST
    [done] = events_for(DoctorStats(), appointment("completed", startedAt=at(0), completedAt=at(13.5)))
    assert (done.kind, done.minutes, done.free_at) == (CONSULTATION, 13.5, at(13.5))


def test_a_repeated_event_is_applied_once():
    event = LearningEvent("a1:consultation", CONSULTATION, 12.0, free_at=at(0))
    once = apply(DoctorStats(), event)
    assert apply(once, event) == once and once.consultations == 1


def test_samples_are_bounded():
    stats = consultations([10.0 + (i % 7) for i in range(learning.SAMPLE_LIMIT + 50)])
    assert len(stats.consult_minutes) == learning.SAMPLE_LIMIT
    assert stats.consultations == learning.SAMPLE_LIMIT + 50


def test_store_and_memory_agree_and_a_restart_keeps_what_was_learned():
    """The stored document, updated event by event, reads back as the in-memory copy (a restarted
    actor loads it); a repeated event is refused by the store as it is in memory."""

    async def scenario():
        store = Store.connect(None, "learning_test")
        doctor = ObjectId()
        memory = DoctorStats()
        events = [LearningEvent(f"a{i}:{CONSULTATION}", CONSULTATION, 10.0 + i, free_at=at(i)) for i in range(8)]
        events += [LearningEvent("b:call", CALL_IDLE, -3.0), LearningEvent("c:call", CALL_BUSY, 1.5),
                   LearningEvent("d:no_show", NO_SHOW), LearningEvent("e:consultation", CONSULTATION, 999.0)]
        recorded = []
        for event in events + events[:3]:
            recorded.append(await store.record_learning(doctor, *store_update(event)))
            memory = apply(memory, event)
        reloaded = DoctorStats.from_document(await store.find_doctor_stats(doctor))
        return recorded, memory, reloaded

    recorded, memory, reloaded = asyncio.run(scenario())
    assert recorded == [True] * 12 + [False] * 3
    assert reloaded == memory
    assert reloaded.consultations == 8 and reloaded.no_shows == 1 and reloaded.calls == 2
    assert reloaded.usable


# -- stability: with nothing happening, time passing only ever moves an estimate later ---------------
from hypothesis import given, settings, strategies as st  # noqa: E402


@pytest.mark.slow  # 150 examples of 30 estimates each: seconds
@settings(max_examples=150, deadline=None)
@given(
    lengths=st.lists(st.floats(min_value=1, max_value=90), min_size=5, max_size=40),
    offsets=st.lists(st.floats(min_value=-30, max_value=60), max_size=30),
    firsts=st.lists(st.floats(min_value=-30, max_value=60), max_size=30),
    gaps=st.lists(st.floats(min_value=0, max_value=20), max_size=30),
    no_shows=st.integers(min_value=0, max_value=20),
    booked=st.lists(st.integers(min_value=-60, max_value=240), min_size=1, max_size=12),
    started=st.one_of(st.none(), st.integers(min_value=-120, max_value=0)),
    free_since=st.one_of(st.none(), st.integers(min_value=-900, max_value=0)),
    late=st.sampled_from([0, 0, 10]),
)
def test_with_no_event_estimates_only_move_later(lengths, offsets, firsts, gaps, no_shows, booked, started, free_since, late):
    stats = consultations(lengths)
    stats = apply_all(stats, [LearningEvent(f"i{i}:call", CALL_IDLE, m) for i, m in enumerate(offsets)])
    stats = apply_all(stats, [LearningEvent(f"b{i}:call", CALL_BUSY, m) for i, m in enumerate(gaps)])
    stats = apply_all(stats, [LearningEvent(f"f{i}:call", CALL_FIRST, m) for i, m in enumerate(firsts)])
    stats = apply_all(stats, [LearningEvent(f"n{i}:{NO_SHOW}", NO_SHOW) for i in range(no_shows)])
    stats = DoctorStats(**{**stats.__dict__, "free_since": None if free_since is None else at(free_since)})
    dates = sorted(at(m) for m in booked)
    previous = None
    for minute in range(0, 90, 3):
        starts = [e.expected_start_at for e in estimate_queue(
            dates, now=at(minute), avg_minutes=12, late_minutes=late,
            consultation_started_at=None if started is None else at(started), stats=stats)]
        if previous is not None:
            assert all(b >= a for a, b in zip(previous, starts))
        previous = starts
