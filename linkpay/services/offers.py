"""Offers made to an account (a settlement or a payment plan): making one, delivering its
link, finding the offer a link shows, closing it, and expiring the ones left unanswered.

An offer lives on its own link, which expires with it. Its reminders are written as rows
when it is made (``schedule.reminder_slots_for``) and sent by the sweep (``reminders``);
whatever closes the offer (acceptance, withdrawal, expiry, a newer offer) cancels the
reminders not yet sent, and any reminder text still waiting for quiet hours to end.

Settlement terms live here too: "pay $X by DATE and the rest is forgiven". The payment
itself is an ordinary link payment; ``settle`` then closes the offer and writes off what
is left, once."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from linkpay import models, schedule
from linkpay.models import (
    Account,
    Link,
    Message,
    MessageStatus,
    Offer,
    OfferKind,
    OfferReminder,
    OfferStatus,
    Payment,
    PaymentStatus,
    ReminderStatus,
)
from linkpay.runtime import runtime
from linkpay.services import audit, links, messages

REMINDER_KIND = "offer_reminder"
EXPIRED_KIND = "offer_expired"
CHANNELS = ("sms", "email", "both")

# OfferError codes: what a staff command or the page says.
NOTHING_DUE, BAD_AMOUNT, BAD_PERCENT = "nothing_due", "bad_amount", "bad_percent"
BAD_DEADLINE, BAD_CHANNEL, NO_ADDRESS = "bad_deadline", "bad_channel", "no_address"
OFFER_CLOSED, WRONG_PAYMENT = "offer_closed", "wrong_payment"


@dataclass(frozen=True)
class ScheduledInstallment:
    sequence: int
    charge_on: dt.date
    amount_cents: int


class OfferError(Exception):
    """An offer that cannot be made or taken; ``code`` says why, ``detail`` for people."""

    def __init__(self, code: str, detail: str = ""):
        super().__init__(detail or code)
        self.code = code
        self.detail = detail or code


def create_settlement_offer(
    session: Session,
    account: Account,
    *,
    deadline: dt.date,
    amount_cents: int | None = None,
    percent: int | None = None,
    channel: str = "sms",
    actor: str,
) -> Offer:
    """Offer to settle for ``amount_cents`` (or ``percent`` of the balance, rounded up to
    the cent) if paid by the end of ``deadline`` in the organisation's zone."""
    amount_cents = settlement_amount(
        account.balance_cents, amount_cents=amount_cents, percent=percent
    )
    check_deadline(deadline)
    return make_offer(
        session,
        account,
        kind=OfferKind.SETTLEMENT,
        amount_cents=amount_cents,
        percent=percent,
        expires_at=settlement_expiry(deadline),
        channel=channel,
        actor=actor,
    )


