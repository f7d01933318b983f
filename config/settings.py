"""Settings, read and validated once at start.

Every value comes from the process environment or, failing that, from a `.env` file at the project
root (parsed by python-dotenv). Anything wrong raises `ConfigError` naming the variable, so the CLI
can stop with one clear line instead of a traceback half-way through serving requests.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import dotenv_values

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_JOIN_URL_TEMPLATE = "https://meet.jit.si/medpharma-{room}"
LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")
_DURATION = re.compile(r"^(\d+)([smhd]?)$")
_DURATION_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable."""

    def __init__(self, variable: str, problem: str):
        super().__init__(f"{variable}: {problem}")
        self.variable = variable


@dataclass(frozen=True)
class Settings:
    port: int = 5000
    host: str = "127.0.0.1"
    mongo_uri: str | None = None
    mongo_db: str = "medpharma"
    jwt_secret: str = field(default_factory=lambda: secrets.token_urlsafe(48), repr=False)
    jwt_secret_generated: bool = True
    jwt_expires_seconds: int = 15 * 60
    refresh_expires_seconds: int = 30 * 86400
    client_origins: tuple[str, ...] = ()
    seed_admin_email: str | None = None
    seed_admin_password: str | None = field(default=None, repr=False)
    seed_admin_name: str = "Administrator"
    join_url_template: str = DEFAULT_JOIN_URL_TEMPLATE
    metrics_token: str | None = field(default=None, repr=False)
    log_level: str = "INFO"
    bcrypt_rounds: int = 12
    redis_url: str | None = None
    login_failures_per_minute: int = 10
    clinic_timezone: str = "UTC"
    soon_minutes: int = 10
    eta_learning: bool = True

    @property
    def embedded_store(self) -> bool:
        return self.mongo_uri is None


def parse_duration(text: str) -> int:
    """`7d`, `12h`, `15m`, `30s` or plain seconds → seconds (> 0)."""
    match = _DURATION.match(text.strip().lower())
    if not match:
        raise ValueError("expected a duration such as 7d, 12h, 15m or a number of seconds")
    seconds = int(match.group(1)) * _DURATION_UNITS[match.group(2)]
    if seconds <= 0:
        raise ValueError("must be longer than zero")
    return seconds


def _int_in_range(variable: str, text: str, low: int, high: int) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise ConfigError(variable, f"expected a whole number, got {text!r}") from None
    if not low <= value <= high:
        raise ConfigError(variable, f"must be between {low} and {high}, got {value}")
    return value


