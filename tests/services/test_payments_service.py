"""The payments service: checkouts, one charge per checkout, declines and retries,
balances, audit rows, receipts, ACH settlement and recovery of unanswered charges."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from linkpay.gateways import gateway
from linkpay.gateways.sandbox import vault
from linkpay.models import (
    Account,
    AuditEvent,
    Channel,
    Checkout,
    Link,
    LinkStatus,
    Message,
    MethodKind,
    Payment,
    PaymentStatus,
    SavedMethod,
    ScheduledPayment,
    ScheduledPaymentStatus,
)
from linkpay.rendering import is_gsm7
from linkpay.runtime import runtime
from linkpay.services import payments, scheduled_payments, settlement, sweep
from linkpay.services.payments import PaymentError
from tests.web.pay_flow import make_account, make_link


def token_for(db, kind=MethodKind.CARD, outcome="approved", label="Visa", last4="4242") -> str:
    token = vault(db, kind, label, last4, outcome)
    db.commit()
    return token


def ready_checkout(db, link, amount_cents, token) -> Checkout:
    checkout = payments.start_checkout(db, link, amount_cents)
    payments.attach_method(db, checkout, token)
    db.commit()
    return checkout


def count(db, model, *where) -> int:
    return db.scalar(select(func.count()).select_from(model).where(*where))


def audit_actions(db) -> list[str]:
    return list(db.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


@pytest.fixture
def account(db):
    return make_account(db)


@pytest.fixture
def link(db, account):
    return make_link(db, account)[0]


def test_amount_rules_follow_min_cents_and_the_balance(db, link):
    with pytest.raises(PaymentError) as below:
        payments.start_checkout(db, link, 99)
    with pytest.raises(PaymentError) as over:
        payments.start_checkout(db, link, 12_451)
    assert (below.value.code, over.value.code) == ("below_minimum", "over_balance")
    assert payments.start_checkout(db, link, 100).amount_cents == 100
    assert payments.start_checkout(db, link, 12_450).amount_cents == 12_450


def test_a_balance_under_the_minimum_can_still_be_paid_in_full(db):
    small = make_account(db, account_number="SMALL-1", balance_cents=50)
    link = make_link(db, small)[0]
    assert payments.start_checkout(db, link, 50).amount_cents == 50
    with pytest.raises(PaymentError):
        payments.start_checkout(db, link, 49)


def test_nothing_due_and_closed_links_start_no_checkout(db, account, link, clock):
    account.balance_cents = 0
    db.commit()
    with pytest.raises(PaymentError) as nothing:
        payments.start_checkout(db, link, 100)
    assert nothing.value.code == "nothing_due"
    account.balance_cents = 5000
    db.commit()
    clock.advance(hours=73)
    with pytest.raises(PaymentError) as closed:
        payments.start_checkout(db, link, 100)
    assert closed.value.code == "link_closed"


def test_a_card_payment_in_full_pays_reduces_the_balance_and_uses_the_link(db, account, link, spy):
    checkout = ready_checkout(db, link, 12_450, token_for(db))
    payment = payments.confirm(db, checkout, "203.0.113.9", "Phone Browser")

    assert payment.status == PaymentStatus.PAID
    assert (payment.method_label, payment.method_last4, payment.amount_cents) == (
        "Visa",
        "4242",
        12_450,
    )
    assert payment.confirmation_number.startswith("LP") and len(payment.confirmation_number) == 10
    db.expire_all()
    assert db.get(Account, account.id).balance_cents == 0
    assert db.get(Link, link.id).status == LinkStatus.USED
    assert spy.charges == [(checkout.method_token, 12_450, checkout.public_id)]
    assert audit_actions(db) == ["payment.attempted", "payment.paid"]
    paid = db.scalar(select(AuditEvent).where(AuditEvent.action == "payment.paid"))
    assert paid.details["amount_cents"] == 12_450
    assert (paid.details["last4"], paid.details["method_kind"]) == ("4242", "card")
    assert (paid.ip, paid.user_agent, paid.actor) == ("203.0.113.9", "Phone Browser", "customer")


def test_a_partial_payment_leaves_the_link_open(db, account, link, spy):
    payments.confirm(db, ready_checkout(db, link, 2_000, token_for(db)), None, None)
    db.expire_all()
    assert db.get(Account, account.id).balance_cents == 10_450
    assert db.get(Link, link.id).status == LinkStatus.ACTIVE


def test_receipts_go_by_email_and_by_text_when_the_link_went_by_text(db, account, link, spy):
    payment = payments.confirm(db, ready_checkout(db, link, 2_000, token_for(db)), None, None)
    receipts = db.scalars(select(Message).where(Message.payment_id == payment.id)).all()
    assert {m.channel for m in receipts} == {Channel.EMAIL, Channel.SMS}
    assert all(m.kind == "receipt" and m.solicited for m in receipts)
    sms = next(m for m in receipts if m.channel == Channel.SMS)
    assert payment.confirmation_number in sms.body and "$20.00" in sms.body
    assert "STOP" in sms.body and sms.segments == 1 and is_gsm7(sms.body)
    email = next(m for m in receipts if m.channel == Channel.EMAIL)
    assert payment.confirmation_number in email.body and "ending 4242" in email.body
    assert "$104.50" in email.body  # what is left to pay


def test_an_emailed_link_gets_no_text_receipt(db, account, spy):
    link = make_link(db, account, channel="email")[0]
    payment = payments.confirm(db, ready_checkout(db, link, 2_000, token_for(db)), None, None)
    channels = db.scalars(select(Message.channel).where(Message.payment_id == payment.id)).all()
    assert channels == [Channel.EMAIL]


def test_spanish_text_receipt_is_one_gsm7_segment(db, spy):
    account = make_account(db, account_number="ES-1", language="es", email=None)
    link = make_link(db, account)[0]
    checkout = ready_checkout(db, link, 123_456 // 100, token_for(db))
    payment = payments.confirm(db, checkout, None, None)
    sms = db.scalar(select(Message).where(Message.payment_id == payment.id))
    assert sms.body.startswith("Springfield Water: Recibimos su pago de $12.34")
    assert "PARAR" in sms.body and sms.segments == 1 and is_gsm7(sms.body)


def test_confirming_twice_charges_once(db, link, spy):
    checkout = ready_checkout(db, link, 2_000, token_for(db))
    first = payments.confirm(db, checkout, None, None)
    second = payments.confirm(db, checkout, None, None)
    assert second.id == first.id
    assert len(spy.charges) == 1
    assert count(db, Payment) == 1


def test_losing_the_insert_race_returns_the_winners_payment(app, db, link, spy, monkeypatch):
    """Two requests both saw no payment; the database's unique checkout_id decides."""
    checkout = ready_checkout(db, link, 2_000, token_for(db))
    with runtime().db.session() as other:  # the other request of the double submit
        winner_id = payments.confirm(other, other.get(Checkout, checkout.id), None, None).id
    # This request looked (before the lock and under it) a moment before the winner's commit.
    real_existing, real_new_payment = payments.Charge.existing, payments._new_payment
    looks, lost = [], []

    def stale_first_look(charge, session):
        looks.append(charge.key)
        return None if len(looks) == 1 else real_existing(charge, session)

    def insert_noting_the_loss(session, charge):
        try:
            return real_new_payment(session, charge)
        except IntegrityError as exc:
            lost.append(exc)
            raise

    monkeypatch.setattr(payments, "payment_for", lambda session, c: None)
    monkeypatch.setattr(payments.Charge, "existing", stale_first_look)
    monkeypatch.setattr(payments, "_new_payment", insert_noting_the_loss)
    loser = payments.confirm(db, checkout, None, None)
    assert len(lost) == 1  # the insert really ran into the unique constraint
    assert loser.id == winner_id
    assert len(spy.charges) == 1 and count(db, Payment) == 1


