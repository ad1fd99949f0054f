"""One chunk of a campaign: which accounts get a link, their links and messages in bulk,
and their batch send jobs, queued once the chunk's transaction commits (see campaigns.py).

Each message gets the decision a single send gets (``messages.decide``) and the context a
single send renders (``links.link_context``); rows are built as ``messages.build_message``
builds them, and rendered in one batch per channel and language (rendering.render_sms_batch).
Which accounts' texts say "Reply PAY" (Pay by Text on) is one query for the whole chunk."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from linkpay.db import defer_job
from linkpay.i18n import normalize_language
from linkpay.models import Account, Channel, Link, Message, MessageStatus
from linkpay.queue import BULK
from linkpay.rendering import Rendered, render_email_batch, render_sms_batch
from linkpay.runtime import runtime
from linkpay.services import links, messages, text_enrollment
from linkpay.services.bulk_insert import insert_rows, reserve_ids

if TYPE_CHECKING:
    from linkpay.services.campaigns import CampaignResult

KIND = "link"
NO_BALANCE, RECENTLY_SENT = "no_balance", "recently_sent"
REPEAT_WINDOW = dt.timedelta(hours=24)


@dataclass
class _Plan:
    """What one account gets: its decided messages, and whether it needs a link."""

    account: Account
    decisions: list[tuple[Channel, str | None, messages.Decision]]

    @property
    def reachable(self) -> bool:
        return any(d.status != MessageStatus.SUPPRESSED for _, _, d in self.decisions)


def send_chunk(
    session: Session,
    campaign_id: int,
    channels: list[Channel],
    channel: str,
    accounts: list[Account],
    result: CampaignResult,
) -> None:
    """Insert one chunk's links and messages, with their send jobs to be queued when the
    session commits. ``accounts`` are Account objects or rows of the accounts table."""
    result.accounts += len(accounts)
    batch = _Batch.now(campaign_id, channel)
    plans = _plan(session, channels, _eligible(session, accounts, result))
    link_ids = _insert_links(session, batch, [plan for plan in plans if plan.reachable])
    result.links += len(link_ids)
    rows = _message_rows(batch, plans, link_ids, _reply_pay_offers(session, channels, plans))
    for row in rows:
        _count(result, row)
    _insert_messages(session, campaign_id, rows)


def _insert_messages(session: Session, campaign_id: int, rows: list[dict]) -> None:
    """Insert the message rows with their batch send jobs, queued when the chunk commits
    (db.defer_job), on the bulk queue: RQ is paid once per batch of messages, and a
    campaign never delays a reply to a customer's own text.

    Each queued row records its job's id (the sweep asks Redis whether that job is still
    alive). On PostgreSQL the ids are taken first, so the rows are written once, job id
    included; elsewhere they are numbered by the insert and the job ids written after."""
    name = f"campaign-{campaign_id}"
    ids = reserve_ids(session, Message, len(rows))
    if ids is None:
        ids = insert_rows(session, Message, rows)
        messages.assign_jobs(session, messages.batch_jobs(_queued(ids, rows), BULK, name))
        return
    specs = messages.batch_jobs(_queued(ids, rows), BULK, name)
    job_of = {message_id: spec.job_id for spec in specs for message_id in spec.args[0]}
    for message_id, row in zip(ids, rows, strict=True):
        row["job_id"] = job_of.get(message_id)
    insert_rows(session, Message, rows, ids)
    for spec in specs:
        defer_job(session, spec)


def _queued(ids: list[int], rows: list[dict]) -> list[int]:
    return [i for i, row in zip(ids, rows, strict=True) if row["status"] == MessageStatus.QUEUED]


@dataclass(frozen=True)
class _Batch:
    """What every row of one chunk shares: one timestamp, one expiry, the org's details."""

    campaign_id: int
    channel: str
    created_at: dt.datetime
    expires_at: dt.datetime
    org: dict

    @classmethod
    def now(cls, campaign_id: int, channel: str) -> _Batch:
        now = runtime().now()
        ttl = dt.timedelta(hours=runtime().config["links.ttl_hours"])
        return cls(campaign_id, channel, now, now + ttl, messages.org_context())


def _eligible(session: Session, accounts: list[Account], result: CampaignResult) -> list[Account]:
    """Drop the accounts skipped whole (see campaigns.py), counting why: nothing to pay,
    or a link from a campaign in the last day."""
    with_balance = [a for a in accounts if a.balance_cents > 0]
    result.skip(NO_BALANCE, len(accounts) - len(with_balance))
    if not with_balance:
        return []
    since = runtime().now() - REPEAT_WINDOW
    recent = set(
        session.scalars(
            select(Link.account_id)
            .where(
                Link.account_id.in_([a.id for a in with_balance]),
                Link.campaign_id.is_not(None),
                Link.created_at >= since,
            )
            .distinct()
        )
    )
    result.skip(RECENTLY_SENT, len(recent))
    return [a for a in with_balance if a.id not in recent]


