"""Settlement offers made by ``accounts import``'s optional offer columns."""

from __future__ import annotations

import datetime as dt
import io
import re

import pytest
from sqlalchemy import event, func, select

from linkpay.models import (
    Account,
    AuditEvent,
    Link,
    Message,
    MessageStatus,
    Offer,
    OfferReminder,
    OfferStatus,
)
from linkpay.services import accounts_import
from linkpay.services.accounts_import import ImportFileError, import_accounts
from tests.web.pay_flow import make_account

HEADER = (
    "account_number,first_name,last_name,phone,email,balance,due_date,zip,language,"
    "offer_amount,offer_percent,offer_deadline,offer_channel"
)
UTC = dt.UTC
# The clock fixture stands at 2026-03-10 11:00 in Phoenix; deadlines end at local midnight.
END_OF_MARCH_20 = dt.datetime(2026, 3, 21, 7, tzinfo=UTC)


def run(db, *rows: str, header: str = HEADER, **kwargs):
    text = "\n".join((header, *rows)) + "\n"
    return import_accounts(db, io.BytesIO(text.encode()), **kwargs)


def count(db, model, *where) -> int:
    return db.scalar(select(func.count()).select_from(model).where(*where))


def offers_of(db, number: str) -> list[Offer]:
    db.expire_all()
    query = select(Offer).join(Account).where(Account.account_number == number)
    return list(db.scalars(query.order_by(Offer.id)))


def reasons(result) -> list[tuple[int, str, str]]:
    return [(r.line, r.account_number, r.reason) for r in result.rejected]


def test_a_row_with_an_amount_makes_an_offer_delivered_as_a_link(db, run_jobs):
    result = run(
        db,
        "A1,Ana,,602-555-0143,ana@example.com,124.50,,,,$80.00,,2026-03-20,both",
        "A2,Bob,,602-555-0144,,50,,,,,,,",
        actor="staff:dana",
    )
    assert (result.created, result.offers_made, result.offers_unchanged) == (2, 1, 0)
    assert result.rejected == []
    [offer] = offers_of(db, "A1")
    assert (offer.status, offer.amount_cents, offer.percent, offer.balance_cents) == (
        OfferStatus.OFFERED,
        8_000,
        None,
        12_450,
    )
    assert (offer.channel, offer.expires_at, offer.created_by) == (
        "both",
        END_OF_MARCH_20,
        "staff:dana",
    )
    link = db.get(Link, offer.link_id)
    assert link.expires_at == END_OF_MARCH_20  # the offer's own link, lasting as long
    assert count(db, OfferReminder, OfferReminder.offer_id == offer.id) == 3
    audit = db.scalar(select(AuditEvent).where(AuditEvent.action == "offer.created"))
    assert (audit.actor, audit.details["amount_cents"]) == ("staff:dana", 8_000)
    assert offers_of(db, "A2") == []
    run_jobs()
    delivered = db.scalars(select(Message).where(Message.kind == "settlement_offer")).all()
    assert sorted(m.channel.value for m in delivered) == ["email", "sms"]
    assert {m.status for m in delivered} == {MessageStatus.SENT}


def test_a_percent_is_of_the_row_balance_rounded_up_and_sms_is_the_default_channel(db):
    result = run(db, "A1,,,602-555-0143,,100.01,,,,,60%,2026-03-20,")
    assert result.offers_made == 1
    [offer] = offers_of(db, "A1")
    assert (offer.amount_cents, offer.percent, offer.channel) == (6_001, 60, "sms")


def test_importing_the_same_file_again_sends_no_second_offer(db, run_jobs):
    rows = (
        "A1,,,602-555-0143,,124.50,,,,80,,2026-03-20,sms",
        "A2,,,602-555-0144,,300,,,,,50,2026-03-20,",
    )
    run(db, *rows)
    again = run(db, *rows)
    assert (again.unchanged, again.offers_made, again.offers_unchanged) == (2, 0, 2)
    assert count(db, Offer) == 2
    run_jobs()
    assert count(db, Message, Message.kind == "settlement_offer") == 2


