"""SMS through Twilio's Messages API, with the official ``twilio`` client.

What counts as permanent: only errors that say the *recipient* can never get a text from
this sender (see ``RECIPIENT_ERRORS``). Those fail the message and mark the number
undeliverable (or opted out, for 21610). Everything else is retried with back-off by the
send job, including 4xx answers about our own set-up (bad credentials 20003, a sender that
cannot send 21606, a body Twilio refuses): marking customers undeliverable because of a
configuration mistake would silence them for good, while a retry costs nothing and the
message still ends ``failed`` after ``messages.max_attempts``.

A read timeout is retried too, although Twilio may have accepted the request before the
answer was lost (the Messages API has no idempotency key): one rare duplicate text is the
price of never silently dropping a payment reminder.
"""

from __future__ import annotations

import threading

import requests
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from linkpay.config import Config
from linkpay.models import Message
from linkpay.transports.base import ProviderResult, TransportError
from linkpay.transports.registry import parse_retry_after

PROVIDER = "twilio"
STATUS_CALLBACK_PATH = "/webhooks/twilio/status"

# Twilio REST error codes (https://www.twilio.com/docs/api/errors) that no retry can fix,
# because they are about the recipient's number, not about us or the moment.
RECIPIENT_ERRORS: dict[int, str] = {
    21211: "invalid 'To' phone number",
    21217: "phone number does not appear to be valid",
    21407: "this number type does not support SMS",
    21408: "SMS to the number's region is not enabled",
    21610: "the recipient replied STOP to this sender",
    21612: "the number cannot be reached by SMS from this sender",
    21614: "not a mobile number",
}
RETRY_STATUSES = frozenset({429, 503})


class RecordingHttpClient(TwilioHttpClient):
    """TwilioHttpClient that keeps each thread's last response, headers included.

    The client's exceptions carry the HTTP status and Twilio's error code but drop the
    headers, and a 429 or 503 says in ``Retry-After`` when to come back. The parent keeps
    a ``_test_only_last_response`` too, but that is private and shared by every thread."""

    def __init__(self, *, api_base_url: str, **kwargs):
        super().__init__(**kwargs)
        self._local = threading.local()
        # requests re-reads proxy and CA-bundle variables from the whole environment on
        # every call (the client asks it to); read them once for our one API origin
        # instead: a seventh of a send's CPU time otherwise.
        settings = self.session.merge_environment_settings(api_base_url, {}, None, None, None)
        self.proxy = settings["proxies"]
        self.session.verify = settings["verify"]
        self.session.trust_env = False

    def request(self, *args, **kwargs) -> Response:
        self._local.response = None
        response = super().request(*args, **kwargs)
        self._local.response = response
        return response

    @property
    def last_response(self) -> Response | None:
        return getattr(self._local, "response", None)


class TwilioSmsTransport:
    name = PROVIDER

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        from_number: str,
        api_base_url: str,
        timeout_seconds: float,
        status_callback: str,
    ):
        self.from_number = from_number
        self.status_callback = status_callback
        self.http_client = RecordingHttpClient(api_base_url=api_base_url, timeout=timeout_seconds)
        self.client = Client(account_sid, auth_token, http_client=self.http_client)
        # Our config names the API origin; TWILIO_EDGE / TWILIO_REGION in the environment
        # would otherwise rewrite the host behind its back.
        self.client.edge = None
        self.client.region = None
        self.client.api.base_url = api_base_url.rstrip("/")

    @classmethod
    def from_config(cls, config: Config) -> TwilioSmsTransport:
        return cls(
            account_sid=config["twilio.account_sid"],
            auth_token=config["twilio.auth_token"],
            from_number=config["twilio.from_number"],
            api_base_url=config["twilio.api_base_url"],
            timeout_seconds=config["twilio.timeout_seconds"],
            status_callback=config["app.base_url"] + STATUS_CALLBACK_PATH,
        )

    def send(self, message: Message) -> ProviderResult:
        if not message.to_address:
            raise TransportError("message has no phone number", permanent=True, code="no_phone")
        try:
            created = self.client.messages.create(
                to=message.to_address,
                from_=self.from_number,
                body=message.body,
                status_callback=self.status_callback,
            )
        except (TwilioRestException, TwilioServiceException) as exc:
            raise self._api_error(exc) from exc
        except requests.Timeout as exc:
            raise TransportError(
                "Twilio did not answer in time", permanent=False, code="timeout"
            ) from exc
        except requests.RequestException as exc:
            raise TransportError(
                f"could not reach Twilio ({type(exc).__name__})", permanent=False, code="connection"
            ) from exc
        return ProviderResult(provider=PROVIDER, provider_id=created.sid)

    def _api_error(self, exc: TwilioRestException | TwilioServiceException) -> TransportError:
        status = int(exc.status or 0)
        code = int(exc.code) if exc.code else None
        detail = exc.msg if isinstance(exc, TwilioRestException) else exc.title
        permanent = code in RECIPIENT_ERRORS
        retry_after = None
        if status in RETRY_STATUSES or status >= 500:
            retry_after = retry_after_seconds(self.http_client.last_response)
        return TransportError(
            f"Twilio answered {status}: {detail}"[:500],
            permanent=permanent,
            code=str(code or status),
            retry_after_seconds=retry_after,
        )


def retry_after_seconds(response: Response | None) -> float | None:
    if response is None or not response.headers:
        return None
    return parse_retry_after(response.headers.get("Retry-After"))
