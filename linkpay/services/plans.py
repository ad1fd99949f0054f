"""Payment plans: offering one, the schedule and agreement the customer is shown, signing
(accepting) it, and cancelling it. Charging the installments is ``installments``.

A plan offer is an ``Offer`` of kind plan: the balance, split into ``installment_count``
installments (the remainder on the last) from ``first_date``. Accepting it records the
signature (typed name, time, IP, user agent) and the exact agreement text with its version,
and creates the plan and its installments in one transaction; the offer's claim makes a
double submit create one plan. ``change_method`` replaces the method a signed plan charges
(after a decline, from the customer's link)."""

from __future__ import annotations

import datetime as dt

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from linkpay import schedule
from linkpay.i18n import language, normalize_language
from linkpay.models import (
    Account,
    Channel,
    Installment,
    InstallmentStatus,
    Link,
    Offer,
    OfferKind,
    OfferStatus,
    Payment,
    PaymentStatus,
    Plan,
    PlanFrequency,
    PlanStatus,
    SavedMethod,
    claim,
)
from linkpay.runtime import runtime
from linkpay.services import audit, messages, offers, payments
from linkpay.services.offers import OfferError

# The agreement's wording is templates/agreements/plan/<lang>.txt. Change the version
# whenever the wording changes: a signature is only taken for the version it was shown.
AGREEMENT_VERSION = "plan-2026-11"
# After signing, the plan's link stays open this long past the last installment, for the
# customer to see the schedule, update the method or cancel.
LINK_AFTER_LAST_INSTALLMENT = dt.timedelta(days=30)

BAD_TERMS, AGREEMENT_CHANGED, NO_SIGNATURE = "bad_terms", "agreement_changed", "no_signature"
BAD_METHOD, NOT_CANCELLABLE = "bad_method", "not_cancellable"
NOT_ACTIVE = "not_active"


def create_plan_offer(
    session: Session,
    account: Account,
    *,
    installments: int,
    frequency: PlanFrequency,
    first_date: dt.date,
    expires_in_days: int,
    channel: str = "sms",
    actor: str,
) -> Offer:
    """Offer to take the balance in ``installments`` payments from ``first_date``; the
    offer (and its link) works for ``expires_in_days`` days."""
    config = runtime().config
    balance = account.balance_cents
    if balance <= 0:
        raise OfferError(offers.NOTHING_DUE, "the account owes nothing")
    if not 2 <= installments <= config["plans.max_installments"]:
        raise OfferError(
            BAD_TERMS, f"installments must be from 2 to {config['plans.max_installments']}"
        )
    if balance // installments < min(config["payments.min_cents"], balance):
        raise OfferError(BAD_TERMS, "each installment would be less than payments.min_cents")
    if first_date < schedule.org_today():
        raise OfferError(BAD_TERMS, "the first date is in the past")
    if not 1 <= expires_in_days <= 60:
        raise OfferError(BAD_TERMS, "the offer must last from 1 to 60 days")
    return offers.make_offer(
        session,
        account,
        kind=OfferKind.PLAN,
        amount_cents=balance,
        expires_at=runtime().now() + dt.timedelta(days=expires_in_days),
        channel=channel,
        actor=actor,
        installment_count=installments,
        frequency=PlanFrequency(frequency),
        first_date=first_date,
    )


def agreement_text(offer: Offer, lang: str) -> str:
    """The agreement for ``offer`` in ``lang``, exactly as shown and as stored when signed."""
    lang = normalize_language(lang)
    template = current_app.jinja_env.get_template(f"agreements/plan/{lang}.txt")
    account = offer.account
    with language(lang):
        text = template.render(
            account=account,
            org=messages.org_context(),
            offer=offer,
            installments=offers.proposed_schedule(offer),
            version=AGREEMENT_VERSION,
        )
    return text.strip() + "\n"


