"""Every inbound text command of contract §5, for one phone: ``handle(session, phone,
command)`` decides the reply (and, for ``PAY`` and its code, the payment).

Which account a command is about: ``PAY`` means the phone's active Pay by Text
enrollments, ``BAL`` and ``LINK`` the accounts with this phone on file. One: that one.
Several: the service asks which, by the last four of each account number
(a ``TextQuestion``), and the four digits that come back carry on with what was asked.
None: the help text. It never guesses. A phone that is not enrolled (or whose account
has no saved method) gets instructions and a fresh link instead of a code.

STOP and START are applied by the webhook in the request itself (``opt_out``); they
reach this module only if an event is handled again by hand."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from linkpay.commands import Command, Kind
from linkpay.models import Account, Message, TextEnrollment, TextQuestion
from linkpay.runtime import runtime
from linkpay.services import opt_out, text_enrollment, text_payments, text_replies
from linkpay.services.text_replies import language_for

PAY, BALANCE, LINK = "pay", "balance", "link"
PAY_BY_TEXT_ON = "pbt_on"
# Commands answered with one text whatever the phone's accounts: it says what went wrong.
_FIXED_REPLIES = {
    Kind.BAD_AMOUNT: text_replies.BAD_AMOUNT,
    Kind.SENSITIVE_NUMBER: text_replies.SENSITIVE_NUMBER,
}


def handle(session: Session, phone: str, command: Command) -> Message | None:
    """Answer ``command`` from ``phone``; the reply queued (None when silence is right)."""
    if not phone:
        return None
    kind = command.kind
    if kind == Kind.PAY:
        return _pay(session, phone, command)
    if kind == Kind.CONFIRM:
        return text_payments.confirm_code(session, phone, command.code, command.language)
    if kind == Kind.SELECT_ACCOUNT:
        return _answer_which_account(session, phone, command.account_last4)
    if kind == Kind.ACTIVATE:
        return _activate(session, phone)
    if kind in (Kind.BALANCE, Kind.LINK):
        intent = BALANCE if kind == Kind.BALANCE else LINK
        return _for_accounts_on_file(session, phone, intent, command)
    if kind in _FIXED_REPLIES:
        account = _only(_accounts_on_file(session, phone))
        language = language_for(command, account)
        return text_replies.reply(session, phone, _FIXED_REPLIES[kind], language)
    if kind in opt_out.SYNCHRONOUS:
        opt_out.apply(session, phone, command)
        return None
    return _help(session, phone, command)


def _pay(session: Session, phone: str, command: Command) -> Message:
    enrollments = text_enrollment.active_enrollments(session, phone)
    if len(enrollments) == 1:
        (enrollment,) = enrollments
        account = session.get(Account, enrollment.account_id)
        language = language_for(command, account)
        return text_payments.request_payment(
            session, phone, enrollment, command.amount_cents, language
        )
    if enrollments:
        accounts = [session.get(Account, e.account_id) for e in enrollments]
        return _ask_which_account(session, phone, PAY, accounts, command)
    return _for_accounts_on_file(session, phone, PAY, command)


def _for_accounts_on_file(session: Session, phone: str, intent: str, command: Command) -> Message:
    accounts = _accounts_on_file(session, phone)
    if len(accounts) == 1:
        account = accounts[0]
        return _carry_on(
            session, phone, intent, account, command.amount_cents, language_for(command, account)
        )
    if accounts:
        return _ask_which_account(session, phone, intent, accounts, command)
    return _help(session, phone, command)


def _carry_on(
    session: Session,
    phone: str,
    intent: str,
    account: Account,
    amount_cents: int | None,
    language: str,
) -> Message:
    """Do what was asked, now that the account is known."""
    if intent == BALANCE:
        return text_replies.balance(session, phone, account, language)
    if intent == LINK:
        return text_replies.payment_link(session, phone, account, language)
    enrollment = _active_enrollment(session, phone, account)
    if enrollment is None:
        return text_replies.not_enrolled(session, phone, account, language)
    return text_payments.request_payment(session, phone, enrollment, amount_cents, language)


def _ask_which_account(
    session: Session, phone: str, intent: str, accounts: list[Account], command: Command
) -> Message:
    language = language_for(command, accounts[0])
    choices = {text_replies.account_last4(a): a.id for a in accounts}
    if len(choices) < len(accounts):
        # Two of the accounts end in the same four digits: asking could not tell them
        # apart, so the customer is sent to a person instead (the help text's number).
        return text_replies.help_text(session, phone, language)
    now = runtime().now()
    minutes = runtime().config["pay_by_text.code_ttl_minutes"]
    session.add(
        TextQuestion(
            phone=phone,
            intent=intent,
            amount_cents=command.amount_cents,
            language=language,
            account_ids=choices,
            expires_at=now + dt.timedelta(minutes=minutes),
            created_at=now,
        )
    )
    return text_replies.which_account(session, phone, list(choices), language)


def _answer_which_account(session: Session, phone: str, last4: str) -> Message | None:
    """Four digits: the answer to the phone's open "which account?" question."""
    now = runtime().now()
    question = session.scalar(
        select(TextQuestion)
        .where(
            TextQuestion.phone == phone,
            TextQuestion.answered_at.is_(None),
            TextQuestion.expires_at > now,
        )
        .order_by(TextQuestion.id.desc())
        .limit(1)
    )
    if question is None:
        account = _only(_accounts_on_file(session, phone))
        return text_replies.help_text(session, phone, language_for(None, account))
    account_id = question.account_ids.get(last4)
    if account_id is None:
        return text_replies.which_account(
            session, phone, list(question.account_ids), question.language
        )
    answered = session.execute(
        update(TextQuestion)
        .where(TextQuestion.id == question.id, TextQuestion.answered_at.is_(None))
        .values(answered_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not answered:
        return None  # the same answer sent twice: the first one carries on
    account = session.get(Account, account_id)
    return _carry_on(
        session, phone, question.intent, account, question.amount_cents, question.language
    )


def _activate(session: Session, phone: str) -> Message:
    """OK: turn on the phone's enrollments waiting for it, and say so (also when they were
    already on: the customer wants to know where they stand)."""
    enrollments = text_enrollment.activate(session, phone)
    enrollments = enrollments or text_enrollment.active_enrollments(session, phone)
    if not enrollments:
        return _help(session, phone, None)
    accounts = [session.get(Account, e.account_id) for e in enrollments]
    return text_replies.reply(
        session,
        phone,
        PAY_BY_TEXT_ON,
        language_for(None, accounts[0]),
        account=accounts[0] if len(accounts) == 1 else None,
        accounts_last4=sorted(text_replies.account_last4(a) for a in accounts),
    )


def _help(session: Session, phone: str, command: Command | None) -> Message:
    account = _only(_accounts_on_file(session, phone))
    return text_replies.help_text(session, phone, language_for(command, account))


def _accounts_on_file(session: Session, phone: str) -> list[Account]:
    return list(session.scalars(select(Account).where(Account.phone == phone).order_by(Account.id)))


def _active_enrollment(session: Session, phone: str, account: Account) -> TextEnrollment | None:
    for enrollment in text_enrollment.active_enrollments(session, phone):
        if enrollment.account_id == account.id:
            return enrollment
    return None


def _only(accounts: list[Account]) -> Account | None:
    return accounts[0] if len(accounts) == 1 else None
