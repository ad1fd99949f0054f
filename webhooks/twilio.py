"""Twilio webhooks: message status callbacks and inbound SMS.

Both are signed with ``X-Twilio-Signature`` (HMAC-SHA1 of ``app.base_url`` + path + query,
plus the sorted form fields, keyed by ``twilio.auth_token``). Unsigned or wrongly signed
requests get 403 and change nothing; with no auth token configured nothing can be checked,
so everything is refused rather than accepted unsigned.

Status callbacks: only ``delivered``, ``undelivered`` and ``failed`` move a message
(``queued``/``sending``/``sent``/``accepted`` are informational: our row says ``sent`` once
the API accepted it). Callbacks arrive out of order, so a move the state machine does not
allow (``failed`` after ``delivered``) is ignored, not an error.

Delivery error codes that mark the number undeliverable (``PERMANENT_DELIVERY_ERRORS``):
30005 (unknown destination handset: the number does not exist) and 30006 (landline or
unreachable carrier), plus the send-time recipient errors, which Twilio also reports here
for messages sent through a Messaging Service. Deliberately not permanent: 30003
(unreachable handset: switched off, out of coverage), 30004 (blocked, often temporarily by
the carrier), 30007 (carrier filtering, about our content not the number), 30008 (unknown).
21610 (the person texted STOP) marks the number opted out instead.
"""

from __future__ import annotations

import functools
import logging

from flask import Blueprint, Response, request
from rq import Retry
from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from twilio.request_validator import RequestValidator

from linkpay.commands import parse_sms
from linkpay.models import (
    Channel,
    IllegalTransition,
    Message,
    MessageStatus,
    ProviderEvent,
    advance,
)
from linkpay.queue import HIGH, JobSpec
from linkpay.runtime import runtime
from linkpay.services import opt_out
from linkpay.services.contacts import mark_contact
from linkpay.transports.twilio_sms import PROVIDER, RECIPIENT_ERRORS
from webhooks import record_event

log = logging.getLogger(__name__)

bp = Blueprint("twilio_webhooks", __name__, url_prefix="/webhooks/twilio")

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
SIGNATURE_HEADER = "X-Twilio-Signature"
FINAL_STATUSES = {
    "delivered": MessageStatus.DELIVERED,
    "undelivered": MessageStatus.UNDELIVERED,
    "failed": MessageStatus.FAILED,
}
PERMANENT_DELIVERY_ERRORS = frozenset({30005, 30006}) | frozenset(RECIPIENT_ERRORS)
OPTED_OUT_ERRORS = frozenset({21610})


