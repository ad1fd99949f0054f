"""Paying through a link: a checkout (amount, then method), then exactly one charge for it.

``confirm`` writes the payment as ``processing`` and commits before it calls the gateway,
so the database holds one payment per checkout (``payments.checkout_id`` is unique) however
many times the form arrives: a double tap, a refresh, two requests at once. The second finds
the first and charges nothing. A declined checkout is finished; trying another method starts
a new checkout (``retry``), so the unique constraint never has to bend.

The gateway is called inside the customer's request because the customer is waiting for
its answer: the sandbox's is a local lookup, and a real processor is called with a short
timeout. If it does not answer, the payment stays ``processing`` and the sweep asks again
later with the same idempotency key (the checkout's public id), which cannot charge twice.

A pending ACH debit counts as a payment made: the balance drops and the receipt goes out at
once, as a customer expects, and a later return puts the amount back. Receipts are queued
messages; no request waits on Twilio or SendGrid."""

from __future__ import annotations

import datetime as dt
import logging
import secrets

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from linkpay.db import defer_job
from linkpay.gateways import ChargeResult, ChargeStatus, FormTarget, GatewayError, gateway
from linkpay.models import (
    Account,
    Checkout,
    IllegalTransition,
    Link,
    LinkStatus,
    Payment,
    PaymentStatus,
    advance,
    allowed_moves,
)
from linkpay.queue import DEFAULT, JobSpec
from linkpay.runtime import runtime
from linkpay.services import audit, receipts

log = logging.getLogger(__name__)

SETTLE_POLL = dt.timedelta(minutes=1)  # ask about a pending ACH debit this long after a change
STUCK_AFTER = dt.timedelta(minutes=5)  # a charge still "processing" this long never got an answer
CONFIRMATION_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I: read over the phone
OUTCOMES = {
    ChargeStatus.APPROVED: PaymentStatus.PAID,
    ChargeStatus.PENDING: PaymentStatus.PENDING,
    ChargeStatus.DECLINED: PaymentStatus.DECLINED,
}

NOTHING_DUE, BELOW_MINIMUM, OVER_BALANCE = "nothing_due", "below_minimum", "over_balance"
LINK_CLOSED, NO_METHOD, UNKNOWN_METHOD = "link_closed", "no_method", "unknown_method"
ALREADY_CONFIRMED, NOT_DECLINED = "already_confirmed", "not_declined"


class PaymentError(Exception):
    """A step the customer cannot take now; ``code`` picks what the page says."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


def amount_range(account: Account) -> tuple[int, int]:
    """The least and most one payment may be: ``payments.min_cents`` (or the whole balance
    when less is owed) up to the balance."""
    balance = account.balance_cents
    return min(runtime().config["payments.min_cents"], balance), balance


def check_amount(account: Account, amount_cents: int, in_flight: int = 0) -> None:
    low, high = amount_range(account)
    high -= in_flight
    if high <= 0:
        raise PaymentError(NOTHING_DUE)
    if amount_cents < low:
        raise PaymentError(BELOW_MINIMUM)
    if amount_cents > high:
        raise PaymentError(OVER_BALANCE)


def start_checkout(session: Session, link: Link, amount_cents: int) -> Checkout:
    _require_open(link)
    check_amount(link.account, amount_cents)
    checkout = Checkout(
        public_id=secrets.token_urlsafe(16),
        link_id=link.id,
        amount_cents=amount_cents,
        created_at=runtime().now(),
    )
    session.add(checkout)
    session.flush()
    return checkout


def attach_method(session: Session, checkout: Checkout, token: str) -> Checkout:
    """Use the gateway's ``token`` for ``checkout``; only brand and last four are kept."""
    if payment_for(session, checkout) is not None:
        raise PaymentError(ALREADY_CONFIRMED)
    method = gateway().describe(token)
    if method is None:
        raise PaymentError(UNKNOWN_METHOD)
    checkout.method_token = token
    checkout.method_kind = method.kind
    checkout.method_label = method.label
    checkout.method_last4 = method.last4
    session.flush()
    return checkout


