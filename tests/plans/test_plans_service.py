"""Plan offers, signing, installments charged on their dates exactly once (also after the
scheduler was down, and with two sweeps at once), declines and the retry, completion,
cancellation, reminders and expiry. Time is the ``clock`` fixture: 2026-03-10 11:00 in
Phoenix (18:00 UTC); installments are charged at 09:00 there (16:00 UTC)."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import select

from linkpay.models import (
    AuditEvent,
    Installment,
    InstallmentStatus,
    MessageStatus,
    Offer,
    OfferReminder,
    OfferStatus,
    Payment,
    PlanFrequency,
    PlanStatus,
    ReminderStatus,
)
from linkpay.runtime import runtime
from linkpay.services import offers, plans, sweep
from linkpay.services.offers import OfferError
from tests.plans.conftest import count, saved_method, sent
from tests.web.pay_flow import make_account

UTC = dt.UTC


def offer_plan(db, account, *, first=dt.date(2026, 3, 11), n=3, days=7, channel="both", **kw):
    offer = plans.create_plan_offer(
        db,
        account,
        installments=n,
        frequency=kw.pop("frequency", PlanFrequency.WEEKLY),
        first_date=first,
        expires_in_days=days,
        channel=channel,
        actor="staff:test",
    )
    db.commit()
    return offer


def sign(db, offer, method, name="Ana Diaz"):
    plan = plans.accept_offer(
        db,
        offer,
        signature_name=name,
        agreement_version=plans.AGREEMENT_VERSION,
        method=method,
        ip="203.0.113.9",
        user_agent="Phone Browser",
    )
    db.commit()
    return plan


def test_a_plan_offer_goes_out_by_its_channels_with_its_reminders(db, account, run_jobs):
    offer = offer_plan(db, account)
    assert offer.amount_cents == 30_000 and offer.status == OfferStatus.OFFERED
    assert [i.amount_cents for i in offers.proposed_schedule(offer)] == [10_000] * 3
    assert {m.channel.value for m in sent(db, "plan_offer")} == {"sms", "email"}
    reminders = db.scalars(select(OfferReminder).order_by(OfferReminder.reminder_index)).all()
    assert [r.hours_before for r in reminders] == [72, 24, 2]
    assert offer.link.expires_at == offer.expires_at


def test_bad_plan_terms_are_refused_with_a_reason(db, account):
    with pytest.raises(OfferError) as past:
        offer_plan(db, account, first=dt.date(2026, 3, 9))
    with pytest.raises(OfferError) as too_many:
        offer_plan(db, account, n=25)
    nobody = make_account(db, account_number="NO-EMAIL", email=None)
    with pytest.raises(OfferError) as no_email:
        offer_plan(db, nobody, channel="email")
    assert (past.value.code, too_many.value.code, no_email.value.code) == (
        "bad_terms",
        "bad_terms",
        "no_address",
    )


def test_signing_records_the_signature_and_agreement_and_creates_the_installments(
    db, account, run_jobs
):
    offer = offer_plan(db, account, first=dt.date(2026, 1, 31) + dt.timedelta(days=40), n=4)
    method = saved_method(db, account)
    plan = sign(db, offer, method)
    assert plan.status == PlanStatus.ACTIVE and plan.signed_ip == "203.0.113.9"
    assert plan.agreement_version == plans.AGREEMENT_VERSION
    assert "$75.00" in plan.agreement_text and "Springfield Water" in plan.agreement_text
    assert [i.charge_on for i in plan.installments] == [
        dt.date(2026, 3, 12) + dt.timedelta(days=7 * n) for n in range(4)
    ]
    assert plan.installments[0].due_at == dt.datetime(2026, 3, 12, 16, tzinfo=UTC)
    event = db.scalar(select(AuditEvent).where(AuditEvent.action == "plan.accepted"))
    assert event.details["signature_name"] == "Ana Diaz" and event.user_agent == "Phone Browser"
    assert [m.channel.value for m in sent(db, "plan_confirmation")] == ["email"]
    assert count(db, OfferReminder, OfferReminder.status == ReminderStatus.CANCELLED) == 3
    with pytest.raises(OfferError) as again:
        sign(db, offer, method)
    assert again.value.code == "offer_closed"


def test_an_old_agreement_version_or_a_blank_name_is_refused(db, account):
    offer = offer_plan(db, account)
    method = saved_method(db, account)
    with pytest.raises(OfferError) as blank:
        sign(db, offer, method, name="   ")
    with pytest.raises(OfferError) as old:
        plans.accept_offer(
            db,
            offer,
            signature_name="Ana",
            agreement_version="plan-1999",
            method=method,
            ip=None,
            user_agent=None,
        )
    assert (blank.value.code, old.value.code) == ("no_signature", "agreement_changed")
    assert db.get(Offer, offer.id).status == OfferStatus.OFFERED


def test_after_three_days_down_one_sweep_charges_each_due_installment_once(
    db, clock, spy, sweep_now
):
    first = make_account(db, account_number="A-1", balance_cents=30_000)
    second = make_account(db, account_number="A-2", balance_cents=30_000, phone="+16025550144")
    for acct, day in ((first, dt.date(2026, 3, 11)), (second, dt.date(2026, 3, 12))):
        sign(db, offer_plan(db, acct, first=day, days=2), saved_method(db, acct))
    clock.advance(days=3)  # nobody swept on the 11th or the 12th
    sweep_now()
    sweep_now()
    paid = db.scalars(select(Installment).where(Installment.status == InstallmentStatus.PAID))
    assert sorted(i.charge_on for i in paid) == [dt.date(2026, 3, 11), dt.date(2026, 3, 12)]
    assert len(spy.charges) == 2
    assert count(db, Payment) == 2
    db.expire_all()
    assert (first.balance_cents, second.balance_cents) == (20_000, 20_000)
    receipts = sent(db, "installment_receipt")
    assert len(receipts) == 4  # sms and email for each
    assert all("conf. LP" in m.body for m in receipts if m.channel.value == "sms")


def test_two_sweeps_at_the_same_moment_charge_nothing_twice(app, db, clock, spy, run_jobs):
    for n in range(4):
        acct = make_account(db, account_number=f"C-{n}", phone=f"+1602555016{n}")
        sign(db, offer_plan(db, acct, first=dt.date(2026, 3, 11)), saved_method(db, acct))
    clock.set(dt.datetime(2026, 3, 11, 16, 5, tzinfo=UTC))
    barrier = threading.Barrier(2)
    errors = []

    def sweep_in_thread():
        with app.app_context():
            try:
                barrier.wait()
                sweep.run(runtime().db)
            except Exception as exc:  # reported below: a thread's exception is otherwise lost
                errors.append(exc)

    threads = [threading.Thread(target=sweep_in_thread) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    run_jobs()
    sweep.run(runtime().db)
    run_jobs()
    assert count(db, Payment) == 4
    assert len(spy.charges) == 4
    assert count(db, Installment, Installment.status == InstallmentStatus.PAID) == 4


def test_a_declined_installment_is_noticed_retried_once_after_three_days_then_declined(
    db, account, clock, spy, sweep_now
):
    plan = sign(db, offer_plan(db, account), saved_method(db, account, outcome="declined"))
    clock.set(dt.datetime(2026, 3, 11, 16, 0, tzinfo=UTC))
    sweep_now()
    first = db.get(Installment, plan.installments[0].id)
    db.refresh(first)
    assert first.status == InstallmentStatus.RETRY_SCHEDULED
    assert first.due_at == dt.datetime(2026, 3, 14, 16, tzinfo=UTC)
    notices = sent(db, "installment_declined")
    assert len(notices) == 2 and offers.offer_context(plan.offer)["url"] in notices[0].body
    clock.set(dt.datetime(2026, 3, 14, 15, 59, tzinfo=UTC))
    sweep_now()
    assert len(spy.charges) == 1
    clock.set(dt.datetime(2026, 3, 14, 16, 0, tzinfo=UTC))
    sweep_now()
    db.refresh(first)
    assert first.status == InstallmentStatus.DECLINED and first.attempts == 2
    assert count(db, Payment, Payment.installment_id == first.id) == 2
    assert len(sent(db, "installment_declined")) == 4
    db.expire_all()
    assert account.balance_cents == 30_000


def test_the_plan_completes_when_every_installment_is_paid(db, account, clock, spy, sweep_now):
    plan = sign(db, offer_plan(db, account), saved_method(db, account))
    clock.set(dt.datetime(2026, 3, 26, 16, tzinfo=UTC))
    sweep_now()
    db.refresh(plan)
    assert plan.status == PlanStatus.COMPLETED
    db.expire_all()
    assert account.balance_cents == 0
    assert sum(p.amount_cents for p in db.scalars(select(Payment))) == 30_000


def test_cancelling_a_plan_cancels_what_is_left_with_one_notice(db, account, clock, spy, sweep_now):
    plan = sign(db, offer_plan(db, account, channel="sms"), saved_method(db, account))
    clock.set(dt.datetime(2026, 3, 11, 17, tzinfo=UTC))
    sweep_now()
    assert plans.cancel_plan(db, plan, actor="staff:test") is True
    assert plans.cancel_plan(db, plan, actor="customer") is False
    db.commit()
    clock.advance(days=30)
    sweep_now()
    statuses = [i.status for i in db.scalars(select(Installment).order_by(Installment.sequence))]
    assert statuses == [InstallmentStatus.PAID] + [InstallmentStatus.CANCELLED] * 2
    assert len(spy.charges) == 1
    assert len(sent(db, "plan_cancelled")) == 1


def test_missed_reminders_still_before_expiry_are_each_sent_once(db, account, clock, sweep_now):
    offer_plan(db, account, days=4, channel="sms")  # expires 2026-03-14 11:00 Phoenix
    clock.set(dt.datetime(2026, 3, 14, 17, tzinfo=UTC))  # every reminder was missed
    sweep_now()
    sweep_now()
    assert len(sent(db, "offer_reminder")) == 3
    assert count(db, OfferReminder, OfferReminder.status == ReminderStatus.SENT) == 3


def test_past_expiry_reminders_are_dropped_and_one_expiry_notice_goes(
    db, account, clock, sweep_now
):
    offer = offer_plan(db, account, days=4)
    clock.advance(days=5)
    sweep_now()
    sweep_now()
    assert sent(db, "offer_reminder") == []
    assert count(db, OfferReminder, OfferReminder.status == ReminderStatus.DROPPED) == 3
    db.refresh(offer)
    assert offer.status == OfferStatus.EXPIRED
    assert len(sent(db, "offer_expired")) == 2  # sms and email, once
    assert offers.offer_for_link(db, offer.link) is None


def test_a_reminder_held_for_quiet_hours_is_cancelled_when_the_offer_is_signed(
    db, account, clock, sweep_now
):
    offer = offer_plan(db, account, days=4, channel="sms")
    clock.set(dt.datetime(2026, 3, 11, 18, tzinfo=UTC))
    sweep_now()
    reminder = sent(db, "offer_reminder")[0]
    reminder.status = MessageStatus.SCHEDULED  # as if quiet hours held it
    db.commit()
    sign(db, offer, saved_method(db, account))
    db.refresh(reminder)
    assert reminder.status == MessageStatus.CANCELLED
