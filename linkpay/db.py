"""The database handle: one engine and session factory per app, and a unit-of-work helper."""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)

_JOBS = "linkpay.jobs"  # session.info key: [(savepoint or None, JobSpec), ...]


class Database:
    def __init__(self, url: str):
        parsed = make_url(url)
        kwargs: dict = {"future": True}
        if parsed.get_backend_name() == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            # The dev server, its worker thread and the CLI share one file.
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        else:
            kwargs.update(pool_pre_ping=True, pool_size=10, max_overflow=20)
            if parsed.get_backend_name() == "postgresql":
                # psycopg prepares statements keyed by parameter types, which vary batch to
                # batch in bulk work: the cache grew memory ~60 MB over a 100k-row import.
                # Unprepared statements also keep PgBouncer's transaction mode working.
                kwargs["connect_args"] = {"prepare_threshold": None}
        self.url = url
        self.engine: Engine = create_engine(url, **kwargs)
        if parsed.get_backend_name() == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        event.listen(self.sessions, "after_commit", _enqueue_after_commit)
        event.listen(self.sessions, "after_soft_rollback", _forget_jobs)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: commits on success, rolls back on error."""
        session = self.sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def dispose(self) -> None:
        self.engine.dispose()


def defer_job(session: Session, spec) -> None:
    """Enqueue ``spec`` (a ``JobSpec``) once this session commits. A job enqueued before its
    rows are committed could run first and find nothing; one whose rows were rolled back
    must not run at all, so each job remembers the savepoint (if any) it was deferred in."""
    session.info.setdefault(_JOBS, []).append((session.get_nested_transaction(), spec))


def insert_unless_present(
    executor: Session | Connection, model, values: dict, unique: list[str]
) -> int | None:
    """``INSERT ... ON CONFLICT (unique) DO NOTHING RETURNING id``: the new row's id, or
    None when a row with the same ``unique`` columns exists. One statement, no savepoint;
    on PostgreSQL a racing insert of the same key waits for the first to commit."""
    bind = executor if isinstance(executor, Connection) else executor.get_bind()
    statement = _insert_ignoring(model.__table__, tuple(unique), bind.dialect.name)
    return executor.execute(statement, values).scalar()


@functools.cache
def _insert_ignoring(table, unique: tuple[str, ...], dialect: str):
    # Built once per table and dialect: on a hot path (the inbound webhook's job) building
    # the statement cost more than running it.
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table).on_conflict_do_nothing(index_elements=list(unique)).returning(table.c.id)


def _enqueue_after_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint was released: the jobs wait for the real commit
    deferred = session.info.pop(_JOBS, None)
    if deferred:
        from linkpay.runtime import runtime

        try:
            runtime().queue.enqueue_many([spec for _, spec in deferred])
        except (RedisConnectionError, RedisTimeoutError):
            # The rows are committed (a payment taken, its receipt queued): answering the
            # customer with an error now would be wrong, and nothing is lost. Every
            # deferred job sends messages or charges rows the sweep finds again once Redis
            # is back (``*.requeue_stalled``, ``payments.poll_unsettled``).
            log.warning("Redis unreachable: %d job(s) left for the sweep", len(deferred))


def _forget_jobs(session: Session, previous_transaction) -> None:
    """A rollback drops the jobs deferred in what it undid: everything, or, when only a
    savepoint rolled back (a lost insert race), just the jobs deferred inside it."""
    if not previous_transaction.nested:
        session.info.pop(_JOBS, None)
        return
    deferred = session.info.get(_JOBS, [])
    session.info[_JOBS] = [
        (where, spec) for where, spec in deferred if not _inside(where, previous_transaction)
    ]


def _inside(transaction, savepoint) -> bool:
    while transaction is not None:
        if transaction is savepoint:
            return True
        transaction = transaction.parent
    return False


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the web process read while a worker writes; foreign keys are off by default.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
