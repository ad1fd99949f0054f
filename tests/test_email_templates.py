"""Every email, in both languages, has a subject, a text and an HTML body, and says how to
stop (with the account's own unsubscribe link)."""

from __future__ import annotations

import pytest

from linkpay import ROOT
from linkpay.rendering import render_email
from linkpay.services.contacts import unsubscribe_url
from tests.test_sms_templates import LANGUAGES, worst_context

EMAIL_DIR = ROOT / "templates" / "email"


def email_kinds() -> list[str]:
    return sorted(p.name for p in EMAIL_DIR.iterdir() if p.is_dir())


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("kind", email_kinds())
def test_every_email_has_three_parts_and_an_unsubscribe_link(app, kind, lang):
    context = worst_context(f"email/{kind}/{lang}/body.txt", lang, "María José")
    context.update(worst_context(f"email/{kind}/{lang}/body.html", lang, "María José"))
    email = render_email(kind, lang, **context)
    assert email.subject and "\n" not in email.subject
    link = unsubscribe_url(context["account"].id)
    assert link in email.body, f"{kind}/{lang} text body has no unsubscribe link"
    assert link in email.html, f"{kind}/{lang} HTML body has no unsubscribe link"


def test_every_email_exists_in_english_and_spanish():
    for kind in email_kinds():
        for lang in LANGUAGES:
            folder = EMAIL_DIR / kind / lang
            assert {p.name for p in folder.iterdir()} >= {"subject.txt", "body.txt", "body.html"}
