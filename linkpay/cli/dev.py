"""``linkpay dev``: the whole service in one process on the embedded defaults, with demo
data, printing the demo links and the outbox address (with its phone simulator)."""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

import click


@click.command("dev")
@click.option("--port", type=int, help="Listen here (and use it in links) instead of base_url's.")
@click.option("--no-demo", is_flag=True, help="Do not create demo accounts and links.")
def dev_command(port: int | None, no_demo: bool) -> None:
    """Run the web pages, the outbox and a worker thread in this one process."""
    from linkpay import create_app
    from linkpay.cli.db import upgrade
    from linkpay.config import ConfigError, load_config
    from linkpay.queue import EmbeddedRunner

    try:
        config = load_config(overrides=_dev_overrides(port))
    except ConfigError as exc:
        raise click.ClickException(f"configuration: {exc}") from exc
    upgrade(config["app.database_url"])
    app = create_app(config)
    with app.app_context():
        if not no_demo:
            _print_demo_links()
    base = config["app.base_url"]
    click.echo(f"\nOutbox (every SMS and email the service sent): {base}/outbox")
    click.echo(f"Phone simulator (text the service as a demo phone): {base}/outbox#phone")
    click.echo(f"Health: {base}/healthz\nPress Ctrl-C to stop.\n")
    EmbeddedRunner(app).start()
    host, listen_port = _listen_address(base)
    app.run(host=host, port=listen_port, threaded=True, use_reloader=False, debug=False)


def _dev_overrides(port: int | None) -> dict:
    from linkpay.config import load_config

    configured = load_config()
    # One process: the queue is always the embedded one, whatever the config file says.
    overrides: dict = {"app.redis_url": ""}
    if port:
        base = urlsplit(configured["app.base_url"])
        overrides["app.base_url"] = f"{base.scheme}://{base.hostname}:{port}"
    if not configured["twilio.auth_token"] and not configured["app.production"]:
        # The inbound webhook refuses everything unsigned; the outbox's phone simulator
        # signs with this. Per process, so it is never a secret worth stealing.
        overrides["twilio.auth_token"] = "dev-" + secrets.token_urlsafe(24)
    return overrides


def _listen_address(base_url: str) -> tuple[str, int]:
    parts = urlsplit(base_url)
    return parts.hostname or "127.0.0.1", parts.port or (443 if parts.scheme == "https" else 80)


def _print_demo_links() -> None:
    from linkpay.money import format_cents
    from linkpay.runtime import runtime
    from linkpay.services.demo import seed_demo_accounts
    from linkpay.services.links import every_channel, link_url, send_link

    click.echo("Demo accounts and their payment links:")
    with runtime().db.session() as session:
        for account in seed_demo_accounts(session):
            link, _ = send_link(session, account, channel=every_channel(account))
            click.echo(
                f"  {account.account_number}  {account.display_name:<14} {account.language}  "
                f"{format_cents(account.balance_cents):>10}  {link_url(link.id)}"
            )


COMMANDS = [dev_command]
