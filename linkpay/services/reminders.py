"""Offer reminders: the sweep task that sends the ones now due, each once.

A reminder row moves ``pending -> sent`` by a conditional UPDATE before its messages are
queued, so two sweeps at once send it once. A reminder found late (the scheduler was
down) still goes if it can reach the customer before the offer expires; one that could
only arrive after (the offer has lapsed, or quiet hours would hold it past the deadline)
is dropped. A reminder of an offer that is no longer open is cancelled."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from linkpay.models import (
    Account,
    Offer,
    OfferReminder,
    OfferStatus,
    ReminderStatus,
    claim,
)
from linkpay.runtime import runtime
from linkpay.services import messages, offers


def send_due(session: Session, limit: int = 1000) -> int:
    """Sweep task: send every due reminder of an open offer; returns how many were sent."""
    now = runtime().now()
    due = session.execute(
        select(OfferReminder, Offer)
        .join(Offer, Offer.id == OfferReminder.offer_id)
        .where(OfferReminder.status == ReminderStatus.PENDING, OfferReminder.due_at <= now)
        .order_by(OfferReminder.due_at)
        .limit(limit)
    ).all()
    sent = 0
    for reminder, offer in due:
        if offer.status != OfferStatus.OFFERED:
            _move(session, reminder, ReminderStatus.CANCELLED)
            continue
        account = session.get(Account, offer.account_id)
        if messages.send_time(account, solicited=False) >= offer.expires_at:
            _move(session, reminder, ReminderStatus.DROPPED)
            continue
        if _move(session, reminder, ReminderStatus.SENT, sent_at=now):
            offers.notify(session, offer, offers.REMINDER_KIND)
            sent += 1
    return sent


def _move(session: Session, reminder: OfferReminder, new: ReminderStatus, **values) -> bool:
    return claim(session, reminder, new, expected=ReminderStatus.PENDING, **values)
