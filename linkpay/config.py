"""Configuration: embedded defaults, then the TOML file named by LINKPAY_CONFIG, then
LINKPAY_<SECTION>_<KEY> environment variables. Bad values stop start-up with the key's name."""

from __future__ import annotations

import json
import os
import tomllib
import zoneinfo
from copy import deepcopy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_SQLITE_PATH = Path("instance") / "linkpay.sqlite3"

DEFAULTS: dict[str, dict[str, Any]] = {
    "app": {
        "base_url": "http://127.0.0.1:5000",
        "secret_key": "",
        "previous_secret_keys": [],
        "database_url": f"sqlite:///{DEFAULT_SQLITE_PATH}",
        "redis_url": "",
        "timezone": "America/Phoenix",
        "production": False,
        "rate_limit_storage_url": "",
    },
    "org": {
        "name": "Linkpay Demo Utility",
        "support_phone": "+18005550100",
        "support_email": "support@example.com",
    },
    "links": {"ttl_hours": 72, "verification": "none"},
    "sms": {"provider": "outbox"},
    "twilio": {
        "account_sid": "",
        "auth_token": "",
        "from_number": "",
        "api_base_url": "https://api.twilio.com",
        "timeout_seconds": 10,
    },
    "email": {"provider": "outbox"},
    "sendgrid": {
        "api_key": "",
        "from_email": "",
        "api_host": "https://api.sendgrid.com",
        "webhook_public_key": "",
        "timeout_seconds": 10,
    },
    "payments": {"gateway": "sandbox", "min_cents": 100},
    "pay_by_text": {"code_ttl_minutes": 10, "max_wrong_codes": 3},
    "compliance": {"quiet_start": "21:00", "quiet_end": "08:00"},
    "plans": {"reminder_hours": [72, 24, 2], "retry_days": 3, "max_installments": 24},
    "offers": {"allow_skip": True},
    "scheduled": {"max_days_ahead": 60, "charge_time": "09:00"},
    "messages": {"max_attempts": 5},
}

CHOICES = {
    ("links", "verification"): {"none", "zip"},
    ("sms", "provider"): {"outbox", "twilio"},
    ("email", "provider"): {"outbox", "sendgrid"},
    ("payments", "gateway"): {"sandbox"},
}


class ConfigError(ValueError):
    """A configuration value that cannot be used; the message names the key."""


@dataclass(frozen=True)
class Config:
    values: dict[str, dict[str, Any]]

    def get(self, dotted: str) -> Any:
        section, key = dotted.split(".", 1)
        return self.values[section][key]

    def __getitem__(self, dotted: str) -> Any:
        return self.get(dotted)

    @property
    def embedded_queue(self) -> bool:
        return not self.get("app.redis_url")


def load_config(
    path: str | os.PathLike | None = None,
    overrides: dict | None = None,
    environ: os._Environ | dict | None = None,
) -> Config:
    """Build the configuration. ``overrides`` (``{"app.base_url": ...}``) wins over all."""
    environ = os.environ if environ is None else environ
    values = deepcopy(DEFAULTS)
    path = path or environ.get("LINKPAY_CONFIG")
    if path:
        _merge_file(values, Path(path))
    _merge_environment(values, environ)
    for dotted, value in (overrides or {}).items():
        section, key = dotted.split(".", 1)
        _check_known(section, key, f"override {dotted}")
        values[section][key] = value
    _validate(values)
    return Config(values)


def _merge_file(values: dict, path: Path) -> None:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"LINKPAY_CONFIG names {path}, which does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    for section, table in data.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: [{section}] must be a table")
        for key, value in table.items():
            _check_known(section, key, str(path))
            values[section][key] = value


def _merge_environment(values: dict, environ) -> None:
    for section, table in values.items():
        for key, default in table.items():
            raw = environ.get(f"LINKPAY_{section.upper()}_{key.upper()}")
            if raw is not None:
                values[section][key] = _from_env(raw, default, f"{section}.{key}")


