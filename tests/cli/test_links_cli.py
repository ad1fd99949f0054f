"""``linkpay links send ACCOUNT_NUMBER [--channel sms|email|both]``."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from linkpay.models import Account, Channel, Contact, Link, Message, MessageStatus
from linkpay.queue import DEFAULT
from linkpay.runtime import runtime
from linkpay.services import links

PHONE = "+16025550143"


@pytest.fixture
def account(db):
    row = Account(
        account_number="1001",
        first_name="Ana",
        phone=PHONE,
        email="ana@example.com",
        balance_cents=12345,
        zip="85004",
    )
    db.add(row)
    db.commit()
    return row


def printed_link(output: str) -> str:
    return next(line for line in output.splitlines() if line.startswith("link: "))[6:]


def fresh(model):
    with runtime().db.session() as session:
        return session.scalars(select(model).order_by(model.id)).all()


def test_it_prints_the_link_and_queues_the_text(cli, account):
    result = cli("links", "send", "1001")
    assert result.exit_code == 0, result.output
    (link,) = fresh(Link)
    (message,) = fresh(Message)
    url = printed_link(result.output)
    assert "account 1001: balance $123.45" in result.output
    assert f"sms to {PHONE}: queued\n" in result.output
    assert message.status == MessageStatus.QUEUED
    assert f" {url} " in message.body  # the text carries the link that was printed
    with runtime().db.session() as session:
        assert links.lookup(session, url.rsplit("/", 1)[1]).link.id == link.id
    assert runtime().queue.queues[DEFAULT].job_ids == [f"message-{message.id}-0"]


def test_the_printed_link_opens_the_accounts_link(cli, account):
    url = printed_link(cli("links", "send", "1001").output)
    with runtime().db.session() as session:
        found = links.lookup(session, url.rsplit("/", 1)[1])
        assert found.usable
        assert found.link.account_id == account.id


def test_both_channels_report_each_message(cli, db, account):
    account.email = None
    db.commit()
    result = cli("links", "send", "1001", "--channel", "both")
    assert result.exit_code == 0, result.output
    assert f"sms to {PHONE}: queued\n" in result.output
    assert "email: suppressed: no_email\n" in result.output


def test_an_opted_out_phone_is_reported_as_suppressed(cli, db, account, clock):
    db.add(Contact(channel=Channel.SMS, address=PHONE, opted_out_at=clock()))
    db.commit()
    result = cli("links", "send", "1001")
    assert f"sms to {PHONE}: suppressed: opted_out\n" in result.output
    assert runtime().queue.queues[DEFAULT].count == 0


def test_in_quiet_hours_it_says_until_when_the_text_is_held(cli, account, clock):
    clock.set(dt.datetime(2026, 3, 11, 5, 0, tzinfo=dt.UTC))  # 22:00 in Phoenix
    result = cli("links", "send", "1001")
    assert (
        f"sms to {PHONE}: held until 08:00 local (America/Phoenix) tomorrow for quiet hours\n"
        in result.output
    )
    (message,) = fresh(Message)
    assert message.status == MessageStatus.SCHEDULED


def test_email_only(cli, account):
    result = cli("links", "send", "1001", "--channel", "email")
    assert "email to ana@example.com: queued\n" in result.output
    (message,) = fresh(Message)
    assert message.channel == Channel.EMAIL


def test_an_unknown_account_is_an_error(cli, account):
    result = cli("links", "send", "9999")
    assert result.exit_code == 1
    assert "no account with account number '9999'" in result.output
    assert fresh(Link) == []


def test_an_unknown_channel_is_refused(cli, account):
    result = cli("links", "send", "1001", "--channel", "fax")
    assert result.exit_code == 2
    assert fresh(Link) == []
