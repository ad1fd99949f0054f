"""Messages: decide whether, when and what to send; save the row; queue the send job.

A message is saved before it is sent and every decision is written on it: suppressed with a
reason (opted out, undeliverable, no address), held for quiet hours with ``send_after``,
or queued. Held and retrying messages are released by the sweep, so nothing depends on a
timer that a Redis restart could lose."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from linkpay.config import parse_hhmm
from linkpay.db import defer_job
from linkpay.i18n import normalize_language
from linkpay.models import Account, Channel, Contact, Message, MessageStatus
from linkpay.queue import BULK, DEFAULT, HIGH, JobSpec
from linkpay.quiet_hours import next_allowed, recipient_zones
from linkpay.rendering import render_email, render_sms
from linkpay.runtime import runtime

OPTED_OUT, UNDELIVERABLE, NO_PHONE, NO_EMAIL = "opted_out", "undeliverable", "no_phone", "no_email"
QUIET_HOURS = "quiet_hours"
# Kinds sent even to a number that opted out: only the confirmation of that opt-out.
STOP_CONFIRMATION = "sms_stopped"
PASSES_OPT_OUT = frozenset({STOP_CONFIRMATION})
STALLED_AFTER = dt.timedelta(minutes=10)
# Messages per send job in bulk: RQ and the database are paid once per job, not per message.
BATCH_SIZE = 50
PRIORITY = {"high": HIGH, "default": DEFAULT, "bulk": BULK}


@dataclass(frozen=True)
class Decision:
    status: MessageStatus
    reason: str | None = None
    send_after: dt.datetime | None = None


def queue_message(
    session: Session,
    account: Account,
    channel: Channel,
    kind: str,
    *,
    priority: str = "default",
    **fields,
) -> Message:
    """Render, decide, save and (after commit) queue one message to ``account``."""
    message = build_message(session, account, channel, kind, **fields)
    return _save_and_queue(session, message, priority)


def queue_text(
    session: Session,
    phone: str,
    kind: str,
    language: str,
    *,
    account: Account | None = None,
    context: dict | None = None,
    solicited: bool = True,
    **links,
) -> Message:
    """Render, decide, save and (after commit) queue one text to ``phone``: the number that
    texted us, which may be on no account, on ``account``, or on several. Replies to a
    customer's own text are solicited (sent at once, on the high queue)."""
    context = {"account": account, "org": org_context(), **(context or {})}
    rendered = render_sms(kind, language, **context)
    decision = _decide_text(session, phone, kind, account, solicited)
    message = Message(
        account_id=account.id if account is not None else None,
        channel=Channel.SMS,
        kind=kind,
        language=language,
        to_address=phone,
        body=rendered.body,
        segments=rendered.segments,
        solicited=solicited,
        status=decision.status,
        skip_reason=decision.reason,
        send_after=decision.send_after,
        created_at=runtime().now(),
        **links,
    )
    return _save_and_queue(session, message, "high")


def _decide_text(
    session: Session, phone: str, kind: str, account: Account | None, solicited: bool
) -> Decision:
    if not phone:
        return Decision(MessageStatus.SUPPRESSED, NO_PHONE)
    block = block_applies(kind, contact_blocks(session, Channel.SMS, [phone]).get(phone))
    if block:
        return Decision(MessageStatus.SUPPRESSED, block)
    recipient = account if account is not None else Account(phone=phone, zip=None)
    when = send_time(recipient, solicited=solicited)
    if when > runtime().now():
        return Decision(MessageStatus.SCHEDULED, QUIET_HOURS, when)
    return Decision(MessageStatus.QUEUED)


def block_applies(kind: str, block: str | None) -> str | None:
    """The block that stops a message of ``kind``. The STOP confirmation is the one text
    an opted-out number still gets (carriers and the CTIA expect it); an undeliverable
    mark stops it like any other."""
    if block == OPTED_OUT and kind in PASSES_OPT_OUT:
        return None
    return block


