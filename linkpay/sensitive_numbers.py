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

from stdnum import luhn

# Any script's digits (a phone keyboard may send Arabic-Indic ones), one separator at most
# between two of them.
_LONG_NUMBER = re.compile(r"(?<!\d)\d(?:[ .-]?\d){12,}(?!\d)")
_MASKED = re.compile(r"\[number removed, ends \d{4}\]")
_GROUP = re.compile(r"\d+")
MIN_CARD_DIGITS, MAX_CARD_DIGITS = 13, 19
MAX_GROUPS_SEARCHED = 24


def mask(text: str) -> str:
    """``text`` with every long number replaced by "[number removed, ends 1234]"."""
    return _LONG_NUMBER.sub(_masked, text)


def contains_one(text: str) -> bool:
    """Whether ``text`` holds a long number, or held one that ``mask`` replaced."""
    return bool(_LONG_NUMBER.search(text) or _MASKED.search(text))


def _masked(match: re.Match) -> str:
    """The run masked. Where some of its groups of digits read as a card number (13 to 19
    digits passing the Luhn check), only those go: "4242 4242 4242 4242 12/28" keeps its
    "12/28", and the last four shown are the card's."""
    run = match.group()
    groups = list(_GROUP.finditer(run))
    # Past a card typed digit by digit and a little more, nobody typed a card on its own:
    # mask the lot rather than search every stretch of a very long run.
    card = _card_number_span(groups) if len(groups) <= MAX_GROUPS_SEARCHED else None
    if card is None:
        return _marker(run)
    first, last = card
    start, end = groups[first].start(), groups[last].end()
    return mask(run[:start]) + _marker(run[start:end]) + mask(run[end:])


def _card_number_span(groups: list[re.Match]) -> tuple[int, int] | None:
    """The stretch of whole groups (first, last) that reads as a card number: of those
    passing the Luhn check (one in ten stretches does by chance), the common lengths
    first (16 digits, then Amex's 15), then the longest, then the earliest."""
    ascii_groups = ["".join(str(int(c)) for c in group.group()) for group in groups]
    found = {}
    for first in range(len(groups)):
        digits = ""
        for last in range(first, len(groups)):
            digits += ascii_groups[last]
            if len(digits) > MAX_CARD_DIGITS:
                break
            if len(digits) >= MIN_CARD_DIGITS and luhn.is_valid(digits):
                found[(first, last)] = len(digits)
    if not found:
        return None
    return max(
        found, key=lambda span: (found[span] == 16, found[span] == 15, found[span], -span[0])
    )


def _marker(number: str) -> str:
    digits = [c for c in number if c.isdigit()]
    return f"[number removed, ends {''.join(digits[-4:])}]"
