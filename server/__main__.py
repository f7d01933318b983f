"""`python -m server` serves; `python -m server seed-admin` creates the first admin and exits.

A bad setting stops start-up with one line naming the variable and exit status 2, no traceback; a
start that fails for another reason (the store or Redis unreachable, the port taken) prints one line
naming the setting to check and exits with status 1.
SIGTERM and SIGINT stop the server gracefully (see `server.app.Server.stop`) and exit 0.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from config.settings import ConfigError, load_settings
from core.errors import StartupError, StoreUnavailable
from server.logs import configure_logging

log = logging.getLogger("medpharma.server")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m server", description="MedPharma Queue server")
    parser.add_argument("command", nargs="?", default="serve", choices=("serve", "seed-admin"))
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    try:
        if args.command == "seed-admin":
            return asyncio.run(run_seed_admin(settings))
        return asyncio.run(serve(settings))
    except StoreUnavailable:
        print("error: MONGO_URI: the data store is unreachable", file=sys.stderr)
    except StartupError as exc:
        print(f"error: {exc}", file=sys.stderr)
    except OSError as exc:
        print(f"error: PORT: cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}",
              file=sys.stderr)
    except Exception as exc:  # still one line, never a traceback, for whatever else stops a start
        print(f"error: cannot start: {type(exc).__name__}: {exc}", file=sys.stderr)
    return 1


async def serve(settings) -> int:
    from server.app import Server

    server = await Server(settings).start()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    await stopping.wait()
    log.info("shutting down")
    await server.stop()
    return 0


async def run_seed_admin(settings) -> int:
    from server.app import build_services

    if not settings.seed_admin_email:
        print("seed-admin: set SEED_ADMIN_EMAIL and SEED_ADMIN_PASSWORD (and optionally SEED_ADMIN_NAME)",
              file=sys.stderr)
        return 2
    if settings.embedded_store:
        print("seed-admin: MONGO_URI is not set, so this would seed a throw-away in-memory store; "
              "set MONGO_URI, or set SEED_ADMIN_* when starting the server instead", file=sys.stderr)
        return 2
    from domain.accounts import seed_admin

    services = build_services(settings)
    try:
        await services.store.ensure_reachable()
        await services.store.ensure_indexes()
        outcome = await seed_admin(services, settings.seed_admin_email, settings.seed_admin_password,
                                   settings.seed_admin_name)
    finally:
        await services.store.close()
    if outcome == "created":
        print(f"seed-admin: created admin {settings.seed_admin_email}")
    else:
        print(f"seed-admin: admin {settings.seed_admin_email} already exists; nothing changed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
