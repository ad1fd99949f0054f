"""``linkpay links send ACCOUNT_NUMBER [--channel sms|email|both]``: one payment link, now.

Prints the link (staff may read it out on a call) and what happened to each message:
queued, held for quiet hours until a local time, or suppressed and why."""

from __future__ import annotations

import datetime as dt
import getpass

import click
from sqlalchemy import select

from linkpay.cli import with_app
from linkpay.config import parse_hhmm
from linkpay.models import Account, Message, MessageStatus
from linkpay.money import format_cents
from linkpay.quiet_hours import recipient_zones
from linkpay.runtime import runtime
from linkpay.services import audit, links

CHANNELS = click.Choice(["sms", "email", "both"])


@click.group("links")
def links_group() -> None:
    """Payment links."""


@links_group.command("send")
@click.argument("account_number")
@click.option("--channel", type=CHANNELS, default="sms", show_default=True)
@with_app
def send_command(account_number: str, channel: str) -> None:
    """Create a payment link for ACCOUNT_NUMBER and queue it by SMS, email or both."""
    actor = staff_actor()
    with runtime().db.session() as session:
        number = account_number.strip()
        account = session.scalar(select(Account).where(Account.account_number == number))
        if account is None:
            raise click.ClickException(f"no account with account number {number!r}")
        link, sent = links.send_link(session, account, channel=channel)
        audit.record(
            session, "link.send", actor=actor, account_id=account.id, subject=link, channel=channel
        )
        url = links.link_url(link.id)
        header = f"account {account.account_number}: balance {format_cents(account.balance_cents)}"
        lines = [describe(account, message) for message in sent]
    # Printed after the commit: "queued" is only true once the rows and jobs exist.
    click.echo(header)
    click.echo(f"link: {url}")
    click.echo(f"expires: {link.expires_at:%Y-%m-%d %H:%M} UTC")
    for line in lines:
        click.echo(line)


def describe(account: Account, message: Message) -> str:
    """``sms to +16025550143: queued`` / ``...: held until 08:00 local (America/Phoenix) for
    quiet hours`` / ``email: suppressed: no_email``."""
    where = f"{message.channel} to {message.to_address}" if message.to_address else message.channel
    if message.status == MessageStatus.SUPPRESSED:
        return f"{where}: suppressed: {message.skip_reason}"
    if message.status == MessageStatus.SCHEDULED and message.send_after:
        return f"{where}: held until {local_time(account, message.send_after)} for quiet hours"
    return f"{where}: {message.status}"


def local_time(account: Account, when: dt.datetime) -> str:
    """``08:00 local (America/Phoenix)``: the hold's end in the recipient's zone. When the
    phone and ZIP name several zones, the one where quiet hours end last is shown, since
    that is the zone the send waited for."""
    config = runtime().config
    zones = recipient_zones(account.phone, account.zip, config["app.timezone"])
    quiet_end = dt.time(*parse_hhmm(config["compliance.quiet_end"], "compliance.quiet_end"))
    zone = next((z for z in zones if when.astimezone(z).time() == quiet_end), zones[0])
    local = when.astimezone(zone)
    days = (local.date() - runtime().now().astimezone(zone).date()).days
    day = {0: "", 1: " tomorrow"}.get(days, f" on {local:%Y-%m-%d}")
    return f"{local:%H:%M} local ({zone.key}){day}"


def staff_actor() -> str:
    """Who ran the command, for the audit trail and the campaign's ``created_by``."""
    try:
        return f"staff:{getpass.getuser()}"
    except (KeyError, OSError):  # no login name (a container with an unnamed uid)
        return "staff:cli"


COMMANDS = [links_group]
