"""The payment page journey with Flask's test client: amount, method (through the sandbox
tokenizer), review, confirm, receipt; in English and Spanish; headers, CSRF, page weight,
and no card or bank number anywhere but the tokenizer's request."""

from __future__ import annotations

import datetime as dt
import gzip
import logging
import re

import pytest
from sqlalchemy import String, Text, func, select

from linkpay.gateways import GatewayError, gateway
from linkpay.models import (
    Account,
    Base,
    Link,
    LinkStatus,
    Message,
    MessageStatus,
    Payment,
    PaymentStatus,
)
from linkpay.runtime import runtime
from linkpay.services import sweep
from tests.web.pay_flow import (
    BANK,
    CARD,
    DECLINED_CARD,
    NO_FUNDS_CARD,
    Customer,
    form,
    make_account,
    make_link,
    query,
)

LABELS = {
    "en": ["Amount", "Card number", "Expiration", "CVC", "Name on card"],
    "es": ["Monto", "Número de tarjeta", "Vencimiento", "CVC", "Nombre en la tarjeta"],
}
BANK_LABELS = {
    "en": ["Routing number", "Account number"],
    "es": ["Número de ruta", "Número de cuenta"],
}


@pytest.fixture
def account(db):
    return make_account(db)


@pytest.fixture
def customer(client, db, account):
    return Customer(client, make_link(db, account)[1])


def text(response) -> str:
    return response.get_data(as_text=True)


def labels(html: str) -> list[str]:
    return [re.sub(r"<[^>]+>", "", m) for m in re.findall(r"<label[^>]*>(.*?)</label>", html)]


def payments(db) -> list[Payment]:
    db.expire_all()
    return db.scalars(select(Payment).order_by(Payment.id)).all()


def test_amount_page_shows_first_name_balance_and_due_date(customer):
    html = text(customer.open())
    assert "Hi Ana" in html and "Diaz" not in html
    assert "$124.50" in html and "March 25, 2026" in html
    amount = form(html, "/amount")
    assert amount.fields["amount"] == "124.50"  # prefilled with the full balance
    assert amount.fields["kind"] == "card" and amount.fields["csrf_token"]


def test_every_label_is_tied_to_its_input(customer):
    method = text(customer.choose())
    for label_for in re.findall(r'<label[^>]*for="([^"]+)"', method):
        assert f'id="{label_for}"' in method
    for hint in ('autocomplete="cc-number"', 'autocomplete="cc-exp"', 'autocomplete="cc-csc"'):
        assert hint in method
    assert 'autocomplete="cc-name"' in method and 'inputmode="numeric"' in method


@pytest.mark.parametrize("lang", ["en", "es"])
def test_labels_follow_the_contract_in_both_languages(client, db, lang):
    account = make_account(db, language=lang)
    customer = Customer(client, make_link(db, account)[1])
    amount_page = text(customer.open())
    assert any(LABELS[lang][0] in label for label in labels(amount_page))
    card_labels = " | ".join(labels(text(customer.choose())))
    for word in LABELS[lang][1:]:
        assert word in card_labels
    bank_labels = " | ".join(labels(text(customer.choose(kind="bank"))))
    for word in BANK_LABELS[lang]:
        assert word in bank_labels
    review = text(customer.review())
    button = re.search(r'<button type="submit">([^<]*)</button>', review)[1]
    assert ("Confirmar" if lang == "es" else "Confirm") in button


def test_spanish_reads_naturally_and_switches_back_in_one_tap(client, db):
    account = make_account(db, language="es")
    customer = Customer(client, make_link(db, account)[1])
    html = text(customer.open())
    assert '<html lang="es">' in html
    assert "Hola, Ana" in html and "Saldo" in html and "Fecha de vencimiento" in html
    assert "25 de marzo de 2026" in html and "¿Cómo desea pagar?" in html
    switch = re.search(r'<a class="lang" href="([^"]+)"', html)[1]
    assert "lang=en" in switch
    english = text(client.get(switch.replace("&amp;", "&")))
    assert '<html lang="en">' in english and "Balance" in english


def test_the_chosen_language_stays_for_the_next_steps(customer):
    assert "Saldo" in text(customer.open(lang="es"))
    method = text(customer.choose())
    assert "Número de tarjeta" in method


