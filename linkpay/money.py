"""Dollar amounts as people type them, to and from integer cents.

One strict parser serves the CSV import, the payment page's amount field and SMS commands
("PAY $1,234.56"), so all three accept and refuse the same things. No float is ever involved:
the text is matched by a regular expression and the digits are read as integers.
"""

from __future__ import annotations

import re

MAX_CENTS = 10_000_000_00  # $10,000,000.00: far above any bill, far below overflow

# re.ASCII keeps \d to 0-9, so Arabic-Indic or full-width digits are refused, not converted.
_AMOUNT = re.compile(
    r"""
    \$?\x20?                                # an optional dollar sign, maybe a space
    (?P<whole>\d{1,3}(?:,\d{3})+|\d+)?      # 1,234,567 grouped by thousands, or plain digits
    (?:\.(?P<fraction>\d+))?                # cents, checked for length below
    """,
    re.ASCII | re.VERBOSE,
)
# Longer than any amount under the limit, even with a sign, commas and spaces around it.
_MAX_TEXT = 40


def parse_dollars(text: str) -> int:
    """Return the amount in ``text`` as cents, or raise ValueError with a short reason.

    Accepts ``1234.56``, ``$1,234.56``, ``1,234``, `` 12.5 `` and ``.50``. Refuses negative
    amounts, more than two decimals, exponents, NaN, infinity, underscores, non-ASCII
    digits, empty text and anything over $10,000,000.00."""
    if not isinstance(text, str):
        raise TypeError(f"parse_dollars expects text, got {type(text).__name__}")
    stripped = text.strip()
    if not stripped:
        raise ValueError("no amount given")
    if len(stripped) > _MAX_TEXT:
        raise ValueError("not a dollar amount")
    if stripped.startswith(("-", "(")) or stripped.startswith(("$-", "$(")):
        raise ValueError("amount cannot be negative")
    match = _AMOUNT.fullmatch(stripped)
    if match is None or (match["whole"] is None and match["fraction"] is None):
        raise ValueError("not a dollar amount")
    fraction = match["fraction"]
    if fraction is not None and len(fraction) > 2:
        raise ValueError("more than two decimal places")
    whole = int((match["whole"] or "0").replace(",", ""))
    cents = whole * 100 + int((fraction or "0").ljust(2, "0"))
    if cents > MAX_CENTS:
        raise ValueError(f"over the {format_cents(MAX_CENTS)} limit")
    return cents


def plain_dollars(cents: int) -> str:
    """``123456`` -> ``1234.56``: no dollar sign or separators, for files and form fields that a
    spreadsheet or ``parse_dollars`` reads back."""
    sign, dollars, remainder = _split(cents)
    return f"{sign}{dollars}.{remainder:02d}"


def format_cents(cents: int, language: str = "en") -> str:
    """``123456`` -> ``$1,234.56``.

    ``language`` is accepted so callers need not special-case it, but the result is the
    same in every language: Spanish-speaking customers in the US read US dollar notation,
    and a statement in "$1.234,56" next to a bill in "$1,234.56" would be a real confusion."""
    sign, dollars, remainder = _split(cents)
    return f"{sign}${dollars:,}.{remainder:02d}"


def _split(cents: int) -> tuple[str, int, int]:
    # bool is an int subclass; True cents is always a bug upstream.
    if isinstance(cents, bool) or not isinstance(cents, int):
        raise TypeError(f"expected whole cents as an int, got {type(cents).__name__}")
    dollars, remainder = divmod(abs(cents), 100)
    return ("-" if cents < 0 else ""), dollars, remainder
