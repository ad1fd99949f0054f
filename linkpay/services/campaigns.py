"""Campaigns: a payment link to many accounts at once, by SMS, email or both.

Built for 100,000 accounts in one run without holding them in memory: accounts are read in
chunks (keyset pagination on id), each chunk's links and messages are inserted in bulk,
committed, and only then are its send jobs queued (on the bulk queue, so a campaign never
delays a reply to a customer's own text). A crash mid-campaign leaves the earlier chunks
committed and queued; the sweep's ``requeue_stalled`` picks up queued rows whose jobs were
lost, and running the same campaign again skips the accounts already sent to (below).
Chunks run side by side in worker processes, one per CPU (``fanout.ChunkPool``); what one
chunk does is in campaign_chunk.py.

Each message gets the same decision a single send gets (``messages.decide``): suppressed
with a reason, held for quiet hours, or queued. Before that, whole accounts are skipped:

- ``no_balance``: nothing to pay (balance of zero or less);
- ``duplicate``: the account is named twice in the accounts file (the first one counts);
- ``recently_sent``: a link from any campaign went to the account in the last 24 hours, so
  two staff members sending the same list, or a re-run after a crash, texts nobody twice;
- ``unknown_account``: the accounts file names an account number that does not exist.

Counts of queued, deferred and per-channel reasons are of messages (an account sent by
"both" has two); the account-level reasons above count accounts. No link is made for an
account whose every message is suppressed: it could not reach anyone."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from sqlalchemy import Select, select, update
from sqlalchemy.orm import Session

from linkpay.models import Account, Campaign, Channel
from linkpay.runtime import runtime
from linkpay.services import audit, links
from linkpay.services.campaign_chunk import send_chunk
from linkpay.services.fanout import ChunkPool

CHUNK_SIZE = 2000
MAX_WORKERS = 4  # beyond a few, PostgreSQL's own CPU becomes the limit
DUPLICATE, UNKNOWN = "duplicate", "unknown_account"
UNKNOWN_SAMPLE = 20


@dataclass
class CampaignResult:
    campaign_id: int
    accounts: int = 0  # distinct existing accounts considered
    links: int = 0
    queued: int = 0
    deferred: int = 0  # held for quiet hours; the sweep sends them when allowed
    suppressed: Counter = field(default_factory=Counter)  # reason -> count
    unknown: list[str] = field(default_factory=list)  # the first UNKNOWN_SAMPLE of them

    def add(self, other: CampaignResult) -> None:
        """Fold one chunk's counts in (its unknown numbers are listed by the caller)."""
        self.accounts += other.accounts
        self.links += other.links
        self.queued += other.queued
        self.deferred += other.deferred
        self.suppressed.update(other.suppressed)

    def skip(self, reason: str, count: int = 1) -> None:
        if count:  # no zero entries: the counts list only what happened
            self.suppressed[reason] += count

    @property
    def suppressed_total(self) -> int:
        return sum(self.suppressed.values())

    def as_counts(self) -> dict:
        return {
            "accounts": self.accounts,
            "links": self.links,
            "queued": self.queued,
            "deferred": self.deferred,
            "suppressed": dict(sorted(self.suppressed.items())),
            "unknown_sample": self.unknown,
        }