def _save_and_queue(session: Session, message: Message, priority: str) -> Message:
    session.add(message)
    session.flush()
    if message.status == MessageStatus.QUEUED:
        spec = send_job(message, priority)
        message.job_id = spec.job_id
        defer_job(session, spec)
    return message


def build_message(
    session: Session,
    account: Account,
    channel: Channel,
    kind: str,
    *,
    context: dict | None = None,
    solicited: bool = False,
    blocked: dict[str, str] | None = None,
    language: str | None = None,
    **links,
) -> Message:
    """A rendered, decided message row, not yet added. ``links`` are foreign keys
    (link_id, campaign_id, payment_id); ``blocked`` is a preloaded contact_blocks() map;
    ``language`` overrides the account's (a reply in the language the customer used)."""
    context = {"account": account, "org": org_context(), **(context or {})}
    address = account.phone if channel == Channel.SMS else account.email
    lang = normalize_language(language or account.language)
    if channel == Channel.SMS:
        rendered = render_sms(kind, lang, **context)
    else:
        rendered = render_email(kind, lang, **context)
    decision = decide(session, account, channel, address, solicited=solicited, blocked=blocked)
    return Message(
        account_id=account.id,
        channel=channel,
        kind=kind,
        language=lang,
        to_address=address,
        subject=rendered.subject,
        body=rendered.body,
        html_body=rendered.html,
        segments=rendered.segments,
        solicited=solicited,
        status=decision.status,
        skip_reason=decision.reason,
        send_after=decision.send_after,
        created_at=runtime().now(),
        **links,
    )


def decide(
    session: Session,
    account: Account,
    channel: Channel,
    address: str | None,
    *,
    solicited: bool = False,
    blocked: dict[str, str] | None = None,
) -> Decision:
    if not address:
        return Decision(MessageStatus.SUPPRESSED, NO_PHONE if channel == Channel.SMS else NO_EMAIL)
    if blocked is None:
        blocked = contact_blocks(session, channel, [address])
    if address in blocked:
        return Decision(MessageStatus.SUPPRESSED, blocked[address])
    when = send_time(account, solicited=solicited)
    if when > runtime().now():
        return Decision(MessageStatus.SCHEDULED, QUIET_HOURS, when)
    return Decision(MessageStatus.QUEUED)


def send_time(account: Account, *, solicited: bool) -> dt.datetime:
    """Now, or the end of the recipient's quiet hours. A reply to the customer's own text
    goes at once: they asked, at an hour they chose."""
    now = runtime().now()
    if solicited:
        return now
    config = runtime().config
    zones = recipient_zones(account.phone, account.zip, config["app.timezone"])
    start = dt.time(*parse_hhmm(config["compliance.quiet_start"], "compliance.quiet_start"))
    end = dt.time(*parse_hhmm(config["compliance.quiet_end"], "compliance.quiet_end"))
    return next_allowed(now, zones, start, end)


def contact_blocks(session: Session, channel: Channel, addresses: Iterable[str]) -> dict[str, str]:
    """Which of ``addresses`` must not be sent to, and why (one query for many)."""
    wanted = list({a for a in addresses if a})
    blocks: dict[str, str] = {}
    for start in range(0, len(wanted), 1000):
        rows = session.execute(
            select(Contact.address, Contact.opted_out_at, Contact.undeliverable_at).where(
                Contact.channel == channel,
                Contact.address.in_(wanted[start : start + 1000]),
                or_(Contact.opted_out_at.is_not(None), Contact.undeliverable_at.is_not(None)),
            )
        )
        for address, opted_out_at, _undeliverable_at in rows:
            blocks[address] = OPTED_OUT if opted_out_at else UNDELIVERABLE
    return blocks


def send_job(message: Message, priority: str = "default") -> JobSpec:
    """The job for one message. Its id names the message, the attempt and the release
    time, so a duplicate enqueue is a no-op while a retry or a release is a new job."""
    job_id = f"message-{message.id}-{message.attempts}"
    if message.send_after is not None:
        job_id += f"-{int(message.send_after.timestamp())}"
    queue = HIGH if message.solicited else PRIORITY[priority]
    return JobSpec("jobs.messages.send_message", args=(message.id,), job_id=job_id, queue=queue)


