"""After the customer's request: settling pending ACH debits (whatever they paid for), and
finishing charges whose gateway call never got an answer (a checkout's or a Pay by Text
request's). ``jobs.payments.settle_payment`` runs ``settle``; the sweep task
``payments.poll_unsettled`` (in ``payments``) decides when.

An unanswered installment or scheduled payment charge is not finished here: its charge
job owns it (``installments.requeue_stalled``, ``scheduled_payments.requeue_stalled`` run
it again), because the answer must also move that row on and send its notice. It asks
through the same ``payments.finish_charge`` and ``charge_of``, with the same key.

The sandbox settles an approved debit the first time it is asked, which the sweep does no
sooner than ``payments.SETTLE_POLL`` after the charge; a real processor may answer
"still pending" for days, and the payment is simply asked about again later."""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from linkpay.gateways import ChargeStatus, GatewayError, gateway
from linkpay.models import Payment, PaymentStatus, claim
from linkpay.runtime import runtime
from linkpay.services import audit
from linkpay.services.payments import (
    FINISHED_BY_SWEEP,
    add_to_balance,
    audit_details,
    finish_charge,
    paid_for,
)

log = logging.getLogger(__name__)


def settle(session: Session, payment_id: int) -> Payment | None:
    """Ask the gateway about a pending or unanswered payment and record what it says."""
    payment = session.get(Payment, payment_id)
    if payment is None:
        return None
    if payment.status == PaymentStatus.PROCESSING:
        if paid_for(payment) in FINISHED_BY_SWEEP:
            finish_charge(session, payment, actor="system")
    elif payment.status == PaymentStatus.PENDING:
        _settle_pending(session, payment)
    return payment


def _settle_pending(session: Session, payment: Payment) -> None:
    try:
        result = gateway().check(payment.gateway_reference or "")
    except GatewayError as exc:
        log.warning("payment %s: could not check settlement (%s)", payment.id, exc)
        return
    who = {"actor": "system", "account_id": payment.account_id, "subject": payment}
    pending = {"expected": PaymentStatus.PENDING, "updated_at": runtime().now()}
    if result.status == ChargeStatus.PENDING:
        payment.updated_at = runtime().now()  # look again one SETTLE_POLL from now
    elif result.status == ChargeStatus.APPROVED:
        if claim(session, payment, PaymentStatus.PAID, **pending):
            audit.record(session, "payment.paid", **who, settled=True, **audit_details(payment))
    elif claim(
        session, payment, PaymentStatus.DECLINED, decline_code=result.decline_code, **pending
    ):
        # A returned debit: the customer owes the amount again.
        add_to_balance(session, payment, payment.amount_cents)
        audit.record(
            session,
            "payment.returned",
            **who,
            decline_code=result.decline_code,
            **audit_details(payment),
        )
