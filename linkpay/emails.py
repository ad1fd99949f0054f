"""Email addresses: checked for syntax and normalized, never looked up.

Deliverability (DNS) checks stay off: an import of thousands of rows must not wait on DNS,
and a bounce reported by the email provider is the real answer anyway.
"""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email

_SHOWN = 60  # how much of a bad address a message repeats back


def normalize_email(text: str) -> str:
    """``John@Example.COM`` -> ``John@example.com`` (the domain is case-insensitive, the local
    part may not be); ValueError with the reason otherwise."""
    stripped = text.strip()
    if not stripped:
        raise ValueError("no email address given")
    try:
        return validate_email(stripped, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        reason = str(exc).rstrip(".")
        raise ValueError(f"email {stripped[:_SHOWN]!r} is not valid: {reason}") from exc
