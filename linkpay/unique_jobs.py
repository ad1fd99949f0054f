"""Enqueueing a job whose id must be new in one Redis round trip, for the inbound-text
webhook, which takes one job per customer text and must keep up when a campaign's worth
of customers reply at once (docs/performance.md).

It sends RQ's own unique-enqueue Lua script (``rq.scripts``: refuse the id if a job hash
exists, else write the hash and push the id on the queue, atomically), as
``Queue.enqueue_job(job, unique=True)`` does. That method first builds a ``Job``,
serializes it field by field and makes two more round trips (dependencies, the server's
version): about 0.15 ms of CPU a job, a third of the webhook's budget. Every job of one
kind (function, queue, retry, TTLs) stores the same hash but for its id, arguments,
timestamps and description, so a ``JobShape`` has RQ build that hash once and each job
fills in those four. ``tests/infra/test_unique_jobs.py`` holds the result to the hash
RQ writes itself, so an RQ release that changes the hash fails a test, not a text."""

from __future__ import annotations

import datetime as dt
import enum
import zlib

from redis import Redis
from rq import Queue, Retry
from rq.job import Job, JobStatus
from rq.scripts import get_unique_enqueue_script
from rq.utils import utcformat

# The script's push direction (append, as a plain enqueue does) and "no expiry".
PUSH_TO_BACK = "R"
NO_TTL = -1


class JobShape:
    """The Redis hash every job of one kind stores, as RQ builds it."""

    def __init__(
        self,
        queue: Queue,
        func: str,
        *,
        retry: Retry | None,
        result_ttl: int,
        failure_ttl: int,
    ):
        template = Job.create(
            func,
            connection=queue.connection,
            id="shape",
            origin=queue.name,
            status=JobStatus.QUEUED,
            timeout=Queue.DEFAULT_TIMEOUT,
            retry=retry,
            result_ttl=result_ttl,
            failure_ttl=failure_ttl,
            serializer=queue.serializer,
        )
        self.func = func
        self.queue_key = queue.key
        self.dumps = template.serializer.dumps
        self.fields = {
            name: _stored(value) for name, value in template.to_dict().items() if value is not None
        }
        self.script = get_unique_enqueue_script(queue.connection)

    def enqueue(
        self, connection: Redis, job_id: str, args: tuple, kwargs: dict, description: str
    ) -> bool:
        """Queue the job unless a job with this id exists (waiting, running, or kept after
        it ran): True if it was queued."""
        stamp = utcformat(dt.datetime.now(dt.UTC))
        fields = self.fields | {
            "created_at": stamp,
            "enqueued_at": stamp,
            # RQ's own job data: (function, instance, args, kwargs), serialized, compressed.
            "data": zlib.compress(self.dumps((self.func, None, args, kwargs))),
            "description": description,
        }
        flat = [item for pair in fields.items() for item in pair]
        queued = self.script(
            keys=[Job.key_for(job_id), self.queue_key],
            args=[job_id, PUSH_TO_BACK, NO_TTL, *flat],
            client=connection,
        )
        return queued == 1


def _stored(value) -> bytes | str:
    """A field value as Redis keeps it (RQ's status is a str enum: its value, not its name)."""
    if isinstance(value, enum.Enum):
        return str(value.value)
    return value if isinstance(value, bytes | str) else str(value)
