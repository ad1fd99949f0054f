"""The inbound text job: ``handle_inbound_sms(payload)`` stores one Twilio inbound message
(a ``ProviderEvent`` of kind ``inbound_sms``) and answers it through
``services.text_commands``, in one transaction.

The webhook enqueues it on the high queue (job id ``inbound-<MessageSid>``) with the form
Twilio posted, and answers at once; the database's unique MessageSid decides here whether
a delivery is new, so a text delivered twice is answered once. Only the MessageSid and
the command's kind are logged, never the body."""

from __future__ import annotations

import datetime as dt
import logging

from jobs import with_app_context
from linkpay.runtime import runtime
from linkpay.services import inbound_texts

log = logging.getLogger(__name__)


@with_app_context
def handle_inbound_sms(payload: dict, received_at: str | None = None) -> str:
    """What the text was read as, and the reply's message id (RQ keeps it as the result).
    ``received_at`` is when the webhook took the text (ISO 8601, UTC)."""
    when = dt.datetime.fromisoformat(received_at) if received_at else None
    with runtime().db.session() as session:
        kind, reply = inbound_texts.answer(session, payload, when)
        outcome = f"{kind}: " + (f"message {reply.id}" if reply else "no reply")
    log.info("inbound %s: %s", payload.get("MessageSid"), outcome)
    return outcome
