"""Calendar rules for plans, scheduled payments and offer reminders, in one place.

Days are the organisation's (``app.timezone``): an installment "on March 31" is charged at
``scheduled.charge_time`` on March 31 there, whatever the server's zone, and the UTC moment
is worked out per day so a DST change moves it with the wall clock. Amounts are integer
cents; a split always adds up to the total.

The pure functions take the zone and times as arguments (and are property-tested); the
``*_for`` helpers read them from the running app's configuration."""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from linkpay.config import parse_hhmm
from linkpay.models import Account, PlanFrequency
from linkpay.quiet_hours import last_allowed_before, recipient_zones
from linkpay.runtime import runtime

# A reminder moved out of quiet hours goes this long before they start, so the sweep
# (every 15 s) and the send job reach the customer before the quiet hours hold it back.
REMINDER_LEAD = dt.timedelta(minutes=30)


@dataclass(frozen=True)
class ReminderSlot:
    index: int  # 1, 2, 3 in the order they fall
    hours_before: int
    due_at: dt.datetime


def installment_dates(first: dt.date, count: int, frequency: PlanFrequency) -> list[dt.date]:
    """``count`` dates from ``first``. Monthly dates keep ``first``'s day of the month,
    falling on the month's last day when it is shorter (Jan 31 -> Feb 28 or 29 -> Mar 31)."""
    if count < 1:
        raise ValueError("a plan has at least one installment")
    if frequency == PlanFrequency.MONTHLY:
        return [_add_months(first, n) for n in range(count)]
    step = dt.timedelta(days=7 if frequency == PlanFrequency.WEEKLY else 14)
    return [first + n * step for n in range(count)]


def _add_months(day: dt.date, months: int) -> dt.date:
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def split_amount(total_cents: int, count: int) -> list[int]:
    """Equal installments in whole cents; what does not divide evenly goes on the last."""
    if count < 1:
        raise ValueError("a plan has at least one installment")
    if total_cents < count:
        raise ValueError("the total is less than one cent per installment")
    base = total_cents // count
    return [base] * (count - 1) + [total_cents - base * (count - 1)]


def local_moment(day: dt.date, at: dt.time, zone: ZoneInfo) -> dt.datetime:
    """``at`` on ``day`` in ``zone``, in UTC. A wall time skipped by a spring-forward
    change becomes the first real minute after it; a repeated one is its first pass."""
    wall = dt.datetime.combine(day, at, tzinfo=zone)
    return wall.astimezone(dt.UTC).astimezone(zone).astimezone(dt.UTC)


def end_of_day(day: dt.date, zone: ZoneInfo) -> dt.datetime:
    """The first moment after ``day`` in ``zone`` (a deadline "by March 15" ends here)."""
    return local_moment(day + dt.timedelta(days=1), dt.time(0, 0), zone)


def local_day(moment: dt.datetime, zone: ZoneInfo) -> dt.date:
    return moment.astimezone(zone).date()


def scheduling_window(today: dt.date, max_days_ahead: int) -> tuple[dt.date, dt.date]:
    """The first and last days a payment may be scheduled for: tomorrow (today is "pay
    now") up to ``max_days_ahead`` days from today."""
    return today + dt.timedelta(days=1), today + dt.timedelta(days=max_days_ahead)


def cancellable(charge_on: dt.date, today: dt.date) -> bool:
    """A scheduled payment may be cancelled until the end of the day before its day."""
    return today < charge_on


def reminder_slots(
    *,
    offered_at: dt.datetime,
    expires_at: dt.datetime,
    hours: list[int],
    zones: list[ZoneInfo],
    quiet_start: dt.time,
    quiet_end: dt.time,
) -> list[ReminderSlot]:
    """When an offer's reminders go: ``hours`` before it expires, moved before any quiet
    hours they would fall in. One that would come before the offer itself went out (a
    short-lived offer) is left out, as is one that lands where another already is."""
    slots: list[tuple[dt.datetime, int]] = []
    for hours_before in sorted(set(hours), reverse=True):
        wanted = expires_at - dt.timedelta(hours=hours_before)
        due = last_allowed_before(wanted, zones, quiet_start, quiet_end, REMINDER_LEAD)
        if due <= offered_at or due >= expires_at or any(due == s for s, _ in slots):
            continue
        slots.append((due, hours_before))
    slots.sort()
    return [ReminderSlot(i, h, due) for i, (due, h) in enumerate(slots, start=1)]


# -- the same rules with the running app's configuration ---------------------------------


def org_zone() -> ZoneInfo:
    return ZoneInfo(runtime().config["app.timezone"])


def org_today() -> dt.date:
    return local_day(runtime().now(), org_zone())


def charge_time() -> dt.time:
    return dt.time(*parse_hhmm(runtime().config["scheduled.charge_time"], "charge_time"))


def charge_moment(day: dt.date) -> dt.datetime:
    """When a charge due on the organisation's ``day`` is made, in UTC."""
    return local_moment(day, charge_time(), org_zone())


def scheduling_window_for_today() -> tuple[dt.date, dt.date]:
    return scheduling_window(org_today(), runtime().config["scheduled.max_days_ahead"])


def reminder_slots_for(
    account: Account, offered_at: dt.datetime, expires_at: dt.datetime
) -> list[ReminderSlot]:
    config = runtime().config
    return reminder_slots(
        offered_at=offered_at,
        expires_at=expires_at,
        hours=config["plans.reminder_hours"],
        zones=recipient_zones(account.phone, account.zip, config["app.timezone"]),
        quiet_start=dt.time(*parse_hhmm(config["compliance.quiet_start"], "quiet_start")),
        quiet_end=dt.time(*parse_hhmm(config["compliance.quiet_end"], "quiet_end")),
    )
