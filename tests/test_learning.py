"""What the server learns about a doctor (actors/learning.py) and how the estimator uses it (actors/eta.py)."""

import asyncio
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from bson import ObjectId

from actors import learning
from actors.eta import estimate_queue
from actors.learning import (CALL_BUSY, CALL_FIRST, CALL_IDLE, CALL_IDLE_BOUND, CONSULTATION, NO_SHOW, DoctorStats,
                             Empirical, LearningEvent, apply, apply_all, call_kind, events_for, spread_bounds,
                             store_update)
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


def test_the_plays_keep_the_long_cases_the_robust_fit_leaves_out():
    """Lengths are drawn from the doctor's own (blended with the log-normal as if it were
    LOG_NORMAL_WEIGHT of them): a history with a few very long cases plays them, in about their
    proportion, where the log-normal fitted by median and MAD barely moves; drawn in order."""
    from actors.eta import LOG_NORMAL_WEIGHT, _log_lengths
    usual = [12 + (i % 7) - 3 for i in range(95)]
    plain_history = consultations(usual + [12] * 5).model(12)
    long_history = consultations(usual + [40] * 5).model(12)
    assert abs(long_history.log_mu - plain_history.log_mu) < 0.05  # the fit ignores them
    levels = (np.arange(1000) + 0.5) / 1000
    plain_lengths, long_lengths = (np.exp(_log_lengths(m, levels)) for m in (plain_history, long_history))
    assert np.all(np.diff(long_lengths) >= 0)
    share_long = np.mean(long_lengths > 30)
    assert 0.6 * 0.05 * 100 / (100 + LOG_NORMAL_WEIGHT) < share_long < 0.06
    assert np.mean(plain_lengths > 30) < 0.005
    assert long_lengths.mean() > plain_lengths.mean() + 0.8  # 5 % of cases 28 minutes longer: about +1.4
    # one length seen is no distribution: the log-normal alone
    one = consultations([12]).model(12)
    assert np.allclose(_log_lengths(one, levels), one.log_mu + one.log_sigma * learning.normal_quantile(levels))


def test_no_shows_shorten_what_a_patient_ahead_costs():
    base = consultations([15] * 30)
    with_no_shows = apply_all(base, [LearningEvent(f"n{i}:{NO_SHOW}", NO_SHOW) for i in range(20)])
    assert with_no_shows.no_shows == 20
    assert with_no_shows.model(12).no_show_rate > base.model(12).no_show_rate

    def last(stats):
        return estimate_queue([at(0)] * 6, now=NOW, avg_minutes=12, late_minutes=0, consultation_started_at=at(-3),
                              stats=stats)[-1]

    assert last(with_no_shows).expected_start_at < last(base).expected_start_at
    assert last(with_no_shows).earliest_start_at < last(base).earliest_start_at


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


def test_conditional_quantiles_are_smooth_and_above_their_floor():
    samples = Empirical(sorted([-5, -3, -2, 0, 0, 0, 4, 15, 20, 25]))
    levels = np.array([0.05, 0.5, 0.9])
    rows = [samples.above(f / 4, levels) for f in range(-40, 120)]
    for column in range(3):
        values = [row[column] for row in rows]
        assert values == sorted(values)
        assert all(v >= f / 4 for v, f in zip(values, range(-40, 120)))
        assert max(b - a for a, b in zip(values, values[1:])) < 3  # no jumps from sample to sample
    assert list(samples.above(30, levels)) == [30, 30, 30]
    assert samples.cdf(-100) == 0 and samples.cdf(100) == 1


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


def test_an_idle_call_made_as_soon_as_the_doctor_was_free_is_learned_as_a_bound():
    """Free 3 minutes before the booked time and calling at once: the doctor might have called earlier
    had they been free earlier, so -3 is "at most -3"; waiting idle, then calling, is a measure."""
    [bound] = events_for(DoctorStats(free_since=at(-3)), appointment("in_consultation", startedAt=at(-2.7)))
    assert (bound.kind, bound.minutes) == (CALL_IDLE_BOUND, -2.7)
    [measured] = events_for(DoctorStats(free_since=at(-3)), appointment("in_consultation", startedAt=at(-1)))
    assert (measured.kind, measured.minutes) == (CALL_IDLE, -1.0)


