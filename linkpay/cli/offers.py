"""``linkpay offers create ACCOUNT --amount|--percent --deadline [--channel]``: a settlement
offer, delivered as a link by SMS, email or both."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

import click
from sqlalchemy import select

from linkpay.cli import with_app
from linkpay.cli.links import staff_actor
from linkpay.models import Account
from linkpay.money import format_cents
from linkpay.runtime import runtime
from linkpay.services import links, offers

CHANNELS = click.Choice(["sms", "email", "both"])


@click.group("offers")
def offers_group() -> None:
    """Settlement offers."""


@offers_group.command("create")
@click.argument("account_number")
@click.option("--amount", help="The settlement amount in dollars, e.g. 250.00.")
@click.option("--percent", type=int, help="The settlement as a percent of the balance.")
@click.option("--deadline", required=True, type=click.DateTime(["%Y-%m-%d"]))
@click.option("--channel", type=CHANNELS, default="sms", show_default=True)
@with_app
def create_command(account_number, amount, percent, deadline, channel) -> None:
    """Offer ACCOUNT_NUMBER a settlement payable by the end of DEADLINE (local day)."""
    cents = parse_dollars(amount) if amount is not None else None
    with runtime().db.session() as session:
        account = find_account(session, account_number)
        try:
            offer = offers.create_settlement_offer(
                session,
                account,
                amount_cents=cents,
                percent=percent,
                deadline=deadline.date(),
                channel=channel,
                actor=staff_actor(),
            )
        except offers.OfferError as exc:
            raise click.ClickException(exc.detail) from exc
        lines = [
            f"offer {offer.id}: settle {format_cents(account.balance_cents)} "
            f"for {format_cents(offer.amount_cents)} by {deadline:%Y-%m-%d}",
            f"link: {links.link_url(offer.link_id)}",
        ]
    for line in lines:
        click.echo(line)


def parse_dollars(text: str) -> int:
    try:
        value = Decimal(text.replace("$", "").replace(",", ""))
    except InvalidOperation as exc:
        raise click.BadParameter(f"not an amount: {text!r}", param_hint="--amount") from exc
    if value != value.quantize(Decimal("0.01")):
        raise click.BadParameter("at most two decimals", param_hint="--amount")
    return int(value * 100)


def find_account(session, account_number: str) -> Account:
    number = account_number.strip()
    account = session.scalar(select(Account).where(Account.account_number == number))
    if account is None:
        raise click.ClickException(f"no account with account number {number!r}")
    return account


COMMANDS = [offers_group]
