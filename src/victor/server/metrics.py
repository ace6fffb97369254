"""Prometheus metrics of the server: requests, latency, tokens, cost and errors, by
tenant and model (``prometheus_client``, one registry per app)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "ServerMetrics"]

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
NO_TENANT = "-"
# Model names come from requests: past this many distinct names, the rest are "other"
# (a client sending random names must not grow the registry without bound).
MAX_MODEL_LABELS = 200
OTHER = "other"


class ServerMetrics:
    def __init__(self) -> None:
        self._models: set[str] = set()
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "victor_requests",
            "HTTP requests served",
            ["route", "status", "tenant", "model"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "victor_request_duration_seconds",
            "Time to serve a request (streams: to the last byte)",
            ["route", "tenant", "model"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.tokens = Counter(
            "victor_tokens",
            "Model tokens of served turns",
            ["tenant", "model", "direction"],
            registry=self.registry,
        )
        self.cost = Counter(
            "victor_cost_usd",
            "Cost of served turns in USD (priced models only)",
            ["tenant", "model"],
            registry=self.registry,
        )
        self.errors = Counter(
            "victor_errors",
            "Requests answered with an error, by error type",
            ["route", "tenant", "model", "type"],
            registry=self.registry,
        )

    def _model(self, model: str | None) -> str:
        if not model:
            return ""
        if model in self._models:
            return model
        if len(self._models) >= MAX_MODEL_LABELS:
            return OTHER
        self._models.add(model)
        return model

    def observe(
        self,
        route: str,
        status: int,
        seconds: float,
        tenant: str | None,
        model: str | None,
        error_type: str | None = None,
    ) -> None:
        tenant, model = tenant or NO_TENANT, self._model(model)
        self.requests.labels(route, str(status), tenant, model).inc()
        self.latency.labels(route, tenant, model).observe(seconds)
        if error_type is not None:
            self.errors.labels(route, tenant, model, error_type).inc()

    def turn(
        self,
        tenant: str | None,
        model: str | None,
        input_tokens: int,
        output_tokens: int,
        cost: float | None,
    ) -> None:
        tenant, model = tenant or NO_TENANT, self._model(model)
        self.tokens.labels(tenant, model, "input").inc(input_tokens)
        self.tokens.labels(tenant, model, "output").inc(output_tokens)
        if cost is not None:
            self.cost.labels(tenant, model).inc(cost)

    def render(self) -> bytes:
        return generate_latest(self.registry)
