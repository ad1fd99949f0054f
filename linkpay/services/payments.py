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

The same path (``Charge``, ``record_attempt``, ``charge_once``, ``apply_result``) charges
a confirmed Pay by Text request, a plan installment and a scheduled payment; only the
unique key differs (``UNIQUE_KEYS``). A charge the gateway never answered is finished with
its own idempotency key (``charge_of`` rebuilds it from the payment) by one owner: the
sweep (``poll_unsettled``, then ``settlement.settle``) for checkouts and text requests, and
the charge job, run again by its ``requeue_stalled``, for installments and scheduled
payments, since their answer must also move that row on and send its own notice.

A pending ACH debit counts as a payment made: the balance drops and the receipt goes out at
once, as a customer expects, and a later return puts the amount back. Receipts are queued
messages; no request waits on Twilio or SendGrid."""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from linkpay.db import defer_job
from linkpay.gateways import ChargeResult, ChargeStatus, FormTarget, GatewayError, gateway
from linkpay.models import (
    Account,
    Checkout,
    Link,
    LinkStatus,
    MethodKind,
    Payment,
    PaymentStatus,
    SavedMethod,
    TextPaymentRequest,
    advance,
    claim,
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
    link = session.get(Link, checkout.link_id)
    charge = checkout_charge(checkout, link)

    def confirmable(account: Account) -> None:
        _check_confirmable(session, checkout, link, account)

    payment, created = record_attempt(
        session, charge, check=confirmable, actor="customer", ip=actor_ip, user_agent=user_agent
    )
    if created:
        charge_payment(
            session, charge, payment, actor="customer", ip=actor_ip, user_agent=user_agent
        )
    return payment


def retry(session: Session, checkout: Checkout) -> Checkout:
    """A new checkout for the same amount after a decline, to try another method."""
    payment = payment_for(session, checkout)
    if payment is None or payment.status != PaymentStatus.DECLINED:
        raise PaymentError(NOT_DECLINED)
    return start_checkout(session, session.get(Link, checkout.link_id), checkout.amount_cents)


# What makes a charge one payment: the payment columns of its unique key, by what it pays
# for. A charge's ``key`` holds their values in this order.
UNIQUE_KEYS = {
    "checkout": ("checkout_id",),
    "text_request": ("text_request_id",),
    "installment": ("installment_id", "installment_attempt"),
    "scheduled_payment": ("scheduled_payment_id",),
}
# The charges whose unanswered gateway call the sweep finishes (see the module docstring).
FINISHED_BY_SWEEP = ("checkout", "text_request")


@dataclass(frozen=True)
class Charge:
    """What one payment charges, whoever asked for it (a checkout on the page, a confirmed
    Pay by Text request, an installment's attempt, a scheduled payment): what it pays for
    and that row's unique key (``pays_for``, ``key``: see ``UNIQUE_KEYS``), the gateway
    token and idempotency key, and what the receipt shows."""

    pays_for: str
    key: tuple[int, ...]
    account_id: int
    amount_cents: int
    token: str | None
    idempotency_key: str
    method_kind: MethodKind | None
    method_label: str | None
    method_last4: str | None
    source: str
    link_id: int | None = None
    saved_method_id: int | None = None

    def existing(self, session: Session) -> Payment | None:
        return recorded(session, self.pays_for, self.key)


def key_columns(pays_for: str, key: tuple[int, ...]) -> dict[str, int]:
    """The payment's unique key columns with ``key``'s values."""
    return dict(zip(UNIQUE_KEYS[pays_for], key, strict=True))


def recorded(session: Session, pays_for: str, key: tuple[int, ...]) -> Payment | None:
    """The payment already recorded for that unique key, if any."""
    return session.scalar(select(Payment).filter_by(**key_columns(pays_for, key)))


def checkout_charge(checkout: Checkout, link: Link) -> Charge:
    return Charge(
        pays_for="checkout",
        key=(checkout.id,),
        account_id=link.account_id,
        amount_cents=checkout.amount_cents,
        token=checkout.method_token,
        idempotency_key=checkout.public_id,
        method_kind=checkout.method_kind,
        method_label=checkout.method_label,
        method_last4=checkout.method_last4,
        source="link",
        link_id=link.id,
    )


def saved_method_charge(
    pays_for: str,
    key: tuple[int, ...],
    method: SavedMethod,
    *,
    account_id: int,
    amount_cents: int,
    source: str,
    link_id: int | None = None,
) -> Charge:
    """A charge of a saved method, with nobody typing a card in; its idempotency key names
    what it pays for ("installment-<id>-<attempt>", "scheduled-payment-<id>", ...)."""
    return Charge(
        pays_for=pays_for,
        key=key,
        account_id=account_id,
        amount_cents=amount_cents,
        token=method.token,
        idempotency_key="-".join([pays_for.replace("_", "-"), *map(str, key)]),
        method_kind=method.kind,
        method_label=method.label,
        method_last4=method.last4,
        source=source,
        link_id=link_id,
        saved_method_id=method.id,
    )


def text_request_charge(request: TextPaymentRequest, method: SavedMethod) -> Charge:
    return saved_method_charge(
        "text_request",
        (request.id,),
        method,
        account_id=request.account_id,
        amount_cents=request.amount_cents,
        source="sms",
    )


def charge_of(session: Session, payment: Payment) -> Charge | None:
    """The charge a recorded payment was made for, to ask the gateway again with the same
    idempotency key; None for a payment that no longer names where it came from."""
    if payment.checkout_id is not None:
        checkout = session.get(Checkout, payment.checkout_id)
        return checkout_charge(checkout, session.get(Link, checkout.link_id))
    pays_for = paid_for(payment)
    if pays_for is None or payment.saved_method_id is None:
        return None
    return saved_method_charge(
        pays_for,
        tuple(getattr(payment, column) for column in UNIQUE_KEYS[pays_for]),
        session.get(SavedMethod, payment.saved_method_id),
        account_id=payment.account_id,
        amount_cents=payment.amount_cents,
        source=payment.source,
        link_id=payment.link_id,
    )


def paid_for(payment: Payment) -> str | None:
    """What a payment pays for (a key of ``UNIQUE_KEYS``), read from its unique key."""
    for pays_for, columns in UNIQUE_KEYS.items():
        if getattr(payment, columns[0]) is not None:
            return pays_for
    return None


def lock_account(session: Session, account_id: int) -> Account:
    """The account, read afresh under a row lock: on PostgreSQL, charges for one account
    take turns, so two cannot both spend the same balance. SQLite serialises writers on
    its own."""
    return session.scalars(
        select(Account)
        .where(Account.id == account_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()


def record_attempt(
    session: Session,
    charge: Charge,
    *,
    actor: str,
    check: Callable[[Account], None] | None = None,
    ip: str | None = None,
    user_agent: str | None = None,
) -> tuple[Payment, bool]:
    """Insert the ``processing`` payment and commit; or find the one already there.

    ``check(account)`` runs with the account locked and raises ``PaymentError`` when the
    charge may not go ahead. The unique key on the payment is what keeps it to one: a
    racing twin's insert fails and finds this one."""
    for _ in range(3):  # a confirmation number collision (one in 10^12) just tries again
        account = lock_account(session, charge.account_id)
        existing = charge.existing(session)
        if existing is not None:
            session.commit()  # releases the row lock; nothing was changed
            return existing, False
        if check is not None:
            check(account)
        try:
            payment = _new_payment(session, charge)
            audit.record(
                session,
                "payment.attempted",
                actor=actor,
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
            existing = charge.existing(session)
            if existing is not None:  # the other request, job or sweep of a race won
                return existing, False
    raise RuntimeError("could not record the payment: confirmation numbers kept colliding")


def charge_payment(
    session: Session,
    charge: Charge,
    payment: Payment,
    *,
    actor: str,
    ip: str | None = None,
    user_agent: str | None = None,
) -> Payment:
    """Call the gateway for a just-recorded payment and record its answer; commits. No
    answer leaves it ``processing`` for the sweep to ask again with the same key."""
    finish_charge(session, payment, charge, actor=actor, ip=ip, user_agent=user_agent)
    session.commit()
    return payment


def finish_charge(
    session: Session,
    payment: Payment,
    charge: Charge | None = None,
    *,
    actor: str,
    notify: bool = True,
    ip: str | None = None,
    user_agent: str | None = None,
) -> bool:
    """Ask the gateway to charge a ``processing`` payment (``charge``, or the one it was
    made for) and record the answer; asking again uses the same idempotency key, so it
    cannot charge twice. False when there was no answer and the payment stays processing."""
    charge = charge or charge_of(session, payment)
    result = charge_once(charge, payment) if charge is not None else None
    if result is None:
        return False
    apply_result(session, payment, result, actor=actor, notify=notify, ip=ip, user_agent=user_agent)
    return True


def check_in_flight(session: Session, charge: Charge, account: Account) -> None:
    """The amount still fits the balance once the account's charges in flight count."""
    in_flight = session.scalar(
        select(func.coalesce(func.sum(Payment.amount_cents), 0)).where(
            Payment.account_id == account.id, Payment.status == PaymentStatus.PROCESSING
        )
    )
    try:
        check_amount(account, charge.amount_cents, in_flight=in_flight)
    except PaymentError:
        # On SQLite (no row lock) the in-flight payment that tipped the balance over may be
        # this very charge's, committed a moment ago by the other half of a double tap.
        if charge.existing(session) is None:
            raise


def _check_confirmable(session: Session, checkout: Checkout, link: Link, account: Account):
    if not checkout.method_token:
        raise PaymentError(NO_METHOD)
    _require_open(link)
    check_in_flight(session, checkout_charge(checkout, link), account)


def _new_payment(session: Session, charge: Charge) -> Payment:
    now = runtime().now()
    payment = Payment(
        **key_columns(charge.pays_for, charge.key),
        account_id=charge.account_id,
        link_id=charge.link_id,
        saved_method_id=charge.saved_method_id,
        confirmation_number="LP" + "".join(secrets.choice(CONFIRMATION_ALPHABET) for _ in range(8)),
        amount_cents=charge.amount_cents,
        method_kind=charge.method_kind,
        method_label=charge.method_label,
        method_last4=charge.method_last4,
        status=PaymentStatus.PROCESSING,
        gateway=gateway().name,
        source=charge.source,
        created_at=now,
        updated_at=now,
    )
    session.add(payment)
    session.flush()
    return payment


def charge_once(charge: Charge, payment: Payment) -> ChargeResult | None:
    try:
        return gateway().charge(charge.token, payment.amount_cents, charge.idempotency_key)
    except GatewayError as exc:
        log.warning("payment %s: no answer from the gateway (%s); will ask again", payment.id, exc)
        return None


def apply_result(
    session: Session,
    payment: Payment,
    result: ChargeResult,
    *,
    actor: str,
    notify: bool = True,
    ip: str | None = None,
    user_agent: str | None = None,
) -> bool:
    """Record the gateway's answer to a ``processing`` payment; False if another process
    already did (the conditional update is the claim, so balance and receipts move once).
    ``notify=False`` is for a caller that sends its own notice of the outcome (an
    installment's or scheduled payment's) instead of the receipt or text decline reply."""
    new = OUTCOMES[result.status]
    if not claim(
        session,
        payment,
        new,
        expected=PaymentStatus.PROCESSING,
        gateway_reference=result.reference,
        decline_code=result.decline_code,
        updated_at=runtime().now(),
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
    if notify and taken:
        receipts.queue_receipts(session, payment)
    elif notify and payment.text_request_id is not None:
        receipts.queue_text_decline(session, payment)
    return True


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
        "source": payment.source,
    }


# -- settlement and recovery (the sweep and jobs.payments.settle_payment) ----------------


def poll_unsettled(session: Session, limit: int = 1000) -> int:
    """Sweep task: queue a settle job for each pending debit due a look, and for each
    checkout or text payment whose charge never got an answer (``FINISHED_BY_SWEEP``).
    The job id makes a repeat harmless."""
    now = runtime().now()
    swept = [getattr(Payment, UNIQUE_KEYS[kind][0]).is_not(None) for kind in FINISHED_BY_SWEEP]
    ids = session.scalars(
        select(Payment.id)
        .where(
            or_(
                and_(
                    Payment.status == PaymentStatus.PENDING, Payment.updated_at <= now - SETTLE_POLL
                ),
                and_(
                    Payment.status == PaymentStatus.PROCESSING,
                    or_(*swept),
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
