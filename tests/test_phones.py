"""Contact normalization: phone numbers (linkpay.phones) and email addresses (linkpay.emails)."""

from __future__ import annotations

import phonenumbers
import pytest

from linkpay.emails import normalize_email
from linkpay.phones import normalize_phone, time_zones_for


def test_the_sample_numbers_are_valid_in_the_library_metadata():
    # 555-01XX numbers are fictional; these tests rely on the metadata calling them valid.
    for e164 in ("+16025550143", "+14165550143", "+18005550100"):
        assert phonenumbers.is_valid_number(phonenumbers.parse(e164))


@pytest.mark.parametrize(
    "text",
    [
        "(602) 555-0143",
        "602.555.0143",
        "602-555-0143",
        "6025550143",
        "+1 602 555 0143",
        "1-602-555-0143",
        "1 (602) 555-0143",
        "+16025550143",
        "  602 555 0143  ",
    ],
)
def test_common_us_forms_become_e164(text):
    assert normalize_phone(text) == "+16025550143"


@pytest.mark.parametrize(
    ("text", "e164"),
    [
        ("(416) 555-0143", "+14165550143"),  # Toronto: Canada is textable too
        ("1-800-555-0100", "+18005550100"),  # toll-free numbers can take texts
        ("+1 500 555 0006", "+15005550006"),  # personal/VoIP-style numbers are fine
    ],
)
def test_canadian_and_toll_free_numbers_are_accepted(text, e164):
    assert normalize_phone(text) == e164


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "no phone number given"),
        ("(555) 123", "'(555) 123' is not a valid US or Canadian number"),
        ("602 555 01433", "is not a valid US or Canadian number"),
        ("+1 700 200 1234", "is not a valid US or Canadian number"),
        ("+44 20 7946 0000", "is outside the US and Canada"),
        ("+1 809 555 0100", "is outside the US and Canada"),  # Dominican Republic, +1 too
        ("+1 900 200 1234", "is a premium-rate number"),
        ("1-800-FLOWERS", "is not a phone number"),
        ("602-555-0143 ext 12", "is not a phone number"),
        ("call 602-555-0143", "is not a phone number"),
        ("٦٠٢٥٥٥٠١٤٣", "is not a phone number"),  # Arabic-Indic digits are not converted
        ("+", "is not a phone number"),
        ("6" * 40, "is not a phone number"),
    ],
)
def test_refuses_numbers_we_cannot_text_with_a_reason(text, reason):
    with pytest.raises(ValueError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        normalize_phone(text)


def test_shared_cost_numbers_are_refused(monkeypatch):
    # The US metadata has no shared-cost range today, so the library's verdict is stubbed.
    monkeypatch.setattr(
        phonenumbers, "number_type", lambda number: phonenumbers.PhoneNumberType.SHARED_COST
    )
    with pytest.raises(ValueError, match="shared-cost"):
        normalize_phone("602-555-0143")


def test_time_zones_for_a_geographic_number():
    assert time_zones_for("+16025550143") == ["America/Phoenix"]


def test_time_zones_for_a_toll_free_number_are_many_and_never_unknown():
    zones = time_zones_for("+18005550100")
    assert "America/New_York" in zones and "America/Los_Angeles" in zones
    assert "Etc/Unknown" not in zones


def test_time_zones_for_an_unplaceable_number_are_empty():
    assert time_zones_for("+17002001234") == []


def test_time_zones_for_refuses_non_e164_text():
    with pytest.raises(ValueError, match="not an E.164"):
        time_zones_for("not a number")


@pytest.mark.parametrize(
    ("text", "normalized"),
    [
        ("John.Doe@Example.COM", "John.Doe@example.com"),
        ("  ana@example.org ", "ana@example.org"),
        ("=cmd@example.com", "=cmd@example.com"),
    ],
)
def test_emails_are_normalized(text, normalized):
    assert normalize_email(text) == normalized


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "no email address given"),
        ("bad@", "email 'bad@' is not valid: There must be something after the @-sign"),
        ("a@b", "is not valid"),
        ("two words@example.com", "is not valid"),
        ("x@localhost", "is not valid"),
    ],
)
def test_bad_emails_are_refused_with_a_reason(text, reason):
    with pytest.raises(ValueError, match=reason):
        normalize_email(text)
