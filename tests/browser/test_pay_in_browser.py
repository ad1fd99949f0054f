"""Paying a link in headless Chromium on a phone-sized screen, through the real forms, with
the app served by a real WSGI server: by card, by bank, in Spanish, and with a confirm
tapped twice, re-sent after Back, and re-posted by hand (one payment, always).

The server's clock is the frozen ``clock`` fixture; the browser's is real, which is fine:
only the server decides whether a link has expired."""

from __future__ import annotations

import os
import threading

import pytest
from sqlalchemy import func, select
from werkzeug.serving import make_server

from linkpay.models import Payment, PaymentStatus
from linkpay.services import links
from tests.web.pay_flow import make_account

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
PHONE = {"width": 390, "height": 844}

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="no Chromium at /usr/bin/chromium"),
]


@pytest.fixture
def server(config_overrides, request):
    """The app on a real port. The port must be known before the app is built (links are
    made from app.base_url), so the server starts first and is handed the app after."""
    built = {}
    httpd = make_server("127.0.0.1", 0, lambda env, reply: built["app"](env, reply), threaded=True)
    config_overrides["app.base_url"] = f"http://127.0.0.1:{httpd.server_port}"
    built["app"] = request.getfixturevalue("app")
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    thread.join(timeout=5)


@pytest.fixture(scope="module")
def chromium():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def phone(chromium):
    context = chromium.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


def link_for(db, server, **account_fields) -> str:
    account = make_account(db, **account_fields)
    link = links.create_link(db, account)
    db.commit()
    return links.link_url(link.id)


def payment_rows(db) -> list[Payment]:
    db.expire_all()
    return db.scalars(select(Payment)).all()


def go_on(page, button: str, url_glob: str) -> None:
    """Tap ``button`` and wait until the page that answers it (after any redirects) is in."""
    page.get_by_role("button", name=button).click()
    page.wait_for_url(url_glob)
    page.wait_for_load_state()


def fill_card(page, words: dict[str, str], number: str = "4242 4242 4242 4242") -> None:
    page.get_by_label(words["number"]).fill(number)
    page.get_by_label(words["expiry"]).fill("12/34")
    page.get_by_label("CVC").fill("123")
    page.get_by_label(words["name"]).fill("Ana Diaz")


ENGLISH = {"number": "Card number", "expiry": "Expiration", "name": "Name on card"}
SPANISH = {"number": "Número de tarjeta", "expiry": "Vencimiento", "name": "Nombre en la tarjeta"}


def test_pay_by_card_on_a_phone(server, phone, db, tmp_path):
    phone.goto(link_for(db, server))
    assert phone.get_by_role("heading").inner_text() == "Hi Ana"
    assert phone.get_by_label("Amount").input_value() == "124.50"
    # Nothing wider than the screen: no sideways scrolling on a phone.
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    shot = tmp_path / "amount-page.png"
    phone.screenshot(path=str(shot), full_page=True)
    print(f"amount page screenshot: {shot}")
    assert shot.stat().st_size > 5_000

    phone.get_by_label("Amount").fill("50")
    go_on(phone, "Continue", "**/method?**")
    fill_card(phone, ENGLISH)
    go_on(phone, "Continue", "**/review?**")
    assert "You're paying $50.00 with Visa ending 4242." in phone.content()
    go_on(phone, "Confirm", "**/done?**")
    assert "Thank you! Your payment is complete" in phone.content()
    [payment] = payment_rows(db)
    assert (payment.status, payment.amount_cents) == (PaymentStatus.PAID, 5_000)
    assert payment.confirmation_number in phone.content()


def test_pay_by_bank_on_a_phone(server, phone, db):
    phone.goto(link_for(db, server))
    phone.get_by_label("Bank account").check()
    go_on(phone, "Continue", "**/method?**")
    phone.get_by_label("Routing number").fill("110000000")
    phone.get_by_label("Account number").fill("000123456789")
    go_on(phone, "Continue", "**/review?**")
    assert "bank account ending 6789" in phone.content()
    go_on(phone, "Confirm", "**/done?**")
    assert "Your payment is on its way" in phone.content()
    [payment] = payment_rows(db)
    assert (payment.status, payment.amount_cents) == (PaymentStatus.PENDING, 12_450)


def test_pay_in_spanish_and_fix_a_mistyped_card(server, phone, db):
    phone.goto(link_for(db, server, language="es"))
    assert phone.get_by_role("heading").inner_text() == "Hola, Ana"
    go_on(phone, "Continuar", "**/method?**")
    fill_card(phone, SPANISH, number="4242 4242 4242 4241")
    go_on(phone, "Continuar", "**/method?**errors=**")
    assert "Revise el número de tarjeta" in phone.content()
    assert "4241" not in phone.url and "4241" not in phone.content()
    fill_card(phone, SPANISH)
    go_on(phone, "Continuar", "**/review?**")
    go_on(phone, "Confirmar", "**/done?**")
    assert "¡Gracias! Su pago se realizó" in phone.content()
    assert len(payment_rows(db)) == 1


def test_confirm_tapped_twice_resent_and_reposted_charges_once(server, phone, db):
    phone.goto(link_for(db, server))
    go_on(phone, "Continue", "**/method?**")
    fill_card(phone, ENGLISH)
    go_on(phone, "Continue", "**/review?**")
    review_url = phone.url
    confirm_form = phone.locator("form[action$='/confirm']")
    fields = {
        name: confirm_form.locator(f"input[name='{name}']").input_value()
        for name in ("csrf_token", "c")
    }
    action = server_url(phone, confirm_form.get_attribute("action"))

    phone.get_by_role("button", name="Confirm").dblclick()
    phone.wait_for_url("**/done?**")
    # The second tap's answer may be the receipt while the first tap's charge is still
    # in flight ("processing"); that page refreshes itself every 3 seconds until done.
    phone.get_by_text("Thank you! Your payment is complete").wait_for(timeout=15_000)
    # Two submits dispatched at once, as an impatient thumb or a slow network would.
    phone.goto(review_url)  # the review page now sends the browser to the receipt
    assert "/done?" in phone.url
    phone.go_back()
    phone.reload()
    again = phone.request.post(action, form=fields)
    assert again.ok and "Thank you! Your payment is complete" in again.text()
    payments = payment_rows(db)
    assert len(payments) == 1 and payments[0].status == PaymentStatus.PAID
    assert db.scalar(select(func.count()).select_from(Payment)) == 1


def test_two_submits_in_the_same_instant_charge_once(server, phone, db):
    phone.goto(link_for(db, server))
    go_on(phone, "Continue", "**/method?**")
    fill_card(phone, ENGLISH)
    go_on(phone, "Continue", "**/review?**")
    phone.evaluate(
        """() => {
            const form = document.querySelector("form[action$='/confirm']");
            form.requestSubmit();
            form.requestSubmit();
        }"""
    )
    phone.wait_for_url("**/done?**")
    assert len(payment_rows(db)) == 1


def server_url(page, path: str) -> str:
    origin = page.evaluate("location.origin")
    return f"{origin}{path}"
