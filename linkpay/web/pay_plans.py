"""A payment plan from the customer's link: the offer (every installment's date and
amount), the method (through the gateway's tokenizer), the agreement and the signature,
then the plan itself (each installment Pending, Paid or Declined), replacing its method
(after a decline, or whenever the customer likes) and cancelling it.

A plan offer's link opens on the offer; once signed, on the plan. The method is taken
with a checkout, as for paying now, because the tokenizer round trip is bound to one; it
is remembered under its own session key, so the payment steps (which look only at
``CHECKOUTS``) can never charge it. Signing saves the method without making it the Pay by
Text default (``scheduled_payments.keep_method``) and calls ``plans.accept_offer``.
Replacing the method takes the same round trip through the same page, then a confirmation
that says what the new method will be charged next, then ``plans.change_method``."""

from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_wtf.csrf import CSRFError
from sqlalchemy import select
from sqlalchemy.orm import Session

from linkpay import schedule
from linkpay.models import Checkout, InstallmentStatus, Link, Offer, OfferKind, Plan, PlanStatus
from linkpay.runtime import runtime
from linkpay.security import limiter
from linkpay.services import offers, payments, plans, scheduled_payments
from linkpay.services.links import LinkLookup
from linkpay.services.offers import OfferError
from linkpay.web.pay_common import (
    form_expired,
    open_link,
    page_context,
    remember,
    remembers,
    to_landing,
    zip_needed,
)

bp = Blueprint("plans", __name__, url_prefix="/p/<token>")
bp.context_processor(page_context)
bp.errorhandler(CSRFError)(form_expired)
PLAN_CHECKOUTS = "pay_plan_checkouts"
NOTICES = {"signed", "cancelled", "method_changed"}
# What cancelling a plan stops: installments not yet charged, or waiting for their retry.
CANCELLABLE = (InstallmentStatus.PENDING, InstallmentStatus.RETRY_SCHEDULED)


def plan_step(session: Session, token: str, lookup: LinkLookup):
    """What a plan offer's link opens on: the signed plan, or the offer while it is open;
    None for any other link (or an offer that closed without a plan)."""
    plan = plans.plan_for_link(session, lookup.link)
    if plan is not None:
        return _plan_page(session, token, plan)
    offer = offers.offer_for_link(session, lookup.link)
    if offer is None or offer.kind != OfferKind.PLAN:
        return None
    context = {
        "token": token,
        "offer": offer,
        "first_name": lookup.link.account.first_name,
        "installments": offers.proposed_schedule(offer),
        "deadline": offers.offer_context(offer)["deadline_date"],
    }
    return render_template("pages/plan_offer.html", **context)


@bp.get("/plan")
def show(token: str):
    with runtime().db.session() as session:
        link = _open(session, token)
        plan = plans.plan_for_link(session, link)
        if plan is None:
            return to_landing(token)
        notice = request.args.get("notice")
        return _plan_page(session, token, plan, notice=notice if notice in NOTICES else None)


@bp.post("/plan/method")
def start(token: str):
    """The offer's Continue: a checkout to carry the tokenizer round trip for the method."""
    kind = "bank" if request.form.get("kind") == "bank" else "card"
    with runtime().db.session() as session:
        link = _open(session, token)
        offer = _open_offer(session, token, link)
        # The checkout only carries the tokenizer round trip; nothing charges it.
        first = min(offers.proposed_schedule(offer)[0].amount_cents, link.account.balance_cents)
        try:
            checkout = payments.start_checkout(session, link, first)
        except payments.PaymentError:
            return to_landing(token)
        remember(PLAN_CHECKOUTS, checkout.public_id)
        return redirect(url_for("plans.method", token=token, c=checkout.public_id, kind=kind), 303)


@bp.get("/plan/method")
def method(token: str):
    # The payment steps' field checks and wording; imported here because pay_checkout
    # (through pay) loads this module's hooks.
    from linkpay.web.pay_checkout import FIELD_CODES, field_messages

    kind = "bank" if request.args.get("kind") == "bank" else "card"
    with runtime().db.session() as session:
        link = _open(session, token)
        offer = _open_offer(session, token, link)
        checkout = _own_checkout(session, token, link, request.args.get("c"))
        wanted = (request.args.get("errors") or "").split(",")
        context = {
            "token": token,
            "offer": offer,
            "checkout": checkout,
            "kind": kind,
            "errors": [code for code in FIELD_CODES[kind] + ("method",) if code in wanted],
            "messages": field_messages(),
            "target": payments.method_form(checkout, url_for("plans.agreement", token=token)),
        }
        return render_template("pages/plan_method.html", **context)


@bp.get("/agreement")
def agreement(token: str):
    """Where the tokenizer sends the browser back: the agreement to read and sign."""
    with runtime().db.session() as session:
        link = _open(session, token)
        offer = _open_offer(session, token, link)
        checkout = _own_checkout(session, token, link, request.args.get("c"))
        back = {"token": token, "c": checkout.public_id, "kind": request.args.get("kind")}
        if request.args.get("errors"):
            return redirect(url_for("plans.method", errors=request.args["errors"], **back))
        if request.args.get("pm"):
            try:
                payments.attach_method(session, checkout, request.args["pm"])
            except payments.PaymentError:
                return redirect(url_for("plans.method", errors="method", **back))
        if not checkout.method_token:
            return redirect(url_for("plans.method", **back))
        return _sign_page(token, offer, checkout)


