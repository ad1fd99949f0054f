"""The send job: one message, at most once, through the configured transport.

Three units of work, so a crash at any point leaves the truth in the row:

1. look again (opted out since it was queued? quiet hours now?), then claim the row with a
   conditional UPDATE to ``sending``, and commit before any provider call: a worker that
   dies mid-call leaves a ``sending`` row, which nothing retries blindly (the provider may
   have accepted it) and which staff can see;
2. call the transport, holding no database connection while the provider thinks;
3. record the answer: ``sent``; ``failed`` plus the address marked undeliverable (or opted
   out) on a permanent error; back to ``scheduled`` with a back-off on a transient one,
   which the periodic sweep (``services.messages.release_due``) queues again as job
   ``message-{id}-{attempts}``.

Message bodies carry payment links, so only ids and codes are logged.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import and_, bindparam, or_, select, text, update
from sqlalchemy.orm import Session

from jobs import with_app_context
from linkpay.models import (
    Account,
    Channel,
    IllegalTransition,
    Message,
    MessageStatus,
    allowed_moves,
)
from linkpay.runtime import runtime
from linkpay.services.contacts import mark_contact
from linkpay.services.messages import (
    NO_EMAIL,
    NO_PHONE,
    OPTED_OUT,
    QUIET_HOURS,
    block_applies,
    contact_blocks,
    send_time,
)
from linkpay.transports.base import ProviderResult, Transport, TransportError
from linkpay.transports.registry import is_opted_out, transport_for

log = logging.getLogger(__name__)

HELD = f"scheduled: {QUIET_HOURS}"
CLAIMED_ELSEWHERE = "skipped: claimed elsewhere"
BACKOFF_FIRST_SECONDS = 30
BACKOFF_FACTOR = 4  # 30 s, 2 min, 8 min, then the cap
BACKOFF_CAP_SECONDS = 30 * 60


@dataclass(frozen=True)
class Claim:
    """A message this worker won: the row as read before the claim, and this attempt."""

    message: Message
    transport: Transport
    attempt: int


@with_app_context
def send_message(message_id: int) -> str:
    """Send one message if it is still due; what happened (RQ keeps it as the result)."""
    return send_messages([message_id])[message_id]


@with_app_context
def send_messages(message_ids: list[int]) -> dict[int, str]:
    """Send each message that is still due: ``sent``, ``retry``, ``failed``, or why not.

    A campaign's messages go in batches so the database and RQ costs are paid once per
    batch (one load, one claim, one record) instead of once per message; each message is
    still claimed on its own row, so a batch enqueued twice sends each message once."""
    with runtime().db.session() as session:
        claims, outcomes = _check_and_claim(session, message_ids)
    answers = [(claim, *_call(claim)) for claim in claims]
    if answers:
        with _outcome_unit() as session:
            outcomes.update(_record(session, answers))
    log.info("sent %s of %s messages", sum(o == "sent" for o in outcomes.values()), len(outcomes))
    return outcomes


def _check_and_claim(session: Session, message_ids: list[int]) -> tuple[list[Claim], dict]:
    """Look again at each message (opted out since? quiet hours now?) and claim the ones
    still to send with one conditional UPDATE. Returns the claims and the other outcomes."""
    now = runtime().now()
    outcomes: dict[int, str] = {i: "missing" for i in message_ids}
    rows = session.execute(
        select(Message, Account)
        .outerjoin(Account, Account.id == Message.account_id)
        .where(Message.id.in_(message_ids))
    ).all()
    blocks = _blocks(session, [m for m, _ in rows])
    ready = []
    for message, account in rows:
        outcome = _left_alone(session, message, account, now, blocks)
        if outcome is None:
            ready.append(message)
        else:
            outcomes[message.id] = outcome
    # Built before the claim: a transport that cannot be built must not strand a row
    # in "sending".
    transports = {channel: transport_for(channel) for channel in {m.channel for m in ready}}
    attempts = _claim(session, [m.id for m in ready], now)
    claims = []
    for message in ready:
        if message.id in attempts:
            claims.append(Claim(message, transports[message.channel], attempts[message.id]))
        else:
            outcomes[message.id] = CLAIMED_ELSEWHERE
    return claims, outcomes


def _left_alone(session, message, account, now, blocks) -> str | None:
    """Why ``message`` is not to be sent now (moving it where it belongs), or None."""
    if not _is_due(message, now):
        return f"skipped: {message.status.value}"
    block = _block_reason(message, blocks)
    if block:
        new = MessageStatus.CANCELLED if block == OPTED_OUT else MessageStatus.SUPPRESSED
        moved = _move(session, message, new, skip_reason=block)
        return f"{new.value}: {block}" if moved else CLAIMED_ELSEWHERE
    hold = _quiet_hours_end(message, account)
    if hold:
        moved = _move(
            session, message, MessageStatus.SCHEDULED, send_after=hold, skip_reason=QUIET_HOURS
        )
        return HELD if moved else CLAIMED_ELSEWHERE
    return None


def _blocks(session: Session, messages: list[Message]) -> dict[Channel, dict[str, str]]:
    """Opt-outs and undeliverable marks for every address in the batch, one query a channel."""
    by_channel: dict[Channel, list[str]] = {}
    for message in messages:
        if message.to_address:
            by_channel.setdefault(message.channel, []).append(message.to_address)
    return {ch: contact_blocks(session, ch, addresses) for ch, addresses in by_channel.items()}


def _call(claim: Claim) -> tuple[ProviderResult | None, TransportError | None]:
    try:
        return claim.transport.send(claim.message), None
    except TransportError as error:
        return None, error


def _record(session: Session, answers: list) -> dict[int, str]:
    """Record every provider answer: the sent ones in one statement, errors one by one."""
    sent = [(claim, result) for claim, result, error in answers if error is None]
    outcomes = {claim.message.id: "sent" for claim, _ in sent}
    _record_sent(session, sent)
    for claim, _result, error in answers:
        if error is not None:
            outcomes[claim.message.id] = _record_error(session, claim, error)
    return outcomes


def _is_due(message: Message, now: dt.datetime) -> bool:
    if message.status == MessageStatus.QUEUED:
        return True
    return message.status == MessageStatus.SCHEDULED and (
        message.send_after is None or message.send_after <= now
    )


def _block_reason(message: Message, blocks: dict[Channel, dict[str, str]]) -> str | None:
    """Why this address must not get the message now (it may have changed since queueing)."""
    if not message.to_address:
        return NO_PHONE if message.channel == Channel.SMS else NO_EMAIL
    return block_applies(message.kind, blocks.get(message.channel, {}).get(message.to_address))


def _quiet_hours_end(message: Message, account: Account | None) -> dt.datetime | None:
    """When quiet hours end for the recipient, if they are in them now; else None."""
    if message.solicited:
        return None
    if account is None:
        # No account (or it is gone): the number we are texting still names a time zone.
        phone = message.to_address if message.channel == Channel.SMS else None
        account = Account(phone=phone, zip=None)
    when = send_time(account, solicited=False)
    return when if when > runtime().now() else None


def _move(session: Session, message: Message, new: MessageStatus, **values) -> bool:
    """Move ``message`` from the status we read to ``new``, unless someone moved it since."""
    return _transition(session, message.id, message.status, new, **values)


def _transition(
    session: Session, message_id: int, old: MessageStatus, new: MessageStatus, **values
) -> bool:
    """A state-machine move as a conditional UPDATE (``WHERE status = old``), so two
    workers never both act on one row. Staying in the same status just updates ``values``."""
    if new != old and new not in allowed_moves(old):
        raise IllegalTransition(f"Message {message_id}: {old} -> {new}")
    result = session.execute(
        update(Message)
        .where(Message.id == message_id, Message.status == old)
        .values(status=new, updated_at=runtime().now(), **values)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def _claim(session: Session, message_ids: list[int], now: dt.datetime) -> dict[int, int]:
    """The one conditional UPDATE that decides which worker sends each message: on a
    double enqueue or two workers racing, exactly one gets a row back. Returns each
    claimed message's attempt number."""
    if not message_ids:
        return {}
    rows = session.execute(
        update(Message)
        .where(
            Message.id.in_(message_ids),
            or_(
                Message.status == MessageStatus.QUEUED,
                and_(
                    Message.status == MessageStatus.SCHEDULED,
                    or_(Message.send_after.is_(None), Message.send_after <= now),
                ),
            ),
        )
        .values(status=MessageStatus.SENDING, attempts=Message.attempts + 1, updated_at=now)
        .returning(Message.id, Message.attempts)
        .execution_options(synchronize_session=False)
    )
    return dict(rows.all())


