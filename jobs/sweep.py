"""The sweep job: enqueued once a minute by every worker (one id per minute, so once)."""

from __future__ import annotations

from jobs import with_app_context
from linkpay.runtime import runtime
from linkpay.services import sweep


@with_app_context
def run_sweep() -> dict[str, int]:
    return sweep.run(runtime().db)
