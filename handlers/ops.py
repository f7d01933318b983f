"""Operator endpoints: liveness, readiness and the Prometheus scrape."""

from __future__ import annotations

import hmac

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from handlers.base import APIHandler, bearer_token
from core import metrics
from core.errors import StoreUnavailable, Unauthorized


class HealthHandler(APIHandler):
    """The process is up and its event loop answers; says nothing about the store."""

    async def get(self) -> None:
        self.send_json({"status": "ok"})


class ReadyHandler(APIHandler):
    """The store answers a ping within a short timeout; a load balancer sends traffic only then."""

    async def get(self) -> None:
        try:
            await self.services.store.ping()
        except StoreUnavailable:
            raise StoreUnavailable("The data store is not answering.") from None
        self.send_json({"status": "ready"})


class MetricsHandler(APIHandler):
    async def get(self) -> None:
        expected = self.services.settings.metrics_token
        if expected is not None:
            given = bearer_token(self.request.headers.get("Authorization")) or ""
            if not hmac.compare_digest(given.encode(), expected.encode()):
                metrics.auth_failures_total.labels("bad_token").inc()
                raise Unauthorized("Send the metrics token as a bearer token.", code="unauthorized",
                                   headers={"WWW-Authenticate": "Bearer"})
        self.services.refresh_gauges()
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.finish(generate_latest(metrics.REGISTRY))
