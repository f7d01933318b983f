"""Which published estimate the server scores itself against (actors/eta_score.py)."""

from datetime import datetime, timedelta, timezone

from actors.eta_score import PublishedStarts

T0 = datetime(2026, 11, 23, 9, tzinfo=timezone.utc)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_the_last_value_published_at_least_30_minutes_before_the_start_is_scored():
    published = PublishedStarts()
    published.record("a", at(0), at(50))
    published.record("a", at(10), at(55))  # the last one at least 30 minutes before a start at 45
    published.record("a", at(20), at(40))  # too close to the start to count
    assert published.error_minutes("a", at(45)) == 10.0
    assert published.error_minutes("a", at(45)) is None  # forgotten once scored


def test_nothing_published_early_enough_scores_nothing():
    published = PublishedStarts()
    published.record("a", at(0), at(10))
    assert published.error_minutes("a", at(20)) is None
    assert published.error_minutes("never", at(20)) is None


def test_history_stays_bounded_however_often_an_estimate_moves():
    published = PublishedStarts()
    for minute in range(0, 600):
        published.record("a", at(minute), at(minute + 60))
    assert len(published) <= 32
    assert published.error_minutes("a", at(650)) == 9.0  # the last one, at minute 599, said 659


def test_forget_drops_an_appointment_that_left_the_queue():
    published = PublishedStarts()
    published.record("a", at(0), at(60))
    published.forget("a")
    assert published.error_minutes("a", at(60)) is None
