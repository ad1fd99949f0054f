"""The sandbox gateway: a stand-in processor for laptops, demos and tests (contract §4).

Its tokenizer (``sandbox_tokenizer``) checks what the customer typed and keeps, in
``sandbox_tokens``, only what a charge will do, the brand and the last four. A charge is a
database lookup of that token, so answering inside the customer's request costs nothing; a
real processor is called the same way with a short timeout, because the customer is
waiting for the answer.

Outcomes, by the number typed:

- card 4000 0000 0000 0002: declined; 4000 0000 0000 9995: declined, insufficient funds;
  every other Luhn-valid card number with a future expiry: approved (as Stripe's test mode
  does, so any made-up valid number works in a demo);
- bank routing 110000000 with account 000111111116: declined; every other account at a
  valid ABA routing number (000123456789 in the contract): approved as *pending*, and
  settled (paid) when linkpay next asks about it, which the sweep does no sooner than
  ``linkpay.services.payments.SETTLE_POLL`` after the charge.

The sandbox keeps no ledger of charges: a charge's outcome and reference are a pure
function of (token, idempotency key). Asking again with the same key therefore gets the
identical answer, and since no money moves there is no second charge to prevent."""

from __future__ import annotations

import hashlib
import re
import secrets

from flask import url_for
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.orm import Session

from linkpay.db import Database
from linkpay.gateways.base import (
    ChargeResult,
    ChargeStatus,
    FormTarget,
    GatewayError,
    PaymentMethod,
)
from linkpay.models import MethodKind, SandboxToken
from linkpay.runtime import runtime

APPROVED, DECLINED, INSUFFICIENT_FUNDS = "approved", "declined", "insufficient_funds"
CARD_OUTCOMES = {"4000000000000002": DECLINED, "4000000000009995": INSUFFICIENT_FUNDS}
BANK_OUTCOMES = {("110000000", "000111111116"): DECLINED}
RETURN_SALT = "sandbox-return"
RETURN_MAX_AGE_SECONDS = 3600  # the customer has an hour to fill in the card form
# linkpay's own pages only: "[/mount]/p/<token>/<step>", a path on this origin (no "//",
# no scheme, no host), so a return_to can never send the browser anywhere else.
RETURN_PATH = re.compile(r"(?:/[A-Za-z0-9_\-]+)*/p/[A-Za-z0-9_.\-]+/[a-z]+")


class SandboxGateway:
    name = "sandbox"

    def __init__(self, db: Database):
        self.db = db

    def form_target(self, checkout_public_id: str, return_path: str) -> FormTarget:
        return FormTarget(
            action=url_for("sandbox_gateway.tokenize"),
            fields={"return_to": sign_return(checkout_public_id, return_path)},
        )

    def describe(self, token: str) -> PaymentMethod | None:
        row = self._token(token)
        if row is None:
            return None
        return PaymentMethod(kind=row.kind, label=row.label, last4=row.last4)

    def charge(self, token: str, amount_cents: int, idempotency_key: str) -> ChargeResult:
        if isinstance(amount_cents, bool) or not isinstance(amount_cents, int):
            raise TypeError("amount_cents must be whole cents")
        if amount_cents <= 0:
            raise ValueError("a charge must be for more than zero")
        digest = hashlib.sha256(f"{idempotency_key}|{token}".encode()).hexdigest()[:16]
        reference = f"ch_{digest}.{token}"
        row = self._token(token)
        if row is None:
            return ChargeResult(ChargeStatus.DECLINED, reference, "unknown_method", "no such token")
        if row.outcome != APPROVED:
            return ChargeResult(ChargeStatus.DECLINED, reference, row.outcome, row.outcome)
        if row.kind == MethodKind.BANK:
            return ChargeResult(ChargeStatus.PENDING, reference, message="ACH initiated")
        return ChargeResult(ChargeStatus.APPROVED, reference, message="approved")

    def check(self, reference: str) -> ChargeResult:
        _, dot, token = reference.partition(".")
        row = self._token(token) if dot else None
        if row is None:
            raise GatewayError(f"sandbox: no charge {reference!r}")
        if row.outcome != APPROVED:
            return ChargeResult(ChargeStatus.DECLINED, reference, row.outcome, row.outcome)
        # An approved ACH debit settles the first time it is asked about.
        return ChargeResult(ChargeStatus.APPROVED, reference, message="settled")

    def _token(self, token: str) -> SandboxToken | None:
        if not token:
            return None
        with self.db.session() as session:
            return session.scalar(select(SandboxToken).where(SandboxToken.token == token))


def card_outcome(number: str) -> str:
    return CARD_OUTCOMES.get(number, APPROVED)


def bank_outcome(routing: str, account: str) -> str:
    return BANK_OUTCOMES.get((routing, account), APPROVED)


def card_brand(number: str) -> str:
    """The brand from the number's leading digits (IIN ranges of the big four)."""
    if number.startswith("4"):
        return "Visa"
    if number[:2] in {"34", "37"}:
        return "American Express"
    if 51 <= int(number[:2]) <= 55 or 2221 <= int(number[:4]) <= 2720:
        return "Mastercard"
    if number.startswith(("6011", "65")) or 644 <= int(number[:3]) <= 649:
        return "Discover"
    return "Card"


def vault(session: Session, kind: MethodKind, label: str, last4: str, outcome: str) -> str:
    """Keep what a charge of the new token will do; return the token."""
    token = f"tok_{secrets.token_hex(12)}"
    session.add(
        SandboxToken(
            token=token,
            kind=kind,
            label=label,
            last4=last4,
            outcome=outcome,
            created_at=runtime().now(),
        )
    )
    return token


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(runtime().signer.keys, salt=RETURN_SALT)


def sign_return(checkout_public_id: str, return_path: str) -> str:
    """Bind a tokenizer round trip to one checkout and one of linkpay's own pages."""
    if not RETURN_PATH.fullmatch(return_path):
        raise ValueError(f"not a payment page path: {return_path!r}")
    return _serializer().dumps([checkout_public_id, return_path])


def read_return(value: str) -> tuple[str, str] | None:
    """The checkout and path a ``return_to`` names; None when forged, mangled or stale."""
    try:
        checkout_public_id, path = _serializer().loads(value, max_age=RETURN_MAX_AGE_SECONDS)
    except (BadSignature, ValueError, TypeError):
        return None
    if not isinstance(path, str) or not RETURN_PATH.fullmatch(path):
        return None
    return str(checkout_public_id), path