def send_campaign(
    session: Session,
    name: str,
    channel: str,
    targets: Select | Iterable[str],
    actor: str,
    *,
    chunk_size: int = CHUNK_SIZE,
    workers: int | None = None,
) -> CampaignResult:
    """Send a link to every account in ``targets``: a ``select(Account)`` query, or account
    numbers (as read from a file). Each chunk is its own transaction, run in a worker
    process when ``fanout`` can use them; ``session`` holds the campaign row and its counts,
    committed after every chunk."""
    channels = links.channels_for(channel)
    campaign = Campaign(name=name, channel=channel, created_by=actor, created_at=runtime().now())
    session.add(campaign)
    session.flush()
    audit.record(session, "campaign.send", actor=actor, subject=campaign, channel=channel)
    session.commit()
    result = CampaignResult(campaign.id)
    if isinstance(targets, Select):
        chunks = _id_chunks(session, targets, chunk_size)
    else:
        chunks = _number_chunks(targets, chunk_size, result)
    work = _ChunkWork(campaign.id, channel, channels)
    pool = ChunkPool(work, workers=workers or _workers(), on_start=_own_connections)
    unknown: dict[int, list[str]] = {}  # chunk -> its unknown numbers, to list them in order
    for index, partial in pool.map((i, *chunk) for i, chunk in enumerate(chunks)):
        result.add(partial)
        if partial.unknown:
            unknown[index] = partial.unknown
            result.unknown = [n for i in sorted(unknown) for n in unknown[i]][:UNKNOWN_SAMPLE]
        _save_counts(session, result)
        session.commit()
    return result


@dataclass(frozen=True)
class _ChunkWork:
    """One chunk, start to finish, in its own unit of work: load the accounts, insert links
    and messages, commit, and only then queue the send jobs (``db.defer_job``: a job must
    never run before its rows exist). Returns the chunk's index and counts."""

    campaign_id: int
    channel: str
    channels: list[Channel]

    def __call__(self, chunk: tuple[int, str, list]) -> tuple[int, CampaignResult]:
        index, kind, values = chunk
        partial = CampaignResult(self.campaign_id)
        with runtime().db.session() as session:  # commits, and then queues the jobs
            accounts = _load(session, kind, values, partial)
            send_chunk(session, self.campaign_id, self.channels, self.channel, accounts, partial)
        return index, partial


def _workers() -> int:
    rt = runtime()
    if rt.queue.embedded or rt.db.engine.dialect.name != "postgresql":
        return 1  # see fanout: other processes cannot reach an in-process queue
    return min(MAX_WORKERS, os.cpu_count() or 1)


def _own_connections() -> None:
    # In a forked worker: leave the parent's pooled connections alone, open new ones.
    runtime().db.engine.dispose(close=False)


def _id_chunks(session: Session, query: Select, size: int) -> Iterator[tuple[str, list[int]]]:
    """Keyset pagination over the ids alone: each page is its own short query, so nothing
    stays open between chunks, and rows added meanwhile (an import) cannot shift pages."""
    last_id = 0
    query = query.with_only_columns(Account.id).order_by(None).order_by(Account.id).limit(size)
    while True:
        ids = list(session.scalars(query.where(Account.id > last_id)))
        if not ids:
            return
        last_id = ids[-1]
        yield "ids", ids


def _number_chunks(
    numbers: Iterable[str], size: int, result: CampaignResult
) -> Iterator[tuple[str, list[str]]]:
    unique: list[str] = []
    seen: set[str] = set()
    for raw in numbers:
        number = raw.strip()
        if not number:
            continue
        if number in seen:
            result.skip(DUPLICATE)
        else:
            seen.add(number)
            unique.append(number)
    del seen
    for start in range(0, len(unique), size):
        yield "numbers", unique[start : start + size]


def _load(session: Session, kind: str, values: list, partial: CampaignResult) -> list:
    """The chunk's accounts, as plain rows: a row answers ``account.phone``,
    ``account.first_name``... as an Account does (all that deciding and the link templates
    read) at less than half the cost of building ORM objects that would be dropped anyway."""
    column = Account.id if kind == "ids" else Account.account_number
    query = select(*Account.__table__.columns).where(column.in_(values)).order_by(Account.id)
    accounts = session.execute(query).all()
    if kind == "numbers":
        found = {account.account_number for account in accounts}
        missing = [number for number in values if number not in found]
        partial.skip(UNKNOWN, len(missing))
        partial.unknown = missing[:UNKNOWN_SAMPLE]
    return accounts


def _save_counts(session: Session, result: CampaignResult) -> None:
    session.execute(
        update(Campaign)
        .where(Campaign.id == result.campaign_id)
        .values(counts=result.as_counts())
        .execution_options(synchronize_session=False)
    )
