"""Charging plan installments on their dates, each once; receipts, decline notices, the
one retry, and completing the plan.

The sweep (``claim_due``) moves due installments to ``processing`` with a conditional
UPDATE, which is the claim: of two sweeps at once, one gets each row. It counts the attempt
and queues ``jobs.plans.charge_installment``, whose id names the attempt. The job
(``charge``) writes the payment for (installment, attempt) before calling the gateway; the
unique constraint on that pair makes a repeat job find the first payment. A job lost with
Redis or killed mid-way, or one whose gateway call got no answer, is queued again by
``requeue_stalled`` and picks up where it was: this job, not the payments sweep, finishes
an unanswered installment charge (with the same idempotency key), since the answer also
moves the installment on and sends its notice.

A declined first attempt is tried again ``plans.retry_days`` later at the charge time; a
declined retry leaves the installment declined (and the plan open until staff act)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from linkpay import schedule
from linkpay.db import defer_job
from linkpay.models import (
    Installment,
    InstallmentStatus,
    Offer,
    Payment,
    PaymentStatus,
    Plan,
    PlanStatus,
    SavedMethod,
    claim,
)
from linkpay.queue import DEFAULT, JobSpec
from linkpay.runtime import runtime
from linkpay.services import offers, payments, plans

MAX_ATTEMPTS = 2  # the charge on the day and one retry
STALLED_AFTER = dt.timedelta(minutes=10)
CHARGEABLE = (InstallmentStatus.PENDING, InstallmentStatus.RETRY_SCHEDULED)


def claim_due(session: Session, limit: int = 1000) -> int:
    """Sweep task: claim the installments of active plans whose time has come and queue
    one charge job for each. Returns how many this sweep claimed."""
    now = runtime().now()
    due = session.scalars(
        select(Installment.id)
        .join(Plan, Plan.id == Installment.plan_id)
        .where(
            Installment.status.in_(CHARGEABLE),
            Installment.due_at <= now,
            Plan.status == PlanStatus.ACTIVE,
        )
        .order_by(Installment.due_at)
        .limit(limit)
    ).all()
    claimed = 0
    for installment_id in due:
        row = session.execute(
            update(Installment)
            .where(Installment.id == installment_id, Installment.status.in_(CHARGEABLE))
            .values(
                status=InstallmentStatus.PROCESSING,
                attempts=Installment.attempts + 1,
                updated_at=now,
            )
            .returning(Installment.attempts)
            .execution_options(synchronize_session=False)
        ).first()
        if row is not None:
            defer_job(session, charge_job(installment_id, row.attempts))
            claimed += 1
    return claimed


def requeue_stalled(session: Session, limit: int = 1000) -> int:
    """Sweep task: queue again the charge of an installment claimed long ago and still
    processing (its job was lost or died). The job resumes; it cannot charge twice."""
    cutoff = runtime().now() - STALLED_AFTER
    rows = session.execute(
        select(Installment.id, Installment.attempts)
        .where(Installment.status == InstallmentStatus.PROCESSING, Installment.updated_at <= cutoff)
        .limit(limit)
    ).all()
    for installment_id, attempts in rows:
        defer_job(session, charge_job(installment_id, attempts))
    return len(rows)


def charge_job(installment_id: int, attempt: int) -> JobSpec:
    return JobSpec(
        "jobs.plans.charge_installment",
        args=(installment_id,),
        job_id=f"installment-{installment_id}-{attempt}",
        queue=DEFAULT,
    )


def charge(session: Session, installment_id: int) -> Installment | None:
    """Charge a claimed installment's current attempt once and record what happened."""
    installment = session.get(Installment, installment_id)
    if installment is None or installment.status != InstallmentStatus.PROCESSING:
        return installment
    plan = session.get(Plan, installment.plan_id)
    key = (installment.id, installment.attempts)
    payment = payments.recorded(session, "installment", key)
    if payment is None:
        balance = payments.lock_account(session, plan.account_id).balance_cents
        # Read the plan under the account lock, which plans.change_method also takes: a
        # new attempt charges the method current when its payment is written.
        session.refresh(plan)
        if plan.status != PlanStatus.ACTIVE:
            _finish(
                session, installment, InstallmentStatus.CANCELLED, cancel_reason="plan_cancelled"
            )
            return installment
        amount = min(installment.amount_cents, balance)
        if amount <= 0:  # paid off another way since the plan was signed
            _finish(session, installment, InstallmentStatus.CANCELLED, cancel_reason="nothing_due")
            plans.complete_if_done(session, plan)
            return installment
        charge = payments.saved_method_charge(
            "installment",
            key,
            session.get(SavedMethod, plan.saved_method_id),
            account_id=plan.account_id,
            amount_cents=amount,
            source="plan",
            link_id=session.get(Offer, plan.offer_id).link_id,
        )
        payment, _ = payments.record_attempt(session, charge, actor="system")
    if payment.status == PaymentStatus.PROCESSING and not payments.finish_charge(
        session, payment, actor="system", notify=False
    ):
        return installment  # no answer: requeue_stalled asks again with the same key
    _record_outcome(session, installment, plan, payment)
    return installment


def _record_outcome(session: Session, installment: Installment, plan: Plan, payment: Payment):
    offer = session.get(Offer, plan.offer_id)
    context = {
        "amount_cents": payment.amount_cents,
        "confirmation_number": payment.confirmation_number,
        "method_label": payment.method_label,
        "method_last4": payment.method_last4,
        "sequence": installment.sequence,
        "installment_count": offer.installment_count,
        "charge_date": installment.charge_on,
    }
    if payment.status in (PaymentStatus.PAID, PaymentStatus.PENDING):
        if _finish(session, installment, InstallmentStatus.PAID, paid_at=runtime().now()):
            offers.notify(session, offer, "installment_receipt", payment_id=payment.id, **context)
            plans.complete_if_done(session, plan)
        return
    if installment.attempts < MAX_ATTEMPTS and plan.status == PlanStatus.ACTIVE:
        retry_on = schedule.org_today() + dt.timedelta(days=runtime().config["plans.retry_days"])
        done = _finish(
            session,
            installment,
            InstallmentStatus.RETRY_SCHEDULED,
            due_at=schedule.charge_moment(retry_on),
            decline_code=payment.decline_code,
        )
    else:
        retry_on = None
        done = _finish(
            session, installment, InstallmentStatus.DECLINED, decline_code=payment.decline_code
        )
    if done:
        offers.notify(session, offer, "installment_declined", retry_date=retry_on, **context)


def _finish(session: Session, installment: Installment, new: InstallmentStatus, **values) -> bool:
    """Move a processing installment on, once (the conditional update is the claim)."""
    return claim(
        session,
        installment,
        new,
        expected=InstallmentStatus.PROCESSING,
        updated_at=runtime().now(),
        **values,
    )
