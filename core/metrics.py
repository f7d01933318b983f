"""Every Prometheus metric the service exports, declared in one place.

Names follow `medpharma_<noun>_<verb>_<unit>`. Label values that are known up front are created at
import so a dashboard sees a zero, not a missing series, before the first event. The module keeps its
own registry so tests can start several apps in one process without "duplicated timeseries" errors
and so `/metrics` shows only what we own plus the process/platform collectors.
"""

from __future__ import annotations

from prometheus_client import (CollectorRegistry, Counter, Gauge, Histogram, PlatformCollector,
                               ProcessCollector)

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)

HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
EVENT_NAMES = ("queue:state", "queue:update", "turn:now", "turn:soon", "doctor:status", "error", "pong", "auth:ok")
SOCKET_DROP_REASONS = ("client_closed", "connection_lost", "slow_reader", "shutdown", "token_expired",
                       "session_ended", "account_disabled")
AUTH_FAILURE_REASONS = ("missing_token", "bad_token", "expired_token", "bad_credentials", "invite_invalid",
                        "invite_used", "invite_expired", "forbidden")
REFUSAL_LIMITS = ("login_email", "login_address", "registration_address", "hashing_busy", "hashing_per_client",
                  "ws_per_user")
BUS_REJECT_REASONS = ("unsigned", "bad_signature", "malformed", "stale", "replayed")
ACTOR_MESSAGES = ("load", "appointment_changed", "doctor_changed", "doctor_deleted", "tick", "presence_changed")

def method_label(method: str | None) -> str:
    """A client may send any token as an HTTP method; a label (or a log field) takes only the
    standard ones, so what clients invent can never grow a series or a dashboard."""
    return method if method in HTTP_METHODS else "OTHER"


http_requests_total = Counter(
    "medpharma_http_requests_total",
    "HTTP requests answered, by method, route pattern (never the raw path) and status code.",
    ["method", "route", "status"], registry=REGISTRY)

http_request_duration_seconds = Histogram(
    "medpharma_http_request_duration_seconds",
    "Time from a request's arrival to its answer, by method and route pattern.",
    ["method", "route"], registry=REGISTRY,
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))

ws_connections_open = Gauge(
    "medpharma_ws_connections_open",
    "WebSocket connections currently open.", registry=REGISTRY)

ws_messages_sent_total = Counter(
    "medpharma_ws_messages_sent_total",
    "Frames written to WebSocket clients, by event name.", ["event"], registry=REGISTRY)

ws_sockets_dropped_total = Counter(
    "medpharma_ws_sockets_dropped_total",
    "WebSocket connections closed by the server or lost, by reason.", ["reason"], registry=REGISTRY)

actors_live = Gauge(
    "medpharma_actors_live",
    "Doctor actors currently in memory.", registry=REGISTRY)

actor_restarts_total = Counter(
    "medpharma_actor_restarts_total",
    "Doctor actors restarted after a crash while handling a message.", registry=REGISTRY)

actor_mailbox_depth = Gauge(
    "medpharma_actor_mailbox_depth",
    "Messages waiting in all doctor actors' mailboxes together.", registry=REGISTRY)

actor_message_duration_seconds = Histogram(
    "medpharma_actor_message_duration_seconds",
    "Time an actor spends handling one message, by message kind.", ["message"], registry=REGISTRY,
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1))

queue_waiting_appointments = Gauge(
    "medpharma_queue_waiting_appointments",
    "Waiting (pending or confirmed) appointments across the queues loaded in memory.", registry=REGISTRY)

push_lag_seconds = Histogram(
    "medpharma_push_lag_seconds",
    "Time from a committed change reaching its actor's mailbox to its pushes being queued on sockets.",
    registry=REGISTRY,
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1))

store_operation_duration_seconds = Histogram(
    "medpharma_store_operation_duration_seconds",
    "Latency of store (MongoDB) operations, by named operation.", ["operation"], registry=REGISTRY,
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))

store_errors_total = Counter(
    "medpharma_store_errors_total",
    "Store operations that failed because the store was unreachable or timed out.", ["operation"],
    registry=REGISTRY)

event_loop_lag_seconds = Gauge(
    "medpharma_event_loop_lag_seconds",
    "How late the last periodic event-loop probe ran; high values mean something blocks the loop.",
    registry=REGISTRY)

