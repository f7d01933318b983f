"""`python -m server` serves; `python -m server seed-admin` creates the first admin and exits;
`python -m server eta-replay FILE|-` runs the ETA over a recorded history (see `server.replay`).

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
from infra.logs import configure_logging

log = logging.getLogger("medpharma.server")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m server", description="MedPharma Queue server")
    commands = parser.add_subparsers(dest="command", metavar="{serve,seed-admin,eta-replay}")
    commands.add_parser("serve", help="serve HTTP and WebSocket (the default)")
    commands.add_parser("seed-admin", help="create the first admin from SEED_ADMIN_* and exit")
    replay = commands.add_parser(
        "eta-replay", help="run the server's ETA over a recorded history (JSON Lines) and print its estimates")
    replay.add_argument("file", nargs="?", help="JSON Lines file, or - for standard input")
    replay.add_argument("--from-store", action="store_true", help="replay the store's own history (needs MONGO_URI)")
    replay.add_argument("--doctor", help="with --from-store: the doctor's id")
    replay.add_argument("--since", help="with --from-store: first clinic day, YYYY-MM-DD (UTC)")
    args = parser.parse_args(argv)
    if args.command == "eta-replay":
        problem = replay_usage_problem(args)
        if problem:
            replay.error(problem)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    try:
        if args.command == "seed-admin":
            return asyncio.run(run_seed_admin(settings))
        if args.command == "eta-replay":
            return asyncio.run(run_eta_replay(settings, args))
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
        services.hasher.close()
    if outcome == "created":
        print(f"seed-admin: created admin {settings.seed_admin_email}")
    else:
        print(f"seed-admin: admin {settings.seed_admin_email} already exists; nothing changed")
    return 0


def replay_usage_problem(args) -> str | None:
    if args.from_store:
        if args.file is not None:
            return "give either FILE or --from-store, not both"
        if not args.doctor or not args.since:
            return "--from-store needs --doctor ID and --since YYYY-MM-DD"
        return None
    if args.file is None:
        return "give a FILE (- for standard input), or --from-store --doctor ID --since DATE"
    if args.doctor or args.since:
        return "--doctor and --since go with --from-store"
    return None


async def run_eta_replay(settings, args) -> int:
    from datetime import date, datetime, time, timezone

    from server.replay import ReplayError, history_from_store, replay_lines
    from infra.store import Store
    from core.values import to_object_id

    try:
        if args.from_store:
            doctor_id = to_object_id(args.doctor.lower())
            if doctor_id is None:
                raise ReplayError(f"--doctor: {args.doctor!r} is not a 24-hex id")
            try:
                since = datetime.combine(date.fromisoformat(args.since), time(), tzinfo=timezone.utc)
            except ValueError:
                raise ReplayError(f"--since: {args.since!r} is not a date like 2026-11-23") from None
            if settings.embedded_store:
                raise ReplayError("--from-store reads MONGO_URI's database; MONGO_URI is not set")
            store = Store.connect(settings.mongo_uri, settings.mongo_db)
            try:
                lines = await history_from_store(store, doctor_id, since)
            finally:
                await store.close()
            await replay_lines(settings, lines, sys.stdout)
        elif args.file == "-":
            await replay_lines(settings, sys.stdin, sys.stdout)
        else:
            try:
                source = open(args.file, encoding="utf-8")
            except OSError as exc:
                raise ReplayError(f"cannot read {args.file}: {exc.strerror}") from None
            with source:
                await replay_lines(settings, source, sys.stdout)
    except ReplayError as exc:
        sys.stdout.flush()
        print(f"eta-replay: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
