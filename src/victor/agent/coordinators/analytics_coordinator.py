"""Collects analytics events and hands them to exporters in the background."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from victor.protocols import AnalyticsEvent, ExportResult, IAnalyticsExporter

logger = logging.getLogger(__name__)

BaseAnalyticsExporter = IAnalyticsExporter


class ConsoleAnalyticsExporter(IAnalyticsExporter):
    """Prints each event as one JSON line."""

    async def export(self, events: Sequence[AnalyticsEvent]) -> ExportResult:
        for event in events:
            print(event.model_dump_json())
        return ExportResult(success=True, exported_count=len(events))


class AnalyticsCoordinator:
    """Queues events and exports them in batches from a background task.

    :meth:`emit` never blocks and never raises: a chat turn does not wait for analytics.
    """

    def __init__(
        self,
        exporters: Sequence[IAnalyticsExporter] | None = None,
        *,
        batch_size: int = 500,
        flush_interval: float = 1.0,
        max_queue: int = 100_000,
    ) -> None:
        self.exporters = list(exporters or [])
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_queue = max_queue
        self.dropped = 0
        self._pending: list[AnalyticsEvent] = []
        self._task: asyncio.Task[None] | None = None
        self._wakeup: asyncio.Event | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.exporters)

    def emit(self, event: AnalyticsEvent) -> None:
        if not self.exporters:
            return
        if len(self._pending) >= self.max_queue:
            self.dropped += 1
            return
        self._pending.append(event)
        if self._task is None:
            try:
                self._wakeup = asyncio.Event()
                self._task = asyncio.get_running_loop().create_task(self._run())
            except RuntimeError:  # no running loop: exported at the next flush
                self._wakeup = None
        elif len(self._pending) >= self.batch_size and self._wakeup is not None:
            self._wakeup.set()

    async def _run(self) -> None:
        assert self._wakeup is not None
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), self.flush_interval)
            self._wakeup.clear()
            await self.flush()

    async def flush(self) -> None:
        while self._pending:
            batch, self._pending = (
                self._pending[: self.batch_size],
                self._pending[self.batch_size :],
            )
            for exporter in self.exporters:
                try:
                    result = await exporter.export(batch)
                    if not result.success:
                        logger.warning("analytics exporter %r failed: %s", exporter, result.error)
                except Exception:
                    logger.exception("analytics exporter %r raised", exporter)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()
        for exporter in self.exporters:
            with contextlib.suppress(Exception):
                await exporter.shutdown()
