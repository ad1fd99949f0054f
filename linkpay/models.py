"""SQLAlchemy 2.0 mappings. Money is integer cents; every timestamp is stored in UTC.

Each status enum lists its allowed transitions right beside it; services move rows only
through ``advance()``, or ``claim()`` where another process may move the row at the same
moment, so an illegal move is an error, not a silent overwrite.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    update,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship
from sqlalchemy.types import TypeDecorator


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator):
    """Stores aware datetimes as UTC and hands them back aware, on SQLite as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dt.datetime: UTCDateTime(), dict[str, Any]: JSON}


class IllegalTransition(Exception):
    """A status change that the state machine does not allow."""


TRANSITIONS: dict[type[enum.Enum], dict[Any, frozenset]] = {}


def transitions(cls: type[enum.Enum], table: dict[str, tuple[str, ...]]) -> None:
    """Declare where each status of ``cls`` may move; every status must be listed."""
    missing = {m.value for m in cls} - set(table)
    if missing:
        raise ValueError(f"{cls.__name__}: no transitions listed for {sorted(missing)}")
    TRANSITIONS[cls] = {cls(k): frozenset(cls(v) for v in vs) for k, vs in table.items()}


def allowed_moves(current: enum.Enum) -> frozenset:
    return TRANSITIONS[type(current)][current]


def advance(row: Any, new: enum.Enum, attribute: str = "status") -> None:
    current = getattr(row, attribute)
    if new not in allowed_moves(current):
        raise IllegalTransition(f"{type(row).__name__} {row.id}: {current} -> {new}")
    setattr(row, attribute, new)


def claim(
    session: Session,
    row: Any,
    new: enum.Enum,
    *,
    expected: enum.Enum | Iterable[enum.Enum] | None = None,
    where: Iterable[Any] = (),
    **values: Any,
) -> bool:
    """``advance()`` for a row another process may move at the same moment: one conditional
    UPDATE moves it to ``new`` only if the database still holds an ``expected`` status
    (default: the one this process read), so of two racing claims exactly one wins.

    ``where`` adds the caller's own conditions; ``values`` are written with the status (the
    app clock lives outside the models, so callers pass ``updated_at``). Staying in the same
    status just rewrites ``values``. The row is refreshed either way, so it shows what the
    database holds now, the winner's write included. True if this call moved it."""
    olds = (row.status,) if expected is None else expected
    olds = (olds,) if isinstance(olds, enum.Enum) else tuple(olds)
    for old in olds:
        if new != old and new not in allowed_moves(old):
            raise IllegalTransition(f"{type(row).__name__} {row.id}: {old} -> {new}")
    table = type(row)
    claimed = session.execute(
        update(table)
        .where(table.id == row.id, table.status.in_(olds), *where)
        .values(status=new, **values)
        .execution_options(synchronize_session=False)
    ).rowcount
    session.refresh(row)
    return claimed == 1


def _enum(cls: type[enum.Enum]) -> Enum:
    return Enum(
        cls,
        native_enum=False,
        length=20,
        validate_strings=True,
        values_callable=lambda members: [m.value for m in members],
    )


class Channel(enum.StrEnum):
    SMS = "sms"
    EMAIL = "email"


class MessageStatus(enum.StrEnum):
    QUEUED = "queued"  # saved, a send job is (or will be) on the queue
    SCHEDULED = "scheduled"  # waiting for send_after (quiet hours, retry back-off)
    SENDING = "sending"  # claimed by one job; the provider call is in flight
    SENT = "sent"  # the provider accepted it
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    BOUNCED = "bounced"
    SUPPRESSED = "suppressed"  # never attempted: see skip_reason
    CANCELLED = "cancelled"  # dropped before any provider call (opt-out, superseded)


