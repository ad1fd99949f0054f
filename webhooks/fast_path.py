"""The inbound-text route served before Flask: ``InboundTextFastPath``.

A WSGI middleware in front of the Flask app that serves ``POST /webhooks/twilio/sms`` with
``webhooks.twilio.take_inbound_text`` directly: the form read and parsed as Flask would,
the answer written straight to the server. Flask's per-request machinery (request and
response objects, session, CSRF, rate limit, locale and header hooks) is for browsers;
none of it serves a signed machine callback, and together it costs more than the text's
own work. This endpoint must keep up when a campaign's worth of customers reply at once
(docs/performance.md). Every other request goes to Flask untouched."""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl

from flask import Flask
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wsgi import get_input_stream

from webhooks.twilio import ANSWERS, INBOUND_PATH, SERVER_ERROR, take_inbound_text

log = logging.getLogger(__name__)

# Twilio posts some twenty short fields and a body of at most 1,600 characters (up to 6.4
# kB percent-encoded): anything near this is not Twilio.
MAX_INBOUND_BYTES = 64 * 1024
FORM_TYPE = "application/x-www-form-urlencoded"


class InboundTextFastPath:
    def __init__(self, app: Flask):
        self.app = app
        self.flask_wsgi_app = app.wsgi_app

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") != INBOUND_PATH or environ.get("REQUEST_METHOD") != "POST":
            return self.flask_wsgi_app(environ, start_response)
        try:
            form = read_form(environ)
        except RequestEntityTooLarge as too_large:  # a WSGI app of its own: the 413 page
            return too_large(environ, start_response)
        with self.app.app_context():
            try:
                code = take_inbound_text(
                    form, INBOUND_PATH, query_of(environ), environ.get("HTTP_X_TWILIO_SIGNATURE")
                )
            except Exception:  # Flask's own handler is bypassed: log it as Flask would
                log.exception("twilio inbound sms failed")
                code = SERVER_ERROR
        status, content_type, body = ANSWERS[code]
        start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))])
        return [body]


def read_form(environ) -> MultiDict:
    """The posted form as Flask reads it: URL-encoded only, blank values kept (Twilio signs
    them too), bad UTF-8 replaced (the signature then fails); 413 past MAX_INBOUND_BYTES."""
    stream = get_input_stream(environ, max_content_length=MAX_INBOUND_BYTES)
    mimetype = environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower()
    if mimetype != FORM_TYPE:
        return MultiDict()
    body = stream.read().decode("utf-8", "replace")
    return MultiDict(parse_qsl(body, keep_blank_values=True, errors="replace"))


def query_of(environ) -> str:
    # WSGI hands the query string over as Latin-1; Twilio signed the UTF-8 text.
    return environ.get("QUERY_STRING", "").encode("latin-1").decode("utf-8", "replace")
