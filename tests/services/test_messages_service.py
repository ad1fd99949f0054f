"""messages.queue_message decisions, after-commit job queueing, and the sweep's two tasks."""

from __future__ import annotations

import datetime as dt

import pytest

from linkpay.models import Account, Channel, Contact, Message, MessageStatus
from linkpay.queue import DEFAULT, HIGH
from linkpay.runtime import runtime
from linkpay.services import links, messages

PHOENIX_PHONE = "+16025550143"
NIGHT_IN_PHOENIX = dt.datetime(2026, 3, 11, 5, 0, tzinfo=dt.UTC)  # 22:00 on March 10
MORNING_IN_PHOENIX = dt.datetime(2026, 3, 11, 15, 0, tzinfo=dt.UTC)  # 08:00 on March 11


def make_account(db, **fields) -> Account:
    values = {
        "account_number": "A-100",
        "first_name": "Ana",
        "phone": PHOENIX_PHONE,
        "email": "ana@example.com",
        "balance_cents": 8412,
        "zip": "85004",
    }
    account = Account(**{**values, **fields})
    db.add(account)
    db.flush()
    return account


def queue_link(db, account, channel=Channel.SMS, **options) -> Message:
    link = links.create_link(db, account)
    context = links.link_context(account, link)
    return messages.queue_message(
        db, account, channel, "link", context=context, link_id=link.id, **options
    )


def job_ids(queue_name: str = DEFAULT) -> list[str]:
    return runtime().queue.queues[queue_name].job_ids


def carried(queue_name: str = DEFAULT) -> list[int]:
    """The message ids the queue's send jobs carry, one job each or in batches."""
    ids = []
    for job in runtime().queue.queues[queue_name].jobs:
        (arg,) = job.args
        ids.extend(arg if isinstance(arg, list) else [arg])
    return sorted(ids)


def test_a_queued_message_gets_its_job_only_when_the_transaction_commits(db):
    message = queue_link(db, make_account(db))
    assert message.status == MessageStatus.QUEUED
    assert job_ids() == []
    db.commit()
    assert job_ids() == [f"message-{message.id}-0"]


def test_no_job_is_queued_for_a_message_whose_transaction_rolls_back(db):
    queue_link(db, make_account(db))
    db.rollback()
    assert db.query(Message).count() == 0
    make_account(db, account_number="A-200")
    db.commit()  # a later commit does not resurrect the forgotten job
    assert job_ids() == []


@pytest.mark.parametrize("column", ["opted_out_at", "undeliverable_at"])
def test_a_blocked_phone_is_suppressed_with_the_reason(db, clock, column):
    account = make_account(db)
    db.add(Contact(channel=Channel.SMS, address=PHOENIX_PHONE, **{column: clock()}))
    message = queue_link(db, account)
    db.commit()
    reason = "opted_out" if column == "opted_out_at" else "undeliverable"
    assert (message.status, message.skip_reason) == (MessageStatus.SUPPRESSED, reason)
    assert job_ids() == []


def test_an_opt_out_of_one_channel_does_not_block_the_other(db, clock):
    account = make_account(db)
    db.add(Contact(channel=Channel.SMS, address=PHOENIX_PHONE, opted_out_at=clock()))
    message = queue_link(db, account, Channel.EMAIL)
    assert message.status == MessageStatus.QUEUED
    assert message.to_address == "ana@example.com"


@pytest.mark.parametrize(
    ("channel", "missing", "reason"),
    [(Channel.SMS, "phone", "no_phone"), (Channel.EMAIL, "email", "no_email")],
)
def test_no_address_for_the_channel_is_suppressed(db, channel, missing, reason):
    message = queue_link(db, make_account(db, **{missing: None}), channel)
    assert (message.status, message.skip_reason) == (MessageStatus.SUPPRESSED, reason)
    assert message.to_address is None


def test_an_unsolicited_text_in_quiet_hours_is_held_until_morning(db, clock):
    clock.set(NIGHT_IN_PHOENIX)
    message = queue_link(db, make_account(db))
    db.commit()
    assert message.status == MessageStatus.SCHEDULED
    assert message.skip_reason == "quiet_hours"
    assert message.send_after == MORNING_IN_PHOENIX
    assert job_ids() == []  # the sweep releases it; no timer to lose


def test_a_solicited_reply_is_not_held_by_quiet_hours(db, clock):
    clock.set(NIGHT_IN_PHOENIX)
    message = queue_link(db, make_account(db), solicited=True)
    db.commit()
    assert message.status == MessageStatus.QUEUED
    assert message.send_after is None
    assert job_ids(HIGH) == [f"message-{message.id}-0"]  # a reply jumps the bulk queue


def test_the_rendered_text_and_its_segments_are_saved_on_the_row(db):
    message = queue_link(db, make_account(db, first_name="María"))
    assert message.body.startswith("Springfield Water: Hi Maria,")
    assert message.segments == 1
    assert message.language == "en"


def test_release_due_releases_each_due_message_once_even_if_called_twice(db, clock):
    clock.set(NIGHT_IN_PHOENIX)
    held = [queue_link(db, make_account(db, account_number=f"A-{n}")) for n in range(3)]
    db.commit()
    assert messages.release_due(db) == 0  # not yet morning
    clock.set(MORNING_IN_PHOENIX)
    assert messages.release_due(db) == 3
    assert messages.release_due(db) == 0  # already claimed by the first call
    db.commit()
    assert messages.release_due(db) == 0
    db.commit()
    assert carried() == sorted(m.id for m in held)  # each message in exactly one job
    released = db.query(Message).populate_existing().all()
    assert {m.status for m in released} == {MessageStatus.QUEUED}
    assert {m.job_id for m in released} <= set(job_ids())  # the sweep can check its job


def test_requeue_stalled_queues_again_a_message_whose_job_was_lost(db, clock):
    stalled = queue_link(db, make_account(db))
    db.commit()
    runtime().queue.queues[DEFAULT].empty()  # Redis lost it
    clock.advance(minutes=11)
    fresh = queue_link(db, make_account(db, account_number="A-200"))
    db.commit()
    assert job_ids() == [f"message-{fresh.id}-0"]
    assert messages.requeue_stalled(db) == 1  # the fresh one is not stalled yet
    db.commit()
    assert sorted(job_ids()) == sorted([f"message-{stalled.id}-0", f"message-{fresh.id}-0"])


def test_requeue_stalled_does_not_duplicate_a_job_still_waiting(db, clock):
    message = queue_link(db, make_account(db))
    db.commit()
    clock.advance(minutes=30)
    assert messages.requeue_stalled(db) == 0  # its job is still waiting behind others
    db.commit()
    assert job_ids() == [f"message-{message.id}-0"]
