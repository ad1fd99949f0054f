"""Delivery-rate benchmark, run by hand: how many SMS per second do two workers push through
the whole send path (claim, Twilio client over HTTP, record) against the fake Twilio API?

    LINKPAY_APP_DATABASE_URL=... linkpay db upgrade   # this script also runs it
    python bench/delivery_rate.py [--messages 5000] [--workers 2]

PostgreSQL from LINKPAY_APP_DATABASE_URL (default the ``linkpay_bench`` database) and Redis
from LINKPAY_APP_REDIS_URL (default db 9, flushed at the start and the end: it is this
benchmark's own). The database may be shared with other benchmarks: this one only touches
accounts numbered ``DLR-...`` and their messages, and never drops anything.

The workers are ``linkpay worker --burst`` processes configured through the environment
(Twilio credentials and ``twilio.api_base_url`` pointing at the fake, started here). Quiet
hours are set to an empty window (start = end) so the run does not depend on the hour;
the quiet-hours check itself still runs for every message.

The rate is the number of messages the fake accepted divided by the wall time from
starting the workers to the last of them exiting (start-up included). Target: >= 300/s.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Run as a script from anywhere: the repository root must come before an editable
# install's finder, which may predate packages added since (webhooks/, jobs/).
sys.path.insert(0, str(ROOT))

DATABASE_URL = os.environ.setdefault(
    "LINKPAY_APP_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/linkpay_bench"
)
REDIS_URL = os.environ.setdefault("LINKPAY_APP_REDIS_URL", "redis://127.0.0.1:6379/9")

from sqlalchemy import delete, insert, select  # noqa: E402

from linkpay import create_app  # noqa: E402
from linkpay.config import load_config  # noqa: E402
from linkpay.models import Account, Channel, Message, MessageStatus  # noqa: E402
from linkpay.queue import BULK  # noqa: E402
from linkpay.runtime import runtime  # noqa: E402
from linkpay.services.messages import assign_jobs, batch_jobs  # noqa: E402
from tests.fakes.fake_twilio import FakeTwilio  # noqa: E402

PREFIX = "DLR-"
ACCOUNT_SID = "AC" + "be9c" * 8
AUTH_TOKEN = "bench-twilio-auth-token"
AREA_CODES = ("602", "480", "520", "623", "928")  # Arizona: one zone, 50,000 numbers
BODY = (
    "Springfield Water: your balance of $123.45 is due 04/01. "
    "Pay securely: https://pay.springfieldwtr.org/p/AbCdEfGhIjKlMnOpQrStUv"
)


def main() -> None:
    args = parse_args()
    fake = FakeTwilio(ACCOUNT_SID, AUTH_TOKEN).start()
    env = worker_environment(fake.url)
    os.environ.update(env)
    upgrade_database(env)
    app = create_app(load_config())
    with app.app_context():
        runtime().queue.connection.flushdb()
        forget_earlier_runs()
        ids = create_messages(args.messages)
        enqueue(ids)
        seconds, cpu_seconds = run_workers(args.workers, env)
        sent = count_sent(ids)
        runtime().queue.connection.flushdb()
    fake.stop()
    report(args, len(fake.created), sent, seconds, cpu_seconds)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    if not 0 < args.messages <= len(AREA_CODES) * 10_000:
        parser.error(f"--messages must be between 1 and {len(AREA_CODES) * 10_000}")
    return args


def worker_environment(fake_url: str) -> dict[str, str]:
    return {
        "LINKPAY_APP_DATABASE_URL": DATABASE_URL,
        "LINKPAY_APP_REDIS_URL": REDIS_URL,
        "LINKPAY_APP_SECRET_KEY": "bench-secret-key",
        "LINKPAY_APP_BASE_URL": "https://pay.springfieldwtr.org",
        "LINKPAY_SMS_PROVIDER": "twilio",
        "LINKPAY_TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "LINKPAY_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "LINKPAY_TWILIO_FROM_NUMBER": "+16025550199",
        "LINKPAY_TWILIO_API_BASE_URL": fake_url,
        "LINKPAY_TWILIO_TIMEOUT_SECONDS": "10",
        "LINKPAY_COMPLIANCE_QUIET_START": "00:00",
        "LINKPAY_COMPLIANCE_QUIET_END": "00:00",
        "PYTHONPATH": str(ROOT),
    }


def upgrade_database(env: dict[str, str]) -> None:
    subprocess.run(["linkpay", "db", "upgrade"], env={**os.environ, **env}, check=True)


def forget_earlier_runs() -> None:
    with runtime().db.session() as session:
        ours = select(Account.id).where(Account.account_number.like(f"{PREFIX}%"))
        session.execute(delete(Message).where(Message.account_id.in_(ours)))
        session.execute(delete(Account).where(Account.account_number.like(f"{PREFIX}%")))


def create_messages(count: int) -> list[int]:
    """One account and one queued, rendered link SMS per number, in bulk statements."""
    now = runtime().now()
    phones = [f"+1{AREA_CODES[i // 10_000]}555{i % 10_000:04d}" for i in range(count)]
    with runtime().db.session() as session:
        account_ids = session.scalars(
            insert(Account).returning(Account.id),
            [
                {"account_number": f"{PREFIX}{i:06d}", "phone": phone, "zip": "85004"}
                for i, phone in enumerate(phones)
            ],
        ).all()
        return session.scalars(
            insert(Message).returning(Message.id),
            [
                {
                    "account_id": account_id,
                    "channel": Channel.SMS,
                    "kind": "link",
                    "to_address": phone,
                    "body": BODY,
                    "segments": 1,
                    "status": MessageStatus.QUEUED,
                    "created_at": now,
                }
                for account_id, phone in zip(account_ids, phones, strict=True)
            ],
        ).all()


def enqueue(ids: list[int]) -> None:
    """Queue the messages as a campaign does: in batches on the bulk queue."""
    with runtime().db.session() as session:
        assign_jobs(session, batch_jobs(ids, BULK, "bench"))


def run_workers(count: int, env: dict[str, str]) -> tuple[float, float]:
    """Start ``count`` burst workers at once: the seconds until the last one exits, and the
    CPU seconds they used together (to tell a slow path from a busy machine)."""
    cpu_before = _children_cpu()
    with tempfile.TemporaryDirectory() as cwd, open(Path(cwd) / "workers.log", "w") as log:
        started = time.perf_counter()
        workers = [
            subprocess.Popen(
                ["linkpay", "worker", "--burst"],
                cwd=cwd,
                env={**os.environ, **env},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            for _ in range(count)
        ]
        codes = [worker.wait() for worker in workers]
        seconds = time.perf_counter() - started
    if any(codes):
        raise SystemExit(f"a worker failed: exit codes {codes}")
    return seconds, _children_cpu() - cpu_before


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def count_sent(ids: list[int]) -> int:
    with runtime().db.session() as session:
        statuses = session.scalars(select(Message.status).where(Message.id.in_(ids))).all()
    return sum(1 for status in statuses if status == MessageStatus.SENT)


def report(
    args: argparse.Namespace, accepted: int, sent: int, seconds: float, cpu_seconds: float
) -> None:
    rate = accepted / seconds if seconds else 0.0
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"messages queued:          {args.messages}")
    print(f"workers:                  {args.workers} x linkpay worker --burst")
    print(f"accepted by fake Twilio:  {accepted}")
    print(f"rows marked sent:         {sent}")
    print(f"wall time:                {seconds:.2f} s")
    print(f"worker CPU per message:   {cpu_seconds / max(sent, 1) * 1000:.1f} ms")
    print(f"load average, CPUs:       {load} on {os.cpu_count()}")
    print(f"delivery rate:            {rate:.0f} messages/s (target >= 300)")
    if sent != args.messages or accepted != args.messages:
        raise SystemExit("not every message was sent exactly once")


if __name__ == "__main__":
    main()
