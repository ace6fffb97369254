"""Analytics events and the exporter interface."""

from __future__ import annotations

import os
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

EventType = Literal[
    "session_start",
    "llm_request",
    "token_usage",
    "tool_call",
    "tool_selection",
    "error",
    "experiment_assignment",
    "chat_complete",
    "feedback",
]

_last_ms = 0
_seq = 0


def new_event_id() -> str:
    """A UUIDv7: unique, and sorting by it sorts by creation time (RFC 9562)."""
    global _last_ms, _seq
    ms = time.time_ns() // 1_000_000
    if ms <= _last_ms:  # same millisecond: a counter keeps ids of one process ordered
        ms = _last_ms
        _seq += 1
    else:
        _seq = 0
    _last_ms = ms
    rand = int.from_bytes(os.urandom(8), "big")
    value = (ms & 0xFFFF_FFFF_FFFF) << 80
    value |= 0x7 << 76  # version 7
    value |= (_seq & 0xFFF) << 64  # rand_a carries the counter
    value |= 0b10 << 62  # RFC 4122 variant
    value |= rand & ((1 << 62) - 1)
    return str(uuid.UUID(int=value))


def _now() -> datetime:
    return datetime.now(UTC)


class AnalyticsEvent(BaseModel):
    """One thing that happened, for exporters and reports.

    Model and token fields in ``data`` use the OpenTelemetry GenAI names
    (``gen_ai.request.model``, ``gen_ai.usage.input_tokens``, ``gen_ai.tool.name``...).
    """

    event_id: str = Field(default_factory=new_event_id)
    type: str
    session_id: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    timestamp: datetime = Field(default_factory=_now)
    tenant_id: str | None = None
    experiment: str | None = None
    variant: str | None = None


class ExportResult(BaseModel):
    """What an exporter did with one batch."""

    success: bool
    exported_count: int = 0
    error: str | None = None
    failed_event_ids: list[str] = Field(default_factory=list)


class IAnalyticsExporter(ABC):
    """Sends batches of events somewhere (a database, a file, a dashboard)."""

    @abstractmethod
    async def export(self, events: Sequence[AnalyticsEvent]) -> ExportResult:
        """Export one batch. Return a result rather than raise where possible."""

    async def shutdown(self) -> None:  # noqa: B027 - optional hook
        """Release connections and files; called once when analytics stop."""