def test_paying_by_card_shows_a_printable_receipt(customer, db, account):
    review = text(customer.review())
    assert "You're paying $124.50 with Visa ending 4242." in review
    receipt = customer.pay()
    html = text(receipt)
    [payment] = payments(db)
    assert payment.status == PaymentStatus.PAID
    assert "Thank you! Your payment is complete" in html
    assert payment.confirmation_number in html and "$124.50" in html
    assert "Visa ending 4242" in html
    assert "March 10, 2026, 11:00" in html and "MST" in html  # 18:00 UTC in Phoenix
    assert "•••• 6789" in html and "ACCT-10046789" not in html
    assert "@media print" in open_css(customer.client)


def test_a_partial_amount_is_paid_and_the_rest_stays_due(customer, db, account):
    customer.pay(amount="$20")
    db.expire_all()
    assert db.get(Account, account.id).balance_cents == 10_450
    assert "$104.50" in text(customer.open())


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("0.99", "The smallest payment is $1.00."),
        ("124.51", "You can pay up to your balance of $124.50."),
        ("twelve", "Enter an amount in dollars and cents"),
        ("1.234", "Enter an amount in dollars and cents"),
    ],
)
def test_amounts_out_of_range_are_explained(customer, db, typed, message):
    response = customer.choose(amount=typed)
    assert response.status_code == 400
    html = text(response)
    assert message in html and f'value="{typed}"' in html  # what they typed is kept
    assert payments(db) == []


def test_paying_by_bank_is_pending_and_says_so(customer, db):
    html = text(customer.pay(kind="bank"))
    [payment] = payments(db)
    assert payment.status == PaymentStatus.PENDING
    assert "on its way" in html and "bank account ending 6789" in html


def test_a_double_submitted_confirm_charges_once(customer, db):
    review = customer.review()
    confirm = customer.confirm_form(review)
    first = customer.client.post(confirm.action, data=confirm.fields)
    second = customer.client.post(confirm.action, data=confirm.fields)
    assert first.status_code == second.status_code == 303
    assert first.headers["Location"] == second.headers["Location"]
    assert len(payments(db)) == 1
    receipt = text(customer.client.get(second.headers["Location"]))
    assert payments(db)[0].confirmation_number in receipt


def test_back_to_the_review_page_after_paying_shows_the_receipt(customer, db):
    review = customer.review()
    confirm = customer.confirm_form(review)
    customer.client.post(confirm.action, data=confirm.fields)
    again = customer.client.get(review.request.full_path)
    assert again.status_code == 303 and "/done?" in again.headers["Location"]
    assert len(payments(db)) == 1


@pytest.mark.parametrize(
    ("card", "explained"),
    [(DECLINED_CARD, "Your card was declined."), (NO_FUNDS_CARD, "insufficient funds")],
)
def test_a_decline_explains_itself_and_another_method_pays(customer, db, account, card, explained):
    html = text(customer.pay(details=card))
    assert explained in html and "No money was taken." in html
    retry = form(html, "/retry")
    assert ("kind", "bank") in retry.buttons and ("kind", "card") in retry.buttons
    method = customer.client.post(
        retry.action, data={**retry.fields, "kind": "bank"}, follow_redirects=True
    )
    answer = customer.tokenize(method, BANK)
    review = customer.client.get(answer.headers["Location"])
    confirm = customer.confirm_form(review)
    customer.client.post(confirm.action, data=confirm.fields)
    statuses = [p.status for p in payments(db)]
    assert statuses == [PaymentStatus.DECLINED, PaymentStatus.PENDING]
    db.expire_all()
    assert db.get(Account, account.id).balance_cents == 0


def test_tokenizer_errors_come_back_without_the_number(customer, db):
    method = customer.choose(amount="50")
    bad = {**CARD, "number": "4242 4242 4242 4241", "expiry": "01/20", "cvc": "12"}
    answer = customer.tokenize(method, bad)
    assert answer.status_code == 303
    location = answer.headers["Location"]
    assert "4241" not in location and "424242" not in location
    assert query(location)["errors"] == "card_number,expiry,cvc"
    page = customer.client.get(location, follow_redirects=True)
    html = text(page)
    assert "Check the card number" in html and "MM/YY" in html and "3 or 4 digit" in html
    assert "4241" not in html and "You're paying $50.00." in html  # the amount is kept
    assert html.count('aria-invalid="true"') == 3


