"""Helpers for the Pay by Text tests: accounts enrolled through the enrollment service, and
a customer's phone that texts the signed inbound webhook and reads the replies that reach
the fake Twilio API."""

from __future__ import annotations

import itertools
import re

from sqlalchemy import func, select

from linkpay.gateways.sandbox import vault
from linkpay.models import Account, MethodKind, Payment, SavedMethod
from linkpay.services import text_enrollment
from tests.fakes.fixtures import TWILIO_ACCOUNT_SID, TWILIO_FROM_NUMBER, twilio_signature
from tests.web import pay_flow

WEBHOOK_PATH = "/webhooks/twilio/sms"
WEBHOOK_URL = "https://pay.example.org" + WEBHOOK_PATH
PHONE = "+16025550143"
OTHER_PHONE = "+16025550178"
OPT_OUT = {"en": "Reply STOP to opt out", "es": "Responda PARAR para cancelar"}
CODE = re.compile(r"\b(\d{6})\b")
_sids = itertools.count(1)


def make_account(db, **fields) -> Account:
    """A texting customer: no email on file, so every notice goes by text."""
    return pay_flow.make_account(db, **{"account_number": "ACCT-10041234", "email": None, **fields})


def save_method(
    db, account: Account, *, outcome="approved", kind=MethodKind.CARD, last4="1111"
) -> SavedMethod:
    label = "Bank" if kind == MethodKind.BANK else "Visa"
    token = vault(db, kind, label, last4, outcome)
    db.commit()  # the sandbox looks tokens up in its own session
    method = text_enrollment.save_method(db, account, token)
    db.commit()
    return method


def enroll(db, account: Account, *, activate=True, **method) -> SavedMethod:
    """Pay by Text on for ``account``'s phone, as the page and an OK reply would leave it."""
    saved = save_method(db, account, **method)
    text_enrollment.enroll(
        db, account, saved, ip="203.0.113.9", user_agent="pytest", language=account.language
    )
    if activate:
        text_enrollment.activate(db, account.phone)
    db.commit()
    return saved


def inbound(body: str, phone: str = PHONE, sid: str | None = None) -> dict:
    sid = sid or f"SM{next(_sids):032x}"
    return {
        "AccountSid": TWILIO_ACCOUNT_SID,
        "ApiVersion": "2010-04-01",
        "Body": body,
        "From": phone,
        "MessageSid": sid,
        "NumMedia": "0",
        "SmsMessageSid": sid,
        "To": TWILIO_FROM_NUMBER,
    }


class Phone:
    """A customer's phone: ``text("PAY")`` posts a signed inbound webhook and runs the
    queued jobs; ``replies`` are the bodies the fake Twilio API received for this number."""

    def __init__(self, client, fake_twilio, run_jobs, number: str = PHONE):
        self.client = client
        self.fake_twilio = fake_twilio
        self.run_jobs = run_jobs
        self.number = number

    def post(self, body: str, sid: str | None = None):
        params = inbound(body, self.number, sid)
        response = self.client.post(
            WEBHOOK_PATH,
            data=params,
            headers={"X-Twilio-Signature": twilio_signature(WEBHOOK_URL, params)},
        )
        assert response.status_code == 200
        return response

    def text(self, body: str) -> list[str]:
        """Send ``body``, run the jobs, and return the replies that arrived for it."""
        self.run_jobs()  # what was queued before (the "reply OK" text) is not a reply
        before = len(self.replies)
        self.post(body)
        self.run_jobs()
        return self.replies[before:]

    def ask(self, body: str) -> str:
        """Send ``body`` and return its one reply."""
        new = self.text(body)
        assert len(new) == 1, f"{body!r} got {len(new)} replies: {new}"
        return new[0]

    @property
    def replies(self) -> list[str]:
        return [form["Body"] for form in self.fake_twilio.sent if form["To"] == self.number]


def code_in(reply: str) -> str:
    match = CODE.search(reply)
    assert match, f"no code in {reply!r}"
    return match.group(1)


def payments_count(db) -> int:
    db.expire_all()
    return db.scalar(select(func.count()).select_from(Payment))
