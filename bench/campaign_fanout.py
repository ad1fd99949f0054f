"""Campaign fan-out benchmark, run by hand: how fast does ``send_campaign`` turn 100,000
accounts into links, messages and queued send jobs, next to raw RQ ``enqueue_many``?

    LINKPAY_APP_DATABASE_URL=... python bench/campaign_fanout.py   # migrates it first
    python bench/campaign_fanout.py [--accounts 100000] [--chunk-size 2000] [--workers N]

PostgreSQL from LINKPAY_APP_DATABASE_URL (default the ``linkpay_bench`` database) and Redis
from LINKPAY_APP_REDIS_URL (default db 10, flushed at the start and the end). The database
may be shared with other benchmarks: this one only touches accounts numbered ``CFO-...``
and the campaigns, links and messages it made itself, and never drops anything.

The campaign is timed from its first query to its last commit, with every send job on the
bulk queue (SMS, clock at 11:00 in the accounts' zone, so nothing is held). Raw RQ is
timed enqueueing as many no-op jobs, before and after the campaign, and the faster run
kept. The ratio compares messages queued per second with raw jobs per second: campaign
messages travel in batch jobs (``messages.batch_jobs``), which is how a campaign can go
faster per message than RQ can enqueue single jobs.

Targets: 100,000 accounts in at most 20 s, at least half the rate of raw ``enqueue_many``,
peak RSS at most 300 MB (this process and, separately, each worker process)."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import sys
import time
from pathlib import Path

# Run as a script from anywhere: the repository root must come before an editable
# install's finder, which may predate packages added since (webhooks/, jobs/).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

os.environ.setdefault(
    "LINKPAY_APP_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/linkpay_bench"
)
os.environ.setdefault("LINKPAY_APP_REDIS_URL", "redis://127.0.0.1:6379/10")
os.environ.setdefault("LINKPAY_APP_SECRET_KEY", "bench-secret-key")
os.environ.setdefault("LINKPAY_APP_BASE_URL", "https://pay.springfieldwtr.org")  # 30 chars

from redis import Redis  # noqa: E402
from rq import Queue  # noqa: E402
from sqlalchemy import delete, func, insert, select  # noqa: E402

from linkpay import create_app  # noqa: E402
from linkpay.cli.db import upgrade  # noqa: E402
from linkpay.models import Account, AuditEvent, Campaign, Link, Message  # noqa: E402
from linkpay.queue import BULK  # noqa: E402
from linkpay.runtime import runtime  # noqa: E402
from linkpay.services.campaigns import send_campaign  # noqa: E402

PREFIX = "CFO-"
CAMPAIGN_NAME = "bench: campaign fan-out"
RAW_QUEUE = "bench-raw-enqueue-many"
# 11:00 in Phoenix, where every bench phone and ZIP is: outside quiet hours.
NOT_QUIET = dt.datetime.now(dt.UTC).replace(hour=18, minute=0, second=0, microsecond=0)


def main() -> None:
    args = parse_args()
    upgrade(os.environ["LINKPAY_APP_DATABASE_URL"])
    app = create_app()
    rt = app.extensions["linkpay"]
    rt.clock = lambda: NOT_QUIET
    with app.app_context():
        rt.queue.connection.flushdb()
        ensure_accounts(args.accounts)
        forget_earlier_runs()
        # RQ alone is timed before and after the campaign and the faster run kept: on a
        # shared machine this gives the baseline its best chance, not the campaign.
        raw = [time_raw_enqueue(rt.queue.connection, args.accounts)]
        busy_before, cpu_before = box_busy_seconds(), process_cpu_seconds()
        campaign_seconds, result = time_campaign(args.chunk_size, args.workers)
        busy, cpu = box_busy_seconds() - busy_before, process_cpu_seconds() - cpu_before
        raw.append(time_raw_enqueue(rt.queue.connection, args.accounts))
        rt.queue.connection.flushdb()
    report(args.accounts, campaign_seconds, result, raw)
    print(
        f"CPU during the campaign: this process and its workers {cpu:.1f} s "
        f"({cpu / result.accounts * 1e6:.0f} µs per account); whole machine busy "
        f"{busy:.1f} of {campaign_seconds * (os.cpu_count() or 1):.1f} CPU-seconds"
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--chunk-size", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=None, help="default: one per CPU")
    return parser.parse_args()


def ensure_accounts(wanted: int) -> None:
    """Create the CFO-numbered accounts that are missing, 10,000 rows per statement."""
    with runtime().db.session() as session:
        have = session.scalar(select(func.count()).where(Account.account_number.like(f"{PREFIX}%")))
    for start in range(have, wanted, 10_000):
        rows = [account_row(n) for n in range(start, min(start + 10_000, wanted))]
        with runtime().db.session() as session:
            session.execute(insert(Account), rows)
    print(f"accounts: {wanted} ({max(wanted - have, 0)} created)")


def account_row(n: int) -> dict:
    now = dt.datetime.now(dt.UTC)
    return {
        "account_number": f"{PREFIX}{n:07d}",
        "first_name": ("María", "Maximiliano", "Ana", "José")[n % 4],
        "last_name": "Bench",
        "phone": f"+1602{2_000_000 + n:07d}",  # distinct, valid Phoenix numbers
        "email": f"cfo{n}@example.com",
        "balance_cents": 1000 + n % 1_000_000,
        "due_date": dt.date(2026, 9, 30),
        "zip": "85004",
        "language": "es" if n % 3 == 0 else "en",
        "created_at": now,
        "updated_at": now,
    }


def forget_earlier_runs() -> None:
    """Delete what earlier runs of this benchmark made, so its accounts are not skipped as
    "sent a campaign link in the last 24 hours"."""
    with runtime().db.session() as session:
        ids = select(Campaign.id).where(Campaign.name == CAMPAIGN_NAME).scalar_subquery()
        session.execute(delete(Message).where(Message.campaign_id.in_(ids)))
        session.execute(delete(Link).where(Link.campaign_id.in_(ids)))
        session.execute(
            delete(AuditEvent).where(
                AuditEvent.subject_type == "Campaign", AuditEvent.subject_id.in_(ids)
            )
        )
        session.execute(delete(Campaign).where(Campaign.name == CAMPAIGN_NAME))
    with runtime().db.engine.connect() as connection:  # fresh statistics for the planner
        connection.exec_driver_sql("ANALYZE accounts, links, messages, contacts")


def time_campaign(chunk_size: int, workers: int | None):
    # The id range lets PostgreSQL walk the primary key page by page (as it does for
    # --all-with-balance); with LIKE alone it misjudges the prefix and sorts every page.
    with runtime().db.session() as session:
        low, high = session.execute(
            select(func.min(Account.id), func.max(Account.id)).where(
                Account.account_number.like(f"{PREFIX}%")
            )
        ).one()
    targets = select(Account).where(
        Account.id.between(low, high), Account.account_number.like(f"{PREFIX}%")
    )
    session = runtime().db.sessions()
    try:
        started = time.perf_counter()
        result = send_campaign(
            session,
            CAMPAIGN_NAME,
            "sms",
            targets,
            "staff:bench",
            chunk_size=chunk_size,
            workers=workers,
        )
        seconds = time.perf_counter() - started
    finally:
        session.close()
    jobs = runtime().queue.queues[BULK].jobs
    carried = sum(len(job.args[0]) for job in jobs)  # send jobs carry messages in batches
    assert carried == result.queued, f"{carried} messages on the bulk queue, {result.queued}"
    print(f"send jobs on the bulk queue: {len(jobs)} (carrying {carried} messages)")
    return seconds, result


def time_raw_enqueue(connection: Redis, count: int, chunk_size: int = 2000) -> float:
    """The floor: RQ's own bulk enqueue of no-op jobs, prepared and pipelined in chunks,
    with the same job options the service uses (an id each, the same TTLs)."""
    queue = Queue(RAW_QUEUE, connection=connection)
    queue.empty()  # a previous run's jobs, which share these ids
    started = time.perf_counter()
    for start in range(0, count, chunk_size):
        data = [
            Queue.prepare_data(
                "builtins.len",
                args=(n,),
                job_id=f"raw-{n}-0",
                result_ttl=600,
                failure_ttl=7 * 24 * 3600,
            )
            for n in range(start, min(start + chunk_size, count))
        ]
        with connection.pipeline() as pipe:
            queue.enqueue_many(data, pipeline=pipe)
            pipe.execute()
    seconds = time.perf_counter() - started
    assert queue.count == count
    return seconds


def process_cpu_seconds() -> float:
    """CPU used by this process and by its finished children (the campaign's workers)."""
    mine = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return mine.ru_utime + mine.ru_stime + children.ru_utime + children.ru_stime


def box_busy_seconds() -> float:
    """CPU-seconds the whole machine has spent busy (Linux /proc/stat), to show whether
    the campaign was short of CPU: PostgreSQL and Redis run on the same cores."""
    with open("/proc/stat") as handle:
        fields = [int(n) for n in handle.readline().split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def report(accounts: int, campaign_seconds: float, result, raw: list[float]) -> None:
    campaign_rate = result.queued / campaign_seconds
    raw_rate = accounts / min(raw)
    parent_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    worker_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # largest one
    print(
        f"campaign: {accounts} accounts, {result.links} links, {result.queued} queued, "
        f"suppressed {dict(result.suppressed)}"
    )
    print(f"campaign wall time: {campaign_seconds:.2f} s ({campaign_rate:,.0f} messages/s)")
    print(
        f"raw RQ enqueue_many: {min(raw):.2f} s ({raw_rate:,.0f} jobs/s); "
        f"runs: {', '.join(f'{r:.2f} s' for r in raw)}"
    )
    print(f"ratio campaign/raw: {campaign_rate / raw_rate:.2f}")
    print(f"peak RSS: {parent_mb:.0f} MB (this process), {worker_mb:.0f} MB (largest worker)")
    checks = {
        "wall time <= 20 s": campaign_seconds <= 20 * accounts / 100_000,
        "ratio >= 0.5": campaign_rate / raw_rate >= 0.5,
        "peak RSS <= 300 MB": max(parent_mb, worker_mb) <= 300,
    }
    for name, ok in checks.items():
        print(f"{'PASS' if ok else 'FAIL'} {name}")


if __name__ == "__main__":
    main()