@contextmanager
def _outcome_unit() -> Iterator[Session]:
    """The unit of work that records the provider's answer. On PostgreSQL its commit does
    not wait for the disk (``synchronous_commit`` off for this transaction only): should a
    database crash lose it, the row reads ``sending`` again, which is never sent twice and
    which staff can see. The claim before the call is always durable. This saves one of
    the two disk flushes each message costs."""
    with runtime().db.session() as session:
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text("SET LOCAL synchronous_commit TO OFF"))
        yield session


def _record_sent(session: Session, sent: list[tuple[Claim, ProviderResult]]) -> None:
    if not sent:
        return
    table = Message.__table__
    now = runtime().now()
    # Core executemany: one statement for the batch, each row still moved only if it
    # is in "sending" (the state machine's only way to "sent").
    session.execute(
        update(table)
        .where(table.c.id == bindparam("b_id"), table.c.status == MessageStatus.SENDING)
        .values(
            status=MessageStatus.SENT,
            provider=bindparam("b_provider"),
            provider_id=bindparam("b_provider_id"),
            sent_at=now,
            updated_at=now,
            error_code=None,
            error_message=None,
        ),
        [
            {"b_id": c.message.id, "b_provider": r.provider, "b_provider_id": r.provider_id}
            for c, r in sent
        ],
    )
    for claim, result in sent:
        log.debug(
            "message %s sent via %s (%s)", claim.message.id, result.provider, result.provider_id
        )


