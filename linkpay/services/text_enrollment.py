"""Pay by Text enrollment: the saved method, the customer's consent, the "reply OK" text,
activation by that reply, and turning it off (from the page or by STOP).

Consent is recorded twice on purpose: on the enrollment row (what is in force now) and as
an audit event (what was agreed to, when, from where, in which words). The words are kept
here, per language and under ``CONSENT_VERSION``, rather than in the page catalog: what a
customer agreed to must not change because someone edited a translation. Any change to
them needs a new version.

Every status change is a conditional UPDATE claim, so a double-submitted form, two ``OK``
replies or two ``STOP``s at once record (and text) once."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from linkpay.i18n import normalize_language
from linkpay.models import (
    Account,
    Channel,
    Checkout,
    EnrollmentStatus,
    MethodKind,
    Payment,
    PaymentStatus,
    SavedMethod,
    TextEnrollment,
    TextPaymentRequest,
    TextRequestStatus,
    claim,
)
from linkpay.runtime import runtime
from linkpay.services import audit, messages, saved_methods

CONSENT_VERSION = "pbt-2026-03"
ASK_KIND = "text_enroll_ask"
NO_PHONE, OPTED_OUT, UNDELIVERABLE = "no_phone", messages.OPTED_OUT, messages.UNDELIVERABLE
UNKNOWN_METHOD, NOT_PAID = "unknown_method", "not_paid"

CONSENT_TEXT = {
    "en": (
        "Pay by Text: we will text you about your bill, and you can reply PAY to pay it with "
        "this payment method. About 2 texts a month, plus replies to your texts. "
        "Msg & data rates may apply. To stop, reply STOP or turn it off on this page."
    ),
    "es": (
        "Pagar por texto: le enviaremos textos sobre su factura y podrá responder PAGAR para "
        "pagarla con este método de pago. Unos 2 textos al mes, más las respuestas a sus "
        "textos. Pueden aplicarse tarifas de mensajes y datos. Para dejar de recibirlos, "
        "responda PARAR o desactívelo en esta página."
    ),
}


class EnrollmentError(Exception):
    """Pay by Text cannot be turned on for this account now; ``code`` says why: no_phone,
    opted_out, undeliverable, unknown_method or not_paid."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


def consent_text(language: str) -> str:
    """The exact consent wording shown next to the checkbox and recorded with the consent."""
    return CONSENT_TEXT[normalize_language(language)]


def enrollable(session: Session, account: Account) -> bool:
    """Whether the checkbox may be offered: a phone on file that can still be texted."""
    return _textable_problem(session, account) is None


def save_method(session: Session, account: Account, token: str) -> SavedMethod:
    """Keep the gateway's ``token`` as the account's default method: the one PAY charges."""
    method = saved_methods.keep(session, account, token)
    if method is None:
        raise EnrollmentError(UNKNOWN_METHOD)
    saved_methods.make_default(session, method)
    return method


def enroll(
    session: Session,
    account: Account,
    method: SavedMethod,
    *,
    ip: str | None,
    user_agent: str | None,
    language: str,
    via: str = "payment page",
) -> TextEnrollment:
    """Record the customer's consent for the phone on file and text them to reply OK.

    Enrolling again with the method already enrolled (a repeated form) changes nothing and
    sends nothing; with another method, or after turning it off, the enrollment waits for a
    new OK with that method."""
    problem = _textable_problem(session, account)
    if problem is not None:
        raise EnrollmentError(problem)
    language = normalize_language(language)
    now = runtime().now()
    consent = {
        "method_id": method.id,
        "consent_version": CONSENT_VERSION,
        "consented_at": now,
        "consent_ip": ip,
        "consent_user_agent": (user_agent or "")[:300] or None,
        "activated_at": None,
        "cancelled_at": None,
        "updated_at": now,
    }
    enrollment = enrollment_for(session, account)
    if enrollment is None:
        enrollment = TextEnrollment(
            account_id=account.id,
            phone=account.phone,
            status=EnrollmentStatus.AWAITING_OK,
            created_at=now,
            **consent,
        )
        session.add(enrollment)
        session.flush()  # (account_id, phone) is unique: a concurrent twin stops here
    elif enrollment.status != EnrollmentStatus.CANCELLED and enrollment.method_id == method.id:
        return enrollment
    elif not _move(session, enrollment, EnrollmentStatus.AWAITING_OK, **consent):
        return enrollment  # another request changed it first; theirs stands
    audit.record(
        session,
        "consent.pay_by_text",
        actor="customer",
        account_id=account.id,
        subject=enrollment,
        ip=ip,
        user_agent=user_agent,
        phone=account.phone,
        consent_version=CONSENT_VERSION,
        consent_text=consent_text(language),
        language=language,
        via=via,
        method_id=method.id,
        method_kind=method.kind.value,
        method_label=method.label,
        last4=method.last4,
    )
    _ask_for_ok(session, account, method, language)
    return enrollment


