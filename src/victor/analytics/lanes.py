"""One delivery lane per exporter: its own queue, task, retries, spool and health.

Lanes are what keep exporters apart: a slow exporter only fills its own queue (which then
spills to its own spool), a failing one only backs off its own lane. Batches are tuples:
an exporter that mutates what it is given cannot change what another exporter receives.

A lane task can be cancelled at any await (``asyncio.run()`` ending, Ctrl-C): it then
stops at once, and every event it held -- its queue, the batch in flight, batches waiting
for the spool writer -- stays reachable through :meth:`Lane.leftovers`, which the
coordinator writes to the spool at exit. A claimed spool segment is released untouched.
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
from functools import partial
from typing import Any

from victor.analytics.events import event_label, safe_repr_line
from victor.analytics.spool import Segment, Spool
from victor.analytics.spool_writer import Batch, SpoolWriter, Submit
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
    max_spool_queue: int = 100_000


def cancelling() -> bool:
    """True when the current task was asked to stop: an exception caught now (an exporter
    that turned the cancellation into an error) must not swallow the request."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def _classify(result: Any, batch: Sequence[AnalyticsEvent]) -> tuple[Batch, Batch, str | None]:
    """Split a batch after an export into (rejected for good, worth retrying, error).
    The semantics are those documented on :class:`ExportResult`."""
    if result is None or not isinstance(result, ExportResult):
        return (), (), None  # an exporter that returns nothing is taken at its word
    if result.success and not result.failed_event_ids:
        return (), (), None
    rejected_ids = set(getattr(result, "rejected_event_ids", None) or ())
    failed_ids = set(result.failed_event_ids or ()) - rejected_ids
    if result.success:  # "success" means: do not retry this batch
        rejected_ids |= failed_ids
        failed_ids = set()
    rejected = tuple(e for e in batch if event_label(e) in rejected_ids)
    retry = tuple(e for e in batch if event_label(e) in failed_ids)
    if not result.success and not rejected and not retry:  # no usable ids: all of it failed
        return (), tuple(batch), result.error or "export failed"
    return rejected, retry, result.error


def _dead_letter(spool: Spool, lines: list[str]) -> None:
    try:
        spool.dead_letter(lines)
    except Exception as exc:
        logger.error("analytics spool %s: cannot write dead letters: %s", spool.directory, exc)