def test_bounds_share_their_weight_among_the_values_below_them():
    """Efron's redistribution (Kaplan-Meier for values known only from above), worked by hand."""
    # 0 0 0 measured; "at most -2" shares 1 among -3, -10, -10 (1/3 each); "at most -3" then shares
    # its 4/3 between the two -10s (2/3 each): each -10 weighs 1 + 1/3 + 2/3 = 2.
    assert spread_bounds([-10.0, -10.0, 0.0, 0.0, 0.0], [-3.0, -2.0]) == ((-10.0, -10.0, 0.0, 0.0, 0.0),
                                                                         (2.0, 2.0, 1.0, 1.0, 1.0))
    assert spread_bounds([0.0], [-3.0]) == ((-3.0, 0.0), (1.0, 1.0))  # nothing below: it stays
    assert spread_bounds([2.0, 1.0], []) == ((1.0, 2.0), ())
    weighted = Empirical((-10.0, 0.0), (3.0, 1.0))
    assert weighted.cdf(-10.0) == pytest.approx(3 / 8) and weighted.cdf(0.0) == pytest.approx(7 / 8)
    assert Empirical((-10.0, 0.0), (1.0, 1.0)).cdf(-10.0) == Empirical((-10.0, 0.0)).cdf(-10.0) == 0.25


def test_a_doctor_who_calls_early_whenever_they_can_is_learned_as_early():
    """Ten minutes early whenever possible, but most days free only 3 minutes before the booked time
    and calling at once: read as measures, those calls would teach "3 minutes early" (expected at
    about 10:27 for a 10:30 booking); as bounds, the habit is 10 minutes early."""
    stats = consultations([12] * 20)
    stats = apply_all(stats, [LearningEvent(f"i{i}:call", CALL_IDLE, -10.0) for i in range(6)])
    stats = apply_all(stats, [LearningEvent(f"j{i}:call", CALL_IDLE_BOUND, -3.0) for i in range(10)])
    stats = DoctorStats(**{**stats.__dict__, "free_since": at(-20)})
    [head] = estimate_queue([at(30)], now=NOW, avg_minutes=12, late_minutes=0, consultation_started_at=None,
                            stats=stats)
    assert head.expected_start_at <= at(22)


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
                   LearningEvent("d:no_show", NO_SHOW), LearningEvent("e:consultation", CONSULTATION, 999.0),
                   LearningEvent("f:call", CALL_IDLE_BOUND, -2.5)]
        recorded = []
        for event in events + events[:3]:
            recorded.append(await store.record_learning(doctor, *store_update(event)))
            memory = apply(memory, event)
        reloaded = DoctorStats.from_document(await store.find_doctor_stats(doctor))
        return recorded, memory, reloaded

    recorded, memory, reloaded = asyncio.run(scenario())
    assert recorded == [True] * 13 + [False] * 3
    assert reloaded == memory
    assert reloaded.consultations == 8 and reloaded.no_shows == 1 and reloaded.calls == 3
    assert reloaded.idle_call_offsets == (-3.0,) and reloaded.idle_call_bounds == (-2.5,)
    assert reloaded.usable


# -- the range -------------------------------------------------------------------------------------
def habitual(no_shows: int = 4) -> DoctorStats:
    stats = consultations([8, 10, 11, 12, 12, 13, 14, 15, 18, 25] * 3)
    stats = apply_all(stats, [LearningEvent(f"b{i}:call", CALL_BUSY, m) for i, m in enumerate([0.2, 0.5, 1, 1, 2] * 4)])
    stats = apply_all(stats, [LearningEvent(f"i{i}:call", CALL_IDLE, m) for i, m in enumerate([-5, 0, 0, -2] * 4)])
    stats = apply_all(stats, [LearningEvent(f"n{i}:{NO_SHOW}", NO_SHOW, m) for i, m in enumerate([2, 3, 4][:no_shows] * 3)])
    return stats


