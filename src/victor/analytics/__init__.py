"""Analytics: events, costs, exporters, the outbox and reports.

``import victor.analytics`` stays light: exporters, the coordinator and the reader are
imported on first use (``victor.analytics.X`` looks ``X`` up in :data:`_WHERE`).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from victor.analytics.pricing import ModelPrice, PriceTable, default_price_table

_WHERE = {
    "AnalyticsStats": "stats",
    "EventEncodeError": "encoding",
    "BaseAnalyticsExporter": "exporters.base",
    "ConsoleAnalyticsExporter": "exporters.jsonl",
    "JSONLAnalyticsExporter": "exporters.jsonl",
    "SQLiteAnalyticsExporter": "exporters.sqlite",
    "PostgreSQLAnalyticsExporter": "exporters.postgres",
    "OpenTelemetryAnalyticsExporter": "exporters.otel",
    "load_price_table": "pricing",
    "AnalyticsReader": "reports",
    "SummaryRow": "reports",
    "Outbox": "outbox",
}

__all__ = [
    "ModelPrice",
    "PriceTable",
    "default_price_table",
    *_WHERE,
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{_WHERE[name]}"), name)
    globals()[name] = value
    return value
