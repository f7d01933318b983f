"""Application assembly: routes, shared services, start-up and graceful shutdown.

`Server` owns the lifecycle: connect the store and create its indexes, seed the first admin, start
the queue registry and the event-loop probe, listen; and on stop, refuse new connections, close every
WebSocket with 1001, let in-flight requests finish, stop the actors and close the store.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable

from tornado import web

from live.hub import Hub
from live.outbox import fanout_settled
from actors.registry import IDLE_SECONDS, TICK_SECONDS, QueueRegistry
from config.settings import Settings
from core.days import ClinicCalendar
from handlers import admin, appointments, auth as auth_handlers, doctors, ops, queue, spec, web as web_app
from handlers import reports as report_handlers
from handlers import notifications as notification_handlers
from live import socketio as live_socketio, ws
from handlers.base import LivenessHandler, NotFoundHandler
from core import metrics
from core.limits import (ACCOUNT_DISABLED_CLOSE_CODE, HARD_BODY_BYTES, MAX_FRAME_BYTES, PING_INTERVAL_SECONDS,
                         PING_TIMEOUT_SECONDS, SESSION_ENDED_CLOSE_CODE)
from infra.auth import PasswordHasher, TokenIssuer
from infra.bus import PRESENCE_REPORT_SECONDS, InProcessBus, RedisBus
from infra.edge import HEADER_TIMEOUT_SECONDS, IDLE_TIMEOUT_SECONDS, EdgeHTTPServer
from infra.logs import log_request
from infra.ratelimit import LoginLimits, RegistrationLimits
from infra.revocations import Revocations
from core.errors import StartupError
from domain.sessions import load_revocations
from domain.accounts import seed_admin
from domain import notifications, reports
from core.access import ADMIN, Principal
from infra.notify.notifier import Notifier
from schemas.appointments import present
from infra.store import Store
from core.tasks import cancel_and_wait
from core.values import truncate_ms, utcnow

log = logging.getLogger("medpharma.server")

ID = r"([^/]+)"
LOOP_PROBE_SECONDS = 0.25
DRAIN_SECONDS = 8.0
SOCKET_CLOSE_SECONDS = 2.0
GC_YOUNG_THRESHOLD = 50_000  # see tune_garbage_collector


def tune_garbage_collector() -> None:
    """Raises the collector's young threshold from CPython's 700 to `GC_YOUNG_THRESHOLD` objects.

    A fan-out briefly holds a few short-lived objects per socket; at 700 the collector runs mid-fan-out,
    promotes them, and full collections then scan every socket's objects (figures: bench/README.md,
    "The garbage collector's young threshold"). Only ever raised here, never lowered."""
    young, middle, old = gc.get_threshold()
    if young < GC_YOUNG_THRESHOLD:
        gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


@dataclass
class Services:
    """Everything a handler needs, built once per app."""

    settings: Settings
    clock: Callable[[], datetime]  # the one "now" of every workflow and queue; tests and eta-replay set it
    store: Store
    hasher: PasswordHasher
    tokens: TokenIssuer
    hub: Hub
    queues: QueueRegistry
    calendar: ClinicCalendar
    bus: Any
    login_limits: LoginLimits
    registration_limits: RegistrationLimits
    revocations: Revocations
    notifier: Notifier | None = None  # Web Push and webhooks (infra.notify); None in tools that need neither
    sockets: set = field(default_factory=set)
    sockets_per_user: Counter = field(default_factory=Counter)  # user id → sockets held (WS_MAX_PER_USER)
    in_flight: set = field(default_factory=set)  # HTTP requests being answered, for a graceful stop

    def refresh_gauges(self) -> None:
        metrics.actors_live.set(len(self.queues.actors))
        metrics.queue_waiting_appointments.set(sum(a.waiting_count for a in self.queues.actors.values()))
        metrics.actor_mailbox_depth.set(sum(a.mailbox_depth for a in self.queues.actors.values()))


ROUTES: list[tuple[str, type]] = [
    (r"/", LivenessHandler),
    (r"/healthz", ops.HealthHandler),
    (r"/readyz", ops.ReadyHandler),
    (r"/metrics", ops.MetricsHandler),
    (r"/ws", ws.QueueSocket),
    (live_socketio.PATH, live_socketio.SocketIOHandler),
    (r"/api/auth/register", auth_handlers.RegisterHandler),
    (r"/api/auth/login", auth_handlers.LoginHandler),
    (r"/api/auth/me", auth_handlers.MeHandler),
    (r"/api/auth/register/invite", auth_handlers.InviteRegisterHandler),
    (r"/api/auth/refresh", auth_handlers.RefreshHandler),
    (r"/api/auth/logout", auth_handlers.LogoutHandler),
    (r"/api/auth/password", auth_handlers.PasswordHandler),
    (r"/api/admin/invites", admin.InvitesHandler),
    (rf"/api/admin/invites/{ID}", admin.InviteHandler),
    (r"/api/admin/users", admin.UsersHandler),
    (rf"/api/admin/users/{ID}", admin.UserHandler),
    (r"/api/admin/audit", admin.AuditHandler),
    (r"/api/doctors", doctors.DoctorsHandler),
    (rf"/api/doctors/{ID}", doctors.DoctorHandler),
    (rf"/api/doctors/{ID}/status", doctors.DoctorStatusHandler),
    (rf"/api/doctors/{ID}/queue/next", doctors.QueueNextHandler),
    (rf"/api/doctors/{ID}/stats", doctors.DoctorStatsHandler),
    (rf"/api/doctors/{ID}/slots", doctors.DoctorSlotsHandler),
    (r"/api/appointments", appointments.AppointmentsHandler),
    (r"/api/appointments/my", appointments.MyAppointmentsHandler),
    (rf"/api/appointments/doctor/{ID}", appointments.DoctorAppointmentsHandler),
    (rf"/api/appointments/{ID}", appointments.AppointmentHandler),
    (rf"/api/appointments/{ID}/status", appointments.AppointmentStatusHandler),
    (rf"/api/queue/doctor/{ID}", queue.DoctorQueueHandler),
    (rf"/api/queue/appointment/{ID}/position", queue.AppointmentPositionHandler),
    (r"/api/reports/days", report_handlers.DaysReportHandler),
    (r"/api/push/key", notification_handlers.PushKeyHandler),
    (r"/api/push/subscriptions", notification_handlers.PushSubscriptionsHandler),
    (rf"/api/push/subscriptions/{ID}", notification_handlers.PushSubscriptionHandler),
    (r"/api/admin/webhooks", notification_handlers.WebhooksHandler),
    (rf"/api/admin/webhooks/{ID}", notification_handlers.WebhookHandler),
    (rf"/api/admin/webhooks/{ID}/deliveries", notification_handlers.WebhookDeliveriesHandler),
    (r"/api/openapi.json", spec.OpenApiHandler),
    (r"/api/asyncapi.json", spec.AsyncApiHandler),
    (r"/api/docs", spec.ApiDocsHandler),
    (r"/app", web_app.AppRedirectHandler),
    (r"/app/(.*)", web_app.WebAppHandler),
]


def route_label(pattern: str) -> str:
    """`/api/doctors/([^/]+)/status` → `/api/doctors/{id}/status`: a bounded metrics label."""
    return pattern.replace(ID, "{id}")


def make_app(services: Services) -> web.Application:
    handlers = [web.url(pattern, handler, {"route": route_label(pattern)}) for pattern, handler in ROUTES]
    return web.Application(
        handlers,
        services=services,
        default_handler_class=NotFoundHandler,
        default_handler_args={"route": "unmatched"},
        log_function=log_request,
        websocket_ping_interval=PING_INTERVAL_SECONDS,
        websocket_ping_timeout=PING_TIMEOUT_SECONDS,
        websocket_max_message_size=MAX_FRAME_BYTES,
        compress_response=False,
        serve_traceback=False,
    )


def build_services(settings: Settings, *, store: Store | None = None,
                   clock: Callable[[], datetime] = utcnow, tick_seconds: float = TICK_SECONDS,
                   idle_seconds: float = IDLE_SECONDS, presence_report_seconds: float = PRESENCE_REPORT_SECONDS) -> Services:
    store = store or Store.connect(settings.mongo_uri, settings.mongo_db)
    clock = at_store_precision(clock)
    hub = Hub()
    calendar = ClinicCalendar.named(settings.clinic_timezone)
    notifier = Notifier(store, settings, clock, render_appointment=lambda a: present(a, RECEIVER),
                        settled=fanout_settled)
    registry = QueueRegistry(store, hub, clock=clock, calendar=calendar, tick_seconds=tick_seconds,
                             idle_seconds=idle_seconds, soon_minutes=settings.soon_minutes,
                             learning=settings.eta_learning, listener=notifier.listener)
    revocations = Revocations(settings.jwt_expires_seconds)
    services = Services(settings=settings, clock=clock, store=store, hasher=PasswordHasher(settings.bcrypt_rounds),
                        tokens=TokenIssuer(settings.jwt_secret, settings.jwt_expires_seconds),
                        hub=hub, queues=registry, calendar=calendar,
                        bus=(RedisBus(registry, revocations, settings.redis_url, jwt_secret=settings.jwt_secret,
                                      mongo_db=settings.mongo_db, presence_report_seconds=presence_report_seconds)
                             if settings.redis_url else InProcessBus(registry, revocations)),
                        login_limits=LoginLimits(settings.login_failures_per_minute,
                                                 settings.login_failures_per_address_per_minute),
                        registration_limits=RegistrationLimits(settings.registrations_per_hour),
                        revocations=revocations, notifier=notifier)
    services.bus.on_reconnect = lambda: load_revocations(services)  # revocations it may have missed
    revocations.on_session_revoked = lambda sid: close_sockets(
        services, lambda v: v.session_id == sid, SESSION_ENDED_CLOSE_CODE, "session_ended")
    revocations.on_account_disabled = lambda uid: close_sockets(
        services, lambda v: v.user_id == uid, ACCOUNT_DISABLED_CLOSE_CODE, "account_disabled")
    return services


# A webhook receiver is the clinic's own system: it gets the appointment as an admin sees it (joinUrl too).
RECEIVER = Principal(user_id="000000000000000000000000", role=ADMIN)


def at_store_precision(clock: Callable[[], datetime]) -> Callable[[], datetime]:
    """The clock as the store keeps time (milliseconds), so a document read back equals the one written."""
    return lambda: truncate_ms(clock())


def close_sockets(services: Services, whose: Callable, code: int, reason: str) -> None:
    """Ends the open sockets of an ended session or a disabled account on this node."""
    for socket in list(services.sockets):
        if socket.viewer is not None and whose(socket.viewer):
            socket.end(code, reason.replace("_", " "), reason)


class Server:
    def __init__(self, settings: Settings, *, header_timeout: float = HEADER_TIMEOUT_SECONDS,
                 idle_timeout: float = IDLE_TIMEOUT_SECONDS, **service_options):
        self.settings = settings
        self.header_timeout = header_timeout
        self.idle_timeout = idle_timeout
        self.service_options = service_options
        self.services: Services | None = None
        self.http: EdgeHTTPServer | None = None
        self.port: int | None = None
        self._probe: asyncio.Task | None = None
        self._roll_up: asyncio.Task | None = None
        self._planner: asyncio.Task | None = None
        self.days_rolled_up = asyncio.Event()  # set after each pass of the day roll-up (domain.reports)

    async def start(self) -> "Server":
        """Connects what the server needs first, so a start that cannot succeed fails before any
        other line is logged: `OSError` (the port), `StartupError` (the store, Redis)."""
        settings = self.settings
        sockets = self.http_sockets()  # the port first: taken → OSError before anything else happens
        tune_garbage_collector()
        self.services = build_services(settings, **self.service_options)
        try:
            await self.services.store.ensure_reachable()
            await self.services.store.ensure_indexes()
            await self.services.notifier.records.ensure_indexes()
            await load_revocations(self.services)
            try:
                await self.services.bus.start()
            except Exception as exc:
                raise StartupError(f"REDIS_URL: cannot reach Redis ({type(exc).__name__}: {exc})") from None
        except BaseException:
            for sock in sockets:
                sock.close()
            await self.services.bus.stop()
            await self.services.store.close()
            self.services.hasher.close()
            raise
        if settings.embedded_store:
            log.warning("MONGO_URI is not set: using the embedded in-memory store; all data ends with the process")
        if settings.jwt_secret_generated:
            log.warning("JWT_SECRET is not set: using a random secret; tokens end with the process")
        await self.services.hasher.decoy()  # made now, in the pool, so no sign-in waits for it
        if settings.seed_admin_email:
            outcome = await seed_admin(self.services, settings.seed_admin_email, settings.seed_admin_password,
                                       settings.seed_admin_name)
            log.info("seed admin %s", outcome, extra={"email": settings.seed_admin_email})
        self.services.queues.start()
        await self.services.notifier.start()
        self._planner = asyncio.get_running_loop().create_task(notifications.keep_planning(self.services))
        await notifications.follow_on_start(self.services)
        self._probe = asyncio.get_running_loop().create_task(probe_event_loop())
        self._roll_up = asyncio.get_running_loop().create_task(
            reports.keep_rolling_up(self.services, self.days_rolled_up))
        app = make_app(self.services)
        self.http = EdgeHTTPServer(app, max_body_size=HARD_BODY_BYTES, xheaders=False,
                                   header_timeout=self.header_timeout, idle_timeout=self.idle_timeout)
        self.http.add_sockets(sockets)
        self.port = sockets[0].getsockname()[1]
        log.info("listening", extra={"host": settings.host, "port": self.port})
        return self

    def http_sockets(self):
        from tornado.netutil import bind_sockets
        return bind_sockets(self.settings.port, self.settings.host)

    async def stop(self) -> None:
        """Graceful: stop accepting, 1001 to every socket, drain requests, stop actors, close the store.

        Requests already in progress get up to DRAIN_SECONDS to answer; sockets get SOCKET_CLOSE_SECONDS
        to complete the closing handshake (a dead client is not waited for). Only then are idle
        keep-alive connections closed, so the whole stop stays well inside a 10 s termination grace.
        """
        if self.http is None:
            return
        http = self.http
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        http.stop()
        log.info("stopped accepting connections", extra={"inFlight": len(self.services.in_flight),
                                                         "sockets": len(self.services.sockets)})
        sockets_deadline = loop.time() + SOCKET_CLOSE_SECONDS
        drain_deadline = loop.time() + DRAIN_SECONDS
        while loop.time() < drain_deadline:
            for socket in list(self.services.sockets):  # also any opened on a kept-alive connection since
                if socket.drop_reason is None:
                    socket.shutdown()
            if not self.services.in_flight and (not self.services.sockets or loop.time() >= sockets_deadline):
                break
            await asyncio.sleep(0.02)
        else:
            log.warning("some requests did not finish in time", extra={"inFlight": len(self.services.in_flight)})
        await live_socketio.stop(http.request_callback)
        try:
            await asyncio.wait_for(http.close_all_connections(), 1.0)
        except asyncio.TimeoutError:
            log.warning("some connections did not close in time")
        await cancel_and_wait(self._probe)
        await cancel_and_wait(self._roll_up)
        await cancel_and_wait(self._planner)
        await self.services.notifier.stop()
        await self.services.bus.stop()
        await self.services.queues.stop()
        await self.services.store.close()
        self.services.hasher.close()
        self.http = None
        log.info("stopped", extra={"seconds": round(time.monotonic() - started, 3)})


async def probe_event_loop() -> None:
    """Sleeps a fixed time and measures how late it wakes: the loop's lag, for the metrics."""
    loop = asyncio.get_running_loop()
    while True:
        expected = loop.time() + LOOP_PROBE_SECONDS
        await asyncio.sleep(LOOP_PROBE_SECONDS)
        lag = max(0.0, loop.time() - expected)
        metrics.event_loop_lag_seconds.set(lag)
        metrics.event_loop_lag_observed_seconds.observe(lag)
