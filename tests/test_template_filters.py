"""The Jinja filters messages and pages share: money, date, phone."""

from __future__ import annotations

import datetime as dt

import pytest
from flask import render_template_string

from linkpay.i18n import language
from linkpay.rendering import is_gsm7


def render(source: str, lang: str = "en", **context) -> str:
    with language(lang):
        return render_template_string(source, **context)


@pytest.mark.parametrize(
    ("cents", "shown"), [(0, "$0.00"), (5, "$0.05"), (123456, "$1,234.56"), (-250, "-$2.50")]
)
@pytest.mark.parametrize("lang", ["en", "es"])
def test_money_is_dollars_and_cents_in_both_languages(app, cents, shown, lang):
    assert render("{{ c|money }}", lang, c=cents) == shown


def test_money_refuses_anything_but_whole_cents(app):
    with pytest.raises(TypeError):
        render("{{ c|money }}", c=12.5)


@pytest.mark.parametrize(
    ("lang", "short", "long"),
    [
        ("en", "Mar 5", "March 5, 2026"),
        ("es", "5 mar", "5 de marzo de 2026"),
    ],
)
def test_dates_short_for_texts_long_for_emails(app, lang, short, long):
    day = dt.date(2026, 3, 5)
    assert render("{{ d|date }}", lang, d=day) == short
    assert render('{{ d|date("long") }}', lang, d=day) == long
    assert is_gsm7(short)


def test_spanish_september_is_sept_and_every_month_is_gsm7(app):
    months = [dt.date(2026, m, 1) for m in range(1, 13)]
    shown = [render("{{ d|date }}", "es", d=d) for d in months]
    assert shown[8] == "1 sept"
    assert all(is_gsm7(s) and s == s.lower() for s in shown)


def test_an_instant_is_shown_on_the_organisations_calendar(app):
    # 02:00 UTC on March 16 is still March 15 in Phoenix (UTC-7).
    instant = dt.datetime(2026, 3, 16, 2, 0, tzinfo=dt.UTC)
    assert render("{{ t|date }}", t=instant) == "Mar 15"


def test_no_date_shows_nothing_and_an_unknown_style_is_an_error(app):
    assert render("{{ d|date }}", d=None) == ""
    with pytest.raises(ValueError, match="unknown style"):
        render('{{ d|date("medium") }}', d=dt.date(2026, 3, 5))


@pytest.mark.parametrize(
    ("number", "shown"),
    [
        ("+16025550100", "(602) 555-0100"),
        ("+442071838750", "+44 20 7183 8750"),
        ("not a number", "not a number"),
        (None, ""),
    ],
)
def test_phone_numbers_as_customers_write_them(app, number, shown):
    assert render("{{ p|phone }}", p=number) == shown
