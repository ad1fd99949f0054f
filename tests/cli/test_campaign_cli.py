"""``linkpay campaign send`` and ``linkpay campaign show``."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from linkpay.models import (
    Account,
    Link,
    Message,
    MessageStatus,
    MethodKind,
    Payment,
    PaymentStatus,
)
from linkpay.queue import BULK
from linkpay.runtime import runtime

PHONES = ["+16025550143", "+16025551234", "+16022345678"]


@pytest.fixture
def accounts(db):
    rows = [
        Account(account_number=f"100{n}", first_name="Ana", phone=PHONES[n], balance_cents=b)
        for n, b in enumerate([1000, 2500, 0])
    ]
    db.add_all(rows)
    db.commit()
    return rows


def test_send_to_all_with_balance_prints_the_counts(cli, accounts):
    result = cli("campaign", "send", "--name", "March", "--all-with-balance")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "campaign 1"
    assert "queued: 2" in lines
    assert "deferred (quiet hours): 0" in lines
    assert "suppressed: 0" in lines
    assert "  opted_out: 0" in lines  # every reason has its line, zero or not
    (job,) = runtime().queue.queues[BULK].jobs  # one batch carries both messages
    assert len(job.args[0]) == 2


def test_an_accounts_csv_with_other_columns_and_a_byte_order_mark(cli, accounts, tmp_path):
    path = tmp_path / "accounts.csv"
    path.write_text(
        "\ufeffName,Account_Number\nAna,1000\nBea,1001\nZed,1002\nAna,1000\nNo,4040\n",
        encoding="utf-8",
    )
    result = cli("campaign", "send", "--name", "File", "--accounts-file", str(path))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "queued: 2" in lines
    assert "suppressed: 3" in lines
    for reason in ("no_balance", "duplicate", "unknown_account"):
        assert f"  {reason}: 1" in lines
    assert "unknown account numbers (1): 4040" in lines


def test_a_plain_list_of_account_numbers_without_a_header(cli, accounts, tmp_path):
    path = tmp_path / "numbers.txt"
    path.write_text("1000\n\n1001\n", encoding="utf-8")
    result = cli("campaign", "send", "--name", "List", "--accounts-file", str(path))
    assert "queued: 2" in result.output.splitlines()


def test_unknown_numbers_are_listed_up_to_twenty_then_counted(cli, accounts, tmp_path):
    path = tmp_path / "numbers.txt"
    path.write_text("".join(f"X{n}\n" for n in range(25)), encoding="utf-8")
    result = cli("campaign", "send", "--name", "Bad", "--accounts-file", str(path))
    lines = result.output.splitlines()
    listed = ", ".join(f"X{n}" for n in range(20))
    assert f"unknown account numbers (25): {listed}" in lines
    assert "  ... and 5 more" in lines


def test_a_csv_without_an_account_number_column_is_refused(cli, accounts, tmp_path):
    path = tmp_path / "accounts.csv"
    path.write_text("name,acct\nAna,1000\n", encoding="utf-8")
    result = cli("campaign", "send", "--name", "Bad", "--accounts-file", str(path))
    assert result.exit_code == 2
    assert "none named 'account_number'" in result.output
    assert _all(Link) == []


@pytest.mark.parametrize("extra", [[], ["--all-with-balance", "--accounts-file", "x.csv"]])
def test_exactly_one_source_of_accounts_is_required(cli, accounts, tmp_path, extra):
    (tmp_path / "x.csv").write_text("1000\n", encoding="utf-8")
    result = cli("campaign", "send", "--name", "None", *extra)
    assert result.exit_code == 2
    assert "exactly one of --accounts-file FILE or --all-with-balance" in result.output


def test_show_prints_what_was_sent_delivered_clicked_and_paid(cli, accounts, clock):
    cli("campaign", "send", "--name", "March", "--all-with-balance")
    with runtime().db.session() as session:
        first, second = session.scalars(select(Message).order_by(Message.id)).all()
        first.status = MessageStatus.DELIVERED
        link = session.get(Link, first.link_id)
        link.first_opened_at = clock()
        session.add(_payment(link, PaymentStatus.PAID, 1000, "C1"))
        session.add(_payment(session.get(Link, second.link_id), PaymentStatus.PENDING, 700, "C2"))
    result = cli("campaign", "show", "1")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "campaign 1: March"
    assert "at send: accounts 2, links 2, queued 2, deferred (quiet hours) 0, suppressed 0" in lines
    assert "  sms: queued 1, delivered 1" in lines
    assert "clicked: 1 of 2 links (50.0%)" in lines
    assert "paid: 1 payments, $10.00" in lines
    assert "pending: 1 payments, $7.00" in lines


def test_show_an_unknown_campaign_is_an_error(cli, accounts):
    result = cli("campaign", "show", "42")
    assert result.exit_code == 1
    assert "no campaign 42" in result.output


def _payment(link: Link, status: PaymentStatus, cents: int, confirmation: str) -> Payment:
    return Payment(
        account_id=link.account_id,
        link_id=link.id,
        confirmation_number=confirmation,
        amount_cents=cents,
        method_kind=MethodKind.CARD,
        method_label="Visa",
        method_last4="4242",
        status=status,
    )


def _all(model):
    with runtime().db.session() as session:
        return session.scalars(select(model)).all()
