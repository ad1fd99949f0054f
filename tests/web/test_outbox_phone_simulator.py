"""The outbox's phone simulator: a text typed on the page reaches the service through the
signed inbound webhook (signature checked, MessageSid deduped), and the phone's
conversation shows both ways, oldest first, escaped."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from linkpay.models import Channel, Message, MessageStatus, ProviderEvent
from linkpay.runtime import runtime
from linkpay.web import outbox
from tests.web.pay_flow import form, make_account

DEV_TOKEN = "dev-simulator-test-token"
ALEX = "+16025550143"
SAM = "+14805550123"


@pytest.fixture
def signed(config_overrides):
    """What ``linkpay dev`` does: an auth token, the SMS still kept in the outbox."""
    config_overrides["twilio.auth_token"] = DEV_TOKEN


@pytest.fixture
def phones(db):
    make_account(db, account_number="DEMO-1001", first_name="Alex", last_name="Rivera")
    make_account(db, account_number="DEMO-1003", first_name="Sam", last_name="Lee", phone=SAM)
    make_account(db, account_number="DEMO-1009", first_name="Ana", last_name="Diaz", phone=ALEX)
    make_account(db, account_number="DEMO-1004", first_name="Jose", phone=None)


def page(client, **args) -> str:
    response = client.get("/outbox", query_string=args)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def send(client, body: str, phone: str = ALEX, **extra):
    reply = form(page(client, phone=phone), "/outbox/phone")
    return client.post(reply.action, data={**reply.fields, "phone": phone, "body": body, **extra})


def inbound_events(db) -> list[ProviderEvent]:
    """The texts the service has taken in: the jobs the webhook queued store them."""
    runtime().queue.drain()
    db.expire_all()
    return db.scalars(select(ProviderEvent).order_by(ProviderEvent.id)).all()


def text_to(db, phone: str, body: str, status=MessageStatus.SENT) -> Message:
    message = Message(
        channel=Channel.SMS,
        kind="help",
        to_address=phone,
        body=body,
        status=status,
        created_at=runtime().now(),
    )
    db.add(message)
    db.commit()
    return message


def thread_texts(html: str) -> list[tuple[str, str]]:
    section = html.split('id="phone"', 1)[1].split("</section>", 1)[0]
    return re.findall(
        r'class="bubble (from-phone|to-phone)">.*?<span class="text">(.*?)</span>', section, re.S
    )


def test_the_phones_on_file_are_offered_each_once_with_their_accounts(signed, phones, client):
    html = page(client)
    options = re.findall(r'<option value="([^"]+)"( selected)?>([^<]+)</option>', html)
    assert options == [
        (SAM, " selected", f"{SAM} · Sam Lee (DEMO-1003)"),  # the first is ready to text from
        (ALEX, "", f"{ALEX} · Alex Rivera (DEMO-1001), Ana Diaz (DEMO-1009)"),
    ]
    assert f'<option value="{ALEX}" selected>' in page(client, phone=ALEX)
    assert f'<option value="{SAM}" selected>' in page(client, phone="+10000000000")


def test_a_text_goes_through_the_signed_webhook_as_twilio_would_post_it(signed, phones, client, db):
    response = send(client, "HELP")

    assert response.status_code == 303
    location = urlsplit(response.headers["Location"])
    assert location.path == "/outbox" and location.fragment == "phone"
    [event] = inbound_events(db)
    sid = event.event_id
    assert parse_qs(location.query) == {
        "phone": [ALEX],
        "sent": [sid],
        "at": [str(int(runtime().now().timestamp()))],
    }
    assert (event.provider, event.kind) == ("twilio", "inbound_sms")
    assert re.fullmatch(r"SMsim[0-9a-f]{29}", sid)
    # Stored at all means the webhook's own signature check passed (see the forged case).
    payload = event.payload
    assert payload["MessageSid"] == sid
    assert (payload["From"], payload["Body"], payload["NumSegments"]) == (ALEX, "HELP", "1")
    assert payload["To"] == outbox.SIMULATED_SERVICE_NUMBER  # no Twilio number configured
    assert payload["AccountSid"].startswith("AC") and len(payload["AccountSid"]) == 34


@pytest.fixture
def twilio_number(config_overrides):
    config_overrides["twilio.from_number"] = "+16025550100"
    config_overrides["twilio.account_sid"] = "AC" + "ab12" * 8


def test_the_text_is_sent_to_the_configured_twilio_number(
    signed, twilio_number, phones, client, db
):
    assert send(client, "BAL").status_code == 303
    [event] = inbound_events(db)
    assert event.payload["To"] == "+16025550100"
    assert event.payload["AccountSid"] == "AC" + "ab12" * 8


def test_a_wrong_signature_is_refused_by_the_webhook_and_the_page_says_so(
    signed, phones, client, db, monkeypatch
):
    # Sign with another token: the webhook's own check must turn the text away.
    monkeypatch.setattr(outbox, "RequestValidator", lambda _token: RequestValidator("guessed"))
    response = send(client, "PAY 50")

    assert response.status_code == 400
    assert "The webhook refused the text (HTTP 403)." in response.get_data(as_text=True)
    assert ">PAY 50</textarea>" in response.get_data(as_text=True)  # nothing typed is lost
    assert inbound_events(db) == []


def test_the_same_words_sent_twice_are_two_texts(signed, phones, client, db):
    assert send(client, "BAL").status_code == 303
    assert send(client, "BAL").status_code == 303
    events = inbound_events(db)
    assert len(events) == 2 and events[0].event_id != events[1].event_id


def test_the_conversation_shows_both_ways_oldest_first_and_escaped(
    signed, phones, client, db, clock
):
    text_to(db, ALEX, "Springfield Water: pay at https://pay.example.org/p/abc")
    clock.advance(minutes=1)
    send(client, "<script>alert('x')</script> & BAL")
    runtime().queue.drain()  # the job stores the text and answers it (with the help text)
    text_to(db, SAM, "Not Alex's text")

    html = page(client, phone=ALEX)

    *earlier, (side, answer) = thread_texts(html)
    assert earlier == [
        (
            "to-phone",
            'Springfield Water: pay at <a href="https://pay.example.org/p/abc">'
            "https://pay.example.org/p/abc</a>",
        ),
        ("from-phone", "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; BAL"),
    ]
    assert side == "to-phone" and answer.startswith("Springfield Water: Reply PAY to pay")
    assert "<script>alert" not in html
    assert thread_texts(page(client, phone=SAM)) == [("to-phone", "Not Alex&#39;s text")]


def test_the_page_reloads_itself_until_the_answer_is_in(signed, phones, client, db, clock):
    sent = urlsplit(send(client, "HELP").headers["Location"])
    args = {k: v[0] for k, v in parse_qs(sent.query).items()}
    refresh = (
        f'<meta http-equiv="refresh" content="1; url=/outbox?phone=%2B16025550143&amp;'
        f'sent={args["sent"]}&amp;at={args["at"]}">'
    )

    assert refresh in page(client, **args)
    text_to(db, ALEX, "Queued, not sent yet", status=MessageStatus.QUEUED)
    assert refresh in page(client, **args)
    text_to(db, ALEX, "Springfield Water help. Reply STOP to opt out")
    assert refresh not in page(client, **args)
    assert refresh not in page(client, phone=ALEX)  # no text of its own to wait for


def test_the_page_stops_waiting_for_an_answer_that_never_comes(signed, phones, client, clock):
    sent = urlsplit(send(client, "BAL").headers["Location"])
    args = {k: v[0] for k, v in parse_qs(sent.query).items()}
    clock.advance(seconds=outbox.WAIT_FOR_ANSWER_SECONDS + 1)
    assert '<meta http-equiv="refresh"' not in page(client, **args)


@pytest.mark.parametrize(
    ("body", "phone", "says"),
    [
        ("", ALEX, "Type a text to send."),
        ("   \n ", ALEX, "Type a text to send."),
        ("x" * 1601, ALEX, "A text can be at most 1,600 characters; this one has 1,601."),
        ("HELP", "+16025559999", "Pick one of the phones on file."),
    ],
)
def test_bad_input_gets_a_clear_message_and_sends_nothing(
    signed, phones, client, db, body, phone, says
):
    reply = form(page(client), "/outbox/phone")
    response = client.post(reply.action, data={**reply.fields, "phone": phone, "body": body})
    assert response.status_code == 400
    assert says in response.get_data(as_text=True)
    assert inbound_events(db) == []


def test_a_1600_character_text_is_accepted(signed, phones, client, db):
    assert send(client, "x" * 1600).status_code == 303
    [event] = inbound_events(db)
    assert event.payload["NumSegments"] == "11"
    assert len(event.payload["Body"]) == 1600


def test_the_form_needs_its_csrf_token(signed, phones, client, db):
    response = client.post("/outbox/phone", data={"phone": ALEX, "body": "HELP"})
    assert response.status_code == 400
    assert inbound_events(db) == []


def test_without_an_auth_token_the_page_says_why_nothing_can_be_sent(phones, client, db):
    html = page(client)
    assert "twilio.auth_token is empty" in html
    assert re.search(r"<textarea[^>]* disabled", html)
    response = send(client, "HELP")
    assert response.status_code == 400
    assert "twilio.auth_token is empty" in response.get_data(as_text=True)
    assert inbound_events(db) == []


def test_with_no_phones_on_file_the_page_says_so(signed, client):
    assert "No account on file has a phone." in page(client)


@pytest.fixture
def production(config_overrides):
    config_overrides["app.production"] = True
    # Production insists on Redis; nothing here connects to it.
    config_overrides["app.redis_url"] = config_overrides["app.redis_url"] or "redis://127.0.0.1:1/0"
    config_overrides["twilio.auth_token"] = DEV_TOKEN


def test_there_is_no_outbox_or_simulator_in_production(production, phones, client, db):
    assert client.get("/outbox").status_code == 404
    assert client.post("/outbox/phone", data={"phone": ALEX, "body": "HELP"}).status_code == 404
    assert db.scalars(select(ProviderEvent)).all() == []


def test_dev_sets_a_per_process_auth_token_only_when_none_is_configured(monkeypatch):
    from linkpay.cli.dev import _dev_overrides

    for name in ("LINKPAY_CONFIG", "LINKPAY_TWILIO_AUTH_TOKEN", "LINKPAY_APP_PRODUCTION"):
        monkeypatch.delenv(name, raising=False)
    first, second = _dev_overrides(None), _dev_overrides(None)
    assert first["twilio.auth_token"].startswith("dev-")
    assert len(first["twilio.auth_token"]) > 30
    assert first["twilio.auth_token"] != second["twilio.auth_token"]

    monkeypatch.setenv("LINKPAY_TWILIO_AUTH_TOKEN", "configured-token")
    assert "twilio.auth_token" not in _dev_overrides(None)

    monkeypatch.delenv("LINKPAY_TWILIO_AUTH_TOKEN")
    monkeypatch.setenv("LINKPAY_APP_PRODUCTION", "true")
    monkeypatch.setenv("LINKPAY_APP_SECRET_KEY", "a-production-secret")
    monkeypatch.setenv("LINKPAY_APP_REDIS_URL", "redis://127.0.0.1:6379/3")
    assert "twilio.auth_token" not in _dev_overrides(None)


def test_help_typed_on_the_simulator_is_answered_in_the_thread(
    signed, phones, client, db, run_jobs, clock
):
    sent = urlsplit(send(client, "HELP").headers["Location"])
    args = {k: v[0] for k, v in parse_qs(sent.query).items()}
    run_jobs()  # the worker: jobs.inbound answers, the send job puts the answer in the outbox

    html = page(client, **args)
    assert '<meta http-equiv="refresh"' not in html
    (inbound, answer) = thread_texts(html)
    assert inbound == ("from-phone", "HELP")
    side, text = answer
    assert side == "to-phone"
    assert text.startswith("Springfield Water: Reply PAY to pay")
    assert "Msg &amp; data rates may apply. Reply STOP to opt out" in text


def test_a_phone_past_the_end_of_the_list_can_still_be_texted_from(
    signed, phones, client, db, monkeypatch
):
    monkeypatch.setattr(outbox, "PHONES_SHOWN", 1)  # only Sam's phone is listed
    assert f'<option value="{ALEX}"' not in page(client)
    assert f'<option value="{ALEX}" selected>' in page(client, phone=ALEX)
    assert send(client, "BAL").status_code == 303
    assert [e.payload["From"] for e in inbound_events(db)] == [ALEX]
