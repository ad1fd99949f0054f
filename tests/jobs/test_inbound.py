"""The inbound text job: queued once per stored text on the high queue, and harmless for
an event that is not there."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from jobs.inbound import handle_inbound_sms
from linkpay.models import ProviderEvent
from linkpay.queue import HIGH
from linkpay.runtime import runtime
from tests.webhooks.inbound_flow import Phone, make_account


@pytest.fixture(autouse=True)
def twilio(fake_twilio):
    return fake_twilio


@pytest.fixture
def phone(fake_twilio, client, run_jobs):
    return Phone(client, fake_twilio, run_jobs)


def test_the_webhook_queues_one_high_priority_job_named_for_the_event(db, phone):
    phone.post("BAL", sid="SM" + "ab" * 16)
    phone.post("BAL", sid="SM" + "ab" * 16)  # Twilio delivering it again
    event_id = db.scalar(select(ProviderEvent.id))
    assert runtime().queue.queues[HIGH].job_ids == [f"inbound-{event_id}"]
    (job,) = runtime().queue.queues[HIGH].jobs
    assert (job.func_name, job.args) == ("jobs.inbound.handle_inbound_sms", (event_id,))
    assert job.retries_left == 3  # a database blip must not lose the customer's text


def test_the_job_answers_the_stored_text(db, phone):
    make_account(db)
    phone.post("BAL")
    event_id = db.scalar(select(ProviderEvent.id))
    assert handle_inbound_sms(event_id).startswith("balance: message ")


def test_a_missing_event_is_reported_not_raised(app):
    assert handle_inbound_sms(987_654) == "missing"