@pytest.mark.parametrize(
    "row",
    [
        "A1,,,602-555-0143,ana@example.com,124.50,,,,75,,2026-03-20,sms",  # another amount
        "A1,,,602-555-0143,ana@example.com,124.50,,,,80,,2026-03-21,sms",  # another deadline
        "A1,,,602-555-0143,ana@example.com,124.50,,,,80,,2026-03-20,both",  # another channel
        # the same amount, but of a new balance
        "A1,,,602-555-0143,ana@example.com,130.00,,,,80,,2026-03-20,sms",
    ],
)
def test_new_terms_replace_the_open_offer(db, row):
    run(db, "A1,,,602-555-0143,ana@example.com,124.50,,,,80,,2026-03-20,sms")
    result = run(db, row)
    assert (result.offers_made, result.offers_unchanged) == (1, 0)
    first, second = offers_of(db, "A1")
    assert (first.status, second.status) == (OfferStatus.REPLACED, OfferStatus.OFFERED)


def test_a_row_without_offer_cells_leaves_the_open_offer_alone(db):
    run(db, "A1,,,602-555-0143,,124.50,,,,80,,2026-03-20,sms")
    result = run(db, "A1,Ana,,602-555-0143,,124.50,,,,,,,")
    assert (result.updated, result.offers_made, result.offers_unchanged) == (1, 0, 0)
    [offer] = offers_of(db, "A1")
    assert offer.status == OfferStatus.OFFERED


@pytest.mark.parametrize(
    "cells, reason",
    [
        ("80,50,2026-03-20,", "give offer_amount or offer_percent, not both"),
        (
            "124.50,,2026-03-20,",
            "offer_amount '124.50': a settlement must be more than $0 and less than the balance",
        ),
        (
            "200,,2026-03-20,",
            "offer_amount '200': a settlement must be more than $0 and less than the balance",
        ),
        (
            "0,,2026-03-20,",
            "offer_amount '0': a settlement must be more than $0 and less than the balance",
        ),
        ("-5,,2026-03-20,", "offer_amount '-5': amount cannot be negative"),
        ("8.001,,2026-03-20,", "offer_amount '8.001': more than two decimal places"),
        (",100,2026-03-20,", "offer_percent '100': the percent must be between 1 and 99"),
        (",0,2026-03-20,", "offer_percent '0': the percent must be between 1 and 99"),
        (",60.5,2026-03-20,", "offer_percent '60.5': must be a whole percent from 1 to 99"),
        ("80,,2026-03-09,", "offer_deadline 2026-03-09 is in the past"),
        ("80,,2026-02-30,", "offer_deadline '2026-02-30' is not a YYYY-MM-DD date"),
        ("80,,03/20/2026,", "offer_deadline '03/20/2026' is not a YYYY-MM-DD date"),
        (",,2026-03-20,", "offer_deadline needs an offer_amount or an offer_percent"),
        ("80,,,", "an offer needs an offer_deadline"),
        (",50,,email", "an offer needs an offer_deadline"),
        ("80,,2026-03-20,fax", "offer_channel 'fax' must be sms, email or both"),
        ("80,,2026-03-20,email", "offer_channel email: the account has no email address"),
    ],
)
def test_a_bad_offer_rejects_the_whole_row_with_its_line(db, cells, reason):
    result = run(
        db,
        "A1,,,602-555-0143,,50,,,,,,,",
        f"A2,,,602-555-0144,,124.50,,,,{cells}",
        "A3,,,602-555-0145,,50,,,,,,,",
    )
    assert reasons(result) == [(3, "A2", reason)]
    assert result.created == 2
    assert count(db, Account, Account.account_number == "A2") == 0
    assert count(db, Offer) == 0 and count(db, Link) == 0 and count(db, Message) == 0


def test_an_offer_on_a_balance_of_zero_is_rejected(db):
    result = run(db, "A1,,,602-555-0143,,0,,,,,50,2026-03-20,")
    assert reasons(result) == [(2, "A1", "offer_percent '50': the account owes nothing")]


def test_a_rejected_offer_leaves_the_existing_account_as_it_was(db):
    make_account(db, account_number="A1", balance_cents=10_000, email=None)
    result = run(db, "A1,Zed,,602-555-0143,,200,,,,100,,2026-03-20,email")
    assert reasons(result) == [(2, "A1", "offer_channel email: the account has no email address")]
    db.expire_all()
    account = db.scalar(select(Account).where(Account.account_number == "A1"))
    assert (account.first_name, account.balance_cents) == ("Ana", 10_000)


