"""Transports: how a rendered message leaves the building (Twilio, SendGrid, or the local
outbox). Provider SDKs are imported only inside this package."""