def accept_offer(
    session: Session,
    offer: Offer,
    *,
    signature_name: str,
    agreement_version: str,
    method: SavedMethod,
    ip: str | None,
    user_agent: str | None,
) -> Plan:
    """Sign the plan: the offer's claim, the plan and its installments, the audit row and
    the confirmation email, in one transaction (the caller commits)."""
    name = " ".join((signature_name or "").split())
    if not name:
        raise OfferError(NO_SIGNATURE, "type your name to sign")
    if agreement_version != AGREEMENT_VERSION:
        raise OfferError(AGREEMENT_CHANGED, "the agreement changed; read it again")
    if offer.kind != OfferKind.PLAN:
        raise OfferError(offers.OFFER_CLOSED, "not a plan offer")
    if method.account_id != offer.account_id or method.removed_at is not None:
        raise OfferError(BAD_METHOD, "that payment method cannot be used")
    account = session.get(Account, offer.account_id)
    text = agreement_text(offer, account.language)
    now = runtime().now()
    if not offers.claim(session, offer, OfferStatus.ACCEPTED, accepted_at=now):
        raise OfferError(offers.OFFER_CLOSED, "the offer is no longer open")
    plan = Plan(
        offer_id=offer.id,
        account_id=account.id,
        saved_method_id=method.id,
        total_cents=offer.amount_cents,
        frequency=offer.frequency,
        status=PlanStatus.ACTIVE,
        signature_name=name[:200],
        signed_at=now,
        signed_ip=ip,
        signed_user_agent=(user_agent or "")[:300] or None,
        agreement_version=AGREEMENT_VERSION,
        agreement_text=text,
        language=account.language,
        created_at=now,
        updated_at=now,
    )
    session.add(plan)
    session.flush()
    rows = offers.proposed_schedule(offer)
    for row in rows:
        session.add(
            Installment(
                plan_id=plan.id,
                sequence=row.sequence,
                amount_cents=row.amount_cents,
                charge_on=row.charge_on,
                due_at=schedule.charge_moment(row.charge_on),
                updated_at=now,
            )
        )
    link = session.get(Link, offer.link_id)
    last_charge = schedule.charge_moment(rows[-1].charge_on)
    link.expires_at = max(link.expires_at, last_charge + LINK_AFTER_LAST_INSTALLMENT)
    session.flush()
    audit.record(
        session,
        "plan.accepted",
        actor="customer",
        account_id=account.id,
        subject=plan,
        ip=ip,
        user_agent=user_agent,
        offer_id=offer.id,
        signature_name=plan.signature_name,
        agreement_version=AGREEMENT_VERSION,
        total_cents=plan.total_cents,
        installments=len(rows),
        method_label=method.label,
        last4=method.last4,
    )
    if account.email:
        messages.queue_message(
            session,
            account,
            Channel.EMAIL,
            "plan_confirmation",
            context=plan_context(session, plan),
            solicited=True,
            link_id=offer.link_id,
        )
    return plan


def plan_context(session: Session, plan: Plan) -> dict:
    offer = session.get(Offer, plan.offer_id)
    method = session.get(SavedMethod, plan.saved_method_id)
    return {
        **offers.offer_context(offer),
        "total_cents": plan.total_cents,
        "installments": list(plan.installments),
        "agreement_text": plan.agreement_text,
        "signature_name": plan.signature_name,
        "signed_at": plan.signed_at,
        "method_label": method.label,
        "method_last4": method.last4,
    }