def method_form(checkout: Checkout, return_path: str) -> FormTarget:
    """Where the page's card and bank inputs post (the gateway's tokenizer, never linkpay),
    bound to ``checkout`` and coming back to ``return_path``."""
    return gateway().form_target(checkout.public_id, return_path)


def payment_for(session: Session, checkout: Checkout) -> Payment | None:
    return session.scalar(select(Payment).where(Payment.checkout_id == checkout.id))


def confirm(
    session: Session, checkout: Checkout, actor_ip: str | None, user_agent: str | None
) -> Payment:
    """Charge ``checkout`` once. Commits: the payment row exists before the gateway call."""
    existing = payment_for(session, checkout)
    if existing is not None:
        return existing
    payment, created = _record_attempt(session, checkout, actor_ip, user_agent)
    if not created:
        return payment
    result = charge_once(checkout, payment)
    if result is not None:
        apply_result(session, payment, result, actor="customer", ip=actor_ip, user_agent=user_agent)
    session.commit()
    return payment


def retry(session: Session, checkout: Checkout) -> Checkout:
    """A new checkout for the same amount after a decline, to try another method."""
    payment = payment_for(session, checkout)
    if payment is None or payment.status != PaymentStatus.DECLINED:
        raise PaymentError(NOT_DECLINED)
    return start_checkout(session, session.get(Link, checkout.link_id), checkout.amount_cents)


