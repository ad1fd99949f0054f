"""What a link shows in each state (invalid, expired, used, locked), the ZIP question, the
"send me a new link" offer, and that opening a link (GET or HEAD) changes nothing that
matters: no payment, no lock, no message."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from linkpay.models import AuditEvent, Channel, Link, LinkStatus, Message, Payment
from linkpay.services import links
from linkpay.services.link_access import MAX_ZIP_FAILURES
from tests.web.pay_flow import form, make_account, make_link

ACCOUNT_DATA = ("Ana", "Diaz", "124.50", "ACCT", "6789", "March 25", "85004")


@pytest.fixture
def account(db):
    return make_account(db)


@pytest.fixture
def zip_mode(config_overrides):
    """ZIP verification on; list it before ``app``-using fixtures so it applies."""
    config_overrides["links.verification"] = "zip"


def text(response) -> str:
    return response.get_data(as_text=True)


def shows_no_account_data(html: str) -> bool:
    return not any(fact in html for fact in ACCOUNT_DATA)


def count(db, model, *where) -> int:
    db.expire_all()
    return db.scalar(select(func.count()).select_from(model).where(*where))


def kind_page(response, status: int, heading: str) -> str:
    html = text(response)
    assert response.status_code == status
    assert heading in html and shows_no_account_data(html)
    assert "(602) 555-0100" in html  # the support phone is always there
    assert response.headers["Cache-Control"] == "no-store"
    return html


@pytest.mark.parametrize(
    "token",
    ["not-a-token", "MQ.aaaaaa.bbbbbbbbbbbbbbbbbbbbbb", "x" * 300],
)
def test_a_made_up_token_gets_a_kind_page(client, db, account, token):
    make_link(db, account)
    kind_page(client.get(f"/p/{token}"), 404, "This link isn't valid")


def test_a_tampered_token_is_invalid(client, db, account):
    _, token = make_link(db, account)
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    kind_page(client.get(f"/p/{tampered}"), 404, "This link isn't valid")


def test_a_revoked_link_is_invalid(client, db, account):
    link, token = make_link(db, account)
    link.status = LinkStatus.REVOKED
    db.commit()
    kind_page(client.get(f"/p/{token}"), 404, "This link isn't valid")


def test_a_used_link_says_the_bill_is_paid_and_nothing_more(client, db, account):
    link, token = make_link(db, account)
    link.status = LinkStatus.USED
    db.commit()
    html = kind_page(client.get(f"/p/{token}"), 200, "This bill is paid")
    assert "<form" not in html


def test_an_open_link_with_nothing_owed_is_paid_too(client, db):
    account = make_account(db, balance_cents=0)
    _, token = make_link(db, account)
    kind_page(client.get(f"/p/{token}"), 200, "This bill is paid")


def test_a_locked_link_shows_the_support_phone_only(client, db, account):
    link, token = make_link(db, account)
    link.status = LinkStatus.LOCKED
    db.commit()
    kind_page(client.get(f"/p/{token}"), 403, "This link is locked")


def test_expired_link_offers_a_fresh_one_sent_only_on_file(client, db, account, clock):
    link, token = make_link(db, account)
    clock.advance(hours=72, seconds=1)
    html = kind_page(client.get(f"/p/{token}"), 410, "This link has expired")
    fresh = form(html, "/fresh")
    assert fresh.fields["csrf_token"] and count(db, Message) == 0
    sent = client.post(fresh.action, data={**fresh.fields, "phone": "+15555550123"})
    kind_page(sent, 200, "We've sent a new link")
    [message] = db.scalars(select(Message)).all()
    assert (message.kind, message.channel, message.to_address) == (
        "fresh_link",
        Channel.SMS,
        "+16025550143",
    )
    new_link = db.get(Link, message.link_id)
    assert new_link.id != link.id and new_link.expires_at > clock()
    assert links.lookup(db, token).state == "expired"  # the old one stays expired


def test_a_fresh_link_goes_the_way_the_old_one_went(client, db, account, clock):
    _, token = make_link(db, account, channel="email")
    clock.advance(hours=73)
    fresh = form(text(client.get(f"/p/{token}")), "/fresh")
    client.post(fresh.action, data=fresh.fields)
    assert db.scalars(select(Message.channel)).all() == [Channel.EMAIL]


def test_at_most_one_fresh_link_per_ten_minutes(client, db, account, clock):
    link, token = make_link(db, account)
    clock.advance(hours=73)
    fresh = form(text(client.get(f"/p/{token}")), "/fresh")
    client.post(fresh.action, data=fresh.fields)
    clock.advance(minutes=9)
    again = client.post(fresh.action, data=fresh.fields)
    kind_page(again, 200, "We sent a new link a few minutes ago")
    assert count(db, Message) == 1
    clock.advance(minutes=1)
    client.post(fresh.action, data=fresh.fields)
    assert count(db, Message) == 2


def test_asking_for_a_fresh_link_needs_the_csrf_token(client, db, account, clock):
    _, token = make_link(db, account)
    clock.advance(hours=73)
    assert client.post(f"/p/{token}/fresh").status_code == 400
    assert count(db, Message) == 0


def test_a_fresh_link_is_only_for_expired_links(client, db, account):
    _, token = make_link(db, account)
    page = text(client.get(f"/p/{token}"))
    csrf = form(page, "/amount").fields["csrf_token"]
    response = client.post(f"/p/{token}/fresh", data={"csrf_token": csrf})
    assert response.status_code == 303 and count(db, Message) == 0


def test_get_counts_the_open_and_head_changes_nothing(client, db, account, clock):
    link, token = make_link(db, account)
    for _ in range(3):
        assert client.head(f"/p/{token}").status_code == 200
    db.expire_all()
    assert (db.get(Link, link.id).open_count, db.get(Link, link.id).first_opened_at) == (0, None)
    client.get(f"/p/{token}")
    clock.advance(minutes=5)
    client.get(f"/p/{token}")
    db.expire_all()
    opened = db.get(Link, link.id)
    assert opened.open_count == 2 and opened.first_opened_at == clock() - dt.timedelta(minutes=5)
    assert opened.status == LinkStatus.ACTIVE and count(db, Payment) == 0


def test_opening_never_pays_locks_or_sends(zip_mode, client, db, account, clock):
    link, token = make_link(db, account)
    for method in (client.get, client.head):
        for _ in range(MAX_ZIP_FAILURES + 2):
            method(f"/p/{token}")
    clock.advance(hours=73)
    for method in (client.get, client.head):
        method(f"/p/{token}")
    db.expire_all()
    assert db.get(Link, link.id).status == LinkStatus.ACTIVE
    assert db.get(Link, link.id).zip_failures == 0
    assert count(db, Payment) == count(db, Message) == count(db, AuditEvent) == 0


def test_zip_comes_before_any_account_data(zip_mode, client, db, account):
    _, token = make_link(db, account)
    html = text(client.get(f"/p/{token}"))
    assert "ZIP code" in html and 'autocomplete="postal-code"' in html
    assert shows_no_account_data(html) and "/amount" not in html
    # The next steps cannot be reached around the question either.
    csrf = form(html, "/zip").fields["csrf_token"]
    skipped = client.post(f"/p/{token}/amount", data={"csrf_token": csrf, "amount": "5"})
    assert skipped.status_code == 303 and count(db, Payment) == 0


def test_the_right_zip_opens_the_bill_for_this_browser_only(zip_mode, app, client, db, account):
    _, token = make_link(db, account)
    zip_form = form(text(client.get(f"/p/{token}")), "/zip")
    answer = client.post(zip_form.action, data={**zip_form.fields, "zip": "85004-1234"})
    assert answer.status_code == 303
    assert "Hi Ana" in text(client.get(f"/p/{token}"))
    assert "ZIP code" in text(app.test_client().get(f"/p/{token}"))


def test_a_canadian_postal_code_matches_however_it_is_typed(zip_mode, client, db):
    account = make_account(db, phone="+16135550143", zip="K1A 0B1")
    _, token = make_link(db, account)
    zip_form = form(text(client.get(f"/p/{token}")), "/zip")
    wrong = client.post(zip_form.action, data={**zip_form.fields, "zip": "K1A 0B2"})
    assert wrong.status_code == 400
    answer = client.post(zip_form.action, data={**zip_form.fields, "zip": " k1a0b1 "})
    assert answer.status_code == 303
    assert "Hi Ana" in text(client.get(f"/p/{token}"))


def test_five_wrong_zips_lock_the_link_with_the_same_message_each_time(
    zip_mode, client, db, account
):
    link, token = make_link(db, account)
    zip_form = form(text(client.get(f"/p/{token}")), "/zip")
    errors = set()
    for wrong in ("85005", "1", "85040-1234", "abcde")[: MAX_ZIP_FAILURES - 1]:
        response = client.post(zip_form.action, data={**zip_form.fields, "zip": wrong})
        assert response.status_code == 400 and shows_no_account_data(text(response))
        errors.add(text(response).split('role="alert"')[1].split("</p>")[0])
    assert len(errors) == 1 and "doesn't match our records" in errors.pop()
    last = client.post(zip_form.action, data={**zip_form.fields, "zip": "99999"})
    kind_page(last, 403, "This link is locked")
    db.expire_all()
    assert db.get(Link, link.id).status == LinkStatus.LOCKED
    locked = db.scalar(select(AuditEvent).where(AuditEvent.action == "link.locked"))
    assert locked.details["zip_failures"] == MAX_ZIP_FAILURES
    # Now even the right answer is too late.
    right = client.post(zip_form.action, data={**zip_form.fields, "zip": "85004"})
    assert "This link is locked" in text(client.get(right.headers["Location"]))


def test_an_empty_zip_answer_does_not_count(zip_mode, client, db, account):
    link, token = make_link(db, account)
    zip_form = form(text(client.get(f"/p/{token}")), "/zip")
    client.post(zip_form.action, data={**zip_form.fields, "zip": "  "})
    db.expire_all()
    assert db.get(Link, link.id).zip_failures == 0


def test_without_a_zip_on_file_the_customer_is_asked_to_call(zip_mode, client, db):
    account = make_account(db, zip=None)
    _, token = make_link(db, account)
    kind_page(client.get(f"/p/{token}"), 200, "Please call us to pay")


def test_state_pages_are_in_the_accounts_language(client, db):
    account = make_account(db, language="es")
    link, token = make_link(db, account)
    link.status = LinkStatus.USED
    db.commit()
    assert "Esta factura está pagada" in text(client.get(f"/p/{token}"))
    assert "This bill is paid" in text(client.get(f"/p/{token}?lang=en"))
