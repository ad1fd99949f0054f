"""A fake Twilio REST API: ``POST /2010-04-01/Accounts/{sid}/Messages.json``.

It checks HTTP Basic auth (account sid : auth token), validates To / From / Body the way
Twilio does for the cases tests need (21211 for an invalid To, 21602 / 21604 / 21603 for a
missing field), and answers 201 with a message resource (sid ``SM`` + 32 hex, status
``queued``). ``error(...)`` queues a Twilio error body such as 21610 for the next request.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
import secrets
import threading
from email.utils import format_datetime
from urllib.parse import parse_qs

from tests.fakes import FakeServer, Recorded, Reply

E164 = re.compile(r"^\+[1-9]\d{7,14}$")
MESSAGES_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<sid>AC[0-9a-f]{32})/Messages\.json$")


class FakeTwilio(FakeServer):
    def __init__(self, account_sid: str, auth_token: str) -> None:
        super().__init__()
        self.account_sid = account_sid
        self.auth_token = auth_token
        # (form, resource) for every message created, i.e. answered 201.
        self.created: list[tuple[dict, dict]] = []
        self._created_lock = threading.Lock()

    def error(self, code: int, message: str, status: int = 400, headers=None) -> None:
        """Answer the next request with Twilio's error body for ``code``."""
        canned = _error(code, message, status)
        self.reply(status, canned.body, headers)

    @property
    def sent(self) -> list[dict]:
        """The form (To, From, Body, StatusCallback) of each request that created a message."""
        with self._created_lock:
            return [form for form, _resource in self.created]

    @property
    def sids(self) -> list[str]:
        with self._created_lock:
            return [resource["sid"] for _form, resource in self.created]

    # -- the API ------------------------------------------------------------------------

    def parse_body(self, content_type: str, raw: bytes) -> dict[str, str]:
        form = parse_qs(raw.decode("utf-8"), keep_blank_values=True)
        return {key: values[-1] for key, values in form.items()}

    def authorized(self, headers: dict[str, str]) -> bool:
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        return headers.get("Authorization") == f"Basic {expected}"

    def handle(self, recorded: Recorded) -> Reply:
        match = MESSAGES_PATH.match(recorded.path)
        if not match or match["sid"] != self.account_sid:
            return _error(20404, "The requested resource was not found", 404)
        if not recorded.authorized:
            return _error(20003, "Authenticate", 401)
        form = recorded.body
        problem = _invalid(form)
        if problem:
            return problem
        resource = self._resource(form)
        with self._created_lock:
            self.created.append((form, resource))
        return Reply(201, resource)

    def _resource(self, form: dict[str, str]) -> dict:
        sid = "SM" + secrets.token_hex(16)
        now = format_datetime(dt.datetime.now(dt.UTC), usegmt=True)
        base = f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}"
        return {
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "body": form["Body"],
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": form["From"],
            "messaging_service_sid": None,
            "num_media": "0",
            "num_segments": "1",
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "queued",
            "subresource_uris": {"media": f"{base}/Media.json"},
            "to": form["To"],
            "uri": f"{base}.json",
        }


def _invalid(form: dict[str, str]) -> Reply | None:
    if not form.get("To"):
        return _error(21604, "A 'To' phone number is required.")
    if not E164.match(form["To"]):
        return _error(21211, f"The 'To' number {form['To']} is not a valid phone number.")
    if not form.get("From"):
        return _error(21603, "A 'From' phone number is required.")
    if not form.get("Body"):
        return _error(21602, "Message body is required.")
    return None


def _error(code: int, message: str, status: int = 400) -> Reply:
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return Reply(status, body)
