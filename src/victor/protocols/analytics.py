"""Analytics events and the exporter interface."""

from __future__ import annotations

import os
import time
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
_pool = b""
_pos = 0


def _forget_state() -> None:
    """A forked child must not replay its parent's randomness or id counter."""
    global _pool, _pos, _last_ms, _seq
    _pool, _pos, _last_ms, _seq = b"", 0, 0, 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_state)


def random_bytes(n: int) -> bytes:
    """Cryptographically random bytes, read from the OS 4 KiB at a time: one
    ``getrandom`` call costs about as much as the rest of building an event."""
    global _pool, _pos
    if _pos + n > len(_pool):
        _pool = os.urandom(max(4096, n))
        _pos = 0
    chunk = _pool[_pos : _pos + n]
    _pos += n
    return chunk


def new_event_id() -> str:
    """A UUIDv7: unique, and sorting by it sorts by creation time (RFC 9562)."""
    global _last_ms, _seq
    ms = time.time_ns() // 1_000_000
    if ms <= _last_ms:  # same millisecond: a counter keeps ids of one process ordered
        ms = _last_ms
        _seq += 1
        if _seq > 0xFFF:  # counter spent: borrow the next millisecond
            ms += 1
            _seq = 0
    else:
        _seq = 0
    _last_ms = ms
    rand = int.from_bytes(random_bytes(8), "big")
    value = (ms & 0xFFFF_FFFF_FFFF) << 80
    value |= 0x7 << 76  # version 7
    value |= _seq << 64  # rand_a carries the counter
    value |= 0b10 << 62  # RFC 4122 variant
    value |= rand & ((1 << 62) - 1)
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def new_session_id() -> str:
    """A random (version 4) UUID in hex, for conversations started without an id."""
    value = int.from_bytes(random_bytes(16), "big")
    value = (value & ~(0xF << 76)) | (0x4 << 76)
    value = (value & ~(0b11 << 62)) | (0b10 << 62)
    return f"{value:032x}"


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

    @classmethod
    def trusted(
        cls,
        type: str,
        session_id: str | None,
        data: dict[str, Any],
        tenant_id: str | None = None,
        experiment: str | None = None,
        variant: str | None = None,
    ) -> AnalyticsEvent:
        """Build an event from values known to be valid, without validation.

        The agent loop emits several events a turn; validating them would cost more than
        the rest of the turn's bookkeeping. Same result as the validated constructor.
        """
        event = cls.__new__(cls)
        object.__setattr__(
            event,
            "__dict__",
            {
                "event_id": new_event_id(),
                "type": type,
                "session_id": session_id,
                "data": data,
                "timestamp": datetime.now(UTC),
                "tenant_id": tenant_id,
                "experiment": experiment,
                "variant": variant,
            },
        )
        object.__setattr__(event, "__pydantic_fields_set__", _ALL_EVENT_FIELDS)
        object.__setattr__(event, "__pydantic_extra__", None)
        object.__setattr__(event, "__pydantic_private__", None)
        return event


_ALL_EVENT_FIELDS = frozenset(AnalyticsEvent.model_fields)


class ExportResult(BaseModel):
    """What an exporter did with one batch; the coordinator acts on it as follows.

    * ``success=True``, no ``failed_event_ids``: every event was stored.
    * ``success=True`` with ``failed_event_ids``: those events were refused for good (bad
      data); they are not retried but written to the dead-letter file, the rest counts as
      stored.
    * ``success=False`` with ``failed_event_ids``: only those events failed; the others
      were stored. When some were stored the exporter counts as working: the failed ids
      alone are retried a bounded number of times (``max_retries``), then dead-lettered,
      and the exporter is not marked down. When every id of the batch is listed (or the
      ids match none of its events) it is a failure of the whole batch, as below.
    * ``success=False`` without ``failed_event_ids``, an exception, or a timeout: nothing
      was stored and the exporter looks down; the batch is retried, then spooled to disk,
      the exporter backs off and later receives the spooled events again.

    ``exported_count`` and ``error`` are informative (logs, stats). Returning ``None``
    counts as full success. Exporters may receive an event twice (a retry after a lost
    acknowledgement, a spool replay): store it once, keyed by ``event_id``.
    """

    success: bool
    exported_count: int = 0
    error: str | None = None
    failed_event_ids: list[str] = Field(default_factory=list)


class IAnalyticsExporter(ABC):
    """Sends batches of events somewhere (a database, a file, a dashboard).

    ``export`` runs on the chat's event loop: it must not block (run a synchronous
    driver in a thread, or wrap the exporter in ``ThreadedExporter``). It is called with
    one batch at a time, an immutable sequence shared with other exporters.
    """

    @abstractmethod
    async def export(self, events: Sequence[AnalyticsEvent]) -> ExportResult:
        """Export one batch. Return a result rather than raise where possible: a result
        can name the events that failed (``failed_event_ids``, see :class:`ExportResult`),
        so one bad event does not make the whole exporter look down."""

    async def shutdown(self) -> None:  # noqa: B027 - optional hook
        """Release connections and files; called once when analytics stop."""
