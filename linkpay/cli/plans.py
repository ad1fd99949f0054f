"""``linkpay plans offer|cancel|list``: offer a payment plan, cancel one, and see every plan
and offer with its state and what happens next."""

from __future__ import annotations

import click
from sqlalchemy import select

from linkpay.cli import with_app
from linkpay.cli.links import staff_actor
from linkpay.cli.offers import CHANNELS, find_account
from linkpay.models import (
    Account,
    Installment,
    InstallmentStatus,
    Offer,
    OfferReminder,
    OfferStatus,
    Plan,
    PlanFrequency,
    PlanStatus,
    ReminderStatus,
)
from linkpay.money import format_cents
from linkpay.runtime import runtime
from linkpay.services import links, plans
from linkpay.services.offers import OfferError

FREQUENCIES = click.Choice([f.value for f in PlanFrequency])


@click.group("plans")
def plans_group() -> None:
    """Payment plans."""


@plans_group.command("offer")
@click.argument("account_number")
@click.option("--installments", required=True, type=int)
@click.option("--frequency", required=True, type=FREQUENCIES)
@click.option("--first-date", required=True, type=click.DateTime(["%Y-%m-%d"]))
@click.option("--expires-in-days", required=True, type=int)
@click.option("--channel", type=CHANNELS, default="sms", show_default=True)
@with_app
def offer_command(account_number, installments, frequency, first_date, expires_in_days, channel):
    """Offer ACCOUNT_NUMBER its balance in installments, delivered as a link."""
    with runtime().db.session() as session:
        account = find_account(session, account_number)
        try:
            offer = plans.create_plan_offer(
                session,
                account,
                installments=installments,
                frequency=PlanFrequency(frequency),
                first_date=first_date.date(),
                expires_in_days=expires_in_days,
                channel=channel,
                actor=staff_actor(),
            )
        except OfferError as exc:
            raise click.ClickException(exc.detail) from exc
        lines = [f"offer {offer.id}: {format_cents(offer.amount_cents)} in {installments} payments"]
        lines += [
            f"  {row.sequence}. {row.charge_on:%Y-%m-%d} {format_cents(row.amount_cents)}"
            for row in plans.offers.proposed_schedule(offer)
        ]
        lines.append(f"link: {links.link_url(offer.link_id)}")
        lines.append(f"expires: {offer.expires_at:%Y-%m-%d %H:%M} UTC")
    for line in lines:
        click.echo(line)


@plans_group.command("cancel")
@click.argument("plan_id", type=int)
@with_app
def cancel_command(plan_id: int) -> None:
    """Cancel plan PLAN_ID: its remaining installments are never charged."""
    with runtime().db.session() as session:
        plan = session.get(Plan, plan_id)
        if plan is None:
            raise click.ClickException(f"no plan {plan_id}")
        if not plans.cancel_plan(session, plan, actor=staff_actor()):
            raise click.ClickException(f"plan {plan_id} is {plan.status.value}, not active")
    click.echo(f"plan {plan_id}: cancelled")


@plans_group.command("list")
@with_app
def list_command() -> None:
    """Every plan and open or recent offer, with its state and next action."""
    with runtime().db.session() as session:
        lines = [describe_plan(session, plan) for plan in session.scalars(select(Plan))]
        open_offers = session.scalars(
            select(Offer).where(Offer.status != OfferStatus.ACCEPTED).order_by(Offer.id)
        )
        lines += [describe_offer(session, offer) for offer in open_offers]
    for line in lines or ["no plans or offers"]:
        click.echo(line)


def describe_plan(session, plan: Plan) -> str:
    account = session.get(Account, plan.account_id)
    head = f"plan {plan.id}  {account.account_number}  {format_cents(plan.total_cents)}  "
    head += plan.status.value
    if plan.status != PlanStatus.ACTIVE:
        return head + "  next: nothing"
    waiting = session.scalar(
        select(Installment)
        .where(
            Installment.plan_id == plan.id,
            Installment.status.in_(
                [
                    InstallmentStatus.PENDING,
                    InstallmentStatus.RETRY_SCHEDULED,
                    InstallmentStatus.PROCESSING,
                ]
            ),
        )
        .order_by(Installment.due_at)
        .limit(1)
    )
    if waiting is None:
        return head + "  next: an installment was declined twice; contact the customer"
    verb = "retry" if waiting.status == InstallmentStatus.RETRY_SCHEDULED else "charge"
    return (
        head + f"  next: {verb} installment {waiting.sequence} "
        f"{format_cents(waiting.amount_cents)} at {waiting.due_at:%Y-%m-%d %H:%M} UTC"
    )


def describe_offer(session, offer: Offer) -> str:
    account = session.get(Account, offer.account_id)
    head = (
        f"offer {offer.id}  {account.account_number}  {offer.kind.value}  "
        f"{format_cents(offer.amount_cents)}  {offer.status.value}"
    )
    if offer.status != OfferStatus.OFFERED:
        return head + "  next: nothing"
    reminder = session.scalar(
        select(OfferReminder)
        .where(OfferReminder.offer_id == offer.id, OfferReminder.status == ReminderStatus.PENDING)
        .order_by(OfferReminder.due_at)
        .limit(1)
    )
    if reminder is not None:
        return head + (
            f"  next: reminder {reminder.reminder_index} at {reminder.due_at:%Y-%m-%d %H:%M} UTC"
        )
    return head + f"  next: expires at {offer.expires_at:%Y-%m-%d %H:%M} UTC"


COMMANDS = [plans_group]
