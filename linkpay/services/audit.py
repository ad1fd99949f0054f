"""The audit trail: one row for every money movement and every consent."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from linkpay.models import AuditEvent
from linkpay.runtime import runtime


def record(
    session: Session,
    action: str,
    *,
    actor: str,
    account_id: int | None = None,
    subject: Any = None,
    ip: str | None = None,
    user_agent: str | None = None,
    **details: Any,
) -> AuditEvent:
    event = AuditEvent(
        at=runtime().now(),
        actor=actor,
        action=action,
        account_id=account_id,
        subject_type=type(subject).__name__ if subject is not None else None,
        subject_id=getattr(subject, "id", None),
        ip=ip,
        user_agent=(user_agent or "")[:300] or None,
        details=details,
    )
    session.add(event)
    return event
