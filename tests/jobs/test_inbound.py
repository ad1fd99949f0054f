"""The inbound text job: queued by the webhook on the high queue with the text Twilio
posted, stored once per MessageSid, and answered once however often it runs."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from jobs.inbound import handle_inbound_sms
from linkpay.models import ProviderEvent
from linkpay.queue import HIGH
from linkpay.runtime import runtime
from tests.webhooks.inbound_flow import Phone, inbound, make_account


@pytest.fixture(autouse=True)
def twilio(fake_twilio):
    return fake_twilio


@pytest.fixture
def phone(fake_twilio, client, run_jobs):
    return Phone(client, fake_twilio, run_jobs)


def test_the_webhook_queues_a_high_priority_job_carrying_the_text(db, phone):
    sid = "SM" + "ab" * 16
    phone.post("BAL", sid=sid)
    (job,) = runtime().queue.queues[HIGH].jobs
    assert job.id == f"inbound-{sid}"
    assert job.func_name == "jobs.inbound.handle_inbound_sms"
    assert job.args[0]["Body"] == "BAL" and job.args[0]["MessageSid"] == sid
    assert job.retries_left == 3  # a database blip must not lose the customer's text
    # Nothing is written in the request: the job stores the text.
    assert db.scalar(select(func.count(ProviderEvent.id))) == 0


def test_the_job_stores_and_answers_the_text_once(db, fake_twilio, run_jobs):
    make_account(db)
    text = inbound("BAL")
    assert handle_inbound_sms(text).startswith("balance: message ")
    assert handle_inbound_sms(dict(text)) == "duplicate: no reply"  # Twilio delivered it again
    run_jobs()
    (event,) = db.scalars(select(ProviderEvent)).all()
    assert (event.kind, event.event_id, event.payload["Body"]) == (
        "inbound_sms",
        text["MessageSid"],
        "BAL",
    )
    assert len(fake_twilio.sent) == 1


def test_a_text_without_a_message_sid_is_not_answered(app):
    assert handle_inbound_sms({"Body": "BAL", "From": "+16025550143"}) == "duplicate: no reply"
