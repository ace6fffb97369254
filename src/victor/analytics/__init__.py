"""Analytics: events, costs, exporters, the outbox and reports.

``import victor.analytics`` stays light: exporters, the coordinator and the reader are
imported on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from victor.analytics.pricing import ModelPrice, PriceTable, default_price_table

if TYPE_CHECKING:
    from victor.analytics.encoding import EventEncodeError
    from victor.analytics.exporters import (
        BaseAnalyticsExporter,
        ConsoleAnalyticsExporter,
        JSONLAnalyticsExporter,
        OpenTelemetryAnalyticsExporter,
        PostgreSQLAnalyticsExporter,
        SQLiteAnalyticsExporter,
    )
    from victor.analytics.outbox import Outbox
    from victor.analytics.pricing import PriceQuote, load_price_table
    from victor.analytics.reports import AnalyticsReader, SummaryRow
    from victor.analytics.stats import AnalyticsStats

_WHERE = {
    "AnalyticsStats": "victor.analytics.stats",
    "EventEncodeError": "victor.analytics.encoding",
    "BaseAnalyticsExporter": "victor.analytics.exporters",
    "ConsoleAnalyticsExporter": "victor.analytics.exporters",
    "JSONLAnalyticsExporter": "victor.analytics.exporters",
    "SQLiteAnalyticsExporter": "victor.analytics.exporters",
    "PostgreSQLAnalyticsExporter": "victor.analytics.exporters",
    "OpenTelemetryAnalyticsExporter": "victor.analytics.exporters",
    "PriceQuote": "victor.analytics.pricing",
    "load_price_table": "victor.analytics.pricing",
    "AnalyticsReader": "victor.analytics.reports",
    "SummaryRow": "victor.analytics.reports",
    "Outbox": "victor.analytics.outbox",
}

__all__ = [
    "AnalyticsReader",
    "AnalyticsStats",
    "BaseAnalyticsExporter",
    "ConsoleAnalyticsExporter",
    "EventEncodeError",
    "JSONLAnalyticsExporter",
    "ModelPrice",
    "OpenTelemetryAnalyticsExporter",
    "Outbox",
    "PostgreSQLAnalyticsExporter",
    "PriceQuote",
    "PriceTable",
    "SQLiteAnalyticsExporter",
    "SummaryRow",
    "default_price_table",
    "load_price_table",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
