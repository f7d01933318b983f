"""Settings: defaults, every validated variable, and `.env` under the real environment."""

from __future__ import annotations

import pytest

from config.settings import DEFAULT_JOIN_URL_TEMPLATE, ConfigError, load_settings, parse_duration

SECRET = "k3J9x-Q2v8Lm_Zp0Rt7Wy4Nb6Hc1Df5G"  # 32 characters, all distinct: 160 bits by the estimate
MONGO = "mongodb://db.example.org:27017"


def load(env_file=None, **environ):
    return load_settings(environ=environ, env_file=env_file)


def refused(variable: str, **environ) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load(**environ)
    assert info.value.variable == variable
    assert str(info.value).startswith(f"{variable}:")
    return info.value


def test_defaults():
    settings = load()
    assert settings.port == 5000
    assert settings.host == "127.0.0.1"
    assert settings.mongo_uri is None and settings.embedded_store is True
    assert settings.mongo_db == "medpharma"
    assert settings.jwt_secret_generated is True and len(settings.jwt_secret) >= 32
    assert settings.jwt_expires_seconds == 15 * 60
    assert settings.client_origins == ()
    assert settings.seed_admin_email is None and settings.seed_admin_password is None
    assert settings.join_url_template == DEFAULT_JOIN_URL_TEMPLATE == "https://meet.jit.si/medpharma-{room}"
    assert settings.metrics_token is None
    assert settings.log_level == "INFO"
    assert settings.bcrypt_rounds == 12


def test_generated_secret_differs_per_process_start_and_never_shows_in_repr():
    first, second = load(), load()
    assert first.jwt_secret != second.jwt_secret
    assert first.jwt_secret not in repr(first)
    configured = load(JWT_SECRET=SECRET, SEED_ADMIN_EMAIL="a@example.org", SEED_ADMIN_PASSWORD="hidden-password",
                      METRICS_TOKEN="metrics-token-value")
    text = repr(configured)
    assert SECRET not in text and "hidden-password" not in text and "metrics-token-value" not in text


def test_explicit_environ_ignores_the_process_environment(monkeypatch):
    monkeypatch.setenv("PORT", "abc")
    monkeypatch.setenv("JWT_SECRET", "short")
    assert load().port == 5000


def test_blank_values_count_as_unset():
    settings = load(PORT="", HOST="  ", LOG_LEVEL="", BCRYPT_ROUNDS=" ", JWT_EXPIRES_IN="", CLIENT_ORIGIN="")
    assert (settings.port, settings.host, settings.log_level, settings.bcrypt_rounds) == (5000, "127.0.0.1", "INFO", 12)
    assert settings.jwt_expires_seconds == 15 * 60 and settings.client_origins == ()


# -- PORT / HOST -------------------------------------------------------------------------------------
@pytest.mark.parametrize("port", ["abc", "70000", "65536", "-1", "50.5", "5000x"])
def test_bad_port(port):
    error = refused("PORT", PORT=port)
    assert "PORT" in str(error)


@pytest.mark.parametrize("port, expected", [("8080", 8080), (" 6000 ", 6000), ("65535", 65535), ("0", 0)])
def test_good_port(port, expected):
    assert load(PORT=port).port == expected


def test_host():
    assert load(HOST="0.0.0.0").host == "0.0.0.0"


# -- store and secret ----------------------------------------------------------------------------------
@pytest.mark.parametrize("secret", ["short", "x" * 31])
def test_short_jwt_secret(secret):
    error = refused("JWT_SECRET", JWT_SECRET=secret)
    assert "32" in str(error)


def test_jwt_secret_of_32_characters_is_used():
    settings = load(JWT_SECRET=SECRET)
    assert settings.jwt_secret == SECRET and settings.jwt_secret_generated is False


