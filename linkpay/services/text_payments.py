"""Paying by text: ``PAY`` answered with the amount, the method and a one-time code; the
code answered with exactly one charge of that request's amount.

The code is 6 digits from ``secrets``, kept only as HMAC-SHA256 (app secret) of
"<request id>:<code>", so a database reader cannot use it and a code cannot be moved to
another request. A code is only ever compared with the newest request of the phone that
sent it: another phone's code is just a wrong code. It expires after
``pay_by_text.code_ttl_minutes``; ``pay_by_text.max_wrong_codes`` wrong ones cancel the
request; a new ``PAY`` replaces the phone's pending request.

Every status change is a conditional UPDATE (``WHERE status = 'pending'``), so two texts
at once cannot both confirm, both count the same wrong code, or leave two requests
pending. The charge itself goes through ``payments.record_attempt`` with
``payments.text_request_id`` as its unique key: however many confirmations race, the
database holds one payment and the gateway is asked once per request."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from linkpay.models import (
    Account,
    EnrollmentStatus,
    Message,
    MethodKind,
    SavedMethod,
    TextEnrollment,
    TextPaymentRequest,
    TextRequestStatus,
    claim,
)
from linkpay.runtime import runtime
from linkpay.services import payments, text_enrollment, text_replies
from linkpay.services.payments import PaymentError

CODE_DIGITS = 6
PAY_CODE = "pay_code"
CODE_WRONG = "pay_code_wrong"
CODE_CANCELLED = "pay_code_cancelled"
CODE_EXPIRED = "pay_code_expired"
NOTHING_PENDING = "pay_nothing_pending"


def request_payment(
    session: Session,
    phone: str,
    enrollment: TextEnrollment,
    amount_cents: int | None,
    language: str,
) -> Message:
    """``PAY`` (the balance) or ``PAY 50`` for one enrolled account: a new pending request
    replacing the phone's older one, and the text with its code."""
    account = session.get(Account, enrollment.account_id)
    method = text_enrollment.default_method(session, account)
    if method is None:
        return text_replies.not_enrolled(session, phone, account, language)
    amount = account.balance_cents if amount_cents is None else amount_cents
    try:
        payments.check_amount(account, amount)
    except PaymentError as error:
        return text_replies.amount_refused(session, phone, account, error.code, language)
    _lock_phone(session, phone)
    now = runtime().now()
    session.execute(
        update(TextPaymentRequest)
        .where(
            TextPaymentRequest.phone == phone,
            TextPaymentRequest.status == TextRequestStatus.PENDING,
        )
        .values(status=TextRequestStatus.REPLACED, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    minutes = runtime().config["pay_by_text.code_ttl_minutes"]
    request = TextPaymentRequest(
        enrollment_id=enrollment.id,
        account_id=account.id,
        phone=phone,
        method_id=method.id,
        amount_cents=amount,
        code_hash="",
        language=language,
        expires_at=now + dt.timedelta(minutes=minutes),
        created_at=now,
        updated_at=now,
    )
    session.add(request)
    session.flush()  # the id is part of what the code is bound to
    code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
    request.code_hash = code_hash(request.id, code)
    return text_replies.reply(
        session,
        phone,
        PAY_CODE,
        language,
        account=account,
        amount_cents=amount,
        code=code,
        minutes=minutes,
        is_bank=method.kind == MethodKind.BANK,
        method_last4=method.last4,
    )


def confirm_code(session: Session, phone: str, code: str, language: str | None) -> Message | None:
    """A 6-digit code from ``phone``: charge its newest request if the code is right. The
    reply (code wrong, expired, nothing pending), or None when the receipt or decline
    notice comes from the charge, or when the request was already paid by this code."""
    request = session.scalar(
        select(TextPaymentRequest)
        .where(TextPaymentRequest.phone == phone)
        .order_by(TextPaymentRequest.id.desc())
        .limit(1)
    )
    if request is None:
        return text_replies.reply(session, phone, NOTHING_PENDING, language or "en")
    language = language or request.language
    matches = hmac.compare_digest(request.code_hash, code_hash(request.id, code))
    if request.status == TextRequestStatus.CONFIRMED and matches:
        return None  # the same code again (a resend, a double tap): paid once, said once
    if request.status != TextRequestStatus.PENDING:
        return text_replies.reply(session, phone, NOTHING_PENDING, language)
    if request.expires_at <= runtime().now():
        _move(session, request, TextRequestStatus.EXPIRED)
        return text_replies.reply(session, phone, CODE_EXPIRED, language)
    if not matches:
        return _wrong_code(session, request, language)
    return _charge(session, request, language)


def code_hash(request_id: int, code: str) -> str:
    key = current_app.secret_key.encode()
    return hmac.new(key, f"{request_id}:{code}".encode(), hashlib.sha256).hexdigest()


def _wrong_code(session: Session, request: TextPaymentRequest, language: str) -> Message:
    wrong = session.execute(
        update(TextPaymentRequest)
        .where(
            TextPaymentRequest.id == request.id,
            TextPaymentRequest.status == TextRequestStatus.PENDING,
        )
        .values(wrong_codes=TextPaymentRequest.wrong_codes + 1, updated_at=runtime().now())
        .returning(TextPaymentRequest.wrong_codes)
        .execution_options(synchronize_session=False)
    ).scalar()
    if wrong is None:  # confirmed, replaced or cancelled a moment ago by another text
        return text_replies.reply(session, request.phone, NOTHING_PENDING, language)
    allowed = runtime().config["pay_by_text.max_wrong_codes"]
    if wrong >= allowed:
        _move(session, request, TextRequestStatus.CANCELLED)
        return text_replies.reply(session, request.phone, CODE_CANCELLED, language)
    return text_replies.reply(
        session, request.phone, CODE_WRONG, language, tries_left=allowed - wrong
    )


def _charge(session: Session, request: TextPaymentRequest, language: str) -> Message | None:
    account = session.get(Account, request.account_id)
    method = session.get(SavedMethod, request.method_id)
    if method.removed_at is not None or not _enrolled(session, request):
        _move(session, request, TextRequestStatus.CANCELLED)
        return text_replies.not_enrolled(session, request.phone, account, language)
    if not _move(session, request, TextRequestStatus.CONFIRMED):
        return None  # another text with the same code won the claim; it answers
    charge = payments.text_request_charge(request, method)
    try:
        payment, created = payments.record_attempt(
            session,
            charge,
            check=lambda locked: payments.check_in_flight(session, charge, locked),
            actor="customer",
        )
    except PaymentError as error:
        # The balance changed since PAY (paid on the page meanwhile): nothing is charged,
        # and the request, still pending once the claim is rolled back, is cancelled.
        session.rollback()
        _move(session, request, TextRequestStatus.CANCELLED)
        session.refresh(account)
        return text_replies.amount_refused(session, request.phone, account, error.code, language)
    if created:
        payments.charge_payment(session, charge, payment, actor="customer")
    return None


def _enrolled(session: Session, request: TextPaymentRequest) -> bool:
    status = session.scalar(
        select(TextEnrollment.status).where(TextEnrollment.id == request.enrollment_id)
    )
    return status == EnrollmentStatus.ACTIVE


def _move(session: Session, request: TextPaymentRequest, new: TextRequestStatus) -> bool:
    """pending -> ``new`` unless another text moved the request first."""
    return claim(
        session, request, new, expected=TextRequestStatus.PENDING, updated_at=runtime().now()
    )


def _lock_phone(session: Session, phone: str) -> None:
    """PostgreSQL: one phone's PAYs take turns (its enrollment rows locked), so replacing
    the pending request and inserting the new one cannot interleave with another PAY's.
    SQLite serialises writers on its own."""
    session.execute(
        select(TextEnrollment.id)
        .where(TextEnrollment.phone == phone)
        .order_by(TextEnrollment.id)
        .with_for_update()
    ).all()
