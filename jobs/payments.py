"""Payment jobs: ``settle_payment(payment_id)`` asks the gateway about a pending ACH debit
(or a charge that never got an answer) and records the outcome. The sweep queues it."""

from __future__ import annotations

from jobs import with_app_context
from linkpay.runtime import runtime
from linkpay.services import settlement


@with_app_context
def settle_payment(payment_id: int) -> str | None:
    with runtime().db.session() as session:
        payment = settlement.settle(session, payment_id)
        return payment.status.value if payment is not None else None
