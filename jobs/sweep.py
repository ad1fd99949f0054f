"""The sweep job: every worker asks for it every 15 seconds under one id per 15-second slot,
so it runs once per slot however many workers ask."""

from __future__ import annotations

from jobs import with_app_context
from linkpay.runtime import runtime
from linkpay.services import sweep


@with_app_context
def run_sweep() -> dict[str, int]:
    return sweep.run(runtime().db)
