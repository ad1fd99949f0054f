"""Renders SMS and email bodies from templates/, in the recipient's language.

SMS text is kept in the GSM-7 alphabet on purpose: one character outside it (an "í" in a
name, a curly quote, a non-breaking space) switches the whole text to UCS-2, which cuts a
segment from 160 characters to 70 and doubles or triples what the text costs."""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import gsm0338  # noqa: F401  (registers the "gsm03.38" codec)
from flask import current_app
from gsm0338.charset import BASIC_CHARACTER_SET, BASIC_CHARACTER_SET_EXTENSION
from jinja2 import Template, TemplateNotFound

from linkpay.i18n import language, normalize_language

GSM_SINGLE, GSM_MULTI = 160, 153
UCS2_SINGLE, UCS2_MULTI = 70, 67


@dataclass(frozen=True)
class Rendered:
    body: str
    subject: str | None = None
    html: str | None = None
    segments: int | None = None


def _alphabet() -> tuple[frozenset[str], frozenset[str]]:
    """GSM-7's characters, and those sent as two septets (the extension table), read from
    the codec's own tables. Set lookups instead of the codec's pure-Python encoder: that
    took about a millisecond per text, which a 100,000-text campaign cannot afford."""
    basic = {unicodedata.lookup(name) for name in BASIC_CHARACTER_SET.values()}
    extension = {unicodedata.lookup(name) for name in BASIC_CHARACTER_SET_EXTENSION.values()}
    return frozenset(basic | extension), frozenset(extension - basic)


GSM7, GSM7_EXTENSION = _alphabet()


def segments(text: str) -> int:
    """How many SMS segments ``text`` is billed as."""
    if not GSM7.issuperset(text):
        units = len(text.encode("utf-16-le")) // 2
        return 1 if units <= UCS2_SINGLE else math.ceil(units / UCS2_MULTI)
    septets = len(text) + sum(1 for char in text if char in GSM7_EXTENSION)  # escape + char
    return 1 if septets <= GSM_SINGLE else math.ceil(septets / GSM_MULTI)


def is_gsm7(text: str) -> bool:
    return GSM7.issuperset(text)


def to_gsm7(text: str) -> str:
    """Fold text (a customer's name, the organisation's) into GSM-7: "María" -> "Maria",
    "Nuñez" stays (ñ is GSM-7); characters with no GSM-7 likeness are dropped. Any run of
    whitespace becomes one space (a non-breaking space alone would make the text UCS-2)."""
    if not GSM7.issuperset(text):
        text = "".join(char if char in GSM7 else _fold(char) for char in text)
    return " ".join(text.split())


@lru_cache(maxsize=1024)
def _fold(char: str) -> str:
    if char.isspace():
        return " "
    return "".join(c for c in unicodedata.normalize("NFKD", char) if c in GSM7)


def render_sms(kind: str, lang: str, **context) -> Rendered:
    """Render ``templates/sms/<lang>/<kind>.txt``. Templates may define shorter variants
    (``<kind>.short.txt``) used when the full text would take another segment."""
    return render_sms_batch(kind, lang, [context])[0]


def render_email(kind: str, lang: str, **context) -> Rendered:
    """Render ``templates/email/<kind>/<lang>/{subject.txt,body.txt,body.html}``."""
    return render_email_batch(kind, lang, [context])[0]


def render_sms_batch(kind: str, lang: str, contexts: Iterable[dict]) -> list[Rendered]:
    """``render_sms`` for many contexts. Entering the language (flask-babel's
    ``force_locale``) and looking the templates up cost about 45 µs of a render's ~115, so
    a campaign's thousands of texts pay them once per batch. Message templates use only
    what the Jinja environment offers (filters, globals), never a request."""
    lang = normalize_language(lang)
    full = _template(f"sms/{lang}/{kind}.txt")
    short = _optional(f"sms/{lang}/{kind}.short.txt")
    out = []
    with language(lang):
        for context in contexts:
            folded = {k: to_gsm7(v) if isinstance(v, str) else v for k, v in context.items()}
            # Fold the whole text, not only the string values: attributes reach the
            # template through objects too ({{ account.first_name }} holding "María").
            body = to_gsm7(full.render(folded))
            if short is not None and segments(body) > 1:
                shorter = to_gsm7(short.render(folded))
                if segments(shorter) < segments(body):
                    body = shorter
            out.append(Rendered(body=body, segments=segments(body)))
    return out


def render_email_batch(kind: str, lang: str, contexts: Iterable[dict]) -> list[Rendered]:
    """``render_email`` for many contexts (see ``render_sms_batch``)."""
    lang = normalize_language(lang)
    folder = f"email/{kind}/{lang}"
    subject, text, html = (_template(f"{folder}/{name}") for name in _EMAIL_PARTS)
    out = []
    with language(lang):
        for context in contexts:
            out.append(
                Rendered(
                    subject=_squash(subject.render(context)),
                    body=text.render(context).strip() + "\n",
                    html=html.render({"lang": lang, **context}),
                )
            )
    return out


_EMAIL_PARTS = ("subject.txt", "body.txt", "body.html")


def _template(name: str) -> Template:
    return current_app.jinja_env.get_template(name)


def _optional(name: str) -> Template | None:
    try:
        return _template(name)
    except TemplateNotFound:
        return None


def _squash(text: str) -> str:
    """Templates are written over several lines for reading; an SMS is one line."""
    return " ".join(text.split())
