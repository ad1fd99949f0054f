"""Payment methods kept for later charges: Pay by Text, scheduled payments, plans.

Only what the gateway tells about its token is kept (brand or bank, last four), never a
number. Keeping the same token again reuses its row. Which one is the account's default
(the method a texted PAY charges) is decided only by Pay by Text's enrollment: scheduling
a payment or signing a plan with a new card must not change what a PAY charges."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from linkpay.gateways import gateway
from linkpay.models import Account, SavedMethod
from linkpay.runtime import runtime


def keep(session: Session, account: Account, token: str) -> SavedMethod | None:
    """The saved method for the gateway's ``token``; None when the gateway does not know
    the token."""
    described = gateway().describe(token)
    if described is None:
        return None
    method = session.scalar(
        select(SavedMethod).where(
            SavedMethod.account_id == account.id,
            SavedMethod.gateway == gateway().name,
            SavedMethod.token == token,
            SavedMethod.removed_at.is_(None),
        )
    )
    if method is None:
        method = SavedMethod(
            account_id=account.id,
            gateway=gateway().name,
            token=token,
            kind=described.kind,
            label=described.label,
            last4=described.last4,
            created_at=runtime().now(),
        )
        session.add(method)
        session.flush()
    return method


def make_default(session: Session, method: SavedMethod) -> None:
    """``method`` becomes its account's one default."""
    session.execute(
        update(SavedMethod)
        .where(
            SavedMethod.account_id == method.account_id,
            SavedMethod.is_default.is_(True),
            SavedMethod.id != method.id,
        )
        .values(is_default=False)
        .execution_options(synchronize_session=False)
    )
    method.is_default = True
    session.flush()