@pytest.mark.parametrize("secret", ["a" * 40, "s" * 200, "password" * 4, "abcd" * 8, "a-test-secret-of-32-characters!!"])
def test_a_weak_jwt_secret_is_refused_with_mongo_uri(secret):
    """`a` × 40 was accepted in production mode: 40 characters, no secret at all."""
    error = refused("JWT_SECRET", MONGO_URI=MONGO, JWT_SECRET=secret)
    assert "weak" in str(error) and "128 bits" in str(error) and secret not in str(error)
    assert load(JWT_SECRET=secret).jwt_secret == secret  # the embedded store holds nothing worth forging for


@pytest.mark.parametrize("secret", [SECRET, "Tr0ub4dor&3-correct-horse-battery", "0123456789abcdef" * 2])
def test_a_strong_enough_jwt_secret_is_taken_with_mongo_uri(secret):
    assert load(MONGO_URI=MONGO, JWT_SECRET=secret).jwt_secret == secret


def test_a_common_seed_admin_password_is_refused():
    error = refused("SEED_ADMIN_PASSWORD", SEED_ADMIN_EMAIL="root@example.org", SEED_ADMIN_PASSWORD="password1")
    assert "common" in str(error) and "password1" not in str(error)


def test_mongo_uri_without_jwt_secret_is_refused():
    error = refused("JWT_SECRET", MONGO_URI=MONGO)
    assert "MONGO_URI" in str(error)
    refused("JWT_SECRET", MONGO_URI=MONGO, JWT_SECRET="")


def test_mongo_uri_with_jwt_secret():
    settings = load(MONGO_URI=MONGO, JWT_SECRET=SECRET, MONGO_DB="clinic_2")
    assert settings.mongo_uri == MONGO and settings.embedded_store is False
    assert settings.mongo_db == "clinic_2"
    assert load(MONGO_URI="mongodb+srv://cluster.example.org", JWT_SECRET=SECRET).mongo_uri.startswith("mongodb+srv")


@pytest.mark.parametrize("uri", ["http://db.example.org", "localhost:27017", "postgres://x"])
def test_bad_mongo_uri(uri):
    refused("MONGO_URI", MONGO_URI=uri, JWT_SECRET=SECRET)


@pytest.mark.parametrize("name", ["a.b", "has space", "x" * 64, "slash/name", "$db"])
def test_bad_mongo_db(name):
    refused("MONGO_DB", MONGO_DB=name)


# -- JWT_EXPIRES_IN ----------------------------------------------------------------------------------
@pytest.mark.parametrize("text, seconds", [
    ("7d", 7 * 86400), ("15m", 900), ("12h", 43200), ("3600", 3600), ("30s", 30), ("1D", 86400), (" 2h ", 7200),
])
def test_jwt_expires_in_parses(text, seconds):
    assert load(JWT_EXPIRES_IN=text).jwt_expires_seconds == seconds
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["7x", "d", "0", "0d", "-5", "1.5h", "7 d", "1w", "h7"])
def test_jwt_expires_in_refused(text):
    error = refused("JWT_EXPIRES_IN", JWT_EXPIRES_IN=text)
    assert repr(text.strip()) in str(error) or text.strip() in str(error)


# -- BCRYPT_ROUNDS / LOG_LEVEL -----------------------------------------------------------------------
@pytest.mark.parametrize("rounds", ["3", "32", "0", "abc", "12.0"])
def test_bad_bcrypt_rounds(rounds):
    refused("BCRYPT_ROUNDS", BCRYPT_ROUNDS=rounds)


@pytest.mark.parametrize("rounds", ["4", "12", "31"])
def test_good_bcrypt_rounds(rounds):
    assert load(BCRYPT_ROUNDS=rounds).bcrypt_rounds == int(rounds)


@pytest.mark.parametrize("level", ["verbose", "TRACE", "info!", "10"])
def test_bad_log_level(level):
    refused("LOG_LEVEL", LOG_LEVEL=level)


@pytest.mark.parametrize("level, expected", [("debug", "DEBUG"), ("Warning", "WARNING"), ("ERROR", "ERROR")])
def test_log_level_is_case_insensitive(level, expected):
    assert load(LOG_LEVEL=level).log_level == expected


