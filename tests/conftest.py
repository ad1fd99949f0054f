"""Fixtures shared by the whole suite: ``app``, ``client``, ``runner``, ``db``, ``clock``,
``run_jobs``. SQLite and fakeredis by default; LINKPAY_TEST_DATABASE_URL and
LINKPAY_TEST_REDIS_URL point the same tests at real PostgreSQL and Redis."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import socket

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, settings
from sqlalchemy import create_engine, text

from linkpay import create_app
from linkpay.cli.db import upgrade
from linkpay.config import load_config
from linkpay.models import Base
from linkpay.queue import JobQueue
from linkpay.runtime import runtime

# The local fake Twilio and SendGrid APIs: fixtures ``fake_twilio`` and ``fake_sendgrid``.
pytest_plugins = ["tests.fakes.fixtures"]

# A loaded CI machine is not a failing test: no per-example deadline.
settings.register_profile(
    "linkpay", deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
settings.load_profile("linkpay")

TEST_DATABASE_URL = os.environ.get("LINKPAY_TEST_DATABASE_URL", "")
TEST_REDIS_URL = os.environ.get("LINKPAY_TEST_REDIS_URL", "")
BASE_URL = "https://pay.example.org"  # 24 characters, within the contract's 30


def pytest_report_header(config):
    database = TEST_DATABASE_URL.split("@")[-1] if TEST_DATABASE_URL else "SQLite (temporary file)"
    queue = TEST_REDIS_URL or "fakeredis (embedded)"
    return [f"linkpay database: {database}", f"linkpay queue: {queue}"]


@pytest.fixture(scope="session")
def schema_source(tmp_path_factory):
    """Migrate once per run: a SQLite template file, or the PostgreSQL test database."""
    if TEST_DATABASE_URL:
        engine = create_engine(TEST_DATABASE_URL)
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
        engine.dispose()
        upgrade(TEST_DATABASE_URL)
        return TEST_DATABASE_URL
    template = tmp_path_factory.mktemp("schema") / "template.sqlite3"
    upgrade(f"sqlite:///{template}")
    return template


@pytest.fixture
def database_url(schema_source, tmp_path):
    if TEST_DATABASE_URL:
        yield TEST_DATABASE_URL
        engine = create_engine(TEST_DATABASE_URL)
        tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        with engine.begin() as connection:
            connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        engine.dispose()
        return
    path = tmp_path / "linkpay.sqlite3"
    shutil.copyfile(schema_source, path)
    yield f"sqlite:///{path}"


@pytest.fixture
def config_overrides(database_url, tmp_path):
    """Tests extend this dict (before ``app`` is built) to change configuration."""
    return {
        "app.database_url": database_url,
        "app.redis_url": TEST_REDIS_URL,
        "app.base_url": BASE_URL,
        "app.secret_key": "test-secret-key-not-for-production",
        "app.timezone": "America/Phoenix",
        "org.name": "Springfield Water",
        "org.support_phone": "+16025550100",
    }


@pytest.fixture
def clock():
    """The service's clock, frozen and movable: ``clock.set(...)``, ``clock.advance(...)``."""
    return Clock(dt.datetime(2026, 3, 10, 18, 0, tzinfo=dt.UTC))  # 11:00 in Phoenix


@pytest.fixture
def app(config_overrides, clock, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # instance/ files land in the test's own folder
    application = create_app(load_config(path=None, overrides=config_overrides, environ={}))
    application.config.update(TESTING=True)
    rt = application.extensions["linkpay"]
    rt.clock = clock
    if TEST_REDIS_URL:
        rt.queue.connection.flushdb()
    with application.app_context():
        yield application
    rt.db.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner():
    return CliRunner()


@pytest.fixture
def db(app):
    """A session for arranging and checking rows; committed by the test when it needs to."""
    session = runtime().db.sessions()
    yield session
    session.close()


@pytest.fixture
def redis_down(app):
    """The queue's Redis made unreachable (a port nothing listens on, with the connection
    options the queue really uses); call the fixture's value to bring it back."""
    queue = runtime().queue
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    reachable = queue.connection
    queue.connection = JobQueue(f"redis://127.0.0.1:{port}/0").connection
    yield lambda: setattr(queue, "connection", reachable)
    queue.connection = reachable


@pytest.fixture
def run_jobs(app):
    """Run every job that is due now, as a worker would."""

    def run():
        runtime().queue.drain()

    return run


class Clock:
    def __init__(self, now: dt.datetime):
        self.current = now

    def __call__(self) -> dt.datetime:
        return self.current

    def set(self, when: dt.datetime) -> None:
        self.current = when

    def advance(self, **delta) -> dt.datetime:
        self.current += dt.timedelta(**delta)
        return self.current
