"""Charge jobs for plans and scheduled payments, queued by the sweep once a row is claimed:
``charge_installment(installment_id)`` and ``charge_scheduled_payment(scheduled_payment_id)``."""

from __future__ import annotations

from jobs import with_app_context
from linkpay.runtime import runtime
from linkpay.services import installments, scheduled_payments


@with_app_context
def charge_installment(installment_id: int) -> str | None:
    with runtime().db.session() as session:
        row = installments.charge(session, installment_id)
        return row.status.value if row is not None else None


@with_app_context
def charge_scheduled_payment(scheduled_payment_id: int) -> str | None:
    with runtime().db.session() as session:
        row = scheduled_payments.charge(session, scheduled_payment_id)
        return row.status.value if row is not None else None
