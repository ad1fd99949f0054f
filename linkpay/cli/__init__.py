"""The ``linkpay`` command line (contract §2). Each command family lives in its own module;
commands build the app once and run inside its context."""

from __future__ import annotations

import functools
import sys

import click

from linkpay.config import ConfigError


def with_app(func):
    """Run the command inside an app context built from LINKPAY_CONFIG and the environment.
    With the embedded queue, jobs the command enqueued run before it exits."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        from linkpay import create_app
        from linkpay.runtime import runtime

        try:
            app = create_app()
        except ConfigError as exc:
            raise click.ClickException(f"configuration: {exc}") from exc
        with app.app_context():
            result = func(*args, **kwargs)
            rt = runtime()
            if rt.queue.embedded and rt.queue.pending_count():
                rt.queue.drain()
            return result

    return wrapper


@click.group()
def main() -> None:
    """linkpay: payment links by SMS and email."""


def _register() -> None:
    from linkpay.cli import accounts, campaign, db, dev, links, offers, plans, worker

    for module in (accounts, campaign, db, dev, links, offers, plans, worker):
        for command in module.COMMANDS:
            main.add_command(command)


_register()

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
