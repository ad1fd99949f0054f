"""POST /webhooks/twilio/status: signed, deduplicated, order-tolerant status callbacks."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from linkpay.models import AuditEvent, Channel, Contact, Message, MessageStatus, ProviderEvent
from tests.fakes.fixtures import TWILIO_ACCOUNT_SID, twilio_signature

URL = "https://pay.example.org/webhooks/twilio/status"
SID = "SM" + "ab12" * 8


@pytest.fixture(autouse=True)
def twilio_configured(fake_twilio):
    """Autouse, so the app (built by ``client`` or ``db``) is always configured for Twilio."""
    return fake_twilio


@pytest.fixture
def no_auth_token(config_overrides):
    config_overrides.update({"sms.provider": "outbox", "twilio.auth_token": ""})


@pytest.fixture
def sent(app, make_message):
    return make_message(
        Channel.SMS, status=MessageStatus.SENT, provider="twilio", provider_id=SID, attempts=1
    )


def callback(status: str, sid: str = SID, **extra) -> dict:
    return {
        "AccountSid": TWILIO_ACCOUNT_SID,
        "ApiVersion": "2010-04-01",
        "From": "+16025550199",
        "MessageSid": sid,
        "MessageStatus": status,
        "SmsSid": sid,
        "SmsStatus": status,
        "To": "+16025550001",
        **extra,
    }


def post_signed(client, params: dict, path: str = "/webhooks/twilio/status", url: str = URL):
    headers = {"X-Twilio-Signature": twilio_signature(url, params)}
    return client.post(path, data=params, headers=headers)


def status_of(db, message) -> MessageStatus:
    db.expire_all()
    return db.get(Message, message.id).status


def event_count(db) -> int:
    return db.scalar(select(func.count(ProviderEvent.id)))


def test_a_signed_delivered_callback_marks_the_message_delivered(client, db, sent):
    response = post_signed(client, callback("delivered"))
    assert response.status_code == 200
    assert status_of(db, sent) == MessageStatus.DELIVERED


def test_a_wrong_signature_is_refused_and_changes_nothing(client, db, sent):
    params = callback("delivered")
    headers = {"X-Twilio-Signature": twilio_signature(URL, params, token="not-our-token")}
    response = client.post("/webhooks/twilio/status", data=params, headers=headers)
    assert response.status_code == 403
    assert status_of(db, sent) == MessageStatus.SENT
    assert event_count(db) == 0


def test_a_missing_signature_is_refused(client, db, sent):
    response = client.post("/webhooks/twilio/status", data=callback("delivered"))
    assert response.status_code == 403
    assert status_of(db, sent) == MessageStatus.SENT


def test_a_signature_over_other_fields_is_refused(client, db, sent):
    headers = {"X-Twilio-Signature": twilio_signature(URL, callback("sent"))}
    response = client.post("/webhooks/twilio/status", data=callback("failed"), headers=headers)
    assert response.status_code == 403
    assert status_of(db, sent) == MessageStatus.SENT


def test_a_signature_for_another_origin_is_refused(client, db, sent):
    params = callback("delivered")
    response = post_signed(client, params, url="http://localhost/webhooks/twilio/status")
    assert response.status_code == 403


def test_the_query_string_is_part_of_the_signed_url(client, db, sent):
    path = "/webhooks/twilio/status?attempt=2"
    response = post_signed(client, callback("delivered"), path=path, url=URL + "?attempt=2")
    assert response.status_code == 200
    assert status_of(db, sent) == MessageStatus.DELIVERED


def test_with_no_auth_token_configured_every_callback_is_refused(
    no_auth_token, client, db, make_message
):
    message = make_message(
        Channel.SMS, status=MessageStatus.SENT, provider="twilio", provider_id=SID
    )
    params = callback("delivered")
    headers = {"X-Twilio-Signature": twilio_signature(URL, params, token="")}
    response = client.post("/webhooks/twilio/status", data=params, headers=headers)
    assert response.status_code == 403
    assert status_of(db, message) == MessageStatus.SENT


def test_a_repeated_callback_is_handled_once(client, db, sent):
    assert post_signed(client, callback("undelivered", ErrorCode="30003")).status_code == 200
    assert post_signed(client, callback("delivered")).status_code == 200
    # Twilio delivers the first one again: without dedupe it would undo "delivered".
    assert post_signed(client, callback("undelivered", ErrorCode="30003")).status_code == 200

    assert status_of(db, sent) == MessageStatus.DELIVERED
    assert event_count(db) == 2


@pytest.mark.parametrize("late", ["queued", "sent", "failed"])
def test_a_late_callback_does_not_undo_delivered(client, db, sent, late):
    post_signed(client, callback("delivered"))
    assert post_signed(client, callback(late, ErrorCode="30008")).status_code == 200
    assert status_of(db, sent) == MessageStatus.DELIVERED


def test_an_unknown_message_sid_still_gets_200(client, db, sent):
    response = post_signed(client, callback("delivered", sid="SM" + "0" * 32))
    assert response.status_code == 200
    assert status_of(db, sent) == MessageStatus.SENT


def test_a_callback_without_a_status_is_acknowledged(client, db, sent):
    response = post_signed(client, {"AccountSid": TWILIO_ACCOUNT_SID, "MessageSid": SID})
    assert response.status_code == 200
    assert status_of(db, sent) == MessageStatus.SENT


def test_an_unknown_number_marks_the_contact_undeliverable(client, db, sent, clock):
    post_signed(client, callback("undelivered", ErrorCode="30005"))

    db.expire_all()
    message = db.get(Message, sent.id)
    assert (message.status, message.error_code) == (MessageStatus.UNDELIVERED, "30005")
    contact = db.scalar(select(Contact).where(Contact.address == sent.to_address))
    assert contact.undeliverable_at == clock()
    assert "30005" in contact.undeliverable_reason


def test_a_handset_that_is_off_does_not_mark_the_contact(client, db, sent):
    post_signed(client, callback("undelivered", ErrorCode="30003"))
    assert status_of(db, sent) == MessageStatus.UNDELIVERED
    assert db.scalar(select(Contact).where(Contact.address == sent.to_address)) is None


def test_an_unsubscribed_recipient_reported_late_is_an_opt_out(client, db, sent, clock):
    post_signed(client, callback("failed", ErrorCode="21610"))
    contact = db.scalar(select(Contact).where(Contact.address == sent.to_address))
    assert contact.opted_out_at == clock()
    assert contact.undeliverable_at is None
    # An opt-out is a consent change, whoever reports it: it is on the audit trail.
    event = db.scalar(select(AuditEvent).where(AuditEvent.action == "consent.sms_opt_out"))
    assert (event.subject_id, event.actor, event.details["address"]) == (
        contact.id,
        "system",
        sent.to_address,
    )
