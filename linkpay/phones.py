"""Phone numbers: whatever a spreadsheet or a form holds, to E.164 we can text.

Only US and Canadian numbers are accepted: the service texts North American customers from
a US sender, and other NANP regions (the Caribbean, US territories abroad) bill
international rates and often cannot receive US short-code or 10DLC traffic.
"""

from __future__ import annotations

import re

import phonenumbers
from phonenumbers import PhoneNumberFormat, PhoneNumberType
from phonenumbers import timezone as phone_timezone

TEXTABLE_REGIONS = frozenset({"US", "CA"})
# Premium-rate and shared-cost numbers charge the sender or cannot take texts at all.
REFUSED_TYPES = {
    PhoneNumberType.PREMIUM_RATE: "a premium-rate number",
    PhoneNumberType.SHARED_COST: "a shared-cost number",
}
# Digits and the punctuation people put between them. Letters are refused so vanity numbers
# and stray notes ("cell, call after 5") are not silently converted by the library.
_PHONE_CHARACTERS = re.compile(r"[0-9()+\-. ]+", re.ASCII)
_MAX_TEXT = 30


def normalize_phone(text: str) -> str:
    """``(602) 555-0143`` -> ``+16025550143``; ValueError with the reason otherwise."""
    stripped = text.strip()
    if not stripped:
        raise ValueError("no phone number given")
    shown = stripped[:_MAX_TEXT]
    if len(stripped) > _MAX_TEXT or not _PHONE_CHARACTERS.fullmatch(stripped):
        raise ValueError(f"phone {shown!r} is not a phone number")
    try:
        number = phonenumbers.parse(stripped, "US")
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"phone {shown!r} is not a phone number") from exc
    # The region is looked up once and reused: the lookup tries every +1 region in turn
    # and dominates the cost of a large import.
    region = phonenumbers.region_code_for_number(number)
    valid = phonenumbers.is_possible_number(number) and region is not None
    if not (valid and phonenumbers.is_valid_number_for_region(number, region)):
        raise ValueError(f"phone {shown!r} is not a valid US or Canadian number")
    if region not in TEXTABLE_REGIONS:
        raise ValueError(f"phone {shown!r} is outside the US and Canada")
    refused = REFUSED_TYPES.get(phonenumbers.number_type(number))
    if refused:
        raise ValueError(f"phone {shown!r} is {refused}")
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def time_zones_for(e164: str) -> list[str]:
    """The IANA zones a number may be in; several for toll-free and non-geographic numbers,
    none when the library has no idea (its "Etc/Unknown" placeholder is dropped)."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"{e164!r} is not an E.164 phone number") from exc
    zones = phone_timezone.time_zones_for_number(number)
    return [zone for zone in zones if zone != "Etc/Unknown"]
