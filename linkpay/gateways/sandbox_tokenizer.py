"""The sandbox gateway's tokenizer: ``POST /sandbox-gateway/tokenize``.

It stands in for a processor's hosted fields. The payment page's card and bank inputs
submit here, not to linkpay, so no card or bank number ever reaches linkpay's handlers. It
checks what was typed (Luhn, a future expiry, CVC, name; or the ABA checksum and the
account number's length), keeps a token with the outcome, brand and last four, and sends
the browser back to the page named in the signed ``return_to`` with ``pm=<token>``, or with
``errors=<codes>`` (never the number) so the page can say what to fix.

Conceptually another origin, so linkpay's CSRF token does not apply: the round trip is
bound instead by ``return_to``, a signed, expiring (checkout, path) pair that only ever
names one of linkpay's own ``/p/...`` pages, so it cannot be used as an open redirect.
Nothing here logs or stores a full number."""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import urlencode

from flask import Blueprint, redirect, render_template, request, url_for
from flask import session as browser
from stdnum import luhn
from stdnum.us import rtn

from linkpay.gateways.sandbox import bank_outcome, card_brand, card_outcome, read_return, vault
from linkpay.models import MethodKind
from linkpay.runtime import runtime
from linkpay.security import csrf, limiter
from linkpay.web.pay_common import LANGUAGE, page_context, use_language

bp = Blueprint("sandbox_gateway", __name__, url_prefix="/sandbox-gateway")
csrf.exempt(bp)
bp.context_processor(page_context)

SEPARATORS = re.compile(r"[\s\-]")
EXPIRY = re.compile(r"(\d{1,2})\s*/\s*(\d{2}|\d{4})|(\d{2})(\d{2})")
MAX_YEARS_AHEAD = 20
Method = tuple[MethodKind, str, str, str]  # kind, label, last4, outcome


@bp.post("/tokenize")
@limiter.limit("60 per minute")
def tokenize():
    back = read_return(request.form.get("return_to", ""))
    if back is None:  # forged, mangled or over an hour old: nowhere safe to go back to
        return redirect(url_for("sandbox_gateway.expired"), code=303)
    checkout_public_id, path = back
    kind = MethodKind.BANK if request.form.get("kind") == "bank" else MethodKind.CARD
    check = check_bank if kind == MethodKind.BANK else check_card
    errors, method = check(request.form)
    if errors or method is None:
        return _back(path, c=checkout_public_id, kind=kind.value, errors=",".join(errors))
    with runtime().db.session() as session:
        token = vault(session, *method)
    return _back(path, c=checkout_public_id, pm=token)


@bp.get("/expired")
def expired():
    use_language(browser.get(LANGUAGE))
    return render_template("pages/form_expired.html", token=None), 400


def _back(path: str, **params: str):
    # ``path`` came out of a verified signature and matched linkpay's /p/ pattern.
    return redirect(f"{path}?{urlencode(params)}", code=303)


def digits_only(value: str | None) -> str | None:
    """The digits of a number typed with spaces or dashes; None if anything else is in it."""
    compact = SEPARATORS.sub("", value or "")
    return compact if compact.isascii() and compact.isdigit() else None


def check_card(form: Mapping[str, str]) -> tuple[list[str], Method | None]:
    number = digits_only(form.get("number"))
    errors = []
    if not number or not 12 <= len(number) <= 19 or not luhn.is_valid(number):
        errors.append("card_number")
    if not expiry_ok(form.get("expiry", "")):
        errors.append("expiry")
    cvc = (form.get("cvc") or "").strip()
    if not (cvc.isascii() and cvc.isdigit() and 3 <= len(cvc) <= 4):
        errors.append("cvc")
    name = " ".join((form.get("name") or "").split())
    if not name or len(name) > 100:
        errors.append("name")
    if errors or number is None:
        return errors, None
    return [], (MethodKind.CARD, card_brand(number), number[-4:], card_outcome(number))


def check_bank(form: Mapping[str, str]) -> tuple[list[str], Method | None]:
    routing = digits_only(form.get("routing"))
    account = digits_only(form.get("account"))
    errors = []
    if not routing or len(routing) != 9 or not rtn.is_valid(routing):
        errors.append("routing")
    if not account or not 4 <= len(account) <= 17:
        errors.append("account")
    if errors or routing is None or account is None:
        return errors, None
    return [], (MethodKind.BANK, "Bank", account[-4:], bank_outcome(routing, account))


def expiry_ok(text: str) -> bool:
    """MM/YY (or MM/YYYY, MMYY), valid through the end of that month, and not absurdly far."""
    match = EXPIRY.fullmatch(text.strip())
    if match is None:
        return False
    month = int(match[1] or match[3])
    year = int(match[2] or match[4])
    year += 2000 if year < 100 else 0
    now = runtime().now()
    if not 1 <= month <= 12:
        return False
    return (now.year, now.month) <= (year, month) and year <= now.year + MAX_YEARS_AHEAD
