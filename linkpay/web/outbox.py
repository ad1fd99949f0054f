"""The local outbox (off in production): every SMS and email the service sent, newest
first, so a laptop install shows what a customer would have received; and the phone
simulator, which texts the service as one of the phones on file through the same signed
Twilio webhook a real reply would take."""

from __future__ import annotations

import datetime as dt
import re
import secrets
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    abort,
    current_app,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from markupsafe import Markup, escape
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from twilio.request_validator import RequestValidator

from linkpay.models import Account, Channel, Message, MessageStatus, ProviderEvent
from linkpay.rendering import segments
from linkpay.runtime import runtime

bp = Blueprint("outbox", __name__, url_prefix="/outbox")
PAGE_SIZE = 100
URL = re.compile(r"https?://[^\s<>\"']+")
# Email HTML carries inline styles (mail clients need them) but must run nothing here.
EMAIL_PREVIEW_POLICY = (
    "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    "frame-ancestors 'none'; object-src 'none'; base-uri 'none'"
)

WEBHOOK_PATH = "/webhooks/twilio/sms"
# Twilio joins at most ten segments into one inbound message: about 1,600 characters.
MAX_REPLY_CHARS = 1600
PHONES_SHOWN = 200
THREAD_LENGTH = 50
# After a send the page reloads itself until the answer is in, but not for ever: some
# texts (a second STOP) are rightly answered with nothing.
WAIT_FOR_ANSWER_SECONDS = 10
# Twilio's own test "From" number, for a dev install with no Twilio number configured.
SIMULATED_SERVICE_NUMBER = "+15005550006"
SIMULATED_ACCOUNT_SID = "AC" + "0" * 32
NO_TOKEN = (
    "twilio.auth_token is empty, so the webhook refuses every text. "
    "linkpay dev sets a random one for you; set one in your configuration otherwise."
)


@dataclass(frozen=True)
class DemoPhone:
    number: str
    label: str


@dataclass(frozen=True)
class Bubble:
    """One text in a phone's conversation: from the phone (``inbound``) or to it."""

    inbound: bool
    at: dt.datetime
    body: str
    status: str


@bp.get("")
def index():
    return outbox_page(
        page=max(request.args.get("page", 1, type=int), 1),
        phone=request.args.get("phone"),
        sent_sid=request.args.get("sent"),
        sent_at=request.args.get("at", type=int),
    )


def outbox_page(
    *,
    page: int,
    phone: str | None,
    sent_sid: str | None,
    sent_at: int | None = None,
    problem: str = "",
    draft: str = "",
) -> str:
    with runtime().db.session() as session:
        total = session.scalar(select(func.count(Message.id)))
        rows = session.scalars(
            select(Message)
            .order_by(Message.created_at.desc(), Message.id.desc())
            .offset((page - 1) * PAGE_SIZE)
            .limit(PAGE_SIZE)
        ).all()
        simulator = phone_simulator(session, phone, sent_sid, sent_at)
    return render_template(
        "dev/outbox.html",
        messages=rows,
        total=total,
        page=page,
        pages=max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1),
        zone=ZoneInfo(runtime().config["app.timezone"]),
        problem=problem,
        draft=draft,
        **simulator,
    )


@bp.post("/phone")
def phone_reply():
    """Text the service as a phone on file: a Twilio-style form, signed with the auth
    token, handed to the webhook through the app itself so its checks really run."""
    phone = request.form.get("phone", "")
    body = request.form.get("body", "").replace("\r\n", "\n")
    with runtime().db.session() as session:
        problem = _reply_problem(phone, body, phone_on_file(session, phone))
    if problem is None:
        form = inbound_form(phone, body)
        answer = deliver(form)
        if answer.status_code == 200:
            sent_at = int(runtime().now().timestamp())
            target = url_for("outbox.index", phone=phone, sent=form["MessageSid"], at=sent_at)
            return redirect(f"{target}#phone", code=303)
        problem = f"The webhook refused the text (HTTP {answer.status_code})."
    # The page again, with the text as typed and what was wrong with it.
    return outbox_page(page=1, phone=phone, sent_sid=None, problem=problem, draft=body), 400


def _reply_problem(phone: str, body: str, on_file: bool) -> str | None:
    if not runtime().config["twilio.auth_token"]:
        return NO_TOKEN
    if not on_file:
        return "Pick one of the phones on file."
    if not body.strip():
        return "Type a text to send."
    if len(body) > MAX_REPLY_CHARS:
        return f"A text can be at most {MAX_REPLY_CHARS:,} characters; this one has {len(body):,}."
    return None


def phone_simulator(
    session: Session, wanted: str | None, sent_sid: str | None, sent_at: int | None = None
) -> dict:
    """What the simulator shows: the phones to pick from, the chosen one's conversation,
    and whether the page should reload to catch the answer to ``sent_sid``."""
    phones = phones_on_file(session)
    numbers = [p.number for p in phones]
    if wanted and wanted not in numbers and phone_on_file(session, wanted):
        phones.append(DemoPhone(wanted, wanted))  # on file, past the list's length
        numbers.append(wanted)
    chosen = wanted if wanted in numbers else (numbers[0] if numbers else None)
    thread = conversation(session, chosen) if chosen else []
    waiting = bool(chosen and sent_sid and sent_at and awaiting_answer(session, chosen, sent_at))
    return {
        "phones": phones,
        "chosen_phone": chosen,
        "thread": thread,
        "waiting": waiting,
        "sent_sid": sent_sid,
        "sent_at": sent_at,
        "signing_ready": bool(runtime().config["twilio.auth_token"]),
        "no_token": NO_TOKEN,
    }


