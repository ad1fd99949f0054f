"""Payments a customer schedules for a later day: making one, cancelling it (until the
day before), and charging it on its day, once.

The charge follows ``installments``: the sweep claims due rows (``pending -> processing``,
a conditional UPDATE) and queues ``jobs.plans.charge_scheduled_payment``; the job writes
the payment (``payments.scheduled_payment_id`` is unique) before the gateway call. A paid
one sends a receipt; a declined one sends a notice with a fresh link to pay another way.
A charge whose gateway call got no answer is finished by this job, queued again by
``requeue_stalled`` (not by the payments sweep), with the same idempotency key."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from linkpay import schedule
from linkpay.db import defer_job
from linkpay.models import (
    Account,
    Channel,
    Checkout,
    Link,
    LinkStatus,
    Payment,
    PaymentStatus,
    SavedMethod,
    ScheduledPayment,
    ScheduledPaymentStatus,
    claim,
)
from linkpay.queue import DEFAULT, JobSpec
from linkpay.runtime import runtime
from linkpay.services import audit, links, messages, payments, saved_methods
from linkpay.services.payments import LINK_CLOSED, NO_METHOD, PaymentError, check_amount

STALLED_AFTER = dt.timedelta(minutes=10)
# PaymentError codes beyond the payment page's own.
BAD_DATE, BAD_METHOD, TOO_LATE = "bad_date", "bad_method", "too_late_to_cancel"


def schedule_payment(
    session: Session,
    link: Link,
    *,
    amount_cents: int,
    charge_on: dt.date,
    method: SavedMethod,
    checkout_id: int | None = None,
    ip: str | None = None,
    user_agent: str | None = None,
) -> ScheduledPayment:
    """Schedule ``amount_cents`` for ``charge_on`` (tomorrow up to scheduled.max_days_ahead
    days ahead, the organisation's days) on a saved method of the link's account."""
    account = session.get(Account, link.account_id)
    first, last = schedule.scheduling_window_for_today()
    if not first <= charge_on <= last:
        raise PaymentError(BAD_DATE)
    if method.account_id != account.id or method.removed_at is not None:
        raise PaymentError(BAD_METHOD)
    check_amount(account, amount_cents)
    now = runtime().now()
    row = ScheduledPayment(
        account_id=account.id,
        link_id=link.id,
        checkout_id=checkout_id,
        saved_method_id=method.id,
        amount_cents=amount_cents,
        charge_on=charge_on,
        due_at=schedule.charge_moment(charge_on),
        status=ScheduledPaymentStatus.PENDING,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        "scheduled_payment.created",
        actor="customer",
        account_id=account.id,
        subject=row,
        ip=ip,
        user_agent=user_agent,
        amount_cents=amount_cents,
        charge_on=charge_on.isoformat(),
        method_label=method.label,
        last4=method.last4,
    )
    return row


def cancel(
    session: Session,
    row: ScheduledPayment,
    *,
    actor: str = "customer",
    ip: str | None = None,
    user_agent: str | None = None,
) -> bool:
    """Cancel a scheduled payment; allowed until the end of the day before its day.
    False if it was no longer pending (already cancelled or being charged)."""
    if not schedule.cancellable(row.charge_on, schedule.org_today()):
        raise PaymentError(TOO_LATE)
    if not claim(
        session,
        row,
        ScheduledPaymentStatus.CANCELLED,
        expected=ScheduledPaymentStatus.PENDING,
        cancel_reason="cancelled",
        updated_at=runtime().now(),
    ):
        return False
    audit.record(
        session,
        "scheduled_payment.cancelled",
        actor=actor,
        account_id=row.account_id,
        subject=row,
        ip=ip,
        user_agent=user_agent,
    )
    return True


def for_link(session: Session, link: Link) -> list[ScheduledPayment]:
    """The scheduled payments made through ``link``, soonest first, for its receipt page."""
    return list(
        session.scalars(
            select(ScheduledPayment)
            .where(ScheduledPayment.link_id == link.id)
            .order_by(ScheduledPayment.charge_on, ScheduledPayment.id)
        )
    )


def claim_due(session: Session, limit: int = 1000) -> int:
    """Sweep task: claim the scheduled payments whose time has come and queue a charge
    job for each (conditional UPDATE: two sweeps at once claim each row once)."""
    now = runtime().now()
    due = session.scalars(
        select(ScheduledPayment.id)
        .where(
            ScheduledPayment.status == ScheduledPaymentStatus.PENDING,
            ScheduledPayment.due_at <= now,
        )
        .order_by(ScheduledPayment.due_at)
        .limit(limit)
    ).all()
    claimed = 0
    for row_id in due:
        took = session.execute(
            update(ScheduledPayment)
            .where(
                ScheduledPayment.id == row_id,
                ScheduledPayment.status == ScheduledPaymentStatus.PENDING,
            )
            .values(status=ScheduledPaymentStatus.PROCESSING, updated_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
        if took == 1:
            defer_job(session, charge_job(row_id))
            claimed += 1
    return claimed


def requeue_stalled(session: Session, limit: int = 1000) -> int:
    """Sweep task: queue again a charge claimed long ago whose job was lost or died."""
    cutoff = runtime().now() - STALLED_AFTER
    ids = session.scalars(
        select(ScheduledPayment.id)
        .where(
            ScheduledPayment.status == ScheduledPaymentStatus.PROCESSING,
            ScheduledPayment.updated_at <= cutoff,
        )
        .limit(limit)
    ).all()
    for row_id in ids:
        defer_job(session, charge_job(row_id))
    return len(ids)


def charge_job(row_id: int) -> JobSpec:
    return JobSpec(
        "jobs.plans.charge_scheduled_payment",
        args=(row_id,),
        job_id=f"scheduled-payment-{row_id}",
        queue=DEFAULT,
    )


def charge(session: Session, row_id: int) -> ScheduledPayment | None:
    """Charge a claimed scheduled payment once and record what happened."""
    row = session.get(ScheduledPayment, row_id)
    if row is None or row.status != ScheduledPaymentStatus.PROCESSING:
        return row
    payment = payments.recorded(session, "scheduled_payment", (row.id,))
    if payment is None:
        balance = payments.lock_account(session, row.account_id).balance_cents
        amount = min(row.amount_cents, balance)
        if amount <= 0:  # paid off another way in the meantime: nothing to take
            claim(
                session,
                row,
                ScheduledPaymentStatus.CANCELLED,
                expected=ScheduledPaymentStatus.PROCESSING,
                cancel_reason="nothing_due",
                updated_at=runtime().now(),
            )
            return row
        charge = payments.saved_method_charge(
            "scheduled_payment",
            (row.id,),
            session.get(SavedMethod, row.saved_method_id),
            account_id=row.account_id,
            amount_cents=amount,
            source="schedule",
            link_id=row.link_id,
        )
        payment, _ = payments.record_attempt(session, charge, actor="system")
    if payment.status == PaymentStatus.PROCESSING and not payments.finish_charge(
        session, payment, actor="system", notify=False
    ):
        return row  # no answer: requeue_stalled asks again with the same key
    _record_outcome(session, row, payment)
    return row


def _record_outcome(session: Session, row: ScheduledPayment, payment: Payment) -> None:
    paid = payment.status in (PaymentStatus.PAID, PaymentStatus.PENDING)
    new = ScheduledPaymentStatus.PAID if paid else ScheduledPaymentStatus.DECLINED
    if not claim(
        session, row, new, expected=ScheduledPaymentStatus.PROCESSING, updated_at=runtime().now()
    ):
        return
    account = session.get(Account, row.account_id)
    link = session.get(Link, row.link_id) if row.link_id else None
    context = {
        "amount_cents": payment.amount_cents,
        "confirmation_number": payment.confirmation_number,
        "method_label": payment.method_label,
        "method_last4": payment.method_last4,
        "charge_date": row.charge_on,
        "balance_cents": max(account.balance_cents, 0),
    }
    if paid:
        kind = "scheduled_receipt"
        fresh_link_id = None
    else:
        kind = "scheduled_declined"
        fresh = links.create_link(session, account, channel=link.channel if link else "sms")
        fresh_link_id = fresh.id
        context["url"] = links.link_url(fresh.id)
    channels = []
    if account.email:
        channels.append(Channel.EMAIL)
    if account.phone and (link is None or link.channel in ("sms", "both")):
        channels.append(Channel.SMS)
    for channel in channels:
        messages.queue_message(
            session,
            account,
            channel,
            kind,
            context=context,
            payment_id=payment.id,
            link_id=fresh_link_id or row.link_id,
        )


# -- scheduling from the payment page ----------------------------------------------------

# A link used to schedule a payment stays open this long past the charge, so the customer
# can cancel until the day before and then see whether it was paid or declined.
LINK_AFTER_CHARGE = dt.timedelta(days=7)


def keep_method(session: Session, account: Account, token: str) -> SavedMethod:
    """Keep the gateway's ``token`` for a later charge (a scheduled payment or a plan),
    without making it the default that Pay by Text charges."""
    method = saved_methods.keep(session, account, token)
    if method is None:
        raise PaymentError(BAD_METHOD)
    return method


def for_checkout(session: Session, checkout: Checkout) -> ScheduledPayment | None:
    """The scheduled payment made from ``checkout``, if Confirm has been pressed."""
    return session.scalar(
        select(ScheduledPayment).where(ScheduledPayment.checkout_id == checkout.id)
    )


def schedule_checkout(
    session: Session,
    checkout: Checkout,
    *,
    ip: str | None = None,
    user_agent: str | None = None,
) -> ScheduledPayment:
    """Schedule a checkout's amount and method for its ``charge_on``, once: a double tap
    or a resubmitted form finds the first one: the two take turns on the checkout row, and
    ``scheduled_payments.checkout_id`` is unique, so even a twin that got past the turn has
    its insert (with the method it kept) undone. The link is
    kept open until LINK_AFTER_CHARGE after the charge."""
    if checkout.charge_on is None:
        raise PaymentError(BAD_DATE)
    if not checkout.method_token:
        raise PaymentError(NO_METHOD)
    # A no-op write first: two confirms take turns here (a row lock on PostgreSQL, the
    # write lock on SQLite, which a reader could not upgrade to without a busy error).
    session.execute(
        update(Checkout)
        .where(Checkout.id == checkout.id)
        .values(charge_on=Checkout.charge_on)
        .execution_options(synchronize_session=False)
    )
    existing = for_checkout(session, checkout)
    if existing is not None:
        return existing
    link = session.get(Link, checkout.link_id)
    if link.status != LinkStatus.ACTIVE or link.expires_at <= runtime().now():
        raise PaymentError(LINK_CLOSED)
    try:
        with session.begin_nested():
            method = keep_method(session, link.account, checkout.method_token)
            row = schedule_payment(
                session,
                link,
                amount_cents=checkout.amount_cents,
                charge_on=checkout.charge_on,
                method=method,
                checkout_id=checkout.id,
                ip=ip,
                user_agent=user_agent,
            )
    except IntegrityError:
        existing = for_checkout(session, checkout)
        if existing is None:
            raise
        return existing
    link.expires_at = max(link.expires_at, row.due_at + LINK_AFTER_CHARGE)
    session.flush()
    return row


def payment_of(session: Session, row: ScheduledPayment) -> Payment | None:
    """The charge a scheduled payment made (its receipt or decline), if it was made."""
    return session.scalar(select(Payment).where(Payment.scheduled_payment_id == row.id))
