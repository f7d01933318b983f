"""Settings, read and validated once at start.

Every value comes from the process environment or, failing that, from a `.env` file at the project
root (parsed by python-dotenv). Each variable is one row of `VARIABLES` — its name, the `Settings`
field it fills and a small parser — so adding a variable is one line, and every parser's complaint
becomes one `ConfigError` naming the variable: the CLI stops with one clear line instead of a
traceback half-way through serving requests. The few rules that tie two variables together live in
`_check_together`.
"""

from __future__ import annotations

import math
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import dotenv_values

from core.doctors import DEFAULT_SOON_MINUTES
from core.emails import normalise_email
from core.limits import MAX_PASSWORD_BYTES, MIN_PASSWORD_BYTES
from core.passwords import is_common

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_JOIN_URL_TEMPLATE = "https://meet.jit.si/medpharma-{room}"
LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")
_DURATION = re.compile(r"^(\d+)([smhd]?)$")
_DURATION_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_SWITCH = {"on": True, "true": True, "1": True, "off": False, "false": False, "0": False}


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
    login_failures_per_address_per_minute: int = 50
    registrations_per_hour: int = 20
    ws_max_per_user: int = 20
    soon_minutes: int = DEFAULT_SOON_MINUTES
    eta_learning: bool = True
    clinic_timezone: str = "UTC"
    # Notifications (infra/notify): the VAPID key as given (PEM or base64url), its contact, and the
    # hosts (host or host:port) the server may send to although they are not public https addresses.
    vapid_private_key: str | None = field(default=None, repr=False)
    vapid_subject: str = "mailto:admin@medpharma.invalid"
    notify_allow_hosts: tuple[str, ...] = ()

    @property
    def embedded_store(self) -> bool:
        return self.mongo_uri is None


# -- parsers: text → value, or ValueError saying what is wrong (the variable's name is added) --------
def parse_duration(text: str) -> int:
    """`7d`, `12h`, `15m`, `30s` or plain seconds → seconds (> 0)."""
    match = _DURATION.match(text.strip().lower())
    if not match:
        raise ValueError(f"expected a duration such as 7d, 12h, 15m or a number of seconds, got {text.strip()!r}")
    seconds = int(match.group(1)) * _DURATION_UNITS[match.group(2)]
    if seconds <= 0:
        raise ValueError(f"must be longer than zero, got {text.strip()!r}")
    return seconds


def integer(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"expected a whole number, got {text!r}") from None
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}, got {value}")
        return value
    return parse


def text(value: str) -> str:
    return value


def url_with_scheme(*schemes: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if not value.startswith(tuple(f"{scheme}://" for scheme in schemes)):
            raise ValueError(f"must start with {' or '.join(f'{s}://' for s in schemes)}")
        return value
    return parse


def mongo_db_name(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,63}", value):
        raise ValueError("must be 1-63 letters, digits, '_' or '-'")
    return value


MIN_SECRET_BITS = 128


def secret_bits(value: str) -> float:
    """A generous estimate of a secret's strength: its length times log2 of its distinct characters
    (`aaaa…` is 0 bits, a short word repeated is its few letters' worth). It overrates a passphrase of
    real words; it never underrates a random string of the same alphabet."""
    distinct = len(set(value))
    return len(value) * math.log2(distinct) if distinct > 1 else 0.0


def jwt_secret(value: str) -> str:
    if len(value) < 32:
        raise ValueError("must be at least 32 characters long")
    return value


def origins(value: str) -> tuple[str, ...]:
    parsed = tuple(o.strip().rstrip("/") for o in value.split(",") if o.strip())
    for origin in parsed:
        if not re.fullmatch(r"https?://[^/\s]+", origin):
            raise ValueError(f"{origin!r} is not an origin like https://app.example.com")
    return parsed


def email(value: str) -> str:
    try:
        return normalise_email(value)
    except ValueError as exc:
        raise ValueError(f"is not an email address an account can have ({exc})") from None


def password(value: str) -> str:
    if not MIN_PASSWORD_BYTES <= len(value.encode()) <= MAX_PASSWORD_BYTES:
        raise ValueError(f"must be {MIN_PASSWORD_BYTES} to {MAX_PASSWORD_BYTES} bytes long")
    if is_common(value):
        raise ValueError("is one of the 10,000 most common passwords; choose another")
    return value


def join_url_template(value: str) -> str:
    if "{room}" not in value or not value.startswith(("https://", "http://")):
        raise ValueError("must be an http(s) URL containing {room}")
    return value


def log_level(value: str) -> str:
    if value.upper() not in LOG_LEVELS:
        raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}, got {value!r}")
    return value.upper()


def switch(value: str) -> bool:
    try:
        return _SWITCH[value.lower()]
    except KeyError:
        raise ValueError(f"must be on or off, got {value!r}") from None


def timezone_name(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"is not an IANA time zone name such as Europe/Paris, got {value!r}") from None
    return value


