"""The checkout steps after the amount: method, review, confirm, and the receipt.

The card and bank inputs on the method page post to the gateway's tokenizer, never here;
the browser comes back to ``review`` with ``pm=<token>`` (or ``errors=<codes>``). Each
step works only on a checkout this browser started for this link, so a copied ``?c=``
shows nothing to anyone else. The receipt (and a repeated confirm) keeps working after
the payment used the link up.

Pay by Text is offered twice, as a checkbox: on the review step (carried by the confirm
form) and on the receipt (its own small form, which also turns it off). Either enrolls
only once the payment is paid or pending, with the method that payment used."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from babel.dates import format_time
from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from sqlalchemy.orm import Session

from linkpay.i18n import current_language
from linkpay.models import Checkout, EnrollmentStatus, Link, MethodKind, Payment, PaymentStatus
from linkpay.runtime import runtime
from linkpay.security import limiter
from linkpay.services import offers, payments, scheduled_payments
from linkpay.services import text_enrollment as pay_by_text
from linkpay.web import pay, pay_schedule
from linkpay.web.pay_common import (
    CHECKOUTS,
    open_link,
    own_checkout,
    page_context,
    remember,
    to_landing,
    zip_needed,
)

bp = Blueprint("checkout", __name__, url_prefix="/p/<token>")
bp.context_processor(page_context)
bp.errorhandler(CSRFError)(pay.form_expired)
FIELD_CODES = {"card": ("card_number", "expiry", "cvc", "name"), "bank": ("routing", "account")}


@bp.get("/method")
def method(token: str):
    kind = "bank" if request.args.get("kind") == "bank" else "card"
    with runtime().db.session() as session:
        link, checkout = _load(session, token, request.args.get("c"))
        _unless_paid(session, token, checkout)
        wanted = (request.args.get("errors") or "").split(",")
        context = {
            "token": token,
            "checkout": checkout,
            "kind": kind,
            "errors": [code for code in FIELD_CODES[kind] + ("method",) if code in wanted],
            "messages": field_messages(),
            "target": payments.method_form(checkout, url_for("checkout.review", token=token)),
        }
        return render_template("pages/pay_method.html", **context)


@bp.get("/review")
def review(token: str):
    with runtime().db.session() as session:
        link, checkout = _load(session, token, request.args.get("c"))
        _unless_paid(session, token, checkout)
        back = {"token": token, "c": checkout.public_id, "kind": request.args.get("kind")}
        if request.args.get("errors"):  # the tokenizer sent the form back to be fixed
            return redirect(url_for("checkout.method", errors=request.args["errors"], **back))
        if request.args.get("pm"):
            try:
                payments.attach_method(session, checkout, request.args["pm"])
            except payments.PaymentError:
                return redirect(url_for("checkout.method", errors="method", **back))
        if not checkout.method_token:
            return redirect(url_for("checkout.method", **back))
        charge_on = checkout.charge_on
        context = {
            "token": token,
            "checkout": checkout,
            "account": link.account,
            # Pay by Text saves the method of a payment made; a scheduled one is not yet.
            "pay_by_text": None if charge_on else _offer(session, link.account),
            "charge_on": charge_on,
        }
        return render_template("pages/pay_review.html", **context)


@bp.post("/confirm")
@limiter.limit("30 per minute")
def confirm(token: str):
    public_id = request.form.get("c")
    wants_pay_by_text = request.form.get("pay_by_text") == "1"
    try:
        with runtime().db.session() as session:
            _, checkout = _load(session, token, public_id)
            if checkout.charge_on is not None:  # a later day: scheduled, not charged
                scheduled_payments.schedule_checkout(
                    session,
                    checkout,
                    ip=request.remote_addr,
                    user_agent=request.user_agent.string,
                )
                return redirect(url_for("checkout.done", token=token, c=public_id), code=303)
            payment = payments.confirm(
                session, checkout, request.remote_addr, request.user_agent.string
            )
            if wants_pay_by_text:
                _enroll(session, checkout, payment, via="payment page")
            offers.settle_with(session, payment)
    except payments.PaymentError as exc:
        if exc.code == payments.NO_METHOD:
            return redirect(url_for("checkout.method", token=token, c=public_id), code=303)
        if exc.code in (payments.OVER_BALANCE, payments.BELOW_MINIMUM, payments.NOTHING_DUE):
            return to_landing(token, notice="balance_changed")
        if exc.code == scheduled_payments.BAD_DATE:  # the chosen day is today or past by now
            return to_landing(token, notice="date_changed")
        return to_landing(token)
    asked = {"pbt": "1"} if wants_pay_by_text else {}
    return redirect(url_for("checkout.done", token=token, c=public_id, **asked), code=303)


@bp.get("/done")
def done(token: str):
    """The receipt, the decline (with another try), or "still confirming"."""
    with runtime().db.session() as session:
        link, checkout = _load(session, token, request.args.get("c"))
        payment = payments.payment_for(session, checkout)
        if payment is None:
            scheduled = scheduled_payments.for_checkout(session, checkout)
            if scheduled is not None:
                return pay_schedule.scheduled_page(session, token, scheduled)
            return redirect(url_for("checkout.review", token=token, c=checkout.public_id))
        taken = payment.status in (PaymentStatus.PAID, PaymentStatus.PENDING)
        context = {
            "token": token,
            "checkout": checkout,
            "payment": payment,
            "account": link.account,
            "paid_at": local_time(payment),
            "pay_by_text": _offer(session, link.account) if taken else None,
            "asked_pay_by_text": request.args.get("pbt") == "1",
            "settled": offers.settled_by(session, payment) if taken else None,
        }
        return render_template("pages/pay_done.html", **context)


@bp.post("/text")
@limiter.limit("30 per minute")
def text_on(token: str):
    """The receipt's "Pay by Text" form: enroll with the method this payment used."""
    public_id = request.form.get("c")
    with runtime().db.session() as session:
        _, checkout = _load(session, token, public_id)
        payment = payments.payment_for(session, checkout)
        if payment is not None and request.form.get("pay_by_text") == "1":
            _enroll(session, checkout, payment, via="receipt page")
    return redirect(url_for("checkout.done", token=token, c=public_id), code=303)


