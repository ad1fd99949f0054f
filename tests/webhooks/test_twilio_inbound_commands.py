"""Every command of contract §5, in English and Spanish, from a signed webhook through the
inbound job to the reply reaching the (fake) Twilio API."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from linkpay.models import Account, Link, Payment, PaymentStatus, ProviderEvent
from linkpay.rendering import is_gsm7, segments
from tests.webhooks.inbound_flow import (
    OPT_OUT,
    PHONE,
    Phone,
    code_in,
    enroll,
    make_account,
    payments_count,
)

SPANISH = {"pay": "PAGAR", "yes": "SI", "bal": "SALDO", "link": "ENLACE", "help": "AYUDA"}
ENGLISH = {"pay": "PAY", "yes": "YES", "bal": "BAL", "link": "LINK", "help": "HELP"}
WORDS = {"en": ENGLISH, "es": SPANISH}


@pytest.fixture(autouse=True)
def twilio(fake_twilio):
    """Before ``app``: every test here talks to the fake Twilio API."""
    return fake_twilio


@pytest.fixture
def phone(fake_twilio, client, run_jobs):
    return Phone(client, fake_twilio, run_jobs)


@pytest.fixture
def account(fake_twilio, db):
    return make_account(db)


def assert_reply_rules(reply: str, lang: str) -> None:
    assert is_gsm7(reply), reply
    assert segments(reply) == 1, reply
    assert reply.endswith(OPT_OUT[lang]), reply


@pytest.mark.parametrize("lang", ["en", "es"])
def test_pay_answers_the_balance_the_card_and_a_code_and_the_code_pays_once(
    db, account, phone, lang
):
    enroll(db, account)
    words = WORDS[lang]
    offer = phone.ask(words["pay"])
    assert_reply_rules(offer, lang)
    assert "$124.50" in offer and "1111" in offer and "1234" in offer

    receipt = phone.ask(f"{words['yes']} {code_in(offer)}")

    assert_reply_rules(receipt, lang)
    (payment,) = db.scalars(select(Payment)).all()
    assert payment.confirmation_number in receipt
    assert (payment.amount_cents, payment.status, payment.source) == (
        12_450,
        PaymentStatus.PAID,
        "sms",
    )
    db.refresh(account)
    assert account.balance_cents == 0
    assert ("Thank you" if lang == "en" else "Gracias") in receipt


@pytest.mark.parametrize(("body", "cents"), [("PAY 50", 5_000), ("PAY $1,00.5", None)])
def test_pay_with_an_amount_charges_that_amount(db, account, phone, body, cents):
    enroll(db, account)
    offer = phone.ask(body)
    if cents is None:
        assert "could not read that amount" in offer
        return
    assert "$50.00" in offer
    phone.ask(code_in(offer))
    (payment,) = db.scalars(select(Payment)).all()
    assert payment.amount_cents == cents


def test_pagar_50_in_spanish(db, account, phone):
    enroll(db, account)
    offer = phone.ask("pagar 50")
    assert offer.startswith("Springfield Water: Para pagar $50.00")
    phone.ask(f"Sí {code_in(offer)}")
    assert db.scalars(select(Payment.amount_cents)).all() == [5_000]


@pytest.mark.parametrize("lang", ["en", "es"])
def test_bal_gives_the_balance_and_due_date(account, phone, lang):
    reply = phone.ask(WORDS[lang]["bal"])
    assert_reply_rules(reply, lang)
    assert "$124.50" in reply and "1234" in reply
    assert ("Mar 25" if lang == "en" else "25 mar") in reply


def test_bal_with_nothing_owed_says_so_instead_of_a_zero_bill(db, account, phone):
    account.balance_cents = 0
    db.commit()
    reply = phone.ask("BAL")
    assert "nothing to pay" in reply and "$0.00" not in reply


@pytest.mark.parametrize("lang", ["en", "es"])
def test_link_gives_a_fresh_working_link(db, account, phone, client, lang):
    reply = phone.ask(WORDS[lang]["link"])
    assert_reply_rules(reply, lang)
    url = next(word for word in reply.split() if word.startswith("https://"))
    assert client.get(url.removeprefix("https://pay.example.org")).status_code == 200
    assert db.scalar(select(Link.channel)) == "sms"


@pytest.mark.parametrize(("body", "lang"), [("HELP", "en"), ("INFO", "en"), ("AYUDA", "es")])
def test_help_names_the_org_the_support_phone_how_to_stop_and_the_rates(phone, body, lang):
    reply = phone.ask(body)
    assert_reply_rules(reply, lang)
    assert "Springfield Water" in reply
    assert "(602) 555-0100" in reply
    rates = "Msg & data rates may apply" if lang == "en" else "Pueden aplicarse tarifas"
    assert rates in reply


@pytest.mark.parametrize(
    "body", ["hello", "x" * 1600, "🙂🙂", "PAY fifty please", "YES 12345", "<script>"]
)
def test_anything_else_gets_the_help_text_and_never_its_own_body_back(phone, body):
    replies = phone.text(body)
    assert len(replies) == 1
    assert body not in replies[0]
    assert "Reply PAY to pay" in replies[0] or "could not read" in replies[0]


@pytest.mark.parametrize(
    "amount",
    ["1e9", "NaN", "1_000", "0.001", "-5", "0", "١٢", "１２", "💵", "9" * 1590],
)
def test_a_malformed_amount_gets_a_clear_reply_and_nothing_else(db, account, phone, amount):
    enroll(db, account)
    replies = phone.text(f"PAY {amount}")
    assert len(replies) == 1
    (reply,) = replies
    assert f"PAY {amount}" not in reply
    assert "could not read that amount" in reply or "Reply PAY to pay" in reply
    assert payments_count(db) == 0
    assert not [r for r in phone.replies if "within 10 min" in r]


def test_over_the_balance_is_refused_with_the_balance(db, account, phone):
    enroll(db, account)
    reply = phone.ask("PAY 500")
    assert "Nothing was charged" in reply and "$124.50" in reply
    assert payments_count(db) == 0


def test_nothing_due_says_so(db, phone):
    account = make_account(db, balance_cents=0)
    enroll(db, account)
    assert "nothing to pay" in phone.ask("PAY")


@pytest.mark.parametrize("lang", ["en", "es"])
def test_ok_turns_pay_by_text_on(db, phone, lang):
    account = make_account(db, language=lang)
    enroll(db, account, activate=False)
    reply = phone.ask("OK")
    assert_reply_rules(reply, lang)
    assert "1234" in reply
    assert ("Pay by Text is on" if lang == "en" else "Pagar por texto activo") in reply
    offer = phone.ask(WORDS[lang]["pay"])
    assert "1111" in offer


@pytest.mark.parametrize("lang", ["en", "es"])
def test_a_phone_that_is_not_enrolled_gets_instructions_and_a_link(db, phone, lang):
    make_account(db, language=lang)
    reply = phone.ask(WORDS[lang]["pay"])
    assert ("Pay by Text is not on" if lang == "en" else "no esta activo") in reply
    assert "https://pay.example.org/p/" in reply
    assert reply.endswith(OPT_OUT[lang])
    assert payments_count(db) == 0


def test_an_unknown_phone_gets_the_help_text(phone):
    assert "Reply PAY to pay" in phone.ask("PAY")
    assert "Reply PAY to pay" in phone.ask("BAL")


def test_an_enrolled_account_whose_method_was_removed_gets_a_link(db, account, phone, clock):
    method = enroll(db, account)
    method.removed_at = clock()
    db.commit()
    assert "Pay by Text is not on" in phone.ask("PAY")


def test_a_phone_on_several_enrolled_accounts_is_asked_which_and_never_guessed(db, phone):
    first = make_account(db)
    second = make_account(db, account_number="ACCT-20045678", balance_cents=9_900)
    enroll(db, first)
    enroll(db, second, last4="2222")
    phone.run_jobs()
    question = phone.ask("PAY 20")
    assert "Which account? Reply 1234 or 5678" in question
    assert payments_count(db) == 0
    offer = phone.ask("5678")
    assert "$20.00" in offer and "2222" in offer and "5678" in offer
    phone.ask(code_in(offer))
    (payment,) = db.scalars(select(Payment)).all()
    assert (payment.account_id, payment.amount_cents) == (second.id, 2_000)


def test_an_answer_naming_no_listed_account_asks_again(db, phone):
    make_account(db)
    make_account(db, account_number="ACCT-20045678")
    assert "Reply 1234 or 5678" in phone.ask("BAL")
    assert "Reply 1234 or 5678" in phone.ask("9999")
    assert "owes $124.50" in phone.ask("1234")


def test_a_declined_charge_says_so_with_a_link_and_the_enrollment_stays(db, account, phone):
    enroll(db, account, outcome="insufficient_funds")
    offer = phone.ask("PAY")
    reply = phone.ask(code_in(offer))
    assert "declined (insufficient funds)" in reply
    assert "https://pay.example.org/p/" in reply and reply.endswith(OPT_OUT["en"])
    db.refresh(account)
    assert account.balance_cents == 12_450
    assert "1111" in phone.ask("PAY")  # still enrolled


def test_a_bank_payment_is_pending_and_the_receipt_says_processing(db, account, phone):
    from linkpay.models import MethodKind

    enroll(db, account, kind=MethodKind.BANK, last4="6789")
    offer = phone.ask("PAY 30")
    assert "bank acct ending 6789" in offer
    assert "processing" in phone.ask(code_in(offer))


def test_the_receipt_email_goes_when_an_email_is_on_file(fake_sendgrid, db, phone):
    account = make_account(db, email="ana@example.com")
    enroll(db, account)
    phone.run_jobs()
    phone.ask(code_in(phone.ask("PAY")))
    (email,) = [r for r in fake_sendgrid.requests if r.path.endswith("/mail/send")]
    assert email.body["personalizations"][0]["to"][0]["email"] == "ana@example.com"


def test_every_inbound_text_is_stored_with_its_sid(db, account, phone):
    phone.text("BAL")
    (event,) = db.scalars(select(ProviderEvent)).all()
    assert event.payload["From"] == PHONE and event.kind == "inbound_sms"
    assert db.get(Account, account.id).balance_cents == 12_450


@pytest.mark.parametrize(("lang", "warning"), [("en", "card or bank"), ("es", "tarjeta o cuenta")])
def test_a_texted_card_number_is_never_kept_and_is_answered_with_a_warning(
    db, fake_twilio, client, run_jobs, lang, warning
):
    account = make_account(db, language=lang)
    enroll(db, account)
    phone = Phone(client, fake_twilio, run_jobs)

    reply = phone.ask("my card is 4242 4242 4242 4242 exp 12/28")

    assert_reply_rules(reply, lang)
    assert warning in reply
    assert "4242" not in reply
    texts = db.scalars(select(ProviderEvent).where(ProviderEvent.kind == "inbound_sms")).all()
    assert [t.payload["Body"] for t in texts] == [
        "my card is [number removed, ends 4242] exp 12/28"
    ]
    assert payments_count(db) == 0