transitions(
    MessageStatus,
    {
        "queued": ("sending", "scheduled", "suppressed", "cancelled"),
        "scheduled": ("queued", "sending", "suppressed", "cancelled"),
        # Back to scheduled on a transient provider error, to failed on a permanent one.
        "sending": ("sent", "scheduled", "failed"),
        # Provider callbacks can arrive out of order; a later word wins.
        "sent": ("delivered", "undelivered", "failed", "bounced"),
        "delivered": ("bounced", "undelivered"),
        "undelivered": ("delivered",),
        "failed": (),
        "bounced": (),
        "suppressed": (),
        "cancelled": (),
    },
)


class LinkStatus(enum.StrEnum):
    ACTIVE = "active"
    USED = "used"  # the balance was paid in full through it
    LOCKED = "locked"  # too many wrong ZIP answers
    REVOKED = "revoked"


transitions(
    LinkStatus, {"active": ("used", "locked", "revoked"), "used": (), "locked": (), "revoked": ()}
)


class PaymentStatus(enum.StrEnum):
    PROCESSING = "processing"  # the gateway call is in flight
    PENDING = "pending"  # accepted, not yet settled (ACH)
    PAID = "paid"
    DECLINED = "declined"


transitions(
    PaymentStatus,
    {
        "processing": ("pending", "paid", "declined"),
        "pending": ("paid", "declined"),
        "paid": (),
        "declined": (),
    },
)


class MethodKind(enum.StrEnum):
    CARD = "card"
    BANK = "bank"


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_number: Mapped[str] = mapped_column(String(64), unique=True)
    first_name: Mapped[str] = mapped_column(String(100), default="")
    last_name: Mapped[str] = mapped_column(String(100), default="")
    phone: Mapped[str | None] = mapped_column(String(20), index=True)  # E.164
    email: Mapped[str | None] = mapped_column(String(254), index=True)
    balance_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    due_date: Mapped[dt.date | None] = mapped_column(Date)
    zip: Mapped[str | None] = mapped_column(String(10))
    language: Mapped[str] = mapped_column(String(2), default="en")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    links: Mapped[list[Link]] = relationship(back_populates="account")

    @property
    def display_name(self) -> str:
        return " ".join(p for p in (self.first_name, self.last_name) if p)


class Contact(Base):
    """What we know of a phone number or email address, whichever accounts share it:
    opt-out (STOP applies to the number, not one account) and permanent delivery failures."""

    __tablename__ = "contacts"
    __table_args__ = (UniqueConstraint("channel", "address"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[Channel] = mapped_column(_enum(Channel))
    address: Mapped[str] = mapped_column(String(254))
    opted_out_at: Mapped[dt.datetime | None]
    undeliverable_at: Mapped[dt.datetime | None]
    undeliverable_reason: Mapped[str | None] = mapped_column(String(200))
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Campaign(Base):
    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(10))  # sms, email or both
    created_by: Mapped[str] = mapped_column(String(100), default="cli")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Link(Base):
    """A payment link. The token is never stored: it is derived from ``id`` by signing."""

    __tablename__ = "links"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"), index=True)
    channel: Mapped[str] = mapped_column(String(10), default="sms")  # how it went out
    status: Mapped[LinkStatus] = mapped_column(_enum(LinkStatus), default=LinkStatus.ACTIVE)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime]
    zip_failures: Mapped[int] = mapped_column(Integer, default=0)
    first_opened_at: Mapped[dt.datetime | None]
    open_count: Mapped[int] = mapped_column(Integer, default=0)
    fresh_link_sent_at: Mapped[dt.datetime | None]  # rate limit for "send me a new link"

    account: Mapped[Account] = relationship(back_populates="links")


