"""POST /webhooks/twilio/sms: signature first, stored once, empty TwiML back."""

from __future__ import annotations

from sqlalchemy import select

from linkpay.models import ProviderEvent
from linkpay.runtime import runtime
from tests.fakes.fixtures import TWILIO_ACCOUNT_SID, twilio_signature

URL = "https://pay.example.org/webhooks/twilio/sms"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def inbound(body: str = "BAL", sid: str = "SM" + "cd34" * 8) -> dict:
    return {
        "AccountSid": TWILIO_ACCOUNT_SID,
        "ApiVersion": "2010-04-01",
        "Body": body,
        "From": "+16025550143",
        "MessageSid": sid,
        "NumMedia": "0",
        "SmsMessageSid": sid,
        "To": "+16025550199",
    }


def post(client, params: dict, signature: str | None):
    headers = {"X-Twilio-Signature": signature} if signature is not None else {}
    return client.post("/webhooks/twilio/sms", data=params, headers=headers)


def stored(db) -> list[ProviderEvent]:
    """The texts taken in: the webhook queues each for a job, which stores it."""
    runtime().queue.drain()
    db.expire_all()
    return db.scalars(select(ProviderEvent)).all()


def test_a_signed_text_is_stored_and_answered_with_empty_twiml(fake_twilio, client, db):
    params = inbound()
    response = post(client, params, twilio_signature(URL, params))

    assert response.status_code == 200
    assert response.mimetype == "text/xml"
    assert response.get_data(as_text=True) == EMPTY_TWIML
    (event,) = stored(db)
    assert (event.provider, event.kind, event.event_id) == (
        "twilio",
        "inbound_sms",
        params["MessageSid"],
    )
    assert event.payload["Body"] == "BAL"
    assert event.payload["From"] == "+16025550143"


def test_the_same_text_delivered_twice_is_stored_once(fake_twilio, client, db):
    params = inbound()
    for _ in range(2):
        assert post(client, params, twilio_signature(URL, params)).status_code == 200
    assert len(stored(db)) == 1


def test_an_unsigned_text_is_refused_and_not_stored(fake_twilio, client, db):
    assert post(client, inbound(), None).status_code == 403
    assert stored(db) == []


def test_a_forged_signature_is_refused_and_not_stored(fake_twilio, client, db):
    params = inbound(body="PAY")
    forged = twilio_signature(URL, params, token="guessed-token")
    assert post(client, params, forged).status_code == 403
    assert stored(db) == []


def test_a_signed_text_with_a_changed_body_is_refused(fake_twilio, client, db):
    signature = twilio_signature(URL, inbound(body="BAL"))
    assert post(client, inbound(body="PAY 500"), signature).status_code == 403
    assert stored(db) == []


def test_without_an_auth_token_nothing_is_accepted(client, db):
    params = inbound()
    assert post(client, params, twilio_signature(URL, params, token="")).status_code == 403
    assert stored(db) == []


def test_an_oversized_body_is_refused_as_too_large_and_not_queued(fake_twilio, client, db):
    params = inbound(body="x" * (3 * 1024 * 1024))
    assert post(client, params, twilio_signature(URL, params)).status_code == 413
    assert stored(db) == []


def test_other_methods_on_the_inbound_route_are_not_allowed(client):
    assert client.get("/webhooks/twilio/sms").status_code == 405
