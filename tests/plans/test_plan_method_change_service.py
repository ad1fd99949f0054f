"""Replacing a signed plan's method (``plans.change_method``): the audit row, the retry of a
declined installment charged once with the new method and brought forward to the next
sweep (but not next to a charge in flight), two changes at once, and plans that ended.
Time is the ``clock`` fixture: 2026-03-10 11:00 in Phoenix (18:00 UTC); installments are
charged at 09:00 there (16:00 UTC)."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import select

from linkpay.models import (
    AuditEvent,
    Installment,
    InstallmentStatus,
    MethodKind,
    Payment,
    Plan,
    PlanStatus,
    SavedMethod,
)
from linkpay.runtime import runtime
from linkpay.services import plans
from linkpay.services.offers import OfferError
from tests.plans.conftest import count, saved_method, sent
from tests.plans.test_plans_service import offer_plan, sign
from tests.web.pay_flow import make_account

UTC = dt.UTC
FIRST_CHARGE = dt.datetime(2026, 3, 11, 16, 0, tzinfo=UTC)
RETRY_DAY = dt.datetime(2026, 3, 14, 16, 0, tzinfo=UTC)


def change(db, plan, method, ip="203.0.113.9", ua="Phone Browser") -> bool:
    changed = plans.change_method(db, plan, method, ip=ip, user_agent=ua)
    db.commit()
    return changed


def first_installment(db, plan) -> Installment:
    db.expire_all()
    return db.scalars(
        select(Installment).where(Installment.plan_id == plan.id).order_by(Installment.sequence)
    ).first()


@pytest.fixture
def declined_plan(db, account, clock, spy, sweep_now):
    """A plan whose first installment was declined on March 11 and waits for its retry."""
    plan = sign(db, offer_plan(db, account), saved_method(db, account, outcome="declined"))
    clock.set(FIRST_CHARGE)
    sweep_now()
    assert first_installment(db, plan).status == InstallmentStatus.RETRY_SCHEDULED
    return plan


def test_the_change_is_audited_with_both_methods(db, account, declined_plan):
    new = saved_method(db, account)
    new.label, new.last4 = "Mastercard", "4444"
    db.commit()
    assert change(db, declined_plan, new) is True
    db.refresh(declined_plan)
    assert declined_plan.saved_method_id == new.id
    [event] = db.scalars(select(AuditEvent).where(AuditEvent.action == "plan.method_changed"))
    assert (event.actor, event.ip, event.user_agent) == ("customer", "203.0.113.9", "Phone Browser")
    assert event.subject_type == "Plan" and event.subject_id == declined_plan.id
    assert event.details["old_method_label"] == "Visa" and event.details["old_last4"] == "4242"
    assert event.details["method_label"] == "Mastercard" and event.details["last4"] == "4444"
    assert event.details["retries_brought_forward"] == 1


def test_after_an_update_the_retry_charges_the_new_method_once_at_the_next_sweep(
    db, account, clock, spy, sweep_now, declined_plan
):
    new = saved_method(db, account)
    clock.advance(hours=2)
    change(db, declined_plan, new)
    installment = first_installment(db, declined_plan)
    assert installment.due_at == runtime().now()  # no longer March 14
    sweep_now()
    sweep_now()
    installment = first_installment(db, declined_plan)
    assert installment.status == InstallmentStatus.PAID and installment.attempts == 2
    declined_token = spy.charges[0][0]
    assert [token for token, _, _ in spy.charges] == [declined_token, new.token]
    assert declined_token != new.token
    [retry] = db.scalars(
        select(Payment).where(
            Payment.installment_id == installment.id, Payment.installment_attempt == 2
        )
    )
    assert retry.saved_method_id == new.id and retry.status.value == "paid"
    assert len(sent(db, "installment_receipt")) == 2  # sms and email
    # March 14, the old retry day, charges nothing more.
    clock.set(RETRY_DAY)
    sweep_now()
    assert len(spy.charges) == 2
    assert count(db, Payment, Payment.installment_id == installment.id) == 2


def test_the_next_installments_are_charged_to_the_new_method(db, account, clock, spy, sweep_now):
    old = saved_method(db, account)
    plan = sign(db, offer_plan(db, account), old)
    new = saved_method(db, account)
    change(db, plan, new)
    assert count(db, Installment, Installment.plan_id == plan.id) == 3
    clock.set(dt.datetime(2026, 3, 26, 16, tzinfo=UTC))
    sweep_now()
    assert {token for token, _, _ in spy.charges} == {new.token}
    assert len(spy.charges) == 3


def test_a_retry_is_not_brought_forward_next_to_a_charge_in_flight(
    db, account, clock, spy, sweep_now, declined_plan
):
    # The customer also paid through another link, and the gateway has not answered yet.
    installment = first_installment(db, declined_plan)
    paying = Payment(
        account_id=account.id,
        confirmation_number="LPINFLIGHT",
        amount_cents=5_000,
        method_kind=MethodKind.CARD,
        method_label="Visa",
        method_last4="4242",
        status="processing",
        gateway="sandbox",
        source="link",
    )
    db.add(paying)
    db.commit()
    change(db, declined_plan, saved_method(db, account))
    assert first_installment(db, declined_plan).due_at == installment.due_at == RETRY_DAY
    [event] = db.scalars(select(AuditEvent).where(AuditEvent.action == "plan.method_changed"))
    assert event.details["retries_brought_forward"] == 0


def test_a_retry_already_declined_twice_is_not_tried_a_third_time(
    db, account, clock, spy, sweep_now, declined_plan
):
    clock.set(RETRY_DAY)
    sweep_now()
    assert first_installment(db, declined_plan).status == InstallmentStatus.DECLINED
    change(db, declined_plan, saved_method(db, account))
    clock.advance(minutes=5)
    sweep_now()
    assert len(spy.charges) == 2
    assert first_installment(db, declined_plan).attempts == 2


def test_the_same_method_again_changes_nothing(db, account, declined_plan):
    new = saved_method(db, account)
    assert change(db, declined_plan, new) is True
    assert change(db, declined_plan, new) is False
    assert count(db, AuditEvent, AuditEvent.action == "plan.method_changed") == 1


@pytest.mark.parametrize("ending", ["cancelled", "completed"])
def test_a_plan_that_ended_keeps_its_method(db, account, clock, spy, sweep_now, ending):
    old = saved_method(db, account)
    plan = sign(db, offer_plan(db, account), old)
    if ending == "cancelled":
        plans.cancel_plan(db, plan, actor="staff:test")
        db.commit()
    else:
        clock.set(dt.datetime(2026, 3, 26, 16, tzinfo=UTC))
        sweep_now()
    db.refresh(plan)
    assert plan.status == PlanStatus(ending)
    with pytest.raises(OfferError) as refused:
        plans.change_method(db, plan, saved_method(db, account), ip=None, user_agent=None)
    db.rollback()
    assert refused.value.code == plans.NOT_ACTIVE
    db.refresh(plan)
    assert plan.saved_method_id == old.id
    assert count(db, AuditEvent, AuditEvent.action == "plan.method_changed") == 0


def test_another_accounts_method_is_refused(db, account, declined_plan):
    other = make_account(db, account_number="OTHER-1", phone="+16025550199")
    with pytest.raises(OfferError) as refused:
        plans.change_method(db, declined_plan, saved_method(db, other), ip=None, user_agent=None)
    assert refused.value.code == plans.BAD_METHOD


def test_two_changes_at_once_leave_one_method_and_charge_the_retry_once(
    app, db, account, clock, spy, sweep_now, declined_plan
):
    methods = [saved_method(db, account), saved_method(db, account)]
    methods[0].last4, methods[1].last4 = "1111", "2222"
    db.commit()
    barrier = threading.Barrier(2)
    errors = []

    def change_in_thread(method_id):
        with app.app_context(), runtime().db.session() as session:
            try:
                plan = session.get(Plan, declined_plan.id)
                method = session.get(SavedMethod, method_id)
                barrier.wait()
                plans.change_method(session, plan, method, ip=None, user_agent=None)
            except Exception as exc:  # reported below: a thread's exception is otherwise lost
                errors.append(exc)

    threads = [threading.Thread(target=change_in_thread, args=(m.id,)) for m in methods]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    db.expire_all()
    plan = db.get(Plan, declined_plan.id)
    assert plan.saved_method_id in {m.id for m in methods}
    events = list(db.scalars(select(AuditEvent).where(AuditEvent.action == "plan.method_changed")))
    # Both applied, one after the other: the second replaced the first, and its row says so.
    assert [e.details["old_last4"] for e in events] == ["4242", events[0].details["last4"]]
    final = db.get(SavedMethod, plan.saved_method_id)
    assert events[-1].details["last4"] == final.last4
    sweep_now()
    sweep_now()
    installment = first_installment(db, plan)
    assert installment.status == InstallmentStatus.PAID and installment.attempts == 2
    assert len(spy.charges) == 2
    assert spy.charges[-1][0] == final.token