def _blank_to_none(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    return value.strip()


def read_environment(environ: Mapping[str, str] | None = None,
                     env_file: Path | None = PROJECT_ROOT / ".env") -> dict[str, str]:
    """The process environment over the `.env` file: a real variable always wins."""
    merged: dict[str, str] = {}
    if env_file is not None and env_file.is_file():
        merged.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    merged.update(os.environ if environ is None else environ)
    return merged


def load_settings(environ: Mapping[str, str] | None = None,
                  env_file: Path | None = PROJECT_ROOT / ".env") -> Settings:
    env = read_environment(environ, env_file)
    values: dict = {}

    if (port := _blank_to_none(env.get("PORT"))) is not None:
        values["port"] = _int_in_range("PORT", port, 0, 65535)
    if (host := _blank_to_none(env.get("HOST"))) is not None:
        values["host"] = host

    mongo_uri = _blank_to_none(env.get("MONGO_URI"))
    if mongo_uri is not None:
        if not mongo_uri.startswith(("mongodb://", "mongodb+srv://")):
            raise ConfigError("MONGO_URI", "must start with mongodb:// or mongodb+srv://")
        values["mongo_uri"] = mongo_uri
    if (mongo_db := _blank_to_none(env.get("MONGO_DB"))) is not None:
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,63}", mongo_db):
            raise ConfigError("MONGO_DB", "must be 1-63 letters, digits, '_' or '-'")
        values["mongo_db"] = mongo_db

    secret = env.get("JWT_SECRET")
    if secret is not None and secret != "":
        if len(secret) < 32:
            raise ConfigError("JWT_SECRET", "must be at least 32 characters long")
        values["jwt_secret"] = secret
        values["jwt_secret_generated"] = False
    elif mongo_uri is not None:
        raise ConfigError("JWT_SECRET", "is required (at least 32 characters) when MONGO_URI is set")

    if (expires := _blank_to_none(env.get("JWT_EXPIRES_IN"))) is not None:
        try:
            values["jwt_expires_seconds"] = parse_duration(expires)
        except ValueError as exc:
            raise ConfigError("JWT_EXPIRES_IN", f"{exc}, got {expires!r}") from None

    if (origins := _blank_to_none(env.get("CLIENT_ORIGIN"))) is not None:
        parsed = tuple(o.strip().rstrip("/") for o in origins.split(",") if o.strip())
        for origin in parsed:
            if not re.fullmatch(r"https?://[^/\s]+", origin):
                raise ConfigError("CLIENT_ORIGIN", f"{origin!r} is not an origin like https://app.example.com")
        values["client_origins"] = parsed

    admin_email = _blank_to_none(env.get("SEED_ADMIN_EMAIL"))
    admin_password = env.get("SEED_ADMIN_PASSWORD") or None
    if (admin_email is None) != (admin_password is None):
        missing = "SEED_ADMIN_PASSWORD" if admin_password is None else "SEED_ADMIN_EMAIL"
        raise ConfigError(missing, "must be set together with the other SEED_ADMIN_* variable")
    if admin_email is not None:
        if "@" not in admin_email:
            raise ConfigError("SEED_ADMIN_EMAIL", "is not an email address")
        if not 8 <= len(admin_password.encode()) <= 72:
            raise ConfigError("SEED_ADMIN_PASSWORD", "must be 8 to 72 bytes long")
        values["seed_admin_email"] = admin_email.lower()
        values["seed_admin_password"] = admin_password
    if (admin_name := _blank_to_none(env.get("SEED_ADMIN_NAME"))) is not None:
        values["seed_admin_name"] = admin_name

    if (template := _blank_to_none(env.get("JOIN_URL_TEMPLATE"))) is not None:
        if "{room}" not in template or not template.startswith(("https://", "http://")):
            raise ConfigError("JOIN_URL_TEMPLATE", "must be an http(s) URL containing {room}")
        values["join_url_template"] = template

    if (metrics_token := _blank_to_none(env.get("METRICS_TOKEN"))) is not None:
        values["metrics_token"] = metrics_token

    if (level := _blank_to_none(env.get("LOG_LEVEL"))) is not None:
        if level.upper() not in LOG_LEVELS:
            raise ConfigError("LOG_LEVEL", f"must be one of {', '.join(LOG_LEVELS)}, got {level!r}")
        values["log_level"] = level.upper()

    if (rounds := _blank_to_none(env.get("BCRYPT_ROUNDS"))) is not None:
        values["bcrypt_rounds"] = _int_in_range("BCRYPT_ROUNDS", rounds, 4, 31)

    if (redis_url := _blank_to_none(env.get("REDIS_URL"))) is not None:
        if not redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError("REDIS_URL", "must start with redis://, rediss:// or unix://")
        values["redis_url"] = redis_url

    if (rate := _blank_to_none(env.get("LOGIN_FAILURES_PER_MINUTE"))) is not None:
        values["login_failures_per_minute"] = _int_in_range("LOGIN_FAILURES_PER_MINUTE", rate, 1, 100_000)

    if (zone := _blank_to_none(env.get("CLINIC_TIMEZONE"))) is not None:
        try:
            ZoneInfo(zone)
        except (ValueError, ZoneInfoNotFoundError):
            raise ConfigError("CLINIC_TIMEZONE", f"is not an IANA time zone name such as Europe/Paris, got {zone!r}") from None
        values["clinic_timezone"] = zone

    if (refresh := _blank_to_none(env.get("REFRESH_EXPIRES_IN"))) is not None:
        try:
            values["refresh_expires_seconds"] = parse_duration(refresh)
        except ValueError as exc:
            raise ConfigError("REFRESH_EXPIRES_IN", f"{exc}, got {refresh!r}") from None

    if (soon := _blank_to_none(env.get("SOON_MINUTES"))) is not None:
        values["soon_minutes"] = _int_in_range("SOON_MINUTES", soon, 0, 240)
    if (learning := _blank_to_none(env.get("ETA_LEARNING"))) is not None:
        if learning.lower() not in ("on", "off"):
            raise ConfigError("ETA_LEARNING", f"must be on or off, got {learning!r}")
        values["eta_learning"] = learning.lower() == "on"

    return Settings(**values)


def log_level_number(settings: Settings) -> int:
    return getattr(logging, settings.log_level)