def _record_error(session: Session, claim: Claim, error: TransportError) -> str:
    message = claim.message
    details = {"error_code": error.code, "error_message": str(error)[:500]}
    if error.permanent or claim.attempt >= runtime().config["messages.max_attempts"]:
        _transition(session, message.id, MessageStatus.SENDING, MessageStatus.FAILED, **details)
        if error.permanent:
            mark_contact(
                session,
                message.channel,
                message.to_address,
                opted_out=is_opted_out(error),
                reason=f"{claim.transport.name} {error.code}: {error}",
            )
        log.warning(
            "message %s failed (%s, attempt %s, permanent=%s)",
            message.id,
            error.code,
            claim.attempt,
            error.permanent,
        )
        return "failed"
    delay = max(backoff_seconds(claim.attempt), error.retry_after_seconds or 0)
    send_after = runtime().now() + dt.timedelta(seconds=delay)
    _transition(
        session,
        message.id,
        MessageStatus.SENDING,
        MessageStatus.SCHEDULED,
        send_after=send_after,
        **details,
    )
    log.warning(
        "message %s: transient error %s on attempt %s, retry in %ss",
        message.id,
        error.code,
        claim.attempt,
        round(delay),
    )
    return "retry"


def backoff_seconds(attempts: int) -> float:
    """Wait before attempt ``attempts + 1``: exponential, capped, so a provider outage is
    ridden out without hammering it and a blip costs half a minute."""
    return min(BACKOFF_FIRST_SECONDS * BACKOFF_FACTOR ** max(attempts - 1, 0), BACKOFF_CAP_SECONDS)
