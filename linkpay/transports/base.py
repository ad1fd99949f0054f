"""What every transport promises: ``send(message) -> ProviderResult`` or ``TransportError``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from linkpay.models import Message


@dataclass(frozen=True)
class ProviderResult:
    provider: str  # "twilio", "sendgrid", "outbox"
    provider_id: str | None  # Twilio's SM..., SendGrid's X-Message-Id, the outbox row
    status: str = "sent"


class TransportError(Exception):
    """A send that did not happen. ``permanent`` errors (an invalid number, an unsubscribed
    number, a rejected address) will never succeed and mark the address undeliverable;
    the others are retried, no sooner than ``retry_after_seconds`` when the provider said."""

    def __init__(
        self,
        message: str,
        *,
        permanent: bool,
        code: str | None = None,
        retry_after_seconds: float | None = None,
    ):
        super().__init__(message)
        self.permanent = permanent
        self.code = code
        self.retry_after_seconds = retry_after_seconds


class Transport(Protocol):
    name: str

    def send(self, message: Message) -> ProviderResult: ...
