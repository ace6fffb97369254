"""What feeds the hub: an analytics exporter in the process that chats, or a tail of the
analytics store for a dashboard that runs on its own (``victor dashboard --db``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from typing import Any, Protocol

from victor.analytics.exporters.base import BaseAnalyticsExporter
from victor.dashboard.protocol import to_wire
from victor.dashboard.store import EventStore
from victor.protocols.analytics import ExportResult

logger = logging.getLogger("victor.dashboard")


class Bus(Protocol):
    async def publish(self, events: Sequence[dict[str, Any]]) -> None: ...


class DashboardExporter(BaseAnalyticsExporter):
    """Publishes every batch to the dashboards (through ``bus``). A live view, not a
    store: it never fails a batch, and events are in the store anyway."""

    name = "dashboard"
    takes_records = True

    def __init__(self, bus: Bus) -> None:
        self.bus = bus

    async def export(self, events: Sequence[Any]) -> ExportResult:
        wire = []
        for event in events:
            try:
                wire.append(to_wire(event))
            except (AttributeError, TypeError, ValueError) as exc:
                logger.debug("dashboard: event skipped (%s)", exc)
        await self.bus.publish(wire)
        return ExportResult(success=True, exported_count=len(wire))


class StoreTail:
    """Follows the analytics store: every ``interval`` seconds, publishes the events
    stored since the last look. Events reach the store up to a flush interval late, so
    each look goes back ``lag`` seconds and skips the events already published."""

    def __init__(
        self, store: EventStore, bus: Bus, *, interval: float = 0.5, lag: float = 30.0
    ) -> None:
        self.store, self.bus = store, bus
        self.interval, self.lag = interval, lag
        self._seen: dict[str, float] = {}
        self._since = time.time()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="victor-dashboard-tail")

    async def poll(self) -> int:
        """One look at the store; returns how many events were new."""
        rows = await self.store.since(self._since - self.lag)
        fresh = [e for e in rows if e["id"] not in self._seen]
        now = time.time()
        for event in fresh:
            self._seen[event["id"]] = event["ts"] / 1000
        self._since = max([now - 1.0, *(e["ts"] / 1000 for e in fresh)])
        horizon = self._since - 2 * self.lag
        if len(self._seen) > 10_000:
            self._seen = {k: v for k, v in self._seen.items() if v >= horizon}
        if fresh:
            await self.bus.publish(fresh)
        return len(fresh)

    async def _run(self) -> None:
        while True:
            try:
                await self.poll()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the store is busy or away: try again next time
                logger.warning("dashboard: reading %s failed: %s", self.store.url, exc)
            await asyncio.sleep(self.interval)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
