"""Pay by Text enrollment: saving the method, the recorded consent, the "reply OK" text,
activation, turning it off, the one-enrollment-per-payment claim, and what link texts
learn about it ("Reply PAY to pay ...")."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import event, func, select

from linkpay.gateways.sandbox import vault
from linkpay.models import (
    Account,
    AuditEvent,
    Channel,
    EnrollmentStatus,
    Message,
    MessageStatus,
    MethodKind,
    Payment,
    PaymentStatus,
    SavedMethod,
    TextEnrollment,
    TextPaymentRequest,
    TextRequestStatus,
)
from linkpay.rendering import is_gsm7
from linkpay.runtime import runtime
from linkpay.services import campaigns, links, payments
from linkpay.services import text_enrollment as pbt
from linkpay.services.contacts import mark_contact
from linkpay.services.text_enrollment import EnrollmentError
from tests.web.pay_flow import make_account, make_link

UA = "Mozilla/5.0 (iPhone)"


def token_for(db, kind=MethodKind.CARD, label="Visa", last4="4242", outcome="approved") -> str:
    token = vault(db, kind, label, last4, outcome)
    db.commit()
    return token


def count(db, model, *where) -> int:
    return db.scalar(select(func.count()).select_from(model).where(*where))


def asks(db) -> list[Message]:
    return db.scalars(select(Message).where(Message.kind == pbt.ASK_KIND)).all()


def audits(db, action: str) -> list[AuditEvent]:
    return db.scalars(select(AuditEvent).where(AuditEvent.action == action)).all()


@pytest.fixture
def account(db):
    return make_account(db)


@pytest.fixture
def method(db, account):
    saved = pbt.save_method(db, account, token_for(db))
    db.commit()
    return saved


def enroll(db, account, method, **kw):
    values = {"ip": "203.0.113.9", "user_agent": UA, "language": "en", **kw}
    enrollment = pbt.enroll(db, account, method, **values)
    db.commit()
    return enrollment


def test_save_method_keeps_brand_and_last_four_and_becomes_the_only_default(db, account):
    first = pbt.save_method(db, account, token_for(db))
    second = pbt.save_method(db, account, token_for(db, MethodKind.BANK, "Bank", "6789"))
    db.commit()
    db.refresh(first)
    assert (second.kind, second.label, second.last4) == (MethodKind.BANK, "Bank", "6789")
    assert (first.is_default, second.is_default) == (False, True)
    assert pbt.default_method(db, account).id == second.id
    # The same token again is the same row, made the default again.
    again = pbt.save_method(db, account, first.token)
    db.commit()
    assert again.id == first.id and pbt.default_method(db, account).id == first.id
    assert count(db, SavedMethod) == 2


def test_an_unknown_token_is_not_saved(db, account):
    with pytest.raises(EnrollmentError) as error:
        pbt.save_method(db, account, "tok_nobody")
    assert error.value.code == pbt.UNKNOWN_METHOD
    assert count(db, SavedMethod) == 0


def test_enrolling_records_consent_and_texts_a_reply_ok_request(db, account, method, clock):
    enrollment = enroll(db, account, method)
    assert enrollment.status == EnrollmentStatus.AWAITING_OK
    assert (enrollment.phone, enrollment.method_id) == (account.phone, method.id)
    assert enrollment.consent_version == pbt.CONSENT_VERSION
    assert enrollment.consented_at == clock()
    assert (enrollment.consent_ip, enrollment.consent_user_agent) == ("203.0.113.9", UA)

    [event] = audits(db, "consent.pay_by_text")
    assert (event.actor, event.account_id, event.ip, event.user_agent) == (
        "customer",
        account.id,
        "203.0.113.9",
        UA,
    )
    assert event.details["consent_text"] == pbt.consent_text("en")
    assert event.details["consent_version"] == pbt.CONSENT_VERSION
    assert event.details["language"] == "en"
    assert event.details["phone"] == account.phone
    assert event.details["last4"] == "4242"

    [ask] = asks(db)
    assert ask.solicited and ask.status == MessageStatus.QUEUED
    assert ask.to_address == account.phone and ask.segments == 1 and is_gsm7(ask.body)
    assert "Reply OK to turn on Pay by Text for acct ending 6789 (Visa 4242)" in ask.body
    assert "Msg&data rates may apply" in ask.body
    assert ask.body.endswith("Reply STOP to opt out")


def test_the_consent_wording_says_what_how_often_rates_and_how_to_stop():
    english, spanish = pbt.consent_text("en"), pbt.consent_text("es")
    for words in ("Pay by Text", "PAY", "2 texts a month", "Msg & data rates may apply", "STOP"):
        assert words in english
    for words in ("Pagar por texto", "PAGAR", "2 textos al mes", "tarifas de mensajes y datos"):
        assert words in spanish
    assert "PARAR" in spanish
    assert pbt.consent_text("fr") == english  # an unknown language reads English


def test_the_reply_ok_text_goes_in_the_page_language_even_at_night(db, account, method, clock):
    clock.advance(hours=12)  # 23:00 in Phoenix: quiet hours
    enroll(db, account, method, language="es")
    [ask] = asks(db)
    assert ask.status == MessageStatus.QUEUED and ask.language == "es"
    assert "Responda OK para activar Pagar por texto, cuenta 6789 (Visa 4242)" in ask.body
    assert ask.body.endswith("Responda PARAR para cancelar") and ask.segments == 1
    [event] = audits(db, "consent.pay_by_text")
    assert event.details["consent_text"] == pbt.consent_text("es")


def test_a_bank_method_is_named_as_a_bank_account(db, account):
    bank = pbt.save_method(db, account, token_for(db, MethodKind.BANK, "Bank", "6789"))
    enroll(db, account, bank)
    assert "(bank acct 6789)" in asks(db)[0].body


@pytest.mark.parametrize("problem", ["no_phone", "opted_out", "undeliverable"])
def test_no_enrollment_without_a_phone_that_can_be_texted(db, account, method, problem):
    if problem == "no_phone":
        account.phone = None
    else:
        mark_contact(db, Channel.SMS, account.phone, opted_out=problem == "opted_out", reason="t")
    db.commit()
    assert not pbt.enrollable(db, account)
    with pytest.raises(EnrollmentError) as error:
        enroll(db, account, method)
    assert error.value.code == problem
    db.rollback()
    assert count(db, TextEnrollment) == 0 and asks(db) == []
    assert audits(db, "consent.pay_by_text") == []


def test_enrolling_again_with_the_same_method_changes_nothing(db, account, method):
    first = enroll(db, account, method)
    again = enroll(db, account, method)
    assert again.id == first.id
    assert len(asks(db)) == 1 and len(audits(db, "consent.pay_by_text")) == 1


def test_ok_activates_every_waiting_enrollment_of_the_phone_once(db, account, method):
    other = make_account(db, account_number="ACCT-20001234")
    other_method = pbt.save_method(db, other, token_for(db, last4="1111"))
    enroll(db, account, method)
    enroll(db, other, other_method)
    activated = pbt.activate(db, account.phone)
    db.commit()
    assert sorted(e.account_id for e in activated) == [account.id, other.id]
    assert all(e.status == EnrollmentStatus.ACTIVE and e.activated_at for e in activated)
    assert pbt.activate(db, account.phone) == []  # a second OK changes nothing
    assert len(audits(db, "consent.pay_by_text_activated")) == 2
    assert [e.account_id for e in pbt.active_enrollments(db, account.phone)] == [
        account.id,
        other.id,
    ]
    assert pbt.activate(db, "+16025559999") == []


def test_an_enrollment_for_a_phone_no_longer_on_file_cannot_pay(db, account, method):
    enroll(db, account, method)
    pbt.activate(db, account.phone)
    old_phone, account.phone = account.phone, "+16025550999"
    db.commit()
    assert pbt.active_enrollments(db, old_phone) == []
    assert pbt.enrollment_for(db, account) is None


def test_a_new_method_asks_for_ok_again(db, account, method):
    enroll(db, account, method)
    pbt.activate(db, account.phone)
    db.commit()
    newer = pbt.save_method(db, account, token_for(db, label="Mastercard", last4="4444"))
    enrollment = enroll(db, account, newer)
    assert enrollment.status == EnrollmentStatus.AWAITING_OK
    assert enrollment.method_id == newer.id and enrollment.activated_at is None
    assert len(asks(db)) == 2 and "(Mastercard 4444)" in asks(db)[1].body
    assert len(audits(db, "consent.pay_by_text")) == 2


def test_turning_it_off_cancels_pending_requests_and_enrolling_again_works(db, account, method):
    enrollment = enroll(db, account, method)
    pbt.activate(db, account.phone)
    request = TextPaymentRequest(
        enrollment_id=enrollment.id,
        account_id=account.id,
        phone=account.phone,
        method_id=method.id,
        amount_cents=5_000,
        code_hash="0" * 64,
        expires_at=runtime().now(),
    )
    db.add(request)
    db.commit()

    pbt.cancel(db, enrollment, actor="customer", via="receipt page", ip="203.0.113.9")
    db.commit()
    db.refresh(request)
    assert enrollment.status == EnrollmentStatus.CANCELLED and enrollment.cancelled_at
    assert request.status == TextRequestStatus.CANCELLED
    [event] = audits(db, "consent.pay_by_text_cancelled")
    assert (event.details["via"], event.ip) == ("receipt page", "203.0.113.9")
    assert pbt.active_enrollments(db, account.phone) == []
    pbt.cancel(db, enrollment, actor="customer", via="receipt page")  # already off
    db.commit()
    assert len(audits(db, "consent.pay_by_text_cancelled")) == 1

    again = enroll(db, account, method)
    assert again.id == enrollment.id and again.status == EnrollmentStatus.AWAITING_OK
    assert again.cancelled_at is None and len(asks(db)) == 2


def test_stop_cancels_every_enrollment_of_the_phone(db, account, method):
    other = make_account(db, account_number="ACCT-20001234")
    enroll(db, account, method)
    enroll(db, other, pbt.save_method(db, other, token_for(db)))
    pbt.activate(db, account.phone)
    db.commit()
    assert pbt.cancel_for_phone(db, account.phone, actor="customer", via="sms STOP") == 2
    db.commit()
    assert pbt.cancel_for_phone(db, account.phone, actor="customer", via="sms STOP") == 0
    events = audits(db, "consent.pay_by_text_cancelled")
    assert [e.details["via"] for e in events] == ["sms STOP", "sms STOP"]


# -- enrolling from a payment ------------------------------------------------------------


def paid_checkout(db, account, *, outcome="approved", kind=MethodKind.CARD):
    link, _ = make_link(db, account)
    checkout = payments.start_checkout(db, link, 5_000)
    label, last4 = ("Bank", "6789") if kind == MethodKind.BANK else ("Visa", "4242")
    payments.attach_method(db, checkout, token_for(db, kind, label, last4, outcome))
    db.commit()
    payment = payments.confirm(db, checkout, "203.0.113.9", UA)
    return checkout, payment


def enroll_payment(db, checkout, payment):
    enrollment = pbt.enroll_from_checkout(
        db, checkout, payment, ip="203.0.113.9", user_agent=UA, language="en", via="payment page"
    )
    db.commit()
    return enrollment


@pytest.mark.parametrize("kind", [MethodKind.CARD, MethodKind.BANK])
def test_a_payment_saves_its_method_as_the_default_and_enrolls(db, account, kind):
    checkout, payment = paid_checkout(db, account, kind=kind)
    assert payment.status in (PaymentStatus.PAID, PaymentStatus.PENDING)
    enrollment = enroll_payment(db, checkout, payment)
    method = pbt.default_method(db, account)
    assert method.token == checkout.method_token and enrollment.method_id == method.id
    assert db.get(Payment, payment.id).saved_method_id == method.id
    assert enrollment.status == EnrollmentStatus.AWAITING_OK
    assert audits(db, "consent.pay_by_text")[0].details["via"] == "payment page"


def test_a_declined_payment_saves_nothing(db, account):
    checkout, payment = paid_checkout(db, account, outcome="declined")
    with pytest.raises(EnrollmentError) as error:
        enroll_payment(db, checkout, payment)
    assert error.value.code == pbt.NOT_PAID
    db.rollback()
    assert count(db, SavedMethod) == 0 and count(db, TextEnrollment) == 0


def test_a_payment_enrolls_once_however_often_its_form_arrives(db, account):
    checkout, payment = paid_checkout(db, account)
    first = enroll_payment(db, checkout, payment)
    again = enroll_payment(db, checkout, payment)
    assert again.id == first.id
    assert count(db, SavedMethod) == 1 and len(asks(db)) == 1


def test_the_request_that_loses_the_claim_saves_and_sends_nothing(db, account):
    checkout, payment = paid_checkout(db, account)
    stale = db.get(Payment, payment.id)
    # Another request claimed the payment after this one read it.
    other = runtime().db.sessions()
    winner = enroll_payment(
        other, other.get(type(checkout), checkout.id), other.get(Payment, payment.id)
    )
    other.close()
    stale.saved_method_id = None  # what this request still believes
    assert (
        pbt.enroll_from_checkout(
            db, checkout, stale, ip=None, user_agent=None, language="en", via="payment page"
        )
        is None
    )
    db.commit()
    assert count(db, SavedMethod) == 1 and len(asks(db)) == 1
    assert db.get(TextEnrollment, winner.id).status == EnrollmentStatus.AWAITING_OK


def test_concurrent_enrollments_from_one_payment_enroll_once(app, db, account):
    checkout, payment = paid_checkout(db, account)
    errors = []

    def submit():
        with app.app_context():
            session = runtime().db.sessions()
            try:
                mine = session.get(type(checkout), checkout.id)
                pbt.enroll_from_checkout(
                    session,
                    mine,
                    session.get(Payment, payment.id),
                    ip=None,
                    user_agent=None,
                    language="en",
                    via="payment page",
                )
                session.commit()
            except Exception as exc:  # reported below, with the thread's own traceback
                errors.append(exc)
            finally:
                session.close()

    threads = [threading.Thread(target=submit) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert count(db, SavedMethod) == 1 and count(db, TextEnrollment) == 1
    assert len(asks(db)) == 1 and len(audits(db, "consent.pay_by_text")) == 1


# -- "Reply PAY" in link texts -----------------------------------------------------------


def test_only_active_enrollments_on_the_phone_on_file_offer_reply_pay(db, account, method):
    plain = make_account(db, account_number="ACCT-30005555", phone="+16025550144")
    assert pbt.reply_pay_offers(db, [account, plain]) == {}
    enroll(db, account, method)
    assert pbt.reply_pay_offer(db, account) is None  # still waiting for OK
    pbt.activate(db, account.phone)
    db.commit()
    assert pbt.reply_pay_offers(db, [account, plain]) == {
        account.id: {"is_bank": False, "label": "Visa", "last4": "4242"}
    }


def turn_on(db, account, **method) -> None:
    saved = pbt.save_method(db, account, token_for(db, **method))
    enroll(db, account, saved)
    pbt.activate(db, account.phone)
    db.commit()


def link_texts(db) -> list[Message]:
    return db.scalars(
        select(Message)
        .where(Message.kind == "link", Message.channel == Channel.SMS)
        .order_by(Message.account_id)
    ).all()


def test_a_link_text_to_a_phone_with_pay_by_text_on_says_reply_pay(db, account):
    turn_on(db, account)
    link, [text] = links.send_link(db, account)
    db.commit()
    assert "Reply PAY to pay $124.50 with card ending 4242 or pay at" in text.body
    assert links.link_url(link.id) in text.body.split()
    assert text.segments == 1 and is_gsm7(text.body)  # the short variant, in everyday English
    assert text.body.endswith("Reply STOP to opt out")


def test_a_link_text_in_spanish_says_reply_pagar_in_two_segments(db):
    account = make_account(db, language="es")
    turn_on(db, account, kind=MethodKind.BANK, label="Bank", last4="6789")
    _, [text] = links.send_link(db, account)
    db.commit()
    assert "Responda PAGAR para pagar $124.50 con cuenta bancaria terminada en 6789" in text.body
    assert text.segments == 2 and is_gsm7(text.body)
    assert text.body.endswith("Responda PARAR para cancelar")


@pytest.mark.parametrize("state", ["never", "awaiting_ok", "cancelled", "other_phone"])
def test_without_pay_by_text_on_the_link_text_is_the_usual_one(db, account, state):
    if state != "never":
        saved = pbt.save_method(db, account, token_for(db))
        enrollment = enroll(db, account, saved)
        if state == "cancelled":
            pbt.activate(db, account.phone)
            pbt.cancel(db, enrollment, actor="customer", via="receipt page")
        if state == "other_phone":
            pbt.activate(db, account.phone)
            account.phone = "+16025550999"
        db.commit()
    link, [text] = links.send_link(db, account)
    db.commit()
    url = links.link_url(link.id)
    assert text.body == (
        f"Springfield Water: Hi Ana, $124.50 is due Mar 25. Pay at {url} Reply STOP to opt out"
    )


def test_a_campaign_says_reply_pay_to_enrolled_phones_with_one_lookup(app, db):
    enrolled = make_account(db, account_number="A-1", phone="+16025551234")
    make_account(db, account_number="A-2", phone="+16025550144")
    by_bank = make_account(db, account_number="A-3", phone="+14805550199")
    turn_on(db, enrolled)
    turn_on(db, by_bank, kind=MethodKind.BANK, label="Bank", last4="6789")
    lookups = []

    def count_lookups(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT") and "text_enrollments" in statement:
            lookups.append(statement)

    engine = runtime().db.engine
    event.listen(engine, "before_cursor_execute", count_lookups)
    try:
        campaigns.send_campaign(db, "March", "sms", select(Account), "staff:test")
        db.commit()
    finally:
        event.remove(engine, "before_cursor_execute", count_lookups)
    first, second, third = link_texts(db)
    assert "Reply PAY to pay $124.50 with card ending 4242" in first.body
    assert "Reply PAY" not in second.body and second.body.startswith("Springfield Water: Hi Ana,")
    assert "Reply PAY to pay $124.50 with bank acct ending 6789" in third.body
    assert len(lookups) == 1


@pytest.fixture
def long_org(config_overrides):
    """A 29-character organisation name (requested before ``db``, so before the app)."""
    config_overrides["org.name"] = "City of Springfield Utilities"


@pytest.mark.parametrize("lang", ["en", "es"])
def test_the_reply_ok_text_is_one_segment_with_a_long_org_and_brand(long_org, db, lang):
    account = make_account(db, account_number="AC-99999999", language=lang)
    amex = pbt.save_method(db, account, token_for(db, label="American Express", last4="0005"))
    enroll(db, account, amex, language=lang)
    [ask] = asks(db)
    assert ask.segments == 1 and is_gsm7(ask.body), ask.body
    assert ask.body.startswith("City of Springfield Utilities: ")
    assert "9999" in ask.body
