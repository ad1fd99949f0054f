"""Scheduled payments (the date window, cancelling until the day before, one charge on the
day, receipt or a declined notice with a fresh link) and settlement offers."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from linkpay.models import (
    AuditEvent,
    OfferStatus,
    Payment,
    PaymentStatus,
    ScheduledPayment,
    ScheduledPaymentStatus,
)
from linkpay.services import offers, scheduled_payments
from linkpay.services.offers import OfferError
from linkpay.services.payments import PaymentError
from tests.plans.conftest import count, saved_method, sent
from tests.web.pay_flow import make_link

UTC = dt.UTC


def schedule(db, account, day, amount=5_000, outcome="approved"):
    link = make_link(db, account)[0]
    row = scheduled_payments.schedule_payment(
        db,
        link,
        amount_cents=amount,
        charge_on=day,
        method=saved_method(db, account, outcome=outcome),
    )
    db.commit()
    return row


def test_the_date_must_be_from_tomorrow_to_sixty_days_ahead(db, account):
    for day in (dt.date(2026, 3, 10), dt.date(2026, 5, 10)):
        with pytest.raises(PaymentError) as refused:
            schedule(db, account, day)
        assert refused.value.code == "bad_date"
    assert schedule(db, account, dt.date(2026, 5, 9)).due_at == dt.datetime(
        2026, 5, 9, 16, tzinfo=UTC
    )


def test_a_scheduled_payment_is_charged_once_on_its_day_with_a_receipt(
    db, account, clock, spy, sweep_now
):
    row = schedule(db, account, dt.date(2026, 3, 12))
    clock.set(dt.datetime(2026, 3, 12, 15, 59, tzinfo=UTC))
    sweep_now()
    assert spy.charges == []
    clock.advance(days=2)  # and the scheduler was down
    sweep_now()
    sweep_now()
    db.refresh(row)
    assert row.status == ScheduledPaymentStatus.PAID
    assert spy.charges == [(row.method.token, 5_000, f"scheduled-payment-{row.id}")]
    payment = db.scalar(select(Payment).where(Payment.scheduled_payment_id == row.id))
    assert payment.status == PaymentStatus.PAID and payment.source == "schedule"
    db.expire_all()
    assert account.balance_cents == 25_000
    assert {m.channel.value for m in sent(db, "scheduled_receipt")} == {"sms", "email"}


def test_a_declined_scheduled_payment_sends_a_fresh_link(db, account, clock, spy, sweep_now):
    row = schedule(db, account, dt.date(2026, 3, 11), outcome="declined")
    clock.set(dt.datetime(2026, 3, 11, 16, tzinfo=UTC))
    sweep_now()
    db.refresh(row)
    assert row.status == ScheduledPaymentStatus.DECLINED
    notice = sent(db, "scheduled_declined", channel="sms")[0]
    assert notice.link_id != row.link_id and "/p/" in notice.body


def test_cancel_until_the_day_before_then_never_charged(db, account, clock, spy, sweep_now):
    row = schedule(db, account, dt.date(2026, 3, 12))
    late = schedule(db, account, dt.date(2026, 3, 11))
    clock.set(dt.datetime(2026, 3, 11, 17, tzinfo=UTC))  # the 11th in Phoenix
    assert scheduled_payments.cancel(db, row) is True
    with pytest.raises(PaymentError) as too_late:
        scheduled_payments.cancel(db, late)
    assert too_late.value.code == "too_late_to_cancel"
    db.commit()
    clock.advance(days=2)
    sweep_now()
    db.refresh(row)
    assert row.status == ScheduledPaymentStatus.CANCELLED
    assert count(db, Payment, Payment.scheduled_payment_id == row.id) == 0
    assert count(db, ScheduledPayment, ScheduledPayment.status == "paid") == 1
    assert db.scalar(select(AuditEvent).where(AuditEvent.action == "scheduled_payment.cancelled"))


def test_a_settlement_offer_by_percent_settles_the_account_once(db, account):
    offer = offers.create_settlement_offer(
        db, account, percent=60, deadline=dt.date(2026, 3, 20), channel="email", actor="staff:t"
    )
    db.commit()
    assert offer.amount_cents == 18_000
    assert offer.expires_at == dt.datetime(2026, 3, 21, 7, tzinfo=UTC)  # midnight in Phoenix
    assert offers.offer_context(offer)["deadline_date"] == dt.date(2026, 3, 20)
    assert [m.channel.value for m in sent(db, "settlement_offer")] == ["email"]
    payment = Payment(
        account_id=account.id,
        confirmation_number="LPTEST0001",
        amount_cents=18_000,
        method_kind="card",
        method_label="Visa",
        method_last4="4242",
        status=PaymentStatus.PAID,
    )
    db.add(payment)
    account.balance_cents -= 18_000
    db.commit()
    assert offers.settle(db, offer, payment) is True
    assert offers.settle(db, offer, payment) is False
    db.commit()
    db.expire_all()
    assert account.balance_cents == 0 and offer.status == OfferStatus.ACCEPTED
    event = db.scalar(select(AuditEvent).where(AuditEvent.action == "offer.settled"))
    assert event.details["forgiven_cents"] == 12_000


def test_a_new_offer_replaces_the_open_one_and_bad_amounts_are_refused(db, account):
    first = offers.create_settlement_offer(
        db, account, amount_cents=20_000, deadline=dt.date(2026, 3, 20), actor="staff:t"
    )
    offers.create_settlement_offer(
        db, account, amount_cents=19_000, deadline=dt.date(2026, 3, 20), actor="staff:t"
    )
    db.commit()
    db.refresh(first)
    assert first.status == OfferStatus.REPLACED
    for kwargs in ({"amount_cents": 30_000}, {"percent": 100}, {}):
        with pytest.raises(OfferError):
            offers.create_settlement_offer(
                db, account, deadline=dt.date(2026, 3, 20), actor="staff:t", **kwargs
            )
