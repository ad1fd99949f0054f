"""The calendar rules: installment dates (month ends, Feb 29), amount splits, charge times
across DST changes, the scheduling window, and reminders kept out of quiet hours."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from linkpay.models import PlanFrequency
from linkpay.quiet_hours import is_quiet
from linkpay.schedule import (
    REMINDER_LEAD,
    cancellable,
    end_of_day,
    installment_dates,
    local_moment,
    reminder_slots,
    scheduling_window,
    split_amount,
)

NEW_YORK = ZoneInfo("America/New_York")
PHOENIX = ZoneInfo("America/Phoenix")
NINE = dt.time(9, 0)
QUIET = (dt.time(21, 0), dt.time(8, 0))
D = dt.date


def test_the_31st_falls_on_each_short_months_last_day_and_comes_back():
    dates = installment_dates(D(2026, 1, 31), 6, PlanFrequency.MONTHLY)
    assert dates == [
        D(2026, 1, 31),
        D(2026, 2, 28),
        D(2026, 3, 31),
        D(2026, 4, 30),
        D(2026, 5, 31),
        D(2026, 6, 30),
    ]


def test_february_29_in_a_leap_year_and_the_29th_in_the_years_around_it():
    assert installment_dates(D(2028, 1, 31), 2, PlanFrequency.MONTHLY)[1] == D(2028, 2, 29)
    from_leap_day = installment_dates(D(2028, 2, 29), 13, PlanFrequency.MONTHLY)
    assert from_leap_day[1] == D(2028, 3, 29)
    assert from_leap_day[12] == D(2029, 2, 28)
    assert installment_dates(D(2027, 12, 29), 3, PlanFrequency.MONTHLY) == [
        D(2027, 12, 29),
        D(2028, 1, 29),
        D(2028, 2, 29),
    ]


def test_weekly_and_every_two_weeks_cross_month_and_year_ends():
    assert installment_dates(D(2026, 12, 24), 3, PlanFrequency.WEEKLY) == [
        D(2026, 12, 24),
        D(2026, 12, 31),
        D(2027, 1, 7),
    ]
    assert installment_dates(D(2028, 2, 15), 2, PlanFrequency.BIWEEKLY) == [
        D(2028, 2, 15),
        D(2028, 2, 29),
    ]


@given(
    first=st.dates(min_value=D(2020, 1, 1), max_value=D(2090, 12, 31)),
    count=st.integers(min_value=1, max_value=36),
)
def test_monthly_dates_keep_the_day_or_the_months_last(first, count):
    dates = installment_dates(first, count, PlanFrequency.MONTHLY)
    assert len(dates) == count
    for n, day in enumerate(dates):
        months = first.month - 1 + n
        assert (day.year, day.month) == (first.year + months // 12, months % 12 + 1)
        next_day = day + dt.timedelta(days=1)
        assert day.day == first.day or (day.day < first.day and next_day.day == 1)


@given(
    total=st.integers(min_value=1, max_value=10**9),
    count=st.integers(min_value=1, max_value=60),
)
def test_a_split_adds_up_to_the_cent_with_the_remainder_last(total, count):
    if total < count:
        with pytest.raises(ValueError):
            split_amount(total, count)
        return
    parts = split_amount(total, count)
    assert sum(parts) == total and len(parts) == count
    assert all(isinstance(p, int) for p in parts)
    assert len(set(parts[:-1])) <= 1
    assert 0 <= parts[-1] - parts[0] < count


def test_a_split_example():
    assert split_amount(10_000, 3) == [3333, 3333, 3334]


def test_charges_stay_at_nine_local_across_both_dst_changes():
    # New York springs forward on 2026-03-08 and falls back on 2026-11-01.
    before, after = (
        local_moment(D(2026, 3, 7), NINE, NEW_YORK),
        local_moment(D(2026, 3, 9), NINE, NEW_YORK),
    )
    assert (before.hour, after.hour) == (14, 13)  # EST is UTC-5, EDT UTC-4
    assert local_moment(D(2026, 11, 2), NINE, NEW_YORK).hour == 14
    weekly = installment_dates(D(2026, 2, 28), 3, PlanFrequency.WEEKLY)
    local = [local_moment(d, NINE, NEW_YORK).astimezone(NEW_YORK) for d in weekly]
    assert {(m.hour, m.minute) for m in local} == {(9, 0)}
    assert local_moment(D(2026, 3, 9), NINE, PHOENIX).hour == 16  # no DST in Arizona


def test_a_wall_time_skipped_or_repeated_by_dst_is_still_one_real_moment():
    skipped = local_moment(D(2026, 3, 8), dt.time(2, 30), NEW_YORK)
    assert skipped.astimezone(NEW_YORK).time() == dt.time(3, 30)
    repeated = local_moment(D(2026, 11, 1), dt.time(1, 30), NEW_YORK)
    assert repeated == dt.datetime(2026, 11, 1, 5, 30, tzinfo=dt.UTC)  # the first pass


def test_a_deadline_day_ends_at_local_midnight():
    assert end_of_day(D(2026, 3, 15), PHOENIX) == dt.datetime(2026, 3, 16, 7, tzinfo=dt.UTC)


def test_the_scheduling_window_is_tomorrow_to_sixty_days_and_cancelling_ends_the_day_before():
    assert scheduling_window(D(2026, 3, 10), 60) == (D(2026, 3, 11), D(2026, 5, 9))
    assert cancellable(D(2026, 3, 12), today=D(2026, 3, 11))
    assert not cancellable(D(2026, 3, 12), today=D(2026, 3, 12))


def slots(offered_at, expires_at, hours=(72, 24, 2), zones=(PHOENIX,)):
    return reminder_slots(
        offered_at=offered_at,
        expires_at=expires_at,
        hours=list(hours),
        zones=list(zones),
        quiet_start=QUIET[0],
        quiet_end=QUIET[1],
    )


def test_reminders_fall_hours_before_expiry_unless_quiet():
    # Expires 2026-03-20 19:00 UTC = 12:00 in Phoenix.
    expires = dt.datetime(2026, 3, 20, 19, tzinfo=dt.UTC)
    result = slots(dt.datetime(2026, 3, 10, 18, tzinfo=dt.UTC), expires)
    assert [(s.index, s.hours_before) for s in result] == [(1, 72), (2, 24), (3, 2)]
    assert [expires - s.due_at for s in result] == [
        dt.timedelta(hours=72),
        dt.timedelta(hours=24),
        dt.timedelta(hours=2),
    ]


def test_a_reminder_in_quiet_hours_goes_before_them_never_after_expiry():
    # Expires 2026-03-20 07:00 UTC = midnight in Phoenix: 2 hours before is 22:00 (quiet).
    expires = dt.datetime(2026, 3, 20, 7, tzinfo=dt.UTC)
    result = slots(dt.datetime(2026, 3, 10, 18, tzinfo=dt.UTC), expires)
    last = result[-1]
    assert last.hours_before == 2
    quiet_start = dt.datetime(2026, 3, 19, 21, tzinfo=PHOENIX)
    assert last.due_at == quiet_start - REMINDER_LEAD  # 20:30 the evening before
    assert last.due_at < expires


def test_reminders_before_the_offer_went_out_are_left_out():
    offered = dt.datetime(2026, 3, 10, 18, tzinfo=dt.UTC)
    result = slots(offered, offered + dt.timedelta(hours=30))
    assert [s.hours_before for s in result] == [24, 2]
    assert [s.index for s in result] == [1, 2]


@given(
    offered_at=st.datetimes(
        min_value=dt.datetime(2026, 1, 1),
        max_value=dt.datetime(2027, 12, 31),
        timezones=st.just(dt.UTC),
    ),
    lifetime_hours=st.integers(min_value=1, max_value=24 * 30),
    hours=st.lists(st.integers(min_value=1, max_value=200), min_size=0, max_size=3),
    zones=st.lists(
        st.sampled_from([PHOENIX, NEW_YORK, ZoneInfo("America/Los_Angeles")]),
        min_size=1,
        max_size=2,
    ),
)
def test_reminders_are_never_quiet_never_late_and_at_most_three(
    offered_at, lifetime_hours, hours, zones
):
    expires = offered_at + dt.timedelta(hours=lifetime_hours)
    result = slots(offered_at, expires, hours, zones)
    assert len(result) <= 3
    assert [s.index for s in result] == list(range(1, len(result) + 1))
    assert [s.due_at for s in result] == sorted({s.due_at for s in result})
    for slot in result:
        assert offered_at < slot.due_at < expires
        assert slot.due_at <= expires - dt.timedelta(hours=slot.hours_before)
        for zone in zones:
            assert not is_quiet(slot.due_at.astimezone(zone).time(), *QUIET)
