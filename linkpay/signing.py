"""Signed, expiring tokens for links, one salt per purpose, with key rotation.

Tokens are kept short on purpose: a link SMS must fit one 160-character segment with a
30-character base URL. The payload is the row id; the signature is HMAC-SHA256 cut to
128 bits, which is still far beyond guessing, and the token itself is never stored."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from itsdangerous import BadSignature, SignatureExpired, URLSafeSerializer, URLSafeTimedSerializer
from itsdangerous.signer import HMACAlgorithm
from itsdangerous.timed import TimestampSigner


class Purpose(StrEnum):
    PAY_LINK = "pay-link"
    RECEIPT = "receipt"
    UNSUBSCRIBE = "unsubscribe"


class _ShortHMAC(HMACAlgorithm):
    def get_signature(self, key: bytes, value: bytes) -> bytes:
        return super().get_signature(key, value)[:16]


_SHORT = {"algorithm": _ShortHMAC(hashlib.sha256)}


class _Compact(URLSafeTimedSerializer):
    default_signer_kwargs = _SHORT
    # JSON of a bare integer ("1234") needs no compression and no leading dot.


class _CompactForever(URLSafeSerializer):
    default_signer_kwargs = _SHORT


# Tokens for these purposes never expire, so they carry no timestamp: the same subject
# always gets the same token (an email's unsubscribe link reads the same in its text and
# HTML parts, and in the List-Unsubscribe header).
TIMELESS = frozenset({Purpose.UNSUBSCRIBE})


@dataclass(frozen=True)
class Verified:
    """The outcome of reading a token: the id, and whether it has expired."""

    subject_id: int | None
    expired: bool = False

    @property
    def valid(self) -> bool:
        return self.subject_id is not None and not self.expired


class Signer:
    def __init__(self, secret_key: str, previous_keys: list[str] | None = None):
        # itsdangerous signs with the last key and accepts any of them.
        self.keys = [*(previous_keys or []), secret_key]
        self._timestamp_signer: type[TimestampSigner] = TimestampSigner

    def use_clock(self, now: Callable[[], dt.datetime]) -> None:
        """Date tokens by ``now`` instead of the system clock: a token's age is then
        measured by the service's own clock (and a frozen clock makes tokens repeatable)."""
        self._timestamp_signer = _signer_on_clock(now)

    def _serializer(self, purpose: Purpose) -> URLSafeSerializer:
        if purpose in TIMELESS:
            return _CompactForever(self.keys, salt=str(purpose), signer_kwargs=_SHORT)
        return _Compact(
            self.keys, salt=str(purpose), signer=self._timestamp_signer, signer_kwargs=_SHORT
        )

    def sign(self, purpose: Purpose, subject_id: int) -> str:
        return self._serializer(purpose).dumps(int(subject_id))

    def verify(self, purpose: Purpose, token: str, max_age_seconds: int | None) -> Verified:
        """A forged or mangled token gives ``Verified(None)``; an expired one keeps its id
        (so the page can offer a fresh link) and says ``expired``."""
        serializer = self._serializer(purpose)
        age = {} if purpose in TIMELESS else {"max_age": max_age_seconds}
        try:
            value = serializer.loads(token, **age)
        except SignatureExpired as exc:
            # The signature was good, so the payload can be trusted for "send a new link".
            try:
                return Verified(_as_id(serializer.load_payload(exc.payload)), expired=True)
            except BadSignature:
                return Verified(None, expired=True)
        except BadSignature:
            return Verified(None)
        return Verified(_as_id(value))


def _signer_on_clock(now: Callable[[], dt.datetime]) -> type[TimestampSigner]:
    class ClockedTimestampSigner(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(now().timestamp())

    return ClockedTimestampSigner


def _as_id(value) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return None
