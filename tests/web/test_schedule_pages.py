"""Scheduling a payment from the payment page: the date on the amount step (its window and
its errors, in English and Spanish), the same method and review steps, one scheduled
payment however often Confirm arrives, its page (Pending, then Paid or Declined), and
cancelling it from the link until the day before.

The clock is March 10, 2026, 11:00 in Phoenix: the window is March 11 to May 9."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import select

from linkpay.models import (
    AuditEvent,
    Checkout,
    Link,
    Payment,
    SavedMethod,
    ScheduledPayment,
    ScheduledPaymentStatus,
)
from linkpay.runtime import runtime
from linkpay.services import scheduled_payments, sweep
from tests.web.pay_flow import (
    BANK,
    CARD,
    DECLINED_CARD,
    IP,
    Customer,
    count,
    form,
    make_account,
    make_link,
    text,
)

UTC = dt.UTC


@pytest.fixture
def account(db):
    return make_account(db)


@pytest.fixture
def customer(client, db, account):
    return Customer.on_a_phone(client, make_link(db, account)[1])


def rows(db) -> list[ScheduledPayment]:
    db.expire_all()
    return db.scalars(select(ScheduledPayment).order_by(ScheduledPayment.id)).all()


def choose_later(customer: Customer, on: str, amount: str = "50.00", kind: str = "card"):
    """Submit the amount step with a date; returns the page after it (followed)."""
    return customer.choose(amount, kind, on=on)


def review_later(customer: Customer, on: str, details=CARD, amount="50.00", kind="card"):
    return customer.review(amount, kind, details, on=on)


def schedule(customer: Customer, on: str = "2026-03-20", details=CARD, **choice):
    return customer.confirm(review_later(customer, on, details, **choice))


def charge_due(clock, day: dt.date) -> None:
    """Move to 09:00 Phoenix (16:00 UTC) on ``day`` and run the sweep and its jobs."""
    clock.set(dt.datetime.combine(day, dt.time(16, 1), tzinfo=UTC))
    sweep.run(runtime().db)
    runtime().queue.drain()


def test_the_amount_step_has_a_labelled_date_with_the_last_allowed_day(customer):
    html = text(customer.open())
    assert '<label for="on">Pay on a later date (optional)</label>' in html
    assert 'type="date" min="2026-03-11" max="2026-05-09"' in html
    assert "from March 11, 2026 to May 9, 2026 (the last date allowed)" in html
    spanish = text(customer.open(lang="es"))
    assert "del 11 de marzo de 2026 al 9 de mayo de 2026 (la última fecha permitida)" in spanish
    assert '<label for="on">Pagar en una fecha posterior (opcional)</label>' in spanish


def test_scheduling_goes_through_method_and_review_and_shows_pending(customer, db, account):
    review = review_later(customer, "2026-03-20")
    html = text(review)
    assert "You're scheduling $50.00 with Visa ending 4242 for March 20, 2026." in html
    assert "Confirm: schedule $50.00 for March 20, 2026" in html
    assert "Pay by Text" not in html  # nothing is paid yet, so nothing to save for it
    confirm = customer.confirm_form(review)
    done = customer.client.post(confirm.action, data=confirm.fields)
    assert done.status_code == 303 and "/done?c=" in done.headers["Location"]
    html = text(customer.client.get(done.headers["Location"]))
    assert "Your payment is scheduled" in html and "Pending" in html
    assert "March 20, 2026" in html and "Visa ending 4242" in html
    assert "You can cancel it until the end of March 19, 2026." in html

    [row] = rows(db)
    assert (row.amount_cents, row.charge_on) == (5_000, dt.date(2026, 3, 20))
    assert row.status == ScheduledPaymentStatus.PENDING
    assert row.due_at == dt.datetime(2026, 3, 20, 16, tzinfo=UTC)  # 09:00 in Phoenix
    method = db.get(SavedMethod, row.saved_method_id)
    assert (method.label, method.last4, method.is_default) == ("Visa", "4242", False)
    assert count(db, Payment) == 0
    db.refresh(account)
    assert account.balance_cents == 12_450  # nothing is taken until the day
    event = db.scalar(select(AuditEvent).where(AuditEvent.action == "scheduled_payment.created"))
    assert event.ip == IP and event.details["charge_on"] == "2026-03-20"


def test_confirm_sent_twice_schedules_once(customer, db):
    confirm = customer.confirm_form(review_later(customer, "2026-03-20"))
    first = customer.client.post(confirm.action, data=confirm.fields)
    second = customer.client.post(confirm.action, data=confirm.fields)
    assert first.headers["Location"] == second.headers["Location"]
    assert len(rows(db)) == 1
    # Back to the review step of a scheduled checkout: its page is the scheduled payment.
    again = customer.client.get(first.headers["Location"].replace("/done", "/review"))
    assert again.status_code == 303 and "/done" in again.headers["Location"]


def test_a_bank_account_can_be_scheduled_with_its_own_authorization(customer, db):
    html = text(review_later(customer, "2026-04-01", BANK, kind="bank"))
    assert "to debit $50.00 from this bank account once, on April 1, 2026." in html
    assert "once, today" not in html


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        (
            "2026-03-10",
            "To pay today, leave the date empty. The first date you can choose is March 11, 2026.",
        ),
        ("2026-03-01", "To pay today, leave the date empty."),
        ("2026-05-10", "The last date you can choose is May 9, 2026."),
        ("next week", "Enter the date like this: 03/11/2026."),
        ("2026-02-30", "Enter the date like this: 03/11/2026."),
    ],
)
def test_a_date_that_cannot_be_used_is_explained_and_nothing_is_lost(customer, db, typed, message):
    response = choose_later(customer, typed, amount="42.00")
    html = text(response)
    assert response.status_code == 400
    assert message in html and 'role="alert" id="on-error"' in html
    assert 'value="42.00"' in html and 'aria-invalid="true"' in html
    assert count(db, Checkout) == 0


def test_a_typed_date_is_read_in_the_page_language(customer, db):
    schedule(customer, "03/20/2026")  # month first in English
    customer.open(lang="es")
    schedule(customer, "25/03/2026")  # day first in Spanish
    assert [row.charge_on for row in rows(db)] == [dt.date(2026, 3, 20), dt.date(2026, 3, 25)]


def test_spanish_date_errors(customer):
    customer.open(lang="es")
    html = text(choose_later(customer, "2026-06-01"))
    assert "La última fecha que puede elegir es el 9 de mayo de 2026." in html
    html = text(choose_later(customer, "mañana"))
    assert "Escriba la fecha así: 11/03/2026." in html


def test_the_link_stays_open_until_a_week_after_the_charge(customer, db, clock):
    schedule(customer, "2026-05-01")
    link = db.scalar(select(Link))
    db.refresh(link)
    assert link.expires_at == dt.datetime(2026, 5, 8, 16, tzinfo=UTC)
    clock.set(dt.datetime(2026, 4, 20, tzinfo=UTC))  # far past the link's own 72 hours
    html = text(customer.open())
    assert "Scheduled payments" in html and "$50.00 on May 1, 2026" in html


def test_cancel_asks_first_then_cancels_with_a_csrf_post(customer, db):
    schedule(customer)
    [row] = rows(db)
    page = text(customer.client.get(f"/p/{customer.token}/scheduled/{row.id}"))
    question = form(page, "/cancel")
    assert question.method == "get"
    asked = text(customer.client.get(question.action))
    assert "Cancel this payment?" in asked
    assert "Your payment of $50.00 scheduled for March 20, 2026 will not be charged." in asked
    assert rows(db)[0].status == ScheduledPaymentStatus.PENDING  # asking changes nothing

    yes = form(asked, "/cancel")
    assert customer.client.post(yes.action, data={}).status_code == 400  # no CSRF token
    assert rows(db)[0].status == ScheduledPaymentStatus.PENDING
    html = text(customer.client.post(yes.action, data=yes.fields, follow_redirects=True))
    assert "This scheduled payment was cancelled" in html and "It will not be charged." in html
    assert rows(db)[0].status == ScheduledPaymentStatus.CANCELLED
    assert count(db, AuditEvent, AuditEvent.action == "scheduled_payment.cancelled") == 1
    # A second tap changes nothing more.
    customer.client.post(yes.action, data=yes.fields)
    assert count(db, AuditEvent, AuditEvent.action == "scheduled_payment.cancelled") == 1
    assert "Scheduled payments" not in text(customer.open())


def test_on_its_day_it_can_no_longer_be_cancelled(customer, db, clock):
    schedule(customer, "2026-03-12")
    [row] = rows(db)
    question_url = f"/p/{customer.token}/scheduled/{row.id}/cancel"
    asked = text(customer.client.get(question_url))
    yes = form(asked, "/cancel")
    clock.set(dt.datetime(2026, 3, 12, 14, tzinfo=UTC))  # 07:00 on the day, before the charge
    page = text(customer.client.get(f"/p/{customer.token}/scheduled/{row.id}"))
    assert "Cancel this payment" not in page
    late = customer.client.post(yes.action, data=yes.fields)
    assert late.status_code == 409
    assert "the last day to cancel was March 11, 2026" in text(late)
    assert rows(db)[0].status == ScheduledPaymentStatus.PENDING


def test_after_its_day_the_page_shows_paid(customer, db, clock):
    done = schedule(customer)
    charge_due(clock, dt.date(2026, 3, 20))
    [row] = rows(db)
    assert row.status == ScheduledPaymentStatus.PAID
    html = text(customer.client.get(done.request.url))
    payment = db.scalar(select(Payment))
    assert "Your scheduled payment is complete" in html and "Paid" in html
    assert payment.confirmation_number in html and "$74.50" in html  # remaining balance


def test_a_declined_one_shows_declined_with_a_way_to_pay_another_way(customer, db, clock):
    done = schedule(customer, details=DECLINED_CARD)
    charge_due(clock, dt.date(2026, 3, 20))
    assert rows(db)[0].status == ScheduledPaymentStatus.DECLINED
    html = text(customer.client.get(done.request.url))
    assert "Your scheduled payment didn't go through" in html and "Declined" in html
    assert "No money was taken." in html
    assert f'href="/p/{customer.token}?step=amount"' in html
    assert "Hi Ana" in text(customer.client.get(f"/p/{customer.token}?step=amount"))


def test_paying_the_whole_balance_on_the_day_keeps_its_page(customer, db, clock):
    done = schedule(customer, amount="124.50")
    charge_due(clock, dt.date(2026, 3, 20))
    db.expire_all()
    assert db.scalar(select(Link.status)) == "used"
    html = text(customer.client.get(done.request.url))
    assert "Your scheduled payment is complete" in html and "$0.00" in html


def test_a_day_gone_by_before_confirm_asks_for_the_date_again(customer, db, clock):
    review = review_later(customer, "2026-03-11")
    clock.set(dt.datetime(2026, 3, 11, 8, tzinfo=UTC))  # 01:00 on March 11 in Phoenix
    confirm = customer.confirm_form(review)
    response = customer.client.post(confirm.action, data=confirm.fields)
    assert response.status_code == 303 and "notice=date_changed" in response.headers["Location"]
    html = text(customer.client.get(response.headers["Location"]))
    assert "The date you chose can no longer be used" in html
    assert rows(db) == []


def test_another_browser_or_link_sees_nothing(client, app, db, customer, account, config_overrides):
    schedule(customer)
    [row] = rows(db)
    stranger = app.test_client()
    page = f"/p/{customer.token}/scheduled/{row.id}"
    # Without verification anyone with the link sees its page, as they see the bill.
    assert stranger.get(page).status_code == 200
    other = make_account(db, account_number="ACCT-2", phone="+16025550199")
    _, other_token = make_link(db, other)
    wrong = stranger.get(f"/p/{other_token}/scheduled/{row.id}")
    assert wrong.status_code == 303 and wrong.headers["Location"].endswith(f"/p/{other_token}")


@pytest.fixture
def zip_verification(config_overrides):
    config_overrides["links.verification"] = "zip"


def test_with_zip_verification_nothing_shows_before_the_zip(zip_verification, client, db):
    account = make_account(db)
    token = make_link(db, account)[1]
    customer = Customer(client, token)
    zip_form = form(text(customer.open()), "/zip")
    customer.client.post(zip_form.action, data={**zip_form.fields, "zip": "85004"})
    schedule(customer)
    [row] = rows(db)
    stranger = customer.client.application.test_client()
    for path in (f"/p/{token}/scheduled/{row.id}", f"/p/{token}/scheduled/{row.id}/cancel"):
        response = stranger.get(path)
        assert response.status_code == 303 and response.headers["Location"].endswith(f"/p/{token}")
    stranger_page = text(stranger.get(f"/p/{token}"))
    assert "Confirm it's you" in stranger_page and "$50.00" not in stranger_page
    assert stranger.post(f"/p/{token}/scheduled/{row.id}/cancel").status_code == 400  # CSRF
    assert rows(db)[0].status == ScheduledPaymentStatus.PENDING


def test_concurrent_confirms_of_one_checkout_schedule_once(app, customer, db):
    review_later(customer, "2026-03-20")
    checkout_id = db.scalar(select(Checkout.id))
    results, errors = [], []
    barrier = threading.Barrier(4)

    def schedule_in_thread():
        with app.app_context(), runtime().db.session() as session:
            barrier.wait()
            try:
                checkout = session.get(Checkout, checkout_id)
                row = scheduled_payments.schedule_checkout(session, checkout)
                session.commit()
                results.append(row.id)
            except Exception as exc:  # collected, so the assertion below names it
                errors.append(exc)

    threads = [threading.Thread(target=schedule_in_thread) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(results) == 4 and len(set(results)) == 1
    assert len(rows(db)) == 1 and count(db, SavedMethod) == 1
