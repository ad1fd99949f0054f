"""The queue: stable ids make a second enqueue a no-op; jobs wait for their rows' commit."""

import datetime as dt

from rq import get_current_job

from linkpay.db import defer_job
from linkpay.models import Account
from linkpay.queue import BULK, DEFAULT, JobSpec, enqueue_sweep
from linkpay.runtime import runtime

NOOP = "tests.infra.test_queue.record_call"


def record_call(value):
    # Kept in Redis, not a module global: the worker imports this module by dotted path,
    # which need not be the module object pytest loaded.
    get_current_job().connection.rpush("test-calls", value)


def calls() -> list[str]:
    return [v.decode() for v in runtime().queue.connection.lrange("test-calls", 0, -1)]


def test_enqueue_with_the_same_id_twice_queues_one_job(app, run_jobs):
    queue = runtime().queue
    assert queue.enqueue(JobSpec(NOOP, args=(1,), job_id="same"))
    assert not queue.enqueue(JobSpec(NOOP, args=(1,), job_id="same"))
    run_jobs()
    assert calls() == ["1"]


def test_enqueue_many_skips_ids_already_queued(app, run_jobs):
    queue = runtime().queue
    queue.enqueue(JobSpec(NOOP, args=("a",), job_id="job-a"))
    added = queue.enqueue_many(
        [
            JobSpec(NOOP, args=("a",), job_id="job-a"),
            JobSpec(NOOP, args=("b",), job_id="job-b", queue=BULK),
        ]
    )
    assert added == 1
    run_jobs()
    assert sorted(calls()) == ["a", "b"]


def test_jobs_deferred_in_a_transaction_are_queued_only_when_it_commits(app):
    queue = runtime().queue
    with runtime().db.session() as session:
        session.add(Account(account_number="A-1", balance_cents=100, phone="+16025550143"))
        defer_job(session, JobSpec(NOOP, args=("kept",), job_id="kept"))
        assert queue.pending_count() == 0  # not before the commit
    assert queue.queues[DEFAULT].count == 1

    session = runtime().db.sessions()
    defer_job(session, JobSpec(NOOP, args=("dropped",), job_id="dropped"))
    session.rollback()
    session.close()
    assert queue.queues[DEFAULT].fetch_job("dropped") is None


def test_a_savepoint_rollback_drops_only_the_jobs_deferred_inside_it(app):
    queue = runtime().queue
    with runtime().db.session() as session:
        defer_job(session, JobSpec(NOOP, args=("before",), job_id="before"))
        try:
            with session.begin_nested():
                defer_job(session, JobSpec(NOOP, args=("undone",), job_id="undone"))
                with session.begin_nested():
                    defer_job(session, JobSpec(NOOP, args=("inner",), job_id="inner"))
                raise RuntimeError("lost a race")
        except RuntimeError:
            pass
        with session.begin_nested():
            defer_job(session, JobSpec(NOOP, args=("after",), job_id="after"))
    assert sorted(queue.queues[DEFAULT].job_ids) == ["after", "before"]


def test_a_rollback_drops_every_job_deferred_in_the_transaction(app):
    queue = runtime().queue
    with runtime().db.session() as session:
        with session.begin_nested():
            defer_job(session, JobSpec(NOOP, args=("saved",), job_id="saved"))
        defer_job(session, JobSpec(NOOP, args=("outer",), job_id="outer"))
        session.rollback()
    assert queue.pending_count() == 0


def test_one_sweep_per_interval_however_many_workers_ask(app):
    queue = runtime().queue
    now = dt.datetime(2026, 3, 10, 18, 0, 1, tzinfo=dt.UTC)
    assert enqueue_sweep(queue, now)
    assert not enqueue_sweep(queue, now + dt.timedelta(seconds=5))
    assert enqueue_sweep(queue, now + dt.timedelta(seconds=16))


def test_a_finished_or_failed_job_does_not_block_the_same_id_later(app, run_jobs):
    queue = runtime().queue
    assert queue.enqueue(JobSpec(NOOP, args=("first",), job_id="again"))
    run_jobs()
    assert queue.enqueue(JobSpec(NOOP, args=("second",), job_id="again"))
    run_jobs()
    assert calls() == ["first", "second"]
