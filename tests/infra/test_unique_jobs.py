"""``JobQueue.enqueue_unique``: RQ's own unique-enqueue script, fed a hash RQ built once
per kind of job; the hash must stay the one RQ writes itself, so real workers run it."""

import pytest
from rq import Retry, get_current_job
from rq.job import Job
from rq.registry import FailedJobRegistry, ScheduledJobRegistry

from linkpay.queue import BULK, FAILURE_TTL, HIGH, RESULT_TTL, JobSpec
from linkpay.runtime import runtime

RECORD = "tests.infra.test_unique_jobs.record_call"
FAIL = "tests.infra.test_unique_jobs.fail"
VARY_PER_JOB = {"created_at", "enqueued_at"}


def record_call(value, *, note=""):
    get_current_job().connection.rpush("unique-calls", f"{value}{note}")


def fail(value):
    raise RuntimeError(f"failing on purpose with {value}")


def calls() -> list[str]:
    return [v.decode() for v in runtime().queue.connection.lrange("unique-calls", 0, -1)]


def stored_hash(job_id: str) -> dict[bytes, bytes]:
    return runtime().queue.connection.hgetall(Job.key_for(job_id))


@pytest.mark.parametrize(
    "spec",
    [
        JobSpec(RECORD, args=("x",), job_id="same-as-rq", queue=BULK, description="d"),
        JobSpec(
            RECORD,
            args=({"Body": "PAY"}, "2026-03-10T18:00:00+00:00"),
            kwargs={"note": "!"},
            job_id="same-as-rq",
            queue=HIGH,
            retry=Retry(max=3, interval=[1, 10, 60]),
            description="inbound text SM1",
        ),
    ],
    ids=["plain", "with-retry"],
)
def test_the_hash_is_the_one_rq_writes_itself(app, spec):
    queue = runtime().queue
    assert queue.enqueue_unique(spec)
    ours = stored_hash(spec.job_id)
    queue.connection.delete(Job.key_for(spec.job_id), queue.queues[spec.queue].key)

    rq_queue = queue.queues[spec.queue]
    job = rq_queue.create_job(
        spec.func,
        args=spec.args,
        kwargs=spec.kwargs,
        job_id=spec.job_id,
        retry=spec.retry,
        description=spec.description,
        result_ttl=RESULT_TTL,
        failure_ttl=FAILURE_TTL,
    )
    rq_queue.enqueue_job(job, unique=True)
    theirs = stored_hash(spec.job_id)

    assert set(ours) == set(theirs)
    for field in set(theirs) - {f.encode() for f in VARY_PER_JOB}:
        assert ours[field] == theirs[field], field
    assert rq_queue.job_ids == [spec.job_id]


def test_a_second_job_with_the_same_id_is_refused_and_the_first_runs_once(app, run_jobs):
    queue = runtime().queue
    assert queue.enqueue_unique(JobSpec(RECORD, args=("first",), job_id="once", queue=HIGH))
    assert not queue.enqueue_unique(JobSpec(RECORD, args=("second",), job_id="once", queue=HIGH))
    assert queue.queues[HIGH].job_ids == ["once"]
    run_jobs()
    assert calls() == ["first"]
    # Finished, its record kept for RESULT_TTL: a late repeat is still refused.
    assert not queue.enqueue_unique(JobSpec(RECORD, args=("late",), job_id="once", queue=HIGH))
    run_jobs()
    assert calls() == ["first"]


def test_jobs_of_one_kind_keep_their_own_arguments(app, run_jobs):
    queue = runtime().queue
    for n in range(3):
        spec = JobSpec(RECORD, args=(n,), kwargs={"note": f"-{n}"}, job_id=f"kind-{n}")
        assert queue.enqueue_unique(spec)
    run_jobs()
    assert sorted(calls()) == ["0-0", "1-1", "2-2"]


def test_the_description_never_spells_out_the_arguments(app):
    queue = runtime().queue
    queue.enqueue_unique(JobSpec(RECORD, args=("4242424242424242",), job_id="quiet"))
    description = stored_hash("quiet")[b"description"].decode()
    assert description == f"{RECORD}(...)"


def test_a_failing_job_is_retried_as_its_spec_says(app):
    queue = runtime().queue
    spec = JobSpec(
        FAIL, args=("boom",), job_id="flaky", queue=HIGH, retry=Retry(max=2, interval=60)
    )
    assert queue.enqueue_unique(spec)
    queue.worker().work(burst=True)
    job = Job.fetch("flaky", connection=queue.connection)
    assert job.retries_left == 1
    assert "flaky" in ScheduledJobRegistry(HIGH, connection=queue.connection)
    assert "flaky" not in FailedJobRegistry(HIGH, connection=queue.connection)
