"""Headers every response carries, CSRF on every state-changing form, and rate limits."""

from __future__ import annotations

from flask import Flask, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_wtf.csrf import CSRFProtect

csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address, default_limits=[], headers_enabled=True)

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "img-src 'self' data:",
        "style-src 'self'",
        "script-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "object-src 'none'",
        "base-uri 'none'",
    ]
)


def init_app(app: Flask) -> None:
    from linkpay.runtime import runtime

    csrf.init_app(app)
    with app.app_context():
        storage = (
            runtime().config["app.rate_limit_storage_url"] or runtime().config["app.redis_url"]
        )
    app.config["RATELIMIT_STORAGE_URI"] = storage or "memory://"
    limiter.init_app(app)
    app.after_request(_security_headers)


def _security_headers(response):
    # A view may set a stricter policy of its own; it must still forbid framing & co.
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
    if request.path.startswith("/p/") or request.path.startswith("/sandbox-gateway/"):
        # Payment pages never sit in a shared or back-button cache.
        response.headers["Cache-Control"] = "no-store"
    return response
