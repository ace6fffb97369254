"""The real-time analytics dashboard: a page at ``/dashboard`` fed live over a WebSocket
at ``/ws/analytics`` (Starlette and uvicorn, the ``[server]`` extra), and the recipe's
``WebSocketAnalyticsExporter`` (the ``websockets`` library).

Imported on first use: ``victor.dashboard.X`` looks ``X`` up in :data:`_WHERE`.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_WHERE = {
    "Dashboard": "app",
    "create_dashboard_app": "app",
    "check_binding": "app",
    "serve_dashboard": "serve",
    "Hub": "hub",
    "LocalBus": "bus",
    "RedisBus": "bus",
    "DashboardExporter": "feed",
    "StoreTail": "feed",
    "WebSocketAnalyticsExporter": "websocket_exporter",
}

__all__ = list(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{_WHERE[name]}"), name)
    globals()[name] = value
    return value
