"""The dashboard's vocabulary, defined once: paths, WebSocket messages, close codes, and
the shape of an event on the wire.

A client opens ``/ws/analytics`` and sends ``{"type": "hello", "token": ..., "epoch": ...,
"last_seq": ...}`` first (``epoch`` and ``last_seq`` only when it reconnects). The server
answers ``welcome`` (its epoch, the latest sequence number, the fan-out status), then a
``snapshot`` of the recent window read from the analytics store (unless the client
resumes), the missed ``batch`` frames it still holds, and live ``batch`` frames, each with
its sequence number. ``status`` and ``experiments`` frames carry no sequence number: each
one replaces the previous.
"""

from __future__ import annotations

import ipaddress
from datetime import datetime
from typing import Any

PAGE_PATH = "/dashboard"
STATIC_PATH = "/dashboard/static"
WS_PATH = "/ws/analytics"

# -- message types ---------------------------------------------------------------------
HELLO = "hello"  # client -> server, the first message
WELCOME = "welcome"
SNAPSHOT = "snapshot"
BATCH = "batch"
STATUS = "status"
EXPERIMENTS = "experiments"

# -- close codes (RFC 6455) ------------------------------------------------------------
POLICY_VIOLATION = 1008  # no hello in time, or a missing or wrong token
TRY_AGAIN_LATER = 1013  # the client fell behind (its queue filled up): reconnect

# -- fan-out status --------------------------------------------------------------------
IN_PROCESS = "in-process"
REDIS = "redis"
REDIS_DOWN = "redis-down"  # Redis configured but unreachable: in-process only


def to_wire(event: Any) -> dict[str, Any]:
    """An analytics event (an ``AnalyticsEvent`` or a builder's record) as the page
    reads it: ``ts`` in Unix milliseconds, ``data`` as it is."""
    ts = event.timestamp
    if isinstance(ts, str):
        ts = datetime.fromisoformat(ts)
    return {
        "id": event.event_id,
        "type": event.type,
        "session": event.session_id,
        "tenant": event.tenant_id,
        "experiment": event.experiment,
        "variant": event.variant,
        "ts": round(ts.timestamp() * 1000, 3),
        "data": event.data or {},
    }


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
