"""Pay by Text on the payment pages: the checkbox and its consent wording on the review
step, enrolling with the payment (once, and only when it went through), the receipt's own
form to turn it on or off, in English and Spanish, for this browser's payment only."""

from __future__ import annotations

import gzip
import re

import pytest
from flask import g
from sqlalchemy import select

from linkpay.models import (
    AuditEvent,
    Channel,
    Checkout,
    EnrollmentStatus,
    Message,
    MessageStatus,
    Payment,
    SavedMethod,
    TextEnrollment,
)
from linkpay.services import text_enrollment as pbt
from linkpay.services.contacts import mark_contact
from tests.web.pay_flow import (
    DECLINED_CARD,
    IP,
    UA,
    Customer,
    count,
    form,
    forms,
    make_account,
    make_link,
    text,
)


@pytest.fixture
def account(db):
    return make_account(db)


@pytest.fixture
def customer(client, db, account):
    return Customer.on_a_phone(client, make_link(db, account)[1])


def asks(db) -> list[Message]:
    db.expire_all()
    return db.scalars(select(Message).where(Message.kind == pbt.ASK_KIND)).all()


def enrollment(db) -> TextEnrollment | None:
    db.expire_all()
    return db.scalar(select(TextEnrollment))


def checkbox(html: str) -> str | None:
    """The Pay by Text checkbox's label, tags and all, if the page has one."""
    found = re.search(r'<label[^>]*>(<input type="checkbox" name="pay_by_text".*?)</label>', html)
    return found[1] if found else None


def pay(customer, *, tick: bool, details: dict | None = None, amount: str | None = None):
    ticked = {"pay_by_text": "1"} if tick else {}
    return customer.confirm(customer.review(amount, details=details), **ticked)


def test_the_review_step_offers_an_unticked_box_with_the_consent_wording(customer):
    html = text(customer.review())
    label = checkbox(html)
    assert label is not None and "checked" not in label
    assert "Pay by Text" in label and "Visa ending 4242" in label and "0143" in label
    confirm = form(html, "/confirm")
    assert "pay_by_text" not in confirm.fields  # unticked: a plain submit does not enroll
    assert 'id="pbt-terms"' in html and 'aria-describedby="pbt-terms"' in label
    for words in (
        "text you about your bill",
        "reply PAY",
        "About 2 texts a month, plus replies to your texts",
        "Msg &amp; data rates may apply",
        "reply STOP or turn it off on this page",
    ):
        assert words in html


def test_the_spanish_review_step_says_pagar_por_texto(client, db):
    customer = Customer(client, make_link(db, make_account(db, language="es"))[1])
    html = text(customer.review())
    label = checkbox(html)
    assert "Pagar por texto" in label and "Visa que termina en 4242" in label
    assert "Pueden aplicarse tarifas de mensajes y datos" in html
    assert "Unos 2 textos al mes" in html and "responda PARAR" in html


@pytest.mark.parametrize("why", ["no_phone", "opted_out"])
def test_no_box_without_a_phone_that_can_be_texted(client, db, why):
    account = make_account(db, phone=None) if why == "no_phone" else make_account(db)
    if why == "opted_out":
        mark_contact(db, Channel.SMS, account.phone, opted_out=True, reason="sms STOP")
        db.commit()
    customer = Customer(client, make_link(db, account)[1])
    assert checkbox(text(customer.review())) is None
    assert "Pay by Text" not in text(pay(customer, tick=False))


def test_ticking_the_box_saves_the_method_records_consent_and_asks_for_ok(customer, db, account):
    html = text(pay(customer, tick=True))
    assert "Thank you! Your payment is complete" in html
    assert "We texted you at the phone ending 0143: reply OK to turn on Pay by Text." in html
    assert "Turn off Pay by Text" in html

    [payment] = db.scalars(select(Payment)).all()
    method = pbt.default_method(db, account)
    assert (method.label, method.last4, payment.saved_method_id) == ("Visa", "4242", method.id)
    enrolled = enrollment(db)
    assert enrolled.status == EnrollmentStatus.AWAITING_OK and enrolled.method_id == method.id
    assert (enrolled.consent_ip, enrolled.consent_user_agent) == (IP, UA)
    [event] = db.scalars(select(AuditEvent).where(AuditEvent.action == "consent.pay_by_text")).all()
    assert (event.ip, event.user_agent, event.details["via"]) == (IP, UA, "payment page")
    assert event.details["consent_text"] == pbt.consent_text("en")
    [ask] = asks(db)
    assert ask.status == MessageStatus.QUEUED and ask.to_address == account.phone
    assert "Reply OK to turn on Pay by Text" in ask.body


def test_without_the_box_nothing_is_saved_and_the_receipt_offers_it(customer, db):
    html = text(pay(customer, tick=False))
    assert count(db, SavedMethod) == 0 and enrollment(db) is None and asks(db) == []
    offer = form(html, "/text")
    assert offer.action.endswith("/text") and offer.fields["csrf_token"]
    assert "pay_by_text" not in offer.fields
    assert checkbox(html) is not None and "Turn on Pay by Text" in html
    assert "Pay by Text was not turned on" not in html


def test_a_declined_payment_turns_nothing_on_and_says_so(customer, db):
    html = text(pay(customer, tick=True, details=DECLINED_CARD))
    assert "Your card was declined." in html
    assert "Pay by Text was not turned on, because this payment didn't go through." in html
    assert count(db, SavedMethod) == 0 and enrollment(db) is None and asks(db) == []


