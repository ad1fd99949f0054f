"""Contacts: what we know of a phone number or email address whichever accounts share it
(opted out, undeliverable). Every later message to a blocked address is suppressed before
any provider call."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from linkpay.models import Channel, Contact
from linkpay.runtime import runtime
from linkpay.services import audit
from linkpay.signing import Purpose


def mark_contact(
    session: Session,
    channel: Channel,
    address: str | None,
    *,
    opted_out: bool,
    reason: str,
    actor: str = "system",
    account_id: int | None = None,
    ip: str | None = None,
) -> Contact | None:
    """Record that ``address`` opted out or can never be reached, creating its Contact row
    if needed. Every later message to it is then suppressed before any provider call.
    An opt-out is a consent change: the first one leaves an audit row saying who and how."""
    if not address:
        return None
    channel = Channel(channel)
    contact = _get_or_create_contact(session, channel, address)
    now = runtime().now()
    if opted_out and contact.opted_out_at is None:
        contact.opted_out_at = now
        audit.record(
            session,
            f"consent.{channel.value}_opt_out",
            actor=actor,
            account_id=account_id,
            subject=contact,
            ip=ip,
            address=address,
            via=reason[:200],
        )
    elif not opted_out and contact.undeliverable_at is None:
        contact.undeliverable_at = now
        contact.undeliverable_reason = reason[:200]
    contact.updated_at = now
    return contact


def _get_or_create_contact(session: Session, channel: Channel, address: str) -> Contact:
    query = select(Contact).where(Contact.channel == channel, Contact.address == address)
    contact = session.scalar(query)
    if contact is not None:
        return contact
    try:
        # A savepoint: if another worker inserted the same address first, only this
        # insert is undone and we use their row.
        with session.begin_nested():
            contact = Contact(channel=channel, address=address)
            session.add(contact)
        return contact
    except IntegrityError:
        return session.scalar(query)


def unsubscribe_url(account_id: int) -> str:
    """Where an email's unsubscribe link (and its List-Unsubscribe header) points."""
    token = runtime().signer.sign(Purpose.UNSUBSCRIBE, account_id)
    return f"{runtime().config['app.base_url']}/u/{token}"
