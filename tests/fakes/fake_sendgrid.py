"""A fake SendGrid v3 API (``POST /v3/mail/send``) and a signer for its event webhook.

The fake checks ``Authorization: Bearer <key>``, parses the JSON body, refuses a recipient
that is not an email address the way SendGrid does (400 naming
``personalizations.0.to.0.email``), and answers 202 with an ``X-Message-Id`` header.

``EventSigner`` holds an EC P-256 key pair and signs event batches as SendGrid does:
ECDSA-SHA256 over the timestamp bytes followed by the payload bytes, base64 DER.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
import time

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.fakes import FakeServer, Recorded, Reply

ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class FakeSendGrid(FakeServer):
    def __init__(self, api_key: str) -> None:
        super().__init__()
        self.api_key = api_key
        self.accepted: list[tuple[dict, str]] = []  # (mail JSON, X-Message-Id) per 202
        self._accepted_lock = threading.Lock()

    @property
    def sent(self) -> list[dict]:
        with self._accepted_lock:
            return [mail for mail, _message_id in self.accepted]

    @property
    def message_ids(self) -> list[str]:
        with self._accepted_lock:
            return [message_id for _mail, message_id in self.accepted]

    def parse_body(self, content_type: str, raw: bytes):
        try:
            return json.loads(raw or b"null")
        except ValueError:
            return None

    def authorized(self, headers: dict[str, str]) -> bool:
        return headers.get("Authorization") == f"Bearer {self.api_key}"

    def handle(self, recorded: Recorded) -> Reply:
        if recorded.path != "/v3/mail/send":
            return _errors(404, "Not Found")
        if not recorded.authorized:
            return _errors(401, "The provided authorization grant is invalid, expired, or revoked")
        mail = recorded.body
        if not isinstance(mail, dict) or not mail.get("personalizations"):
            return _errors(400, "The personalizations field is required.", "personalizations")
        problem = _bad_recipient(mail)
        if problem:
            return problem
        message_id = secrets.token_urlsafe(16)[:22]
        with self._accepted_lock:
            self.accepted.append((mail, message_id))
        return Reply(202, None, {"X-Message-Id": message_id})


def _bad_recipient(mail: dict) -> Reply | None:
    for p, personalization in enumerate(mail["personalizations"]):
        for t, recipient in enumerate(personalization.get("to") or []):
            if not ADDRESS.match(str(recipient.get("email") or "")):
                return _errors(
                    400,
                    "Does not contain a valid address.",
                    f"personalizations.{p}.to.{t}.email",
                )
    return None


def _errors(status: int, message: str, field: str | None = None) -> Reply:
    return Reply(status, {"errors": [{"message": message, "field": field, "help": None}]})


class EventSigner:
    """Signs event-webhook payloads like SendGrid; ``public_key`` is what its settings
    page shows (base64 DER SubjectPublicKeyInfo), i.e. ``sendgrid.webhook_public_key``."""

    SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
    TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"

    def __init__(self) -> None:
        self._private_key = ec.generate_private_key(ec.SECP256R1())
        der = self._private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.public_key = base64.b64encode(der).decode()

    def headers(self, payload: bytes, timestamp: str | None = None) -> dict[str, str]:
        timestamp = timestamp or str(int(time.time()))
        signature = self._private_key.sign(timestamp.encode() + payload, ec.ECDSA(hashes.SHA256()))
        return {
            self.SIGNATURE_HEADER: base64.b64encode(signature).decode(),
            self.TIMESTAMP_HEADER: timestamp,
        }
