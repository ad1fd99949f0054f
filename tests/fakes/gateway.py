"""A payment gateway that tests can watch: the sandbox, recording every charge asked of it,
and able to stop answering like a gateway that timed out. The ``spy`` fixture
(tests/fakes/fixtures.py) installs one as the app's gateway."""

from __future__ import annotations

from linkpay.gateways import GatewayError
from linkpay.gateways.sandbox import SandboxGateway


class SpyGateway(SandboxGateway):
    """The sandbox, counting charges; ``unreachable`` makes charges raise like a timeout."""

    def __init__(self, db):
        super().__init__(db)
        self.charges: list[tuple[str, int, str]] = []  # (token, amount_cents, idempotency key)
        self.unreachable = False

    def charge(self, token, amount_cents, idempotency_key):
        self.charges.append((token, amount_cents, idempotency_key))
        if self.unreachable:
            raise GatewayError("timed out")
        return super().charge(token, amount_cents, idempotency_key)