def cancel_plan(session: Session, plan: Plan, *, actor: str, ip: str | None = None) -> bool:
    """Cancel an active plan: every installment not yet charged is cancelled (one already
    in flight finishes), and one cancellation notice goes out. False if it was not active."""
    now = runtime().now()
    if not claim(
        session,
        plan,
        PlanStatus.CANCELLED,
        expected=PlanStatus.ACTIVE,
        cancelled_at=now,
        cancelled_by=actor,
        updated_at=now,
    ):
        return False
    cancelled = session.execute(
        update(Installment)
        .where(
            Installment.plan_id == plan.id,
            Installment.status.in_([InstallmentStatus.PENDING, InstallmentStatus.RETRY_SCHEDULED]),
        )
        .values(status=InstallmentStatus.CANCELLED, cancel_reason="plan_cancelled", updated_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    audit.record(
        session,
        "plan.cancelled",
        actor=actor,
        account_id=plan.account_id,
        subject=plan,
        ip=ip,
        installments_cancelled=cancelled,
    )
    offer = session.get(Offer, plan.offer_id)
    offers.notify(
        session,
        offer,
        "plan_cancelled",
        solicited=actor == "customer",
        installments_cancelled=cancelled,
    )
    return True


def change_method(
    session: Session,
    plan: Plan,
    method: SavedMethod,
    *,
    ip: str | None,
    user_agent: str | None,
) -> bool:
    """Charge ``plan``'s installments to ``method`` from now on (the caller commits).
    False when the plan already uses it (a second tap); ``OfferError`` when the plan is not
    active or the method is not the account's.

    A charge already in flight finishes with the method its payment was written with; the
    next attempt of any installment reads the plan's method afresh. An installment waiting
    for its retry keeps its one retry and is brought forward to the next sweep, unless a
    charge for the account is in flight (see ``_bring_retries_forward``)."""
    if method.account_id != plan.account_id or method.removed_at is not None:
        raise OfferError(BAD_METHOD, "that payment method cannot be used")
    # The account lock is the one an installment's charge takes before it writes its
    # payment, so a new attempt is written either wholly before this change or after it.
    payments.lock_account(session, plan.account_id)
    now = runtime().now()
    for _ in range(3):  # another change landing between the read and the update: go again
        session.refresh(plan)
        if plan.status != PlanStatus.ACTIVE:
            raise OfferError(NOT_ACTIVE, "the plan is no longer active")
        old_id = plan.saved_method_id
        if old_id == method.id:
            return False
        if claim(
            session,
            plan,
            PlanStatus.ACTIVE,
            expected=PlanStatus.ACTIVE,
            where=(Plan.saved_method_id == old_id,),
            saved_method_id=method.id,
            updated_at=now,
        ):
            break
    else:
        raise RuntimeError(f"plan {plan.id}: the method kept changing under this update")
    old = session.get(SavedMethod, old_id)
    retries = _bring_retries_forward(session, plan)
    audit.record(
        session,
        "plan.method_changed",
        actor="customer",
        account_id=plan.account_id,
        subject=plan,
        ip=ip,
        user_agent=user_agent,
        old_method_label=old.label,
        old_last4=old.last4,
        method_label=method.label,
        last4=method.last4,
        retries_brought_forward=retries,
    )
    return True


def _bring_retries_forward(session: Session, plan: Plan) -> int:
    """A customer who has just fixed their card expects it tried soon: the plan's
    installments waiting for their retry become due at the next sweep. Still one retry (the
    claim counts attempts), and never next to a charge in flight for the account, whose
    answer could change what is owed: then the retry keeps its day, with the new method."""
    if charge_in_flight(session, plan):
        return 0
    now = runtime().now()
    return session.execute(
        update(Installment)
        .where(
            Installment.plan_id == plan.id,
            Installment.status == InstallmentStatus.RETRY_SCHEDULED,
            Installment.due_at > now,
        )
        .values(due_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount


def charge_in_flight(session: Session, plan: Plan) -> bool:
    """Whether the plan's account has a charge waiting for its answer: any payment still
    processing, or one of the plan's installments claimed and not yet written."""
    payment = session.scalar(
        select(Payment.id)
        .where(Payment.account_id == plan.account_id, Payment.status == PaymentStatus.PROCESSING)
        .limit(1)
    )
    installment = session.scalar(
        select(Installment.id)
        .where(Installment.plan_id == plan.id, Installment.status == InstallmentStatus.PROCESSING)
        .limit(1)
    )
    return payment is not None or installment is not None


def next_charge(plan: Plan) -> Installment | None:
    """The installment the plan charges next (a retry included), for the plan page."""
    waiting = (InstallmentStatus.PENDING, InstallmentStatus.RETRY_SCHEDULED)
    due = [each for each in plan.installments if each.status in waiting]
    return min(due, key=lambda each: each.due_at, default=None)


def complete_if_done(session: Session, plan: Plan) -> bool:
    """Complete an active plan once no installment is left to charge and none failed."""
    session.refresh(plan)
    if plan.status != PlanStatus.ACTIVE:
        return False
    open_states = (
        InstallmentStatus.PENDING,
        InstallmentStatus.PROCESSING,
        InstallmentStatus.RETRY_SCHEDULED,
        InstallmentStatus.DECLINED,
    )
    left = session.scalar(
        select(Installment.id)
        .where(Installment.plan_id == plan.id, Installment.status.in_(open_states))
        .limit(1)
    )
    if left is not None:
        return False
    now = runtime().now()
    if not claim(
        session,
        plan,
        PlanStatus.COMPLETED,
        expected=PlanStatus.ACTIVE,
        completed_at=now,
        updated_at=now,
    ):
        return False
    audit.record(
        session, "plan.completed", actor="system", account_id=plan.account_id, subject=plan
    )
    return True


def plan_for_link(session: Session, link: Link) -> Plan | None:
    """The plan signed through ``link``, for the customer's view of it."""
    return session.scalar(select(Plan).join(Offer).where(Offer.link_id == link.id))
