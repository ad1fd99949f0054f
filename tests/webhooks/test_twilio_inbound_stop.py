"""STOP and START, applied inside the webhook request: the opt-out holds before any later
send, waiting texts are dropped before any provider call, one confirmation goes out."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from linkpay.models import (
    AuditEvent,
    Channel,
    Contact,
    EnrollmentStatus,
    Message,
    MessageStatus,
    TextEnrollment,
)
from linkpay.queue import HIGH
from linkpay.runtime import runtime
from linkpay.services import links
from tests.webhooks.inbound_flow import PHONE, Phone, enroll, make_account

STOP_CONFIRMATION = {"en": "Reply START to resubscribe.", "es": "Responda COMENZAR para volver."}


@pytest.fixture(autouse=True)
def twilio(fake_twilio):
    return fake_twilio


@pytest.fixture
def phone(fake_twilio, client, run_jobs):
    return Phone(client, fake_twilio, run_jobs)


@pytest.fixture
def account(db):
    return make_account(db)


def contact(db) -> Contact | None:
    db.expire_all()
    return db.scalar(select(Contact).where(Contact.address == PHONE))


def queued_link_texts(db, account, clock):
    """One text queued now and one held for quiet hours, both not yet sent."""
    links.send_link(db, account)
    held = Message(
        account_id=account.id,
        channel=Channel.SMS,
        kind="link",
        to_address=PHONE,
        body="Springfield Water: pay at https://pay.example.org/p/x Reply STOP to opt out",
        status=MessageStatus.SCHEDULED,
        send_after=clock().replace(hour=15),
        created_at=clock(),
    )
    db.add(held)
    db.commit()
    return db.scalars(select(Message).where(Message.kind == "link")).all()


@pytest.mark.parametrize(
    ("word", "lang"),
    [("STOP", "en"), ("stopall", "en"), ("Opt Out", "en"), ("PARAR", "es"), ("No más", "es")],
)
def test_stop_opts_out_in_the_request_itself(db, account, phone, clock, fake_twilio, word, lang):
    waiting = queued_link_texts(db, account, clock)

    phone.post(word)

    # Before any job runs: opted out, the waiting texts cancelled, nothing sent yet.
    assert contact(db).opted_out_at == clock()
    for message in waiting:
        db.refresh(message)
        assert (message.status, message.skip_reason) == (MessageStatus.CANCELLED, "opted_out")
    assert fake_twilio.sent == []
    audit = db.scalar(select(AuditEvent).where(AuditEvent.action == "consent.sms_opt_out"))
    assert (audit.actor, audit.details["via"]) == ("customer", "sms STOP")

    phone.run_jobs()
    (confirmation,) = phone.replies
    assert confirmation.endswith(STOP_CONFIRMATION[lang])
    assert "STOP to opt out" not in confirmation


def test_stop_turns_pay_by_text_off_for_every_account_of_the_phone(db, account, phone):
    enroll(db, account)
    second = make_account(db, account_number="ACCT-20045678")
    enroll(db, second, last4="2222")
    phone.text("STOP")
    statuses = db.scalars(select(TextEnrollment.status)).all()
    assert statuses == [EnrollmentStatus.CANCELLED, EnrollmentStatus.CANCELLED]


def test_a_second_stop_gets_no_second_confirmation_and_then_silence(db, account, phone):
    assert len(phone.text("STOP")) == 1
    assert phone.text("STOP") == []
    assert phone.text("BAL") == []
    assert phone.text("HELP") == []
    links.send_link(db, account)
    db.commit()
    phone.run_jobs()
    assert len(phone.replies) == 1
    statuses = db.scalars(select(Message.skip_reason).where(Message.kind != "sms_stopped"))
    assert set(statuses) == {"opted_out"}


def test_a_stop_needs_no_inbound_job(db, account, phone):
    phone.post("STOP")
    assert runtime().queue.queues[HIGH].job_ids != []  # only the confirmation's send job
    assert all(j.startswith("message-") for j in runtime().queue.queues[HIGH].job_ids)


@pytest.mark.parametrize(("word", "lang"), [("START", "en"), ("unstop", "en"), ("COMENZAR", "es")])
def test_start_opts_back_in_and_pay_by_text_stays_off(db, account, phone, word, lang):
    enroll(db, account)
    phone.text("STOP")
    reply = phone.ask(word)
    assert contact(db).opted_out_at is None
    assert reply.endswith("Reply STOP to opt out" if lang == "en" else "PARAR para cancelar")
    actions = db.scalars(
        select(AuditEvent.action)
        .where(AuditEvent.action.like("consent.sms%"))
        .order_by(AuditEvent.id)
    )
    assert list(actions) == ["consent.sms_opt_out", "consent.sms_opt_in"]
    assert "Pay by Text is not on" in phone.ask("PAY")


def test_start_without_a_stop_just_confirms(db, account, phone):
    assert "You will get our texts again" in phone.ask("START")
    audits = db.scalars(select(AuditEvent).where(AuditEvent.action == "consent.sms_opt_in"))
    assert audits.all() == []


def test_stop_from_an_unknown_phone_is_honoured_too(db, phone):
    assert len(phone.text("STOP")) == 1
    assert contact(db).opted_out_at is not None
