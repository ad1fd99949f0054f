"""What a customer's text means (contract §5): ``parse_sms(body) -> Command``.

A pure function: no database, no config. Matching ignores case, accents and surrounding
spaces, so "Sí 482193", "pagar 50" and "  STOP " all read as intended. Whatever it cannot
read is ``Kind.UNKNOWN`` and gets the help text; the raw body is never echoed back. A text
holding a card or bank number (``linkpay.sensitive_numbers``) is ``Kind.SENSITIVE_NUMBER``
whatever else it says: the answer is a warning, not a guess at the rest."""

from __future__ import annotations

import enum
import re
import unicodedata
from dataclasses import dataclass

from linkpay import sensitive_numbers
from linkpay.money import parse_dollars

MAX_BODY = 320  # two segments; a longer text is not a command anyone typed


class Kind(enum.StrEnum):
    PAY = "pay"  # amount_cents None means "the balance"
    CONFIRM = "confirm"  # code
    SELECT_ACCOUNT = "select_account"  # account_last4
    ACTIVATE = "activate"  # OK: turn on a waiting Pay by Text enrollment
    BALANCE = "balance"
    LINK = "link"
    HELP = "help"
    STOP = "stop"
    START = "start"
    BAD_AMOUNT = "bad_amount"  # PAY with an amount we refuse; ``error`` says why
    SENSITIVE_NUMBER = "sensitive_number"  # a card or bank number, texted: never kept
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Command:
    kind: Kind
    language: str | None = None  # "es" for Spanish keywords, "en" for English, None neutral
    amount_cents: int | None = None
    code: str | None = None
    account_last4: str | None = None
    error: str | None = None


_KEYWORDS: dict[str, tuple[Kind, str | None]] = {
    **{w: (Kind.STOP, "en") for w in ("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT")},
    **{w: (Kind.STOP, "en") for w in ("REVOKE", "OPTOUT", "OPT OUT")},
    **{w: (Kind.STOP, "es") for w in ("PARAR", "ALTO", "CANCELAR", "BAJA", "NO MAS")},
    "START": (Kind.START, "en"),
    "UNSTOP": (Kind.START, "en"),
    "COMENZAR": (Kind.START, "es"),
    "HELP": (Kind.HELP, "en"),
    "INFO": (Kind.HELP, "en"),
    "AYUDA": (Kind.HELP, "es"),
    "BAL": (Kind.BALANCE, "en"),
    "SALDO": (Kind.BALANCE, "es"),
    "LINK": (Kind.LINK, "en"),
    "ENLACE": (Kind.LINK, "es"),
    "OK": (Kind.ACTIVATE, None),
}
_PAY_WORDS = {"PAY": "en", "PAGAR": "es"}
_CONFIRM_WORDS = {"YES": "en", "SI": "es"}
_CODE = re.compile(r"[0-9]{6}", re.ASCII)
_LAST4 = re.compile(r"[0-9]{4}", re.ASCII)


def normalize(body: str) -> str:
    """Upper case, accents dropped, inner runs of space folded: "  Sí  482193 " -> "SI 482193"."""
    # NFD, not NFKD: compatibility folding would turn full-width digits into ASCII ones.
    decomposed = unicodedata.normalize("NFD", body)
    without_marks = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(without_marks.upper().split())


def parse_sms(body: str) -> Command:
    if not isinstance(body, str) or len(body) > MAX_BODY:
        return Command(Kind.UNKNOWN)
    if sensitive_numbers.contains_one(body):
        return Command(Kind.SENSITIVE_NUMBER)
    text = normalize(body)
    if text in _KEYWORDS:
        kind, language = _KEYWORDS[text]
        return Command(kind, language)
    head, _, rest = text.partition(" ")
    if head in _PAY_WORDS:
        return _pay(rest, _PAY_WORDS[head])
    if head in _CONFIRM_WORDS and _CODE.fullmatch(rest):
        return Command(Kind.CONFIRM, _CONFIRM_WORDS[head], code=rest)
    if _CODE.fullmatch(text):
        return Command(Kind.CONFIRM, code=text)
    if _LAST4.fullmatch(text):
        return Command(Kind.SELECT_ACCOUNT, account_last4=text)
    return Command(Kind.UNKNOWN)


def _pay(amount_text: str, language: str) -> Command:
    if not amount_text:
        return Command(Kind.PAY, language)
    try:
        cents = parse_dollars(amount_text)
    except ValueError as exc:
        return Command(Kind.BAD_AMOUNT, language, error=str(exc))
    if cents <= 0:
        return Command(Kind.BAD_AMOUNT, language, error="amount must be more than zero")
    return Command(Kind.PAY, language, amount_cents=cents)
