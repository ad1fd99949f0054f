"""The outbox transport, for SMS and email alike: nothing leaves the building.

The Message row itself is the outbox. "Sending" only lets the send job mark the row sent,
with provider "outbox", so the local outbox page (which lists Message rows) shows exactly
what Twilio or SendGrid would have been asked to deliver, and the rest of the pipeline
(claiming, quiet hours, opt-outs) runs the same way it does in production.
"""

from __future__ import annotations

from linkpay.models import Message
from linkpay.transports.base import ProviderResult

PROVIDER = "outbox"


class OutboxTransport:
    name = PROVIDER

    def send(self, message: Message) -> ProviderResult:
        # The row's own id is the "provider id": it names where the message can be seen.
        return ProviderResult(provider=PROVIDER, provider_id=str(message.id))
