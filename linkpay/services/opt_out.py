"""The STOP and START families (contract §5), applied inside the webhook request that
receives them, before anything else can be sent to the number.

STOP: the number is opted out (an audit row says the customer asked, by text), every text
to it still waiting (queued or held for quiet hours) is cancelled before any provider
call, its Pay by Text enrollments and their pending payments are cancelled, and exactly
one confirmation is queued, the only text an opted-out number still gets. A second STOP
finds the number already out and gets nothing.

START: the number is opted back in (audit ``consent.sms_opt_in``) and told so. Pay by Text
stays off: that needs a new consent on a payment page.

Both run with the number's contact row locked (PostgreSQL) or inside the request's write
transaction (SQLite), so two STOPs at once confirm once and a STOP and a START never
interleave."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from linkpay.commands import Command, Kind
from linkpay.db import insert_unless_present
from linkpay.models import Account, Channel, Contact, Message, MessageStatus
from linkpay.runtime import runtime
from linkpay.services import audit, messages, text_enrollment
from linkpay.services.contacts import mark_contact

SYNCHRONOUS = frozenset({Kind.STOP, Kind.START})
VIA_STOP, VIA_START = "sms STOP", "sms START"
START_CONFIRMATION = "sms_started"


def apply(session: Session, phone: str, command: Command) -> None:
    if not phone:
        return
    language = command.language or "en"
    if command.kind == Kind.STOP:
        stop(session, phone, language)
    elif command.kind == Kind.START:
        start(session, phone, language)


def stop(session: Session, phone: str, language: str) -> Message | None:
    """Opt ``phone`` out; the confirmation queued, or None if it was already out."""
    contact = _locked_contact(session, phone)
    if contact.opted_out_at is not None:
        return None
    account = _account_for(session, phone)
    mark_contact(
        session,
        Channel.SMS,
        phone,
        opted_out=True,
        reason=VIA_STOP,
        actor="customer",
        account_id=account.id if account is not None else None,
    )
    cancel_waiting_texts(session, phone)
    text_enrollment.cancel_for_phone(session, phone, actor="customer", via=VIA_STOP)
    return messages.queue_text(
        session, phone, messages.STOP_CONFIRMATION, language, account=account
    )


def start(session: Session, phone: str, language: str) -> Message:
    """Opt ``phone`` back in (if it was out) and confirm."""
    _locked_contact(session, phone)
    account = _account_for(session, phone)
    reopened = session.execute(
        update(Contact)
        .where(
            Contact.channel == Channel.SMS,
            Contact.address == phone,
            Contact.opted_out_at.is_not(None),
        )
        .values(opted_out_at=None, updated_at=runtime().now())
        .execution_options(synchronize_session=False)
    ).rowcount
    if reopened:
        audit.record(
            session,
            "consent.sms_opt_in",
            actor="customer",
            account_id=account.id if account is not None else None,
            address=phone,
            via=VIA_START,
        )
    return messages.queue_text(session, phone, START_CONFIRMATION, language, account=account)


def cancel_waiting_texts(session: Session, phone: str) -> int:
    """Cancel every text to ``phone`` not yet handed to a provider. A send job that reads
    one of them later finds it cancelled; one already ``sending`` is past stopping."""
    return session.execute(
        update(Message)
        .where(
            Message.channel == Channel.SMS,
            Message.to_address == phone,
            Message.status.in_((MessageStatus.QUEUED, MessageStatus.SCHEDULED)),
        )
        .values(
            status=MessageStatus.CANCELLED,
            skip_reason=messages.OPTED_OUT,
            updated_at=runtime().now(),
        )
        .execution_options(synchronize_session=False)
    ).rowcount


def _locked_contact(session: Session, phone: str) -> Contact:
    now = runtime().now()
    insert_unless_present(
        session,
        Contact,
        {"channel": Channel.SMS, "address": phone, "updated_at": now},
        ["channel", "address"],
    )
    return session.scalars(
        select(Contact)
        .where(Contact.channel == Channel.SMS, Contact.address == phone)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()


def _account_for(session: Session, phone: str) -> Account | None:
    """The account the confirmation is filed under: the number's only one, else none."""
    accounts = session.scalars(select(Account).where(Account.phone == phone).limit(2)).all()
    return accounts[0] if len(accounts) == 1 else None