def test_declared_lateness_is_read_once_not_from_now_for_ever():
    """The flag still on while a consultation runs (nobody switched it off): the plain rule adds it to
    the end of the consultation, the learned estimate reads the overrun from the clock instead."""
    stats = habitual()
    learned = estimate_queue([at(-30), at(-20)], now=NOW, avg_minutes=12, late_minutes=30,
                             consultation_started_at=at(-2), stats=stats)
    assert learned[0].expected_start_at < at(20)
    # Before anyone was called, it is the start being late: the head is called about 30 minutes after
    # its booked time, and as time passes that does not slide with the clock.
    before = [estimate_queue([at(10), at(22)], now=at(m), avg_minutes=12, late_minutes=30, consultation_started_at=None,
                             stats=DoctorStats(**{**stats.__dict__, "free_since": at(-20 * 60)}))[0]
              for m in (0, 10, 20)]
    assert all(at(38) <= e.expected_start_at <= at(45) for e in before)
    assert before[0].expected_start_at == before[-1].expected_start_at


def test_a_due_head_while_the_doctor_is_idle_looks_more_and_more_like_a_no_show():
    """The doctor has just finished and the head (due 20 minutes ago) is not called: this doctor
    calls within a couple of minutes and waits about 3 for one who does not come, so 8 minutes on
    those behind expect the head to be a no-show and to be called sooner."""
    stats = DoctorStats(**{**habitual().__dict__, "free_since": at(0)})
    booked = [at(-20), at(-10), at(0)]
    assert call_kind(stats.free_since, booked[0]) == CALL_BUSY

    def second(minute):
        return estimate_queue(booked, now=at(minute), avg_minutes=12, late_minutes=0, consultation_started_at=None,
                              stats=stats)[1]

    assert second(8).expected_start_at < second(0).expected_start_at - timedelta(minutes=4)
    assert second(8).latest_start_at < second(0).latest_start_at


def queue_cases():
    return dict(
        lengths=st.lists(st.floats(min_value=1, max_value=90), min_size=5, max_size=40),
        offsets=st.lists(st.floats(min_value=-30, max_value=60), max_size=30),
        firsts=st.lists(st.floats(min_value=-30, max_value=60), max_size=30),
        gaps=st.lists(st.floats(min_value=0, max_value=20), max_size=30),
        no_shows=st.lists(st.one_of(st.none(), st.floats(min_value=0, max_value=30)), max_size=20),
        booked=st.lists(st.integers(min_value=-60, max_value=240), min_size=1, max_size=12),
        started=st.one_of(st.none(), st.integers(min_value=-120, max_value=0)),
        free_since=st.one_of(st.none(), st.integers(min_value=-900, max_value=0)),
        late=st.sampled_from([0, 0, 10]),
        away=st.one_of(st.none(), st.integers(min_value=-10, max_value=60)),
    )


def learned_stats(lengths, offsets, firsts, gaps, no_shows, free_since) -> DoctorStats:
    stats = consultations(lengths)
    stats = apply_all(stats, [LearningEvent(f"i{i}:call", CALL_IDLE, m) for i, m in enumerate(offsets)])
    stats = apply_all(stats, [LearningEvent(f"b{i}:call", CALL_BUSY, m) for i, m in enumerate(gaps)])
    stats = apply_all(stats, [LearningEvent(f"f{i}:call", CALL_FIRST, m) for i, m in enumerate(firsts)])
    stats = apply_all(stats, [LearningEvent(f"n{i}:{NO_SHOW}", NO_SHOW, m) for i, m in enumerate(no_shows)])
    return DoctorStats(**{**stats.__dict__, "free_since": None if free_since is None else at(free_since)})


from hypothesis import given, settings, strategies as st  # noqa: E402


