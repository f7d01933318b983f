"""Guards that must hold in production as in tests: not `assert`s (which `python -O` strips), and
nothing slow on the event loop."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from core.access import Principal
from core.values import utcnow
from domain import audit
from infra.auth import HashingPool, PasswordHasher

ROOT = Path(__file__).resolve().parent.parent
ADMIN = Principal("a" * 24, "admin")


class Recorder:
    def __init__(self):
        self.entries = []

    async def insert_audit(self, entry):
        self.entries.append(entry)


def services_recording():
    return SimpleNamespace(store=Recorder(), clock=utcnow)


@pytest.mark.parametrize("details", [{"password": "x"}, {"newToken": "y"}, {"inviteToken": "z"}])
async def test_the_audit_log_refuses_a_detail_named_like_a_secret(details):
    services = services_recording()
    with pytest.raises(ValueError):
        await audit.record(services, ADMIN, "user.disabled", "u", **details)
    assert services.store.entries == []


async def test_the_audit_log_refuses_an_unknown_action():
    services = services_recording()
    with pytest.raises(ValueError):
        await audit.record(services, ADMIN, "user.vanished", "u")
    await audit.record(services, ADMIN, "user.disabled", "u", reason="left")
    assert [e["action"] for e in services.store.entries] == ["user.disabled"]


def test_the_audit_guard_survives_python_dash_o():
    program = ("import asyncio, types\nfrom core.access import Principal\nfrom core.values import utcnow\n"
               "from domain import audit\n"
               "class S:\n    async def insert_audit(self, e): print('WRITTEN')\n"
               "services = types.SimpleNamespace(store=S(), clock=utcnow)\n"
               "try:\n    asyncio.run(audit.record(services, Principal('a'*24, 'admin'), 'user.disabled', 'u', password='x'))\n"
               "except ValueError:\n    print('REFUSED')\n")
    result = subprocess.run([sys.executable, "-O", "-c", program], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "REFUSED", result.stderr


async def test_each_hasher_has_threads_of_its_own():
    first, second = PasswordHasher(4), PasswordHasher(4)
    try:
        assert first.pool.executor is not second.pool.executor
        assert await first.hash("a-long-password") != await second.hash("a-long-password")
    finally:
        first.close()
        second.close()


async def test_the_login_decoy_is_made_off_the_event_loop():
    hasher = PasswordHasher(4)
    loop_thread = threading.get_ident()
    made_in = []
    real = hasher.pool.executor.submit

    def watching_submit(function, *args, **kwargs):
        def run():
            made_in.append(threading.get_ident())
            return function(*args, **kwargs)
        return real(run)

    hasher.pool.executor.submit = watching_submit
    try:
        assert not await hasher.verify("whatever-password", None)  # an unknown email checks the decoy
        assert made_in and loop_thread not in made_in
        assert await hasher.decoy() is await hasher.decoy()  # made once
    finally:
        hasher.close()


def test_a_closed_pool_refuses_new_work():
    pool = HashingPool(workers=1)
    pool.close()
    with pytest.raises(RuntimeError):
        asyncio.run(pool.run(None, lambda: 1))
