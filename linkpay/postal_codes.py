"""Postal codes on file: US ZIP codes (``85004``, ``85004-1234``) and Canadian postal codes
(``K1A 0B1``), since linkpay takes US and Canadian phone numbers alike.

``normalize`` is what an import stores; ``match_key`` is what the payment page compares,
so ``k1a0b1`` typed on a phone matches ``K1A 0B1`` on file and ``85004`` matches
``85004-1234``."""

from __future__ import annotations

import re

_US = re.compile(r"(\d{5})(?:-?(\d{4}))?", re.ASCII)
# Canada Post never uses D, F, I, O, Q or U, nor W or Z as the first letter.
_CANADA = re.compile(
    r"([ABCEGHJ-NPRSTVXY]\d[ABCEGHJ-NPRSTV-Z]) ?(\d[ABCEGHJ-NPRSTV-Z]\d)", re.ASCII
)


def normalize(text: str | None) -> str | None:
    """``85004``, ``85004-1234`` or ``K1A 0B1``; None when ``text`` is neither form."""
    cleaned = (text or "").strip().upper()
    us = _US.fullmatch(cleaned)
    if us:
        return us[1] + (f"-{us[2]}" if us[2] else "")
    canada = _CANADA.fullmatch(cleaned)
    if canada:
        return f"{canada[1]} {canada[2]}"
    return None


def match_key(text: str | None) -> str | None:
    """The part that must match: a ZIP's five digits, a postal code's six characters."""
    code = normalize(text)
    if code is None:
        return None
    return code.replace(" ", "") if is_canadian(code) else code[:5]


def is_canadian(code: str) -> bool:
    return bool(code) and code[0].isalpha()
