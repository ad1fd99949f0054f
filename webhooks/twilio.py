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
import hmac
import logging

from flask import Blueprint, request
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import Retry
from sqlalchemy import select
from sqlalchemy.orm import Session
from twilio.request_validator import RequestValidator
from werkzeug.wrappers import Response

from linkpay import sensitive_numbers
from linkpay.commands import parse_sms
from linkpay.models import (
    Channel,
    IllegalTransition,
    Message,
    MessageStatus,
    advance,
)
from linkpay.queue import HIGH, JobSpec
from linkpay.runtime import runtime
from linkpay.services import inbound_texts, opt_out
from linkpay.services.contacts import mark_contact
from linkpay.transports.twilio_sms import PROVIDER, RECIPIENT_ERRORS
from webhooks import record_event

log = logging.getLogger(__name__)

bp = Blueprint("twilio_webhooks", __name__, url_prefix="/webhooks/twilio")
INBOUND_PATH = "/webhooks/twilio/sms"
# What is kept of an inbound text's form (Twilio posts some twenty fields): who, to whom,
# what, and the ids to trace it by.
KEPT_FIELDS = ("MessageSid", "AccountSid", "From", "To", "Body", "NumSegments", "NumMedia")

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
        if not signature_is_valid(
            request.form,
            request.path,
            request.query_string.decode("utf-8", "replace"),
            request.headers.get(SIGNATURE_HEADER),
        ):
            return answer(refused(request.path))
        return view(*args, **kwargs)

    return wrapper


def signature_is_valid(form, path: str, query: str, signature: str | None) -> bool:
    """Whether ``signature`` is Twilio's over our public URL for ``path`` and ``query``
    and the posted ``form`` (a MultiDict: Twilio signs every value, blank ones too)."""
    token = runtime().config["twilio.auth_token"]
    if not token or not signature:
        return False
    # Twilio signs the URL it called, which is our public origin, not whatever Host header
    # a proxy hands us.
    url = runtime().config["app.base_url"] + path
    if query:
        url += "?" + query
    validator = RequestValidator(token)
    # Twilio signs the URL as configured, which is ours exactly in the common case: one
    # HMAC settles it. Anything else goes through the library's full check, which also
    # tries the URL with and without an explicit port.
    if hmac.compare_digest(validator.compute_signature(url, form), signature):
        return True
    return validator.validate(url, form, signature)


OK, FORBIDDEN, SERVER_ERROR = 200, 403, 500
# What a webhook answers: status line, content type, body. Twilio reads TwiML from a 200
# to an inbound text; an empty <Response> means "no reply here", as replies are sent by
# jobs.
ANSWERS = {
    OK: ("200 OK", "text/xml", EMPTY_TWIML.encode()),
    FORBIDDEN: ("403 FORBIDDEN", "text/plain; charset=utf-8", b"invalid signature\n"),
    SERVER_ERROR: ("500 INTERNAL SERVER ERROR", "text/plain; charset=utf-8", b"server error\n"),
}


def answer(code: int) -> Response:
    _, content_type, body = ANSWERS[code]
    return Response(body, status=code, content_type=content_type)


def refused(path: str) -> int:
    log.warning("twilio webhook %s: missing or invalid signature", path)
    return FORBIDDEN


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
def inbound_sms():
    """Reached only when ``webhooks.fast_path`` is not installed in front of the app."""
    code = take_inbound_text(
        request.form,
        request.path,
        request.query_string.decode("utf-8", "replace"),
        request.headers.get(SIGNATURE_HEADER),
    )
    return answer(code)


def take_inbound_text(form, path: str, query: str, signature: str | None) -> int:
    """Take one inbound text and return the HTTP status to answer with at once; replies
    are sent by jobs, never in this response. Unsigned or wrongly signed: 403, nothing
    read or written.

    The STOP and START families are stored and applied here, in this request, so an
    opt-out holds before any later send is attempted and the two never run out of order.
    Every other text is handed to ``jobs.inbound`` in one Redis round trip, form and all,
    under a job id naming its MessageSid, which RQ refuses to queue twice; the job stores
    the text (the database's unique MessageSid decides there whether it is new, whatever
    Redis forgot) and answers it. The request thus costs no database write, which keeps it
    fast when a campaign's worth of customers reply at once."""
    if not signature_is_valid(form, path, query, signature):
        return refused(path)
    sid = form.get("MessageSid") or form.get("SmsMessageSid")
    if not sid:
        log.warning("twilio inbound sms without MessageSid")
        return OK
    command = parse_sms(form.get("Body", ""))
    payload = {key: form[key] for key in KEPT_FIELDS if key in form} | {"MessageSid": sid}
    if "Body" in payload:  # a card or bank number goes no further than this line
        payload["Body"] = sensitive_numbers.mask(payload["Body"])
    if command.kind in opt_out.SYNCHRONOUS:
        with runtime().db.session() as session:
            if inbound_texts.store(session.connection(), sid, payload) is not None:
                opt_out.apply(session, form.get("From", ""), command)
    else:
        queue_or_hold(sid, payload)
    return OK


def queue_or_hold(sid: str, payload: dict) -> None:
    """Queue the text's job; with Redis unreachable, keep the text in the database for the
    sweep to answer once Redis is back, rather than lose it (Twilio does not redeliver)."""
    try:
        queued = runtime().queue.enqueue_unique(inbound_job(sid, payload))
    except (RedisConnectionError, RedisTimeoutError):
        log.warning("twilio inbound sms %s: Redis unreachable, held for the sweep", sid)
        with runtime().db.session() as session:
            inbound_texts.hold(session.connection(), sid, payload)
        return
    if not queued:
        log.info("twilio inbound sms %s delivered again: already taken", sid)


def inbound_job(sid: str, payload: dict) -> JobSpec:
    # A database blip must not lose a customer's text: the job stores and answers it in
    # one transaction, so a failed run left nothing behind and simply runs again.
    return JobSpec(
        "jobs.inbound.handle_inbound_sms",
        args=(payload, runtime().now().isoformat()),
        job_id=f"inbound-{sid[:120]}",
        queue=HIGH,
        retry=Retry(max=3, interval=[1, 10, 60]),
        description=f"inbound text {sid[:120]}",  # never the body: workers log this
    )