@bp.post("/agreement")
@limiter.limit("30 per minute")
def sign(token: str):
    name = request.form.get("signature", "")
    agreed = request.form.get("agree") == "1"
    with runtime().db.session() as session:
        link = _open(session, token)
        if plans.plan_for_link(session, link) is not None:  # a second tap of Sign
            return redirect(url_for("plans.show", token=token, notice="signed"), code=303)
        offer = _open_offer(session, token, link)
        checkout = _own_checkout(session, token, link, request.form.get("c"))
        if not checkout.method_token:
            return redirect(url_for("plans.method", token=token, c=checkout.public_id), 303)
        if not " ".join(name.split()):
            return _sign_page(token, offer, checkout, name=name, agreed=agreed, error="name"), 400
        if not agreed:
            return _sign_page(token, offer, checkout, name=name, error="agree"), 400
        try:
            method = scheduled_payments.keep_method(session, link.account, checkout.method_token)
            plans.accept_offer(
                session,
                offer,
                signature_name=name,
                agreement_version=request.form.get("version", ""),
                method=method,
                ip=request.remote_addr,
                user_agent=request.user_agent.string,
            )
        except payments.PaymentError:
            session.rollback()
            return redirect(url_for("plans.method", token=token, c=checkout.public_id), 303)
        except OfferError as exc:
            session.rollback()
            if exc.code == plans.AGREEMENT_CHANGED:
                return _sign_page(token, offer, checkout, name=name, error="changed"), 409
            return to_landing(token)  # closed meanwhile: signed by the other tap, or expired
    return redirect(url_for("plans.show", token=token, notice="signed"), code=303)


@bp.post("/plan/change-method")
@limiter.limit("30 per minute")
def change_start(token: str):
    """Update payment method: a checkout to carry the tokenizer round trip, as for signing."""
    kind = "bank" if request.form.get("kind") == "bank" else "card"
    with runtime().db.session() as session:
        link, plan = _changeable_plan(session, token)
        # The checkout only carries the tokenizer round trip; nothing charges it.
        upcoming = plans.next_charge(plan)
        amount = (
            upcoming.amount_cents if upcoming is not None else plan.installments[-1].amount_cents
        )
        try:
            checkout = payments.start_checkout(
                session, link, min(amount, link.account.balance_cents)
            )
        except payments.PaymentError:
            return to_landing(token)
        remember(PLAN_CHECKOUTS, checkout.public_id)
    return redirect(
        url_for("plans.change_method", token=token, c=checkout.public_id, kind=kind), 303
    )


@bp.get("/plan/change-method")
def change_method(token: str):
    from linkpay.web.pay_checkout import FIELD_CODES, field_messages

    kind = "bank" if request.args.get("kind") == "bank" else "card"
    with runtime().db.session() as session:
        link, plan = _changeable_plan(session, token)
        checkout = _own_checkout(session, token, link, request.args.get("c"))
        wanted = (request.args.get("errors") or "").split(",")
        context = {
            "token": token,
            "checkout": checkout,
            "kind": kind,
            "changing": True,
            "method_endpoint": "plans.change_method",
            "errors": [code for code in FIELD_CODES[kind] + ("method",) if code in wanted],
            "messages": field_messages(),
            "target": payments.method_form(checkout, url_for("plans.change_review", token=token)),
        }
        return render_template("pages/plan_method.html", **context)


# One lowercase word after the token: the return paths a gateway's tokenizer accepts.
@bp.get("/newmethod")
def change_review(token: str):
    """Where the tokenizer sends the browser back: the new method and what it pays next."""
    with runtime().db.session() as session:
        link, plan = _changeable_plan(session, token)
        checkout = _own_checkout(session, token, link, request.args.get("c"))
        back = {"token": token, "c": checkout.public_id, "kind": request.args.get("kind")}
        if request.args.get("errors"):
            return redirect(url_for("plans.change_method", errors=request.args["errors"], **back))
        if request.args.get("pm"):
            try:
                payments.attach_method(session, checkout, request.args["pm"])
            except payments.PaymentError:
                return redirect(url_for("plans.change_method", errors="method", **back))
        if not checkout.method_token:
            return redirect(url_for("plans.change_method", **back))
        zone = schedule.org_zone()
        retry = next(
            (e for e in plan.installments if e.status == InstallmentStatus.RETRY_SCHEDULED), None
        )
        upcoming = plans.next_charge(plan)
        context = {
            "token": token,
            "plan": plan,
            "checkout": checkout,
            "method": plan.method,
            "retry": retry,
            "retry_soon": retry is not None and not plans.charge_in_flight(session, plan),
            "retry_on": schedule.local_day(retry.due_at, zone) if retry else None,
            "upcoming": upcoming,
            "upcoming_on": schedule.local_day(upcoming.due_at, zone) if upcoming else None,
        }
        return render_template("pages/plan_method_confirm.html", **context)


