"""Built-in exporters. Each is imported on first use: PostgreSQL and OpenTelemetry need
optional packages (``victor-orchestrator[postgres]``, ``[otel]``)."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from victor.analytics.exporters.base import (
        BaseAnalyticsExporter,
    )
    from victor.analytics.exporters.console import ConsoleAnalyticsExporter
    from victor.analytics.exporters.jsonl import JSONLAnalyticsExporter
    from victor.analytics.exporters.otel import OpenTelemetryAnalyticsExporter
    from victor.analytics.exporters.postgres import PostgreSQLAnalyticsExporter
    from victor.analytics.exporters.sqlite import SQLiteAnalyticsExporter

_WHERE = {
    "BaseAnalyticsExporter": "base",
    "ConsoleAnalyticsExporter": "console",
    "JSONLAnalyticsExporter": "jsonl",
    "SQLiteAnalyticsExporter": "sqlite",
    "PostgreSQLAnalyticsExporter": "postgres",
    "OpenTelemetryAnalyticsExporter": "otel",
}

__all__ = [
    "BaseAnalyticsExporter",
    "ConsoleAnalyticsExporter",
    "JSONLAnalyticsExporter",
    "OpenTelemetryAnalyticsExporter",
    "PostgreSQLAnalyticsExporter",
    "SQLiteAnalyticsExporter",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
