"""The inbound text job: ``handle_inbound_sms(event_id)`` answers one stored Twilio inbound
message (a ``ProviderEvent`` of kind ``inbound_sms``) through ``services.text_commands``.

The webhook enqueues it once per MessageSid (job id ``inbound-<event id>``, high queue),
after the event is committed. The body is parsed again here rather than carried in the
job: the parser is pure and cheap, and the stored event stays the one source. Only ids and
the command's kind are logged, never the body."""

from __future__ import annotations

import logging

from jobs import with_app_context
from linkpay.commands import parse_sms
from linkpay.models import ProviderEvent
from linkpay.runtime import runtime
from linkpay.services import text_commands

log = logging.getLogger(__name__)


@with_app_context
def handle_inbound_sms(event_id: int) -> str:
    """What the text was read as, and the reply's message id (RQ keeps it as the result)."""
    with runtime().db.session() as session:
        event = session.get(ProviderEvent, event_id)
        if event is None or event.kind != "inbound_sms":
            log.warning("inbound sms job: no inbound event %s", event_id)
            return "missing"
        payload = event.payload or {}
        command = parse_sms(payload.get("Body", ""))
        reply = text_commands.handle(session, payload.get("From", ""), command)
        outcome = f"{command.kind.value}: " + (f"message {reply.id}" if reply else "no reply")
    log.info("inbound event %s: %s", event_id, outcome)
    return outcome
