"""linkpay.quiet_hours: whose zones, which minutes are quiet, and when a held text may go."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from linkpay.quiet_hours import (
    is_quiet,
    next_allowed,
    recipient_zones,
    zone_for_zip,
    zones_for_phone,
)

UTC = dt.UTC
PHOENIX, NEW_YORK = ZoneInfo("America/Phoenix"), ZoneInfo("America/New_York")
START, END = dt.time(21, 0), dt.time(8, 0)
PHOENIX_PHONE = "+16025550143"
NEW_YORK_PHONE = "+12125550143"
CHICAGO_PHONE = "+13125550143"


def at(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def test_a_phoenix_phone_at_22_00_local_is_held_to_08_00_local():
    zones = recipient_zones(PHOENIX_PHONE, None, "America/New_York")
    now = at(2026, 3, 11, 5, 0)  # 22:00 on March 10 in Phoenix
    assert now.astimezone(PHOENIX).hour == 22
    allowed = next_allowed(now, zones, START, END)
    assert allowed.astimezone(PHOENIX) == dt.datetime(2026, 3, 11, 8, 0, tzinfo=PHOENIX)


def test_outside_quiet_hours_a_text_may_go_at_once():
    now = at(2026, 3, 10, 18, 0)  # 11:00 in Phoenix
    assert next_allowed(now, [PHOENIX], START, END) == now


@pytest.mark.parametrize(
    ("phone", "zone"),
    [
        (PHOENIX_PHONE, "America/Phoenix"),
        (NEW_YORK_PHONE, "America/New_York"),
        (CHICAGO_PHONE, "America/Chicago"),
    ],
)
def test_an_area_code_maps_to_its_zone(phone, zone):
    assert zones_for_phone(phone) == (zone,)
    assert recipient_zones(phone, None, "Pacific/Honolulu") == [ZoneInfo(zone)]


def test_a_number_that_cannot_be_read_names_no_zone():
    assert zones_for_phone("not a number") == ()


@pytest.mark.parametrize(
    ("zip_code", "zone"),
    [
        ("85004", "America/Phoenix"),
        ("10001", "America/New_York"),
        ("60601", "America/Chicago"),
        ("94105", "America/Los_Angeles"),
        ("85004-1234", "America/Phoenix"),
        ("8500", None),
        ("", None),
        (None, None),
    ],
)
def test_a_zip_code_maps_to_a_zone(zip_code, zone):
    assert zone_for_zip(zip_code) == zone


def test_with_no_phone_and_no_zip_the_organisations_zone_applies():
    assert recipient_zones(None, None, "America/Phoenix") == [PHOENIX]


def test_a_phone_and_a_zip_in_different_zones_wait_for_both():
    zones = recipient_zones(NEW_YORK_PHONE, "85004", "America/Chicago")
    assert set(zones) == {NEW_YORK, PHOENIX}
    # 21:00 in New York (quiet), 18:00 in Phoenix (not): New York's night decides the
    # start, then at 08:00 in New York it is 05:00 in Phoenix, so Phoenix decides the end.
    now = at(2026, 3, 11, 1, 0)
    allowed = next_allowed(now, zones, START, END)
    assert allowed == at(2026, 3, 11, 15, 0)
    assert allowed.astimezone(PHOENIX).time() == END
    assert allowed.astimezone(NEW_YORK).time() == dt.time(11, 0)


def test_spring_forward_night_in_new_york_ends_at_08_00_daylight_time():
    # 2026-03-08: clocks go from 02:00 EST to 03:00 EDT. 22:00 EST the evening before.
    now = at(2026, 3, 8, 3, 0)
    allowed = next_allowed(now, [NEW_YORK], START, END)
    assert allowed.astimezone(NEW_YORK) == dt.datetime(2026, 3, 8, 8, 0, tzinfo=NEW_YORK)
    assert allowed == at(2026, 3, 8, 12, 0)  # UTC-4 now, one hour earlier in UTC than EST


def test_fall_back_night_in_new_york_ends_at_08_00_standard_time():
    # 2026-11-01: clocks go from 02:00 EDT back to 01:00 EST. 22:00 EDT the evening before.
    now = at(2026, 11, 1, 2, 0)
    allowed = next_allowed(now, [NEW_YORK], START, END)
    assert allowed.astimezone(NEW_YORK) == dt.datetime(2026, 11, 1, 8, 0, tzinfo=NEW_YORK)
    assert allowed == at(2026, 11, 1, 13, 0)


def test_a_quiet_end_inside_the_spring_forward_gap_lands_after_the_gap():
    # 02:30 does not exist on 2026-03-08 in New York. The send waits until after the gap
    # (never inside quiet hours, never at a wall time that did not happen).
    now = at(2026, 3, 8, 5, 0)  # 00:00 EST
    allowed = next_allowed(now, [NEW_YORK], dt.time(22, 0), dt.time(2, 30)).astimezone(NEW_YORK)
    assert allowed.date() == dt.date(2026, 3, 8)
    assert dt.time(3, 0) <= allowed.time() <= dt.time(3, 30)
    assert not is_quiet(allowed.time(), dt.time(22, 0), dt.time(2, 30))


@pytest.mark.parametrize(
    ("local", "quiet"),
    [
        (dt.time(20, 59), False),
        (dt.time(21, 0), True),
        (dt.time(23, 59), True),
        (dt.time(0, 0), True),
        (dt.time(7, 59), True),
        (dt.time(8, 0), False),
        (dt.time(12, 0), False),
    ],
)
def test_is_quiet_across_midnight(local, quiet):
    assert is_quiet(local, START, END) is quiet


def test_is_quiet_within_one_day_and_with_no_window():
    assert is_quiet(dt.time(13, 30), dt.time(13, 0), dt.time(14, 0))
    assert not is_quiet(dt.time(14, 0), dt.time(13, 0), dt.time(14, 0))
    assert not is_quiet(dt.time(3, 0), dt.time(8, 0), dt.time(8, 0))  # start == end: never


def test_a_held_text_waits_across_midnight_to_the_next_morning():
    now = at(2026, 3, 10, 7, 30)  # 00:30 in Phoenix
    allowed = next_allowed(now, [PHOENIX], START, END)
    assert allowed == at(2026, 3, 10, 15, 0)  # 08:00 the same calendar day