def phones_on_file(session: Session) -> list[DemoPhone]:
    """Each phone of an account on file, named by the accounts that share it."""
    accounts = session.scalars(
        select(Account)
        .where(Account.phone.is_not(None), Account.phone != "")
        .order_by(Account.phone, Account.account_number)
        .limit(PHONES_SHOWN)
    ).all()
    names: dict[str, list[str]] = {}
    for account in accounts:
        names.setdefault(account.phone, []).append(
            f"{account.display_name} ({account.account_number})"
        )
    return [DemoPhone(number, f"{number} · {', '.join(who)}") for number, who in names.items()]


def phone_on_file(session: Session, phone: str) -> bool:
    return (
        bool(phone)
        and session.scalar(select(func.count(Account.id)).where(Account.phone == phone)) > 0
    )


def conversation(session: Session, phone: str) -> list[Bubble]:
    """The phone's last texts both ways, oldest first (the newest at the bottom)."""
    inbound = session.scalars(
        select(ProviderEvent)
        .where(
            ProviderEvent.kind == "inbound_sms",
            ProviderEvent.payload["From"].as_string() == phone,
        )
        .order_by(ProviderEvent.received_at.desc(), ProviderEvent.id.desc())
        .limit(THREAD_LENGTH)
    ).all()
    outbound = session.scalars(
        select(Message)
        .where(Message.channel == Channel.SMS, Message.to_address == phone)
        .order_by(Message.created_at.desc(), Message.id.desc())
        .limit(THREAD_LENGTH)
    ).all()
    bubbles = [
        Bubble(True, event.received_at, str(event.payload.get("Body", "")), "received")
        for event in reversed(inbound)
    ] + [Bubble(False, m.created_at, m.body, m.status.value) for m in reversed(outbound)]
    # A stable sort on time alone keeps each side's own order when two texts share a time.
    bubbles.sort(key=lambda bubble: bubble.at)
    return bubbles[-THREAD_LENGTH:]


def awaiting_answer(session: Session, phone: str, sent_at: int) -> bool:
    """True while a text sent at ``sent_at`` (Unix seconds) is recent and nothing sent to
    the phone has followed it (a reply still queued does not count yet)."""
    sent = dt.datetime.fromtimestamp(sent_at, dt.UTC)
    if runtime().now() - sent > dt.timedelta(seconds=WAIT_FOR_ANSWER_SECONDS):
        return False
    answered = session.scalar(
        select(func.count(Message.id)).where(
            Message.channel == Channel.SMS,
            Message.to_address == phone,
            Message.created_at >= sent,
            Message.status.not_in([MessageStatus.QUEUED]),
        )
    )
    return not answered


def inbound_form(phone: str, body: str) -> dict[str, str]:
    """The form Twilio posts for a text from ``phone`` to the service's number."""
    config = runtime().config
    sid = "SMsim" + secrets.token_hex(15)[:29]  # 34 characters, like Twilio's own
    return {
        "ToCountry": "US",
        "ToState": "",
        "SmsMessageSid": sid,
        "NumMedia": "0",
        "ToCity": "",
        "FromZip": "",
        "SmsSid": sid,
        "FromState": "",
        "SmsStatus": "received",
        "FromCity": "",
        "Body": body,
        "FromCountry": "US",
        "To": config["twilio.from_number"] or SIMULATED_SERVICE_NUMBER,
        "ToZip": "",
        "NumSegments": str(segments(body)),
        "MessageSid": sid,
        "AccountSid": config["twilio.account_sid"] or SIMULATED_ACCOUNT_SID,
        "From": phone,
        "ApiVersion": "2010-04-01",
    }


def deliver(form: dict[str, str]):
    """POST ``form`` to the inbound webhook, signed as Twilio signs it, through the WSGI
    app: the signature check and the MessageSid dedupe run exactly as for Twilio."""
    config = runtime().config
    url = config["app.base_url"] + WEBHOOK_PATH
    signature = RequestValidator(config["twilio.auth_token"]).compute_signature(url, form)
    return current_app.test_client().post(
        WEBHOOK_PATH,
        base_url=config["app.base_url"],
        data=form,
        headers={"X-Twilio-Signature": signature},
    )


@bp.get("/<int:message_id>/html")
def email_html(message_id: int):
    """The HTML body exactly as sent, sandboxed: no script runs, no form posts."""
    with runtime().db.session() as session:
        message = session.get(Message, message_id)
    if message is None or not message.html_body:
        abort(404)
    response = make_response(message.html_body)
    response.headers["Content-Security-Policy"] = EMAIL_PREVIEW_POLICY
    return response


@bp.app_template_filter("linkify")
def linkify(text: str) -> Markup:
    """Escape a message body and make its links clickable."""
    escaped = str(escape(text))
    return Markup(URL.sub(lambda m: f'<a href="{m.group(0)}">{m.group(0)}</a>', escaped))
