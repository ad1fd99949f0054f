"""``linkpay campaign send`` and ``linkpay campaign show``.

``send`` takes an accounts file (a CSV with an ``account_number`` column, or one account
number per line with no header) or ``--all-with-balance``, and prints the campaign id and
what was queued, held for quiet hours and suppressed, and why. ``show`` prints what became
of it since: delivered, clicked, paid."""

from __future__ import annotations

import csv
from pathlib import Path
from zoneinfo import ZoneInfo

import click
from sqlalchemy import select

from linkpay.cli import with_app
from linkpay.cli.links import CHANNELS, staff_actor
from linkpay.models import Account, MessageStatus
from linkpay.money import format_cents
from linkpay.runtime import runtime
from linkpay.services import campaigns
from linkpay.services.campaign_chunk import NO_BALANCE, RECENTLY_SENT
from linkpay.services.campaign_stats import CampaignStats, campaign_stats
from linkpay.services.messages import NO_EMAIL, NO_PHONE, OPTED_OUT, UNDELIVERABLE

# Always printed, zero or not, so that a script reading the output finds every line.
REASONS = (
    OPTED_OUT,
    UNDELIVERABLE,
    NO_PHONE,
    NO_EMAIL,
    NO_BALANCE,
    campaigns.DUPLICATE,
    RECENTLY_SENT,
    campaigns.UNKNOWN,
)
ACCOUNT_COLUMN = "account_number"


@click.group("campaign")
def campaign_group() -> None:
    """Payment links to many accounts at once."""


@campaign_group.command("send")
@click.option("--name", required=True, help="What staff will call it in reports.")
@click.option("--channel", type=CHANNELS, default="sms", show_default=True)
@click.option(
    "--accounts-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="CSV with an account_number column, or one account number per line.",
)
@click.option("--all-with-balance", is_flag=True, help="Every account with a balance over $0.")
@with_app
def send_command(name: str, channel: str, accounts_file: Path | None, all_with_balance: bool):
    """Queue a payment link to each account, and print what was queued and suppressed."""
    if (accounts_file is None) == (not all_with_balance):
        raise click.UsageError("give exactly one of --accounts-file FILE or --all-with-balance")
    if accounts_file is not None:
        targets = read_account_numbers(accounts_file)
    else:
        targets = select(Account).where(Account.balance_cents > 0)
    session = runtime().db.sessions()
    try:
        result = campaigns.send_campaign(session, name.strip(), channel, targets, staff_actor())
    finally:
        session.close()
    for line in summary(result):
        click.echo(line)


def read_account_numbers(path: Path) -> list[str]:
    """Account numbers from a CSV with an ``account_number`` column (any position, any
    case) or from a plain list, one per line. A spreadsheet's byte-order mark is ignored."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            rows = csv.reader(handle)
            first = next(rows, None)
            if first is None:
                return []
            header = [cell.strip().lower() for cell in first]
            if ACCOUNT_COLUMN in header:
                column = header.index(ACCOUNT_COLUMN)
                return [row[column] for row in rows if len(row) > column]
            if len([cell for cell in first if cell.strip()]) > 1:
                raise click.UsageError(
                    f"{path}: several columns but none named {ACCOUNT_COLUMN!r} "
                    f"(found: {', '.join(first)})"
                )
            return [row[0] for row in [first, *rows] if row]
    except UnicodeDecodeError as exc:
        raise click.ClickException(f"{path}: not UTF-8 text ({exc.reason})") from exc


def summary(result: campaigns.CampaignResult) -> list[str]:
    lines = [
        f"campaign {result.campaign_id}",
        f"accounts: {result.accounts}",
        f"links: {result.links}",
        f"queued: {result.queued}",
        f"deferred (quiet hours): {result.deferred}",
        f"suppressed: {result.suppressed_total}",
    ]
    reasons = [*REASONS, *sorted(set(result.suppressed) - set(REASONS))]
    lines += [f"  {reason}: {result.suppressed[reason]}" for reason in reasons]
    unknown = result.suppressed[campaigns.UNKNOWN]
    if unknown:
        lines.append(f"unknown account numbers ({unknown}): {', '.join(result.unknown)}")
        if unknown > len(result.unknown):
            lines.append(f"  ... and {unknown - len(result.unknown)} more")
    return lines


@campaign_group.command("show")
@click.argument("campaign_id", type=int)
@with_app
def show_command(campaign_id: int) -> None:
    """What a campaign sent, and what was delivered, clicked and paid since."""
    with runtime().db.session() as session:
        stats = campaign_stats(session, campaign_id)
    if stats is None:
        raise click.ClickException(f"no campaign {campaign_id}")
    for line in report(stats):
        click.echo(line)


def report(stats: CampaignStats) -> list[str]:
    campaign, counts = stats.campaign, stats.campaign.counts or {}
    zone = ZoneInfo(runtime().config["app.timezone"])
    lines = [
        f"campaign {campaign.id}: {campaign.name}",
        f"channel: {campaign.channel}",
        f"created: {campaign.created_at.astimezone(zone):%Y-%m-%d %H:%M} {zone.key}"
        f" by {campaign.created_by}",
        f"at send: accounts {counts.get('accounts', 0)}, links {counts.get('links', 0)},"
        f" queued {counts.get('queued', 0)},"
        f" deferred (quiet hours) {counts.get('deferred', 0)},"
        f" suppressed {sum(counts.get('suppressed', {}).values())}",
    ]
    lines += [f"  {reason}: {n}" for reason, n in counts.get("suppressed", {}).items() if n]
    lines.append("messages now:")
    for channel, statuses in sorted(stats.messages.items()):
        figures = ", ".join(f"{s} {statuses[s]}" for s in MessageStatus if statuses[s])
        lines.append(f"  {channel}: {figures}")
    lines.append(f"clicked: {stats.opened} of {stats.links} links ({stats.opened_percent:.1f}%)")
    lines.append(f"paid: {stats.paid} payments, {format_cents(stats.paid_cents)}")
    if stats.pending:
        lines.append(f"pending: {stats.pending} payments, {format_cents(stats.pending_cents)}")
    return lines


COMMANDS = [campaign_group]