def batch_jobs(message_ids: list[int], queue: str, name: str) -> list[JobSpec]:
    """Send jobs for many messages, ``BATCH_SIZE`` a job, ids ``<name>-<first id>-<count>``."""
    specs = []
    for start in range(0, len(message_ids), BATCH_SIZE):
        chunk = list(message_ids[start : start + BATCH_SIZE])
        specs.append(
            JobSpec(
                "jobs.messages.send_messages",
                args=(chunk,),
                job_id=f"{name}-{chunk[0]}-{len(chunk)}",
                queue=queue,
            )
        )
    return specs


def assign_jobs(session: Session, specs: list[JobSpec]) -> None:
    """Write each batch job's id on its messages, then queue it once the session commits."""
    for spec in specs:
        (message_ids,) = spec.args
        session.execute(
            update(Message)
            .where(Message.id.in_(message_ids))
            .values(job_id=spec.job_id)
            .execution_options(synchronize_session=False)
        )
        defer_job(session, spec)


def release_due(session: Session, limit: int = 5000) -> int:
    """Move scheduled messages whose time has come back to queued, and queue their jobs.
    The conditional UPDATE is the claim: two sweeps at once release each message once."""
    now = runtime().now()
    due = session.scalars(
        select(Message.id)
        .where(Message.status == MessageStatus.SCHEDULED, Message.send_after <= now)
        .order_by(Message.send_after)
        .limit(limit)
    ).all()
    released = _claim(session, due, MessageStatus.SCHEDULED, MessageStatus.QUEUED)
    by_queue: dict[str, list[int]] = {}
    for message_id, solicited, campaign_id in released:
        by_queue.setdefault(_queue(solicited, campaign_id), []).append(message_id)
    for queue, ids in by_queue.items():
        assign_jobs(session, batch_jobs(ids, queue, f"release-{int(now.timestamp())}"))
    return len(released)


def requeue_stalled(session: Session, limit: int = 5000) -> int:
    """Queue again the messages queued long ago whose job is not alive: Redis lost it, or
    it failed before it could claim them (a database blip). A job still waiting behind a
    long campaign is left alone. Returns how many jobs were queued again."""
    cutoff = runtime().now() - STALLED_AFTER
    stalled = session.execute(
        select(Message.id, Message.job_id, Message.solicited, Message.campaign_id)
        .where(
            Message.status == MessageStatus.QUEUED,
            or_(
                and_(Message.send_after.is_(None), Message.created_at < cutoff),
                Message.send_after < cutoff,
            ),
        )
        .limit(limit)
    ).all()
    by_job: dict[tuple[str, str], list[int]] = {}
    for message_id, job_id, solicited, campaign_id in stalled:
        key = (job_id or f"message-{message_id}-requeued", _queue(solicited, campaign_id))
        by_job.setdefault(key, []).append(message_id)
    specs = [
        JobSpec("jobs.messages.send_messages", args=(ids,), job_id=job_id, queue=queue)
        for (job_id, queue), ids in by_job.items()
    ]
    return runtime().queue.enqueue_many(specs)


def _claim(session: Session, ids: list[int], old: MessageStatus, new: MessageStatus) -> list:
    claimed = []
    for start in range(0, len(ids), 1000):
        result = session.execute(
            update(Message)
            .where(Message.id.in_(ids[start : start + 1000]), Message.status == old)
            .values(status=new, updated_at=runtime().now())
            .returning(Message.id, Message.solicited, Message.campaign_id)
            .execution_options(synchronize_session=False)
        )
        claimed.extend(result.all())
    return claimed


def _queue(solicited: bool, campaign_id: int | None) -> str:
    """Replies first; a campaign held overnight stays on the bulk queue at 08:00 rather
    than crowding out single links and receipts."""
    if solicited:
        return HIGH
    return BULK if campaign_id is not None else DEFAULT


def org_context() -> dict:
    config = runtime().config
    return {
        "name": config["org.name"],
        "support_phone": config["org.support_phone"],
        "support_email": config["org.support_email"],
    }
