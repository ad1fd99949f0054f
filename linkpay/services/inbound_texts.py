"""Customers' texts as Twilio delivers them: stored once per MessageSid, then answered.

``store`` is the one INSERT that decides whether a delivery is new: the unique
(provider, event_id) constraint on ``provider_events``, so a text delivered twice (by
Twilio's retry, or at the same moment to two web processes and on to two workers) is
answered once. ``answer`` stores and answers a text in one transaction: if answering
fails, the stored row goes too, and the job's retry finds the text new again."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from linkpay.commands import parse_sms
from linkpay.db import insert_unless_present
from linkpay.models import Message, ProviderEvent
from linkpay.runtime import runtime
from linkpay.services import text_commands

PROVIDER = "twilio"
KIND = "inbound_sms"


def store(
    connection: Connection, sid: str, payload: dict, received_at: dt.datetime | None = None
) -> int | None:
    """Insert the text and return its row id, or None when this MessageSid was stored
    before (or is being stored by a concurrent transaction, which then wins)."""
    values = {
        "provider": PROVIDER,
        "event_id": sid[:120],
        "kind": KIND,
        "payload": payload,
        "received_at": received_at or runtime().now(),
    }
    return insert_unless_present(connection, ProviderEvent, values, ["provider", "event_id"])


def answer(
    session: Session, payload: dict, received_at: dt.datetime | None = None
) -> tuple[str, Message | None]:
    """Store the text (as received at ``received_at``, when the webhook took it) and answer
    it: what it was read as (or "duplicate"), and the reply."""
    sid = payload.get("MessageSid") or payload.get("SmsMessageSid") or ""
    if not sid or store(session.connection(), sid, payload, received_at) is None:
        return "duplicate", None
    command = parse_sms(payload.get("Body", ""))
    return command.kind.value, text_commands.handle(session, payload.get("From", ""), command)
