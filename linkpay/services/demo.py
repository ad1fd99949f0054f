"""Demo accounts for ``linkpay dev``: English and Spanish speakers, card and bank payers."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from linkpay.models import Account
from linkpay.runtime import runtime

DEMO_ACCOUNTS = [
    # account_number, first, last, phone, email, balance_cents, days_to_due, zip, language
    ("DEMO-1001", "Alex", "Rivera", "+16025550143", "alex@example.com", 12_450, 10, "85004", "en"),
    ("DEMO-1002", "María", "Gómez", "+16025550199", "maria@example.com", 8_732, 5, "85006", "es"),
    ("DEMO-1003", "Sam", "Lee", "+14805550123", None, 251_000, 20, "85281", "en"),
    ("DEMO-1004", "José", "Núñez", None, "jose@example.com", 4_599, 3, "85704", "es"),
]


def seed_demo_accounts(session: Session) -> list[Account]:
    """Create the demo accounts, or put them back to their demo balances."""
    today = runtime().now().date()
    existing = {
        a.account_number: a
        for a in session.scalars(
            select(Account).where(Account.account_number.in_([d[0] for d in DEMO_ACCOUNTS]))
        )
    }
    accounts = []
    for number, first, last, phone, email, cents, days, zip_code, lang in DEMO_ACCOUNTS:
        account = existing.get(number) or Account(account_number=number)
        account.first_name, account.last_name = first, last
        account.phone, account.email, account.zip, account.language = phone, email, zip_code, lang
        account.balance_cents = cents
        account.due_date = today + dt.timedelta(days=days)
        session.add(account)
        accounts.append(account)
    session.flush()
    return accounts
