"""What the payment pages share: reading the link, the page language, what this browser
has proven (the ZIP) or started (checkouts), and the pages for links that cannot be used.

A link's state page (invalid, expired, used, locked) shows no account data at all: the
organisation's name and support phone are the only facts on it."""

from __future__ import annotations

import flask_babel
from flask import g, redirect, render_template, request, url_for
from flask import session as browser
from sqlalchemy import select
from sqlalchemy.orm import Session

from linkpay.i18n import LANGUAGES, current_language
from linkpay.models import Checkout, Link
from linkpay.runtime import runtime
from linkpay.services import links
from linkpay.services.links import LinkLookup, LinkState
from linkpay.services.messages import org_context

ZIP_PROVEN, CHECKOUTS, LANGUAGE = "pay_zip_ok", "pay_checkouts", "lang"
REMEMBER_AT_MOST = 10  # the session cookie stays small
# The blueprints under /p/<token>: a page one of them draws for a POST links its other
# language to the link's first page.
PAY_BLUEPRINTS = ("pay", "checkout", "schedule", "offer", "plans")
STATE_STATUS = {
    LinkState.INVALID: 404,
    LinkState.EXPIRED: 410,
    LinkState.USED: 200,
    LinkState.LOCKED: 403,
}


def open_link(session: Session, token: str) -> LinkLookup:
    """Look the token up and choose the page language: an explicit ``?lang=`` (kept for
    the next pages), else the account's language."""
    lookup = links.lookup(session, token)
    asked = request.args.get("lang")
    if asked in LANGUAGES:
        browser[LANGUAGE] = asked
    account_language = lookup.link.account.language if lookup.link is not None else None
    use_language(browser.get(LANGUAGE) or account_language)
    return lookup


def use_language(code: str | None) -> None:
    """Render this response in ``code`` (or the browser's preference when None). Flask-Babel
    caches the locale once it is first asked for, so the cache is cleared with the choice."""
    g.language = code
    flask_babel.refresh()


def remember(key: str, value) -> None:
    kept = [v for v in browser.get(key, []) if v != value]
    browser[key] = [*kept[-(REMEMBER_AT_MOST - 1) :], value]


def remembers(key: str, value) -> bool:
    return value in browser.get(key, [])


def zip_needed(link: Link) -> bool:
    verifying = runtime().config["links.verification"] == "zip"
    return verifying and not remembers(ZIP_PROVEN, link.id)


def own_checkout(session: Session, link: Link | None, public_id: str | None) -> Checkout | None:
    """The checkout ``public_id`` if this browser started it, for this link."""
    if link is None or not public_id or not remembers(CHECKOUTS, public_id):
        return None
    return session.scalar(
        select(Checkout).where(Checkout.public_id == public_id, Checkout.link_id == link.id)
    )


def state_page(state: str, *, fresh: str | None = None, status: int | None = None):
    """The page for a link that cannot be used (a ``LinkState``, or ``"unverifiable"``:
    ZIP verification is on and the account has no ZIP to compare with), with ``fresh``
    news of a new link (sent / too_soon) on an expired one."""
    code = status or STATE_STATUS.get(state, 200)
    return render_template("pages/link_state.html", state=str(state), fresh=fresh), code


def form_expired(_error):
    """A form older than the session it came from (or forged): start from the link again."""
    token = (request.view_args or {}).get("token")
    return render_template("pages/form_expired.html", token=token), 400


def to_landing(token: str, **args):
    return redirect(url_for("pay.landing", token=token, **args), code=303)


def language_switch() -> dict:
    """The one-tap link to the other language, on every page. A page drawn by a POST
    links to the payment page itself, since its own address only takes a form."""
    other = "es" if current_language() == "en" else "en"
    view_args = request.view_args or {}
    if request.method in ("GET", "HEAD") and request.endpoint:
        args = {**request.args.to_dict(), **view_args, "lang": other}
        href = url_for(request.endpoint, **args)
    elif request.blueprint in PAY_BLUEPRINTS and "token" in view_args:
        href = url_for("pay.landing", token=view_args["token"], lang=other)
    elif request.endpoint:
        # A page whose form posts back to its own address (unsubscribe): that address
        # answers GET too.
        href = url_for(request.endpoint, **view_args, lang=other)
    else:
        href = None
    return {"switch_language": other, "switch_href": href}


def page_context() -> dict:
    return {"org": org_context(), **language_switch()}
