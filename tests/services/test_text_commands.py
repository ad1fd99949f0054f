"""Pay by Text codes and charges: expiry, wrong codes, replacement, another phone's code,
exactly one charge per request (by the database), and finishing an unanswered charge."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from linkpay.commands import parse_sms
from linkpay.models import (
    AuditEvent,
    Payment,
    PaymentStatus,
    TextPaymentRequest,
    TextRequestStatus,
)
from linkpay.runtime import runtime
from linkpay.services import payments, settlement, text_commands, text_payments
from tests.webhooks.inbound_flow import (
    OTHER_PHONE,
    PHONE,
    Phone,
    code_in,
    enroll,
    make_account,
    payments_count,
)


@pytest.fixture(autouse=True)
def twilio(fake_twilio):
    return fake_twilio


@pytest.fixture
def account(db):
    account = make_account(db)
    enroll(db, account)
    return account


@pytest.fixture
def phone(fake_twilio, client, run_jobs):
    return Phone(client, fake_twilio, run_jobs)


def requests(db) -> list[TextPaymentRequest]:
    db.expire_all()
    return db.scalars(select(TextPaymentRequest).order_by(TextPaymentRequest.id)).all()


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def test_the_code_is_kept_only_as_an_hmac_bound_to_its_request(db, account, phone):
    code = code_in(phone.ask("PAY"))
    (request,) = requests(db)
    assert code not in request.code_hash
    assert request.code_hash == text_payments.code_hash(request.id, code)
    assert request.code_hash != text_payments.code_hash(request.id + 1, code)


def test_a_code_expires_after_ten_minutes(db, account, phone, clock, spy):
    code = code_in(phone.ask("PAY"))
    clock.advance(minutes=10)
    assert "expired" in phone.ask(code)
    assert spy.charges == [] and payments_count(db) == 0
    assert requests(db)[0].status == TextRequestStatus.EXPIRED


def test_a_code_just_inside_ten_minutes_still_pays(db, account, phone, clock, spy):
    code = code_in(phone.ask("PAY"))
    clock.advance(minutes=9, seconds=59)
    assert "We received your payment" in phone.ask(code)


def test_three_wrong_codes_cancel_the_request(db, account, phone, spy):
    code = code_in(phone.ask("PAY"))
    assert "2 tries left" in phone.ask(wrong(code))
    assert "1 try left" in phone.ask(wrong(code))
    assert "Too many wrong codes" in phone.ask(wrong(code))
    assert requests(db)[0].status == TextRequestStatus.CANCELLED
    assert "No payment is waiting" in phone.ask(code)  # the right code is now too late
    assert spy.charges == []


@pytest.fixture
def one_try(config_overrides):
    config_overrides["pay_by_text.max_wrong_codes"] = 1


def test_max_wrong_codes_is_configurable(one_try, db, account, phone):
    code = code_in(phone.ask("PAY"))
    assert "Too many wrong codes" in phone.ask(wrong(code))


def test_a_new_pay_replaces_the_older_request(db, account, phone, spy):
    first = code_in(phone.ask("PAY 10"))
    second = code_in(phone.ask("PAY 20"))
    old, new = requests(db)
    assert (old.status, new.status) == (TextRequestStatus.REPLACED, TextRequestStatus.PENDING)
    if first != second:
        assert "not right" in phone.ask(first)
    phone.ask(second)
    assert [c[1] for c in spy.charges] == [2_000]


def test_another_phones_code_is_rejected(db, account, phone, fake_twilio, client, run_jobs):
    code = code_in(phone.ask("PAY"))
    stranger = Phone(client, fake_twilio, run_jobs, number=OTHER_PHONE)
    assert "No payment is waiting" in stranger.ask(code)
    other = make_account(db, account_number="ACCT-30049012", phone=OTHER_PHONE)
    enroll(db, other, last4="3333")
    own = code_in(stranger.ask("PAY"))
    if own != code:  # one chance in a million that the two codes are the same
        assert "not right" in stranger.ask(code)
    assert payments_count(db) == 0
    assert requests(db)[0].status == TextRequestStatus.PENDING  # the owner's is untouched


def test_the_same_code_again_charges_nothing_and_says_nothing(db, account, phone, spy):
    code = code_in(phone.ask("PAY"))
    phone.ask(code)
    assert phone.text(code) == []
    assert phone.text(f"YES {code}") == []
    assert len(spy.charges) == 1 and payments_count(db) == 1


def test_the_charge_uses_the_requests_amount_and_an_idempotency_key(db, account, phone, spy):
    code = code_in(phone.ask("PAY 42.10"))
    phone.ask(code)
    (request,) = requests(db)
    ((_token, amount, key),) = spy.charges
    assert (amount, key) == (4_210, f"text-request-{request.id}")
    payment = db.scalar(select(Payment))
    assert (payment.text_request_id, payment.source) == (request.id, "sms")
    assert payment.saved_method_id == request.method_id
    actions = db.scalars(select(AuditEvent.action).where(AuditEvent.subject_id == payment.id))
    assert {"payment.attempted", "payment.paid"} <= set(actions)


def test_the_database_refuses_a_second_payment_for_one_request(db, account, phone):
    phone.ask(code_in(phone.ask("PAY 5")))
    first = db.scalar(select(Payment))
    twin = Payment(
        account_id=first.account_id,
        text_request_id=first.text_request_id,
        confirmation_number="LPTWIN0001",
        amount_cents=first.amount_cents,
        method_kind=first.method_kind,
        method_label=first.method_label,
        method_last4=first.method_last4,
        source="sms",
    )
    db.add(twin)
    with pytest.raises(IntegrityError):
        db.commit()
    db.rollback()


def test_a_balance_paid_elsewhere_since_pay_cancels_and_charges_nothing(db, account, phone, spy):
    code = code_in(phone.ask("PAY"))
    account.balance_cents = 1_000
    db.commit()
    reply = phone.ask(code)
    assert "Nothing was charged" in reply and "$10.00" in reply
    assert spy.charges == [] and payments_count(db) == 0
    assert requests(db)[0].status == TextRequestStatus.CANCELLED


def test_an_unanswered_charge_is_finished_by_the_sweep(db, account, phone, spy, clock):
    spy.unreachable = True
    assert phone.text(code_in(phone.ask("PAY"))) == []
    payment = db.scalar(select(Payment))
    assert payment.status == PaymentStatus.PROCESSING

    spy.unreachable = False
    clock.advance(minutes=6)
    with runtime().db.session() as session:
        assert payments.poll_unsettled(session) == 1
    with runtime().db.session() as session:
        settlement.settle(session, payment.id)
    phone.run_jobs()

    db.refresh(payment)
    assert payment.status == PaymentStatus.PAID
    keys = {key for _t, _a, key in spy.charges}
    assert keys == {f"text-request-{payment.text_request_id}"}  # asked again, same key
    assert payment.confirmation_number in phone.replies[-1]


def test_stop_cancels_the_pending_request(db, account, phone):
    code = code_in(phone.ask("PAY"))
    phone.text("STOP")
    assert requests(db)[0].status == TextRequestStatus.CANCELLED
    phone.text("START")
    assert "No payment is waiting" in phone.ask(code)
    assert payments_count(db) == 0


def test_handle_needs_a_phone(db):
    assert text_commands.handle(db, "", parse_sms("PAY")) is None
    assert PHONE