class Lane:
    """Delivers batches to one exporter; undeliverable ones go to its spool."""

    def __init__(
        self,
        exporter: IAnalyticsExporter,
        name: str,
        spool: Spool | None,
        config: LaneConfig,
        run_io: RunIO,
        submit: Submit,
    ) -> None:
        self.exporter = exporter
        self.name = name
        self.spool = spool
        self.config = config
        self._io = run_io
        self._submit = submit
        self.writer = (
            SpoolWriter(spool, submit, config.max_spool_queue, name) if spool is not None else None
        )
        self.stats = ExporterStats(name)
        self._pending: deque[Batch] = deque()
        self._pending_events = 0
        self._inflight: Batch | None = None
        self._down_until = 0.0
        self._backoff = 0.0
        self._replay_at = 0.0
        self._replay_backoff = 0.0
        self._last_drop_log = -1e9
        self._spool_dirty = spool is not None  # look at the spool at start
        self._unreplayed = False  # this lane spooled events not replayed since
        self._spool_puts = 0  # bumped by each write: a replay round may not miss one
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
        self.task = loop.create_task(self._run(), name=f"victor-analytics:{self.name}")

    def offer(self, batch: Batch) -> bool:
        """Queue a batch, or spool it when the lane is down or its queue is full.
        Returns True when the queue was full (the batch overflowed)."""
        down = self._down_until and self.writer is not None  # without a spool: keep trying
        full = self._pending_events + len(batch) > self.config.max_pending
        if down or full:
            self.stats.overflowed += len(batch) if full else 0
            self.spool_later(batch)
            return bool(full)
        self._pending.append(batch)
        self._pending_events += len(batch)
        self._idle.clear()
        self._wake.set()
        return False

    def spool_later(self, batch: Batch, why: str | None = None, *, force: bool = False) -> None:
        """Hand a batch to the spool writer (never blocks); counted as dropped if it cannot
        take it (no spool, or the disk is behind by ``max_spool_queue`` events)."""
        if self.writer is None:
            self._drop(batch, why or "queue full or exporter down, and no spool")
            return
        if not self.writer.put(batch, force=force):
            self._drop(batch, "the spool writer is behind (the disk is slower than traffic)")
            return
        self._spool_puts += 1
        self._spool_dirty = self._unreplayed = True
        self._wake.set()

    async def _spool(self, events: Sequence[AnalyticsEvent], why: str | None = None) -> None:
        """Write events to the spool now, whatever the bound, and wait until they are on
        disk (closing: the memory is already held)."""
        if events:
            self.spool_later(tuple(events), why, force=True)
        if self.writer is not None:
            await self.writer.wait()

    async def wait_idle(self) -> None:
        """Until every queued batch is delivered, rejected or written to the spool."""
        while self._pending or self._inflight is not None:
            if self.task is None or self.task.done():
                break
            await self._idle.wait()
        if self.writer is not None:
            await self.writer.wait()

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
        events = [event for batch in batches for event in batch]
        if self.writer is not None:
            events = self.writer.take() + events
        return events

    def mark(self) -> int:
        """Events that did not reach the exporter so far (to compare after a flush)."""
        stats = self.snapshot()
        return stats.rejected + stats.dropped + stats.spooled + stats.spool_queue

    def delivered(self, mark: int) -> bool:
        """Nothing waits, nothing went elsewhere since ``mark``, nothing unreplayed."""
        return (
            not self._pending
            and self._inflight is None
            and not self._down_until
            and not self._unreplayed
            and self.mark() == mark
        )

    def snapshot(self) -> ExporterStats:
        stats = ExporterStats(**{f: getattr(self.stats, f) for f in ExporterStats.__slots__})
        stats.pending = self._pending_events
        stats.healthy = not self._down_until
        if self.writer is not None:
            stats.spooled = self.writer.written
            stats.rejected += self.writer.rejected
            stats.dropped += self.writer.failed
            stats.spool_queue = self.writer.queued
            if stats.last_error is None:
                stats.last_error = self.writer.last_error
        if self.spool is not None:
            stats.evicted = self.spool.evicted_events
            stats.dropped += stats.evicted
        return stats

    # -- the task ---------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            while True:
                try:
                    if not await self._step():
                        return
                except Exception:  # a bug must not silently stop deliveries
                    if cancelling():
                        raise asyncio.CancelledError from None
                    logger.exception("analytics lane %s: unexpected error", self.name)
                    await asyncio.sleep(1.0)
        finally:
            self._idle.set()

    async def _step(self) -> bool:
        if self._pending:
            if self._down_until and self.writer is not None:
                while self._pending:  # no await in between: nothing is held elsewhere
                    batch = self._pending.popleft()
                    self._pending_events -= len(batch)
                    self.spool_later(batch)
                return True
            batch = self._pending.popleft()
            self._inflight = batch  # until delivered: leftovers() finds it if cancelled
            left, error = await self._deliver(batch)
            self._inflight = None
            self._pending_events -= len(batch)
            if left:
                self.stats.failed_batches += 1
                self._mark_down(error)
                self.spool_later(left, error or "export failed")
            return True
        if self._closing:  # last chance in this process: probe even a lane that is down
            if self._spool_dirty:
                await self._replay()
            return False
        self._idle.set()
        if not self._spool_dirty:
            await self._wake.wait()
        else:
            timeout = max(0.0, max(self._down_until, self._replay_at) - time.monotonic())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()
        self._wake.clear()
        due = time.monotonic() >= max(self._down_until, self._replay_at)
        if not self._pending and self._spool_dirty and due:
            await self._replay()
        return True

    async def _deliver(self, events: Batch, retries: int | None = None) -> tuple[Batch, str | None]:
        """Export with retries. Returns what is left because the exporter looks down
        (nothing went through), and the last error. Events that an exporter which works
        (it took the rest of the batch) keeps refusing are dead-lettered after the retries,
        without marking the lane down."""
        remaining, error, progressed = events, None, False
        attempts = self.config.max_retries if retries is None else retries
        for attempt in range(attempts + 1):
            if attempt:
                self.stats.retries += 1
                delay = min(self.config.max_backoff, self.config.retry_backoff * 2 ** (attempt - 1))
                await asyncio.sleep(delay * (0.5 + random.random()))
            deadline = asyncio.timeout(self.config.export_timeout)
            try:
                async with deadline:
                    result = await self.exporter.export(remaining)
            except Exception as exc:
                if cancelling():  # asked to stop while the export failed: stop
                    raise asyncio.CancelledError from exc
                if deadline.expired():
                    error = f"export timed out after {self.config.export_timeout}s"
                else:
                    error = f"{type(exc).__name__}: {exc}"
                continue
            rejected, retry, error = _classify(result, remaining)
            delivered = len(remaining) - len(rejected) - len(retry)
            self.stats.exported += delivered
            progressed = progressed or delivered > 0 or bool(rejected)
            if rejected:
                self._reject(rejected, error)
            if not retry:
                self._mark_up()
                return (), None
            remaining = retry
        if progressed:  # the exporter is up; these events are what it refuses
            self._mark_up()
            self._reject(remaining, f"refused {attempts + 1} time(s): {error}")
            return (), None
        self.stats.last_error = error
        logger.warning("analytics exporter %s failed: %s", self.name, error)
        return remaining, error

    def _reject(self, events: Sequence[AnalyticsEvent], error: str | None) -> None:
        """Count and dead-letter refused events (written by the spool thread, in order)."""
        self.stats.rejected += len(events)
        logger.error(
            "analytics exporter %s rejected %d event(s): %s", self.name, len(events), error
        )
        if self.spool is not None:
            lines = [safe_repr_line(e, error or "rejected by exporter") for e in events]
            with contextlib.suppress(RuntimeError):  # the spool thread is gone: exiting
                self._submit(partial(_dead_letter, self.spool, lines))

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
        puts = self._spool_puts
        await self._io(spool.roll)
        failures = 0
        for path in await self._io(spool.replayable):
            segment: Segment | None = await self._io(spool.claim, path)
            if segment is None:
                continue
            try:
                ok = await self._replay_segment(segment)
            except BaseException:
                segment.release()  # no await: also when cancelled
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
            self._spool_dirty = self._unreplayed = puts != self._spool_puts

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
            left, error = await self._deliver(tuple(events[start : start + size]), retries)
            if left:
                rest = [*left, *events[start + size :]]
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
            left, err = await self._deliver((event,), retries=0)
            if left:
                dead.append(event)
                error = err
        self.stats.replayed += len(events) - len(dead)
        if len(dead) == len(events) and segment.attempts < 2 * self.config.max_replay_attempts:
            await self._io(segment.failed)  # nothing went through: maybe the exporter
            return False
        if dead:
            self.stats.buried_segments += 1
            self._reject(dead, f"failed {segment.attempts} replays: {error}")
        await self._io(segment.done)
        return True
