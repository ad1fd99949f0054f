"""Helpers for the payment page tests: accounts and links to pay, and a customer who walks
the real forms (hidden fields, CSRF token and all) with Flask's test client."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

from linkpay.models import Account, Link
from linkpay.services import links

CARD = {"number": "4242 4242 4242 4242", "expiry": "12/34", "cvc": "123", "name": "Ana Diaz"}
DECLINED_CARD = {**CARD, "number": "4000 0000 0000 0002"}
NO_FUNDS_CARD = {**CARD, "number": "4000000000009995"}
BANK = {"routing": "110000000", "account": "000123456789"}
DECLINED_BANK = {"routing": "110000000", "account": "000111111116"}


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
    return link, token_of(links.link_url(link.id))


def token_of(url: str) -> str:
    return urlsplit(url).path.rsplit("/", 1)[-1]


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

    def open(self, **args):
        return self.client.get(f"/p/{self.token}", query_string=args)

    def choose(self, amount: str | None = None, kind: str = "card"):
        """Submit the amount step; returns the method page (or the amount page again)."""
        page = self.open().get_data(as_text=True)
        amount_form = form(page, "/amount")
        data = {**amount_form.fields, "kind": kind}
        if amount is not None:
            data["amount"] = amount
        return self.client.post(amount_form.action, data=data, follow_redirects=True)

    def tokenize(self, method_page, details: dict):
        """Fill the card or bank inputs and submit them to the tokenizer (no redirects)."""
        tokenizer_form = form(method_page.get_data(as_text=True), "/sandbox-gateway/")
        return self.client.post(tokenizer_form.action, data={**tokenizer_form.fields, **details})

    def review(self, amount: str | None = None, kind: str = "card", details: dict | None = None):
        method_page = self.choose(amount, kind)
        answer = self.tokenize(method_page, details or (BANK if kind == "bank" else CARD))
        assert answer.status_code == 303, answer.status_code
        return self.client.get(answer.headers["Location"])

    def confirm_form(self, review_page) -> Form:
        return form(review_page.get_data(as_text=True), "/confirm")

    def pay(self, amount: str | None = None, kind: str = "card", details: dict | None = None):
        """The whole journey; returns the page after Confirm (the receipt or the decline)."""
        confirm = self.confirm_form(self.review(amount, kind, details))
        return self.client.post(confirm.action, data=confirm.fields, follow_redirects=True)
