"""Receipts for payments: queued messages, sent by the message job, never in a request.

An email when the account has an address; a text when the link went out by text and a
phone is on file. Both answer the customer's own action, so quiet hours do not hold them
back (``solicited``), and each carries the opt-out notice its template ends with.

A Pay by Text payment is answered by text to the phone that confirmed it (the receipt, or
a decline with a fresh link), plus the email receipt when there is an address."""

from __future__ import annotations

from sqlalchemy.orm import Session

from linkpay.models import (
    Account,
    Channel,
    Link,
    Message,
    MethodKind,
    Payment,
    PaymentStatus,
    TextPaymentRequest,
)
from linkpay.services import links, messages


def queue_receipts(session: Session, payment: Payment) -> list[Message]:
    account = session.get(Account, payment.account_id)
    if payment.text_request_id is not None:
        return _queue_text_payment_receipts(session, payment, account)
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


def _queue_text_payment_receipts(
    session: Session, payment: Payment, account: Account
) -> list[Message]:
    """A Pay by Text payment: the receipt text goes to the phone that confirmed it, in the
    language of that conversation, and the email (when there is one) as for any payment."""
    request = session.get(TextPaymentRequest, payment.text_request_id)
    context = receipt_context(payment, account)
    sent = [
        messages.queue_text(
            session,
            request.phone,
            "receipt",
            request.language,
            account=account,
            context=context,
            payment_id=payment.id,
        )
    ]
    if account.email:
        sent.append(
            messages.queue_message(
                session,
                account,
                Channel.EMAIL,
                "receipt",
                context=context,
                solicited=True,
                payment_id=payment.id,
            )
        )
    return sent


def queue_text_decline(session: Session, payment: Payment) -> Message:
    """A declined Pay by Text charge: say so, and hand over a fresh link to pay another
    way. The enrollment stays as it is: the next bill may go through."""
    account = session.get(Account, payment.account_id)
    request = session.get(TextPaymentRequest, payment.text_request_id)
    link = links.create_link(session, account, channel="sms")
    return messages.queue_text(
        session,
        request.phone,
        "pay_declined",
        request.language,
        account=account,
        context={
            "amount_cents": payment.amount_cents,
            "is_bank": payment.method_kind == MethodKind.BANK,
            "method_last4": payment.method_last4,
            "insufficient_funds": payment.decline_code == "insufficient_funds",
            "url": links.link_url(link.id),
        },
        payment_id=payment.id,
        link_id=link.id,
    )


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
