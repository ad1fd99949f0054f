"""SendGrid's event webhook: a JSON array of email events, signed when configured.

With ``sendgrid.webhook_public_key`` set (the base64 key SendGrid shows under Mail
Settings, Signed Event Webhook) the ECDSA P-256 signature over timestamp + raw body is
checked first and a mismatch is refused with 403. Without a key nothing can be checked, so
events only ever touch a message whose id *and* address they name.

Each event is stored once (dedupe on ``sg_event_id``) and then:

- ``delivered`` moves the message to delivered;
- ``bounce`` and ``dropped`` move it to bounced; a hard bounce (``type`` "bounce", not
  "blocked", which is the receiving server refusing for now) or a drop because SendGrid
  already knows the address bounces marks the address undeliverable;
- ``spamreport``, ``unsubscribe``, ``group_unsubscribe`` and a drop for an unsubscribed or
  spam-reporting address mark the address opted out of email: sending on would break the
  person's request (and CAN-SPAM);
- ``processed``, ``deferred``, ``open``, ``click`` are only recorded.
"""

from __future__ import annotations

import binascii
import hashlib
import json
import logging
from typing import Any

from flask import Blueprint, jsonify, request
from sendgrid.helpers.eventwebhook import EventWebhook
from sqlalchemy import select
from sqlalchemy.orm import Session

from linkpay.models import Channel, IllegalTransition, Message, MessageStatus, advance
from linkpay.runtime import runtime
from linkpay.services.contacts import mark_contact
from linkpay.transports.sendgrid_email import MESSAGE_ID_ARG, PROVIDER
from webhooks import record_event

log = logging.getLogger(__name__)

bp = Blueprint("sendgrid_webhooks", __name__, url_prefix="/webhooks/sendgrid")

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
MOVES = {
    "delivered": MessageStatus.DELIVERED,
    "bounce": MessageStatus.BOUNCED,
    "dropped": MessageStatus.BOUNCED,
}
OPT_OUT_EVENTS = frozenset({"spamreport", "unsubscribe", "group_unsubscribe"})
UNDELIVERABLE_DROPS = frozenset({"Bounced Address"})
OPT_OUT_DROPS = frozenset({"Unsubscribed Address", "Spam Reporting Address"})


@bp.post("/events")
def events():
    raw = request.get_data(cache=False)
    if not signature_is_valid(raw):
        log.warning("sendgrid webhook: missing or invalid signature")
        return jsonify(error="invalid signature"), 403
    try:
        batch = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return jsonify(error="the body is not JSON"), 400
    if not isinstance(batch, list):
        return jsonify(error="expected a JSON array of events"), 400
    with runtime().db.session() as session:
        counts = handle_events(session, batch)
    return jsonify(counts), 200


def signature_is_valid(raw: bytes) -> bool:
    public_key = runtime().config["sendgrid.webhook_public_key"]
    if not public_key:
        return True  # not configured: the contract verifies only when a key is set
    signature = request.headers.get(SIGNATURE_HEADER)
    timestamp = request.headers.get(TIMESTAMP_HEADER)
    if not signature or not timestamp:
        return False
    try:
        payload = raw.decode("utf-8")
        return _verifier(public_key).verify_signature(payload, signature, timestamp)
    except (UnicodeDecodeError, binascii.Error, ValueError):
        return False  # a body or signature that is not even well formed


def _verifier(public_key: str) -> EventWebhook:
    """Parse the configured key once per app, not on every delivery."""
    providers = runtime().providers
    verifier = providers.get("sendgrid.event_webhook")
    if verifier is None:
        verifier = providers.setdefault("sendgrid.event_webhook", EventWebhook(public_key))
    return verifier


def handle_events(session: Session, batch: list) -> dict[str, int]:
    counts = {"received": len(batch), "handled": 0, "duplicates": 0, "ignored": 0}
    for event in batch:
        if not isinstance(event, dict):
            counts["ignored"] += 1
            continue
        name = str(event.get("event") or "unknown")
        if record_event(session, PROVIDER, _event_id(event), name, event) is None:
            counts["duplicates"] += 1
            continue
        apply_event(session, name, event)
        counts["handled"] += 1
    return counts


def _event_id(event: dict[str, Any]) -> str:
    if event.get("sg_event_id"):
        return str(event["sg_event_id"])
    # SendGrid always sends one; should it not, the event's own content identifies it.
    canonical = json.dumps(event, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def apply_event(session: Session, name: str, event: dict[str, Any]) -> None:
    message = find_message(session, event)
    if message is None:
        return
    new = MOVES.get(name)
    if new is not None:
        _move(message, new, event)
    verdict = _contact_verdict(name, event)
    if verdict is not None:
        opted_out, reason = verdict
        mark_contact(session, Channel.EMAIL, message.to_address, opted_out=opted_out, reason=reason)


def _move(message: Message, new: MessageStatus, event: dict[str, Any]) -> None:
    try:
        advance(message, new)
    except IllegalTransition:
        log.info("message %s: ignoring %s (now %s)", message.id, event.get("event"), message.status)
        return
    if new == MessageStatus.BOUNCED:
        message.error_code = str(event.get("status") or event.get("event"))[:40]
        message.error_message = str(event.get("reason") or event.get("type") or "")[:500]


def _contact_verdict(name: str, event: dict[str, Any]) -> tuple[bool, str] | None:
    """(opted_out, reason) when the event says something lasting about the address."""
    if name in OPT_OUT_EVENTS:
        return True, f"sendgrid {name}"
    if name == "bounce" and event.get("type", "bounce") == "bounce":
        return False, f"sendgrid bounce: {event.get('reason') or event.get('status') or ''}"
    if name == "dropped" and event.get("reason") in UNDELIVERABLE_DROPS:
        return False, f"sendgrid dropped: {event['reason']}"
    if name == "dropped" and event.get("reason") in OPT_OUT_DROPS:
        return True, f"sendgrid dropped: {event['reason']}"
    return None


def find_message(session: Session, event: dict[str, Any]) -> Message | None:
    """By our own custom arg first; else by SendGrid's message id, whose part before the
    first '.' is the X-Message-Id the send answered with."""
    message = None
    our_id = str(event.get(MESSAGE_ID_ARG) or "")
    if our_id.isdigit():
        message = session.get(Message, int(our_id), with_for_update=True)
    if message is None:
        sg_id = str(event.get("sg_message_id") or "").split(".", 1)[0]
        if sg_id:
            message = session.scalar(
                select(Message)
                .where(Message.provider == PROVIDER, Message.provider_id == sg_id)
                .with_for_update()
            )
    if message is None or message.channel != Channel.EMAIL:
        return None
    address = str(event.get("email") or "")
    if address and address.lower() != (message.to_address or "").lower():
        log.warning("sendgrid event for message %s names another address", message.id)
        return None
    return message
