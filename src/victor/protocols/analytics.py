"""Analytics events and the exporter interface."""

from __future__ import annotations

import os
import threading
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

_lock = threading.Lock()
_last_ms = 0
_seq = 0
_pool = b""
_pos = 0
_hex = ""  # random hex for event ids, each 16-character slot with the variant bits set
_hex_pos = 0
_prefix_ms = -1
_prefix = ""


def _forget_state() -> None:
    """A forked child must not replay its parent's randomness or id counter."""
    global _lock, _pool, _pos, _hex, _hex_pos, _last_ms, _seq, _prefix_ms
    _lock = threading.Lock()  # the parent's may have been held by another thread
    _pool, _pos, _hex, _hex_pos, _last_ms, _seq, _prefix_ms = b"", 0, "", 0, 0, 0, -1


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_state)


def random_bytes(n: int) -> bytes:
    """Cryptographically random bytes, read from the OS 4 KiB at a time: one
    ``getrandom`` call costs about as much as the rest of building an event."""
    global _pool, _pos
    with _lock:
        if _pos + n > len(_pool):
            _pool = os.urandom(max(4096, n))
            _pos = 0
        chunk = _pool[_pos : _pos + n]
        _pos += n
    return chunk


def _random_hex() -> str:
    """4 KiB of OS randomness as hex, the RFC 9562 variant (``10``) set in the first byte
    of every 8: each 16-character slot is the last 64 bits of an id."""
    raw = bytearray(os.urandom(4096))
    raw[0::8] = bytes((b & 0x3F) | 0x80 for b in raw[0::8])
    return raw.hex()


def new_event_id() -> str:
    """A UUIDv7: unique, and sorting by it sorts by creation time (RFC 9562).

    48 bits of Unix milliseconds, a 12-bit counter for ids of the same millisecond (so the
    ids of one process stay ordered), 62 random bits. Built from text pieces (the time
    part is formatted once per millisecond, the random part once per 512 ids): an event
    id is made for every analytics event, on the chat path."""
    global _last_ms, _seq, _hex, _hex_pos, _prefix_ms, _prefix
    ms = time.time_ns() // 1_000_000
    with _lock:
        if ms <= _last_ms:
            ms = _last_ms
            _seq += 1
            if _seq > 0xFFF:  # counter spent: borrow the next millisecond
                ms += 1
                _seq = 0
        else:
            _seq = 0
        _last_ms = ms
        if ms != _prefix_ms:
            t = f"{ms & 0xFFFF_FFFF_FFFF:012x}"
            _prefix, _prefix_ms = f"{t[:8]}-{t[8:]}-7", ms
        pos = _hex_pos
        if pos + 16 > len(_hex):
            _hex, pos = _random_hex(), 0
        _hex_pos = pos + 16
        return f"{_prefix}{_seq:03x}-{_hex[pos : pos + 4]}-{_hex[pos + 4 : pos + 16]}"


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
        event = _new_object(cls)
        _set_attr(
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
        _FIELDS_SET.__set__(event, _ALL_EVENT_FIELDS)  # the slots BaseModel declares
        _EXTRA.__set__(event, None)
        _PRIVATE.__set__(event, None)
        return event


_ALL_EVENT_FIELDS = frozenset(AnalyticsEvent.model_fields)
_new_object, _set_attr = object.__new__, object.__setattr__
_FIELDS_SET = vars(BaseModel)["__pydantic_fields_set__"]
_EXTRA = vars(BaseModel)["__pydantic_extra__"]
_PRIVATE = vars(BaseModel)["__pydantic_private__"]


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
