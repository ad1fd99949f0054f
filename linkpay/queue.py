"""The job queue: RQ over Redis in production, RQ over an in-process fakeredis when
``app.redis_url`` is empty. Jobs are named by dotted path so nothing here imports them.

Three queues, drained in priority order, so that a 100,000-account campaign never holds up
the answer to a customer's own text."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

import fakeredis
from redis import Redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry as RedisRetry
from rq import Queue, Retry, SimpleWorker
from rq.job import Job
from rq.scheduler import RQScheduler
from rq.timeouts import TimerDeathPenalty

from linkpay.unique_jobs import JobShape

log = logging.getLogger(__name__)

HIGH, DEFAULT, BULK = "linkpay-high", "linkpay", "linkpay-bulk"
QUEUE_NAMES = (HIGH, DEFAULT, BULK)
SWEEP_INTERVAL_SECONDS = 15
# How long a job's record outlives it: a finished one briefly (its id still refuses a
# repeat, e.g. a webhook delivered twice), a failed one for a week, for staff to look into.
RESULT_TTL = 600
FAILURE_TTL = 7 * 24 * 3600
# A web request must get an answer out within Twilio's 15 s even with Redis gone: give up
# after about a second, not redis-py's default of three retries up to ten seconds apart.
# One quick retry still covers a kept-alive connection Redis closed. (RQ's worker raises
# the read timeout on its own connection to outlast its blocking pops.)
FAIL_FAST = {
    "socket_connect_timeout": 1,
    "socket_timeout": 2,
    "retry": RedisRetry(ExponentialWithJitterBackoff(base=0.05, cap=0.2), 1),
}


@dataclass
class JobSpec:
    """One job to enqueue: ``func`` is a dotted path such as ``jobs.messages.send_message``."""

    func: str
    args: tuple = ()
    job_id: str | None = None
    queue: str = DEFAULT
    retry: Retry | None = None
    kwargs: dict = field(default_factory=dict)
    description: str | None = None  # what workers log; RQ's default spells out the args


class JobQueue:
    def __init__(self, redis_url: str):
        self.embedded = not redis_url
        if self.embedded:
            self.connection: Redis = fakeredis.FakeRedis(server=fakeredis.FakeServer())
        else:
            self.connection = Redis.from_url(redis_url, **FAIL_FAST)
        self.queues = {name: Queue(name, connection=self.connection) for name in QUEUE_NAMES}
        self._shapes: dict[tuple, JobShape] = {}

    def enqueue_unique(self, spec: JobSpec) -> bool:
        """Enqueue a job whose id must be new, in one round trip; False, and nothing
        queued, when a job of that id exists (waiting, running, or finished less than
        ``RESULT_TTL`` ago). Its description, which workers log, names the function but
        not the arguments."""
        retry = (spec.retry.max, tuple(spec.retry.intervals)) if spec.retry else None
        key = (spec.func, spec.queue, retry)
        shape = self._shapes.get(key)
        if shape is None:
            shape = self._shapes[key] = JobShape(
                self.queues[spec.queue],
                spec.func,
                retry=spec.retry,
                result_ttl=RESULT_TTL,
                failure_ttl=FAILURE_TTL,
            )
        description = spec.description or f"{spec.func}(...)"
        return shape.enqueue(self.connection, spec.job_id, spec.args, spec.kwargs, description)

    def enqueue(self, spec: JobSpec) -> bool:
        """Enqueue ``spec`` unless a job with its id is alive; True if it was enqueued."""
        return self.enqueue_many([spec]) == 1

    def enqueue_many(self, specs: Iterable[JobSpec]) -> int:
        """Enqueue a batch, one round trip per queue, and return how many were enqueued.

        A spec whose job id names a live job (waiting, running, scheduled) is skipped: that
        is what makes a double enqueue harmless. A dead record of the same id (finished,
        failed, or lost with Redis) is replaced, so a job that ran too early or crashed
        never blocks the one that should run now. Every linkpay job claims its rows, so a
        second run after a finished one changes nothing."""
        by_queue: dict[str, list[JobSpec]] = {}
        for spec in specs:
            by_queue.setdefault(spec.queue, []).append(spec)
        count = 0
        for name, batch in by_queue.items():
            batch = self._without_live_duplicates(batch)
            if not batch:
                continue
            data = [
                Queue.prepare_data(
                    s.func,
                    args=s.args,
                    kwargs=s.kwargs,
                    job_id=s.job_id,
                    retry=s.retry,
                    description=s.description,
                    result_ttl=RESULT_TTL,
                    failure_ttl=FAILURE_TTL,
                )
                for s in batch
            ]
            with self.connection.pipeline() as pipe:
                self.queues[name].enqueue_many(data, pipeline=pipe)
                pipe.execute()
            count += len(data)
        return count

    def _without_live_duplicates(self, batch: list[JobSpec]) -> list[JobSpec]:
        named = [s for s in batch if s.job_id]
        if not named:
            return batch
        with self.connection.pipeline() as pipe:
            for spec in named:
                pipe.hget(Job.key_for(spec.job_id), "status")
            statuses = dict(zip((s.job_id for s in named), pipe.execute(), strict=True))
        dead = [i for i, status in statuses.items() if status is not None and not _alive(status)]
        if dead:
            self.connection.delete(*(Job.key_for(i) for i in dead))
        seen: set[str] = set()
        kept = []
        for spec in batch:
            if spec.job_id and (_alive(statuses[spec.job_id]) or spec.job_id in seen):
                continue
            if spec.job_id:
                seen.add(spec.job_id)
            kept.append(spec)
        return kept

    def ping(self) -> bool:
        return bool(self.connection.ping())

    def pending_count(self) -> int:
        return sum(q.count for q in self.queues.values())

    # -- running jobs -------------------------------------------------------------------

    def worker(self, worker_class=None) -> SimpleWorker:
        cls = worker_class or (EmbeddedWorker if self.embedded else SimpleWorker)
        return cls(list(self.queues.values()), connection=self.connection)

    def promote_due_scheduled_jobs(self) -> None:
        """Move due ``enqueue_at`` / retry jobs onto their queues. RQ's scheduler normally
        does this in a forked process, which cannot see an in-process fakeredis, so the
        embedded runner calls the same routine in its own thread."""
        scheduler = RQScheduler(list(self.queues.values()), connection=self.connection)
        scheduler.prepare_registries(list(self.queues))
        scheduler.enqueue_scheduled_jobs()

    def drain(self) -> None:
        """Run everything due now in this thread, then return (the CLI's embedded mode)."""
        while True:
            self.promote_due_scheduled_jobs()
            if self.pending_count() == 0:
                return
            self.worker().work(burst=True, logging_level="WARNING")


_LIVE_STATUSES = {b"queued", b"started", b"scheduled", b"deferred"}


def _alive(status: bytes | None) -> bool:
    return status in _LIVE_STATUSES


class EmbeddedWorker(SimpleWorker):
    """An RQ worker that can live in a thread: no signal handlers, timer-based timeouts."""

    death_penalty_class = TimerDeathPenalty

    def _install_signal_handlers(self):
        pass  # only the main thread may install them; the dev server owns Ctrl-C


class EmbeddedRunner(threading.Thread):
    """``linkpay dev``'s worker: drains the in-process queue and runs the periodic sweep."""

    def __init__(self, app, poll_seconds: float = 0.2):
        super().__init__(name="linkpay-embedded-worker", daemon=True)
        self.app = app
        self.poll_seconds = poll_seconds
        self.stopping = threading.Event()

    def run(self) -> None:
        queue: JobQueue = self.app.extensions["linkpay"].queue
        next_sweep = 0.0
        clock = threading.Event()
        with self.app.app_context():
            while not self.stopping.is_set():
                now = dt.datetime.now(dt.UTC).timestamp()
                if now >= next_sweep:
                    enqueue_sweep(queue)
                    next_sweep = now + SWEEP_INTERVAL_SECONDS
                try:
                    queue.drain()
                except Exception:  # a broken job must not kill the dev server's worker
                    log.exception("embedded worker: job failed")
                clock.wait(self.poll_seconds)

    def stop(self) -> None:
        self.stopping.set()


def enqueue_sweep(queue: JobQueue, now: dt.datetime | None = None) -> bool:
    """One sweep per interval however many workers ask: the job id names the interval."""
    slot = int((now or dt.datetime.now(dt.UTC)).timestamp()) // SWEEP_INTERVAL_SECONDS
    return queue.enqueue(JobSpec("jobs.sweep.run_sweep", job_id=f"sweep-{slot}", queue=HIGH))
