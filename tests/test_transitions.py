"""Every status enum's transition table is walked: each listed move is allowed through
``advance()``, and a move the table does not list is refused; ``claim()`` moves a row
once however many try from the same read."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import pytest

from linkpay.models import (
    TRANSITIONS,
    IllegalTransition,
    InstallmentStatus,
    LinkStatus,
    OfferStatus,
    PlanStatus,
    ReminderStatus,
    ScheduledPaymentStatus,
    advance,
    claim,
)
from tests.web.pay_flow import make_account, make_link

ENUMS = sorted(TRANSITIONS, key=lambda cls: cls.__name__)


def test_the_plan_and_offer_enums_declare_their_transitions():
    for cls in (
        ScheduledPaymentStatus,
        OfferStatus,
        ReminderStatus,
        PlanStatus,
        InstallmentStatus,
    ):
        assert cls in TRANSITIONS
        assert set(TRANSITIONS[cls]) == set(cls)


@pytest.mark.parametrize("cls", ENUMS, ids=lambda cls: cls.__name__)
def test_every_listed_move_is_allowed_and_every_other_is_refused(cls):
    table = TRANSITIONS[cls]
    refused = 0
    for old, new in itertools.product(cls, cls):
        row = SimpleNamespace(id=1, status=old)
        if new in table[old]:
            advance(row, new)
            assert row.status == new
        else:
            with pytest.raises(IllegalTransition):
                advance(row, new)
            assert row.status == old
            refused += 1
    assert refused > 0  # every machine has at least one move it forbids


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (InstallmentStatus.PAID, InstallmentStatus.PROCESSING),  # never charged twice
        (InstallmentStatus.CANCELLED, InstallmentStatus.PROCESSING),  # never after cancelling
        (ScheduledPaymentStatus.PENDING, ScheduledPaymentStatus.PAID),  # only through a charge
        (OfferStatus.EXPIRED, OfferStatus.ACCEPTED),  # a dead offer cannot be accepted
        (PlanStatus.CANCELLED, PlanStatus.ACTIVE),
        (ReminderStatus.SENT, ReminderStatus.PENDING),  # each reminder goes once
    ],
)
def test_the_moves_that_would_cost_a_customer_money_are_refused(old, new):
    with pytest.raises(IllegalTransition):
        advance(SimpleNamespace(id=7, status=old), new)


def test_a_claim_moves_a_row_once_and_shows_what_the_database_holds(db):
    link, _ = make_link(db, make_account(db))
    assert claim(db, link, LinkStatus.LOCKED, expected=LinkStatus.ACTIVE, zip_failures=3)
    assert (link.status, link.zip_failures) == (LinkStatus.LOCKED, 3)
    # A second claim from the same stale read loses, and writes nothing.
    assert not claim(db, link, LinkStatus.REVOKED, expected=LinkStatus.ACTIVE, zip_failures=0)
    assert (link.status, link.zip_failures) == (LinkStatus.LOCKED, 3)


def test_a_claim_the_table_does_not_list_is_refused_before_any_write(db):
    link, _ = make_link(db, make_account(db))
    with pytest.raises(IllegalTransition):
        claim(db, link, LinkStatus.ACTIVE, expected=[LinkStatus.ACTIVE, LinkStatus.USED])
    db.expire_all()
    assert link.status == LinkStatus.ACTIVE
