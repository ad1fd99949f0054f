"""GET/POST /u/<token>: the unsubscribe link in every email."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from linkpay.models import Account, AuditEvent, Channel, Contact, MessageStatus
from linkpay.runtime import runtime
from linkpay.services import links
from linkpay.services.contacts import unsubscribe_url
from linkpay.signing import Purpose

ADDRESS = "maria.lopez@example.com"


@pytest.fixture
def account(db):
    row = Account(account_number="1001", first_name="María", email=ADDRESS, balance_cents=500)
    db.add(row)
    db.commit()
    return row


def path_for(account) -> str:
    return unsubscribe_url(account.id).removeprefix(runtime().config["app.base_url"])


def opted_out_at(db):
    db.expire_all()
    return db.scalar(
        select(Contact.opted_out_at).where(
            Contact.channel == Channel.EMAIL, Contact.address == ADDRESS
        )
    )


def csrf_token(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def test_opening_the_link_asks_first_and_changes_nothing(client, db, account):
    response = client.get(path_for(account))
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Stop payment emails from Springfield Water to m***@example.com?" in page
    assert ADDRESS not in page
    assert response.headers["Cache-Control"] == "no-store"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert opted_out_at(db) is None  # mail scanners open links; only the button acts


def test_confirming_opts_the_address_out_and_records_it(client, db, account, clock):
    page = client.get(path_for(account)).get_data(as_text=True)
    response = client.post(path_for(account), data={"csrf_token": csrf_token(page)})
    assert response.status_code == 200
    assert "m***@example.com will no longer get emails from Springfield Water." in (
        response.get_data(as_text=True)
    )
    assert opted_out_at(db) == clock()
    event = db.scalar(select(AuditEvent).where(AuditEvent.action == "consent.email_opt_out"))
    assert (event.account_id, event.actor) == (account.id, "customer")


def test_a_one_click_request_from_a_mail_provider_needs_no_form_token(client, db, account):
    response = client.post(path_for(account), data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert opted_out_at(db) is not None


def test_a_form_post_without_its_token_is_refused(client, db, account):
    response = client.post(path_for(account), data={})
    assert response.status_code == 400
    assert opted_out_at(db) is None


def test_a_second_click_says_it_is_already_done(client, db, account, clock):
    client.post(path_for(account), data={"List-Unsubscribe": "One-Click"})
    first = opted_out_at(db)
    clock.advance(days=1)
    client.post(path_for(account), data={"List-Unsubscribe": "One-Click"})
    assert opted_out_at(db) == first
    page = client.get(path_for(account)).get_data(as_text=True)
    assert "is already unsubscribed" in page


@pytest.mark.parametrize("token", ["nonsense", "MQ.awJwWQ.Vg71K6uKlWJKu_E7qTbdEA"])
def test_a_bad_token_shows_nothing_of_the_account(client, account, token):
    response = client.get(f"/u/{token}")
    assert response.status_code == 404
    assert "m***" not in response.get_data(as_text=True)


def test_a_payment_link_token_is_not_an_unsubscribe_token(client, db, account):
    token = runtime().signer.sign(Purpose.PAY_LINK, account.id)
    assert client.get(f"/u/{token}").status_code == 404
    assert client.post(f"/u/{token}", data={"List-Unsubscribe": "One-Click"}).status_code == 404
    assert opted_out_at(db) is None


def test_the_page_is_in_the_accounts_language_with_a_switch(client, db, account):
    account.language = "es"
    db.commit()
    page = client.get(path_for(account)).get_data(as_text=True)
    assert '<html lang="es">' in page
    assert "¿Dejar de recibir correos de pago de Springfield Water" in page
    english = client.get(path_for(account) + "?lang=en").get_data(as_text=True)
    assert "Stop payment emails" in english


def test_the_link_in_a_payment_email_unsubscribes_and_later_emails_are_suppressed(
    client, db, account
):
    _, (email,) = links.send_link(db, account, channel="email")
    db.commit()
    url = re.search(r"https://pay\.example\.org/u/\S+?(?=[\"\s])", email.html_body).group(0)
    assert url in email.body  # the same link in the text part
    client.post(url.removeprefix("https://pay.example.org"), data={"List-Unsubscribe": "One-Click"})
    _, (later,) = links.send_link(db, account, channel="email")
    assert (later.status, later.skip_reason) == (MessageStatus.SUPPRESSED, "opted_out")
