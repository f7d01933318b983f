"""`python -m server` as an operator runs it: bad settings, a real start, a clean SIGTERM, seed-admin."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import server.__main__ as command
from tests.conftest import free_port

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SETTING_NAMES = ("PORT", "HOST", "MONGO_URI", "MONGO_DB", "JWT_SECRET", "JWT_EXPIRES_IN", "CLIENT_ORIGIN",
                 "SEED_ADMIN_EMAIL", "SEED_ADMIN_PASSWORD", "SEED_ADMIN_NAME", "JOIN_URL_TEMPLATE",
                 "METRICS_TOKEN", "LOG_LEVEL", "BCRYPT_ROUNDS", "REDIS_URL", "LOGIN_FAILURES_PER_MINUTE",
                 "LOGIN_FAILURES_PER_ADDRESS_PER_MINUTE", "REGISTRATIONS_PER_HOUR", "WS_MAX_PER_USER",
                 "SOON_MINUTES", "ETA_LEARNING", "CLINIC_TIMEZONE", "REFRESH_EXPIRES_IN")
ADMIN_EMAIL = "cli-admin@example.org"
ADMIN_PASSWORD = "cli-admin-password"


def clean_env(**overrides) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in SETTING_NAMES}
    env.update({"PYTHONUNBUFFERED": "1", "BCRYPT_ROUNDS": "4", **overrides})
    return env


def run_cli(*args: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "server", *args], cwd=PROJECT_ROOT, env=clean_env(**env),
                          capture_output=True, text=True, timeout=60)


@pytest.fixture
def cli_in_process(monkeypatch, capsys):
    """`run_cli` for a start that must stop at its settings, in this process: `server.__main__.main`
    with the environment `run_cli` gives, sparing a second of interpreter start-up. Should the settings
    pass after all, the command's work is a stub that returns 0 (never a server left running)."""

    async def started_anyway(*args) -> int:
        return 0

    def run(*args: str, **env) -> subprocess.CompletedProcess:
        for name in SETTING_NAMES:
            monkeypatch.delenv(name, raising=False)
        for name, value in clean_env(**env).items():
            monkeypatch.setenv(name, value)
        monkeypatch.chdir(PROJECT_ROOT)
        for work in ("serve", "run_seed_admin", "run_eta_replay"):
            monkeypatch.setattr(command, work, started_anyway)
        monkeypatch.setattr(command, "configure_logging", lambda level: None)
        capsys.readouterr()
        try:
            code = command.main(list(args))
        except SystemExit as stopped:
            code = stopped.code
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(["python", "-m", "server", *args], code, out, err)

    return run



