"""Fixtures for plans, offers and scheduled payments: an account with a saved card and a
sweep that runs its jobs as a worker would (the gateway that counts charges is ``spy``,
from tests/fakes)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from linkpay.gateways.sandbox import vault
from linkpay.models import Message, MethodKind, SavedMethod
from linkpay.runtime import runtime
from linkpay.services import sweep
from tests.web.pay_flow import make_account


def saved_method(db, account, outcome="approved", kind=MethodKind.CARD) -> SavedMethod:
    token = vault(db, kind, "Visa" if kind == MethodKind.CARD else "Bank", "4242", outcome)
    method = SavedMethod(
        account_id=account.id, gateway="sandbox", token=token, kind=kind, label="Visa", last4="4242"
    )
    db.add(method)
    db.commit()
    return method


@pytest.fixture
def account(db):
    return make_account(db, balance_cents=30_000)


@pytest.fixture
def sweep_now(app, run_jobs):
    """One sweep, then every job it queued (charges, then the messages they queued)."""

    def run() -> dict[str, int]:
        counts = sweep.run(runtime().db)
        run_jobs()
        return counts

    return run


def sent(db, kind: str, **where) -> list[Message]:
    query = select(Message).where(Message.kind == kind)
    for name, value in where.items():
        query = query.where(getattr(Message, name) == value)
    return list(db.scalars(query.order_by(Message.id)))


def count(db, model, *where) -> int:
    return db.scalar(select(func.count()).select_from(model).where(*where))
