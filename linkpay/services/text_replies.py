"""What the service texts back to a customer's own text: the reply kinds shared by the
command handlers (``text_commands``) and the Pay by Text payments (``text_payments``).

Every reply is a solicited text to the number that wrote (sent at once, whatever the hour,
on the high queue), rendered from ``templates/sms/<lang>/<kind>.txt``, and never repeats
what the customer wrote."""

from __future__ import annotations

from sqlalchemy.orm import Session

from linkpay.commands import Command
from linkpay.models import Account, Message
from linkpay.services import links, messages, payments

HELP = "text_help"
NOT_ENROLLED = "pay_not_enrolled"
BAD_AMOUNT = "pay_bad_amount"
SENSITIVE_NUMBER = "text_sensitive_number"
BALANCE = "text_balance"
NOTHING_DUE = "text_nothing_due"
WHICH_ACCOUNT = "text_which_account"
REFUSED_AMOUNT_KINDS = {
    payments.NOTHING_DUE: NOTHING_DUE,
    payments.BELOW_MINIMUM: "pay_below_minimum",
    payments.OVER_BALANCE: "pay_over_balance",
}


def language_for(command: Command | None, account: Account | None) -> str:
    """The command's language when it used a keyword of one language, else the account's,
    else English."""
    if command is not None and command.language:
        return command.language
    if account is not None and account.language:
        return account.language
    return "en"


def reply(
    session: Session,
    phone: str,
    kind: str,
    language: str,
    *,
    account: Account | None = None,
    **context,
) -> Message:
    if account is not None:
        context.setdefault("account_last4", account_last4(account))
    return messages.queue_text(session, phone, kind, language, account=account, context=context)


def help_text(session: Session, phone: str, language: str) -> Message:
    return reply(session, phone, HELP, language)


def with_link(
    session: Session, phone: str, kind: str, account: Account, language: str, **context
) -> Message:
    """A reply carrying a fresh payment link for ``account``."""
    link = links.create_link(session, account, channel="sms")
    context = {**links.link_context(account, link), **context}
    context.setdefault("account_last4", account_last4(account))
    return messages.queue_text(
        session, phone, kind, language, account=account, context=context, link_id=link.id
    )


def not_enrolled(session: Session, phone: str, account: Account, language: str) -> Message:
    """No Pay by Text for this account on this phone (or no saved method): how to turn it
    on, and a link to pay now."""
    return with_link(session, phone, NOT_ENROLLED, account, language)


def payment_link(session: Session, phone: str, account: Account, language: str) -> Message:
    if account.balance_cents <= 0:
        return reply(session, phone, NOTHING_DUE, language, account=account)
    return with_link(session, phone, "fresh_link", account, language)


def balance(session: Session, phone: str, account: Account, language: str) -> Message:
    if account.balance_cents <= 0:  # "owes $0.00" reads like a bill; say it is paid up
        return reply(session, phone, NOTHING_DUE, language, account=account)
    return reply(
        session,
        phone,
        BALANCE,
        language,
        account=account,
        balance_cents=account.balance_cents,
        due_date=account.due_date,
    )


def amount_refused(
    session: Session, phone: str, account: Account, code: str, language: str
) -> Message:
    """A ``payments.PaymentError`` code for an amount the account cannot pay now."""
    low, high = payments.amount_range(account)
    return reply(
        session,
        phone,
        REFUSED_AMOUNT_KINDS[code],
        language,
        account=account,
        balance_cents=max(high, 0),
        min_cents=low,
    )


def which_account(session: Session, phone: str, choices: list[str], language: str) -> Message:
    return reply(session, phone, WHICH_ACCOUNT, language, choices=sorted(choices))


def account_last4(account: Account) -> str:
    """How a text names an account: the last four of its number, never the whole."""
    return account.account_number[-4:]
