"""Replacing a declined plan's card in headless Chromium on a phone-sized screen, through
the real forms with no script: Update payment method, the card inputs, the confirmation,
and the plan page with the new card and the next payment.

The server's clock is the frozen ``clock`` fixture (March 10, 2026, 11:00 in Phoenix)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from linkpay.models import Installment, InstallmentStatus, PlanFrequency
from linkpay.runtime import runtime
from linkpay.services import links, plans, sweep
from tests.browser import test_pay_in_browser as paying
from tests.browser.test_pay_in_browser import ENGLISH, fill_card, go_on
from tests.web.pay_flow import make_account

server, chromium, phone = paying.server, paying.chromium, paying.phone
pytestmark = paying.pytestmark


def charge_due(clock, minute: int) -> None:
    clock.set(dt.datetime(2026, 3, 31, 16, minute, tzinfo=dt.UTC))  # 09:0x in Phoenix
    sweep.run(runtime().db)
    runtime().queue.drain()


def test_update_a_declined_plans_card(server, phone, db, clock):
    account = make_account(db)
    offer = plans.create_plan_offer(
        db,
        account,
        installments=3,
        frequency=PlanFrequency.MONTHLY,
        first_date=dt.date(2026, 3, 31),
        expires_in_days=7,
        actor="staff:test",
    )
    db.commit()
    phone.goto(links.link_url(offer.link_id))
    go_on(phone, "Continue", "**/plan/method?**")
    fill_card(phone, ENGLISH, number="4000 0000 0000 0002")  # declined by the sandbox
    go_on(phone, "Continue", "**/agreement?**")
    phone.get_by_label("Type your full name to sign").fill("Ana Diaz")
    phone.get_by_label("I have read and agree").check()
    go_on(phone, "Sign and set up my plan", "**/plan?notice=signed")
    charge_due(clock, 1)

    phone.reload()
    assert "A payment was declined." in phone.content()
    go_on(phone, "Update payment method", "**/plan/change-method?**")
    fill_card(phone, ENGLISH, number="5555 5555 5555 4444")
    go_on(phone, "Continue", "**/newmethod?**")
    assert phone.get_by_role("heading").inner_text() == "Use this payment method for your plan?"
    assert "Mastercard ending 4444" in phone.content()
    go_on(phone, "Use this method", "**/plan?notice=method_changed")
    assert "Your payment method is updated." in phone.content()
    assert "Mastercard ending 4444" in phone.content()
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    charge_due(clock, 2)
    phone.reload()
    assert phone.locator("td", has_text="Paid").count() == 1
    assert "$41.50 on April 30, 2026" in phone.content()
    db.expire_all()
    first = db.scalars(select(Installment).order_by(Installment.sequence)).first()
    assert first.status == InstallmentStatus.PAID and first.attempts == 2
