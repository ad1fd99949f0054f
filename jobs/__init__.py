"""RQ job functions. Each takes ids, never objects, and runs inside an app context.

A worker process builds one app from LINKPAY_CONFIG (``linkpay worker`` does this before it
starts); the embedded runner and tests run jobs inside the app that enqueued them."""

from __future__ import annotations

import functools

from flask import Flask, has_app_context

_worker_app: Flask | None = None


def set_worker_app(app: Flask) -> None:
    global _worker_app
    _worker_app = app


def with_app_context(func):
    """Give the job an app context: the current one if any, else the worker's app."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        if has_app_context():
            return func(*args, **kwargs)
        global _worker_app
        if _worker_app is None:
            from linkpay import create_app

            _worker_app = create_app()
        with _worker_app.app_context():
            return func(*args, **kwargs)

    return wrapper
