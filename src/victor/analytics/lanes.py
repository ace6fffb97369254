"""One delivery lane per exporter: its own queue, task, retries, spool and health.

Lanes are what keep exporters apart: a slow exporter only fills its own queue (which then
spills to its own spool), a failing one only backs off its own lane.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from victor.analytics.events import event_label, safe_repr_line
from victor.analytics.spool import Segment, Spool
from victor.analytics.stats import ExporterStats
from victor.protocols.analytics import AnalyticsEvent, ExportResult, IAnalyticsExporter

logger = logging.getLogger("victor.analytics")

RunIO = Callable[..., Awaitable[Any]]


@dataclass(slots=True)
class LaneConfig:
    batch_size: int = 1000
    max_pending: int = 100_000
    max_retries: int = 2
    retry_backoff: float = 0.1
    max_backoff: float = 60.0
    export_timeout: float = 30.0
    max_replay_attempts: int = 10


def _classify(
    result: Any, batch: Sequence[AnalyticsEvent]
) -> tuple[list[AnalyticsEvent], list[AnalyticsEvent], str | None]:
    """Split a batch after an export into (rejected for good, worth retrying, error)."""
    if result is None or not isinstance(result, ExportResult):
        return [], [], None  # an exporter that returns nothing is taken at its word
    if result.success and not result.failed_event_ids:
        return [], [], None
    rejected_ids = set(getattr(result, "rejected_event_ids", None) or ())
    failed_ids = set(result.failed_event_ids or ()) - rejected_ids
    if result.success:  # "success" means: do not retry this batch
        rejected_ids |= failed_ids
        failed_ids = set()
    elif not failed_ids and not rejected_ids:
        return [], list(batch), result.error or "export failed"
    rejected = [e for e in batch if event_label(e) in rejected_ids]
    retry = [e for e in batch if event_label(e) in failed_ids]
    return rejected, retry, result.error


class Lane:
    """Delivers batches to one exporter; undeliverable ones go to its spool."""

    def __init__(
        self,
        exporter: IAnalyticsExporter,
        name: str,
        spool: Spool | None,
        config: LaneConfig,
        run_io: RunIO,
    ) -> None:
        self.exporter = exporter
        self.name = name
        self.spool = spool
        self.config = config
        self._io = run_io
        self.stats = ExporterStats(name)
        self._pending: deque[list[AnalyticsEvent]] = deque()
        self._pending_events = 0
        self._inflight: list[AnalyticsEvent] | None = None
        self._writes: set[asyncio.Future[Any]] = set()
        self._down_until = 0.0
        self._backoff = 0.0
        self._replay_at = 0.0
        self._replay_backoff = 0.0
        self._last_drop_log = -1e9
        self._spool_dirty = spool is not None  # look at the spool at start
        self._spool_writes = 0  # bumped by each write: a replay round may not miss one
        self._closing = False
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    # -- called by the coordinator, on the loop thread --------------------------------

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """(Re)start the task on ``loop``; a batch cut off by a closed loop is redone."""
        if self._inflight is not None:
            self._pending.appendleft(self._inflight)
            self._inflight = None
        self._wake, self._idle = asyncio.Event(), asyncio.Event()
        self._writes = set()
        self.task = loop.create_task(self._run(), name=f"victor-analytics:{self.name}")

    def offer(self, batch: list[AnalyticsEvent]) -> None:
        """Queue a batch, or spool it when the lane is down or its queue is full."""
        down = self._down_until and self.spool is not None  # without a spool: keep trying
        if down or self._pending_events + len(batch) > self.config.max_pending:
            self.spool_later(batch)
            return
        self._pending.append(batch)
        self._pending_events += len(batch)
        self._idle.clear()
        self._wake.set()

    def spool_later(self, batch: list[AnalyticsEvent]) -> None:
        if self.spool is None:
            self._drop(batch, "queue full or exporter down, and no spool")
            return
        future = asyncio.ensure_future(self._spool(batch))
        self._writes.add(future)
        future.add_done_callback(self._writes.discard)

    async def wait_idle(self) -> None:
        """Until every queued batch is delivered, rejected or spooled."""
        while self._pending or self._inflight is not None:
            if self.task is None or self.task.done():
                return
            await self._idle.wait()
        while self._writes:
            await asyncio.gather(*list(self._writes), return_exceptions=True)

    def close(self) -> None:
        """Finish the queue (and replay the spool if healthy), then stop."""
        self._closing = True
        self._wake.set()

    def leftovers(self) -> list[AnalyticsEvent]:
        """Events still in memory (after the task stopped), to spool at close or exit."""
        batches = list(self._pending)
        if self._inflight is not None:
            batches.insert(0, self._inflight)
        self._pending.clear()
        self._pending_events = 0
        self._inflight = None
        return [event for batch in batches for event in batch]

    def snapshot(self) -> ExporterStats:
        stats = ExporterStats(**{f: getattr(self.stats, f) for f in ExporterStats.__slots__})
        stats.pending = self._pending_events
        stats.healthy = not self._down_until
        return stats

    # -- the task ---------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            while True:
                try:
                    if not await self._step():
                        return
                except asyncio.CancelledError:
                    raise
                except Exception:  # a bug must not silently stop deliveries
                    logger.exception("analytics lane %s: unexpected error", self.name)
                    await asyncio.sleep(1.0)
        finally:
            self._idle.set()

    async def _step(self) -> bool:
        if self._pending:
            if self._down_until and self.spool is not None:
                for batch in self.leftovers_pending():
                    await self._spool(batch)
                return True
            batch = self._pending.popleft()
            self._inflight = batch
            left, error = await self._deliver(batch)
            self._inflight = None
            self._pending_events -= len(batch)
            if left:
                self.stats.failed_batches += 1
                self._mark_down(error)
                if self.spool is not None:
                    await self._spool(left)
                else:
                    self._drop(left, error or "export failed")
            return True
        if self._closing:  # last chance in this process: probe even a lane that is down
            if self._spool_dirty:
                await self._replay()
            return False
        self._idle.set()
        timeout = None
        if self._spool_dirty:
            timeout = max(0.0, max(self._down_until, self._replay_at) - time.monotonic())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)
        self._wake.clear()
        due = time.monotonic() >= max(self._down_until, self._replay_at)
        if not self._pending and self._spool_dirty and due:
            await self._replay()
        return True

    def leftovers_pending(self) -> list[list[AnalyticsEvent]]:
        batches = list(self._pending)
        self._pending.clear()
        self._pending_events = 0
        return batches

    async def _deliver(
        self, events: list[AnalyticsEvent], retries: int | None = None
    ) -> tuple[list[AnalyticsEvent], str | None]:
        """Export with retries; returns what is still undelivered and the last error."""
        remaining, error = events, None
        attempts = self.config.max_retries if retries is None else retries
        for attempt in range(attempts + 1):
            if attempt:
                self.stats.retries += 1
                delay = min(self.config.max_backoff, self.config.retry_backoff * 2 ** (attempt - 1))
                await asyncio.sleep(delay * (0.5 + random.random()))
            try:
                result = await asyncio.wait_for(
                    self.exporter.export(remaining), self.config.export_timeout
                )
            except TimeoutError:
                error = f"export timed out after {self.config.export_timeout}s"
                continue
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                continue
            rejected, retry, error = _classify(result, remaining)
            self.stats.exported += len(remaining) - len(rejected) - len(retry)
            if rejected:
                await self._reject(rejected, error)
            if not retry:
                self._mark_up()
                return [], None
            remaining = retry
        self.stats.last_error = error
        logger.warning("analytics exporter %s failed: %s", self.name, error)
        return remaining, error

    async def _reject(self, events: list[AnalyticsEvent], error: str | None) -> None:
        self.stats.rejected += len(events)
        logger.error(
            "analytics exporter %s rejected %d event(s): %s",
            self.name,
            len(events),
            error,
        )
        if self.spool is not None:
            lines = [safe_repr_line(e, error or "rejected by exporter") for e in events]
            with contextlib.suppress(Exception):
                await self._io(self.spool.dead_letter, lines)

    async def _spool(self, events: list[AnalyticsEvent]) -> None:
        assert self.spool is not None
        try:
            written, rejected = await self._io(self.spool.append, events)
        except Exception as exc:  # disk full, permissions: nothing else to do
            logger.error("analytics spool %s: cannot write: %s", self.name, exc)
            self._drop(events, f"spool write failed: {exc}")
            return
        self.note_spooled(written, len(rejected))

    def note_spooled(self, written: int, rejected: int) -> None:
        """Count a spool write (also the coordinator's, for a full queue)."""
        self.stats.spooled += written
        self.stats.rejected += rejected
        self._spool_writes += 1
        self._spool_dirty = True
        self._wake.set()

    def _drop(self, events: Sequence[AnalyticsEvent], why: str) -> None:
        self.stats.dropped += len(events)
        now = time.monotonic()
        if now - self._last_drop_log >= 10.0:  # under overload, not a line per batch
            self._last_drop_log = now
            logger.warning(
                "analytics exporter %s: %d event(s) dropped so far: %s",
                self.name,
                self.stats.dropped,
                why,
            )

    def _mark_down(self, error: str | None) -> None:
        self._backoff = min(self.config.max_backoff, max(1.0, self._backoff * 2))
        self._down_until = time.monotonic() + self._backoff
        self.stats.last_error = error

    def _mark_up(self) -> None:
        self._down_until = 0.0
        self._backoff = 0.0

    # -- replay -----------------------------------------------------------------------

    async def _replay(self) -> None:
        """Deliver spooled segments, oldest first; stop when the exporter fails twice."""
        assert self.spool is not None
        spool = self.spool
        writes = self._spool_writes
        await self._io(spool.roll)
        failures = 0
        for path in await self._io(spool.segments):
            segment: Segment | None = await self._io(spool.claim, path)
            if segment is None:
                continue
            try:
                ok = await self._replay_segment(segment)
            except BaseException:
                await self._io(segment.release)
                raise
            if not ok:
                failures += 1
                if failures >= 2 or self._closing:
                    break
        if failures:  # try again later, not in a loop
            self._replay_backoff = min(self.config.max_backoff, max(1.0, self._replay_backoff * 2))
            self._replay_at = time.monotonic() + self._replay_backoff
        else:
            self._replay_backoff = self._replay_at = 0.0
            self._spool_dirty = writes != self._spool_writes

    async def _replay_segment(self, segment: Segment) -> bool:
        spool = self.spool
        assert spool is not None
        events: list[AnalyticsEvent] = await self._io(segment.read)
        if segment.attempts >= self.config.max_replay_attempts and not self._down_until:
            # The exporter works but this segment keeps failing: find the bad events.
            return await self._isolate(segment, events)
        size = self.config.batch_size
        retries = 0 if self._closing and self._down_until else None  # closing: one probe
        for start in range(0, len(events), size):
            left, error = await self._deliver(events[start : start + size], retries)
            if left:
                rest = left + events[start + size :]
                if start == 0 and len(left) == len(events[:size]):
                    await self._io(segment.failed)
                else:  # keep only what is undelivered, so a later replay sends no duplicates
                    await self._io(spool.write_segment, rest, segment.attempts + 1)
                    await self._io(segment.done)
                self._mark_down(error)
                self.stats.replayed += start
                return False
        await self._io(segment.done)
        self.stats.replayed += len(events)
        return True

    async def _isolate(self, segment: Segment, events: list[AnalyticsEvent]) -> bool:
        dead: list[AnalyticsEvent] = []
        error = None
        for event in events:
            left, err = await self._deliver([event], retries=0)
            if left:
                dead.append(event)
                error = err
        self.stats.replayed += len(events) - len(dead)
        if len(dead) == len(events) and segment.attempts < 2 * self.config.max_replay_attempts:
            await self._io(segment.failed)  # nothing went through: maybe the exporter
            return False
        if dead:
            self.stats.buried_segments += 1
            await self._reject(dead, f"failed {segment.attempts} replays: {error}")
        await self._io(segment.done)
        return True
