"""The base class for exporters, and the richer result Victor's own exporters return."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import Field

from victor.analytics.events import EventEncodeError, rejection_message
from victor.protocols.analytics import ExportResult, IAnalyticsExporter


class BatchExportResult(ExportResult):
    """An :class:`ExportResult` that also says which failures are permanent.

    ``rejected_event_ids`` are events that can never be exported (data that is not JSON,
    a missing field): the coordinator dead-letters them instead of retrying. The other ids
    in ``failed_event_ids`` are worth retrying.
    """

    rejected_event_ids: list[str] = Field(default_factory=list)

    @classmethod
    def partial(cls, exported: int, rejected: Sequence[EventEncodeError]) -> BatchExportResult:
        """Everything that could be exported was; ``rejected`` could not."""
        if not rejected:
            return cls(success=True, exported_count=exported)
        ids = [e.event_id for e in rejected]
        return cls(
            success=False,
            exported_count=exported,
            error=rejection_message(rejected),
            failed_event_ids=ids,
            rejected_event_ids=ids,
        )


class BaseAnalyticsExporter(IAnalyticsExporter):
    """Subclass this to send events somewhere.

    Implement :meth:`export`; return a result instead of raising where you can. Set
    ``name`` (stable across restarts) when you run two exporters of one class: the
    coordinator keeps a spool of undelivered events per name. Set ``spool = False`` for
    an exporter whose events are not worth keeping when it fails (a console printer).
    """

    name: str | None = None
    spool: bool = True

    async def shutdown(self) -> None:
        """Nothing to release by default."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"
