"""Paying on a later day from the payment page: the date on the amount step, the
scheduled payment's own page (Pending, then Paid or Declined), and cancelling it.

A scheduled payment goes through the same checkout as paying now (amount, the gateway's
tokenizer, review); the chosen day is kept on the checkout (``charge_on``), and Confirm
schedules instead of charging. The day is the organisation's: from tomorrow (today is "pay now") to
``scheduled.max_days_ahead`` days ahead. Cancelling is a POST after a confirmation page,
until the end of the day before the charge."""

from __future__ import annotations

import datetime as dt
import re

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_wtf.csrf import CSRFError
from sqlalchemy.orm import Session, object_session

from linkpay import schedule
from linkpay.i18n import current_language
from linkpay.models import Link, ScheduledPayment, ScheduledPaymentStatus
from linkpay.runtime import runtime
from linkpay.security import limiter
from linkpay.services import scheduled_payments
from linkpay.services.links import LinkState
from linkpay.services.payments import PaymentError
from linkpay.web.pay_common import (
    form_expired,
    open_link,
    page_context,
    state_page,
    to_landing,
    zip_needed,
)

bp = Blueprint("schedule", __name__, url_prefix="/p/<token>/scheduled")
bp.context_processor(page_context)
bp.errorhandler(CSRFError)(form_expired)

ISO_DAY = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
SLASHED_DAY = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")
# Where the customer sees scheduled payments: waiting for their day, or being charged.
UPCOMING = (ScheduledPaymentStatus.PENDING, ScheduledPaymentStatus.PROCESSING)
# Date errors on the amount step: typed but unreadable, today or before, past the window.
MALFORMED, TOO_SOON, TOO_LATE = "malformed", "too_soon", "too_late"


def read_date(typed: str) -> tuple[dt.date | None, str | None]:
    """The day typed on the amount step (empty: pay now) and what is wrong with it.

    A browser with a date picker sends ``YYYY-MM-DD``; one without shows a text box, where
    people write the day the way their language does (MM/DD/YYYY, or DD/MM/YYYY in
    Spanish)."""
    typed = typed.strip()
    if not typed:
        return None, None
    day = _parse_day(typed)
    if day is None:
        return None, MALFORMED
    first, last = schedule.scheduling_window_for_today()
    if day < first:
        return None, TOO_SOON
    if day > last:
        return None, TOO_LATE
    return day, None


def _parse_day(typed: str) -> dt.date | None:
    if match := ISO_DAY.fullmatch(typed):
        year, month, day = (int(part) for part in match.groups())
    elif match := SLASHED_DAY.fullmatch(typed):
        first, second, year = (int(part) for part in match.groups())
        month, day = (second, first) if current_language() == "es" else (first, second)
    else:
        return None
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


def amount_step_context(link: Link, *, typed: str = "", error: str | None = None) -> dict:
    """What the amount step shows about paying later: the window, what was typed and
    what was wrong with it, and the payments already scheduled through this link."""
    first, last = schedule.scheduling_window_for_today()
    session = object_session(link)
    upcoming = [row for row in scheduled_payments.for_link(session, link) if row.status in UPCOMING]
    return {
        "date_first": first,
        "date_last": last,
        "date_typed": typed,
        "date_error": error,
        "date_example": _numeric_day(first),
        "scheduled": upcoming,
    }


def _numeric_day(day: dt.date) -> str:
    """``day`` as people type it in the page language: 04/15/2026, or 15/04/2026."""
    if current_language() == "es":
        return f"{day.day:02d}/{day.month:02d}/{day.year}"
    return f"{day.month:02d}/{day.day:02d}/{day.year}"


def cancel_by(row: ScheduledPayment) -> dt.date:
    """The last day the customer may cancel: the day before the charge."""
    return row.charge_on - dt.timedelta(days=1)


def scheduled_page(session: Session, token: str, row: ScheduledPayment, **extra):
    """The page of one scheduled payment: Pending (with Cancel), being charged, Paid,
    Declined (with a way to pay another way) or Cancelled."""
    lookup = open_link(session, token)
    context = {
        "token": token,
        "row": row,
        "account": row.account,
        "payment": scheduled_payments.payment_of(session, row),
        "cancellable": row.status == ScheduledPaymentStatus.PENDING
        and schedule.cancellable(row.charge_on, schedule.org_today()),
        "cancel_by": cancel_by(row),
        "can_pay": lookup.usable and row.account.balance_cents > 0,
        **extra,
    }
    return render_template("pages/pay_scheduled.html", **context)


@bp.get("/<int:row_id>")
def show(token: str, row_id: int):
    with runtime().db.session() as session:
        row = _load(session, token, row_id)
        notice = request.args.get("notice")
        return scheduled_page(session, token, row, notice=notice if notice == "cancelled" else None)


@bp.get("/<int:row_id>/cancel")
def cancel_question(token: str, row_id: int):
    """The confirmation step: what would be cancelled, and the button that does it."""
    with runtime().db.session() as session:
        row = _load(session, token, row_id)
        if row.status != ScheduledPaymentStatus.PENDING:
            return redirect(url_for("schedule.show", token=token, row_id=row.id), code=303)
        if not schedule.cancellable(row.charge_on, schedule.org_today()):
            return scheduled_page(session, token, row, error="too_late")
        context = {"token": token, "row": row, "cancel_by": cancel_by(row)}
        return render_template("pages/pay_scheduled_cancel.html", **context)


@bp.post("/<int:row_id>/cancel")
@limiter.limit("30 per minute")
def cancel(token: str, row_id: int):
    with runtime().db.session() as session:
        row = _load(session, token, row_id)
        try:
            scheduled_payments.cancel(
                session,
                row,
                actor="customer",
                ip=request.remote_addr,
                user_agent=request.user_agent.string,
            )
        except PaymentError:  # the day before has passed since the question was asked
            session.rollback()
            return scheduled_page(session, token, row, error="too_late"), 409
        # Cancelled now or by an earlier tap of the same button: the page says so.
        notice = {"notice": "cancelled"} if row.status == ScheduledPaymentStatus.CANCELLED else {}
    return redirect(url_for("schedule.show", token=token, row_id=row_id, **notice), code=303)


def _load(session: Session, token: str, row_id: int) -> ScheduledPayment:
    """A scheduled payment made through this link, for a browser that passed the ZIP
    check; else the link's first page. The link may be used up by the charge itself (the
    balance paid in full): its payment's page still shows."""
    lookup = open_link(session, token)
    if lookup.state not in (LinkState.OPEN, LinkState.USED):
        abort(state_page(lookup.state))
    row = session.get(ScheduledPayment, row_id)
    if row is None or row.link_id != lookup.link.id or zip_needed(lookup.link):
        abort(to_landing(token))
    return row