def vapid_private_key(value: str) -> str:
    """A P-256 private key as PEM, or base64url (the raw 32 bytes, or DER), as `vapid --gen` and the
    web-push tools print it; checked now so a bad key stops the start, not the first push."""
    from py_vapid import Vapid02  # the key format is the library's; imported here, used once
    try:
        if value.lstrip().startswith("-----BEGIN"):
            Vapid02.from_pem(value.encode())
        else:
            Vapid02.from_string(value)
    except Exception:
        raise ValueError("is not a P-256 private key (PEM, or base64url of the raw 32 bytes or DER)") from None
    return value


def vapid_subject(value: str) -> str:
    if not re.fullmatch(r"(mailto:[^@\s]+@[^@\s]+|https://[^\s/]+(/\S*)?)", value):
        raise ValueError("must be a mailto: address or an https:// URL (how a push service reaches you)")
    return value


def host_list(value: str) -> tuple[str, ...]:
    """`host` or `host:port` entries, comma-separated; `[::1]:8443` for an IPv6 address."""
    entries = tuple(entry.strip().lower() for entry in value.split(",") if entry.strip())
    for entry in entries:
        if not re.fullmatch(r"(\[[0-9a-f:.]+\]|[a-z0-9._-]+)(:\d{1,5})?", entry):
            raise ValueError(f"{entry!r} is not a host or host:port such as hooks.example.com:8443")
    return entries


@dataclass(frozen=True)
class Variable:
    name: str
    field: str
    parse: Callable[[str], Any]
    keep_spaces: bool = False  # secrets are taken byte for byte; everything else is trimmed


VARIABLES: tuple[Variable, ...] = (
    Variable("PORT", "port", integer(0, 65535)),
    Variable("HOST", "host", text),
    Variable("MONGO_URI", "mongo_uri", url_with_scheme("mongodb", "mongodb+srv")),
    Variable("MONGO_DB", "mongo_db", mongo_db_name),
    Variable("JWT_SECRET", "jwt_secret", jwt_secret, keep_spaces=True),
    Variable("JWT_EXPIRES_IN", "jwt_expires_seconds", parse_duration),
    Variable("REFRESH_EXPIRES_IN", "refresh_expires_seconds", parse_duration),
    Variable("CLIENT_ORIGIN", "client_origins", origins),
    Variable("SEED_ADMIN_EMAIL", "seed_admin_email", email),
    Variable("SEED_ADMIN_PASSWORD", "seed_admin_password", password, keep_spaces=True),
    Variable("SEED_ADMIN_NAME", "seed_admin_name", text),
    Variable("JOIN_URL_TEMPLATE", "join_url_template", join_url_template),
    Variable("METRICS_TOKEN", "metrics_token", text),
    Variable("LOG_LEVEL", "log_level", log_level),
    Variable("BCRYPT_ROUNDS", "bcrypt_rounds", integer(4, 31)),
    Variable("REDIS_URL", "redis_url", url_with_scheme("redis", "rediss", "unix")),
    Variable("LOGIN_FAILURES_PER_MINUTE", "login_failures_per_minute", integer(1, 100_000)),
    Variable("LOGIN_FAILURES_PER_ADDRESS_PER_MINUTE", "login_failures_per_address_per_minute",
             integer(1, 100_000)),
    Variable("REGISTRATIONS_PER_HOUR", "registrations_per_hour", integer(1, 100_000)),
    Variable("WS_MAX_PER_USER", "ws_max_per_user", integer(1, 10_000)),
    Variable("SOON_MINUTES", "soon_minutes", integer(0, 240)),
    Variable("ETA_LEARNING", "eta_learning", switch),
    Variable("CLINIC_TIMEZONE", "clinic_timezone", timezone_name),
    Variable("VAPID_PRIVATE_KEY", "vapid_private_key", vapid_private_key, keep_spaces=True),
    Variable("VAPID_SUBJECT", "vapid_subject", vapid_subject),
    Variable("NOTIFY_ALLOW_HOSTS", "notify_allow_hosts", host_list),
)


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
    values: dict[str, Any] = {}
    for variable in VARIABLES:
        raw = env.get(variable.name)
        if raw is None or not raw.strip():  # blank counts as unset
            continue
        try:
            values[variable.field] = variable.parse(raw if variable.keep_spaces else raw.strip())
        except ValueError as exc:
            raise ConfigError(variable.name, str(exc)) from None
    _check_together(values)
    return Settings(**values)


def _check_together(values: dict[str, Any]) -> None:
    """The rules that need two variables at once."""
    if "jwt_secret" in values:
        values["jwt_secret_generated"] = False
        bits = secret_bits(values["jwt_secret"])
        if "mongo_uri" in values and bits < MIN_SECRET_BITS:
            raise ConfigError("JWT_SECRET", f"is too weak for a deployment with MONGO_URI: about {bits:.0f} bits "
                                            f"(length × log2 of its {len(set(values['jwt_secret']))} distinct "
                                            f"characters), at least {MIN_SECRET_BITS} bits needed; make one with "
                                            "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`")
    elif "mongo_uri" in values:
        raise ConfigError("JWT_SECRET", "is required (at least 32 characters) when MONGO_URI is set")
    if ("seed_admin_email" in values) != ("seed_admin_password" in values):
        missing = "SEED_ADMIN_PASSWORD" if "seed_admin_password" not in values else "SEED_ADMIN_EMAIL"
        raise ConfigError(missing, "must be set together with the other SEED_ADMIN_* variable")
