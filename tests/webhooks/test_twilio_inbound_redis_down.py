"""With Redis unreachable the webhook keeps the text in the database instead of losing
it, and the sweep answers it, once, when Redis is back."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from jobs.inbound import handle_inbound_sms
from linkpay.models import ProviderEvent
from linkpay.runtime import runtime
from linkpay.services import inbound_texts, sweep, text_commands
from tests.webhooks.inbound_flow import OTHER_PHONE, Phone, inbound, make_account


@pytest.fixture(autouse=True)
def twilio(fake_twilio):
    return fake_twilio


def texts(db) -> list[tuple[str, str]]:
    db.expire_all()
    return [(e.kind, e.payload["Body"]) for e in db.scalars(select(ProviderEvent))]


def test_a_text_taken_while_redis_is_down_is_answered_by_the_sweep_once_it_is_back(
    db, fake_twilio, client, run_jobs, redis_down
):
    make_account(db)
    phone = Phone(client, fake_twilio, run_jobs)
    phone.post("BAL")  # answered 200: Twilio would not deliver it again
    assert texts(db) == [(inbound_texts.HELD, "BAL")]

    redis_back = redis_down
    redis_back()
    counts = sweep.run(runtime().db)
    run_jobs()

    assert counts["inbound_texts.answer_held"] == 1
    assert texts(db) == [(inbound_texts.KIND, "BAL")]
    (reply,) = phone.replies
    assert "owes $124.50" in reply
    assert sweep.run(runtime().db)["inbound_texts.answer_held"] == 0


def test_a_held_text_delivered_again_is_answered_once(
    db, fake_twilio, client, run_jobs, redis_down
):
    make_account(db)
    text = inbound("BAL")
    phone = Phone(client, fake_twilio, run_jobs)
    held = phone.client.post("/webhooks/twilio/sms", data=text, headers=_signed(text))
    assert held.status_code == 200
    redis_down()  # Redis is back: Twilio's retry of the same text reaches the job
    assert handle_inbound_sms(dict(text)) == "duplicate: no reply"
    sweep.run(runtime().db)
    run_jobs()
    assert len(phone.replies) == 1


def test_one_held_text_that_fails_stays_held_and_the_others_are_answered(
    db, fake_twilio, client, run_jobs, redis_down, monkeypatch
):
    make_account(db)
    make_account(db, account_number="ACCT-20045678", phone=OTHER_PHONE)
    Phone(client, fake_twilio, run_jobs).post("BAL")
    Phone(client, fake_twilio, run_jobs, OTHER_PHONE).post("BAL")
    redis_down()
    handle = text_commands.handle

    def broken_for_the_first_phone(session, phone, command):
        if phone != OTHER_PHONE:
            raise RuntimeError("a bug answering this one")
        return handle(session, phone, command)

    monkeypatch.setattr(text_commands, "handle", broken_for_the_first_phone)
    assert sweep.run(runtime().db)["inbound_texts.answer_held"] == 1
    run_jobs()
    assert sorted(kind for kind, _ in texts(db)) == [inbound_texts.KIND, inbound_texts.HELD]
    assert [form["To"] for form in fake_twilio.sent] == [OTHER_PHONE]


def _signed(params: dict) -> dict:
    from tests.fakes.fixtures import twilio_signature
    from tests.webhooks.inbound_flow import WEBHOOK_URL

    return {"X-Twilio-Signature": twilio_signature(WEBHOOK_URL, params)}