@pytest.mark.slow  # 150 examples of several queues each: seconds
@settings(max_examples=150, deadline=None)
@given(**queue_cases(), learn=st.booleans())
def test_every_estimate_is_a_range_in_order(lengths, offsets, firsts, gaps, no_shows, booked, started, free_since, late,
                                            away, learn):
    """earliest <= expected <= latest on every estimate, learned or not, and nobody is expected
    before now or before the end of a break."""
    stats = learned_stats(lengths, offsets, firsts, gaps, no_shows, free_since)
    dates = sorted(at(m) for m in booked)
    for minute in (0, 7, 45):
        now = at(minute)
        floor = max(now, at(away)) if away is not None else now
        for e in estimate_queue(dates, now=now, avg_minutes=12, late_minutes=late, stats=stats, learning=learn,
                                consultation_started_at=None if started is None else at(started),
                                away_until=None if away is None else at(away)):
            assert floor - timedelta(seconds=1) < e.earliest_start_at <= e.expected_start_at <= e.latest_start_at


def test_a_long_queue_is_a_range_in_order_past_the_played_positions():
    stats = habitual()
    dates = [at(-30 + 2 * i) for i in range(300)]
    estimates = estimate_queue(dates, now=NOW, avg_minutes=12, late_minutes=0, consultation_started_at=at(-4),
                               stats=stats)
    assert all(e.earliest_start_at <= e.expected_start_at <= e.latest_start_at for e in estimates)
    starts = [e.expected_start_at for e in estimates]
    assert starts == sorted(starts)
    widths = [(e.latest_start_at - e.earliest_start_at).total_seconds() for e in estimates]
    assert widths[299] > widths[100] > widths[10]  # the further back, the less certain


# -- stability: with nothing happening, time passing only ever moves an estimate later ---------------
def head_overdue_and_doctor_idle(stats: DoctorStats, now: datetime, head: datetime, late: int, started) -> bool:
    """The one case where time passing is news: the doctor is free, the head could have been called
    and is not, so it grows more likely a no-show and those behind it may move earlier."""
    if started is not None or stats.free_since is None or stats.free_since > now:
        return False
    kind = call_kind(stats.free_since, head)
    callable_at = (stats.free_since if kind == CALL_BUSY else head) + timedelta(minutes=late)
    return kind != CALL_FIRST and now > callable_at


@pytest.mark.slow  # 150 examples of 30 estimates each: seconds
@settings(max_examples=150, deadline=None)
@given(**queue_cases())
def test_with_no_event_estimates_only_move_later(lengths, offsets, firsts, gaps, no_shows, booked, started, free_since,
                                                 late, away):
    """All three times, for every position, learned or not; except those behind a head that is overdue
    while the doctor is idle (the head's own times still only move later)."""
    stats = learned_stats(lengths, offsets, firsts, gaps, no_shows, free_since)
    dates = sorted(at(m) for m in booked)
    for learn in (True, False):
        previous = None
        for minute in range(0, 90, 3):
            now = at(minute)
            times = [(e.earliest_start_at, e.expected_start_at, e.latest_start_at) for e in estimate_queue(
                dates, now=now, avg_minutes=12, late_minutes=late, stats=stats, learning=learn,
                consultation_started_at=None if started is None else at(started),
                away_until=None if away is None else at(away))]
            if previous is not None:
                exempt = learn and head_overdue_and_doctor_idle(stats, now, dates[0], late, started)
                for position, (before, after) in enumerate(zip(previous, times)):
                    if position and exempt:
                        continue
                    assert all(b >= a for a, b in zip(before, after)), (position, minute, before, after)
            previous = times


def test_todays_declared_lateness_does_not_move_tomorrows_queue():
    stats = DoctorStats(**{**habitual().__dict__, "free_since": at(-20)})
    tomorrow = [at(23 * 60), at(23 * 60 + 12)]
    on_time, late = (estimate_queue(tomorrow, now=NOW, avg_minutes=12, late_minutes=minutes, consultation_started_at=None,
                                    stats=stats) for minutes in (0, 30))
    assert on_time == late