event_loop_lag_observed_seconds = Histogram(
    "medpharma_event_loop_lag_observed_seconds",
    "Distribution of event-loop probe delays.", registry=REGISTRY,
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))

eta_error_minutes = Histogram(
    "medpharma_eta_error_minutes",
    "How far a consultation's real start was from the expectedStartAt last pushed for it at least 30 "
    "minutes before: the ETA keeping score of itself.", registry=REGISTRY,
    buckets=(1, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120, 240))

# Where a consultation's real start fell against the range published for it at least 30 minutes before.
ETA_RANGE_OUTCOMES = ("early", "inside", "late")
eta_range_total = Counter(
    "medpharma_eta_range_total",
    "Consultations that started before (early), inside or after (late) the range [earliestStartAt, "
    "latestStartAt] last pushed for them at least 30 minutes before.", ["outcome"], registry=REGISTRY)

auth_failures_total = Counter(
    "medpharma_auth_failures_total",
    "Refused authentications and authorizations, by reason.", ["reason"], registry=REGISTRY)

requests_refused_total = Counter(
    "medpharma_requests_refused_total",
    "Requests refused by a limit before doing the work they asked for, by limit.", ["limit"],
    registry=REGISTRY)

password_hashing_waiting = Gauge(
    "medpharma_password_hashing_waiting",
    "Password hashings waiting for a free worker (the pool refuses more past its bound).", registry=REGISTRY)

bus_rejected_total = Counter(
    "medpharma_bus_rejected_total",
    "Bus messages dropped because they were unsigned, badly signed, malformed, too old or already seen, by reason.", ["reason"],
    registry=REGISTRY)

bus_publish_failures_total = Counter(
    "medpharma_bus_publish_failures_total",
    "Publishes to the bus that failed every retry (this node then repairs the queues concerned).",
    registry=REGISTRY)

accept_paused_total = Counter(
    "medpharma_accept_paused_total",
    "Times the server paused accepting connections because it ran out of file descriptors.",
    registry=REGISTRY)

# One counter per event, looked up once: a change fanned out to thousands of sockets counts every
# frame, and `labels()` takes a lock and builds a key each time.
ws_messages_sent_by_event = {_event: ws_messages_sent_total.labels(_event) for _event in EVENT_NAMES}


def count_sent(event: str) -> None:
    counter = ws_messages_sent_by_event.get(event)
    (counter if counter is not None else ws_messages_sent_total.labels(event)).inc()


for _reason in SOCKET_DROP_REASONS:
    ws_sockets_dropped_total.labels(_reason)
for _reason in AUTH_FAILURE_REASONS:
    auth_failures_total.labels(_reason)
for _limit in REFUSAL_LIMITS:
    requests_refused_total.labels(_limit)
for _reason in BUS_REJECT_REASONS:
    bus_rejected_total.labels(_reason)
for _outcome in ETA_RANGE_OUTCOMES:
    eta_range_total.labels(_outcome)
for _message in ACTOR_MESSAGES:
    actor_message_duration_seconds.labels(_message)

# -- notifications (Web Push and webhooks, infra/notify) ----------------------------------------------
NOTIFY_CHANNELS = ("push", "webhook")
NOTIFY_OUTCOMES = ("delivered", "retry", "failed", "gone")

notifications_total = Counter(
    "medpharma_notifications_total",
    "Delivery attempts by channel and outcome: delivered (2xx), retry (will be tried again), failed "
    "(gave up after 24 h, or refused for good), gone (the push service said the subscription is dead).",
    ["channel", "outcome"], registry=REGISTRY)

notification_delay_seconds = Histogram(
    "medpharma_notification_delay_seconds",
    "From the change that caused a notification to its delivery (retries included).",
    registry=REGISTRY, buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600, 21600, 86400))

notification_backlog = Gauge(
    "medpharma_notification_backlog",
    "Deliveries this node has claimed and not yet finished, plus events not yet turned into deliveries.",
    registry=REGISTRY)

for _channel in NOTIFY_CHANNELS:
    for _outcome in NOTIFY_OUTCOMES:
        notifications_total.labels(_channel, _outcome)
