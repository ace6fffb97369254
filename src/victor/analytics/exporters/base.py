"""The base classes for exporters."""

from __future__ import annotations

import asyncio
from abc import abstractmethod
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from victor.analytics.encoding import EventEncodeError, rejection_message
from victor.protocols.analytics import AnalyticsEvent, ExportResult, IAnalyticsExporter


def partial_result(exported: int, rejected: Sequence[EventEncodeError]) -> ExportResult:
    """Everything that could be exported was; ``rejected`` never can be (bad data)."""
    if not rejected:
        return ExportResult(success=True, exported_count=exported)
    return ExportResult(
        success=False,
        exported_count=exported,
        error=rejection_message(rejected),
        rejected_event_ids=[e.event_id for e in rejected],
    )


class BaseAnalyticsExporter(IAnalyticsExporter):
    """Subclass this to send events somewhere: implement :meth:`export`, returning a result
    rather than raising where you can (see :class:`ExportResult`).

    ``name`` (stable across restarts) tells two exporters of one class apart in the stats.
    A remote destination (a database, a collector) sets ``outbox = True``, so an outage or a
    restart loses nothing, and ``destination`` (a URL without its password), which keeps its
    batches apart in the outbox. ``takes_records = True``: the exporter reads events only
    through their attributes and gets the chat loop's records unconverted. Blocking calls
    go to a thread (see :class:`BlockingWriteExporter`).
    """

    name: str | None = None
    outbox: bool = False
    destination: str | None = None
    takes_records: bool = False

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class BlockingWriteExporter(BaseAnalyticsExporter):
    """For exporters whose writes block (a file, ``sqlite3``): :meth:`_export` writes each
    batch on the exporter's own thread, in order, and :meth:`_close` releases what that
    thread holds, on that thread, at shutdown."""

    takes_records = True
    _executor: ThreadPoolExecutor | None = None

    async def export(self, events: Sequence[AnalyticsEvent]) -> ExportResult:
        if self._executor is None:
            thread = f"victor-{type(self).__name__}"
            self._executor = ThreadPoolExecutor(1, thread_name_prefix=thread)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._export, list(events))

    @abstractmethod
    def _export(self, events: list[Any]) -> ExportResult:
        """Write one batch (on the exporter's thread)."""

    @abstractmethod
    def _close(self) -> None:
        """Release the file or connection (on the exporter's thread)."""

    async def shutdown(self) -> None:
        if self._executor is None:
            return
        executor, self._executor = self._executor, None
        await asyncio.get_running_loop().run_in_executor(executor, self._close)
        executor.shutdown(wait=False)
