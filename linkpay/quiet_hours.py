"""Quiet hours: no unsolicited message reaches a person between compliance.quiet_start and
quiet_end in their own time zone.

A person's zones come from their phone number (``phonenumbers.timezone``) and their ZIP.
When those name several zones (an area code that spans two, a phone and a ZIP that
disagree) a send must be allowed in every one of them: waiting is cheap, a 6 a.m. text
is not. With no clue at all we use the organisation's zone."""

from __future__ import annotations

import datetime as dt
from bisect import bisect_right
from functools import lru_cache
from zoneinfo import ZoneInfo

from phonenumbers import NumberParseException, parse
from phonenumbers.timezone import time_zones_for_number

from linkpay import postal_codes

# First three digits of a ZIP code -> the zone most of that range lives in (USPS ranges
# grouped by state). Coarse on purpose: it only adds a zone to the phone's, never removes.
_ZIP3_ZONES: list[tuple[int, str]] = [
    (0, "America/New_York"),
    (350, "America/Chicago"),  # AL, TN (west), MS
    (398, "America/New_York"),  # GA (398-399), KY, OH, IN, MI
    (500, "America/Chicago"),  # IA, WI, MN, SD, ND
    (590, "America/Denver"),  # MT
    (600, "America/Chicago"),  # IL, MO, KS, NE, LA, AR, OK, TX
    (798, "America/Denver"),  # El Paso, CO, WY, ID
    (840, "America/Denver"),  # UT
    (850, "America/Phoenix"),  # AZ: no daylight saving
    (870, "America/Denver"),  # NM
    (889, "America/Los_Angeles"),  # NV, CA
    (967, "Pacific/Honolulu"),
    (970, "America/Los_Angeles"),  # OR, WA
    (995, "America/Anchorage"),
]
_ZIP3_STARTS = [start for start, _ in _ZIP3_ZONES]
# A Canadian postal code's first letter names the province or territory. Where one spans
# zones (northern Ontario, Nunavut) the western one is listed: later is the safe side.
_CANADA_ZONES = {
    "A": "America/St_Johns",
    "B": "America/Halifax",
    "C": "America/Halifax",
    "E": "America/Moncton",
    **dict.fromkeys("GHJ", "America/Toronto"),
    **dict.fromkeys("KLMN", "America/Toronto"),
    "P": "America/Winnipeg",
    "R": "America/Winnipeg",
    "S": "America/Regina",
    "T": "America/Edmonton",
    "V": "America/Vancouver",
    "X": "America/Edmonton",
    "Y": "America/Whitehorse",
}


def zone_for_zip(zip_code: str | None) -> str | None:
    """The zone of a US ZIP or a Canadian postal code on file."""
    code = postal_codes.normalize(zip_code)
    if code is None:
        return None
    if postal_codes.is_canadian(code):
        return _CANADA_ZONES.get(code[0])
    return _ZIP3_ZONES[bisect_right(_ZIP3_STARTS, int(code[:3])) - 1][1]


@lru_cache(maxsize=4096)
def zones_for_phone(e164: str) -> tuple[str, ...]:
    try:
        number = parse(e164, None)
    except NumberParseException:
        return ()
    return tuple(z for z in time_zones_for_number(number) if z != "Etc/Unknown")


def recipient_zones(phone: str | None, zip_code: str | None, fallback: str) -> list[ZoneInfo]:
    names = set(zones_for_phone(phone)) if phone else set()
    zip_zone = zone_for_zip(zip_code)
    if zip_zone:
        names.add(zip_zone)
    return [ZoneInfo(n) for n in sorted(names or {fallback})]


def is_quiet(local: dt.time, start: dt.time, end: dt.time) -> bool:
    if start == end:
        return False
    if start < end:
        return start <= local < end
    return local >= start or local < end  # the window crosses midnight


def next_allowed(
    now: dt.datetime, zones: list[ZoneInfo], start: dt.time, end: dt.time
) -> dt.datetime:
    """The first minute at or after ``now`` that is outside quiet hours in every zone."""
    candidate = now
    for _ in range(2 * len(zones) + 2):
        moved = False
        for zone in zones:
            local = candidate.astimezone(zone)
            if is_quiet(local.time(), start, end):
                candidate = _end_of_quiet(local, end).astimezone(dt.UTC)
                moved = True
        if not moved:
            return candidate
    return candidate


def _end_of_quiet(local: dt.datetime, end: dt.time) -> dt.datetime:
    day = local.date() if local.time() < end else local.date() + dt.timedelta(days=1)
    wall = dt.datetime.combine(day, end, tzinfo=local.tzinfo)
    # A wall time inside a spring-forward gap does not exist; round-tripping through UTC
    # lands on the first real minute after it.
    return wall.astimezone(dt.UTC).astimezone(local.tzinfo)


def last_allowed_before(
    when: dt.datetime,
    zones: list[ZoneInfo],
    start: dt.time,
    end: dt.time,
    lead: dt.timedelta = dt.timedelta(0),
) -> dt.datetime:
    """``when`` if it is outside quiet hours in every zone; otherwise the moment ``lead``
    before the quiet hours it fell in began (in every zone), so a reminder goes out the
    evening before instead of after the deadline it reminds of."""
    candidate = when
    for _ in range(2 * len(zones) + 2):
        moved = False
        for zone in zones:
            local = candidate.astimezone(zone)
            if is_quiet(local.time(), start, end):
                candidate = _start_of_quiet(local, start).astimezone(dt.UTC) - lead
                moved = True
        if not moved:
            return candidate
    return candidate


def _start_of_quiet(local: dt.datetime, start: dt.time) -> dt.datetime:
    day = local.date() if local.time() >= start else local.date() - dt.timedelta(days=1)
    wall = dt.datetime.combine(day, start, tzinfo=local.tzinfo)
    return wall.astimezone(dt.UTC).astimezone(local.tzinfo)