def enroll_from_checkout(
    session: Session,
    checkout: Checkout,
    payment: Payment,
    *,
    ip: str | None,
    user_agent: str | None,
    language: str,
    via: str,
) -> TextEnrollment | None:
    """Save the method a payment used and enroll its account, once per payment.

    ``payment.saved_method_id`` is the claim: only the request that sets it enrolls, so the
    other half of a double-submitted form saves nothing and sends nothing (it rolls back
    and answers None). A payment whose method is already saved (turned off, then on again
    from the receipt) enrolls that method again."""
    if payment.status not in (PaymentStatus.PAID, PaymentStatus.PENDING):
        raise EnrollmentError(NOT_PAID)
    account = session.get(Account, payment.account_id)
    problem = _textable_problem(session, account)
    if problem is not None:
        raise EnrollmentError(problem)
    if payment.saved_method_id is not None:
        method = session.get(SavedMethod, payment.saved_method_id)
        if method.removed_at is not None:
            raise EnrollmentError(UNKNOWN_METHOD)
    else:
        method = save_method(session, account, checkout.method_token)
        claimed = session.execute(
            update(Payment)
            .where(Payment.id == payment.id, Payment.saved_method_id.is_(None))
            .values(saved_method_id=method.id)
            .execution_options(synchronize_session=False)
        ).rowcount
        if not claimed:
            session.rollback()
            return None
        session.refresh(payment)
    return enroll(
        session, account, method, ip=ip, user_agent=user_agent, language=language, via=via
    )


def activate(session: Session, phone: str) -> list[TextEnrollment]:
    """The customer replied OK: every enrollment of ``phone`` waiting for it goes active."""
    waiting = session.scalars(
        select(TextEnrollment)
        .where(
            TextEnrollment.phone == phone,
            TextEnrollment.status == EnrollmentStatus.AWAITING_OK,
        )
        .order_by(TextEnrollment.id)
    ).all()
    now = runtime().now()
    activated = []
    for enrollment in waiting:
        if _move(session, enrollment, EnrollmentStatus.ACTIVE, activated_at=now, updated_at=now):
            audit.record(
                session,
                "consent.pay_by_text_activated",
                actor="customer",
                account_id=enrollment.account_id,
                subject=enrollment,
                phone=phone,
                via="sms OK",
                consent_version=enrollment.consent_version,
            )
            activated.append(enrollment)
    return activated


def active_enrollments(session: Session, phone: str) -> list[TextEnrollment]:
    """The accounts ``phone`` can pay by text. An enrollment stops counting once its
    account's phone on file is another number: consent was given for the phone on file."""
    return list(
        session.scalars(
            select(TextEnrollment)
            .join(Account, Account.id == TextEnrollment.account_id)
            .where(
                TextEnrollment.phone == phone,
                TextEnrollment.status == EnrollmentStatus.ACTIVE,
                Account.phone == phone,
            )
            .order_by(TextEnrollment.account_id)
        ).all()
    )


def enrollment_for(session: Session, account: Account) -> TextEnrollment | None:
    """The account's enrollment for the phone on file, whatever its status."""
    if not account.phone:
        return None
    return session.scalar(
        select(TextEnrollment).where(
            TextEnrollment.account_id == account.id, TextEnrollment.phone == account.phone
        )
    )


def default_method(session: Session, account: Account) -> SavedMethod | None:
    return session.scalar(
        select(SavedMethod).where(
            SavedMethod.account_id == account.id,
            SavedMethod.is_default.is_(True),
            SavedMethod.removed_at.is_(None),
        )
    )


