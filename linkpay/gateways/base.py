"""What every payment gateway promises linkpay.

linkpay never sees a card or bank number: the browser posts those straight to the
gateway's tokenizer (a processor's hosted fields), which answers with a token. Everything
here works on that token. Amounts are integer cents."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Protocol

from linkpay.models import MethodKind


class ChargeStatus(enum.StrEnum):
    APPROVED = "approved"  # the money is ours (a card charge)
    PENDING = "pending"  # accepted, settles later (ACH); may still be returned
    DECLINED = "declined"


@dataclass(frozen=True)
class ChargeResult:
    status: ChargeStatus
    reference: str | None  # the gateway's id for the charge
    decline_code: str | None = None  # "declined", "insufficient_funds", ...
    message: str | None = None  # the gateway's own words, for staff and logs


@dataclass(frozen=True)
class PaymentMethod:
    """What linkpay may keep about a tokenized method: never the number."""

    kind: MethodKind
    label: str  # the card brand, or "Bank"
    last4: str


@dataclass(frozen=True)
class FormTarget:
    """Where the page's card and bank inputs post, and the hidden fields to send along."""

    action: str
    fields: dict[str, str] = field(default_factory=dict)


class GatewayError(Exception):
    """The gateway could not be asked or did not answer: the charge's outcome is unknown.
    The payment stays ``processing`` and is asked again with the same idempotency key."""


class Gateway(Protocol):
    name: str

    def form_target(self, checkout_public_id: str, return_path: str) -> FormTarget:
        """The tokenizer the payment page's card and bank inputs submit to. The browser
        comes back to ``return_path`` with ``pm=<token>`` or ``errors=<codes>``."""
        ...

    def describe(self, token: str) -> PaymentMethod | None:
        """Kind, brand and last four of a token; None when the gateway does not know it."""
        ...

    def charge(self, token: str, amount_cents: int, idempotency_key: str) -> ChargeResult:
        """Charge once per ``idempotency_key``: asking again returns the first answer."""
        ...

    def check(self, reference: str) -> ChargeResult:
        """The current state of an earlier charge (a pending ACH settles or is returned)."""
        ...
