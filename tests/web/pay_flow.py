"""Helpers for the payment page tests: accounts and links to pay, and a customer who walks
the real forms (hidden fields, CSRF token and all) with Flask's test client."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import func, select

from linkpay.models import Account, Link, Offer, PlanFrequency
from linkpay.services import links, plans

CARD = {"number": "4242 4242 4242 4242", "expiry": "12/34", "cvc": "123", "name": "Ana Diaz"}
DECLINED_CARD = {**CARD, "number": "4000 0000 0000 0002"}
NO_FUNDS_CARD = {**CARD, "number": "4000000000009995"}
BANK = {"routing": "110000000", "account": "000123456789"}
DECLINED_BANK = {"routing": "110000000", "account": "000111111116"}
# What a phone's browser sends, for the pages that record who signed or consented.
IP, UA = "203.0.113.9", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0)"


def make_account(db, **fields) -> Account:
    values = {
        "account_number": "ACCT-10046789",
        "first_name": "Ana",
        "last_name": "Diaz",
        "phone": "+16025550143",
        "email": "ana@example.com",
        "balance_cents": 12_450,
        "due_date": dt.date(2026, 3, 25),
        "zip": "85004",
        "language": "en",
    }
    values.update(fields)
    account = Account(**values)
    db.add(account)
    db.commit()
    return account


def make_link(db, account: Account, *, channel: str = "sms") -> tuple[Link, str]:
    link = links.create_link(db, account, channel=channel)
    db.commit()
    return link, link_token(link.id)


def plan_offer(db, account: Account, **terms) -> Offer:
    """An offer of the balance in three monthly payments from March 31, 2026, unless
    ``terms`` say otherwise; its link is ``offer.link_id``."""
    values = {
        "installments": 3,
        "frequency": PlanFrequency.MONTHLY,
        "first_date": dt.date(2026, 3, 31),
        "expires_in_days": 7,
        "actor": "staff:test",
    }
    offer = plans.create_plan_offer(db, account, **{**values, **terms})
    db.commit()
    return offer


def token_of(url: str) -> str:
    return urlsplit(url).path.rsplit("/", 1)[-1]


def link_token(link_id: int) -> str:
    return token_of(links.link_url(link_id))


def text(response) -> str:
    return response.get_data(as_text=True)


def count(db, model, *where) -> int:
    """Rows of ``model`` as the database has them now (what the pages wrote meanwhile)."""
    db.expire_all()
    return db.scalar(select(func.count()).select_from(model).where(*where))


@dataclass
class Form:
    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)
    buttons: list[tuple[str, str]] = field(default_factory=list)


class _FormParser(HTMLParser):
    def __init__(self):
        super().__init__()
        self.forms: list[Form] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append(Form(attrs.get("action", ""), attrs.get("method", "get").lower()))
        elif self.forms and tag == "input" and attrs.get("name"):
            if attrs.get("type") in ("radio", "checkbox") and "checked" not in attrs:
                return  # as a browser does: an unticked box is not sent
            self.forms[-1].fields[attrs["name"]] = attrs.get("value") or ""
        elif self.forms and tag == "button" and attrs.get("name"):
            self.forms[-1].buttons.append((attrs["name"], attrs.get("value", "")))


def forms(html: str) -> list[Form]:
    parser = _FormParser()
    parser.feed(html)
    return parser.forms


def form(html: str, action_part: str) -> Form:
    found = [f for f in forms(html) if action_part in f.action]
    assert found, f"no form posting to *{action_part}* in page"
    return found[0]


def query(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


class Customer:
    """One browser (one cookie jar) paying one link through the real forms."""

    def __init__(self, client, token: str):
        self.client = client
        self.token = token

    @classmethod
    def on_a_phone(cls, client, token: str) -> Customer:
        """A customer whose requests carry ``IP`` and ``UA``."""
        client.environ_base.update(REMOTE_ADDR=IP, HTTP_USER_AGENT=UA)
        return cls(client, token)

    def open(self, **args):
        return self.client.get(f"/p/{self.token}", query_string=args)

    def start(self, action_part: str, **data):
        """Submit the link page's form posting to *action_part* with ``data`` added;
        returns the page it leads to (a method step starts this way)."""
        start_form = form(text(self.open()), action_part)
        return self.client.post(
            start_form.action, data={**start_form.fields, **data}, follow_redirects=True
        )

    def choose(self, amount: str | None = None, kind: str = "card", **fields):
        """Submit the amount step (with any other ``fields``, a date to pay on say);
        returns the method page (or the amount page again)."""
        data = {"kind": kind, **fields}
        if amount is not None:
            data["amount"] = amount
        return self.start("/amount", **data)

    def tokenize(self, method_page, details: dict):
        """Fill the card or bank inputs and submit them to the tokenizer (no redirects)."""
        tokenizer_form = form(method_page.get_data(as_text=True), "/sandbox-gateway/")
        return self.client.post(tokenizer_form.action, data={**tokenizer_form.fields, **details})

    def past_tokenizer(self, method_page, details: dict):
        """Tokenize ``details`` and follow the tokenizer back to the page after it."""
        answer = self.tokenize(method_page, details)
        assert answer.status_code == 303, answer.status_code
        return self.client.get(answer.headers["Location"])

    def review(
        self,
        amount: str | None = None,
        kind: str = "card",
        details: dict | None = None,
        **fields,
    ):
        method_page = self.choose(amount, kind, **fields)
        return self.past_tokenizer(method_page, details or (BANK if kind == "bank" else CARD))

    def confirm_form(self, review_page) -> Form:
        return form(review_page.get_data(as_text=True), "/confirm")

    def confirm(self, review_page, **fields):
        """Submit Confirm on ``review_page`` (with any ``fields`` ticked or typed there);
        returns the page after it (followed)."""
        confirm = self.confirm_form(review_page)
        data = {**confirm.fields, **fields}
        return self.client.post(confirm.action, data=data, follow_redirects=True)

    def pay(self, amount: str | None = None, kind: str = "card", details: dict | None = None):
        """The whole journey; returns the page after Confirm (the receipt or the decline)."""
        return self.confirm(self.review(amount, kind, details))