# -- CLIENT_ORIGIN -------------------------------------------------------------------------------------
def test_client_origin_list():
    settings = load(CLIENT_ORIGIN=" https://app.example.com, http://localhost:3000/ ,,https://admin.example.org:8443")
    assert settings.client_origins == ("https://app.example.com", "http://localhost:3000",
                                       "https://admin.example.org:8443")


def test_single_client_origin():
    assert load(CLIENT_ORIGIN="https://app.example.com").client_origins == ("https://app.example.com",)


@pytest.mark.parametrize("origins", ["*", "app.example.com", "ftp://files.example.com", "https://app.example.com/path",
                                     "https://ok.example.com,nope"])
def test_bad_client_origin(origins):
    refused("CLIENT_ORIGIN", CLIENT_ORIGIN=origins)


# -- seed admin, join URL ------------------------------------------------------------------------------
def test_seed_admin_settings():
    settings = load(SEED_ADMIN_EMAIL=" Root@Example.ORG ", SEED_ADMIN_PASSWORD="root-password",
                    SEED_ADMIN_NAME="Chief")
    assert settings.seed_admin_email == "root@example.org"
    assert settings.seed_admin_password == "root-password"
    assert settings.seed_admin_name == "Chief"
    assert load().seed_admin_name == "Administrator"


def test_seed_admin_needs_both_variables():
    refused("SEED_ADMIN_PASSWORD", SEED_ADMIN_EMAIL="root@example.org")
    refused("SEED_ADMIN_EMAIL", SEED_ADMIN_PASSWORD="root-password")


@pytest.mark.parametrize("password", ["short", "x" * 73, "é" * 37])
def test_seed_admin_password_length(password):
    refused("SEED_ADMIN_PASSWORD", SEED_ADMIN_EMAIL="root@example.org", SEED_ADMIN_PASSWORD=password)


def test_seed_admin_email_must_be_an_address():
    refused("SEED_ADMIN_EMAIL", SEED_ADMIN_EMAIL="root", SEED_ADMIN_PASSWORD="root-password")


@pytest.mark.parametrize("template", ["https://meet.example.org/room", "meet.example.org/{room}", "ftp://x/{room}"])
def test_bad_join_url_template(template):
    refused("JOIN_URL_TEMPLATE", JOIN_URL_TEMPLATE=template)


def test_join_url_template_and_metrics_token():
    settings = load(JOIN_URL_TEMPLATE="https://video.example.org/c/{room}", METRICS_TOKEN="scrape-me")
    assert settings.join_url_template == "https://video.example.org/c/{room}"
    assert settings.metrics_token == "scrape-me"


