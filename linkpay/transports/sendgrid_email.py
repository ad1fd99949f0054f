"""Email through SendGrid's v3 Mail Send API, with the official ``sendgrid`` client.

Each email carries ``custom_args = {"linkpay_message_id": <id>}``: SendGrid copies custom
args onto every event it posts to our webhook, so delivered / bounce events find their row
even before (or without) the ``X-Message-Id`` we keep as provider_id.

Permanent means SendGrid rejected the recipient's address itself (a 400 naming the "to"
email); it marks the address undeliverable. A 429, a 5xx, a timeout or a dropped connection
is retried by the send job, no sooner than ``Retry-After``. Any other 4xx (a revoked API
key, an unverified sender) is about our set-up, not the customer, so it is retried too and
ends ``failed`` after ``messages.max_attempts`` without blaming the address.
"""

from __future__ import annotations

import http.client
import json
import re

from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import (
    ClickTracking,
    CustomArg,
    From,
    Header,
    Mail,
    To,
    TrackingSettings,
)

from linkpay.config import Config
from linkpay.models import Message
from linkpay.services.contacts import unsubscribe_url
from linkpay.transports.base import ProviderResult, TransportError
from linkpay.transports.registry import parse_retry_after

PROVIDER = "sendgrid"
MESSAGE_ID_ARG = "linkpay_message_id"
# The error "field" SendGrid names when the recipient address itself is unusable.
RECIPIENT_FIELD = re.compile(r"^personalizations\.\d+\.to(\.\d+)?(\.email)?$")


class SendGridEmailTransport:
    name = PROVIDER

    def __init__(
        self, *, api_key: str, api_host: str, from_email: str, from_name: str, timeout: float
    ):
        self.from_email = From(from_email, from_name or None)
        self.client = SendGridAPIClient(api_key, host=api_host.rstrip("/"))
        # python_http_client passes this to urllib on every call; without it a stalled
        # connection would hold the worker forever.
        self.client.client.timeout = timeout

    @classmethod
    def from_config(cls, config: Config) -> SendGridEmailTransport:
        return cls(
            api_key=config["sendgrid.api_key"],
            api_host=config["sendgrid.api_host"],
            from_email=config["sendgrid.from_email"],
            from_name=config["org.name"],
            timeout=config["sendgrid.timeout_seconds"],
        )

    def send(self, message: Message) -> ProviderResult:
        if not message.to_address:
            raise TransportError("message has no email address", permanent=True, code="no_email")
        try:
            response = self.client.send(self.build_mail(message))
        except HTTPError as exc:
            raise api_error(exc) from exc
        except (OSError, http.client.HTTPException) as exc:  # URLError is an OSError
            raise connection_error(exc) from exc
        return ProviderResult(provider=PROVIDER, provider_id=response.headers.get("X-Message-Id"))

    def build_mail(self, message: Message) -> Mail:
        # Set, not parsed: given "pat-at-example" the helper would take it for a display
        # name; set verbatim, SendGrid itself judges the address (a permanent 400).
        recipient = To()
        recipient.email = message.to_address
        mail = Mail(
            from_email=self.from_email,
            to_emails=recipient,
            subject=message.subject or "",
            plain_text_content=message.body,
            html_content=message.html_body or None,
        )
        mail.custom_arg = CustomArg(MESSAGE_ID_ARG, str(message.id))
        # Click tracking would swap the payment link for a SendGrid redirect: the contract
        # says messages carry the link exactly as built from app.base_url.
        mail.tracking_settings = TrackingSettings(click_tracking=ClickTracking(False, False))
        if message.account_id is not None:
            # RFC 8058 one-click unsubscribe: mail clients show an "Unsubscribe" button
            # that posts straight to our /u/<token> route.
            mail.header = Header("List-Unsubscribe", f"<{unsubscribe_url(message.account_id)}>")
            mail.header = Header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")
        return mail


def connection_error(exc: OSError | http.client.HTTPException) -> TransportError:
    # urllib raises a read timeout as TimeoutError, a connect timeout wrapped in URLError.
    if isinstance(exc, TimeoutError) or isinstance(getattr(exc, "reason", None), TimeoutError):
        return TransportError("SendGrid did not answer in time", permanent=False, code="timeout")
    return TransportError(
        f"could not reach SendGrid ({type(exc).__name__})", permanent=False, code="connection"
    )


def api_error(exc: HTTPError) -> TransportError:
    status = int(exc.status_code)
    errors = _errors(exc.body)
    detail = "; ".join(e.get("message") or "" for e in errors) or str(exc.reason)
    retry_after = None
    if status == 429 or status >= 500:
        retry_after = parse_retry_after(exc.headers.get("Retry-After") if exc.headers else None)
    permanent = status == 400 and any(RECIPIENT_FIELD.match(e.get("field") or "") for e in errors)
    return TransportError(
        f"SendGrid answered {status}: {detail}"[:500],
        permanent=permanent,
        code=str(status),
        retry_after_seconds=retry_after,
    )


def _errors(body: bytes | str | None) -> list[dict]:
    """SendGrid's ``{"errors": [{"message", "field", "help"}]}``, or [] if it is not that."""
    if not body:
        return []
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return []
    errors = parsed.get("errors") if isinstance(parsed, dict) else None
    return [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []
