"""Receipts for payments: queued messages, sent by the message job, never in a request.

An email when the account has an address; a text when the link went out by text and a
phone is on file. Both answer the customer's own action, so quiet hours do not hold them
back (``solicited``), and each carries the opt-out notice its template ends with."""

from __future__ import annotations

from sqlalchemy.orm import Session

from linkpay.models import Account, Channel, Link, Message, MethodKind, Payment, PaymentStatus
from linkpay.services import messages


def queue_receipts(session: Session, payment: Payment) -> list[Message]:
    account = session.get(Account, payment.account_id)
    link = session.get(Link, payment.link_id) if payment.link_id else None
    context = receipt_context(payment, account)
    wanted = []
    if account.email:
        wanted.append(Channel.EMAIL)
    if account.phone and link is not None and link.channel in ("sms", "both"):
        wanted.append(Channel.SMS)
    return [
        messages.queue_message(
            session,
            account,
            channel,
            "receipt",
            context=context,
            solicited=True,
            payment_id=payment.id,
            link_id=payment.link_id,
        )
        for channel in wanted
    ]


def receipt_context(payment: Payment, account: Account) -> dict:
    """What a receipt says; templates format it with the ``money`` and ``date`` filters."""
    return {
        "amount_cents": payment.amount_cents,
        "balance_cents": max(account.balance_cents, 0),
        "confirmation_number": payment.confirmation_number,
        "method_label": payment.method_label,
        "method_last4": payment.method_last4,
        "is_bank": payment.method_kind == MethodKind.BANK,
        "pending": payment.status == PaymentStatus.PENDING,
        "paid_at": payment.created_at,
        "account_last4": account.account_number[-4:],
    }
