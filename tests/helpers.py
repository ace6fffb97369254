"""Small test doubles shared by the test modules."""

from __future__ import annotations

from collections.abc import Sequence

from victor.protocols import AnalyticsEvent, ExportResult, IAnalyticsExporter


class CollectingExporter(IAnalyticsExporter):
    """Keeps every exported event in memory."""

    def __init__(self) -> None:
        self.events: list[AnalyticsEvent] = []
        self.closed = False

    async def export(self, events: Sequence[AnalyticsEvent]) -> ExportResult:
        self.events.extend(events)
        return ExportResult(success=True, exported_count=len(events))

    async def shutdown(self) -> None:
        self.closed = True

    def of_type(self, kind: str) -> list[AnalyticsEvent]:
        return [e for e in self.events if e.type == kind]