def cancel(
    session: Session, enrollment: TextEnrollment, *, actor: str, via: str, ip: str | None = None
) -> None:
    """Turn Pay by Text off for this account and phone, and drop its pending payment
    requests (a code sent before cannot charge after). Already off: nothing happens."""
    _cancel(session, enrollment, actor=actor, via=via, ip=ip)


def cancel_for_phone(session: Session, phone: str, *, actor: str, via: str) -> int:
    """STOP: every enrollment of ``phone`` off. Returns how many this call turned off."""
    enrollments = session.scalars(
        select(TextEnrollment).where(
            TextEnrollment.phone == phone, TextEnrollment.status != EnrollmentStatus.CANCELLED
        )
    ).all()
    return sum(_cancel(session, each, actor=actor, via=via, ip=None) for each in enrollments)


def _cancel(
    session: Session, enrollment: TextEnrollment, *, actor: str, via: str, ip: str | None
) -> bool:
    if enrollment.status == EnrollmentStatus.CANCELLED:
        return False
    now = runtime().now()
    if not _move(session, enrollment, EnrollmentStatus.CANCELLED, cancelled_at=now, updated_at=now):
        return False
    session.execute(
        update(TextPaymentRequest)
        .where(
            TextPaymentRequest.enrollment_id == enrollment.id,
            TextPaymentRequest.status == TextRequestStatus.PENDING,
        )
        .values(status=TextRequestStatus.CANCELLED, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    audit.record(
        session,
        "consent.pay_by_text_cancelled",
        actor=actor,
        account_id=enrollment.account_id,
        subject=enrollment,
        ip=ip,
        phone=enrollment.phone,
        via=via,
    )
    return True


def reply_pay_offers(session: Session, accounts: list[Account]) -> dict[int, dict]:
    """For link texts: account id -> what "Reply PAY to pay $X with card ending 1111" names,
    for the accounts whose phone on file has Pay by Text on. One query for many accounts."""
    by_phone = {a.id: a.phone for a in accounts if a.phone}
    offers: dict[int, dict] = {}
    ids = list(by_phone)
    for start in range(0, len(ids), 1000):
        rows = session.execute(
            select(
                TextEnrollment.account_id,
                TextEnrollment.phone,
                SavedMethod.kind,
                SavedMethod.label,
                SavedMethod.last4,
            )
            .join(SavedMethod, SavedMethod.id == TextEnrollment.method_id)
            .where(
                TextEnrollment.account_id.in_(ids[start : start + 1000]),
                TextEnrollment.status == EnrollmentStatus.ACTIVE,
                SavedMethod.removed_at.is_(None),
            )
        )
        for account_id, phone, kind, label, last4 in rows:
            if by_phone.get(account_id) == phone:
                offers[account_id] = offer(kind, label, last4)
    return offers


def reply_pay_offer(session: Session, account: Account) -> dict | None:
    return reply_pay_offers(session, [account]).get(account.id)


def offer(kind: MethodKind, label: str, last4: str) -> dict:
    return {"is_bank": kind == MethodKind.BANK, "label": label, "last4": last4}


def _ask_for_ok(session: Session, account: Account, method: SavedMethod, language: str) -> None:
    # The customer has just asked for this text on the page: quiet hours do not hold it.
    messages.queue_message(
        session,
        account,
        Channel.SMS,
        ASK_KIND,
        context={
            "account_last4": account.account_number[-4:],
            "method": offer(method.kind, method.label, method.last4),
        },
        solicited=True,
        language=language,
    )


def _textable_problem(session: Session, account: Account) -> str | None:
    if not account.phone:
        return NO_PHONE
    blocked = messages.contact_blocks(session, Channel.SMS, [account.phone])
    return blocked.get(account.phone)


def _move(session: Session, enrollment: TextEnrollment, new: EnrollmentStatus, **values) -> bool:
    """Move ``enrollment`` to ``new`` only if the database still holds what this process
    read (status and method): the UPDATE is the claim. False if someone moved it first."""
    same_method = TextEnrollment.method_id == enrollment.method_id
    return claim(session, enrollment, new, where=(same_method,), **values)
