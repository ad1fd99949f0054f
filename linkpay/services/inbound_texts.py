"""Customers' texts as Twilio delivers them: stored once per MessageSid, then answered.

``store`` is the one INSERT that decides whether a delivery is new: the unique
(provider, event_id) constraint on ``provider_events``, so a text delivered twice (by
Twilio's retry, or at the same moment to two web processes and on to two workers) is
answered once. ``answer`` stores and answers a text in one transaction: if answering
fails, the stored row goes too, and the job's retry finds the text new again.

A text the webhook could not queue (Redis unreachable) is ``hold``-ed instead: stored
under the same unique key with kind ``inbound_sms_held``, so no later delivery of it is
answered twice, and answered by the sweep (``answer_held``) once Redis is back and the
sweep runs again."""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from linkpay.commands import parse_sms
from linkpay.db import insert_unless_present
from linkpay.models import Message, ProviderEvent
from linkpay.runtime import runtime
from linkpay.services import text_commands

log = logging.getLogger(__name__)

PROVIDER = "twilio"
KIND = "inbound_sms"
HELD = "inbound_sms_held"
HELD_PER_SWEEP = 500


def store(
    connection: Connection,
    sid: str,
    payload: dict,
    received_at: dt.datetime | None = None,
    kind: str = KIND,
) -> int | None:
    """Insert the text and return its row id, or None when this MessageSid was stored
    before (or is being stored by a concurrent transaction, which then wins)."""
    values = {
        "provider": PROVIDER,
        "event_id": sid[:120],
        "kind": kind,
        "payload": payload,
        "received_at": received_at or runtime().now(),
    }
    return insert_unless_present(connection, ProviderEvent, values, ["provider", "event_id"])


def hold(connection: Connection, sid: str, payload: dict) -> int | None:
    """Keep a text that could not be queued, for the sweep to answer; None if this
    MessageSid was stored before."""
    return store(connection, sid, payload, kind=HELD)


def answer(
    session: Session, payload: dict, received_at: dt.datetime | None = None
) -> tuple[str, Message | None]:
    """Store the text (as received at ``received_at``, when the webhook took it) and answer
    it: what it was read as (or "duplicate"), and the reply."""
    sid = payload.get("MessageSid") or payload.get("SmsMessageSid") or ""
    if not sid or store(session.connection(), sid, payload, received_at) is None:
        return "duplicate", None
    return _reply(session, payload)


def answer_held(session: Session) -> int:
    """Answer the held texts, oldest first, each once however many sweeps run at once (a
    conditional UPDATE claims it). Each is answered in a savepoint of its own, so one that
    fails stays held for the next sweep without holding back the others."""
    held = session.scalars(
        select(ProviderEvent.id)
        .where(ProviderEvent.provider == PROVIDER, ProviderEvent.kind == HELD)
        .order_by(ProviderEvent.id)
        .limit(HELD_PER_SWEEP)
    ).all()
    answered = 0
    for event_id in held:
        try:
            with session.begin_nested():
                if _claim_held(session, event_id):
                    kind, _ = _reply(session, session.get(ProviderEvent, event_id).payload)
                    log.info("held inbound text %s answered: %s", event_id, kind)
                    answered += 1
        except Exception:  # the next sweep tries it again; the others go on now
            log.exception("held inbound text %s could not be answered", event_id)
    return answered


def _claim_held(session: Session, event_id: int) -> bool:
    claimed = session.execute(
        update(ProviderEvent)
        .where(ProviderEvent.id == event_id, ProviderEvent.kind == HELD)
        .values(kind=KIND)
        .execution_options(synchronize_session=False)
    ).rowcount
    return claimed == 1


def _reply(session: Session, payload: dict) -> tuple[str, Message | None]:
    command = parse_sms(payload.get("Body", ""))
    return command.kind.value, text_commands.handle(session, payload.get("From", ""), command)
