"""The local outbox (off in production): every SMS and email the service sent, newest
first, so a laptop install shows what a customer would have received."""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, make_response, render_template, request
from markupsafe import Markup, escape
from sqlalchemy import func, select

from linkpay.models import Message
from linkpay.runtime import runtime

bp = Blueprint("outbox", __name__, url_prefix="/outbox")
PAGE_SIZE = 100
URL = re.compile(r"https?://[^\s<>\"']+")
# Email HTML carries inline styles (mail clients need them) but must run nothing here.
EMAIL_PREVIEW_POLICY = (
    "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    "frame-ancestors 'none'; object-src 'none'; base-uri 'none'"
)


@bp.get("")
def index():
    page = max(request.args.get("page", 1, type=int), 1)
    with runtime().db.session() as session:
        total = session.scalar(select(func.count(Message.id)))
        rows = session.scalars(
            select(Message)
            .order_by(Message.created_at.desc(), Message.id.desc())
            .offset((page - 1) * PAGE_SIZE)
            .limit(PAGE_SIZE)
        ).all()
    zone = ZoneInfo(runtime().config["app.timezone"])
    return render_template(
        "dev/outbox.html",
        messages=rows,
        total=total,
        page=page,
        pages=max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1),
        zone=zone,
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
