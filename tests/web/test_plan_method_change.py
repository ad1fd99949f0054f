"""Replacing a signed plan's method from the customer's link: "Update payment method" after
a decline, the card or bank inputs through the tokenizer, the confirmation saying what the
new method pays next, and the plan page with the new method and the next payment. The
clock is March 10, 2026, 11:00 in Phoenix; the $124.50 balance is three monthly payments
from March 31, signed with a card the gateway declines."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from linkpay.models import (
    AuditEvent,
    Installment,
    InstallmentStatus,
    Message,
    Payment,
    Plan,
    PlanFrequency,
)
from linkpay.services import links, plans
from tests.web.pay_flow import BANK, CARD, DECLINED_CARD, Customer, form, make_account, token_of
from tests.web.test_plan_pages import charge_due, sign

IP, UA = "203.0.113.9", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0)"
MASTERCARD = {**CARD, "number": "5555 5555 5555 4444"}
MARCH_31 = dt.date(2026, 3, 31)


def text(response) -> str:
    return response.get_data(as_text=True)


def count(db, model, *where) -> int:
    db.expire_all()
    return db.scalar(select(func.count()).select_from(model).where(*where))


@pytest.fixture
def customer(client, db):
    account = make_account(db)
    offer = plans.create_plan_offer(
        db,
        account,
        installments=3,
        frequency=PlanFrequency.MONTHLY,
        first_date=MARCH_31,
        expires_in_days=7,
        channel="both",
        actor="staff:test",
    )
    db.commit()
    client.environ_base.update(REMOTE_ADDR=IP, HTTP_USER_AGENT=UA)
    return Customer(client, token_of(links.link_url(offer.link_id)))


@pytest.fixture
def declined(customer, clock):
    """The plan signed with a card that is declined on March 31; the retry waits."""
    sign(customer, details=DECLINED_CARD)
    charge_due(clock, MARCH_31)
    return customer


def method_page(customer: Customer, kind: str | None = None):
    start = form(text(customer.open()), "/plan/change-method")
    data = {**start.fields, **({"kind": kind} if kind else {})}
    return customer.client.post(start.action, data=data, follow_redirects=True)


def confirmation(customer: Customer, details=MASTERCARD, kind: str | None = None):
    answer = customer.tokenize(method_page(customer, kind), details)
    assert answer.status_code == 303
    return customer.client.get(answer.headers["Location"])


def installments(db) -> list[Installment]:
    db.expire_all()
    return list(db.scalars(select(Installment).order_by(Installment.sequence)))


def test_after_a_decline_the_plan_page_leads_to_a_new_method_and_the_retry_uses_it(
    declined, db, clock
):
    html = text(declined.open())
    assert "A payment was declined. Update your payment method" in html
    assert ">Update payment method</button>" in html

    page = text(method_page(declined))
    assert '<label for="number">Card number</label>' in page
    assert "You'll confirm the change on the next page." in page
    assert "Pay from a bank account instead" in page

    review = confirmation(declined)
    assert review.status_code == 200
    html = text(review)
    assert "Use this payment method for your plan?" in html
    assert "Mastercard ending 4444" in html and "Visa ending 0002" in html
    assert "The declined payment of $41.50 will be tried again with the new method" in html
    assert count(db, AuditEvent, AuditEvent.action == "plan.method_changed") == 0

    confirm = form(html, "/newmethod")
    done = declined.client.post(confirm.action, data=confirm.fields)
    assert done.status_code == 303 and done.headers["Location"].endswith("notice=method_changed")
    html = text(declined.client.get(done.headers["Location"]))
    assert "Your payment method is updated." in html
    assert "Mastercard ending 4444" in html
    assert "Next payment</dt><dd>$41.50 on March 31, 2026" in html
    assert "A payment was declined." not in html

    [event] = db.scalars(select(AuditEvent).where(AuditEvent.action == "plan.method_changed"))
    assert (event.ip, event.user_agent, event.details["last4"]) == (IP, UA, "4444")
    clock.advance(minutes=1)
    charge_due(clock, MARCH_31)  # the next sweep, the same day
    first, second, _ = installments(db)
    assert first.status == InstallmentStatus.PAID and first.attempts == 2
    assert second.status == InstallmentStatus.PENDING
    retry = db.scalar(select(Payment).where(Payment.installment_attempt == 2))
    assert (retry.method_label, retry.method_last4) == ("Mastercard", "4444")
    html = text(declined.open())
    assert 'class="status-paid">Paid</td>' in html
    assert "Next payment</dt><dd>$41.50 on April 30, 2026" in html
    assert "A payment was declined." not in html


def test_the_pages_are_in_spanish(declined):
    assert "Actualizar forma de pago" in text(declined.open(lang="es"))
    html = text(confirmation(declined))
    assert "¿Usar esta forma de pago para su plan?" in html
    assert "Mastercard que termina en 4444" in html
    assert "se volverá a intentar con la nueva forma de pago en unos minutos" in html
    confirm = form(html, "/newmethod")
    page = declined.client.post(confirm.action, data=confirm.fields, follow_redirects=True)
    assert "Su forma de pago está actualizada." in text(page)
    assert "Próximo pago" in text(page)


def test_a_bank_account_can_replace_the_card(declined, db):
    review = confirmation(declined, details=BANK, kind="bank")
    assert "bank account ending 6789" in text(review)
    confirm = form(text(review), "/newmethod")
    html = text(declined.client.post(confirm.action, data=confirm.fields, follow_redirects=True))
    assert "bank account ending 6789" in html
    db.expire_all()
    assert db.scalar(select(Plan)).method.last4 == "6789"


def test_every_post_needs_its_csrf_token(declined, db):
    start = form(text(declined.open()), "/plan/change-method")
    assert declined.client.post(start.action, data={"kind": "card"}).status_code == 400
    confirm = form(text(confirmation(declined)), "/newmethod")
    refused = declined.client.post(confirm.action, data={"c": confirm.fields["c"]})
    assert refused.status_code == 400
    db.expire_all()
    assert db.scalar(select(Plan)).method.last4 == "0002"


def test_confirming_twice_changes_once(declined, db):
    confirm = form(text(confirmation(declined)), "/newmethod")
    first = declined.client.post(confirm.action, data=confirm.fields)
    second = declined.client.post(confirm.action, data=confirm.fields)
    assert first.headers["Location"] == second.headers["Location"]
    assert count(db, AuditEvent, AuditEvent.action == "plan.method_changed") == 1


def test_a_mistyped_card_comes_back_explained_and_changes_nothing(declined, db):
    answer = declined.tokenize(method_page(declined), {**MASTERCARD, "number": "5555"})
    page = declined.client.get(answer.headers["Location"], follow_redirects=True)
    assert "/plan/change-method" in page.request.path
    assert "Please check what you entered:" in text(page)
    db.expire_all()
    assert db.scalar(select(Plan)).method.last4 == "0002"


def test_another_browser_cannot_use_a_copied_method_step(declined, client, app, db):
    review = confirmation(declined)
    public_id = form(text(review), "/newmethod").fields["c"]
    with app.test_client() as other:
        response = other.get(f"/p/{declined.token}/newmethod", query_string={"c": public_id})
        assert response.status_code == 303 and response.headers["Location"].endswith(declined.token)


def test_a_cancelled_plan_offers_no_update(declined, db):
    plans.cancel_plan(db, db.scalar(select(Plan)), actor="staff:test")
    db.commit()
    html = text(declined.open())
    assert "Update payment method" not in html
    response = declined.client.get(f"/p/{declined.token}/plan/change-method?c=x")
    assert response.status_code == 303 and response.headers["Location"].endswith("/plan")


def test_a_plan_cancelled_while_confirming_keeps_its_method(declined, db):
    confirm = form(text(confirmation(declined)), "/newmethod")
    plans.cancel_plan(db, db.scalar(select(Plan)), actor="staff:test")
    db.commit()
    response = declined.client.post(confirm.action, data=confirm.fields)
    assert response.status_code == 303 and response.headers["Location"].endswith("/plan")
    db.expire_all()
    assert db.scalar(select(Plan)).method.last4 == "0002"
    assert count(db, AuditEvent, AuditEvent.action == "plan.method_changed") == 0


def test_an_active_plan_without_a_decline_can_still_update_quietly(customer):
    html = text(sign(customer))
    assert "A payment was declined." not in html
    assert 'class="secondary">Update payment method</button>' in html
    assert "Next payment</dt><dd>$41.50 on March 31, 2026" in html


def test_the_decline_notice_points_to_the_update(declined, db):
    db.expire_all()
    email = db.scalar(
        select(Message).where(Message.kind == "installment_declined", Message.channel == "email")
    )
    assert 'choose "Update payment method"' in email.body
    sms = db.scalar(
        select(Message).where(Message.kind == "installment_declined", Message.channel == "sms")
    )
    url = next(word for word in sms.body.split() if word.startswith("https://"))
    opened = Customer(declined.client, token_of(url)).open()
    assert ">Update payment method</button>" in text(opened)


@pytest.fixture
def zip_verification(config_overrides):
    config_overrides["links.verification"] = "zip"


def test_with_zip_verification_the_update_waits_for_the_zip(zip_verification, customer, clock):
    zip_form = form(text(customer.open()), "/zip")
    customer.client.post(zip_form.action, data={**zip_form.fields, "zip": "85004"})
    sign(customer, details=DECLINED_CARD)
    charge_due(clock, MARCH_31)
    assert ">Update payment method</button>" in text(customer.open())
    # Another browser has not proven the ZIP: the link's first page, nothing of the plan.
    fresh = customer.client.application.test_client()
    for path in ("/plan/change-method?c=x", "/newmethod?c=x"):
        response = fresh.get(f"/p/{customer.token}{path}")
        assert response.status_code == 303
        assert response.headers["Location"].endswith(customer.token)
    html = text(fresh.get(f"/p/{customer.token}"))
    assert "Confirm it's you" in html and "Update payment method" not in html