def settlement_amount(
    balance_cents: int, *, amount_cents: int | None = None, percent: int | None = None
) -> int:
    """What a settlement of ``balance_cents`` asks for: ``amount_cents``, or ``percent`` of
    the balance rounded up to the cent; OfferError unless exactly one is given and the
    result is more than $0 and less than the balance."""
    if balance_cents <= 0:
        raise OfferError(NOTHING_DUE, "the account owes nothing")
    if (amount_cents is None) == (percent is None):
        raise OfferError(BAD_AMOUNT, "give either an amount or a percent")
    if percent is not None:
        if not 1 <= percent <= 99:
            raise OfferError(BAD_PERCENT, "the percent must be between 1 and 99")
        amount_cents = -(-balance_cents * percent // 100)  # rounded up, in whole cents
    if not 0 < amount_cents < balance_cents:
        raise OfferError(BAD_AMOUNT, "a settlement must be more than $0 and less than the balance")
    return amount_cents


def check_deadline(deadline: dt.date) -> None:
    """A settlement deadline may be today (it lasts until local midnight), never earlier."""
    if deadline < schedule.org_today():
        raise OfferError(BAD_DEADLINE, "the deadline is in the past")


def settlement_expiry(deadline: dt.date) -> dt.datetime:
    """The moment a settlement payable "by ``deadline``" ends: the next local midnight."""
    return schedule.end_of_day(deadline, schedule.org_zone())


def make_offer(
    session: Session,
    account: Account,
    *,
    kind: OfferKind,
    amount_cents: int,
    expires_at: dt.datetime,
    channel: str,
    actor: str,
    **terms,
) -> Offer:
    """Save the offer with its link and reminders, replace any open offer of the same kind
    for the account, and queue the offer's text and/or email."""
    check_channel(account, channel)
    now = runtime().now()
    for older in open_offers(session, account.id, kind):
        close(session, older, OfferStatus.REPLACED, actor=actor)
    link = links.create_link(
        session,
        account,
        channel=channel,
        ttl_hours=max(1, math.ceil((expires_at - now).total_seconds() / 3600)),
    )
    link.expires_at = expires_at  # the link works exactly as long as the offer
    offer = Offer(
        account_id=account.id,
        link_id=link.id,
        kind=kind,
        status=OfferStatus.OFFERED,
        channel=channel,
        amount_cents=amount_cents,
        balance_cents=account.balance_cents,
        expires_at=expires_at,
        created_by=actor,
        created_at=now,
        updated_at=now,
        **terms,
    )
    session.add(offer)
    session.flush()
    for slot in schedule.reminder_slots_for(account, now, expires_at):
        session.add(
            OfferReminder(
                offer_id=offer.id,
                reminder_index=slot.index,
                hours_before=slot.hours_before,
                due_at=slot.due_at,
            )
        )
    audit.record(
        session,
        "offer.created",
        actor=actor,
        account_id=account.id,
        subject=offer,
        kind=kind.value,
        amount_cents=amount_cents,
        expires_at=expires_at.isoformat(),
        channel=channel,
        **{k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in terms.items()},
    )
    notify(session, offer, f"{kind.value}_offer")
    return offer


def check_channel(account: Account, channel: str) -> None:
    check_addresses(channel, phone=account.phone, email=account.email)


def check_addresses(channel: str, *, phone: str | None, email: str | None) -> None:
    """OfferError unless ``channel`` is sms, email or both and there is an address for each
    (the import checks a row's addresses before it writes the account)."""
    if channel not in CHANNELS:
        raise OfferError(BAD_CHANNEL, f"channel must be one of {', '.join(CHANNELS)}")
    missing = [
        each for each in links.channels_for(channel) if not (phone if each == "sms" else email)
    ]
    if missing:
        raise OfferError(NO_ADDRESS, f"the account has no {' or '.join(missing)} address")


def notify(session: Session, offer: Offer, kind: str, *, solicited: bool = False, **extra):
    """Queue ``kind`` about ``offer`` by the channel the offer went out on."""
    account = session.get(Account, offer.account_id)
    context = {**offer_context(offer), **extra}
    return [
        messages.queue_message(
            session,
            account,
            channel,
            kind,
            context=context,
            solicited=solicited,
            link_id=offer.link_id,
        )
        for channel in links.channels_for(offer.channel)
    ]


def offer_context(offer: Offer) -> dict:
    """What offer texts and emails say; ``deadline_date`` is the last day to accept."""
    last_moment = offer.expires_at - dt.timedelta(microseconds=1)
    return {
        "url": links.link_url(offer.link_id),
        "is_plan": offer.kind == OfferKind.PLAN,
        "amount_cents": offer.amount_cents,
        "balance_cents": offer.balance_cents,
        "expires_at": offer.expires_at,
        "deadline_date": schedule.local_day(last_moment, schedule.org_zone()),
        "installment_count": offer.installment_count,
        "frequency": offer.frequency.value if offer.frequency else None,
        "first_date": offer.first_date,
        "installments": proposed_schedule(offer),
    }


def proposed_schedule(offer: Offer) -> list[ScheduledInstallment]:
    """A plan offer's installments (date and amount each), as its page, texts and
    agreement show them; the amounts add up to the offer's total to the cent."""
    if offer.kind != OfferKind.PLAN:
        return []
    dates = schedule.installment_dates(offer.first_date, offer.installment_count, offer.frequency)
    amounts = schedule.split_amount(offer.amount_cents, offer.installment_count)
    return [
        ScheduledInstallment(n, day, cents)
        for n, (day, cents) in enumerate(zip(dates, amounts, strict=True), start=1)
    ]


def open_offers(session: Session, account_id: int, kind: OfferKind | None = None) -> list[Offer]:
    query = select(Offer).where(Offer.account_id == account_id, Offer.status == OfferStatus.OFFERED)
    if kind is not None:
        query = query.where(Offer.kind == kind)
    return list(session.scalars(query.order_by(Offer.id)))


def offer_for_link(session: Session, link: Link) -> Offer | None:
    """The offer a link shows, while it can still be taken; None once it is closed or
    past its time (the sweep may not have marked it expired yet)."""
    offer = session.scalar(select(Offer).where(Offer.link_id == link.id))
    if offer is None or offer.status != OfferStatus.OFFERED:
        return None
    return offer if offer.expires_at > runtime().now() else None


def claim(session: Session, offer: Offer, new: OfferStatus, **values) -> bool:
    """Move an open offer to ``new`` if it is still open in the database (the claim that
    makes acceptance, expiry and withdrawal happen once), then stop its reminders."""
    now = runtime().now()
    unexpired = (Offer.expires_at > now,) if new == OfferStatus.ACCEPTED else ()
    claimed = models.claim(
        session,
        offer,
        new,
        expected=OfferStatus.OFFERED,
        where=unexpired,
        updated_at=now,
        **values,
    )
    if claimed:
        stop_reminders(session, offer)
    return claimed


def close(session: Session, offer: Offer, new: OfferStatus, *, actor: str) -> bool:
    """Withdraw, replace or expire an open offer; False if it was no longer open."""
    if not claim(session, offer, new, closed_at=runtime().now()):
        return False
    audit.record(
        session, f"offer.{new.value}", actor=actor, account_id=offer.account_id, subject=offer
    )
    return True


def stop_reminders(session: Session, offer: Offer) -> None:
    """Cancel the reminders not yet sent, and reminder texts still held for quiet hours."""
    session.execute(
        update(OfferReminder)
        .where(OfferReminder.offer_id == offer.id, OfferReminder.status == ReminderStatus.PENDING)
        .values(status=ReminderStatus.CANCELLED)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(Message)
        .where(
            Message.link_id == offer.link_id,
            Message.kind == REMINDER_KIND,
            Message.status.in_([MessageStatus.SCHEDULED, MessageStatus.QUEUED]),
        )
        .values(status=MessageStatus.CANCELLED, skip_reason=f"offer_{offer.status.value}")
        .execution_options(synchronize_session=False)
    )


def expire_due(session: Session, limit: int = 1000) -> int:
    """Sweep task: mark offers past their time expired, each with one expiry notice (the
    claim makes a second sweep find nothing to do)."""
    now = runtime().now()
    due = session.scalars(
        select(Offer)
        .where(Offer.status == OfferStatus.OFFERED, Offer.expires_at <= now)
        .order_by(Offer.expires_at)
        .limit(limit)
    ).all()
    expired = 0
    for offer in due:
        if close(session, offer, OfferStatus.EXPIRED, actor="system"):
            notify(session, offer, EXPIRED_KIND)
            expired += 1
    return expired


def settle(session: Session, offer: Offer, payment: Payment, *, actor: str = "customer") -> bool:
    """The settlement amount was paid: accept the offer and forgive what is left of the
    balance. False (and nothing changed) if the offer was already closed."""
    if offer.kind != OfferKind.SETTLEMENT:
        raise OfferError(WRONG_PAYMENT, "not a settlement offer")
    if (
        payment.account_id != offer.account_id
        or payment.amount_cents != offer.amount_cents
        or payment.status not in (PaymentStatus.PAID, PaymentStatus.PENDING)
    ):
        raise OfferError(WRONG_PAYMENT, "the payment does not meet the offer")
    if not claim(session, offer, OfferStatus.ACCEPTED, accepted_at=runtime().now()):
        return False
    account = session.get(Account, offer.account_id)
    session.refresh(account)
    forgiven = max(account.balance_cents, 0)
    if forgiven:
        session.execute(
            update(Account)
            .where(Account.id == account.id)
            .values(balance_cents=Account.balance_cents - forgiven, updated_at=runtime().now())
            .execution_options(synchronize_session=False)
        )
        session.refresh(account)
    audit.record(
        session,
        "offer.settled",
        actor=actor,
        account_id=account.id,
        subject=offer,
        payment_id=payment.id,
        paid_cents=payment.amount_cents,
        forgiven_cents=forgiven,
    )
    return True


# -- what the customer's link shows ------------------------------------------------------


def settlement_for(session: Session, link: Link) -> Offer | None:
    """The settlement offer a link of the account opens on: the link's own offer, else
    the account's open one, while it can still be taken."""
    own = offer_for_link(session, link)
    if own is not None:
        return own if own.kind == OfferKind.SETTLEMENT else None
    now = runtime().now()
    for offer in open_offers(session, link.account_id, OfferKind.SETTLEMENT):
        if offer.expires_at > now:
            return offer
    return None


def open_plan_offer(session: Session, account_id: int) -> Offer | None:
    """The account's plan offer still open, for a settlement page to point to."""
    now = runtime().now()
    for offer in open_offers(session, account_id, OfferKind.PLAN):
        if offer.expires_at > now:
            return offer
    return None


def settle_with(session: Session, payment: Payment) -> Offer | None:
    """A link payment of exactly an open settlement offer's amount, made before its
    deadline, settles it (``settle``); the offer settled, or None."""
    if payment.status not in (PaymentStatus.PAID, PaymentStatus.PENDING):
        return None
    now = runtime().now()
    for offer in open_offers(session, payment.account_id, OfferKind.SETTLEMENT):
        if offer.expires_at > now and offer.amount_cents == payment.amount_cents:
            return offer if settle(session, offer, payment) else None
    return None


def settled_by(session: Session, payment: Payment) -> Offer | None:
    """The settlement offer ``payment`` settled, for its receipt."""
    return session.scalar(
        select(Offer)
        .where(
            Offer.account_id == payment.account_id,
            Offer.kind == OfferKind.SETTLEMENT,
            Offer.status == OfferStatus.ACCEPTED,
            Offer.amount_cents == payment.amount_cents,
            Offer.accepted_at >= payment.created_at,
        )
        .order_by(Offer.id)
        .limit(1)
    )


def offer_on_link(session: Session, link: Link) -> Offer | None:
    """The offer a link was made for, whatever its state (an expired offer's page)."""
    return session.scalar(select(Offer).where(Offer.link_id == link.id))
