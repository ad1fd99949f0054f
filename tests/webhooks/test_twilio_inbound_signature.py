"""POST /webhooks/twilio/sms: signature first, stored once, empty TwiML back."""

from __future__ import annotations

from sqlalchemy import select

from linkpay.models import ProviderEvent
from linkpay.queue import HIGH
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


def test_a_second_delivery_is_refused_by_the_queue_before_any_job_runs(fake_twilio, client, db):
    params = inbound()
    for _ in range(3):
        assert post(client, params, twilio_signature(URL, params)).status_code == 200
    assert runtime().queue.queues[HIGH].job_ids == [f"inbound-{params['MessageSid']}"]


def test_the_queued_job_never_describes_the_body(fake_twilio, client, db):
    params = inbound(body="PAY 50")
    post(client, params, twilio_signature(URL, params))
    (job,) = runtime().queue.queues[HIGH].jobs
    assert job.description == f"inbound text {params['MessageSid']}"


def test_a_card_number_is_masked_before_the_text_is_queued(fake_twilio, client, db):
    params = inbound(body="4000 0566 5566 5556 exp 12/29")
    post(client, params, twilio_signature(URL, params))
    (job,) = runtime().queue.queues[HIGH].jobs
    assert job.args[0]["Body"] == "[number removed, ends 5556] exp 12/29"
    assert b"5566" not in b"".join(runtime().queue.connection.hvals(job.key))


def test_texts_are_stored_masked_on_the_stop_path_and_the_job_path(fake_twilio, client, db):
    params = inbound(body="STOP")
    post(client, params, twilio_signature(URL, params))
    card = inbound(body="stop 4000056655665556", sid="SM" + "ef56" * 8)
    post(client, card, twilio_signature(URL, card))
    bodies = sorted(event.payload["Body"] for event in stored(db))
    assert bodies == ["STOP", "stop [number removed, ends 5556]"]


def test_the_query_string_is_part_of_the_signed_url(fake_twilio, client, db):
    params = inbound()
    signed_with_query = twilio_signature(URL + "?site=phx&x=%C3%B1", params)
    path = "/webhooks/twilio/sms?site=phx&x=%C3%B1"
    headers = {"X-Twilio-Signature": signed_with_query}
    assert client.post(path, data=params, headers=headers).status_code == 200
    without_query = client.post("/webhooks/twilio/sms", data=params, headers=headers)
    assert without_query.status_code == 403
    assert len(stored(db)) == 1


def test_blank_fields_are_part_of_the_signature(fake_twilio, client, db):
    params = inbound() | {"FromCity": "", "FromZip": ""}
    assert post(client, params, twilio_signature(URL, params)).status_code == 200
    assert len(stored(db)) == 1


def test_a_body_far_beyond_any_text_is_refused_as_too_large(fake_twilio, client, db):
    params = inbound(body="x" * 100_000)
    assert post(client, params, twilio_signature(URL, params)).status_code == 413
    assert stored(db) == []


def test_a_signed_request_that_is_not_a_form_is_refused(fake_twilio, client, db):
    params = inbound()
    response = client.post(
        "/webhooks/twilio/sms",
        json=params,
        headers={"X-Twilio-Signature": twilio_signature(URL, params)},
    )
    assert response.status_code == 403
    assert stored(db) == []
