"""linkpay: signed payment links by SMS and email, a mobile payment page, Pay by Text.

``create_app()`` is the WSGI factory (``gunicorn 'linkpay:create_app()'``)."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from linkpay.config import Config, load_config

ROOT = Path(__file__).resolve().parent.parent


def create_app(config: Config | None = None, **overrides) -> Flask:
    """Build the app from ``config`` or from LINKPAY_CONFIG and the environment;
    ``overrides`` are dotted keys, e.g. ``create_app(**{"app.base_url": "https://x.io"})``."""
    from linkpay import i18n, security, template_filters
    from linkpay.runtime import EXTENSION_KEY, build_runtime
    from linkpay.web import register_blueprints

    config = config or load_config(overrides=overrides)
    app = Flask(
        __name__,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "linkpay" / "static"),
    )
    rt = build_runtime(config)
    app.extensions[EXTENSION_KEY] = rt
    app.config.update(
        SECRET_KEY=rt.signer.keys[-1],
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=config["app.base_url"].startswith("https://"),
        MAX_CONTENT_LENGTH=2 * 1024 * 1024,
        WTF_CSRF_TIME_LIMIT=None,  # the form lives as long as the link does
    )
    i18n.init_app(app)
    security.init_app(app)
    template_filters.init_app(app)
    register_blueprints(app)
    return app
