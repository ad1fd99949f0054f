"""GET/POST /u/<token>: stop emails to the address on an account, in one click.

The token is the account id signed for the ``unsubscribe`` purpose. It does not expire: an
unsubscribe link must keep working long after the email was sent, and the only thing it can
do is stop mail. GET only shows a confirmation (mail scanners and link previews follow
links), POST does it. The opt-out is kept on the address (``contacts``), not the account,
so every account sharing that address stops getting email.

POST is exempt from the site-wide CSRF check only so that mail providers can send RFC 8058
one-click requests (``List-Unsubscribe=One-Click``), which carry no form token; the
confirmation form itself still carries and checks one."""

from __future__ import annotations

from flask import Blueprint, g, render_template, request
from flask_babel import refresh
from flask_wtf.csrf import CSRFError, ValidationError, validate_csrf
from sqlalchemy import select
from sqlalchemy.orm import Session

from linkpay.i18n import normalize_language
from linkpay.models import Account, Channel, Contact
from linkpay.runtime import runtime
from linkpay.security import csrf
from linkpay.services.contacts import mark_contact
from linkpay.signing import Purpose
from linkpay.web.pay_common import page_context

bp = Blueprint("unsubscribe", __name__)


@bp.get("/u/<token>")
def confirm(token: str):
    with runtime().db.session() as session:
        account = _account_for(session, token)
        if account is None:
            return _page("invalid", None, status=404)
        state = "already" if _opted_out(session, account.email) else "confirm"
        return _page(state, account)


@bp.post("/u/<token>")
@csrf.exempt
def unsubscribe(token: str):
    one_click = request.form.get("List-Unsubscribe") == "One-Click"
    if not one_click:
        try:
            validate_csrf(request.form.get("csrf_token"))
        except ValidationError as exc:
            raise CSRFError(exc.args[0]) from exc
    with runtime().db.session() as session:
        account = _account_for(session, token)
        if account is None:
            return _page("invalid", None, status=404)
        mark_contact(
            session,
            Channel.EMAIL,
            account.email,
            opted_out=True,
            reason="unsubscribe_link",
            actor="customer",
            account_id=account.id,
            ip=request.remote_addr,
        )
        return _page("done", account)


def _account_for(session: Session, token: str) -> Account | None:
    verified = runtime().signer.verify(Purpose.UNSUBSCRIBE, token, max_age_seconds=None)
    if not verified.valid:
        return None
    account = session.get(Account, verified.subject_id)
    if account is None or not account.email:
        return None
    g.language = normalize_language(account.language)  # ?lang= still wins (i18n)
    refresh()  # a locale chosen earlier in this request must not stick
    return account


def _opted_out(session: Session, address: str) -> bool:
    return (
        session.scalar(
            select(Contact.id).where(
                Contact.channel == Channel.EMAIL,
                Contact.address == address,
                Contact.opted_out_at.is_not(None),
            )
        )
        is not None
    )


def _page(state: str, account: Account | None, status: int = 200):
    address = _mask(account.email) if account else ""
    html = render_template("pages/unsubscribe.html", state=state, address=address, **page_context())
    return html, status, {"Cache-Control": "no-store"}


def _mask(address: str) -> str:
    """``maria.lopez@example.com`` -> ``m***@example.com``: enough for the owner to
    recognise, little for anyone who was forwarded the email."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}"
