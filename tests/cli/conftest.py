"""Fixtures for the command-line tests."""

import pytest

from linkpay.cli import main
from linkpay.runtime import runtime


@pytest.fixture
def cli(app, runner, monkeypatch):
    """Run commands against the test's app (its database, queue and clock). Jobs stay on
    the queue instead of being run at exit, so tests see what the command queued."""
    monkeypatch.setattr("linkpay.create_app", lambda *args, **kwargs: app)
    monkeypatch.setattr(runtime().queue, "drain", lambda: None)

    def invoke(*args: str):
        return runner.invoke(main, list(args), catch_exceptions=False)

    return invoke
