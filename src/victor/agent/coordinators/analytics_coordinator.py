"""Collects analytics events and hands them to exporters in the background.

The chat loop calls :meth:`AnalyticsCoordinator.emit` for every event: a list append. A
background task delivers them in batches: to a **local** exporter (SQLite, JSON lines, the
console) through its own bounded queue, so a slow or failing exporter slows neither a chat
turn nor another exporter; to a **remote** one (``outbox = True``: PostgreSQL,
OpenTelemetry) through the :mod:`~victor.analytics.outbox`, which the next process drains
too. Past ``max_queue`` events are dropped, counted in :attr:`stats` and logged.

**What can be lost** when the process dies without :meth:`aclose` (SIGKILL, a crash): the
events still in memory, at most ``flush_interval`` seconds' or ``batch_size`` events'
worth, and those queued for local exporters; never a batch in the outbox. Smaller values
shrink that window; ``await flush()`` closes it at a point of your choice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from victor.analytics.delivery import Batch, Delivery, to_models
from victor.analytics.encoding import EventEncodeError, json_lines, rejection_message
from victor.analytics.exporters.base import BaseAnalyticsExporter  # noqa: F401 - re-exported
from victor.analytics.exporters.jsonl import ConsoleAnalyticsExporter  # noqa: F401 - re-exported
from victor.analytics.outbox import Outbox
from victor.analytics.stats import AnalyticsStats, ExporterStats
from victor.protocols.analytics import IAnalyticsExporter

logger = logging.getLogger("victor.analytics")


class AnalyticsCoordinator:
    """Batches events and delivers them to every exporter (a plain list: add or remove
    exporters at any time). ``batch_size`` events or ``flush_interval`` seconds, whichever
    comes first, make a batch. ``outbox_path`` defaults to ``Settings().data_dir /
    "analytics-outbox.db"``, created by the first remote exporter's batch.
    """

    DEFAULT_MAX_QUEUE = 100_000

    def __init__(
        self,
        exporters: Sequence[IAnalyticsExporter] | None = None,
        *,
        batch_size: int = 1000,
        flush_interval: float = 0.1,
        max_queue: int = DEFAULT_MAX_QUEUE,
        outbox_path: str | os.PathLike[str] | None = None,
        max_retries: int = 2,
        retry_backoff: float = 0.1,
        max_backoff: float = 60.0,
        export_timeout: float = 30.0,
        close_timeout: float = 30.0,
    ) -> None:
        self.exporters: list[IAnalyticsExporter] = list(exporters or [])
        self.batch_size = max(1, batch_size)
        self.flush_interval = flush_interval
        self.max_queue = max(self.batch_size, max_queue)
        self._outbox_path = outbox_path
        self._outbox: Outbox | None = None
        self.max_retries, self.retry_backoff = max_retries, retry_backoff
        self.max_backoff = max_backoff
        self.export_timeout, self.close_timeout = export_timeout, close_timeout
        self._deliveries: dict[int, Delivery] = {}
        self._retired: list[Delivery] = []
        self._buf: list[Any] = []
        self._wake_at = 1  # emit() takes its slow path at this length (1: start the task)
        self._emitted = self._dropped = 0
        self._last_drop_log = -1e9
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._pool: ThreadPoolExecutor | None = None

    @property
    def enabled(self) -> bool:
        """False when nothing would receive events: the caller need not build them."""
        return bool(self.exporters) and not self._closed

    def emit(self, event: Any) -> None:
        """Queue one event (an ``AnalyticsEvent`` or a builder's ``Event``). Never blocks,
        never raises; call it on the event loop's thread."""
        buf = self._buf
        buf.append(event)
        if len(buf) >= self._wake_at:
            self._emit_slow()

    def _emit_slow(self) -> None:
        try:
            buf = self._buf
            if self._closed or not self.exporters:
                if self._closed:
                    self.count_drop(None, len(buf), "the coordinator is closed")
                buf.clear()
                return
            if len(buf) > self.max_queue:
                buf.pop()
                self.count_drop(None, 1, f"{self.max_queue} events already wait")
                return
            try:
                self._ensure_started()
            except RuntimeError:  # no loop yet: keep them until one runs (bounded)
                self._wake_at = self.batch_size
                return
            if len(buf) >= self.batch_size:
                self._wakeup.set()
                self._wake_at = self.max_queue
        except Exception:  # never let analytics break a chat turn
            logger.exception("analytics emit failed")

    def count_drop(self, stats: ExporterStats | None, n: int, why: str) -> None:
        """Count lost events, and say so (at most one warning every 10 seconds)."""
        if stats is None:
            self._dropped += n
        else:
            stats.dropped += n
        now = time.monotonic()
        if now - self._last_drop_log >= 10.0:
            self._last_drop_log = now
            where = "" if stats is None else f" for exporter {stats.name}"
            msg = "analytics: %d event(s) dropped so far%s: %s (see AnalyticsCoordinator.stats)"
            logger.warning(msg, self.stats.dropped, where, why)

    def _ensure_started(self) -> None:
        """Start the background tasks on the running loop (a new loop: afresh)."""
        loop = asyncio.get_running_loop()
        if self._task is not None and self._loop is loop:
            return
        self._loop, self._wakeup, self._drain_lock = loop, asyncio.Event(), asyncio.Lock()
        for delivery in self._deliveries.values():
            delivery.start()
        self._task = loop.create_task(self._pump(), name="victor-analytics-pump")
        self._wake_at = self.batch_size

    async def _pump(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):  # a cancellation is never swallowed
                async with asyncio.timeout(self.flush_interval):
                    await self._wakeup.wait()
            self._wakeup.clear()
            try:
                await self._drain()
            except Exception:  # a bug must not stop deliveries
                logger.exception("analytics: delivering a batch failed")

    def _sync(self) -> None:
        """One delivery per exporter in the list, matched by identity."""
        current = {id(e): e for e in self.exporters}
        for key in [k for k in self._deliveries if k not in current]:
            retired = self._deliveries.pop(key)
            retired.close()
            self._retired.append(retired)
        taken = {d.name for d in [*self._deliveries.values(), *self._retired]}
        for key, exporter in current.items():
            if key not in self._deliveries:
                base = getattr(exporter, "name", None) or type(exporter).__name__
                name, n = base, 1
                while name in taken:
                    n += 1
                    name = f"{base}-{n}"
                taken.add(name)
                delivery = self._deliveries[key] = Delivery(self, exporter, name)
                if self._task is not None:
                    delivery.start()

    async def _drain(self) -> None:
        """Hand what was emitted to the deliveries: local queues, and the outbox."""
        async with self._drain_lock:
            self._sync()
            buf, self._buf = self._buf, []
            if not self._closed:
                self._wake_at = self.batch_size
            self._emitted += len(buf)
            deliveries = list(self._deliveries.values())
            remote = [d for d in deliveries if d.remote]
            for start in range(0, len(buf), self.batch_size):
                batch, models = tuple(buf[start : start + self.batch_size]), None
                for delivery in deliveries:
                    if not delivery.remote:
                        if not delivery.takes_records and models is None:
                            models = to_models(batch)
                        delivery.offer(batch if delivery.takes_records else models)
                if remote:
                    await self._to_outbox(batch, remote)

    async def _to_outbox(self, batch: Batch, remote: list[Delivery]) -> None:
        try:
            bad = await self.io(self._write_outbox, batch, [d.key for d in remote])
        except Exception as exc:
            for delivery in remote:
                self.count_drop(delivery.stats, len(batch), f"the outbox failed: {exc}")
            return
        for delivery in remote:
            delivery.stats.outboxed += len(batch) - len(bad)
            delivery.handed_over()
            if bad:
                delivery.reject([e.event_id for e in bad], rejection_message(bad))

    def _write_outbox(self, batch: Batch, keys: list[str]) -> list[EventEncodeError]:
        """The batch into the outbox (on its thread); the errors of events it cannot encode."""
        payload, bad = json_lines(batch)
        if payload:
            self.outbox.put([(key, payload) for key in keys])
        return bad

    @property
    def outbox(self) -> Outbox:
        if self._outbox is None:
            from victor.config import Settings

            path = self._outbox_path or Settings().data_dir / "analytics-outbox.db"
            self._outbox = Outbox(path)
        return self._outbox

    async def io(self, fn: Any, *args: Any) -> Any:
        """Blocking outbox work, in order, on the coordinator's one thread."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="victor-analytics-outbox")
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def flush(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109
        """Deliver everything emitted so far: True when all of it reached every exporter
        (none dropped or rejected, no destination down), False otherwise or on timeout."""
        if not self.exporters and not self._deliveries:
            self._buf.clear()
            return True
        self._ensure_started()
        lost = self._lost()
        try:
            async with asyncio.timeout(timeout):
                await self._drain()
                await asyncio.gather(*(d.idle.wait() for d in self._deliveries.values()))
        except TimeoutError:
            logger.warning("analytics flush timed out after %ss", timeout)
            return False
        return self._lost() == lost and all(s.healthy for s in self.stats.exporters.values())

    def _lost(self) -> int:
        stats = self.stats
        return stats.dropped + sum(s.rejected for s in stats.exporters.values())

    async def aclose(self) -> None:
        """Deliver what is queued, drain the outbox where the destination is up (within
        ``close_timeout``) and shut the exporters down; the rest waits in the outbox."""
        if self._closed:
            return
        self._ensure_started()
        self._closed, self._wake_at = True, 0  # from here on emit() counts drops
        await self._drain()
        deliveries = [*self._deliveries.values(), *self._retired]
        for delivery in deliveries:
            delivery.close()
        tasks = [d.task for d in deliveries if d.task is not None]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=self.close_timeout)
            for task in pending:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for delivery in deliveries:
            if delivery.stats.queued:
                self.count_drop(delivery.stats, delivery.stats.queued, "closed before delivery")
                delivery.stats.queued = 0
            try:
                async with asyncio.timeout(self.close_timeout):
                    await delivery.exporter.shutdown()
            except Exception as exc:
                logger.warning("analytics exporter %s: shutdown failed: %s", delivery.name, exc)
        if self._outbox is not None:
            await self.io(self._outbox.close)
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None

    async def __aenter__(self) -> AnalyticsCoordinator:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    @property
    def stats(self) -> AnalyticsStats:
        if not self._closed:
            self._sync()
        deliveries = [*self._deliveries.values(), *self._retired]
        exporters = {d.name: replace(d.stats) for d in deliveries}
        queued = len(self._buf)
        return AnalyticsStats(
            emitted=self._emitted + queued + self._dropped,
            queued=queued + sum(s.queued for s in exporters.values()),
            dropped=self._dropped + sum(s.dropped for s in exporters.values()),
            exporters=exporters,
        )

    @classmethod
    def from_settings(cls, settings: Any = None, **kwargs: Any) -> AnalyticsCoordinator:
        """The embedded default: a SQLite file ``analytics.db`` in ``settings.data_dir``."""
        from victor.analytics.exporters.sqlite import SQLiteAnalyticsExporter
        from victor.config import Settings

        settings = settings or Settings()
        if not getattr(settings, "enable_analytics", True):
            return cls([], **kwargs)
        data_dir = Path(settings.data_dir)
        kwargs.setdefault("outbox_path", data_dir / "analytics-outbox.db")
        return cls([SQLiteAnalyticsExporter(data_dir / "analytics.db")], **kwargs)
