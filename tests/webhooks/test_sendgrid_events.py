"""POST /webhooks/sendgrid/events: optional ECDSA signature, dedupe, status and contacts."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from linkpay.models import Channel, Contact, Message, MessageStatus, ProviderEvent

PATH = "/webhooks/sendgrid/events"
SG_ID = "W86EgYT6SQKk0lRflfLRsA"  # X-Message-Id: no dots


@pytest.fixture(autouse=True)
def sendgrid_configured(fake_sendgrid):
    """Autouse, so the app (built by ``client`` or ``db``) is always configured for SendGrid."""
    return fake_sendgrid


@pytest.fixture
def sent(app, make_message):
    return make_message(
        Channel.EMAIL, status=MessageStatus.SENT, provider="sendgrid", provider_id=SG_ID
    )


def event(message: Message, name: str, event_id: str, **extra) -> dict:
    return {
        "email": message.to_address,
        "timestamp": 1773165600,
        "event": name,
        "sg_event_id": event_id,
        "sg_message_id": f"{SG_ID}.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC76C-9.0",
        "linkpay_message_id": str(message.id),
        **extra,
    }


def post(client, events, headers=None):
    body = events if isinstance(events, bytes) else json.dumps(events).encode()
    return client.post(PATH, data=body, content_type="application/json", headers=headers or {})


def reload(db, message) -> Message:
    db.expire_all()
    return db.get(Message, message.id)


def contact_for(db, message) -> Contact | None:
    return db.scalar(select(Contact).where(Contact.address == message.to_address))


def test_delivered_moves_the_message(client, db, sent):
    response = post(client, [event(sent, "processed", "e1"), event(sent, "delivered", "e2")])
    assert response.status_code == 200
    assert response.json == {"received": 2, "handled": 2, "duplicates": 0, "ignored": 0}
    assert reload(db, sent).status == MessageStatus.DELIVERED


def test_an_event_delivered_twice_is_handled_once(client, db, sent):
    post(client, [event(sent, "delivered", "e1")])
    response = post(client, [event(sent, "delivered", "e1"), event(sent, "open", "e2")])
    assert response.json["duplicates"] == 1
    assert db.scalar(select(func.count(ProviderEvent.id))) == 2


def test_a_hard_bounce_marks_the_address_undeliverable(client, db, sent, clock):
    bounce = event(sent, "bounce", "e1", type="bounce", status="5.1.1", reason="no such user")
    post(client, [bounce])
    message = reload(db, sent)
    assert (message.status, message.error_code) == (MessageStatus.BOUNCED, "5.1.1")
    contact = contact_for(db, sent)
    assert contact.undeliverable_at == clock()
    assert "no such user" in contact.undeliverable_reason


def test_a_blocked_bounce_does_not_mark_the_address(client, db, sent):
    post(client, [event(sent, "bounce", "e1", type="blocked", reason="try later")])
    assert reload(db, sent).status == MessageStatus.BOUNCED
    assert contact_for(db, sent) is None


def test_a_drop_for_a_known_bouncing_address_marks_it(client, db, sent):
    post(client, [event(sent, "dropped", "e1", reason="Bounced Address")])
    assert reload(db, sent).status == MessageStatus.BOUNCED
    assert contact_for(db, sent).undeliverable_at is not None


def test_a_spam_report_opts_the_address_out(client, db, sent):
    post(client, [event(sent, "delivered", "e1"), event(sent, "spamreport", "e2")])
    contact = contact_for(db, sent)
    assert contact.opted_out_at is not None
    assert reload(db, sent).status == MessageStatus.DELIVERED


def test_deferred_open_and_click_are_only_recorded(client, db, sent):
    names = ["deferred", "open", "click"]
    post(client, [event(sent, name, f"e-{name}") for name in names])
    assert reload(db, sent).status == MessageStatus.SENT
    kinds = db.scalars(select(ProviderEvent.kind).order_by(ProviderEvent.id)).all()
    assert kinds == names


def test_without_our_custom_arg_the_sendgrid_message_id_finds_the_row(client, db, sent):
    delivered = event(sent, "delivered", "e1")
    del delivered["linkpay_message_id"]
    post(client, [delivered])
    assert reload(db, sent).status == MessageStatus.DELIVERED


def test_an_event_naming_another_address_touches_nothing(client, db, sent):
    post(client, [event(sent, "bounce", "e1", type="bounce", email="someone@else.example")])
    assert reload(db, sent).status == MessageStatus.SENT
    assert db.scalar(select(func.count(Contact.id))) == 0


def test_a_body_that_is_not_json_is_a_400(client, db, sent):
    response = post(client, b"[{not json")
    assert response.status_code == 400
    assert "error" in response.json


def test_a_body_that_is_not_a_list_is_a_400(client, db, sent):
    response = post(client, {"event": "delivered"})
    assert response.status_code == 400
    assert "error" in response.json


def test_with_a_key_a_correctly_signed_batch_is_accepted(sendgrid_signer, client, db, sent):
    body = json.dumps([event(sent, "delivered", "e1")]).encode()
    response = post(client, body, sendgrid_signer.headers(body))
    assert response.status_code == 200
    assert reload(db, sent).status == MessageStatus.DELIVERED


def test_with_a_key_a_tampered_batch_is_refused(sendgrid_signer, client, db, sent):
    signed = json.dumps([event(sent, "delivered", "e1")]).encode()
    tampered = json.dumps([event(sent, "bounce", "e1", type="bounce")]).encode()
    response = post(client, tampered, sendgrid_signer.headers(signed))
    assert response.status_code == 403
    assert reload(db, sent).status == MessageStatus.SENT
    assert db.scalar(select(func.count(ProviderEvent.id))) == 0


def test_with_a_key_an_unsigned_batch_is_refused(sendgrid_signer, client, db, sent):
    response = post(client, [event(sent, "delivered", "e1")])
    assert response.status_code == 403
    assert reload(db, sent).status == MessageStatus.SENT


def test_with_a_key_a_changed_timestamp_is_refused(sendgrid_signer, client, db, sent):
    body = json.dumps([event(sent, "delivered", "e1")]).encode()
    headers = sendgrid_signer.headers(body, timestamp="1773165600")
    headers["X-Twilio-Email-Event-Webhook-Timestamp"] = "1773165601"
    assert post(client, body, headers).status_code == 403


def test_with_a_key_a_garbled_signature_is_refused(sendgrid_signer, client, db, sent):
    body = json.dumps([event(sent, "delivered", "e1")]).encode()
    headers = sendgrid_signer.headers(body)
    headers["X-Twilio-Email-Event-Webhook-Signature"] = "not base64 !!"
    assert post(client, body, headers).status_code == 403
