"""Payment gateways, chosen by ``payments.gateway``. Only services call them."""

from __future__ import annotations

from linkpay.gateways.base import (
    ChargeResult,
    ChargeStatus,
    FormTarget,
    Gateway,
    GatewayError,
    PaymentMethod,
)
from linkpay.runtime import runtime

__all__ = [
    "ChargeResult",
    "ChargeStatus",
    "FormTarget",
    "Gateway",
    "GatewayError",
    "PaymentMethod",
    "gateway",
]


def gateway() -> Gateway:
    """The configured gateway, built on first use and kept with the running app."""
    rt = runtime()
    if "gateway" not in rt.providers:
        name = rt.config["payments.gateway"]
        if name != "sandbox":  # config.py already refuses other names at start-up
            raise ValueError(f"payments.gateway: no gateway named {name!r}")
        from linkpay.gateways.sandbox import SandboxGateway

        rt.providers["gateway"] = SandboxGateway(rt.db)
    return rt.providers["gateway"]
