"""``linkpay offers create`` and ``linkpay plans offer|cancel|list``."""

from __future__ import annotations

import datetime as dt

from linkpay.models import Offer, Plan, PlanStatus
from linkpay.services import plans
from tests.plans.conftest import saved_method
from tests.web.pay_flow import make_account


def test_offers_create_by_amount_prints_the_offer_and_its_link(cli, db):
    make_account(db)
    result = cli(
        "offers",
        "create",
        "ACCT-10046789",
        "--amount",
        "80.00",
        "--deadline",
        "2026-03-20",
        "--channel",
        "both",
    )
    assert result.exit_code == 0, result.output
    assert "settle $124.50 for $80.00 by 2026-03-20" in result.output
    assert "link: https://pay.example.org/p/" in result.output


def test_offers_create_refuses_a_bad_offer_with_a_reason(cli, db):
    make_account(db)
    result = cli(
        "offers", "create", "ACCT-10046789", "--percent", "120", "--deadline", "2026-03-20"
    )
    assert result.exit_code == 1
    assert "between 1 and 99" in result.output
    assert (
        cli("offers", "create", "NOPE", "--amount", "5", "--deadline", "2026-03-20").exit_code == 1
    )


def test_plans_offer_list_and_cancel(cli, db):
    account = make_account(db, balance_cents=30_000)
    result = cli(
        "plans",
        "offer",
        "ACCT-10046789",
        "--installments",
        "3",
        "--frequency",
        "monthly",
        "--first-date",
        "2026-03-31",
        "--expires-in-days",
        "7",
    )
    assert result.exit_code == 0, result.output
    assert "2. 2026-04-30 $100.00" in result.output
    listed = cli("plans", "list").output
    assert "plan  $300.00  offered  next: reminder 1 at" in listed
    offer = db.query(Offer).one()
    plan = plans.accept_offer(
        db,
        offer,
        signature_name="Ana Diaz",
        agreement_version=plans.AGREEMENT_VERSION,
        method=saved_method(db, account),
        ip=None,
        user_agent=None,
    )
    db.commit()
    listed = cli("plans", "list").output
    assert f"plan {plan.id}  ACCT-10046789  $300.00  active  next: charge installment 1" in listed
    assert cli("plans", "cancel", str(plan.id)).exit_code == 0
    db.expire_all()
    assert db.get(Plan, plan.id).status == PlanStatus.CANCELLED
    again = cli("plans", "cancel", str(plan.id))
    assert again.exit_code == 1 and "not active" in again.output
    assert dt.date(2026, 3, 31) == offer.first_date
