"""The settlement offer step of the payment page, and the page of an offer that expired.

A link of an account with an open settlement offer opens on it ("Pay $X by DATE to settle
your balance of $Y") before the amount step. ``offers.allow_skip`` decides whether the
customer may pay another amount instead; when it is off, the amount step is closed while
the offer is open, and the page offers only the offer (and the account's plan offer, if
there is one). Paying the offer's amount is an ordinary checkout (method, review,
confirm); ``checkout.confirm`` then settles the offer (``offers.settle_with``)."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for
from flask_wtf.csrf import CSRFError
from sqlalchemy.orm import Session

from linkpay.models import Link
from linkpay.runtime import runtime
from linkpay.services import links, offers, payments, plans
from linkpay.services.links import LinkLookup, LinkState
from linkpay.web.pay_common import (
    CHECKOUTS,
    form_expired,
    open_link,
    page_context,
    remember,
    to_landing,
    zip_needed,
)

bp = Blueprint("offer", __name__, url_prefix="/p/<token>")
bp.context_processor(page_context)
bp.errorhandler(CSRFError)(form_expired)


def skip_allowed() -> bool:
    return bool(runtime().config["offers.allow_skip"])


def amount_step_closed(session: Session, link: Link) -> bool:
    """Whether the amount step is closed to this link: an open settlement offer that the
    organisation does not let customers skip."""
    return not skip_allowed() and offers.settlement_for(session, link) is not None


def offer_step(session: Session, token: str, lookup: LinkLookup):
    """The settlement offer page, when the link opens on one; None otherwise (or when the
    customer chose to pay another amount and may)."""
    offer = offers.settlement_for(session, lookup.link)
    if offer is None or (request.args.get("step") == "amount" and skip_allowed()):
        return None
    account = lookup.link.account
    plan_offer = offers.open_plan_offer(session, account.id)
    context = {
        "token": token,
        "offer": offer,
        "first_name": account.first_name,
        "balance_cents": account.balance_cents,
        "deadline": offers.offer_context(offer)["deadline_date"],
        "may_skip": skip_allowed(),
        "plan_url": links.link_url(plan_offer.link_id) if plan_offer is not None else None,
    }
    return render_template("pages/pay_offer.html", **context)


@bp.post("/settle")
def settle(token: str):
    """The offer's "Pay $X" button: a checkout for exactly the offer's amount."""
    kind = "bank" if request.form.get("kind") == "bank" else "card"
    with runtime().db.session() as session:
        lookup = open_link(session, token)
        if not lookup.usable or zip_needed(lookup.link):
            return to_landing(token)
        offer = offers.settlement_for(session, lookup.link)
        if offer is None:  # closed or past its deadline since the page was drawn
            return to_landing(token, notice="offer_closed")
        try:
            checkout = payments.start_checkout(session, lookup.link, offer.amount_cents)
        except payments.PaymentError:
            return to_landing(token)
        remember(CHECKOUTS, checkout.public_id)
        target = url_for("checkout.method", token=token, c=checkout.public_id, kind=kind)
        return redirect(target, code=303)


def expired_offer_page(session: Session, lookup: LinkLookup):
    """An expired link that was an offer's (and not a signed plan's): "This offer has
    expired", with the same "send me a new link" button as any expired link, so the
    customer can still pay the balance through a new, ordinary link. None otherwise."""
    if lookup.state != LinkState.EXPIRED:
        return None
    if offers.offer_on_link(session, lookup.link) is None:
        return None
    if plans.plan_for_link(session, lookup.link) is not None:
        return None
    return render_template("pages/pay_offer_expired.html"), 410