class Message(Base):
    """One SMS or email to one address: saved before the send, updated after."""

    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_due", "status", "send_after"),
        Index("ix_messages_provider", "provider", "provider_id"),
        # STOP cancels every waiting text to one number inside the webhook request.
        Index("ix_messages_recipient", "to_address", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    link_id: Mapped[int | None] = mapped_column(ForeignKey("links.id"), index=True)
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"), index=True)
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id"), index=True)
    channel: Mapped[Channel] = mapped_column(_enum(Channel))
    kind: Mapped[str] = mapped_column(String(40))  # the template: link, receipt, fresh_link...
    language: Mapped[str] = mapped_column(String(2), default="en")
    to_address: Mapped[str | None] = mapped_column(String(254))
    subject: Mapped[str | None] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text, default="")
    html_body: Mapped[str | None] = mapped_column(Text)
    segments: Mapped[int | None] = mapped_column(Integer)
    # A reply to the customer's own text is not held back by quiet hours (they asked).
    solicited: Mapped[bool] = mapped_column(default=False)
    status: Mapped[MessageStatus] = mapped_column(
        _enum(MessageStatus), default=MessageStatus.QUEUED
    )
    skip_reason: Mapped[str | None] = mapped_column(String(40))
    send_after: Mapped[dt.datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # The queue job that carries the current attempt: the sweep asks Redis whether it is
    # still alive before queueing the message again.
    job_id: Mapped[str | None] = mapped_column(String(120), index=True)
    provider: Mapped[str | None] = mapped_column(String(20))
    provider_id: Mapped[str | None] = mapped_column(String(100))
    error_code: Mapped[str | None] = mapped_column(String(40))
    error_message: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    sent_at: Mapped[dt.datetime | None]
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Checkout(Base):
    """One customer's way through a payment page: amount, then method, then confirm.

    ``payment`` is unique per checkout, so a double tap, a refresh or a resubmitted confirm
    form finds the payment already made instead of charging again."""

    __tablename__ = "checkouts"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    link_id: Mapped[int] = mapped_column(ForeignKey("links.id"), index=True)
    amount_cents: Mapped[int | None] = mapped_column(BigInteger)
    method_kind: Mapped[MethodKind | None] = mapped_column(_enum(MethodKind))
    method_token: Mapped[str | None] = mapped_column(String(100))
    method_label: Mapped[str | None] = mapped_column(String(40))  # brand or bank name
    method_last4: Mapped[str | None] = mapped_column(String(4))
    # A day chosen on the amount step: the checkout schedules a payment instead of paying.
    charge_on: Mapped[dt.date | None] = mapped_column(Date)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Payment(Base):
    __tablename__ = "payments"
    __table_args__ = (
        UniqueConstraint(
            "installment_id", "installment_attempt", name="uq_payments_installment_attempt"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    link_id: Mapped[int | None] = mapped_column(ForeignKey("links.id"), index=True)
    # The database, not only the code, keeps one charge per confirmed checkout.
    checkout_id: Mapped[int | None] = mapped_column(ForeignKey("checkouts.id"), unique=True)
    # Likewise one charge per confirmed Pay by Text request.
    text_request_id: Mapped[int | None] = mapped_column(
        ForeignKey("text_payment_requests.id"), unique=True
    )
    saved_method_id: Mapped[int | None] = mapped_column(ForeignKey("saved_methods.id"))
    # A plan installment's charge: one payment per (installment, attempt), so a decline's
    # retry is a second payment while a repeated sweep or job can never make a third.
    installment_id: Mapped[int | None] = mapped_column(ForeignKey("installments.id"), index=True)
    installment_attempt: Mapped[int | None] = mapped_column(Integer)
    # And one charge per scheduled payment.
    scheduled_payment_id: Mapped[int | None] = mapped_column(
        ForeignKey("scheduled_payments.id"), unique=True
    )
    confirmation_number: Mapped[str] = mapped_column(String(20), unique=True)
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    method_kind: Mapped[MethodKind] = mapped_column(_enum(MethodKind))
    method_label: Mapped[str] = mapped_column(String(40))
    method_last4: Mapped[str] = mapped_column(String(4))
    status: Mapped[PaymentStatus] = mapped_column(
        _enum(PaymentStatus), default=PaymentStatus.PROCESSING
    )
    gateway: Mapped[str] = mapped_column(String(20), default="sandbox")
    gateway_reference: Mapped[str | None] = mapped_column(String(100))
    decline_code: Mapped[str | None] = mapped_column(String(40))
    source: Mapped[str] = mapped_column(String(20), default="link")  # link, sms, schedule
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    account: Mapped[Account] = relationship()


class AuditEvent(Base):
    """Who did what, when and how, for every money movement and every consent."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(100))  # customer, staff:<name>, system, twilio
    action: Mapped[str] = mapped_column(String(60), index=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    subject_type: Mapped[str | None] = mapped_column(String(40))
    subject_id: Mapped[int | None] = mapped_column(BigInteger)
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


class ProviderEvent(Base):
    """A webhook delivery we have already handled, keyed by the provider's own id."""

    __tablename__ = "provider_events"
    __table_args__ = (UniqueConstraint("provider", "event_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(20))
    event_id: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(40))
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)


class SandboxToken(Base):
    """The sandbox gateway's own vault (it stands in for a processor's): what a token
    will do when charged. Never the number, only its outcome, brand and last four."""

    __tablename__ = "sandbox_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[MethodKind] = mapped_column(_enum(MethodKind))
    label: Mapped[str] = mapped_column(String(40))
    last4: Mapped[str] = mapped_column(String(4))
    outcome: Mapped[str] = mapped_column(String(40))  # approved, declined, insufficient_funds
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


# -- Pay by Text ---------------------------------------------------------------------------


class SavedMethod(Base):
    """A tokenized method kept for later charges (Pay by Text, plans, scheduled payments):
    the gateway's token, the brand or bank, and the last four. Never the number.
    ``is_default`` marks the one a text payment uses; at most one per account."""

    __tablename__ = "saved_methods"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    gateway: Mapped[str] = mapped_column(String(20))
    token: Mapped[str] = mapped_column(String(100))
    kind: Mapped[MethodKind] = mapped_column(_enum(MethodKind))
    label: Mapped[str] = mapped_column(String(40))
    last4: Mapped[str] = mapped_column(String(4))
    is_default: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    removed_at: Mapped[dt.datetime | None]


class EnrollmentStatus(enum.StrEnum):
    AWAITING_OK = "awaiting_ok"  # consent given on the page; the customer has not replied OK
    ACTIVE = "active"
    CANCELLED = "cancelled"  # turned off from the page, or by STOP


transitions(
    EnrollmentStatus,
    {
        "awaiting_ok": ("active", "cancelled"),
        "active": ("cancelled", "awaiting_ok"),  # a new method re-asks for OK
        "cancelled": ("awaiting_ok",),  # enrolling again
    },
)


class TextEnrollment(Base):
    """Pay by Text for one account on one phone, with the consent that allowed it."""

    __tablename__ = "text_enrollments"
    __table_args__ = (UniqueConstraint("account_id", "phone"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    phone: Mapped[str] = mapped_column(String(20), index=True)  # E.164
    method_id: Mapped[int] = mapped_column(ForeignKey("saved_methods.id"))
    status: Mapped[EnrollmentStatus] = mapped_column(
        _enum(EnrollmentStatus), default=EnrollmentStatus.AWAITING_OK
    )
    consent_version: Mapped[str] = mapped_column(String(20))
    consented_at: Mapped[dt.datetime]
    consent_ip: Mapped[str | None] = mapped_column(String(64))
    consent_user_agent: Mapped[str | None] = mapped_column(String(300))
    activated_at: Mapped[dt.datetime | None]
    cancelled_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    account: Mapped[Account] = relationship()
    method: Mapped[SavedMethod] = relationship()


class TextRequestStatus(enum.StrEnum):
    PENDING = "pending"  # code sent, waiting for it
    CONFIRMED = "confirmed"  # the right code came back; the payment row exists
    EXPIRED = "expired"  # 10 minutes passed
    CANCELLED = "cancelled"  # 3 wrong codes, STOP, or Pay by Text turned off
    REPLACED = "replaced"  # a newer PAY from the same phone


transitions(
    TextRequestStatus,
    {
        "pending": ("confirmed", "expired", "cancelled", "replaced"),
        "confirmed": (),
        "expired": (),
        "cancelled": (),
        "replaced": (),
    },
)


class TextPaymentRequest(Base):
    """A ``PAY`` waiting for its one-time code. The code itself is never stored: only an
    HMAC of it keyed by the app secret and bound to this request."""

    __tablename__ = "text_payment_requests"
    __table_args__ = (Index("ix_text_requests_phone_status", "phone", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    enrollment_id: Mapped[int] = mapped_column(ForeignKey("text_enrollments.id"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    phone: Mapped[str] = mapped_column(String(20))
    method_id: Mapped[int] = mapped_column(ForeignKey("saved_methods.id"))
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    code_hash: Mapped[str] = mapped_column(String(64))
    wrong_codes: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[TextRequestStatus] = mapped_column(
        _enum(TextRequestStatus), default=TextRequestStatus.PENDING
    )
    language: Mapped[str] = mapped_column(String(2), default="en")
    expires_at: Mapped[dt.datetime]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class TextQuestion(Base):
    """ "Which account?": what a phone enrolled for several accounts asked for (pay, balance,
    link), kept until it answers with an account's last four or the question expires."""

    __tablename__ = "text_questions"

    id: Mapped[int] = mapped_column(primary_key=True)
    phone: Mapped[str] = mapped_column(String(20), index=True)
    intent: Mapped[str] = mapped_column(String(20))  # pay, balance, link
    amount_cents: Mapped[int | None] = mapped_column(BigInteger)
    language: Mapped[str] = mapped_column(String(2), default="en")
    account_ids: Mapped[dict[str, Any]] = mapped_column(default=dict)  # {"last4": account_id}
    expires_at: Mapped[dt.datetime]
    answered_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


# -- Scheduled payments, settlement offers and payment plans --------------------------------


class ScheduledPaymentStatus(enum.StrEnum):
    PENDING = "pending"  # waiting for its day
    PROCESSING = "processing"  # claimed by one sweep; the charge job has it
    PAID = "paid"  # taken (an ACH debit still settling counts, as for link payments)
    DECLINED = "declined"
    CANCELLED = "cancelled"  # by the customer until the day before, or nothing was owed


transitions(
    ScheduledPaymentStatus,
    {
        "pending": ("processing", "cancelled"),
        # Cancelled from processing: the balance was paid off before the charge was made.
        "processing": ("paid", "declined", "cancelled"),
        "paid": (),
        "declined": (),
        "cancelled": (),
    },
)


class ScheduledPayment(Base):
    """A payment the customer chose to make on a later day, charged to a saved method at
    ``payments.scheduled_charge_time`` on ``charge_on`` in the organisation's zone."""

    __tablename__ = "scheduled_payments"
    __table_args__ = (Index("ix_scheduled_payments_due", "status", "due_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    link_id: Mapped[int | None] = mapped_column(ForeignKey("links.id"), index=True)
    # One scheduled payment per checkout, kept by the database: a double tap on Confirm
    # finds the first instead of scheduling a second.
    checkout_id: Mapped[int | None] = mapped_column(ForeignKey("checkouts.id"), unique=True)
    saved_method_id: Mapped[int] = mapped_column(ForeignKey("saved_methods.id"))
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    charge_on: Mapped[dt.date] = mapped_column(Date)  # the organisation's calendar day
    due_at: Mapped[dt.datetime]  # charge_on at the charge time, in UTC
    status: Mapped[ScheduledPaymentStatus] = mapped_column(
        _enum(ScheduledPaymentStatus), default=ScheduledPaymentStatus.PENDING
    )
    cancel_reason: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    account: Mapped[Account] = relationship()
    method: Mapped[SavedMethod] = relationship()


class OfferKind(enum.StrEnum):
    SETTLEMENT = "settlement"  # pay a smaller amount by a deadline and the rest is forgiven
    PLAN = "plan"  # pay the balance in installments


class OfferStatus(enum.StrEnum):
    OFFERED = "offered"  # sent; the link shows it until expires_at
    ACCEPTED = "accepted"  # settled (paid) or the plan signed
    CANCELLED = "cancelled"  # withdrawn by staff
    EXPIRED = "expired"  # expires_at passed unaccepted; one expiry notice went out
    REPLACED = "replaced"  # staff made a newer offer of the same kind for the account


transitions(
    OfferStatus,
    {
        "offered": ("accepted", "cancelled", "expired", "replaced"),
        "accepted": (),
        "cancelled": (),
        "expired": (),
        "replaced": (),
    },
)


class PlanFrequency(enum.StrEnum):
    WEEKLY = "weekly"
    BIWEEKLY = "biweekly"  # every two weeks
    MONTHLY = "monthly"


class Offer(Base):
    """A settlement or plan offer made to one account, delivered as a link of its own.

    ``amount_cents`` is what the offer asks for: the settlement amount, or the plan's
    total. Plan terms (count, frequency, first date) are empty for a settlement."""

    __tablename__ = "offers"
    __table_args__ = (Index("ix_offers_open", "status", "expires_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    link_id: Mapped[int] = mapped_column(ForeignKey("links.id"), unique=True)
    kind: Mapped[OfferKind] = mapped_column(_enum(OfferKind))
    status: Mapped[OfferStatus] = mapped_column(_enum(OfferStatus), default=OfferStatus.OFFERED)
    channel: Mapped[str] = mapped_column(String(10))  # sms, email or both
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    percent: Mapped[int | None] = mapped_column(Integer)  # a settlement given as a percent
    balance_cents: Mapped[int] = mapped_column(BigInteger)  # the balance when offered
    installment_count: Mapped[int | None] = mapped_column(Integer)
    frequency: Mapped[PlanFrequency | None] = mapped_column(_enum(PlanFrequency))
    first_date: Mapped[dt.date | None] = mapped_column(Date)
    expires_at: Mapped[dt.datetime]
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    accepted_at: Mapped[dt.datetime | None]
    closed_at: Mapped[dt.datetime | None]  # cancelled, expired or replaced
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    account: Mapped[Account] = relationship()
    link: Mapped[Link] = relationship()


class ReminderStatus(enum.StrEnum):
    PENDING = "pending"  # due at due_at, if the offer is still open then
    SENT = "sent"
    DROPPED = "dropped"  # found too late: it could only reach the customer after expiry
    CANCELLED = "cancelled"  # the offer was accepted, withdrawn or expired first


transitions(
    ReminderStatus,
    {"pending": ("sent", "dropped", "cancelled"), "sent": (), "dropped": (), "cancelled": ()},
)


class OfferReminder(Base):
    """One of an offer's (at most three) reminders, written when the offer is made. The
    unique (offer, index) and the pending -> sent claim make each go out once."""

    __tablename__ = "offer_reminders"
    __table_args__ = (
        UniqueConstraint("offer_id", "reminder_index", name="uq_offer_reminders_offer_index"),
        Index("ix_offer_reminders_due", "status", "due_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    offer_id: Mapped[int] = mapped_column(ForeignKey("offers.id"))
    reminder_index: Mapped[int] = mapped_column(Integer)  # 1, 2, 3 in the order they fall
    hours_before: Mapped[int] = mapped_column(Integer)  # the plans.reminder_hours entry
    due_at: Mapped[dt.datetime]  # moved before quiet hours when it would fall in them
    status: Mapped[ReminderStatus] = mapped_column(
        _enum(ReminderStatus), default=ReminderStatus.PENDING
    )
    sent_at: Mapped[dt.datetime | None]


class PlanStatus(enum.StrEnum):
    ACTIVE = "active"  # signed; installments are charged on their dates
    COMPLETED = "completed"  # every installment paid (or nothing was left to pay)
    CANCELLED = "cancelled"  # by staff or the customer; the rest is never charged


transitions(PlanStatus, {"active": ("completed", "cancelled"), "completed": (), "cancelled": ()})


class Plan(Base):
    """An accepted plan offer: the signature, the exact agreement text and its version,
    the method the installments are charged to."""

    __tablename__ = "plans"

    id: Mapped[int] = mapped_column(primary_key=True)
    offer_id: Mapped[int] = mapped_column(ForeignKey("offers.id"), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    saved_method_id: Mapped[int] = mapped_column(ForeignKey("saved_methods.id"))
    total_cents: Mapped[int] = mapped_column(BigInteger)
    frequency: Mapped[PlanFrequency] = mapped_column(_enum(PlanFrequency))
    status: Mapped[PlanStatus] = mapped_column(_enum(PlanStatus), default=PlanStatus.ACTIVE)
    signature_name: Mapped[str] = mapped_column(String(200))
    signed_at: Mapped[dt.datetime]
    signed_ip: Mapped[str | None] = mapped_column(String(64))
    signed_user_agent: Mapped[str | None] = mapped_column(String(300))
    agreement_version: Mapped[str] = mapped_column(String(40))
    agreement_text: Mapped[str] = mapped_column(Text)  # exactly what the customer agreed to
    language: Mapped[str] = mapped_column(String(2), default="en")
    cancelled_at: Mapped[dt.datetime | None]
    cancelled_by: Mapped[str | None] = mapped_column(String(100))
    completed_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    account: Mapped[Account] = relationship()
    offer: Mapped[Offer] = relationship()
    method: Mapped[SavedMethod] = relationship()
    installments: Mapped[list[Installment]] = relationship(
        back_populates="plan", order_by="Installment.sequence"
    )


class InstallmentStatus(enum.StrEnum):
    PENDING = "pending"  # waiting for due_at
    PROCESSING = "processing"  # claimed by one sweep; the charge job has it
    RETRY_SCHEDULED = "retry_scheduled"  # the first charge was declined; due_at moved on
    PAID = "paid"  # taken (an ACH debit still settling counts)
    DECLINED = "declined"  # the retry was declined too
    CANCELLED = "cancelled"  # the plan was cancelled, or nothing was owed any more


transitions(
    InstallmentStatus,
    {
        "pending": ("processing", "cancelled"),
        "processing": ("paid", "retry_scheduled", "declined", "cancelled"),
        "retry_scheduled": ("processing", "cancelled"),
        "paid": (),
        "declined": (),
        "cancelled": (),
    },
)


class Installment(Base):
    __tablename__ = "installments"
    __table_args__ = (
        UniqueConstraint("plan_id", "sequence", name="uq_installments_plan_sequence"),
        Index("ix_installments_due", "status", "due_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"))
    sequence: Mapped[int] = mapped_column(Integer)  # 1..n
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    charge_on: Mapped[dt.date] = mapped_column(Date)  # the organisation's calendar day
    due_at: Mapped[dt.datetime]  # when the next charge may be made, in UTC
    status: Mapped[InstallmentStatus] = mapped_column(
        _enum(InstallmentStatus), default=InstallmentStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # charges started
    decline_code: Mapped[str | None] = mapped_column(String(40))
    cancel_reason: Mapped[str | None] = mapped_column(String(40))
    paid_at: Mapped[dt.datetime | None]
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    plan: Mapped[Plan] = relationship(back_populates="installments")