# -- .env ----------------------------------------------------------------------------------------------
def test_env_file_values_are_used(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text(f"PORT=6001\nJWT_SECRET={SECRET}\n# a comment\nCLIENT_ORIGIN=https://app.example.com\n"
                        "LOG_LEVEL=debug\nJWT_EXPIRES_IN=15m\n")
    settings = load(env_file=env_file)
    assert settings.port == 6001
    assert settings.jwt_secret == SECRET and settings.jwt_secret_generated is False
    assert settings.client_origins == ("https://app.example.com",)
    assert settings.log_level == "DEBUG"
    assert settings.jwt_expires_seconds == 900


def test_real_environment_wins_over_env_file(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("PORT=6001\nHOST=0.0.0.0\nBCRYPT_ROUNDS=3\n")
    settings = load(env_file=env_file, PORT="7002", BCRYPT_ROUNDS="5")
    assert settings.port == 7002
    assert settings.host == "0.0.0.0"
    assert settings.bcrypt_rounds == 5


def test_bad_value_in_env_file_names_the_variable(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("PORT=not-a-port\n")
    with pytest.raises(ConfigError) as info:
        load(env_file=env_file)
    assert info.value.variable == "PORT"


def test_missing_env_file_is_fine(tmp_path):
    assert load(env_file=tmp_path / "does-not-exist.env").port == 5000


def test_additions_default_off_or_safe():
    settings = load()
    assert settings.redis_url is None
    assert settings.login_failures_per_minute == 10


@pytest.mark.parametrize("value, expected", [("1", 1), ("25", 25), ("100000", 100_000)])
def test_login_failures_per_minute(value, expected):
    assert load(LOGIN_FAILURES_PER_MINUTE=value).login_failures_per_minute == expected


@pytest.mark.parametrize("value", ["0", "-3", "many", "100001"])
def test_bad_login_failures_per_minute(value):
    refused("LOGIN_FAILURES_PER_MINUTE", LOGIN_FAILURES_PER_MINUTE=value)


@pytest.mark.parametrize("url", ["redis://127.0.0.1:6379/0", "rediss://cache.example.org", "unix:///tmp/r.sock"])
def test_redis_url(url):
    assert load(REDIS_URL=url).redis_url == url


@pytest.mark.parametrize("url", ["127.0.0.1:6379", "http://cache", "memcached://x"])
def test_bad_redis_url(url):
    refused("REDIS_URL", REDIS_URL=url)


# -- limits, queue behaviour, sessions ------------------------------------------------------------------
def test_defaults_of_the_limits_and_queue_settings():
    settings = load()
    assert settings.login_failures_per_address_per_minute == 50
    assert settings.registrations_per_hour == 20
    assert settings.ws_max_per_user == 20
    assert settings.soon_minutes == 10
    assert settings.eta_learning is True
    assert settings.clinic_timezone == "UTC"
    assert settings.refresh_expires_seconds == 30 * 86400


@pytest.mark.parametrize("variable, field", [
    ("LOGIN_FAILURES_PER_ADDRESS_PER_MINUTE", "login_failures_per_address_per_minute"),
    ("REGISTRATIONS_PER_HOUR", "registrations_per_hour"),
    ("WS_MAX_PER_USER", "ws_max_per_user"),
])
def test_positive_limits(variable, field):
    assert getattr(load(**{variable: " 7 "}), field) == 7
    for bad in ("0", "-1", "ten", "1.5"):
        error = refused(variable, **{variable: bad})
        assert "\n" not in str(error)


def test_soon_minutes():
    assert load(SOON_MINUTES="0").soon_minutes == 0
    assert load(SOON_MINUTES="15").soon_minutes == 15
    refused("SOON_MINUTES", SOON_MINUTES="-1")
    refused("SOON_MINUTES", SOON_MINUTES="soon")


@pytest.mark.parametrize("value, expected", [("on", True), ("OFF", False), ("off", False), ("true", True),
                                             ("0", False)])
def test_eta_learning_switch(value, expected):
    assert load(ETA_LEARNING=value).eta_learning is expected


@pytest.mark.parametrize("value", ["maybe", "enabled", "2"])
def test_bad_eta_learning(value):
    error = refused("ETA_LEARNING", ETA_LEARNING=value)
    assert "on or off" in str(error)


@pytest.mark.parametrize("zone", ["UTC", "Europe/Paris", "America/New_York"])
def test_clinic_timezone(zone):
    assert load(CLINIC_TIMEZONE=zone).clinic_timezone == zone


@pytest.mark.parametrize("zone", ["Mars/Olympus", "../etc/passwd", "+02:00", "Europe/"])
def test_bad_clinic_timezone(zone):
    error = refused("CLINIC_TIMEZONE", CLINIC_TIMEZONE=zone)
    assert "IANA" in str(error)


def test_refresh_expires_in():
    assert load(REFRESH_EXPIRES_IN="14d").refresh_expires_seconds == 14 * 86400
    refused("REFRESH_EXPIRES_IN", REFRESH_EXPIRES_IN="forever")


def test_every_settings_field_but_the_derived_one_has_a_variable():
    from dataclasses import fields

    from config.settings import VARIABLES

    covered = {variable.field for variable in VARIABLES}
    assert {f.name for f in fields(load())} - covered == {"jwt_secret_generated"}
    assert len({variable.name for variable in VARIABLES}) == len(VARIABLES)