def _record_attempt(
    session: Session, checkout: Checkout, ip: str | None, user_agent: str | None
) -> tuple[Payment, bool]:
    """Insert the ``processing`` payment and commit; or find the one already there."""
    for _ in range(3):  # a confirmation number collision (one in 10^12) just tries again
        link = session.get(Link, checkout.link_id)
        # PostgreSQL: confirms for one account take turns, so two checkouts cannot both
        # spend the same balance. SQLite serialises writers on its own.
        account = session.scalars(
            select(Account)
            .where(Account.id == link.account_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).one()
        existing = payment_for(session, checkout)
        if existing is not None:
            session.commit()  # releases the row lock; nothing was changed
            return existing, False
        _check_confirmable(session, checkout, link, account)
        try:
            payment = _new_payment(session, checkout, link)
            audit.record(
                session,
                "payment.attempted",
                actor="customer",
                account_id=account.id,
                subject=payment,
                ip=ip,
                user_agent=user_agent,
                **audit_details(payment),
            )
            session.commit()
            return payment, True
        except IntegrityError:
            session.rollback()
            existing = payment_for(session, checkout)
            if existing is not None:  # the other request of a double submit won
                return existing, False
    raise RuntimeError("could not record the payment: confirmation numbers kept colliding")


def _check_confirmable(session: Session, checkout: Checkout, link: Link, account: Account):
    if not checkout.method_token:
        raise PaymentError(NO_METHOD)
    _require_open(link)
    in_flight = session.scalar(
        select(func.coalesce(func.sum(Payment.amount_cents), 0)).where(
            Payment.account_id == account.id, Payment.status == PaymentStatus.PROCESSING
        )
    )
    try:
        check_amount(account, checkout.amount_cents, in_flight=in_flight)
    except PaymentError:
        # On SQLite (no row lock) the in-flight payment that tipped the balance over may be
        # this very checkout's, committed a moment ago by the other half of a double tap.
        if payment_for(session, checkout) is None:
            raise


def _new_payment(session: Session, checkout: Checkout, link: Link) -> Payment:
    now = runtime().now()
    payment = Payment(
        account_id=link.account_id,
        link_id=link.id,
        checkout_id=checkout.id,
        confirmation_number="LP" + "".join(secrets.choice(CONFIRMATION_ALPHABET) for _ in range(8)),
        amount_cents=checkout.amount_cents,
        method_kind=checkout.method_kind,
        method_label=checkout.method_label,
        method_last4=checkout.method_last4,
        status=PaymentStatus.PROCESSING,
        gateway=gateway().name,
        source="link",
        created_at=now,
        updated_at=now,
    )
    session.add(payment)
    session.flush()
    return payment


def charge_once(checkout: Checkout, payment: Payment) -> ChargeResult | None:
    try:
        return gateway().charge(checkout.method_token, payment.amount_cents, checkout.public_id)
    except GatewayError as exc:
        log.warning("payment %s: no answer from the gateway (%s); will ask again", payment.id, exc)
        return None


def apply_result(
    session: Session,
    payment: Payment,
    result: ChargeResult,
    *,
    actor: str,
    ip: str | None = None,
    user_agent: str | None = None,
) -> bool:
    """Record the gateway's answer to a ``processing`` payment; False if another process
    already did (the conditional update is the claim, so balance and receipts move once)."""
    new = OUTCOMES[result.status]
    if not move_payment(
        session,
        payment,
        PaymentStatus.PROCESSING,
        new,
        gateway_reference=result.reference,
        decline_code=result.decline_code,
    ):
        return False
    taken = new != PaymentStatus.DECLINED
    if taken:
        add_to_balance(session, payment, -payment.amount_cents)
    audit.record(
        session,
        f"payment.{new.value}",  # payment.paid, payment.pending or payment.declined
        actor=actor,
        account_id=payment.account_id,
        subject=payment,
        ip=ip,
        user_agent=user_agent,
        gateway_reference=result.reference,
        decline_code=result.decline_code,
        **audit_details(payment),
    )
    if taken:
        receipts.queue_receipts(session, payment)
    return True


def move_payment(
    session: Session, payment: Payment, old: PaymentStatus, new: PaymentStatus, **values
) -> bool:
    """``advance()`` with a claim: the row moves from ``old`` to ``new`` only if it is still
    ``old`` in the database, whatever this process last saw."""
    if new not in allowed_moves(old):
        raise IllegalTransition(f"Payment {payment.id}: {old} -> {new}")
    claimed = session.execute(
        update(Payment)
        .where(Payment.id == payment.id, Payment.status == old)
        .values(status=new, updated_at=runtime().now(), **values)
        .execution_options(synchronize_session=False)
    ).rowcount
    session.refresh(payment)
    return claimed == 1


def add_to_balance(session: Session, payment: Payment, cents: int) -> None:
    """Change the balance in SQL (no lost update), then retire the link once nothing is owed."""
    session.execute(
        update(Account)
        .where(Account.id == payment.account_id)
        .values(balance_cents=Account.balance_cents + cents, updated_at=runtime().now())
        .execution_options(synchronize_session=False)
    )
    account = session.get(Account, payment.account_id)
    session.refresh(account)
    link = session.get(Link, payment.link_id) if payment.link_id else None
    if account.balance_cents <= 0 and link is not None and link.status == LinkStatus.ACTIVE:
        advance(link, LinkStatus.USED)
        session.flush()


def _require_open(link: Link) -> None:
    if link.status != LinkStatus.ACTIVE or link.expires_at <= runtime().now():
        raise PaymentError(LINK_CLOSED)


def audit_details(payment: Payment) -> dict:
    return {
        "amount_cents": payment.amount_cents,
        "method_kind": payment.method_kind.value,
        "method_label": payment.method_label,
        "last4": payment.method_last4,
        "confirmation_number": payment.confirmation_number,
    }


# -- settlement and recovery (the sweep and jobs.payments.settle_payment) ----------------


def poll_unsettled(session: Session, limit: int = 1000) -> int:
    """Sweep task: queue a settle job for each pending debit due a look, and for each
    checkout payment whose charge never got an answer. The job id makes a repeat harmless."""
    now = runtime().now()
    ids = session.scalars(
        select(Payment.id)
        .where(
            or_(
                and_(
                    Payment.status == PaymentStatus.PENDING, Payment.updated_at <= now - SETTLE_POLL
                ),
                and_(
                    Payment.status == PaymentStatus.PROCESSING,
                    Payment.checkout_id.is_not(None),
                    Payment.updated_at <= now - STUCK_AFTER,
                ),
            )
        )
        .order_by(Payment.updated_at)
        .limit(limit)
    ).all()
    for payment_id in ids:
        spec = JobSpec(
            "jobs.payments.settle_payment",
            args=(payment_id,),
            job_id=f"settle-payment-{payment_id}",
            queue=DEFAULT,
        )
        defer_job(session, spec)
    return len(ids)