@bp.post("/newmethod")
@limiter.limit("30 per minute")
def change_confirm(token: str):
    with runtime().db.session() as session:
        link, plan = _changeable_plan(session, token)
        checkout = _own_checkout(session, token, link, request.form.get("c"))
        back = {"token": token, "c": checkout.public_id}
        if not checkout.method_token:
            return redirect(url_for("plans.change_method", **back), 303)
        try:
            method = scheduled_payments.keep_method(session, link.account, checkout.method_token)
            plans.change_method(
                session,
                plan,
                method,
                ip=request.remote_addr,
                user_agent=request.user_agent.string,
            )
        except payments.PaymentError:
            session.rollback()
            return redirect(url_for("plans.change_method", errors="method", **back), 303)
        except OfferError:
            session.rollback()  # the plan ended meanwhile (cancelled or completed)
            return redirect(url_for("plans.show", token=token), 303)
    return redirect(url_for("plans.show", token=token, notice="method_changed"), code=303)


@bp.get("/plan/cancel")
def cancel_question(token: str):
    with runtime().db.session() as session:
        plan = _active_plan(session, token)
        left = [each for each in plan.installments if each.status in CANCELLABLE]
        context = {"token": token, "plan": plan, "left": left}
        return render_template("pages/plan_cancel.html", **context)


@bp.post("/plan/cancel")
@limiter.limit("30 per minute")
def cancel(token: str):
    with runtime().db.session() as session:
        plan = _active_plan(session, token)
        plans.cancel_plan(session, plan, actor="customer", ip=request.remote_addr)
    return redirect(url_for("plans.show", token=token, notice="cancelled"), code=303)


def _plan_page(session: Session, token: str, plan: Plan, *, notice: str | None = None):
    zone = schedule.org_zone()
    # A declined charge waiting for its retry shows as Declined with the retry's day.
    retry_on = {
        each.id: schedule.local_day(each.due_at, zone)
        for each in plan.installments
        if each.status == InstallmentStatus.RETRY_SCHEDULED
    }
    declined = (InstallmentStatus.DECLINED, InstallmentStatus.RETRY_SCHEDULED)
    upcoming = plans.next_charge(plan) if plan.status == PlanStatus.ACTIVE else None
    context = {
        "token": token,
        "plan": plan,
        "retry_on": retry_on,
        "method": plan.method,
        "account": plan.account,
        "declined": any(each.status in declined for each in plan.installments),
        "retrying": bool(retry_on),
        "upcoming": upcoming,
        "upcoming_on": schedule.local_day(upcoming.due_at, zone) if upcoming else None,
        "notice": notice,
        "can_pay": plan.status == PlanStatus.CANCELLED and plan.account.balance_cents > 0,
    }
    return render_template("pages/plan_view.html", **context)


def _sign_page(token: str, offer: Offer, checkout: Checkout, **form):
    # The agreement is shown in the language it is recorded in (the account's), word for
    # word: what the customer signs is exactly what is stored with the signature.
    account = offer.account
    context = {
        "token": token,
        "offer": offer,
        "checkout": checkout,
        "installments": offers.proposed_schedule(offer),
        "agreement": plans.agreement_text(offer, account.language),
        "agreement_language": account.language,
        "version": plans.AGREEMENT_VERSION,
        "name": form.get("name", ""),
        "agreed": form.get("agreed", False),
        "error": form.get("error"),
    }
    return render_template("pages/plan_sign.html", **context)


def _open(session: Session, token: str) -> Link:
    """The link, usable and past the ZIP check in this browser; else its first page."""
    lookup = open_link(session, token)
    if not lookup.usable or zip_needed(lookup.link):
        abort(to_landing(token))
    return lookup.link


def _open_offer(session: Session, token: str, link: Link) -> Offer:
    offer = offers.offer_for_link(session, link)
    if offer is None or offer.kind != OfferKind.PLAN:
        abort(to_landing(token))
    return offer


def _own_checkout(session: Session, token: str, link: Link, public_id: str | None) -> Checkout:
    """The method checkout this browser started for this link's plan offer."""
    checkout = None
    if public_id and remembers(PLAN_CHECKOUTS, public_id):
        checkout = session.scalar(
            select(Checkout).where(Checkout.public_id == public_id, Checkout.link_id == link.id)
        )
    if checkout is None:
        abort(to_landing(token))
    return checkout


def _changeable_plan(session: Session, token: str) -> tuple[Link, Plan]:
    """The link and its active plan, for replacing the plan's method."""
    plan = _active_plan(session, token)
    return session.get(Link, plan.offer.link_id), plan


def _active_plan(session: Session, token: str) -> Plan:
    link = _open(session, token)
    plan = plans.plan_for_link(session, link)
    if plan is None:
        abort(to_landing(token))
    if plan.status != PlanStatus.ACTIVE:
        abort(redirect(url_for("plans.show", token=token), code=303))
    return plan