def test_concurrent_confirms_of_one_checkout_charge_once(app, db, link, spy):
    checkout_id = ready_checkout(db, link, 2_000, token_for(db)).id
    results, errors = [], []
    barrier = threading.Barrier(4)

    def confirm_in_thread():
        with app.app_context(), runtime().db.session() as session:
            barrier.wait()
            try:
                payment = payments.confirm(session, session.get(Checkout, checkout_id), None, None)
                results.append(payment.id)
            except Exception as exc:  # collected, so the assertion below names it
                errors.append(exc)

    threads = [threading.Thread(target=confirm_in_thread) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(set(results)) == 1 and len(results) == 4
    assert len(spy.charges) == 1 and count(db, Payment) == 1


def test_two_checkouts_cannot_both_spend_the_balance(db, account, link, spy):
    first = ready_checkout(db, link, 12_450, token_for(db))
    second = ready_checkout(db, link, 12_450, token_for(db))
    payments.confirm(db, first, None, None)
    with pytest.raises(PaymentError):
        payments.confirm(db, second, None, None)
    assert count(db, Payment) == 1 and len(spy.charges) == 1


def test_a_checkout_without_a_method_cannot_be_confirmed(db, link, spy):
    checkout = payments.start_checkout(db, link, 2_000)
    db.commit()
    with pytest.raises(PaymentError) as error:
        payments.confirm(db, checkout, None, None)
    assert error.value.code == "no_method" and spy.charges == []


def test_an_unknown_token_is_refused(db, link):
    checkout = payments.start_checkout(db, link, 2_000)
    with pytest.raises(PaymentError) as error:
        payments.attach_method(db, checkout, "tok_nobody")
    assert error.value.code == "unknown_method"


def test_a_decline_changes_nothing_and_a_retry_pays_with_another_method(db, account, link, spy):
    declined_token = token_for(db, outcome="insufficient_funds", last4="9995")
    checkout = ready_checkout(db, link, 2_000, declined_token)
    declined = payments.confirm(db, checkout, None, None)
    assert (declined.status, declined.decline_code) == (
        PaymentStatus.DECLINED,
        "insufficient_funds",
    )
    db.expire_all()
    assert db.get(Account, account.id).balance_cents == 12_450
    assert count(db, Message, Message.payment_id == declined.id) == 0

    retry = payments.retry(db, db.get(Checkout, checkout.id))
    assert retry.id != checkout.id and retry.amount_cents == 2_000
    payments.attach_method(db, retry, token_for(db, MethodKind.BANK, label="Bank", last4="6789"))
    db.commit()
    paid = payments.confirm(db, retry, None, None)
    assert paid.status == PaymentStatus.PENDING
    assert audit_actions(db) == [
        "payment.attempted",
        "payment.declined",
        "payment.attempted",
        "payment.pending",
    ]
    declined_event = db.scalar(select(AuditEvent).where(AuditEvent.action == "payment.declined"))
    assert declined_event.details["decline_code"] == "insufficient_funds"


def test_a_paid_checkout_cannot_be_retried(db, link, spy):
    checkout = ready_checkout(db, link, 2_000, token_for(db))
    payments.confirm(db, checkout, None, None)
    with pytest.raises(PaymentError) as error:
        payments.retry(db, checkout)
    assert error.value.code == "not_declined"


def test_pending_ach_counts_now_and_settles_on_a_later_sweep(
    db, account, link, spy, clock, run_jobs
):
    bank = token_for(db, MethodKind.BANK, label="Bank", last4="6789")
    payment = payments.confirm(db, ready_checkout(db, link, 12_450, bank), None, None)
    assert payment.status == PaymentStatus.PENDING
    db.expire_all()
    assert db.get(Account, account.id).balance_cents == 0
    assert db.get(Link, link.id).status == LinkStatus.USED
    sms = db.scalar(
        select(Message).where(Message.payment_id == payment.id, Message.channel == "sms")
    )
    assert "processing" in sms.body

    sweep.run(runtime().db)
    run_jobs()
    db.expire_all()
    assert db.get(Payment, payment.id).status == PaymentStatus.PENDING  # too soon to ask

    clock.advance(seconds=payments.SETTLE_POLL.total_seconds())
    sweep.run(runtime().db)
    run_jobs()
    db.expire_all()
    assert db.get(Payment, payment.id).status == PaymentStatus.PAID
    assert db.get(Account, account.id).balance_cents == 0  # counted once, not twice
    settled = db.scalars(select(AuditEvent).where(AuditEvent.action == "payment.paid")).all()
    assert len(settled) == 1 and settled[0].actor == "system"


def test_a_returned_debit_puts_the_amount_back(db, account, link, spy, monkeypatch):
    bank = token_for(db, MethodKind.BANK, label="Bank", last4="6789")
    payment = payments.confirm(db, ready_checkout(db, link, 2_000, bank), None, None)
    returned = payments.ChargeResult(payments.ChargeStatus.DECLINED, "ref", "account_closed")
    monkeypatch.setattr(spy, "check", lambda reference: returned)
    settlement.settle(db, payment.id)
    db.commit()
    db.expire_all()
    assert db.get(Payment, payment.id).status == PaymentStatus.DECLINED
    assert db.get(Account, account.id).balance_cents == 12_450
    assert "payment.returned" in audit_actions(db)


def test_an_unanswered_charge_is_asked_again_with_the_same_key(
    db, account, link, spy, clock, run_jobs
):
    checkout = ready_checkout(db, link, 2_000, token_for(db))
    spy.unreachable = True
    payment = payments.confirm(db, checkout, None, None)
    assert payment.status == PaymentStatus.PROCESSING
    db.expire_all()
    assert db.get(Account, account.id).balance_cents == 12_450

    spy.unreachable = False
    clock.advance(seconds=payments.STUCK_AFTER.total_seconds())
    sweep.run(runtime().db)
    run_jobs()
    db.expire_all()
    assert db.get(Payment, payment.id).status == PaymentStatus.PAID
    assert db.get(Account, account.id).balance_cents == 10_450
    assert [key for _, _, key in spy.charges] == [checkout.public_id, checkout.public_id]


def test_a_repeated_result_is_recorded_once(db, account, link, spy):
    checkout = ready_checkout(db, link, 2_000, token_for(db))
    payment = payments.confirm(db, checkout, None, None)
    again = gateway().charge(checkout.method_token, 2_000, checkout.public_id)
    assert payments.apply_result(db, payment, again, actor="system") is False
    db.commit()
    db.expire_all()
    assert db.get(Account, account.id).balance_cents == 10_450
    assert count(db, Message, Message.payment_id == payment.id) == 2


def test_an_unanswered_scheduled_charge_is_finished_by_its_own_job_with_the_same_key(
    db, account, link, spy, clock, run_jobs
):
    """The charge job owns it: the payments sweep leaves it alone, and the job, queued again
    by requeue_stalled, asks with the same key and sends its own notice, not a receipt."""
    method = SavedMethod(
        account_id=account.id,
        gateway="sandbox",
        token=token_for(db),
        kind=MethodKind.CARD,
        label="Visa",
        last4="4242",
    )
    db.add(method)
    db.flush()
    row = scheduled_payments.schedule_payment(
        db, link, amount_cents=5_000, charge_on=dt.date(2026, 3, 11), method=method
    )
    db.commit()
    clock.set(row.due_at)
    spy.unreachable = True
    sweep.run(runtime().db)
    run_jobs()
    payment = db.scalar(select(Payment).where(Payment.scheduled_payment_id == row.id))
    assert payment.status == PaymentStatus.PROCESSING

    spy.unreachable = False
    clock.advance(seconds=payments.STUCK_AFTER.total_seconds())
    assert payments.poll_unsettled(db) == 0
    settlement.settle(db, payment.id)
    db.commit()
    db.expire_all()
    assert db.get(Payment, payment.id).status == PaymentStatus.PROCESSING
    assert len(spy.charges) == 1

    clock.set(row.due_at + scheduled_payments.STALLED_AFTER)
    sweep.run(runtime().db)
    run_jobs()
    db.expire_all()
    assert db.get(Payment, payment.id).status == PaymentStatus.PAID
    assert db.get(ScheduledPayment, row.id).status == ScheduledPaymentStatus.PAID
    assert db.get(Account, account.id).balance_cents == 7_450
    assert [key for _, _, key in spy.charges] == [f"scheduled-payment-{row.id}"] * 2
    kinds = db.scalars(select(Message.kind).where(Message.payment_id == payment.id)).all()
    assert set(kinds) == {"scheduled_receipt"}