def test_a_checkout_id_copied_to_another_browser_shows_nothing(app, customer, db):
    review = customer.review()
    stranger = app.test_client()
    response = stranger.get(review.request.full_path)
    assert response.status_code == 303 and "/done" not in response.headers["Location"]
    html = text(stranger.get(response.headers["Location"]))
    assert "ending 4242" not in html
    confirm = customer.confirm_form(review)
    stranger.post(confirm.action, data=confirm.fields)  # no CSRF token of its own, no checkout
    assert payments(db) == []


def test_state_changing_forms_need_the_csrf_token(customer, db):
    review = customer.review()
    confirm = customer.confirm_form(review)
    without = {k: v for k, v in confirm.fields.items() if k != "csrf_token"}
    response = customer.client.post(confirm.action, data=without)
    assert response.status_code == 400 and "This page has expired" in text(response)
    assert payments(db) == []
    amount = form(text(customer.open()), "/amount")
    assert customer.client.post(amount.action, data={"amount": "5"}).status_code == 400


def test_payment_pages_carry_the_security_headers(customer):
    pages = [customer.open(), customer.choose()]
    pages.append(customer.review())
    pages.append(customer.pay())
    pages.append(customer.open())  # now the "paid" page
    for response in pages:
        policy = response.headers["Content-Security-Policy"]
        for directive in ("frame-ancestors 'none'", "object-src 'none'", "base-uri 'none'"):
            assert directive in policy
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert response.headers["Cache-Control"] == "no-store"
        html = text(response)
        assert "<script" not in html and "style=" not in html and "<style" not in html
        assert "http://" not in html and "https://" not in html  # nothing from elsewhere


def open_css(client) -> str:
    return client.get("/static/pay.css").get_data(as_text=True)


def test_first_load_is_under_14_kb_compressed(customer):
    html = customer.open().get_data()
    css = customer.client.get("/static/pay.css").get_data()
    size = len(gzip.compress(html)) + len(gzip.compress(css))
    print(f"first load: {len(html) + len(css)} bytes, {size} bytes gzipped")
    assert size < 14 * 1024


def test_no_card_or_bank_number_is_stored_or_logged(client, db, caplog):
    caplog.set_level(logging.DEBUG)
    for kind, details in (("card", CARD), ("bank", BANK)):
        account = make_account(db, account_number=f"NUM-{kind}", balance_cents=5_000)
        Customer(client, make_link(db, account)[1]).pay(kind=kind, details=details)
    assert db.scalar(select(func.count()).select_from(Payment)) == 2
    secrets = ["4242424242424242", "4242 4242 4242 4242", "000123456789"]
    for table in Base.metadata.sorted_tables:
        columns = [
            c for c in table.columns if isinstance(c.type, String | Text) or c.name == "details"
        ]
        for row in db.execute(select(*columns)) if columns else []:
            flat = " ".join(str(value) for value in row)
            assert not any(secret in flat for secret in secrets), table.name
    assert not any(secret in caplog.text for secret in secrets)


def test_paying_the_balance_uses_the_link_up(customer, db):
    customer.pay()
    db.expire_all()
    assert db.scalar(select(Link.status)) == LinkStatus.USED
    html = text(customer.open())
    assert "This bill is paid" in html and "$124.50" not in html and "Ana" not in html


def test_an_unanswered_charge_shows_a_page_that_checks_again(customer, db, monkeypatch):
    def no_answer(*args):
        raise GatewayError("timed out")

    review = customer.review()  # the gateway is built (and cached) by now
    monkeypatch.setattr(gateway(), "charge", no_answer)
    confirm = customer.confirm_form(review)
    html = text(customer.client.post(confirm.action, data=confirm.fields, follow_redirects=True))
    assert "We're confirming your payment" in html
    assert '<meta http-equiv="refresh" content="3">' in html
    assert [p.status for p in payments(db)] == [PaymentStatus.PROCESSING]


def test_a_payment_taken_while_redis_is_down_shows_its_receipt_and_the_notice_follows(
    customer, db, account, redis_down, clock, run_jobs
):
    receipt = customer.pay()

    assert receipt.status_code == 200
    assert "Thank you! Your payment is complete" in text(receipt)
    [payment] = payments(db)
    assert payment.status == PaymentStatus.PAID
    assert _waiting_messages(db) > 0  # the receipt, its job not queued

    redis_back = redis_down
    redis_back()
    clock.current += dt.timedelta(minutes=11)
    sweep.run(runtime().db)
    run_jobs()
    assert _waiting_messages(db) == 0


def _waiting_messages(db) -> int:
    db.expire_all()
    return db.scalar(select(func.count(Message.id)).where(Message.status == MessageStatus.QUEUED))
