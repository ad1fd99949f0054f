"""The Twilio transport, with the real ``twilio`` client talking HTTP to the fake API."""

from __future__ import annotations

import datetime as dt
from email.utils import format_datetime

import pytest

from linkpay.models import Channel, Message
from linkpay.transports.base import TransportError
from linkpay.transports.outbox import OutboxTransport
from linkpay.transports.registry import is_opted_out, parse_retry_after, transport_for
from linkpay.transports.twilio_sms import TwilioSmsTransport
from tests.fakes.fixtures import TWILIO_ACCOUNT_SID, TWILIO_FROM_NUMBER

TO = "+16025550143"


def a_message(to: str = TO) -> Message:
    return Message(id=41, channel=Channel.SMS, to_address=to, body="Springfield Water: hello")


@pytest.fixture
def transport(fake_twilio, app) -> TwilioSmsTransport:
    return transport_for(Channel.SMS)


def send_error(transport, message=None) -> TransportError:
    with pytest.raises(TransportError) as caught:
        transport.send(message or a_message())
    return caught.value


def test_the_message_goes_to_the_configured_api_origin_with_credentials(fake_twilio, transport):
    result = transport.send(a_message())

    (request,) = fake_twilio.requests
    assert request.path == f"/2010-04-01/Accounts/{TWILIO_ACCOUNT_SID}/Messages.json"
    assert request.authorized
    assert request.body["To"] == TO
    assert request.body["From"] == TWILIO_FROM_NUMBER
    assert request.body["Body"] == "Springfield Water: hello"
    assert request.body["StatusCallback"] == "https://pay.example.org/webhooks/twilio/status"
    assert (result.provider, result.provider_id) == ("twilio", fake_twilio.sids[0])
    assert result.provider_id.startswith("SM") and len(result.provider_id) == 34


def test_twilio_edge_settings_in_the_environment_do_not_redirect_it(fake_twilio, app, monkeypatch):
    monkeypatch.setenv("TWILIO_EDGE", "sydney")
    monkeypatch.setenv("TWILIO_REGION", "au1")
    transport = TwilioSmsTransport.from_config(app.extensions["linkpay"].config)
    transport.send(a_message())
    assert len(fake_twilio.sent) == 1


def test_the_transport_is_built_once_per_app(fake_twilio, app):
    assert transport_for(Channel.SMS) is transport_for("sms")
    assert isinstance(transport_for(Channel.EMAIL), OutboxTransport)


def test_429_is_transient_and_passes_retry_after_on(fake_twilio, transport):
    fake_twilio.error(20429, "Too Many Requests", status=429, headers={"Retry-After": "7"})
    error = send_error(transport)
    assert not error.permanent
    assert error.retry_after_seconds == 7
    assert error.code == "20429"


def test_503_with_an_http_date_retry_after(fake_twilio, transport):
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=120)
    fake_twilio.reply(503, "Service Unavailable", {"Retry-After": format_datetime(later, True)})
    error = send_error(transport)
    assert not error.permanent
    assert 100 < error.retry_after_seconds <= 120


def test_a_server_error_is_transient(fake_twilio, transport):
    fake_twilio.reply(500, {"code": 20500, "message": "Internal Server Error", "status": 500})
    error = send_error(transport)
    assert (error.permanent, error.code, error.retry_after_seconds) == (False, "20500", None)


@pytest.fixture
def short_timeout(fake_twilio, config_overrides):
    config_overrides["twilio.timeout_seconds"] = 1
    return fake_twilio


def test_a_timeout_is_transient(short_timeout, app):
    short_timeout.stall(5)
    error = send_error(transport_for(Channel.SMS))
    assert (error.permanent, error.code) == (False, "timeout")


def test_a_refused_connection_is_transient(fake_twilio, transport):
    fake_twilio.stop()
    error = send_error(transport)
    assert (error.permanent, error.code) == (False, "connection")


@pytest.mark.parametrize("code", [21211, 21408, 21612, 21614])
def test_errors_about_the_number_are_permanent(fake_twilio, transport, code):
    fake_twilio.error(code, "the number cannot receive this")
    error = send_error(transport)
    assert error.permanent
    assert error.code == str(code)
    assert not is_opted_out(error)


def test_an_invalid_number_is_refused_by_twilio_and_permanent(fake_twilio, transport):
    error = send_error(transport, a_message(to="+1602"))
    assert (error.permanent, error.code) == (True, "21211")


def test_an_unsubscribed_recipient_is_permanent_and_an_opt_out(fake_twilio, transport):
    fake_twilio.error(21610, "Attempt to send to unsubscribed recipient")
    error = send_error(transport)
    assert error.permanent
    assert is_opted_out(error)


def test_bad_credentials_are_not_blamed_on_the_recipient(fake_twilio, app, config_overrides):
    transport = TwilioSmsTransport.from_config(app.extensions["linkpay"].config)
    transport.client.password = "wrong"
    transport.client.auth = (transport.client.username, "wrong")
    error = send_error(transport)
    assert (error.permanent, error.code) == (False, "20003")


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("7", 7.0), (" 0 ", 0.0), ("-3", 0.0), ("soon", None), ("", None), (None, None)],
)
def test_retry_after_values(header, seconds):
    assert parse_retry_after(header) == seconds


def test_proxy_settings_from_the_environment_are_read_once_and_kept(fake_twilio, app, monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    config = app.extensions["linkpay"].config
    transport = TwilioSmsTransport.from_config(config)
    # The fake is on 127.0.0.1, which NO_PROXY exempts; Twilio's own origin is not.
    transport.send(a_message())
    assert len(fake_twilio.sent) == 1
    client = TwilioSmsTransport(
        account_sid=TWILIO_ACCOUNT_SID,
        auth_token="token",
        from_number=TWILIO_FROM_NUMBER,
        api_base_url="https://api.twilio.com",
        timeout_seconds=2,
        status_callback="https://pay.example.org/webhooks/twilio/status",
    ).http_client
    assert client.proxy["https"] == "http://proxy.internal:3128"
