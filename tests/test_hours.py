"""The doctor's working hours and slot arithmetic (`core.hours`): validation, the slots of a day, and
the two days a year the clinic's clocks change."""

from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from core.hours import HoursError, normalised, parse_hours, slot_key, slot_starts, why_not_a_slot

PARIS = ZoneInfo("Europe/Paris")
UTC = ZoneInfo("UTC")


def utc(*parts) -> datetime:
    return datetime(*parts, tzinfo=timezone.utc)


def test_hours_are_sorted_and_touching_intervals_are_allowed():
    hours = [{"day": "tue", "start": "14:00", "end": "18:00"}, {"day": "mon", "start": "12:00", "end": "24:00"},
             {"day": "mon", "start": "08:00", "end": "12:00"}]
    assert normalised(hours) == [{"day": "mon", "start": "08:00", "end": "12:00"},
                                 {"day": "mon", "start": "12:00", "end": "24:00"},
                                 {"day": "tue", "start": "14:00", "end": "18:00"}]


@pytest.mark.parametrize("hours, where, words", [
    ([{"day": "mon", "start": "09:00", "end": "12:00"}, {"day": "mon", "start": "11:59", "end": "13:00"}],
     "1", "overlaps mon 09:00-12:00"),
    ([{"day": "fri", "start": "10:00", "end": "18:00"}, {"day": "fri", "start": "11:00", "end": "12:00"}],
     "1", "overlaps"),
    ([{"day": "mon", "start": "12:00", "end": "09:00"}], "0", "start must be before end"),
    ([{"day": "mon", "start": "09:00", "end": "09:00"}], "0", "start must be before end"),
    ([{"day": "monday", "start": "09:00", "end": "10:00"}], "0", "day must be one of"),
    ([{"day": "mon", "start": "9:00", "end": "10:00"}], "0", "start must be a time"),
    ([{"day": "mon", "start": "24:00", "end": "24:00"}], "0", "start must be a time"),
    ([{"day": "mon", "start": "09:00", "end": "25:00"}], "0", "end must be a time"),
    ([{"day": "mon", "start": "09:00"}], "0", "end must be a time"),
    (["mon 9-12"], "0", "day must be one of"),
])
def test_bad_hours_are_refused_with_the_entry_named(hours, where, words):
    with pytest.raises(HoursError) as refused:
        parse_hours(hours)
    assert any(words in message for message in refused.value.messages[where]), refused.value.messages


def test_overlaps_on_different_days_are_not_overlaps():
    assert len(parse_hours([{"day": "mon", "start": "09:00", "end": "12:00"},
                            {"day": "tue", "start": "09:00", "end": "12:00"}])) == 2


def test_slots_of_a_day_fit_inside_each_interval():
    hours = [{"day": "mon", "start": "09:00", "end": "10:00"}, {"day": "mon", "start": "14:00", "end": "14:50"},
             {"day": "tue", "start": "09:00", "end": "17:00"}]
    starts = slot_starts(date(2027, 3, 1), hours, 20, UTC)  # a Monday
    assert starts == [utc(2027, 3, 1, 9), utc(2027, 3, 1, 9, 20), utc(2027, 3, 1, 9, 40),
                      utc(2027, 3, 1, 14), utc(2027, 3, 1, 14, 20)]  # 14:40 would end after 14:50
    assert slot_starts(date(2027, 3, 3), hours, 20, UTC) == []  # no hours on Wednesday


def test_slots_are_wall_clock_times_in_the_clinic_zone():
    hours = [{"day": "wed", "start": "09:00", "end": "09:30"}]
    winter = slot_starts(date(2027, 1, 6), hours, 15, PARIS)
    summer = slot_starts(date(2027, 7, 7), hours, 15, PARIS)
    assert winter == [utc(2027, 1, 6, 8), utc(2027, 1, 6, 8, 15)]   # UTC+1
    assert summer == [utc(2027, 7, 7, 7), utc(2027, 7, 7, 7, 15)]   # UTC+2


def test_spring_forward_skips_the_hour_that_does_not_exist():
    """Paris, Sunday 2027-03-28: clocks jump from 02:00 to 03:00."""
    hours = [{"day": "sun", "start": "01:00", "end": "04:00"}]
    starts = slot_starts(date(2027, 3, 28), hours, 30, PARIS)
    local = [s.astimezone(PARIS).strftime("%H:%M") for s in starts]
    assert local == ["01:00", "01:30", "03:00", "03:30"]
    assert starts == [utc(2027, 3, 28, 0), utc(2027, 3, 28, 0, 30), utc(2027, 3, 28, 1), utc(2027, 3, 28, 1, 30)]


def test_fall_back_takes_the_repeated_hour_once_at_its_first_occurrence():
    """Paris, Sunday 2027-10-31: clocks go back from 03:00 to 02:00, so 02:00-02:59 happens twice."""
    hours = [{"day": "sun", "start": "01:00", "end": "04:00"}]
    starts = slot_starts(date(2027, 10, 31), hours, 30, PARIS)
    assert [s.astimezone(PARIS).strftime("%H:%M") for s in starts] == ["01:00", "01:30", "02:00", "02:30",
                                                                         "03:00", "03:30"]
    assert starts[2] == utc(2027, 10, 31, 0)           # 02:00 summer time (the first), not 01:00Z
    assert starts[4] == utc(2027, 10, 31, 2)           # 03:00 winter time
    assert len(set(starts)) == len(starts) and starts == sorted(starts)


def test_why_not_a_slot_says_what_is_wrong():
    hours = [{"day": "mon", "start": "09:00", "end": "12:00"}]
    day = date(2027, 3, 1)
    assert why_not_a_slot(utc(2027, 3, 1, 9, 15), day, hours, 15, UTC) is None
    assert "Not the start of a slot" in why_not_a_slot(utc(2027, 3, 1, 9, 7), day, hours, 15, UTC)
    assert "Outside the doctor's working hours" in why_not_a_slot(utc(2027, 3, 1, 13), day, hours, 15, UTC)
    assert "does not work that day" in why_not_a_slot(utc(2027, 3, 2, 9), date(2027, 3, 2), hours, 15, UTC)
    # the last slot must end by the interval's end
    assert why_not_a_slot(utc(2027, 3, 1, 11, 50), day, hours, 20, UTC) is not None


def test_a_slot_key_names_the_doctor_and_the_utc_start():
    assert slot_key("abc", utc(2027, 3, 1, 9, 15)) == "abc|2027-03-01T09:15:00Z"
