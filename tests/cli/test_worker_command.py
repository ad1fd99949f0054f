"""``linkpay worker --burst``: sends what the database holds as due, then stops."""

import datetime as dt

import pytest

from linkpay.cli import main
from linkpay.models import Account, Channel, Message, MessageStatus
from linkpay.services import links

NIGHT_IN_PHOENIX = dt.datetime(2026, 3, 11, 5, 0, tzinfo=dt.UTC)  # 22:00 local
MORNING_IN_PHOENIX = dt.datetime(2026, 3, 11, 15, 1, tzinfo=dt.UTC)  # 08:01 local


@pytest.fixture
def worker(app, runner, monkeypatch):
    monkeypatch.setattr("linkpay.create_app", lambda *args, **kwargs: app)

    def run(*args: str):
        return runner.invoke(main, ["worker", *args], catch_exceptions=False)

    return run


def test_a_text_held_overnight_goes_out_when_a_burst_worker_runs_in_the_morning(worker, db, clock):
    clock.set(NIGHT_IN_PHOENIX)
    account = Account(account_number="W-1", phone="+16025550143", balance_cents=5000)
    db.add(account)
    db.flush()
    _, (message,) = links.send_link(db, account, channel="sms")
    db.commit()
    assert message.status == MessageStatus.SCHEDULED

    result = worker("--burst")  # still night: nothing is due
    assert result.exit_code == 0
    assert db.get(Message, message.id, populate_existing=True).status == MessageStatus.SCHEDULED

    clock.set(MORNING_IN_PHOENIX)
    result = worker("--burst")
    assert result.exit_code == 0
    assert "messages.release_due 1" in result.output
    sent = db.get(Message, message.id, populate_existing=True)
    assert (sent.channel, sent.status, sent.provider) == (Channel.SMS, MessageStatus.SENT, "outbox")
