"""Which transport carries each channel, and the few transport facts the send job needs.

A transport (and its provider client, with its connection pool) is built from the config on
first use and kept in ``runtime().providers``: one per app, never at import time, and only
for the provider the config names (the outbox needs no client at all).
"""

from __future__ import annotations

import datetime as dt
from email.utils import parsedate_to_datetime

from linkpay.config import Config
from linkpay.models import Channel
from linkpay.runtime import runtime
from linkpay.transports.base import Transport, TransportError

# Provider error codes that mean the person opted out rather than that the address is bad:
# Twilio 21610, the recipient texted STOP to our number. Kept here, free of any SDK, so
# the send job can ask without importing a provider's client.
OPTED_OUT_CODES = frozenset({"21610"})


def transport_for(channel: Channel | str) -> Transport:
    """The configured transport for ``channel``, built once per app."""
    channel = Channel(channel)
    providers = runtime().providers
    key = f"transport.{channel.value}"
    transport = providers.get(key)
    if transport is None:
        # Two threads may both build one on first use; either is fine, one is kept.
        transport = providers.setdefault(key, build_transport(channel, runtime().config))
    return transport


def build_transport(channel: Channel, config: Config) -> Transport:
    if channel == Channel.SMS and config["sms.provider"] == "twilio":
        from linkpay.transports.twilio_sms import TwilioSmsTransport

        return TwilioSmsTransport.from_config(config)
    if channel == Channel.EMAIL and config["email.provider"] == "sendgrid":
        from linkpay.transports.sendgrid_email import SendGridEmailTransport

        return SendGridEmailTransport.from_config(config)
    from linkpay.transports.outbox import OutboxTransport

    return OutboxTransport()


def is_opted_out(error: TransportError) -> bool:
    """A permanent error that means "this person said stop", not "this address is bad"."""
    return error.code in OPTED_OUT_CODES


def parse_retry_after(value: str | None) -> float | None:
    """An HTTP ``Retry-After`` value as seconds: a number of seconds or an HTTP date."""
    if not value or not value.strip():
        return None
    try:
        return max(float(value.strip()), 0.0)
    except ValueError:
        return _seconds_until(value.strip())


def _seconds_until(http_date: str) -> float | None:
    try:
        when = parsedate_to_datetime(http_date)
    except (TypeError, ValueError):
        return None  # neither form: as if no header, the job's own back-off applies
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max((when - dt.datetime.now(dt.UTC)).total_seconds(), 0.0)
