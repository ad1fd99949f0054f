"""The settlement offer step of the payment page: shown before the amount step on the
offer's link and the account's other links, paid through the usual method, review and
confirm steps and then settled; skippable or not (offers.allow_skip); and the page of an
offer that expired. The clock is March 10, 2026, 11:00 in Phoenix."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from linkpay.models import (
    Account,
    AuditEvent,
    Checkout,
    Message,
    OfferStatus,
    Payment,
)
from linkpay.services import links, offers
from tests.web.pay_flow import (
    CARD,
    DECLINED_CARD,
    Customer,
    count,
    form,
    link_token,
    make_account,
    make_link,
    plan_offer,
    text,
)

UTC = dt.UTC


@pytest.fixture
def account(db):
    return make_account(db)


def settlement(db, account, amount_cents=8_000, deadline=dt.date(2026, 3, 20)):
    offer = offers.create_settlement_offer(
        db, account, deadline=deadline, amount_cents=amount_cents, actor="staff:test"
    )
    db.commit()
    return offer


def offer_customer(client, db, account, **terms) -> tuple[Customer, object]:
    offer = settlement(db, account, **terms)
    return Customer(client, link_token(offer.link_id)), offer


def settle(customer: Customer, details=CARD):
    """Tap the offer's Pay button and go through method, review and confirm."""
    review = customer.past_tokenizer(customer.start("/settle"), details)
    return review, customer.confirm(review)


def test_the_offer_link_opens_on_the_offer(client, db, account):
    customer, _ = offer_customer(client, db, account)
    html = text(customer.open())
    assert "Pay $80.00 by March 20, 2026 to settle your balance of $124.50." in html
    assert "Pay $80.00</button>" in html and "Pay a different amount" in html
    assert 'name="amount"' not in html  # the amount step comes only after skipping
    spanish = text(customer.open(lang="es"))
    assert (
        "Pague $80.00 a más tardar el 20 de marzo de 2026 para liquidar su saldo de $124.50."
        in spanish
    )


def test_an_ordinary_link_of_the_account_opens_on_the_offer_too(client, db, account):
    settlement(db, account)
    customer = Customer(client, make_link(db, account)[1])
    assert "to settle your balance of $124.50" in text(customer.open())


def test_paying_the_offer_settles_the_balance(client, db, account):
    customer, offer = offer_customer(client, db, account)
    review, receipt = settle(customer)
    assert "You're paying $80.00 with Visa ending 4242." in text(review)
    html = text(receipt)
    assert "Thank you! Your payment is complete" in html
    assert "Your balance is settled" in html and "$0.00" in html
    db.expire_all()
    assert db.get(Account, account.id).balance_cents == 0
    assert db.get(type(offer), offer.id).status == OfferStatus.ACCEPTED
    event = db.scalar(select(AuditEvent).where(AuditEvent.action == "offer.settled"))
    assert event.details["forgiven_cents"] == 4_450 and event.details["paid_cents"] == 8_000
    assert "This bill is paid" in text(customer.open())


def test_a_declined_offer_payment_leaves_the_offer_open(client, db, account):
    customer, offer = offer_customer(client, db, account)
    _, receipt = settle(customer, DECLINED_CARD)
    assert "Your payment didn't go through" in text(receipt)
    db.expire_all()
    assert db.get(type(offer), offer.id).status == OfferStatus.OFFERED
    assert db.get(Account, account.id).balance_cents == 12_450
    assert "to settle your balance" in text(customer.open())


def test_when_skipping_is_allowed_another_amount_can_be_paid(client, db, account):
    customer, offer = offer_customer(client, db, account)
    html = text(customer.client.get(f"/p/{customer.token}?step=amount"))
    amount_form = form(html, "/amount")
    data = {**amount_form.fields, "amount": "50.00", "kind": "card"}
    method_page = customer.client.post(amount_form.action, data=data, follow_redirects=True)
    receipt = text(customer.confirm(customer.past_tokenizer(method_page, CARD)))
    assert "Thank you! Your payment is complete" in receipt and "settled" not in receipt
    db.expire_all()
    assert db.get(type(offer), offer.id).status == OfferStatus.OFFERED
    assert db.get(Account, account.id).balance_cents == 7_450


@pytest.fixture
def no_skipping(config_overrides):
    config_overrides["offers.allow_skip"] = False


def test_when_skipping_is_not_allowed_only_the_offer_is_offered(no_skipping, client, db, account):
    customer, _ = offer_customer(client, db, account)
    html = text(customer.open())
    assert "Pay a different amount" not in html and "Pay in installments" not in html
    assert "to settle your balance" in text(customer.client.get(f"/p/{customer.token}?step=amount"))
    refused = customer.client.post(
        f"/p/{customer.token}/amount",
        data={"csrf_token": form(html, "/settle").fields["csrf_token"], "amount": "5.00"},
    )
    assert refused.status_code == 303 and count(db, Checkout) == 0
    _, receipt = settle(customer)
    assert "Your balance is settled" in text(receipt)


def test_without_skipping_a_plan_offer_is_the_other_choice(no_skipping, client, db, account):
    installments = plan_offer(db, account)
    customer, _ = offer_customer(client, db, account)
    html = text(customer.open())
    assert (
        f'<a href="{links.link_url(installments.link_id)}">Pay in installments instead</a>' in html
    )


def test_an_expired_offer_link_says_so_and_offers_a_new_link(client, db, account, clock):
    customer, offer = offer_customer(client, db, account)
    clock.set(dt.datetime(2026, 3, 21, 7, 1, tzinfo=UTC))  # 00:01 on March 21 in Phoenix
    response = customer.open()
    html = text(response)
    assert response.status_code == 410 and "This offer has expired" in html
    assert "$" not in html and "Ana" not in html  # nothing of the account
    fresh = form(html, "/fresh")
    sent = text(customer.client.post(fresh.action, data=fresh.fields))
    assert "We've sent a new link" in sent
    assert count(db, Message, Message.kind == "fresh_link") == 1
    # The account's links pay the balance as usual: the offer is gone from them.
    ordinary = Customer(client, make_link(db, account)[1])
    assert 'name="amount"' in text(ordinary.open())


def test_an_offer_closed_while_the_page_was_open_goes_back_to_the_amount(client, db, account):
    customer, offer = offer_customer(client, db, account)
    ordinary = Customer(client, make_link(db, account)[1])
    html = text(ordinary.open())
    offers.close(db, offer, OfferStatus.CANCELLED, actor="staff:test")
    db.commit()
    pay_form = form(html, "/settle")
    response = ordinary.client.post(pay_form.action, data=pay_form.fields, follow_redirects=True)
    assert "That offer is no longer available." in text(response)
    assert count(db, Checkout) == 0 and count(db, Payment) == 0


@pytest.fixture
def zip_verification(config_overrides):
    config_overrides["links.verification"] = "zip"


def test_with_zip_verification_the_offer_waits_for_the_zip(zip_verification, client, db, account):
    customer, _ = offer_customer(client, db, account)
    html = text(customer.open())
    assert "Confirm it's you" in html and "$80.00" not in html
    assert customer.client.post(f"/p/{customer.token}/settle").status_code == 400  # CSRF
    settle_form_missing = customer.client.post(
        f"/p/{customer.token}/settle", data={"csrf_token": form(html, "/zip").fields["csrf_token"]}
    )
    assert settle_form_missing.status_code == 303 and count(db, Checkout) == 0