def _from_env(raw: str, default: Any, name: str) -> Any:
    if isinstance(default, bool):
        if raw.lower() in {"1", "true", "yes", "on"}:
            return True
        if raw.lower() in {"0", "false", "no", "off", ""}:
            return False
        raise ConfigError(f"{name}: expected true or false, got {raw!r}")
    if isinstance(default, int):
        try:
            return int(raw)
        except ValueError as exc:
            raise ConfigError(f"{name}: expected a whole number, got {raw!r}") from exc
    if isinstance(default, list):
        try:
            parsed = json.loads(raw) if raw.strip().startswith("[") else raw.split(",")
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{name}: expected a list like [72, 24, 2], got {raw!r}") from exc
        items = [p.strip() if isinstance(p, str) else p for p in parsed if p != ""]
        if default and isinstance(default[0], int):
            try:
                return [int(item) for item in items]
            except ValueError as exc:
                raise ConfigError(f"{name}: expected whole numbers, got {raw!r}") from exc
        return items
    return raw


def _check_known(section: str, key: str, where: str) -> None:
    if section not in DEFAULTS or key not in DEFAULTS[section]:
        raise ConfigError(f"{where}: unknown key {section}.{key}")


def _validate(values: dict) -> None:
    for (section, key), allowed in CHOICES.items():
        if values[section][key] not in allowed:
            raise ConfigError(
                f"{section}.{key} must be one of {', '.join(sorted(allowed))}, "
                f"got {values[section][key]!r}"
            )
    for section, table in DEFAULTS.items():
        for key, default in table.items():
            value = values[section][key]
            expected = type(default)
            if expected is int and (isinstance(value, bool) or not isinstance(value, int)):
                raise ConfigError(f"{section}.{key} must be a whole number, got {value!r}")
            if expected in (str, bool, list) and not isinstance(value, expected):
                raise ConfigError(f"{section}.{key} must be a {expected.__name__}, got {value!r}")
    try:
        zoneinfo.ZoneInfo(values["app"]["timezone"])
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"app.timezone: unknown time zone {values['app']['timezone']!r}") from exc
    for key in ("quiet_start", "quiet_end"):
        _parse_hhmm(values["compliance"][key], f"compliance.{key}")
    hours = values["plans"]["reminder_hours"]
    if len(hours) > 3 or not all(isinstance(h, int) and h > 0 for h in hours):
        raise ConfigError("plans.reminder_hours: at most three positive whole numbers of hours")
    _parse_hhmm(values["scheduled"]["charge_time"], "scheduled.charge_time")
    for dotted, least in (
        ("plans.retry_days", 1),
        ("plans.max_installments", 2),
        ("scheduled.max_days_ahead", 1),
    ):
        section, key = dotted.split(".")
        if values[section][key] < least:
            raise ConfigError(f"{dotted} must be at least {least}")
    if values["links"]["ttl_hours"] <= 0:
        raise ConfigError("links.ttl_hours must be more than 0")
    for key in ("code_ttl_minutes", "max_wrong_codes"):
        if values["pay_by_text"][key] <= 0:
            raise ConfigError(f"pay_by_text.{key} must be more than 0")
    if not values["app"]["base_url"].startswith(("http://", "https://")):
        raise ConfigError("app.base_url must start with http:// or https://")
    values["app"]["base_url"] = values["app"]["base_url"].rstrip("/")
    if values["app"]["production"] and not values["app"]["secret_key"]:
        raise ConfigError("app.secret_key must be set in production (app.production = true)")
    if values["app"]["production"] and not values["app"]["redis_url"]:
        # The embedded queue lives inside one process: receipts and replies queued by a web
        # process would wait for a worker that can never see them.
        raise ConfigError(
            "app.redis_url must be set in production (app.production = true): web and "
            "worker processes share their jobs through it"
        )
    if values["sms"]["provider"] == "twilio":
        _require(values, "twilio", ("account_sid", "auth_token", "from_number"))
    if values["email"]["provider"] == "sendgrid":
        _require(values, "sendgrid", ("api_key", "from_email"))


def _require(values: dict, section: str, keys: tuple[str, ...]) -> None:
    missing = [f"{section}.{k}" for k in keys if not values[section][k]]
    if missing:
        raise ConfigError(f"{', '.join(missing)} must be set for this provider")


def _parse_hhmm(text: str, name: str) -> tuple[int, int]:
    try:
        hour, minute = (int(part) for part in text.split(":"))
    except ValueError as exc:
        raise ConfigError(f"{name}: expected HH:MM, got {text!r}") from exc
    if not (0 <= hour < 24 and 0 <= minute < 60):
        raise ConfigError(f"{name}: expected HH:MM, got {text!r}")
    return hour, minute


parse_hhmm = _parse_hhmm
