"""GET /healthz: is the database answering, is the queue answering."""

from __future__ import annotations

from flask import Blueprint, jsonify
from sqlalchemy import text

from linkpay.runtime import runtime

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    rt = runtime()
    checks = {"database": _check(lambda: _ping_database(rt)), "queue": _check(rt.queue.ping)}
    checks["queue_mode"] = "embedded" if rt.queue.embedded else "redis"
    healthy = checks["database"] == "ok" and checks["queue"] == "ok"
    return jsonify(status="ok" if healthy else "down", **checks), 200 if healthy else 503


def _ping_database(rt) -> bool:
    with rt.db.engine.connect() as connection:
        connection.execute(text("SELECT 1"))
    return True


def _check(probe) -> str:
    try:
        probe()
    except Exception as exc:  # any failure of the dependency means "down", and says why
        return f"down: {type(exc).__name__}"
    return "ok"
