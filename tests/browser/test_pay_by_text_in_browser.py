"""Turning Pay by Text on in headless Chromium, as a customer would: ticking the box on the
review step and paying, or paying first and turning it on from the receipt; then the
"reply OK" text in the outbox, and turning it off again. The server, the phone-sized
browser and the helpers are test_pay_in_browser's."""

from __future__ import annotations

import re

from sqlalchemy import select

from linkpay.models import EnrollmentStatus, Message, TextEnrollment
from linkpay.services import text_enrollment
from tests.browser import test_pay_in_browser as paying
from tests.browser.test_pay_in_browser import (
    ENGLISH,
    SPANISH,
    fill_card,
    go_on,
    link_for,
    payment_rows,
)

# The same real server, Chromium and phone-sized page as the payment tests.
pytestmark = paying.pytestmark
server, chromium, phone = paying.server, paying.chromium, paying.phone


def enrollment(db) -> TextEnrollment | None:
    db.expire_all()
    return db.scalar(select(TextEnrollment))


def pay_by_text_box(page, words: str):
    """The checkbox whose label contains ``words`` (the receipt's section is named so too)."""
    return page.get_by_role("checkbox", name=re.compile(words))


def reach_review(page, words: dict[str, str], go: str) -> None:
    go_on(page, go, "**/method?**")
    fill_card(page, words)
    go_on(page, go, "**/review?**")


def test_tick_pay_by_text_pay_and_get_the_reply_ok_text(server, phone, db, run_jobs):
    phone.goto(link_for(db, server))
    reach_review(phone, ENGLISH, "Continue")
    box = pay_by_text_box(phone, "Pay by Text")
    assert not box.is_checked()
    assert "Msg &amp; data rates may apply" in phone.content()
    box.check()
    go_on(phone, "Confirm", "**/done?**")
    assert "Thank you! Your payment is complete" in phone.content()
    assert "reply OK to turn on Pay by Text" in phone.content()
    assert len(payment_rows(db)) == 1
    assert enrollment(db).status == EnrollmentStatus.AWAITING_OK
    receipt_url = phone.url

    run_jobs()
    phone.goto(server_origin(phone) + "/outbox")
    assert "Reply OK to turn on Pay by Text for acct ending 6789 (Visa 4242)" in phone.content()

    # The customer replies OK (helper B's inbound path does this for a real text).
    text_enrollment.activate(db, "+16025550143")
    db.commit()
    phone.goto(receipt_url)
    assert "Pay by Text is on for card ending 4242." in phone.content()
    go_on(phone, "Turn off Pay by Text", "**/done?**")
    assert enrollment(db).status == EnrollmentStatus.CANCELLED
    assert pay_by_text_box(phone, "Pay by Text").is_visible()


def test_pay_then_turn_it_on_from_the_spanish_receipt(server, phone, db, run_jobs):
    phone.goto(link_for(db, server, language="es"))
    reach_review(phone, SPANISH, "Continuar")
    go_on(phone, "Confirmar", "**/done?**")  # the box left unticked
    assert enrollment(db) is None
    pay_by_text_box(phone, "Pagar por texto").check()
    assert "Pueden aplicarse tarifas de mensajes y datos" in phone.content()
    go_on(phone, "Activar Pagar por texto", "**/done?**")
    assert "responda OK para activar Pagar por texto" in phone.content()
    enrolled = enrollment(db)
    assert enrolled.status == EnrollmentStatus.AWAITING_OK
    assert "HeadlessChrome" in enrolled.consent_user_agent and enrolled.consent_ip == "127.0.0.1"
    run_jobs()
    [ask] = db.scalars(select(Message).where(Message.kind == "text_enroll_ask")).all()
    assert ask.body.startswith("Springfield Water: Responda OK para activar Pagar por texto")


def server_origin(page) -> str:
    return page.evaluate("location.origin")
