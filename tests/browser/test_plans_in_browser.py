"""Scheduled payments, payment plans and settlement offers in headless Chromium on a
phone-sized screen, through the real forms with no script on the pages: schedule a payment
and cancel it, sign a plan and see its installments, settle an offer.

The server's clock is the frozen ``clock`` fixture (March 10, 2026, 11:00 in Phoenix)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from linkpay.models import (
    Account,
    OfferStatus,
    Plan,
    ScheduledPayment,
    ScheduledPaymentStatus,
)
from linkpay.runtime import runtime
from linkpay.services import links, offers, sweep
from tests.browser import test_pay_in_browser as paying
from tests.browser.test_pay_in_browser import ENGLISH, fill_card, go_on, link_for
from tests.web.pay_flow import make_account, plan_offer

# The same server, browser and phone as the payment journeys, and the same marker and
# Chromium check.
server, chromium, phone = paying.server, paying.chromium, paying.phone
pytestmark = paying.pytestmark


def no_sideways_scrolling(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_schedule_a_payment_and_cancel_it(server, phone, db):
    phone.goto(link_for(db, server))
    phone.get_by_label("Amount").fill("50")
    date_input = phone.get_by_label("Pay on a later date (optional)")
    assert date_input.get_attribute("type") == "date"
    assert date_input.get_attribute("max") == "2026-05-09"
    assert "May 9, 2026 (the last date allowed)" in phone.content()
    date_input.fill("2026-03-20")
    go_on(phone, "Continue", "**/method?**")
    fill_card(phone, ENGLISH)
    go_on(phone, "Continue", "**/review?**")
    assert "You're scheduling $50.00 with Visa ending 4242 for March 20, 2026." in phone.content()
    go_on(phone, "Confirm", "**/done?**")
    assert phone.get_by_role("heading").inner_text() == "Your payment is scheduled"
    assert "Pending" in phone.content() and "March 20, 2026" in phone.content()
    assert no_sideways_scrolling(phone)

    go_on(phone, "Cancel this payment", "**/cancel**")
    assert phone.get_by_role("heading").inner_text() == "Cancel this payment?"
    go_on(phone, "Yes, cancel the payment", "**/scheduled/*notice=cancelled")
    assert phone.get_by_role("heading").inner_text() == "This scheduled payment was cancelled"
    db.expire_all()
    [row] = db.scalars(select(ScheduledPayment)).all()
    assert row.status == ScheduledPaymentStatus.CANCELLED


def test_sign_a_plan_and_see_its_installments(server, phone, db, clock):
    account = make_account(db)
    offer = plan_offer(db, account)
    phone.goto(links.link_url(offer.link_id))
    assert "Pay your balance of $124.50 in 3 payments." in phone.content()
    assert phone.locator("table.schedule tbody tr").count() == 3
    assert no_sideways_scrolling(phone)
    go_on(phone, "Continue", "**/plan/method?**")
    fill_card(phone, ENGLISH)
    go_on(phone, "Continue", "**/agreement?**")
    assert "Payment plan agreement (plan-2026-11)" in phone.locator(".agreement").inner_text()
    phone.get_by_label("Type your full name to sign").fill("Ana Diaz")
    phone.get_by_label("I have read and agree").check()
    go_on(phone, "Sign and set up my plan", "**/plan?notice=signed")
    assert "Your plan is set up." in phone.content()
    assert phone.locator("td", has_text="Pending").count() == 3
    assert no_sideways_scrolling(phone)

    clock.set(dt.datetime(2026, 3, 31, 16, 1, tzinfo=dt.UTC))  # the first installment's day
    sweep.run(runtime().db)
    runtime().queue.drain()
    phone.reload()
    assert phone.locator("td", has_text="Paid").count() == 1
    assert phone.locator("td", has_text="Pending").count() == 2
    db.expire_all()
    assert db.scalar(select(Plan)).signature_name == "Ana Diaz"


def test_settle_an_offer(server, phone, db):
    account = make_account(db)
    offer = offers.create_settlement_offer(
        db, account, deadline=dt.date(2026, 3, 20), amount_cents=8_000, actor="staff:test"
    )
    db.commit()
    phone.goto(links.link_url(offer.link_id))
    assert "Pay $80.00 by March 20, 2026 to settle your balance of $124.50." in phone.content()
    go_on(phone, "Pay $80.00", "**/method?**")
    fill_card(phone, ENGLISH)
    go_on(phone, "Continue", "**/review?**")
    go_on(phone, "Confirm", "**/done?**")
    assert "Your balance is settled" in phone.content()
    db.expire_all()
    assert db.get(Account, account.id).balance_cents == 0
    assert db.get(type(offer), offer.id).status == OfferStatus.ACCEPTED
