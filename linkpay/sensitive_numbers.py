"""Card and bank account numbers typed where they do not belong (a customer's text):
found, and masked to their last four digits before the text is queued, stored or shown,
so no full card or bank number is ever kept.

What counts: a run of 13 or more digits, with the single spaces, dashes or dots people
type between groups. Card numbers are 13 to 19 digits; bank account numbers have no
checksum to tell them by, and few are shorter, while nothing a customer texts us
legitimately is that long (phone numbers have 10 or 11 digits, codes 6, amounts a few).
A run that long is masked whether or not it passes the Luhn check: a mistyped card
number is still a card number."""

from __future__ import annotations

import re

# Any script's digits (a phone keyboard may send Arabic-Indic ones), one separator at most
# between two of them.
_LONG_NUMBER = re.compile(r"(?<!\d)\d(?:[ .-]?\d){12,}(?!\d)")
_MASKED = re.compile(r"\[number removed, ends \d{4}\]")


def mask(text: str) -> str:
    """``text`` with every long number replaced by "[number removed, ends 1234]"."""
    return _LONG_NUMBER.sub(_masked, text)


def contains_one(text: str) -> bool:
    """Whether ``text`` holds a long number, or held one that ``mask`` replaced."""
    return bool(_LONG_NUMBER.search(text) or _MASKED.search(text))


def _masked(match: re.Match) -> str:
    digits = [c for c in match.group() if c.isdigit()]
    return f"[number removed, ends {''.join(digits[-4:])}]"
