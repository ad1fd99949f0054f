"""The SendGrid transport, with the real ``sendgrid`` client talking HTTP to the fake API."""

from __future__ import annotations

import pytest

from jobs.messages import send_message
from linkpay.models import Channel, Message, MessageStatus
from linkpay.transports.base import TransportError
from linkpay.transports.registry import transport_for
from tests.fakes.fixtures import SENDGRID_API_KEY, SENDGRID_FROM_EMAIL


def a_message(to: str = "pat@example.com") -> Message:
    return Message(
        id=77,
        channel=Channel.EMAIL,
        to_address=to,
        subject="Your Springfield Water bill",
        body="Pay at https://pay.example.org/p/tok3n",
        html_body='<p>Pay at <a href="https://pay.example.org/p/tok3n">your link</a></p>',
    )


@pytest.fixture
def transport(fake_sendgrid, app):
    return transport_for(Channel.EMAIL)


def send_error(transport, message=None) -> TransportError:
    with pytest.raises(TransportError) as caught:
        transport.send(message or a_message())
    return caught.value


def test_the_mail_carries_sender_bodies_and_our_message_id(fake_sendgrid, transport):
    result = transport.send(a_message())

    (request,) = fake_sendgrid.requests
    assert request.path == "/v3/mail/send"
    assert request.headers["Authorization"] == f"Bearer {SENDGRID_API_KEY}"
    mail = request.body
    assert mail["from"] == {"email": SENDGRID_FROM_EMAIL, "name": "Springfield Water"}
    assert mail["personalizations"][0]["to"] == [{"email": "pat@example.com"}]
    assert mail["subject"] == "Your Springfield Water bill"
    assert [c["type"] for c in mail["content"]] == ["text/plain", "text/html"]
    assert mail["custom_args"] == {"linkpay_message_id": "77"}
    # The payment link must reach the customer as built, not rewritten by click tracking.
    assert mail["tracking_settings"]["click_tracking"]["enable"] is False
    assert (result.provider, result.provider_id) == ("sendgrid", fake_sendgrid.message_ids[0])


def test_a_text_only_email_has_no_html_part(fake_sendgrid, transport):
    message = a_message()
    message.html_body = None
    transport.send(message)
    assert [c["type"] for c in fake_sendgrid.sent[0]["content"]] == ["text/plain"]


def test_an_address_sendgrid_rejects_is_permanent(fake_sendgrid, transport):
    error = send_error(transport, a_message(to="pat-at-example"))
    assert error.permanent
    assert error.code == "400"
    assert "valid address" in str(error)


def test_429_is_transient_and_passes_retry_after_on(fake_sendgrid, transport):
    fake_sendgrid.reply(429, {"errors": [{"message": "too many requests"}]}, {"Retry-After": "7"})
    error = send_error(transport)
    assert (error.permanent, error.code, error.retry_after_seconds) == (False, "429", 7.0)


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_transient(fake_sendgrid, transport, status):
    fake_sendgrid.reply(status, {"errors": [{"message": "oops"}]})
    error = send_error(transport)
    assert (error.permanent, error.code) == (False, str(status))


def test_a_rejected_api_key_is_not_blamed_on_the_recipient(fake_sendgrid, transport):
    fake_sendgrid.api_key = "SG.rotated"
    error = send_error(transport)
    assert (error.permanent, error.code) == (False, "401")


def test_a_bad_request_about_something_else_is_not_permanent(fake_sendgrid, transport):
    fake_sendgrid.reply(400, {"errors": [{"message": "bad from", "field": "from.email"}]})
    assert not send_error(transport).permanent


@pytest.fixture
def short_timeout(fake_sendgrid, config_overrides):
    config_overrides["sendgrid.timeout_seconds"] = 1
    return fake_sendgrid


def test_a_timeout_is_transient(short_timeout, app):
    short_timeout.stall(5)
    error = send_error(transport_for(Channel.EMAIL))
    assert (error.permanent, error.code) == (False, "timeout")


def test_a_refused_connection_is_transient(fake_sendgrid, transport):
    fake_sendgrid.stop()
    error = send_error(transport)
    assert (error.permanent, error.code) == (False, "connection")


def test_the_send_job_records_the_x_message_id(fake_sendgrid, app, db, make_message):
    message = make_message(Channel.EMAIL)
    assert send_message(message.id) == "sent"
    db.expire_all()
    message = db.get(Message, message.id)
    assert message.status == MessageStatus.SENT
    assert (message.provider, message.provider_id) == ("sendgrid", fake_sendgrid.message_ids[0])
    assert fake_sendgrid.sent[0]["custom_args"] == {"linkpay_message_id": str(message.id)}


def test_a_customer_email_offers_one_click_unsubscribe(fake_sendgrid, transport, client):
    message = a_message()
    message.account_id = 5
    transport.send(message)
    headers = fake_sendgrid.sent[0]["headers"]
    url = headers["List-Unsubscribe"].strip("<>")
    assert url.startswith("https://pay.example.org/u/")
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
