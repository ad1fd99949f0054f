"""Provider webhooks: Twilio (inbound SMS, message status) and SendGrid (email events).

Every handler follows the same order: verify the provider's signature before trusting a
byte of the body (403 and no side effect otherwise), dedupe on the provider's own event id
(a ``ProviderEvent`` row, unique per provider), do the small bookkeeping the event asks
for, and answer at once. Nothing here calls a provider. Callbacks that are valid but
unknown to us still get a 2xx, so providers do not retry them forever.

These routes are called by machines with their own signatures, not by browsers with our
forms, so they are exempt from CSRF.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from linkpay.models import ProviderEvent
from linkpay.runtime import runtime


def register(app: Flask) -> None:
    from linkpay.security import csrf, limiter
    from webhooks import sendgrid, twilio
    from webhooks.fast_path import InboundTextFastPath

    for blueprint in (twilio.bp, sendgrid.bp):
        csrf.exempt(blueprint)
        # Providers' own retries and signatures govern these, not per-IP limits; the
        # check would also cost a storage round trip on every callback.
        limiter.exempt(blueprint)
        app.register_blueprint(blueprint)
    app.wsgi_app = InboundTextFastPath(app)


def record_event(
    session: Session, provider: str, event_id: str, kind: str, payload: dict[str, Any]
) -> ProviderEvent | None:
    """Store a webhook event, or return None when this exact event was stored before.

    The unique (provider, event_id) constraint decides, not a prior SELECT: two deliveries
    of one callback racing on two web workers are handled once. The insert runs in a
    savepoint so a duplicate undoes only itself, not the caller's transaction."""
    event = ProviderEvent(
        provider=provider,
        event_id=event_id[:120],
        kind=kind[:40],
        payload=payload,
        received_at=runtime().now(),
    )
    try:
        with session.begin_nested():
            session.add(event)
    except IntegrityError:
        return None
    return event
