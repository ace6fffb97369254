"""Analytics: events, exporters, the outbox and reports (prices: :mod:`victor.pricing`).
``import victor.analytics`` stays light: ``victor.analytics.X`` imports ``X`` on first use."""

from __future__ import annotations

from importlib import import_module
from typing import Any

_WHERE = {
    "AnalyticsStats": "stats",
    "EventEncodeError": "encoding",
    "BaseAnalyticsExporter": "exporters.base",
    "ConsoleAnalyticsExporter": "exporters.jsonl",
    "JSONLAnalyticsExporter": "exporters.jsonl",
    "SQLiteAnalyticsExporter": "exporters.sqlite",
    "PostgreSQLAnalyticsExporter": "exporters.postgres",
    "OpenTelemetryAnalyticsExporter": "exporters.otel",
    "AnalyticsReader": "reports",
    "SummaryRow": "reports",
    "Outbox": "outbox",
}

__all__ = list(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{_WHERE[name]}"), name)
    globals()[name] = value
    return value
