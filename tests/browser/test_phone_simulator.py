"""The outbox's phone simulator in headless Chromium, with the app on a real WSGI server:
pick a phone, type HELP, send, and watch the answer arrive by the page's own reload (no
script), the text having gone through the signed inbound webhook."""

from __future__ import annotations

import os

import pytest

from tests.browser.test_pay_in_browser import CHROMIUM, chromium, server  # noqa: F401
from tests.web.pay_flow import make_account

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="no Chromium at /usr/bin/chromium"),
]


@pytest.fixture
def signed(config_overrides):
    config_overrides["twilio.auth_token"] = "dev-browser-test-token"


@pytest.fixture
def screen(chromium):  # noqa: F811 (the fixture imported above)
    context = chromium.new_context(viewport={"width": 1024, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


def test_text_help_from_the_simulator_and_see_the_answer_arrive(
    signed,
    server,  # noqa: F811 (the fixture imported above)
    screen,
    db,
    run_jobs,
    tmp_path,
):
    make_account(db, account_number="DEMO-1001", first_name="Alex", last_name="Rivera")
    make_account(db, account_number="DEMO-1003", first_name="Sam", phone="+14805550123")
    base = f"http://127.0.0.1:{server.server_port}"

    screen.goto(f"{base}/outbox")
    screen.get_by_label("Phone", exact=True).select_option("+16025550143")
    screen.get_by_role("button", name="Show").click()
    screen.wait_for_url("**/outbox?phone=*")
    screen.get_by_label("Text from +16025550143").fill("<b>HELP</b>")
    screen.get_by_role("button", name="Send").click()
    screen.wait_for_url("**/outbox?phone=*&sent=SMsim*")

    bubbles = screen.locator(".thread .bubble")
    assert bubbles.count() == 0  # the job, not the webhook, stores the text
    assert screen.get_by_role("status").inner_text().startswith("Waiting for the answer")

    run_jobs()  # the worker's turn, while the page keeps reloading itself
    answer = screen.locator(".to-phone .text")
    answer.wait_for()
    # Typed markup is shown as typed, never interpreted.
    assert screen.locator(".from-phone .text").inner_text() == "<b>HELP</b>"
    assert screen.locator(".from-phone b").count() == 0
    assert answer.inner_text().startswith("Springfield Water: Reply PAY to pay")
    assert screen.get_by_role("status").count() == 0  # answered: no more reloading
    assert [b.get_attribute("class") for b in bubbles.all()] == [
        "bubble from-phone",
        "bubble to-phone",
    ]
    shot = tmp_path / "phone-simulator.png"
    screen.screenshot(path=str(shot), full_page=True)
    print(f"phone simulator screenshot: {shot}")


def test_a_card_number_typed_in_the_simulator_is_masked_and_answered_with_a_warning(
    signed,
    server,  # noqa: F811 (the fixture imported above)
    screen,
    db,
    run_jobs,
):
    make_account(db, account_number="DEMO-1002", first_name="Lucia", language="es")
    base = f"http://127.0.0.1:{server.server_port}"

    screen.goto(f"{base}/outbox?phone=%2B16025550143")
    screen.get_by_label("Text from +16025550143").fill("mi tarjeta 4242 4242 4242 4242")
    screen.get_by_role("button", name="Send").click()
    screen.wait_for_url("**/outbox?phone=*&sent=SMsim*")
    run_jobs()

    answer = screen.locator(".to-phone .text")
    answer.wait_for()
    assert screen.locator(".from-phone .text").inner_text() == (
        "mi tarjeta [number removed, ends 4242]"
    )
    assert "Nunca envie numeros de tarjeta" in answer.inner_text()
    assert "4242 4242" not in screen.content()