def test_a_double_submit_with_the_box_ticked_enrolls_once(customer, db):
    confirm = customer.confirm_form(customer.review())
    data = {**confirm.fields, "pay_by_text": "1"}
    first = customer.client.post(confirm.action, data=data)
    second = customer.client.post(confirm.action, data=data)
    assert first.status_code == second.status_code == 303
    assert count(db, Payment) == 1 and count(db, SavedMethod) == 1
    assert count(db, TextEnrollment) == 1 and len(asks(db)) == 1


def test_the_receipt_form_enrolls_with_the_method_this_payment_used(customer, db):
    html = text(pay(customer, tick=False))
    offer = form(html, "/text")
    unticked = customer.client.post(offer.action, data=offer.fields, follow_redirects=True)
    assert enrollment(db) is None and "Turn on Pay by Text" in text(unticked)

    done = customer.client.post(
        offer.action, data={**offer.fields, "pay_by_text": "1"}, follow_redirects=True
    )
    assert "reply OK to turn on Pay by Text" in text(done)
    [payment] = db.scalars(select(Payment)).all()
    enrolled = enrollment(db)
    assert enrolled.method_id == payment.saved_method_id and enrolled.consent_ip == IP
    assert db.get(SavedMethod, enrolled.method_id).last4 == "4242"
    event = db.scalar(select(AuditEvent).where(AuditEvent.action == "consent.pay_by_text"))
    assert event.details["via"] == "receipt page"
    assert len(asks(db)) == 1


def test_the_receipt_says_when_it_is_on_and_turns_it_off(customer, db, account):
    pay(customer, tick=True)
    pbt.activate(db, account.phone)
    db.commit()
    html = text(customer.client.get(receipt_url(customer, db)))
    assert "Pay by Text is on for card ending 4242." in html
    off = form(html, "/text/off")
    after = text(customer.client.post(off.action, data=off.fields, follow_redirects=True))
    assert enrollment(db).status == EnrollmentStatus.CANCELLED
    event = db.scalar(
        select(AuditEvent).where(AuditEvent.action == "consent.pay_by_text_cancelled")
    )
    assert (event.actor, event.details["via"], event.ip) == ("customer", "receipt page", IP)
    assert "Pay by Text is on" not in after and checkbox(after) is not None
    # On again from the same receipt: the saved method, a new OK to reply to.
    offer = form(after, "/text")
    customer.client.post(offer.action, data={**offer.fields, "pay_by_text": "1"})
    assert enrollment(db).status == EnrollmentStatus.AWAITING_OK
    assert count(db, SavedMethod) == 1 and len(asks(db)) == 2


def receipt_url(customer, db) -> str:
    """The receipt of the one payment, as this browser reaches it again."""
    public_id = db.scalar(select(Checkout.public_id).join(Payment))
    return f"/p/{customer.token}/done?c={public_id}"


def test_the_spanish_receipt_turns_it_on_and_off_in_spanish(client, db):
    account = make_account(db, language="es")
    customer = Customer(client, make_link(db, account)[1])
    html = text(pay(customer, tick=False))
    assert "Activar Pagar por texto" in html and "Pagar por texto" in checkbox(html)
    offer = form(html, "/text")
    on = text(
        customer.client.post(
            offer.action, data={**offer.fields, "pay_by_text": "1"}, follow_redirects=True
        )
    )
    assert "responda OK para activar Pagar por texto" in on
    assert "Desactivar Pagar por texto" in on
    assert "Responda OK para activar Pagar por texto" in asks(db)[0].body
    pbt.activate(db, account.phone)
    db.commit()
    html = text(customer.client.get(receipt_url(customer, db)))
    assert "Pagar por texto está activado para la tarjeta que termina en 4242." in html


def test_another_browser_cannot_turn_it_on_or_off(app, customer, db, account):
    html = text(pay(customer, tick=False, amount="50"))  # the link stays open
    offer = form(html, "/text")
    stranger = app.test_client()
    # A CSRF token of the stranger's own, from the same link's amount step. (Flask-WTF
    # caches the token in ``g``, which the tests' app context shares between clients.)
    g.pop("csrf_token", None)
    own_token = form(text(stranger.get(f"/p/{customer.token}")), "/amount").fields["csrf_token"]
    forged = {**offer.fields, "csrf_token": own_token, "pay_by_text": "1"}
    refused = stranger.post(offer.action, data=forged)
    assert refused.status_code == 303 and "/done" not in refused.headers["Location"]
    assert enrollment(db) is None and count(db, SavedMethod) == 0

    customer.client.post(offer.action, data={**offer.fields, "pay_by_text": "1"})
    stranger.post(offer.action.replace("/text", "/text/off"), data=forged)
    assert enrollment(db).status == EnrollmentStatus.AWAITING_OK


def test_the_receipt_forms_need_the_csrf_token(customer, db):
    html = text(pay(customer, tick=False))
    offer = form(html, "/text")
    without = {"c": offer.fields["c"], "pay_by_text": "1"}
    assert customer.client.post(offer.action, data=without).status_code == 400
    assert enrollment(db) is None


def test_the_review_page_with_the_box_stays_small(customer):
    html = customer.review().get_data()
    css = customer.client.get("/static/pay.css").get_data()
    assert len(gzip.compress(html)) + len(gzip.compress(css)) < 14 * 1024
    assert "<script" not in html.decode()


def test_every_form_on_the_receipt_carries_a_csrf_token(customer, db):
    html = text(pay(customer, tick=True))
    assert all(each.fields.get("csrf_token") for each in forms(html) if each.method == "post")