def validate_twilio_signature(view):
    """Refuse (403, nothing read or written) a request Twilio did not sign."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if not signature_is_valid():
            log.warning("twilio webhook %s: missing or invalid signature", request.path)
            return Response("invalid signature\n", status=403, mimetype="text/plain")
        return view(*args, **kwargs)

    return wrapper


def signature_is_valid() -> bool:
    config = runtime().config
    token = config["twilio.auth_token"]
    signature = request.headers.get(SIGNATURE_HEADER)
    if not token or not signature:
        return False
    # Twilio signs the URL it called, which is our public origin, not whatever Host header
    # a proxy hands us.
    url = config["app.base_url"] + request.path
    if request.query_string:
        url += "?" + request.query_string.decode("utf-8", "replace")
    return RequestValidator(token).validate(url, request.form, signature)


@bp.post("/status")
@validate_twilio_signature
def status_callback():
    form = request.form
    sid = form.get("MessageSid") or form.get("SmsSid")
    status = (form.get("MessageStatus") or form.get("SmsStatus") or "").strip().lower()
    if not sid or not status:
        log.warning("twilio status callback without MessageSid or MessageStatus")
        return Response("", status=200)
    with runtime().db.session() as session:
        if record_event(session, PROVIDER, f"{sid}:{status}", "status", form.to_dict()):
            apply_status(session, sid, status, form.get("ErrorCode"))
    return Response("", status=200)


def apply_status(session: Session, sid: str, status: str, error_code: str | None) -> None:
    new = FINAL_STATUSES.get(status)
    if new is None:
        return
    message = session.scalar(
        select(Message)
        .where(Message.provider == PROVIDER, Message.provider_id == sid)
        .with_for_update()
    )
    if message is None:
        log.info("twilio status %s for unknown message sid %s", status, sid)
        return
    try:
        advance(message, new)
    except IllegalTransition:
        log.info("message %s: ignoring late %s (now %s)", message.id, status, message.status)
    else:
        if new != MessageStatus.DELIVERED and error_code:
            message.error_code = error_code[:40]
            message.error_message = f"Twilio delivery error {error_code}"
    code = int(error_code) if error_code and error_code.isdigit() else None
    # The verdict is about the number, whatever order the callbacks came in.
    if new != MessageStatus.DELIVERED and code in PERMANENT_DELIVERY_ERRORS:
        mark_contact(
            session,
            Channel.SMS,
            message.to_address,
            opted_out=code in OPTED_OUT_ERRORS,
            reason=f"twilio {code}: {_describe(code)}",
        )


def _describe(code: int) -> str:
    if code == 30005:
        return "unknown destination handset"
    if code == 30006:
        return "landline or unreachable carrier"
    return RECIPIENT_ERRORS.get(code, "undeliverable")


@bp.post("/sms")
@validate_twilio_signature
def inbound_sms():
    """Store each inbound text once (Twilio may deliver it again) and answer with empty
    TwiML. Replies are sent by jobs, never in this response: ``jobs.inbound`` handles the
    stored event. The STOP and START families are applied here, in this request, so an
    opt-out holds before any later send is attempted and the two can never run out of
    order.

    Every other text takes the lean path, because this endpoint must keep up with a
    campaign's worth of replies: one prebuilt INSERT on a pooled connection, committed,
    then one Redis round trip for the job (its id names the new row, so it needs no
    duplicate check)."""
    form = request.form
    sid = form.get("MessageSid") or form.get("SmsMessageSid")
    if not sid:
        log.warning("twilio inbound sms without MessageSid")
        return Response(EMPTY_TWIML, status=200, mimetype="text/xml")
    command = parse_sms(form.get("Body", ""))
    payload = form.to_dict()
    if command.kind in opt_out.SYNCHRONOUS:
        with runtime().db.session() as session:
            if store_inbound(session.connection(), sid, payload) is not None:
                opt_out.apply(session, form.get("From", ""), command)
    else:
        with runtime().db.engine.begin() as connection:
            event_id = store_inbound(connection, sid, payload)
        if event_id is not None:
            runtime().queue.enqueue_new(inbound_job(event_id))
    return Response(EMPTY_TWIML, status=200, mimetype="text/xml")


def store_inbound(connection: Connection, sid: str, payload: dict) -> int | None:
    """Insert the event and return its id, or None when this MessageSid was stored before.
    The unique (provider, event_id) constraint decides in the one INSERT, so two deliveries
    racing on two web processes are handled once."""
    values = {
        "provider": PROVIDER,
        "event_id": sid[:120],
        "kind": "inbound_sms",
        "payload": payload,
        "received_at": runtime().now(),
    }
    return connection.execute(_insert_event(connection.dialect.name), values).scalar()


@functools.cache
def _insert_event(dialect: str):
    """``INSERT ... ON CONFLICT (provider, event_id) DO NOTHING RETURNING id``, built once
    per dialect: building it per request cost more than running it."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return (
        insert(ProviderEvent.__table__)
        .on_conflict_do_nothing(index_elements=["provider", "event_id"])
        .returning(ProviderEvent.__table__.c.id)
    )


def inbound_job(event_id: int) -> JobSpec:
    # A database blip must not lose a customer's text: the job's changes and its reply
    # commit together, so a failed run left nothing behind and can simply run again.
    return JobSpec(
        "jobs.inbound.handle_inbound_sms",
        args=(event_id,),
        job_id=f"inbound-{event_id}",
        queue=HIGH,
        retry=Retry(max=3, interval=[1, 10, 60]),
    )
