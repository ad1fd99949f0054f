"""Jinja filters and globals shared by SMS, email and page templates.

``money`` and ``date`` follow the language the text is rendered in (``rendering`` forces
the recipient's locale), and stay inside GSM-7 so that an SMS using them never turns into
a costlier UCS-2 text. Month names are written out rather than numeric because "03/04"
means March 4 to an English reader and 3 April to a Spanish one."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import phonenumbers
from flask import Flask

from linkpay.i18n import current_language
from linkpay.money import format_cents

MONTHS = {
    "en": [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ],
    "es": [
        "enero",
        "febrero",
        "marzo",
        "abril",
        "mayo",
        "junio",
        "julio",
        "agosto",
        "septiembre",
        "octubre",
        "noviembre",
        "diciembre",
    ],
}
# Short forms people read on a bill: "Mar 15" in English, "15 mar" in Spanish (lowercase,
# no trailing period, as Spanish writes month abbreviations in running text).
SHORT_MONTHS = {
    "en": [name[:3] for name in MONTHS["en"]],
    "es": ["ene", "feb", "mar", "abr", "may", "jun", "jul", "ago", "sept", "oct", "nov", "dic"],
}


def init_app(app: Flask) -> None:
    app.jinja_env.filters["money"] = money
    app.jinja_env.filters["date"] = date
    app.jinja_env.filters["phone"] = phone
    app.jinja_env.globals["unsubscribe_url"] = _unsubscribe_url


def money(cents: int) -> str:
    """``123456`` -> ``$1,234.56`` (the same notation in both languages, see linkpay.money)."""
    return format_cents(cents, current_language())


def date(value: dt.date | dt.datetime | None, style: str = "short") -> str:
    """A day as a person reads it. ``short`` (for SMS): ``Mar 15`` / ``15 mar``; ``long``
    (for email and pages): ``March 15, 2026`` / ``15 de marzo de 2026``.

    An aware datetime (a link's ``expires_at``, stored in UTC) is first moved to the
    organisation's zone: a link expiring at 02:00 UTC expires the evening before in Phoenix."""
    if value is None:
        return ""
    day = _local_day(value)
    lang = current_language()
    if style == "long":
        name = MONTHS[lang][day.month - 1]
        if lang == "es":
            return f"{day.day} de {name} de {day.year}"
        return f"{name} {day.day}, {day.year}"
    if style != "short":
        raise ValueError(f"date filter: unknown style {style!r} (short or long)")
    name = SHORT_MONTHS[lang][day.month - 1]
    return f"{day.day} {name}" if lang == "es" else f"{name} {day.day}"


def phone(e164: str | None) -> str:
    """``+16025550100`` -> ``(602) 555-0100``: how US customers write their own numbers.
    Anything the library cannot read is shown as given rather than hidden."""
    if not e164:
        return ""
    try:
        number = phonenumbers.parse(e164, "US")
    except phonenumbers.NumberParseException:
        return e164
    if number.country_code == 1:
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def _local_day(value: dt.date | dt.datetime) -> dt.date:
    if not isinstance(value, dt.datetime):
        return value
    if value.tzinfo is None:
        return value.date()
    from linkpay.runtime import runtime

    return value.astimezone(ZoneInfo(runtime().config["app.timezone"])).date()


def _unsubscribe_url(account) -> str:
    """The one-click unsubscribe address for ``account``'s email (see web/unsubscribe.py)."""
    from linkpay.services.contacts import unsubscribe_url

    return unsubscribe_url(account.id)
