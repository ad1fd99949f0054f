"""Every SMS template fits one GSM-7 segment with worst-case values (contract §3).

Templates are found on disk, so one added later (a receipt, a reminder) is checked without
touching this file. Context keys this file does not know are filled by name: ``*_cents``
gets a large amount, ``*_at`` a datetime, ``*url`` a full link, anything else a stand-in
object whose every attribute is again filled by name. A template that truly needs two
segments must be listed in TWO_SEGMENT_TEMPLATES with the reason."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from flask import render_template
from jinja2 import meta

from linkpay import ROOT
from linkpay.i18n import language
from linkpay.models import Account
from linkpay.rendering import GSM7_EXTENSION, is_gsm7, render_sms, segments, to_gsm7
from linkpay.services import links
from linkpay.services.messages import org_context

SMS_DIR = ROOT / "templates" / "sms"
# "es/kind.txt" -> why it may take two segments. Every extra segment is paid for.
TWO_SEGMENT_TEMPLATES: dict[str, str] = {
    **{
        f"{lang}/pay_not_enrolled.txt": "how to turn Pay by Text on, and a link to pay now"
        for lang in ("en", "es")
    },
    **{
        f"{lang}/pay_declined.txt": "what was declined and why, and a link to pay another way"
        for lang in ("en", "es")
    },
}
# Templates that do not end with the opt-out notice, and what they say instead: the STOP
# confirmation tells an opted-out number how to come back.
WITHOUT_OPT_OUT: dict[str, str] = {
    "en/sms_stopped.txt": "Reply START",
    "es/sms_stopped.txt": "Responda COMENZAR",
}
# Worst cases for context keys whose names say too little (Pay by Text replies).
NAMED_WORST: dict[str, object] = {
    "code": "482193",  # the one-time code: always 6 digits
    "minutes": 10,
    "tries_left": 2,
    "choices": ["1234", "5678", "9012"],  # a phone on three accounts
}
# "es/kind.txt" -> (context key, why): two segments only when that key is set; without it
# the template must still fit one.
PAY_BY_TEXT_LINK = (
    "reply_pay",
    "a link text to a phone with Pay by Text on also says 'Reply PAY to pay $X with card "
    "ending 1111', which does not fit beside a full link at the worst case (it does in "
    "everyday English, through the .short.txt fallback)",
)
TWO_SEGMENTS_WHEN: dict[str, tuple[str, str]] = {
    f"{lang}/{kind}{suffix}": PAY_BY_TEXT_LINK
    for lang in ("en", "es")
    for kind in ("link", "fresh_link")
    for suffix in (".txt", ".short.txt")
}

WORST_BASE_URL = "https://pay.springfieldwtr.org"  # 30 characters, the contract's maximum
WORST_ORG = "City of Springfield Utilities"  # 29 characters
WORST_LINK_ID = 99_999_999  # 8 digits
WORST_CENTS = 1_234_567  # $12,345.67
WORST_DUE = dt.date(2026, 9, 30)  # "Sep 30" / "30 sept", the longest short month in Spanish
WORST_EXPIRES = dt.datetime(2026, 9, 30, 18, 0, tzinfo=dt.UTC)
LONG_NAMES = ("Maximiliano", "María José", "Guadalupe Esperanza")
LANGUAGES = ("en", "es")
OPT_OUT = {"en": "Reply STOP to opt out", "es": "Responda PARAR para cancelar"}


def sms_templates() -> list[str]:
    return sorted(path.relative_to(SMS_DIR).as_posix() for path in SMS_DIR.glob("*/*.txt"))


@pytest.fixture
def config_overrides(config_overrides, request):
    """The worst case unless a test asks for the suite's everyday configuration
    (24-character base_url, "Springfield Water") with an indirect parameter."""
    worst = {"app.base_url": WORST_BASE_URL, "org.name": WORST_ORG}
    config_overrides.update(getattr(request, "param", worst))
    return config_overrides


class Anything:
    """A stand-in for a context value this file has no worst case for. Rendered once
    truthy and once falsy, so both sides of an ``{% if flag %}`` are checked."""

    def __init__(self, name: str = "value", truthy: bool = True):
        self._name = name
        self._truthy = truthy

    def __bool__(self) -> bool:
        return self._truthy

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return worst_value(name, self._truthy)

    def __getitem__(self, key):
        return worst_value(str(key), self._truthy)

    def __call__(self, *args, **kwargs):
        return Anything(self._name, self._truthy)

    def __iter__(self):
        return iter([Anything(self._name, self._truthy) for _ in range(3)])

    def __len__(self) -> int:
        return 3

    def __str__(self) -> str:
        return "X" * 12  # a confirmation number, a plan name: 12 characters is generous

    __html__ = __str__


def worst_value(name: str, truthy: bool = True):
    """The longest realistic value for a context key, guessed from its name."""
    lowered = name.lower()
    if lowered in NAMED_WORST:
        return NAMED_WORST[lowered]
    if lowered.endswith("_cents") or lowered in {"amount", "balance"}:
        return WORST_CENTS
    if lowered.endswith("_at"):
        return WORST_EXPIRES
    if lowered.endswith(("date", "_on")):
        return WORST_DUE
    if lowered.endswith("url"):
        return links.link_url(WORST_LINK_ID)
    if lowered.endswith(("last4", "last_four")):
        return "4242"
    if "name" in lowered:
        return "María José"
    return Anything(name, truthy)


def worst_context(template: str, lang: str, first_name: str, truthy: bool = True) -> dict:
    account = Account(
        id=WORST_LINK_ID,
        account_number="AC-99999999",
        first_name=first_name,
        last_name="Villaseñor Domínguez",
        phone="+16025550143",
        email="maria.jose@example.com",
        balance_cents=WORST_CENTS,
        due_date=WORST_DUE,
        zip="85004",
        language=lang,
    )
    context = {
        "account": account,
        "org": org_context(),
        "url": links.link_url(WORST_LINK_ID),
        "balance_cents": WORST_CENTS,
        "due_date": WORST_DUE,
        "expires_at": WORST_EXPIRES,
    }
    for name in _variables(template) - set(context):
        context[name] = worst_value(name, truthy)
    return context


def _variables(template: str) -> set[str]:
    from flask import current_app

    env = current_app.jinja_env
    source = env.loader.get_source(env, template)[0]
    return meta.find_undeclared_variables(env.parse(source))


def render_file(relative: str, context: dict) -> str:
    """Render one template file exactly as rendering.render_sms would, without its
    fall-back to the short variant (used to check the short variants themselves)."""
    lang = relative.split("/")[0]
    folded = {k: to_gsm7(v) if isinstance(v, str) else v for k, v in context.items()}
    with language(lang):
        return to_gsm7(render_template(f"sms/{relative}", **folded))


@pytest.mark.parametrize("relative", sms_templates())
def test_every_sms_template_fits_one_gsm7_segment_with_worst_case_values(app, relative):
    lang, filename = relative.split("/")
    template = f"sms/{relative}"
    for first_name, truthy in itertools.product(LONG_NAMES, (True, False)):
        context = worst_context(template, lang, first_name, truthy)
        allowed = 2 if relative in TWO_SEGMENT_TEMPLATES else 1
        if relative in TWO_SEGMENTS_WHEN and context.get(TWO_SEGMENTS_WHEN[relative][0]):
            allowed = 2
        if filename.endswith(".short.txt"):
            body = render_file(relative, context)  # the last resort must fit on its own
        else:
            body = render_sms(filename.removesuffix(".txt"), lang, **context).body
        assert is_gsm7(body), f"{relative} is not GSM-7 for {first_name!r}: {body!r}"
        assert segments(body) <= allowed, f"{relative}, {len(body)} characters: {body}"
        if relative in WITHOUT_OPT_OUT:
            assert WITHOUT_OPT_OUT[relative] in body, f"{relative} does not say how to come back"
            assert OPT_OUT[lang] not in body
        else:
            assert OPT_OUT[lang] in body, f"{relative} does not say how to stop: {body}"


def test_the_worst_case_values_are_the_contracts():
    assert len(WORST_BASE_URL) == 30
    assert len(str(WORST_LINK_ID)) == 8


def test_every_sms_template_exists_in_english_and_spanish():
    names = {lang: {p.name for p in (SMS_DIR / lang).glob("*.txt")} for lang in LANGUAGES}
    assert names["en"] == names["es"]
    assert {"link.txt", "fresh_link.txt"} <= names["en"]


def test_every_template_in_the_two_segment_list_exists():
    assert set(TWO_SEGMENT_TEMPLATES) <= set(sms_templates())
    assert set(WITHOUT_OPT_OUT) <= set(sms_templates())
    assert set(TWO_SEGMENTS_WHEN) <= set(sms_templates())


@pytest.mark.parametrize("kind", ["link", "fresh_link"])
@pytest.mark.parametrize(
    ("lang", "opt_out"), [("en", "Reply STOP to opt out"), ("es", "Responda PARAR para cancelar")]
)
def test_a_link_text_names_the_org_the_amount_the_link_and_how_to_stop(app, kind, lang, opt_out):
    context = worst_context(f"sms/{lang}/{kind}.txt", lang, "Maximiliano")
    body = render_sms(kind, lang, **context).body
    assert WORST_ORG in body
    assert "$12,345.67" in body
    assert f" {context['url']} " in f" {body} "  # whole, and not glued to punctuation
    assert body.endswith(opt_out)


@pytest.mark.parametrize("config_overrides", [{}], indirect=True)
@pytest.mark.parametrize(("lang", "greeting"), [("en", "Hi Maria,"), ("es", "Hola Maria,")])
def test_an_accented_name_is_folded_and_the_text_stays_gsm7(app, lang, greeting):
    account = Account(id=1234, first_name="María", balance_cents=8412, language=lang)
    context = {
        "account": account,
        "org": org_context(),
        "url": links.link_url(1234),
        "balance_cents": 8412,
        "due_date": WORST_DUE,
        "expires_at": WORST_EXPIRES,
    }
    body = render_sms("link", lang, **context).body
    assert greeting in body  # the personal text, not the short fall-back
    assert "María" not in body
    assert is_gsm7(body)
    assert segments(body) == 1


def test_the_gsm7_alphabet_agrees_with_the_codec_for_every_character():
    for code in range(0x10000):
        if 0xD800 <= code < 0xE000:
            continue  # surrogates are not characters
        char = chr(code)
        try:
            septets = len(char.encode("gsm03.38"))
        except UnicodeEncodeError:
            septets = None
        assert is_gsm7(char) is (septets is not None), repr(char)
        if septets is not None:
            assert septets == 1 + (char in GSM7_EXTENSION), repr(char)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("€" * 80, 1),  # extension characters take two septets each
        ("€" * 81, 2),
        ("í" * 70, 1),  # one character outside GSM-7 and the text is UCS-2
        ("í" * 71, 2),
        ("", 1),
    ],
)
def test_segments_count_what_the_text_is_billed_as(text, expected):
    assert segments(text) == expected


@pytest.mark.parametrize(
    ("raw", "folded"),
    [
        ("María José", "Maria José"),  # é is GSM-7, í is not
        ("Núñez", "Nuñez"),
        ("Ana\u00a0 Lopez\n", "Ana Lopez"),  # a non-breaking space, runs of spaces
        ("Zoë ™", "Zoe TM"),  # ë is not GSM-7 (ä ö ü are)
        ("Price: 5€", "Price: 5€"),
    ],
)
def test_text_is_folded_into_gsm7(raw, folded):
    assert to_gsm7(raw) == folded
    assert is_gsm7(to_gsm7(raw))