def assert_one_line_error(result: subprocess.CompletedProcess, variable: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert variable in lines[0]


@pytest.mark.parametrize("env, variable", [
    ({"PORT": "abc"}, "PORT"),
    ({"PORT": "70000"}, "PORT"),
    ({"JWT_SECRET": "too-short"}, "JWT_SECRET"),
    ({"MONGO_URI": "mongodb://127.0.0.1:9"}, "JWT_SECRET"),
    ({"MONGO_URI": "mongodb://127.0.0.1:9", "JWT_SECRET": "a" * 40}, "JWT_SECRET"),
    ({"BCRYPT_ROUNDS": "3"}, "BCRYPT_ROUNDS"),
    ({"LOG_LEVEL": "loud"}, "LOG_LEVEL"),
    ({"JWT_EXPIRES_IN": "7x"}, "JWT_EXPIRES_IN"),
    ({"SEED_ADMIN_EMAIL": "a@example.org"}, "SEED_ADMIN_PASSWORD"),
    ({"CLINIC_TIMEZONE": "Mars/Olympus"}, "CLINIC_TIMEZONE"),
    ({"ETA_LEARNING": "maybe"}, "ETA_LEARNING"),
    ({"WS_MAX_PER_USER": "0"}, "WS_MAX_PER_USER"),
])
def test_bad_setting_stops_with_one_line(cli_in_process, env, variable):
    result = cli_in_process(**env)
    assert_one_line_error(result, variable)
    assert result.returncode == 2
    assert result.stdout == ""


def test_bad_setting_stops_seed_admin_too(cli_in_process):
    result = cli_in_process("seed-admin", PORT="abc")
    assert_one_line_error(result, "PORT")


def test_unknown_command_is_refused(cli_in_process):
    result = cli_in_process("explode")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr


@pytest.mark.slow  # starts `python -m server` in a process of its own: about a second each, more under load
def test_seed_admin_without_mongo_uri_is_refused():
    result = run_cli("seed-admin", SEED_ADMIN_EMAIL=ADMIN_EMAIL, SEED_ADMIN_PASSWORD=ADMIN_PASSWORD)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "MONGO_URI" in result.stderr
    assert "created" not in result.stdout


@pytest.mark.slow  # starts `python -m server` in a process of its own: about a second each, more under load
def test_seed_admin_without_credentials_is_refused():
    result = run_cli("seed-admin")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "SEED_ADMIN_EMAIL" in result.stderr and "SEED_ADMIN_PASSWORD" in result.stderr


def http_json(method: str, url: str, body: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def wait_until_listening(process: subprocess.Popen, base: str) -> None:
    """Start-up is waited for, not timed: the deadline only stops a broken start from hanging the suite."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited early with {process.returncode}: {process.stderr.read()}")
        try:
            urllib.request.urlopen(base + "/healthz", timeout=1).close()
            return
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(0.1)
    raise AssertionError("server did not start listening")


@pytest.mark.slow  # starts `python -m server` in a process of its own: about a second each, more under load
def test_serve_seed_admin_login_and_sigterm():
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = subprocess.Popen([sys.executable, "-m", "server"], cwd=PROJECT_ROOT,
                               env=clean_env(PORT=str(port), SEED_ADMIN_EMAIL=ADMIN_EMAIL.upper(),
                                             SEED_ADMIN_PASSWORD=ADMIN_PASSWORD, LOG_LEVEL="INFO"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until_listening(process, base)
        status, body = http_json("GET", base + "/")
        assert (status, body) == (200, {"message": "MedPharma API is running..."})

        status, body = http_json("POST", base + "/api/auth/login", {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
        assert status == 200, body
        assert body["user"]["role"] == "admin" and body["user"]["email"] == ADMIN_EMAIL

        status, body = http_json("POST", base + "/api/auth/login", {"email": ADMIN_EMAIL, "password": "wrong-password"})
        assert status == 401 and body["code"] == "invalid_credentials"

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        stderr = process.stderr.read()
        assert "Traceback" not in stderr
        assert ADMIN_PASSWORD not in stderr
        # Logs are one JSON object per line, and the embedded store is announced.
        entries = [json.loads(line) for line in stderr.splitlines() if line.strip()]
        assert any("MONGO_URI" in entry["message"] for entry in entries)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
        process.stderr.close()


@pytest.mark.slow  # starts `python -m server` in a process of its own: about a second each, more under load
def test_sigint_also_stops_cleanly():
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = subprocess.Popen([sys.executable, "-m", "server"], cwd=PROJECT_ROOT,
                               env=clean_env(PORT=str(port), LOG_LEVEL="WARNING"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until_listening(process, base)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
        assert "Traceback" not in process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
        process.stderr.close()


@pytest.mark.slow  # starts `python -m server` in a process of its own: about a second each, more under load
def test_port_in_use_is_one_clear_line():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_cli(PORT=str(port), LOG_LEVEL="ERROR")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and str(port) in lines[0], result.stderr


# -- start-up failures other than settings: one line naming what to check, status 1 ----------------
@pytest.mark.slow  # starts `python -m server` in a process of its own: about a second each, more under load
def test_port_in_use_is_one_clear_line_at_the_default_log_level():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_cli(PORT=str(port))
    assert_one_line_error(result, "PORT")
    assert result.returncode == 1 and str(port) in result.stderr


@pytest.mark.slow  # starts `python -m server` in a process of its own: about a second each, more under load
def test_unreachable_redis_is_one_clear_line():
    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        dead_port = closed.getsockname()[1]
    result = run_cli(PORT=str(free_port()), REDIS_URL=f"redis://127.0.0.1:{dead_port}/0")
    assert_one_line_error(result, "REDIS_URL")
    assert result.returncode == 1


@pytest.mark.slow  # waits out the MongoDB driver's 3 s server selection, as an operator's start would
def test_unreachable_store_is_one_clear_line():
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        dead_port = closed.getsockname()[1]
    result = run_cli(PORT=str(free_port()), MONGO_URI=f"mongodb://127.0.0.1:{dead_port}",
                     JWT_SECRET="a-strong-enough-secret-0123456789-xyz")
    assert_one_line_error(result, "MONGO_URI")
    assert result.returncode == 1
