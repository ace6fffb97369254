"""Analytics events and the exporter interface."""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal

import uuid_utils
from pydantic import BaseModel, Field

#: The event types (constants and builders in :mod:`victor.analytics.events`).
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
    "metric",
]


def new_event_id() -> str:
    """A UUIDv7 (RFC 9562): unique, and sorting by it sorts by creation time. From
    ``uuid-utils`` (Rust, safe across ``fork``)."""
    return str(uuid_utils.uuid7())


def new_session_id() -> str:
    """A random (version 4) UUID in hex, for conversations started without an id."""
    return uuid.uuid4().hex


def _now() -> datetime:
    return datetime.now(UTC)


class AnalyticsEvent(BaseModel):
    """One thing that happened, for exporters and reports.

    The chat loop builds events with the typed builders of :mod:`victor.analytics.events`
    (model and token fields in ``data`` use the OpenTelemetry GenAI names such as
    ``gen_ai.request.model`` and ``gen_ai.usage.input_tokens``).
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
    """What an exporter did with one batch; the coordinator acts on it as follows.

    * ``success=True`` and no ids listed: every event was stored.
    * ``rejected_event_ids``: events refused for good (bad data). They are counted and
      logged with the reason; never retried.
    * ``success=False`` with ``failed_event_ids``: only those events failed, the others
      were stored. They are retried a bounded number of times (``max_retries``), then
      rejected as above; the exporter is not taken for down.
    * ``success=False`` without usable ids, an exception or a timeout: nothing was stored
      and the exporter looks down; the batch is retried with back-off. So when nothing was
      stored, name no ids, not even rejected ones: naming ids says the rest was stored.

    ``exported_count`` and ``error`` are informative (logs, stats). Returning ``None``
    counts as full success. Exporters may receive an event twice (a retry after a lost
    acknowledgement, an outbox replay): store it once, keyed by ``event_id``.
    """

    success: bool
    exported_count: int = 0
    error: str | None = None
    failed_event_ids: list[str] = Field(default_factory=list)
    rejected_event_ids: list[str] = Field(default_factory=list)


class IAnalyticsExporter(ABC):
    """Sends batches of events somewhere (a database, a file, a dashboard).

    ``export`` runs on the chat's event loop: it must not block (run a synchronous
    driver with ``asyncio.to_thread``). It is called with
    one batch at a time, an immutable sequence shared with other exporters.
    """

    @abstractmethod
    async def export(self, events: Sequence[AnalyticsEvent]) -> ExportResult:
        """Export one batch. Return a result rather than raise where possible: a result
        can name the events that failed (see :class:`ExportResult`), so one bad event
        does not make the whole exporter look down."""

    async def shutdown(self) -> None:  # noqa: B027 - optional hook
        """Release connections and files; called once when analytics stop."""