def _plan(session: Session, channels: list[Channel], accounts: list[Account]) -> list[_Plan]:
    """Decide every message of the chunk with one contact lookup per channel."""
    blocked = {
        each: messages.contact_blocks(session, each, (_address(a, each) for a in accounts))
        for each in channels
    }
    plans = []
    for account in accounts:
        decisions = []
        for each in channels:
            address = _address(account, each)
            decision = messages.decide(session, account, each, address, blocked=blocked[each])
            decisions.append((each, address, decision))
        plans.append(_Plan(account, decisions))
    return plans


def _insert_links(session: Session, batch: _Batch, plans: list[_Plan]) -> dict[int, int]:
    """The chunk's links in one bulk insert; account id -> link id."""
    if not plans:
        return {}
    rows = [
        {
            "account_id": plan.account.id,
            "campaign_id": batch.campaign_id,
            "channel": batch.channel,
            "created_at": batch.created_at,
            "expires_at": batch.expires_at,
        }
        for plan in plans
    ]
    ids = insert_rows(session, Link, rows)
    return {plan.account.id: link_id for plan, link_id in zip(plans, ids, strict=True)}


def _reply_pay_offers(
    session: Session, channels: list[Channel], plans: list[_Plan]
) -> dict[int, dict]:
    """Pay by Text offers for the chunk's texts that will go out, in one query."""
    if Channel.SMS not in channels:
        return {}
    texted = [
        plan.account
        for plan in plans
        if any(
            channel == Channel.SMS and decision.status != MessageStatus.SUPPRESSED
            for channel, _, decision in plan.decisions
        )
    ]
    return text_enrollment.reply_pay_offers(session, texted) if texted else {}


def _message_rows(
    batch: _Batch, plans: list[_Plan], link_ids: dict[int, int], offers: dict[int, dict]
) -> list[dict]:
    """The chunk's message rows, as ``messages.build_message`` would make them. Only those
    that will be sent are rendered (a suppressed message is never read), in one batch per
    channel and language."""
    rows, waiting = [], defaultdict(list)  # (channel, language) -> [(row, context)]
    for plan in plans:
        link_id, context = link_ids.get(plan.account.id), None
        for channel, address, decision in plan.decisions:
            row = _row(plan.account, channel, address, decision, batch.created_at)
            row.update(link_id=link_id, campaign_id=batch.campaign_id)
            rows.append(row)
            if decision.status != MessageStatus.SUPPRESSED:
                offer = offers.get(plan.account.id)
                context = context or _context(batch, plan.account, link_id, offer)
                waiting[(channel, row["language"])].append((row, context))
    for (channel, lang), items in waiting.items():
        rendered = _render_batch(channel, lang, [context for _, context in items])
        for (row, _), each in zip(items, rendered, strict=True):
            row.update(
                subject=each.subject, body=each.body, html_body=each.html, segments=each.segments
            )
    return rows


def _context(batch: _Batch, account: Account, link_id: int, offer: dict | None) -> dict:
    # The same context a single send gets (links.link_context), from the row just inserted.
    link = _LinkRef(id=link_id, expires_at=batch.expires_at)
    return {"account": account, "org": batch.org, **links.link_context(account, link, offer)}


def _render_batch(channel: Channel, lang: str, contexts: list[dict]) -> list[Rendered]:
    if channel == Channel.SMS:
        return render_sms_batch(KIND, lang, contexts)
    return render_email_batch(KIND, lang, contexts)


def _row(
    account: Account,
    channel: Channel,
    address: str | None,
    decision: messages.Decision,
    now: dt.datetime,
) -> dict:
    # Every row has every key: a bulk insert takes one list of columns for all its rows.
    return {
        "account_id": account.id,
        "channel": channel,
        "kind": KIND,
        "language": normalize_language(account.language),
        "to_address": address,
        "subject": None,
        "body": "",
        "html_body": None,
        "segments": None,
        "solicited": False,
        "status": decision.status,
        "skip_reason": decision.reason,
        "send_after": decision.send_after,
        "attempts": 0,
        "created_at": now,
        "updated_at": now,
    }


def _count(result: CampaignResult, row: dict) -> None:
    if row["status"] == MessageStatus.QUEUED:
        result.queued += 1
    elif row["status"] == MessageStatus.SCHEDULED:
        result.deferred += 1
    else:
        result.skip(row["skip_reason"])


def _address(account: Account, channel: Channel) -> str | None:
    return account.phone if channel == Channel.SMS else account.email


@dataclass(frozen=True)
class _LinkRef:
    """What ``links.link_context`` reads from a link, for rows inserted in bulk."""

    id: int
    expires_at: dt.datetime
