"""A payment plan from the customer's link: the offer's schedule, the method through the
tokenizer, the agreement shown word for word, the signature (name, time, IP, user agent,
text and version recorded), the plan page with each installment's status, cancelling from
the link, and the offer's end. The clock is March 10, 2026, 11:00 in Phoenix; the $124.50
balance is offered as three monthly payments from March 31."""

from __future__ import annotations

import datetime as dt
import glob
import html as markup

import pytest
from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po
from sqlalchemy import select

from linkpay import ROOT
from linkpay.models import (
    AuditEvent,
    Checkout,
    Installment,
    InstallmentStatus,
    Message,
    Payment,
    Plan,
    PlanStatus,
    SavedMethod,
)
from linkpay.runtime import runtime
from linkpay.services import plans, sweep
from tests.web.pay_flow import (
    BANK,
    CARD,
    DECLINED_CARD,
    IP,
    UA,
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


@pytest.fixture
def offer(db, account):
    return plan_offer(db, account)


@pytest.fixture
def customer(client, offer):
    return Customer.on_a_phone(client, link_token(offer.link_id))


def agreement_page(customer: Customer, details=CARD, kind="card"):
    """From the offer page, choose the method and come back from the tokenizer."""
    return customer.past_tokenizer(customer.start("/plan/method", kind=kind), details)


def sign(customer: Customer, name="Ana Diaz", agree=True, details=CARD, **kind):
    page = agreement_page(customer, details, **kind)
    sign_form = form(text(page), "/agreement")
    data = {**sign_form.fields, "signature": name}
    if agree:
        data["agree"] = "1"
    return customer.client.post(sign_form.action, data=data, follow_redirects=True)


def charge_due(clock, day: dt.date) -> None:
    clock.set(dt.datetime.combine(day, dt.time(16, 1), tzinfo=UTC))  # 09:01 in Phoenix
    sweep.run(runtime().db)
    runtime().queue.drain()


def test_the_offer_page_shows_every_installment_adding_up_to_the_total(customer):
    html = text(customer.open())
    assert "Pay your balance of $124.50 in 3 payments." in html
    for day, amount in (("March 31, 2026", "$41.50"), ("April 30, 2026", "$41.50")):
        assert f'<td>{day}</td><td class="num">{amount}</td>' in html
    assert '<td>May 31, 2026</td><td class="num">$41.50</td>' in html
    assert '<th scope="row" colspan="2">Total</th><td class="num">$124.50</td>' in html
    assert "This offer is open until the end of March 17, 2026." in html
    spanish = text(customer.open(lang="es"))
    assert "Pague su saldo de $124.50 en 3 pagos." in spanish
    assert "<td>31 de marzo de 2026</td>" in spanish


def test_an_uneven_total_puts_the_remainder_on_the_last(client, db):
    account = make_account(db, account_number="ACCT-7", balance_cents=10_000)
    offer = plan_offer(db, account)
    html = text(Customer(client, link_token(offer.link_id)).open())
    assert html.count('<td class="num">$33.33</td>') == 2
    assert '<td class="num">$33.34</td>' in html


def test_the_agreement_is_shown_in_full_and_signing_records_it(customer, db, offer, account):
    page = text(agreement_page(customer))
    agreement = plans.agreement_text(offer, "en")
    assert markup.escape(agreement) in page
    assert "Visa ending 4242" in page
    assert '<label for="signature">Type your full name to sign</label>' in page
    assert 'name="version" value="plan-2026-11"' in page

    sign_form = form(page, "/agreement")
    data = {**sign_form.fields, "signature": "  Ana   Diaz ", "agree": "1"}
    signed = customer.client.post(sign_form.action, data=data)
    assert signed.status_code == 303 and signed.headers["Location"].endswith("/plan?notice=signed")
    html = text(customer.client.get(signed.headers["Location"]))
    assert "Your plan is set up." in html and "We've emailed you the agreement" in html
    assert html.count(">Pending</td>") == 3 and markup.escape(agreement) in html

    db.expire_all()
    plan = db.scalar(select(Plan))
    assert plan.signature_name == "Ana Diaz" and plan.signed_ip == IP
    assert plan.signed_user_agent == UA and plan.signed_at == runtime().now()
    assert plan.agreement_text == agreement and plan.agreement_version == "plan-2026-11"
    method = db.get(SavedMethod, plan.saved_method_id)
    assert (method.label, method.last4, method.is_default) == ("Visa", "4242", False)
    assert count(db, Message, Message.kind == "plan_confirmation") == 1
    assert count(db, Payment) == 0  # nothing is charged until March 31
    assert count(db, AuditEvent, AuditEvent.action == "plan.accepted") == 1


def test_signing_twice_makes_one_plan(customer, db):
    page = text(agreement_page(customer))
    sign_form = form(page, "/agreement")
    data = {**sign_form.fields, "signature": "Ana Diaz", "agree": "1"}
    first = customer.client.post(sign_form.action, data=data)
    second = customer.client.post(sign_form.action, data=data)
    assert first.headers["Location"] == second.headers["Location"]
    assert count(db, Plan) == 1 and count(db, Installment) == 3


def test_a_missing_name_or_box_is_explained_and_nothing_is_lost(customer, db):
    page = text(agreement_page(customer))
    sign_form = form(page, "/agreement")
    no_name = customer.client.post(sign_form.action, data={**sign_form.fields, "agree": "1"})
    assert no_name.status_code == 400
    assert "Please type your name to sign the agreement." in text(no_name)
    assert 'id="agree" name="agree" value="1" required checked' in text(no_name)
    no_box = customer.client.post(sign_form.action, data={**sign_form.fields, "signature": "Ana"})
    assert no_box.status_code == 400
    assert "Please tick the box to agree to the payment plan." in text(no_box)
    assert 'value="Ana"' in text(no_box)
    assert count(db, Plan) == 0


def test_a_changed_agreement_is_shown_again_before_signing(customer, db, monkeypatch):
    page = text(agreement_page(customer))
    sign_form = form(page, "/agreement")
    monkeypatch.setattr(plans, "AGREEMENT_VERSION", "plan-2027-01")
    data = {**sign_form.fields, "signature": "Ana Diaz", "agree": "1"}
    response = customer.client.post(sign_form.action, data=data)
    assert response.status_code == 409
    assert "The agreement has been updated." in text(response)
    assert 'name="version" value="plan-2027-01"' in text(response)
    assert count(db, Plan) == 0


def test_the_method_checkout_cannot_be_paid_as_a_payment(customer, db):
    agreement_page(customer)
    public_id = db.scalar(select(Checkout.public_id))
    for step in ("review", "done"):
        response = customer.client.get(f"/p/{customer.token}/{step}?c={public_id}")
        assert response.status_code == 303 and response.headers["Location"].endswith(customer.token)
    confirm = customer.client.post(f"/p/{customer.token}/confirm", data={"c": public_id})
    assert confirm.status_code == 400  # no CSRF token; and with one it is not this browser's
    assert count(db, Payment) == 0


def test_a_bank_account_can_carry_the_plan(customer, db):
    html = text(sign(customer, details=BANK, kind="bank"))
    assert "bank account ending 6789" in html


def test_installments_show_paid_and_declined_with_the_retry_date(client, db, offer, clock):
    customer = Customer(client, link_token(offer.link_id))
    sign(customer, details=DECLINED_CARD)
    charge_due(clock, dt.date(2026, 3, 31))
    db.expire_all()
    [first, *_] = db.scalar(select(Plan)).installments
    assert first.status == InstallmentStatus.RETRY_SCHEDULED
    html = text(customer.open())
    assert "Declined" in html and "We'll try again on April 3, 2026" in html
    assert "Update your payment method and we'll try that payment again" in html
    assert html.count(">Pending</td>") == 2
    spanish = text(customer.open(lang="es"))
    assert "Rechazado" in spanish and "Lo intentaremos de nuevo el 3 de abril de 2026" in spanish


def test_a_paid_installment_shows_paid(customer, db, clock):
    sign(customer)
    charge_due(clock, dt.date(2026, 3, 31))
    html = text(customer.open())
    assert html.count('class="status-paid">Paid</td>') == 1 and html.count(">Pending</td>") == 2


def test_cancelling_asks_first_then_stops_the_rest(customer, db, clock):
    sign(customer)
    charge_due(clock, dt.date(2026, 3, 31))
    question = form(text(customer.open()), "/plan/cancel")
    assert question.method == "get"
    asked = text(customer.client.get(question.action))
    assert "Cancel your payment plan?" in asked
    assert "Payments not yet made: 2, $83.00 in all. They will not be charged." in asked
    yes = form(asked, "/plan/cancel")
    assert customer.client.post(yes.action, data={}).status_code == 400  # CSRF
    assert db.scalar(select(Plan.status)) == PlanStatus.ACTIVE
    html = text(customer.client.post(yes.action, data=yes.fields, follow_redirects=True))
    assert "Your plan is cancelled." in html and html.count(">Cancelled</td>") == 2
    assert "Pay your balance" in html and "Cancel my plan" not in html
    db.expire_all()
    assert db.scalar(select(Plan.status)) == PlanStatus.CANCELLED
    # A second tap changes nothing and sends no second notice.
    customer.client.post(yes.action, data=yes.fields)
    assert count(db, Message, Message.kind == "plan_cancelled") == 1
    charge_due(clock, dt.date(2026, 4, 30))
    assert count(db, Payment) == 1


def test_an_expired_plan_offer_link_stops_working(customer, clock, db):
    clock.advance(days=7)
    response = customer.open()
    assert response.status_code == 410 and "This offer has expired" in text(response)
    assert customer.client.post(f"/p/{customer.token}/plan/method").status_code == 400
    assert "$" not in text(response)


def test_an_offer_expiring_while_the_agreement_is_open_signs_nothing(customer, clock, db):
    page = text(agreement_page(customer))
    sign_form = form(page, "/agreement")
    clock.advance(days=7)
    data = {**sign_form.fields, "signature": "Ana Diaz", "agree": "1"}
    response = customer.client.post(sign_form.action, data=data, follow_redirects=True)
    assert "This offer has expired" in text(response)
    assert count(db, Plan) == 0


def test_a_spanish_account_signs_the_spanish_agreement(client, db):
    account = make_account(db, account_number="ACCT-ES", language="es")
    offer = plan_offer(db, account)
    customer = Customer(client, link_token(offer.link_id))
    page = text(agreement_page(customer))
    assert markup.escape(plans.agreement_text(offer, "es")) in page
    assert "Escriba su nombre completo para firmar" in page
    # The page in English still shows the recorded (Spanish) text, and says why.
    english = text(
        customer.client.get(
            f"/p/{customer.token}/agreement",
            query_string={"c": db.scalar(select(Checkout.public_id)), "lang": "en"},
        )
    )
    assert "shown in the language of your account" in english
    assert markup.escape(plans.agreement_text(offer, "es")) in english


@pytest.fixture
def zip_verification(config_overrides):
    config_overrides["links.verification"] = "zip"


def test_with_zip_verification_nothing_shows_before_the_zip(zip_verification, client, db, account):
    offer = plan_offer(db, account)
    customer = Customer(client, link_token(offer.link_id))
    html = text(customer.open())
    assert "Confirm it's you" in html and "$41.50" not in html and "Ana" not in html
    for path in ("/plan", "/plan/method?c=x", "/agreement?c=x", "/plan/cancel"):
        response = customer.client.get(f"/p/{customer.token}{path}")
        assert response.status_code == 303 and response.headers["Location"].endswith(customer.token)
    zip_form = form(html, "/zip")
    customer.client.post(zip_form.action, data={**zip_form.fields, "zip": "85004"})
    assert "Pay your balance of $124.50 in 3 payments." in text(customer.open())


def test_every_page_string_has_spanish():
    """Every string the payment pages show (templates and handlers) is in the catalog."""
    with (ROOT / "translations/es/LC_MESSAGES/messages.po").open("rb") as handle:
        catalog = read_po(handle, locale="es")
    files = glob.glob(str(ROOT / "templates/pages/*.html")) + glob.glob(
        str(ROOT / "linkpay/web/pay*.py")
    )
    missing = []
    for path in files:
        html = path.endswith(".html")
        method = "jinja2.ext:babel_extract" if html else "python"
        options = {"extensions": "jinja2.ext.i18n"} if html else {}
        for _, message, _, _ in extract_from_file(method, path, options=options):
            msgid = message if isinstance(message, str) else message[0]
            entry = catalog.get(msgid)
            if entry is None or not entry.string:
                missing.append(f"{path}: {msgid}")
    assert missing == []


def test_another_link_of_the_account_shows_no_plan(client, db, account, offer):
    html = text(Customer(client, make_link(db, account)[1]).open())
    assert "Pay your balance of" not in html and 'name="amount"' in html
