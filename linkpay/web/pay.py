"""The payment page a link opens: ``/p/<token>``, its ZIP question and its amount step.

``GET``/``HEAD /p/<token>`` only reads (a GET also counts the open): SMS preview bots fetch
links, and a fetch must never pay, consume or lock anything. Every change is a POST with a
CSRF token. The later steps (method, review, confirm, receipt) are in ``pay_checkout``."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for
from flask_wtf.csrf import CSRFError
from sqlalchemy.orm import Session

from linkpay import postal_codes
from linkpay.money import parse_dollars, plain_dollars
from linkpay.runtime import runtime
from linkpay.security import limiter
from linkpay.services import link_access, payments
from linkpay.services.link_access import ZipCheck
from linkpay.services.links import LinkLookup, LinkState
from linkpay.web import pay_offers, pay_plans, pay_schedule
from linkpay.web.pay_common import (
    CHECKOUTS,
    ZIP_PROVEN,
    form_expired,
    open_link,
    page_context,
    remember,
    state_page,
    to_landing,
    zip_needed,
)

bp = Blueprint("pay", __name__, url_prefix="/p/<token>")
bp.context_processor(page_context)
bp.errorhandler(CSRFError)(form_expired)
NOTICES = {"balance_changed", "date_changed", "offer_closed"}


@bp.get("")
def landing(token: str):
    with runtime().db.session() as session:
        lookup = open_link(session, token)
        if lookup.link is not None and request.method == "GET":
            link_access.record_open(session, lookup.link)
        return _first_page(session, lookup)


@bp.post("/zip")
@limiter.limit("20 per minute")
def zip_answer(token: str):
    with runtime().db.session() as session:
        lookup = open_link(session, token)
        if not lookup.usable or not zip_needed(lookup.link):
            return to_landing(token)
        answer = request.form.get("zip", "")
        if not answer.strip():  # an empty form is not an answer: it does not count
            return _zip_page(token, error=True)
        result = link_access.check_zip(
            session,
            lookup.link,
            answer,
            ip=request.remote_addr,
            user_agent=request.user_agent.string,
        )
        if result == ZipCheck.OK:
            remember(ZIP_PROVEN, lookup.link.id)
            return to_landing(token)
        if result == ZipCheck.LOCKED:
            return state_page(LinkState.LOCKED)
        if result == ZipCheck.UNVERIFIABLE:
            return state_page("unverifiable")
        return _zip_page(token, error=True)


@bp.post("/amount")
def amount(token: str):
    kind = "bank" if request.form.get("kind") == "bank" else "card"
    typed = request.form.get("amount", "")
    typed_date = request.form.get("on", "")
    with runtime().db.session() as session:
        lookup = open_link(session, token)
        if not lookup.usable or zip_needed(lookup.link):
            return to_landing(token)
        if pay_offers.amount_step_closed(session, lookup.link):
            return to_landing(token)
        again = {"typed": typed, "typed_date": typed_date, "kind": kind}
        charge_on, date_error = pay_schedule.read_date(typed_date)
        try:
            checkout = payments.start_checkout(session, lookup.link, parse_dollars(typed))
        except ValueError:
            return _amount_page(token, lookup, error="invalid", date_error=date_error, **again)
        except payments.PaymentError as exc:
            if exc.code in (payments.NOTHING_DUE, payments.LINK_CLOSED):
                return to_landing(token)
            return _amount_page(token, lookup, error=exc.code, date_error=date_error, **again)
        if date_error:
            session.rollback()  # no checkout until the date is right
            return _amount_page(token, lookup, date_error=date_error, **again)
        checkout.charge_on = charge_on
        remember(CHECKOUTS, checkout.public_id)
        target = url_for("checkout.method", token=token, c=checkout.public_id, kind=kind)
        return redirect(target, code=303)


@bp.post("/fresh")
@limiter.limit("10 per minute")
def fresh(token: str):
    """The "send me a new link" button of an expired link: to the phone or email on file."""
    with runtime().db.session() as session:
        lookup = open_link(session, token)
        if lookup.state != LinkState.EXPIRED:
            return to_landing(token)
        sent = link_access.send_fresh_link(session, lookup.link)
    return state_page(LinkState.EXPIRED, fresh="sent" if sent else "too_soon", status=200)


def _first_page(session: Session, lookup: LinkLookup):
    """An open link shows the ZIP question (when configured), then a plan offer or plan
    (on a plan offer's link), a settlement offer, or the amount step."""
    if not lookup.usable:
        return pay_offers.expired_offer_page(session, lookup) or state_page(lookup.state)
    token = request.view_args["token"]
    if lookup.link.account.balance_cents <= 0:
        return state_page(LinkState.USED)
    if zip_needed(lookup.link):
        if postal_codes.match_key(lookup.link.account.zip) is None:
            return state_page("unverifiable")
        return _zip_page(token)
    if request.args.get("step") != "amount":
        page = pay_plans.plan_step(session, token, lookup)
        if page is not None:
            return page
    page = pay_offers.offer_step(session, token, lookup)
    if page is not None:
        return page
    notice = request.args.get("notice")
    return _amount_page(token, lookup, notice=notice if notice in NOTICES else None)


def _zip_page(token: str, *, error: bool = False):
    # Nothing of the account is on this page: not even the first name.
    return render_template("pages/pay_zip.html", token=token, error=error), 400 if error else 200


def _amount_page(
    token: str,
    lookup: LinkLookup,
    *,
    typed: str | None = None,
    error: str | None = None,
    kind: str = "card",
    notice: str | None = None,
    typed_date: str = "",
    date_error: str | None = None,
):
    account = lookup.link.account
    low, high = payments.amount_range(account)
    context = {
        "token": token,
        "first_name": account.first_name,
        "balance_cents": account.balance_cents,
        "due_date": account.due_date,
        "amount": typed if typed is not None else plain_dollars(account.balance_cents),
        "min_cents": low,
        "max_cents": high,
        "error": error,
        "kind": kind,
        "notice": notice,
        **pay_schedule.amount_step_context(lookup.link, typed=typed_date, error=date_error),
    }
    failed = error or date_error
    return render_template("pages/pay_amount.html", **context), 400 if failed else 200
