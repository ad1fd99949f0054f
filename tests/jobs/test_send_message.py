"""The send job against the fake Twilio API: claim, send, record, retry, give up."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from sqlalchemy import select

from jobs.messages import backoff_seconds, send_message
from jobs.sweep import run_sweep
from linkpay.models import Channel, Contact, Message, MessageStatus
from linkpay.runtime import runtime
from linkpay.services.messages import send_job


def reload(db, message: Message) -> Message:
    db.expire_all()
    return db.get(Message, message.id)


def contact_for(db, address: str) -> Contact | None:
    db.expire_all()
    return db.scalar(select(Contact).where(Contact.address == address))


def sweep_and_run(run_jobs) -> None:
    """What a worker does every interval: release due retries, then run their jobs."""
    run_sweep()
    run_jobs()


@pytest.fixture
def sms(fake_twilio, app, make_message):
    return make_message(Channel.SMS)


def test_a_queued_message_is_saved_as_sending_before_the_call_and_sent_after(
    fake_twilio, app, db, sms, run_jobs
):
    seen_during_call = []

    def look_at_the_row(_request):
        with app.extensions["linkpay"].db.session() as other:
            seen_during_call.append(other.get(Message, sms.id).status)

    fake_twilio.on_request = look_at_the_row
    runtime().queue.enqueue(send_job(sms))
    run_jobs()

    assert seen_during_call == [MessageStatus.SENDING]
    message = reload(db, sms)
    assert message.status == MessageStatus.SENT
    assert message.provider == "twilio"
    assert message.provider_id == fake_twilio.sids[0]
    assert message.sent_at == runtime().now()
    assert message.attempts == 1
    assert fake_twilio.sent[0]["To"] == sms.to_address


def test_a_job_enqueued_twice_sends_once(fake_twilio, app, db, sms, run_jobs):
    spec = send_job(sms)
    assert runtime().queue.enqueue(spec)
    assert not runtime().queue.enqueue(spec)  # same job id, still waiting: a no-op
    run_jobs()
    assert send_message(sms.id) == "skipped: sent"
    assert send_message(sms.id) == "skipped: sent"

    assert len(fake_twilio.requests) == 1
    assert reload(db, sms).attempts == 1


def test_a_message_another_worker_claimed_is_left_alone(fake_twilio, app, db, make_message):
    message = make_message(Channel.SMS, status=MessageStatus.SENDING, attempts=1)
    assert send_message(message.id) == "skipped: sending"
    assert fake_twilio.requests == []


def test_429_with_retry_after_is_not_retried_before_that(
    fake_twilio, app, db, sms, clock, run_jobs
):
    fake_twilio.error(20429, "Too Many Requests", status=429, headers={"Retry-After": "300"})
    start = clock()
    assert send_message(sms.id) == "retry"

    message = reload(db, sms)
    assert message.status == MessageStatus.SCHEDULED
    assert message.error_code == "20429"
    assert message.send_after == start + dt.timedelta(seconds=300)  # not the 30 s back-off

    clock.advance(seconds=299)
    sweep_and_run(run_jobs)
    assert len(fake_twilio.requests) == 1
    clock.advance(seconds=1)
    sweep_and_run(run_jobs)
    assert reload(db, sms).status == MessageStatus.SENT
    assert len(fake_twilio.requests) == 2


def test_a_short_retry_after_still_waits_the_back_off(fake_twilio, app, db, sms, clock, run_jobs):
    fake_twilio.error(20429, "Too Many Requests", status=429, headers={"Retry-After": "7"})
    start = clock()
    send_message(sms.id)

    send_after = reload(db, sms).send_after
    assert send_after >= start + dt.timedelta(seconds=7)
    assert send_after == start + dt.timedelta(seconds=backoff_seconds(1))
    clock.advance(seconds=7)
    sweep_and_run(run_jobs)
    assert len(fake_twilio.requests) == 1


def test_a_500_is_retried_by_the_sweep_and_then_sent(fake_twilio, app, db, sms, clock, run_jobs):
    fake_twilio.reply(500, {"code": 20500, "message": "Internal Server Error", "status": 500})
    runtime().queue.enqueue(send_job(sms))
    run_jobs()
    message = reload(db, sms)
    assert (message.status, message.attempts, message.error_code) == (
        MessageStatus.SCHEDULED,
        1,
        "20500",
    )

    clock.advance(seconds=backoff_seconds(1))
    sweep_and_run(run_jobs)

    message = reload(db, sms)
    assert message.status == MessageStatus.SENT
    assert message.attempts == 2
    assert message.error_code is None
    assert message.provider_id == fake_twilio.sids[0]
    assert [r.status for r in fake_twilio.requests] == [500, 201]


@pytest.fixture
def short_timeout(fake_twilio, config_overrides):
    config_overrides["twilio.timeout_seconds"] = 1
    return fake_twilio


def test_a_timeout_is_transient(short_timeout, app, db, make_message):
    message = make_message(Channel.SMS)
    short_timeout.stall(5)
    assert send_message(message.id) == "retry"
    message = reload(db, message)
    assert message.status == MessageStatus.SCHEDULED
    assert message.error_code == "timeout"


def test_an_invalid_number_fails_marks_the_contact_and_is_never_retried(
    fake_twilio, app, db, sms, clock, run_jobs, make_message
):
    fake_twilio.error(21211, "The 'To' number is not a valid phone number.")
    assert send_message(sms.id) == "failed"

    message = reload(db, sms)
    assert message.status == MessageStatus.FAILED
    assert message.error_code == "21211"
    contact = contact_for(db, sms.to_address)
    assert contact.undeliverable_at == clock()
    assert "21211" in contact.undeliverable_reason
    assert contact.opted_out_at is None

    clock.advance(hours=2)
    sweep_and_run(run_jobs)
    account = db.get(Message, sms.id).account_id
    from linkpay.models import Account

    later = make_message(Channel.SMS, account=db.get(Account, account))
    assert send_message(later.id) == "suppressed: undeliverable"
    assert len(fake_twilio.requests) == 1


def test_21610_marks_the_number_opted_out(fake_twilio, app, db, sms, clock):
    fake_twilio.error(21610, "Attempt to send to unsubscribed recipient")
    assert send_message(sms.id) == "failed"

    contact = contact_for(db, sms.to_address)
    assert contact.opted_out_at == clock()
    assert contact.undeliverable_at is None


def test_an_opt_out_after_queueing_cancels_without_a_request(fake_twilio, app, db, sms, clock):
    db.add(Contact(channel=Channel.SMS, address=sms.to_address, opted_out_at=clock()))
    db.commit()

    assert send_message(sms.id) == "cancelled: opted_out"
    message = reload(db, sms)
    assert (message.status, message.skip_reason) == (MessageStatus.CANCELLED, "opted_out")
    assert message.attempts == 0
    assert fake_twilio.requests == []


def test_an_address_found_undeliverable_after_queueing_is_suppressed(
    fake_twilio, app, db, sms, clock
):
    db.add(
        Contact(
            channel=Channel.SMS,
            address=sms.to_address,
            undeliverable_at=clock(),
            undeliverable_reason="twilio 30005",
        )
    )
    db.commit()

    assert send_message(sms.id) == "suppressed: undeliverable"
    assert reload(db, sms).status == MessageStatus.SUPPRESSED
    assert fake_twilio.requests == []


def test_quiet_hours_at_send_time_reschedule_the_message(
    fake_twilio, app, db, sms, clock, run_jobs
):
    clock.set(dt.datetime(2026, 3, 11, 5, 0, tzinfo=dt.UTC))  # 22:00 in Phoenix
    runtime().queue.enqueue(send_job(sms))
    run_jobs()

    message = reload(db, sms)
    assert message.status == MessageStatus.SCHEDULED
    assert message.skip_reason == "quiet_hours"
    assert message.send_after == dt.datetime(2026, 3, 11, 15, 0, tzinfo=dt.UTC)  # 08:00
    assert fake_twilio.requests == []

    clock.set(dt.datetime(2026, 3, 11, 14, 59, tzinfo=dt.UTC))
    assert send_message(sms.id) == "skipped: scheduled"  # a stray early job sends nothing
    clock.set(dt.datetime(2026, 3, 11, 15, 0, tzinfo=dt.UTC))
    assert send_message(sms.id) == "sent"


def test_a_message_held_at_send_time_is_sent_by_the_sweeps_job(
    fake_twilio, app, db, sms, clock, run_jobs
):
    clock.set(dt.datetime(2026, 3, 11, 5, 0, tzinfo=dt.UTC))
    runtime().queue.enqueue(send_job(sms))
    run_jobs()
    clock.set(dt.datetime(2026, 3, 11, 15, 0, tzinfo=dt.UTC))
    sweep_and_run(run_jobs)
    assert reload(db, sms).status == MessageStatus.SENT


def test_a_stray_early_job_does_not_block_the_sweeps_job(
    fake_twilio, app, db, make_message, clock, run_jobs
):
    later = clock() + dt.timedelta(minutes=5)
    message = make_message(Channel.SMS, status=MessageStatus.SCHEDULED, send_after=later)
    runtime().queue.enqueue(send_job(message))  # run before its time: does nothing
    run_jobs()
    assert fake_twilio.requests == []

    clock.set(later)
    sweep_and_run(run_jobs)  # the same job id again: the finished record does not block it
    assert reload(db, message).status == MessageStatus.SENT


def test_a_reply_the_customer_asked_for_goes_out_in_quiet_hours(
    fake_twilio, app, db, make_message, clock
):
    clock.set(dt.datetime(2026, 3, 11, 5, 0, tzinfo=dt.UTC))
    reply = make_message(Channel.SMS, solicited=True)
    assert send_message(reply.id) == "sent"


@pytest.fixture
def two_attempts(fake_twilio, config_overrides):
    config_overrides["messages.max_attempts"] = 2
    return fake_twilio


def test_after_max_attempts_the_message_fails(two_attempts, app, db, make_message, clock, run_jobs):
    message = make_message(Channel.SMS)
    two_attempts.reply(503, {"code": 20503, "message": "Service Unavailable", "status": 503})
    two_attempts.reply(503, {"code": 20503, "message": "Service Unavailable", "status": 503})
    assert send_message(message.id) == "retry"
    clock.advance(hours=1)
    sweep_and_run(run_jobs)

    message = reload(db, message)
    assert (message.status, message.attempts, message.error_code) == (
        MessageStatus.FAILED,
        2,
        "20503",
    )
    clock.advance(hours=1)
    sweep_and_run(run_jobs)
    assert len(two_attempts.requests) == 2
    assert contact_for(db, message.to_address) is None  # a provider outage blames no one


def test_the_outbox_transport_marks_the_message_sent(app, db, make_message):
    message = make_message(Channel.EMAIL)
    assert send_message(message.id) == "sent"
    message = reload(db, message)
    assert (message.status, message.provider, message.provider_id) == (
        MessageStatus.SENT,
        "outbox",
        str(message.id),
    )


def test_the_job_never_logs_the_body(fake_twilio, app, sms, caplog):
    caplog.set_level(logging.DEBUG, logger="jobs")
    fake_twilio.error(21211, "The 'To' number is not a valid phone number.")
    send_message(sms.id)
    assert caplog.records
    assert "pay.example.org/p/" not in caplog.text


def test_back_off_grows_and_is_capped():
    waits = [backoff_seconds(n) for n in range(1, 7)]
    assert waits[:3] == [30, 120, 480]
    assert waits == sorted(waits)
    assert max(waits) == 30 * 60
