"""English and Spanish through Flask-Babel. Catalogs are read from translations/*.po at
start-up and compiled in memory, so no compiled .mo file is kept in the repository."""

from __future__ import annotations

import io
from contextlib import contextmanager

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from flask import Flask, g, request
from flask_babel import Babel, force_locale, get_locale

from linkpay import ROOT

LANGUAGES = ("en", "es")
TRANSLATIONS_DIR = ROOT / "translations"


def init_app(app: Flask) -> None:
    babel = Babel(app, locale_selector=select_locale, default_locale="en")
    with app.app_context():
        domain = babel.domain_instance  # cached on the Babel object from here on
    for language in LANGUAGES[1:]:
        po_path = TRANSLATIONS_DIR / language / "LC_MESSAGES" / "messages.po"
        with po_path.open("rb") as handle:
            catalog = read_po(handle, locale=language)
        buffer = io.BytesIO()
        write_mo(buffer, catalog, use_fuzzy=False)
        buffer.seek(0)
        # Flask-Babel looks translations up in this cache before touching the disk.
        domain.cache[(language, "messages")] = Translations(fp=buffer, domain="messages")
    app.jinja_env.globals["current_language"] = current_language


def select_locale() -> str:
    """?lang= (the one-tap switch) first, then what the page chose (the account's
    language), then the browser's preference."""
    asked = request.args.get("lang") if request else None
    if asked in LANGUAGES:
        return asked
    chosen = g.get("language")
    if chosen in LANGUAGES:
        return chosen
    if request:
        return request.accept_languages.best_match(LANGUAGES) or "en"
    return "en"


def current_language() -> str:
    locale = get_locale()
    return locale.language if locale else "en"


def normalize_language(value: str | None) -> str:
    value = (value or "").strip().lower()[:2]
    return value if value in LANGUAGES else "en"


@contextmanager
def language(code: str):
    """Render messages (SMS, email) in ``code`` outside a request."""
    with force_locale(normalize_language(code)):
        yield
