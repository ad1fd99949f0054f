"""Fixtures ``fake_twilio``, ``fake_sendgrid`` and the ``spy`` gateway, loaded by
tests/conftest.py with ``pytest_plugins = ["tests.fakes.fixtures"]``.

Each fake starts its API and points the app's configuration at it, so it must be set up
before ``app`` is built: request it ahead of ``app`` / ``client`` / ``db`` in a test's
arguments (or from a fixture that ``app``-using fixtures depend on).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from twilio.request_validator import RequestValidator

from linkpay.models import Account, Channel, Message, MessageStatus
from linkpay.runtime import runtime
from tests.fakes.fake_sendgrid import EventSigner, FakeSendGrid
from tests.fakes.fake_twilio import FakeTwilio
from tests.fakes.gateway import SpyGateway

TWILIO_ACCOUNT_SID = "AC" + "5ea1" * 8
TWILIO_AUTH_TOKEN = "fake-twilio-auth-token-0123456789"
TWILIO_FROM_NUMBER = "+16025550199"
SENDGRID_API_KEY = "SG.fake-sendgrid-key.0123456789"
SENDGRID_FROM_EMAIL = "billing@example.org"


@pytest.fixture
def fake_twilio(config_overrides) -> Iterator[FakeTwilio]:
    fake = FakeTwilio(TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN).start()
    config_overrides.update(
        {
            "sms.provider": "twilio",
            "twilio.account_sid": TWILIO_ACCOUNT_SID,
            "twilio.auth_token": TWILIO_AUTH_TOKEN,
            "twilio.from_number": TWILIO_FROM_NUMBER,
            "twilio.api_base_url": fake.url,
            "twilio.timeout_seconds": 2,
        }
    )
    yield fake
    fake.stop()


@pytest.fixture
def fake_sendgrid(config_overrides) -> Iterator[FakeSendGrid]:
    fake = FakeSendGrid(SENDGRID_API_KEY).start()
    config_overrides.update(
        {
            "email.provider": "sendgrid",
            "sendgrid.api_key": SENDGRID_API_KEY,
            "sendgrid.from_email": SENDGRID_FROM_EMAIL,
            "sendgrid.api_host": fake.url,
            "sendgrid.timeout_seconds": 2,
        }
    )
    yield fake
    fake.stop()


@pytest.fixture
def sendgrid_signer(config_overrides) -> EventSigner:
    """A SendGrid event-webhook key pair; the app is configured with its public half."""
    signer = EventSigner()
    config_overrides["sendgrid.webhook_public_key"] = signer.public_key
    return signer


@pytest.fixture
def spy(app) -> SpyGateway:
    """The app's payment gateway, replaced by one that records each charge."""
    rt = runtime()
    rt.providers["gateway"] = SpyGateway(rt.db)
    return rt.providers["gateway"]


def twilio_signature(url: str, params: dict, token: str = TWILIO_AUTH_TOKEN) -> str:
    """``X-Twilio-Signature`` for a webhook request to ``url`` (base_url + path)."""
    return RequestValidator(token).compute_signature(url, params)


@pytest.fixture
def make_message(db):
    """Save an account and one rendered message to it (queued unless told otherwise)."""
    counter = iter(range(1, 1_000_000))

    def make(
        channel: Channel = Channel.SMS,
        *,
        account: Account | None = None,
        status: MessageStatus = MessageStatus.QUEUED,
        **fields,
    ) -> Message:
        if account is None:
            number = next(counter)
            account = Account(
                account_number=f"DLV-{number:05d}",
                first_name="Pat",
                last_name="Rivera",
                phone=f"+1602555{number:04d}",
                email=f"pat{number}@example.com",
                balance_cents=12_345,
                zip="85004",
            )
            db.add(account)
            db.flush()
        sms = Channel(channel) == Channel.SMS
        values = {
            "account_id": account.id,
            "channel": Channel(channel),
            "kind": "link",
            "to_address": account.phone if sms else account.email,
            "subject": None if sms else "Your Springfield Water bill",
            "body": "Springfield Water: pay your balance at https://pay.example.org/p/tok3n",
            "html_body": None if sms else "<p>Pay at https://pay.example.org/p/tok3n</p>",
            "status": status,
            "created_at": runtime().now(),
            **fields,
        }
        message = Message(**values)
        db.add(message)
        db.commit()
        return message

    return make
