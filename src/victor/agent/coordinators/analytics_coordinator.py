"""Collects analytics events and hands them to exporters in the background.

The chat loop calls :meth:`AnalyticsCoordinator.emit` for every event: a list append, under
a tenth of a microsecond. A background task moves events in batches to one *lane* per
exporter (see :mod:`victor.analytics.lanes`), so a slow or broken exporter never slows a
chat turn nor another exporter. What cannot be delivered yet (queue full, exporter down)
goes to an on-disk spool and is replayed later, also by the next process that starts.

Memory is bounded: ``max_queue`` events in the buffer, and per exporter ``max_queue``
queued plus ``max_spool_queue`` (default ``max_queue``) waiting for the spool writer; past
that (a disk slower than the traffic), events are dropped and counted. The spool of each
exporter is bounded by ``max_spool_bytes`` (oldest segments evicted, and counted).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import os
import time
import weakref
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

from victor.analytics.exporters.base import BaseAnalyticsExporter, BatchExportResult
from victor.analytics.exporters.console import ConsoleAnalyticsExporter
from victor.analytics.lanes import Lane, LaneConfig
from victor.analytics.spool import Spool
from victor.analytics.stats import (
    AnalyticsStats,
    ExporterStats,
    destination_of,
    lane_names,
    spool_name,
)
from victor.protocols.analytics import AnalyticsEvent, IAnalyticsExporter

logger = logging.getLogger("victor.analytics")

__all__ = [
    "AnalyticsCoordinator",
    "AnalyticsStats",
    "BaseAnalyticsExporter",
    "BatchExportResult",
    "ConsoleAnalyticsExporter",
    "ExporterStats",
]

_live: weakref.WeakSet[AnalyticsCoordinator] = weakref.WeakSet()


class _Exporters(list):  # type: ignore[type-arg]
    """The coordinator's exporters: any change flags the lanes for re-matching (by
    identity), a cheap check on the hot path."""

    changed = True


def _flagging(name: str) -> Any:
    method = getattr(list, name)

    def changed(self: _Exporters, *args: Any) -> Any:
        result = method(self, *args)
        self.changed = True
        return result

    changed.__name__ = name
    return changed


for _name in (
    "append",
    "extend",
    "insert",
    "remove",
    "pop",
    "clear",
    "__setitem__",
    "__delitem__",
    "__iadd__",
    "__imul__",
):
    setattr(_Exporters, _name, _flagging(_name))


class AnalyticsCoordinator:
    """Batches events in the background and delivers them to every exporter.

    ``emit`` never blocks and never raises. ``batch_size`` events or ``flush_interval``
    seconds, whichever comes first, make a batch. At most ``max_queue`` events wait in
    memory (also per exporter); more go to the spool under ``spool_dir`` (default
    ``Settings().data_dir / "spool" / "analytics"``), or are dropped and counted when
    ``spool=False``. ``await flush()`` delivers what is queued; ``await aclose()`` also
    replays the spool and shuts the exporters down.
    """

    DEFAULT_MAX_QUEUE = 100_000

    def __init__(
        self,
        exporters: Sequence[IAnalyticsExporter] | None = None,
        *,
        batch_size: int = 1000,
        flush_interval: float = 1.0,
        max_queue: int = DEFAULT_MAX_QUEUE,
        spool_dir: str | os.PathLike[str] | None = None,
        spool: bool = True,
        fsync: bool = True,
        max_retries: int = 2,
        retry_backoff: float = 0.1,
        max_backoff: float = 60.0,
        export_timeout: float = 30.0,
        close_timeout: float = 30.0,
        max_replay_attempts: int = 10,
        segment_bytes: int = 8 << 20,
        max_spool_bytes: int | None = 1 << 30,
        max_spool_queue: int | None = None,
    ) -> None:
        self._exporters = _Exporters(exporters or [])
        self.batch_size = max(1, batch_size)
        self.flush_interval = flush_interval
        self.max_queue = max(self.batch_size, max_queue)
        self.close_timeout = close_timeout
        self.spool_dir: Path | None = None
        self._spool_wanted, self._spool_dir_arg = spool, spool_dir
        self._segment_bytes, self._fsync = segment_bytes, fsync
        self._max_spool_bytes = max_spool_bytes
        self._config = LaneConfig(
            batch_size=self.batch_size,
            max_pending=self.max_queue,
            max_retries=max_retries,
            retry_backoff=retry_backoff,
            max_backoff=max_backoff,
            export_timeout=export_timeout,
            max_replay_attempts=max_replay_attempts,
            max_spool_queue=max_spool_queue or self.max_queue,
        )
        self._executor: ThreadPoolExecutor | None = None
        self._lanes: list[Lane] = []
        self._retired: list[Lane] = []  # lanes of exporters removed from the list
        self._buf: list[AnalyticsEvent] = []
        self._emitted = 0
        self._overflowed = 0
        self._dropped = 0
        self._last_drop_log = 0.0
        self._closed = False
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup: asyncio.Event | None = None
        # emit() takes its slow path once the buffer reaches this size: 1 until the
        # background task runs, then batch_size, then max_queue until the next drain.
        self._wake_at = 0
        self._enabled = False
        self._sync_lanes()
        _live.add(self)

    @property
    def exporters(self) -> list[IAnalyticsExporter]:
        """The exporters; append to (or change) this list to add (or remove) exporters."""
        return self._exporters

    @exporters.setter
    def exporters(self, value: Iterable[IAnalyticsExporter]) -> None:
        self._exporters = _Exporters(value)

    def _sync_lanes(self) -> None:
        """One lane per exporter in the list, matched by identity: new exporters get a lane,
        the lanes of removed ones finish their queue and stop."""
        self._exporters.changed = False
        if self._closed:
            return
        current = {id(e): e for e in self._exporters}
        for lane in [lane for lane in self._lanes if id(lane.exporter) not in current]:
            self._lanes.remove(lane)
            self._retired.append(lane)
            lane.close()
        known = {id(lane.exporter) for lane in self._lanes}
        added = [e for e in current.values() if id(e) not in known]
        if added:
            self._add_lanes(added)
        order = {key: i for i, key in enumerate(current)}
        self._lanes.sort(key=lambda lane: order[id(lane.exporter)])
        self._enabled = bool(self._lanes)
        if self._wake_at == 0 and self._enabled:
            self._wake_at = 1

    def _add_lanes(self, added: list[IAnalyticsExporter]) -> None:
        if self._spool_wanted and self.spool_dir is None:
            if self._spool_dir_arg is None:
                from victor.config import Settings

                self._spool_dir_arg = Settings().data_dir / "spool" / "analytics"
            self.spool_dir = Path(self._spool_dir_arg)
        everyone = [*self._lanes, *self._retired]
        taken = [lane.name for lane in everyone]
        spools = [lane.spool.directory.name for lane in everyone if lane.spool is not None]
        for exporter, name in zip(added, lane_names(added, taken), strict=True):
            lane_spool = None
            if self.spool_dir is not None and getattr(exporter, "spool", True):
                directory = spool_name(exporter, name, spools)
                spools.append(directory)
                lane_spool = Spool(
                    self.spool_dir / directory,
                    segment_bytes=self._segment_bytes,
                    fsync=self._fsync,
                    max_bytes=self._max_spool_bytes,
                    destination=destination_of(exporter),
                )
            lane = Lane(exporter, name, lane_spool, self._config, self._run_io, self._submit)
            self._lanes.append(lane)
            if self._task is not None and self._loop is not None:
                lane.start(self._loop)

    # -- the hot path -------------------------------------------------------------------

    @property
    def enabled(self) -> bool:
        """False when nothing would receive events: the caller need not build them."""
        if self._exporters.changed:
            self._sync_lanes()
        return self._enabled

    def emit(self, event: AnalyticsEvent) -> None:
        """Queue one event. Never blocks, never raises. Call it on the event loop's
        thread; from another thread use :meth:`emit_threadsafe`."""
        buf = self._buf
        buf.append(event)
        if len(buf) >= self._wake_at:
            self._emit_slow()

    def emit_threadsafe(self, event: AnalyticsEvent) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self.emit, event)
                return
        self.emit(event)

    def _emit_slow(self) -> None:
        try:
            buf = self._buf
            if self._exporters.changed:
                self._sync_lanes()
            if not self._lanes or self._closed:
                n = len(buf)
                buf.clear()
                if self._closed and (self._lanes or self._retired):
                    self._count_drop(n, "the coordinator is closed")
                return
            if self._task is None or self._loop is not asyncio._get_running_loop():
                self._start()
            n = len(buf)
            if n >= self.max_queue:
                # The loop is too busy to run the pump: hand the buffer to the lanes now.
                # Each queues what fits and passes only its excess to its spool writer.
                self._drain()
                return
            if n >= self.batch_size and self._wakeup is not None:
                self._wakeup.set()
                self._wake_at = self.max_queue
        except Exception:  # never let analytics break a chat turn
            logger.exception("analytics emit failed")

    def _count_drop(self, n: int, why: str) -> None:
        self._dropped += n
        now = time.monotonic()
        if now - self._last_drop_log > 60.0:
            self._last_drop_log = now
            logger.warning("analytics: dropped %d event(s) so far: %s", self._dropped, why)

    # -- background ---------------------------------------------------------------------

    def _ensure_started(self) -> None:
        if self._task is None or self._loop is not asyncio.get_running_loop():
            self._start()

    def _start(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop yet: the first flush() or emit on a loop starts it
            self._wake_at = self.batch_size
            return
        self._loop = loop
        self._wakeup = asyncio.Event()
        for lane in self._lanes:
            if lane.task is None or lane.task.done() or lane.task.get_loop() is not loop:
                lane.start(loop)
        self._task = loop.create_task(self._pump(), name="victor-analytics-pump")
        self._wake_at = self.batch_size

    async def _pump(self) -> None:
        assert self._wakeup is not None
        wakeup = self._wakeup
        try:
            while True:
                with contextlib.suppress(TimeoutError):  # a cancellation is never swallowed
                    async with asyncio.timeout(self.flush_interval):
                        await wakeup.wait()
                wakeup.clear()
                self._drain()
        finally:
            self._task = None
            self._wake_at = 0 if self._closed or not self._lanes else 1

    def _drain(self) -> None:
        """Move the buffer to the lanes, in immutable batches shared by all lanes."""
        if self._exporters.changed:
            self._sync_lanes()
        buf, self._buf = self._buf, []
        if self._task is not None and not self._closed:
            self._wake_at = self.batch_size
        if not buf:
            return
        self._emitted += len(buf)
        size = self.batch_size
        for start in range(0, len(buf), size):
            batch = tuple(buf[start : start + size])
            overflowed = False
            for lane in self._lanes:
                overflowed = lane.offer(batch) or overflowed
            if overflowed:
                self._overflowed += len(batch)

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="victor-analytics-spool")
        return self._executor

    def _submit(self, fn: Any) -> Future[Any]:
        """Blocking spool work, queued in order on the coordinator's own thread."""
        return self._pool().submit(fn)

    async def _run_io(self, fn: Any, *args: Any) -> Any:
        """Blocking spool work, on the coordinator's own thread, never on the loop."""
        return await asyncio.get_running_loop().run_in_executor(self._pool(), partial(fn, *args))

    # -- control ------------------------------------------------------------------------

    async def flush(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109
        """Deliver (or spool) everything emitted so far. True when every event emitted so
        far reached every exporter (none spooled, dropped or rejected, none waiting in a
        spool); False otherwise, or when ``timeout`` ran out first."""
        if self._exporters.changed:
            self._sync_lanes()
        if not self._lanes:
            self._buf.clear()
            return True
        lanes = list(self._lanes)
        marks = [lane.mark() for lane in lanes]
        if not self._closed:
            self._ensure_started()
        self._drain()
        try:
            async with asyncio.timeout(timeout):
                await asyncio.gather(*(lane.wait_idle() for lane in lanes))
        except TimeoutError:
            logger.warning("analytics flush timed out after %ss", timeout)
            return False
        return all(lane.delivered(mark) for lane, mark in zip(lanes, marks, strict=True))

    async def aclose(self) -> None:
        """Flush, replay the spool where the exporter is up, stop, shut exporters down.
        What is still undelivered after ``close_timeout`` is left in the spool."""
        if self._closed:
            return
        self._sync_lanes()
        self._ensure_started()
        self._closed = True  # from here on emit() counts drops; what came before is drained
        self._enabled = False
        self._wake_at = 0
        self._drain()
        lanes = [*self._lanes, *self._retired]
        tasks = [lane.task for lane in lanes if lane.task is not None]
        for lane in lanes:
            lane.close()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=self.close_timeout)
            for task in pending:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for lane in lanes:
            with contextlib.suppress(Exception):
                await lane._spool(lane.leftovers(), "closing before they were delivered")
            if lane.spool is not None:
                with contextlib.suppress(Exception):
                    await self._run_io(lane.spool.close)
        await asyncio.gather(*(self._shutdown(lane) for lane in lanes))
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None
        _live.discard(self)

    async def _shutdown(self, lane: Lane) -> None:
        try:
            async with asyncio.timeout(self.close_timeout):
                await lane.exporter.shutdown()
        except Exception as exc:
            logger.warning("analytics exporter %s: shutdown failed: %s", lane.name, exc)

    async def __aenter__(self) -> AnalyticsCoordinator:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    @property
    def stats(self) -> AnalyticsStats:
        exporters = {lane.name: lane.snapshot() for lane in [*self._lanes, *self._retired]}
        queued = len(self._buf)
        return AnalyticsStats(
            emitted=self._emitted + queued + self._dropped,
            queued=queued + sum(s.pending + s.spool_queue for s in exporters.values()),
            overflowed=self._overflowed,
            dropped=self._dropped + sum(s.dropped for s in exporters.values()),
            exporters=exporters,
        )

    @property
    def dropped(self) -> int:
        return self.stats.dropped

    def _spill_at_exit(self) -> None:
        """The process is exiting (or the coordinator was dropped) without aclose(): keep
        what is in memory on disk, written here and now."""
        if self._closed:
            return
        self._closed = True
        memory, self._buf = self._buf, []
        for lane in [*self._lanes, *self._retired]:
            events = memory + lane.leftovers()
            if events and lane.spool is not None:
                with contextlib.suppress(Exception):
                    lane.spool.append(events)
            if lane.spool is not None:
                with contextlib.suppress(Exception):
                    lane.spool.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self._spill_at_exit()

    @classmethod
    def from_settings(cls, settings: Any = None, **kwargs: Any) -> AnalyticsCoordinator:
        """The embedded default: a SQLite file ``analytics.db`` in ``settings.data_dir``."""
        from victor.analytics.exporters.sqlite import SQLiteAnalyticsExporter
        from victor.config import Settings

        settings = settings or Settings()
        if not getattr(settings, "enable_analytics", True):
            return cls([], **kwargs)
        kwargs.setdefault("spool_dir", Path(settings.data_dir) / "spool" / "analytics")
        return cls([SQLiteAnalyticsExporter(Path(settings.data_dir) / "analytics.db")], **kwargs)


@atexit.register
def _spill_all_at_exit() -> None:
    for coordinator in list(_live):
        with contextlib.suppress(Exception):
            coordinator._spill_at_exit()
