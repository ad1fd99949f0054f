"""The running service's parts (config, database, queue, signer, clock), one set per app.

Services, jobs and CLI commands reach them through ``runtime()`` inside an app context, so
no client or connection is ever created at import time."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from flask import current_app

from linkpay.config import Config
from linkpay.db import Database
from linkpay.queue import JobQueue
from linkpay.signing import Signer

EXTENSION_KEY = "linkpay"


@dataclass
class Runtime:
    config: Config
    db: Database
    queue: JobQueue
    signer: Signer
    clock: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.UTC))
    providers: dict = field(default_factory=dict)  # transports and gateway, built on first use

    def now(self) -> dt.datetime:
        return self.clock()


def runtime() -> Runtime:
    return current_app.extensions[EXTENSION_KEY]


def build_runtime(config: Config) -> Runtime:
    rt = Runtime(
        config=config,
        db=Database(config["app.database_url"]),
        queue=JobQueue(config["app.redis_url"]),
        signer=Signer(resolve_secret_key(config), config["app.previous_secret_keys"]),
    )
    rt.signer.use_clock(rt.now)  # bound to rt, so a clock swapped in later is used too
    return rt


def resolve_secret_key(config: Config) -> str:
    """Production must name a key (config refuses to start otherwise). A laptop gets one
    made once and kept in instance/, so its links survive a restart."""
    if config["app.secret_key"]:
        return config["app.secret_key"]
    path = Path("instance") / "secret_key"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    path.write_text(key)
    path.chmod(0o600)
    return key
