"""Delivery to one exporter, in order: a local exporter's batches from a bounded queue in
memory, a remote exporter's from the outbox (retried with back-off while the destination is
down). Events refused for good (bad data) are counted and logged, never sent again. The
coordinator provides the settings, the outbox and its thread (``io``), and the drop counter.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import deque
from collections.abc import Sequence
from typing import Any

from victor.analytics.encoding import decode_line, event_label
from victor.analytics.stats import ExporterStats
from victor.protocols.analytics import AnalyticsEvent, ExportResult

logger = logging.getLogger("victor.analytics")

Batch = tuple[Any, ...]
#: Outbox batches forwarded in one export call: fewer, larger transactions downstream. Past
#: three, a forward keeps so many objects alive that the garbage collector's pauses (on
#: every thread, the loop's too) grow; PostgreSQL gains nothing more (benchmarks/RESULTS.md).
FORWARD_BATCHES = 3


def to_models(batch: Sequence[Any]) -> Batch:
    """Public ``AnalyticsEvent`` models for exporters that did not ask for records."""
    return tuple(e if isinstance(e, AnalyticsEvent) else e.to_model() for e in batch)


def _decode(rows: list[tuple[int, bytes]], records: bool) -> tuple[Batch, list[tuple[int, str]]]:
    """The events of outbox rows, and the lines that cannot be read: (row id, why)."""
    events, unreadable = [], []
    for batch_id, payload in rows:
        for line in payload.splitlines():
            try:
                events.append(decode_line(line))
            except Exception as exc:
                unreadable.append((batch_id, f"{line[:60]!r} ({exc})"))
    return (tuple(events) if records else to_models(events)), unreadable


def _classify(result: Any, events: Sequence[Any]) -> tuple[Batch, Batch | None, str | None]:
    """(rejected for good, to retry, error) after an export (see ExportResult). "To retry"
    is None when nothing was stored: the exporter looks down."""
    if not isinstance(result, ExportResult) or (
        result.success and not result.failed_event_ids and not result.rejected_event_ids
    ):
        return (), (), None
    rejected_ids = set(result.rejected_event_ids)
    failed_ids = set(result.failed_event_ids) - rejected_ids
    if result.success:  # "success" means: do not retry
        rejected_ids, failed_ids = rejected_ids | failed_ids, set()
    rejected = tuple(e for e in events if event_label(e) in rejected_ids)
    retry = tuple(e for e in events if event_label(e) in failed_ids)
    if not result.success and not rejected and not retry:  # no usable ids
        return (), None, result.error or "export failed"
    return rejected, retry, result.error


class Delivery:
    """One exporter's queue (local) or forwarder (remote), its task and counters."""

    def __init__(self, coordinator: Any, exporter: Any, name: str) -> None:
        self.coordinator, self.exporter, self.name = coordinator, exporter, name
        self.remote = getattr(exporter, "outbox", False) is True
        self.takes_records = getattr(exporter, "takes_records", False) is True
        destination = getattr(exporter, "destination", None)
        self.key = destination if isinstance(destination, str) and destination else name
        self.stats = ExporterStats(name)
        self.queue: deque[Batch] = deque()
        self.handed = 0  # batches handed over, to tell a stale "nothing waits"
        self.closing = False
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.wake, self.idle, self.stop = asyncio.Event(), asyncio.Event(), asyncio.Event()
        if self.closing:
            self.stop.set()
        name = f"analytics:{self.name}"
        self.task = asyncio.get_running_loop().create_task(self._run(), name=name)

    def offer(self, batch: Batch) -> None:
        """A batch for a local exporter's queue, or dropped (and counted) when it is full."""
        if self.stats.queued + len(batch) > self.coordinator.max_queue:
            self.coordinator.count_drop(self.stats, len(batch), "its queue is full")
            return
        self.queue.append(batch)
        self.stats.queued += len(batch)
        self.handed_over()

    def handed_over(self) -> None:
        self.handed += 1
        self.idle.clear()
        self.wake.set()

    def close(self) -> None:
        self.closing = True
        if self.task is not None:
            self.stop.set()
            self.wake.set()

    def reject(self, event_ids: Sequence[str], why: str) -> None:
        """Count and log events refused for good."""
        if event_ids:
            self.stats.rejected += len(event_ids)
            shown = ", ".join(event_ids[:5]) + (", ..." if len(event_ids) > 5 else "")
            msg = "analytics exporter %s rejected %d event(s) (%s): %s"
            logger.error(msg, self.name, len(event_ids), shown, why)

    async def _call(self, export: Any, batch: Any) -> tuple[Any, str | None]:
        """One export call bounded by ``export_timeout``: (result, None) or (None, error)."""
        timeout = asyncio.timeout(self.coordinator.export_timeout)
        try:
            async with timeout:
                return await export(batch), None
        except Exception as exc:
            if (task := asyncio.current_task()) is not None and task.cancelling():
                raise asyncio.CancelledError from exc  # asked to stop while it failed
            if timeout.expired():
                return None, f"export timed out after {self.coordinator.export_timeout}s"
            return None, f"{type(exc).__name__}: {exc}"

    async def _send(self, events: Sequence[Any]) -> tuple[Sequence[Any], str | None]:
        """Export with retries: (what is left when the exporter looks down, last error).
        Events a working exporter keeps naming as failed are rejected after the retries."""
        c = self.coordinator
        retry: Batch | None = None
        for attempt in range(c.max_retries + 1):
            if attempt:
                self.stats.retries += 1
                delay = min(c.max_backoff, c.retry_backoff * 2 ** (attempt - 1))
                await asyncio.sleep(delay * (0.5 + random.random()))
            result, error = await self._call(self.exporter.export, events)
            rejected, retry, error = ((), None, error) if error else _classify(result, events)
            if retry is None:
                continue
            self.stats.exported += len(events) - len(rejected) - len(retry)
            self.reject([event_label(e) for e in rejected], error or "rejected by the exporter")
            events = retry
            if not events:
                break
        if retry is None:
            return events, error
        self.reject([event_label(e) for e in events], f"refused {attempt + 1}x: {error}")
        self.stats.healthy = True
        return (), error

    async def _run(self) -> None:
        """Deliver in order. A local exporter's batch is dropped (and counted) when its
        retries fail; a remote one's waits in the outbox, retried with back-off."""
        c = self.coordinator
        backoff = 0.0
        while True:
            handed = self.handed
            try:
                take = FORWARD_BATCHES if self.stats.healthy else 1  # one to probe a failing one
                rows = await c.io(c.outbox.oldest, self.key, take) if self.remote else []
            except Exception as exc:  # the outbox file is locked or failing: its rows wait
                rows, left, error = None, True, f"outbox: {type(exc).__name__}: {exc}"
            if rows == [] and not self.queue:
                if handed == self.handed:  # nothing was handed over while we looked
                    self.idle.set()
                if self.closing:
                    return
                await self.wake.wait()
                self.wake.clear()
                continue
            if rows:
                try:
                    events, unreadable = await c.io(_decode, rows, self.takes_records)
                    left, error = await self._send(events) if events else ((), None)
                    if not left:
                        aside = {batch_id for batch_id, _ in unreadable}
                        await c.io(c.outbox.done, [i for i, _ in rows], aside)
                        self.reject([why for _, why in unreadable], "unreadable: batch set aside")
                except Exception as exc:  # rows kept: sent again, stored once (event_id)
                    left, error = True, f"outbox: {type(exc).__name__}: {exc}"
            elif rows is not None:  # a local exporter's queue (None: the outbox failed)
                batch = self.queue[0]  # left in the queue while in flight: counted as queued
                left, error = await self._send(batch)  # models already, unless takes_records
                self.queue.popleft()
                self.stats.queued -= len(batch)
            if not left:
                backoff = 0.0
                continue
            self.stats.failed_batches += 1
            self.stats.healthy, self.stats.last_error = False, error
            logger.warning("analytics exporter %s failed: %s", self.name, error)
            if not self.remote:
                c.count_drop(self.stats, len(left), f"it failed: {error}")
                continue
            self.idle.set()  # flush() does not wait for a destination that is down
            if self.closing:
                return  # what is left waits in the outbox for the next start
            backoff = min(c.max_backoff, max(c.retry_backoff, 2 * backoff))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(backoff * (0.5 + random.random())):
                    await self.stop.wait()
