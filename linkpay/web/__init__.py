"""The web edge: blueprints for customers' pages, staff pages and health. Handlers call
services; none of them talks to a provider or a gateway."""

from __future__ import annotations

from flask import Flask


def register_blueprints(app: Flask) -> None:
    import webhooks
    from linkpay.gateways import sandbox_tokenizer
    from linkpay.web import (
        health,
        outbox,
        pay,
        pay_checkout,
        pay_offers,
        pay_plans,
        pay_schedule,
        unsubscribe,
    )

    config = app.extensions["linkpay"].config
    app.register_blueprint(health.bp)
    webhooks.register(app)  # provider callbacks (Twilio, SendGrid), CSRF-exempt
    app.register_blueprint(pay.bp)  # the page a link opens: ZIP and amount steps
    app.register_blueprint(pay_checkout.bp)  # method, review, confirm, receipt
    app.register_blueprint(pay_schedule.bp)  # a scheduled payment's page, cancelling it
    app.register_blueprint(pay_offers.bp)  # paying a settlement offer
    app.register_blueprint(pay_plans.bp)  # a plan offer, signing it, the plan, cancelling
    app.register_blueprint(unsubscribe.bp)
    if config["payments.gateway"] == "sandbox":
        app.register_blueprint(sandbox_tokenizer.bp)  # stands in for a processor's fields
    if not config["app.production"]:
        app.register_blueprint(outbox.bp)  # shows live payment links: never in production