def test_a_column_the_file_lacks_keeps_the_stored_address_for_delivery(db):
    make_account(db, account_number="A1", email="ana@example.com")
    header = "account_number,phone,balance,offer_amount,offer_deadline,offer_channel"
    result = run(db, "A1,602-555-0143,124.50,80,2026-03-20,email", header=header)
    assert (result.offers_made, result.rejected) == (1, [])
    # An empty cell in a present column clears the address, so it cannot carry the offer.
    cleared = run(
        db,
        "A1,602-555-0143,124.50,,79,2026-03-20,email",
        header="account_number,phone,balance,email,offer_amount,offer_deadline,offer_channel",
    )
    assert reasons(cleared) == [(2, "A1", "offer_channel email: the account has no email address")]


def test_a_channel_alone_asks_for_nothing(db):
    result = run(db, "A1,,,602-555-0143,,50,,,,,,,email")
    assert (result.created, result.offers_made, result.rejected) == (1, 0, [])


@pytest.mark.parametrize(
    "columns, message",
    [
        ("offer_amount", "missing column offer_deadline (the file has offer_amount)"),
        ("offer_percent,offer_channel", "missing column offer_deadline (the file has"),
        ("offer_channel", "missing column offer_deadline (the file has offer_channel)"),
        ("offer_deadline", "offer_deadline needs an offer_amount or offer_percent column"),
    ],
)
def test_an_incomplete_set_of_offer_columns_refuses_the_file(db, columns, message):
    with pytest.raises(ImportFileError, match=re.escape(message)):
        run(db, "A1,602-555-0143,50", header=f"account_number,phone,balance,{columns}")
    assert count(db, Account) == 0


def test_a_file_without_offer_columns_says_so(db):
    result = run(db, "A1,602-555-0143,50", header="account_number,phone,balance")
    assert (result.has_offer_columns, result.offers_made) == (False, 0)
    assert run(
        db, "A2,602-555-0143,50,", header="account_number,phone,balance,offer_amount,offer_deadline"
    ).has_offer_columns


def test_offers_are_made_in_the_import_batches(db):
    commits = []
    event.listen(db, "after_commit", commits.append)
    rows = [
        f"A{n},,,602-555-{n:04},,100,,,,{'50' if n % 3 == 0 else ''},,"
        f"{'2026-03-20' if n % 3 == 0 else ''},"
        for n in range(10)
    ]
    result = run(db, *rows, batch_size=4)
    assert (result.created, result.offers_made) == (10, 4)
    assert len(commits) == 3  # one transaction per batch of 4, offers included
    assert count(db, Offer, Offer.status == OfferStatus.OFFERED) == 4
    assert len(db.identity_map) <= 4 * 6  # a batch's rows, not the file's


def test_a_deadline_that_ends_before_its_batch_is_written_rejects_only_that_row(
    db, clock, monkeypatch
):
    """The row was read at 23:59 on its deadline day and its batch written after midnight:
    the service refuses the offer, the batch is written again without the row, and the
    other row's offer is made once, with one delivery."""
    clock.set(dt.datetime(2026, 3, 11, 6, 59, tzinfo=UTC))  # 23:59 on March 10 in Phoenix
    real_write = accounts_import._BatchWriter._write

    def write_after_midnight(self):
        clock.set(dt.datetime(2026, 3, 11, 7, 1, tzinfo=UTC))
        return real_write(self)

    monkeypatch.setattr(accounts_import._BatchWriter, "_write", write_after_midnight)
    result = run(
        db,
        "A1,,,602-555-0143,,124.50,,,,80,,2026-03-20,",
        "A2,,,602-555-0144,,124.50,,,,80,,2026-03-10,",
        "A3,,,602-555-0145,,50,,,,,,,",
    )
    assert reasons(result) == [(3, "A2", "offer refused: the deadline is in the past")]
    assert (result.created, result.offers_made) == (2, 1)
    assert count(db, Account, Account.account_number == "A2") == 0
    assert count(db, Offer) == 1 and count(db, Link) == 1
    # The first attempt's text was rolled back with its offer; the second one's stands.
    [message] = db.scalars(select(Message).where(Message.kind == "settlement_offer")).all()
    assert message.status != MessageStatus.CANCELLED