@bp.post("/text/off")
@limiter.limit("30 per minute")
def text_off(token: str):
    """The receipt's "Turn off Pay by Text" button, for the account this browser paid."""
    public_id = request.form.get("c")
    with runtime().db.session() as session:
        link, checkout = _load(session, token, public_id)
        enrollment = pay_by_text.enrollment_for(session, link.account)
        if payments.payment_for(session, checkout) is not None and enrollment is not None:
            pay_by_text.cancel(
                session, enrollment, actor="customer", via="receipt page", ip=request.remote_addr
            )
    return redirect(url_for("checkout.done", token=token, c=public_id), code=303)


@bp.post("/retry")
def retry(token: str):
    """After a decline: a new checkout for the same amount, to try another method."""
    kind = "bank" if request.form.get("kind") == "bank" else "card"
    try:
        with runtime().db.session() as session:
            _, checkout = _load(session, token, request.form.get("c"))
            new_id = payments.retry(session, checkout).public_id
            remember(CHECKOUTS, new_id)
    except payments.PaymentError:
        return to_landing(token)
    return redirect(url_for("checkout.method", token=token, c=new_id, kind=kind), code=303)


def _load(session: Session, token: str, public_id: str | None) -> tuple[Link, Checkout]:
    """The link and this browser's checkout, or a detour to the link's first page (which
    explains an expired, used or locked link, asks the ZIP, or starts over). A checkout
    already confirmed always loads: its receipt outlives the link it used up."""
    lookup = open_link(session, token)
    checkout = own_checkout(session, lookup.link, public_id)
    if checkout is not None and _confirmed(session, checkout):
        return lookup.link, checkout
    if not lookup.usable or zip_needed(lookup.link) or checkout is None:
        abort(to_landing(token))
    return lookup.link, checkout


def _enroll(session: Session, checkout: Checkout, payment: Payment, *, via: str) -> None:
    """Turn Pay by Text on from a paid or pending payment. A declined one, or a phone that
    can no longer be texted, leaves it off: the receipt then says so or offers it again."""
    try:
        pay_by_text.enroll_from_checkout(
            session,
            checkout,
            payment,
            ip=request.remote_addr,
            user_agent=request.user_agent.string,
            language=current_language(),
            via=via,
        )
    except pay_by_text.EnrollmentError:
        session.rollback()


def _offer(session: Session, account) -> dict | None:
    """What the page shows of Pay by Text: the enrollment in force (waiting for OK, or on)
    or, when the phone on file can be texted, the checkbox with the consent wording."""
    enrollment = pay_by_text.enrollment_for(session, account)
    if enrollment is not None and enrollment.status != EnrollmentStatus.CANCELLED:
        return {"enrollment": enrollment, "method": enrollment.method}
    if not pay_by_text.enrollable(session, account):
        return None
    return {"enrollment": None, "consent": pay_by_text.consent_text(current_language())}


def _unless_paid(session: Session, token: str, checkout: Checkout) -> None:
    """A confirmed checkout cannot change; its page is the receipt."""
    if _confirmed(session, checkout):
        abort(redirect(url_for("checkout.done", token=token, c=checkout.public_id), code=303))


def _confirmed(session: Session, checkout: Checkout) -> bool:
    """Paid (or tried), or scheduled for a later day."""
    if payments.payment_for(session, checkout) is not None:
        return True
    return scheduled_payments.for_checkout(session, checkout) is not None


def field_messages() -> dict[str, str]:
    return {
        "card_number": _("Check the card number: it doesn't look like a valid card."),
        "expiry": _("Enter the expiration date as MM/YY. It can't be in the past."),
        "cvc": _("The CVC is the 3 or 4 digit code on your card."),
        "name": _("Enter the name as it appears on the card."),
        "routing": _("Check the routing number: it has 9 digits."),
        "account": _("Check the account number: it has 4 to 17 digits."),
        "method": _("We couldn't use that payment method. Please enter it again."),
    }


def method_words(source: Checkout | Payment) -> str:
    """The method in words, in the page language: "Visa ending 4242", "bank account ending 6789"."""
    if source.method_kind == MethodKind.BANK:
        return _("bank account ending %(last4)s", last4=source.method_last4)
    return _("%(brand)s ending %(last4)s", brand=source.method_label, last4=source.method_last4)


def local_time(payment: Payment) -> str:
    """The time of day of the payment in the organisation's zone, e.g. "11:00 AM MST"."""
    local = payment.created_at.astimezone(ZoneInfo(runtime().config["app.timezone"]))
    return f"{format_time(local, 'short', locale=current_language())} {local.tzname()}"


bp.add_app_template_global(method_words, "method_words")
