"""Delivery of analytics batches to one exporter: a bounded in-memory queue for a local
exporter, a forwarder draining the outbox for a remote one. The coordinator
(:mod:`victor.agent.coordinators.analytics_coordinator`) makes one per exporter and hands
it the batches; it provides the settings (``max_queue``, retries, timeouts), the outbox
and its thread (``io``), and the drop counter.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import deque
from collections.abc import Sequence
from typing import Any

from victor.analytics.encoding import (
    EventEncodeError,
    decode_line,
    encode_line,
    event_label,
    safe_repr_line,
    split_encoded,
)
from victor.analytics.stats import ExporterStats
from victor.protocols.analytics import AnalyticsEvent, ExportResult

logger = logging.getLogger("victor.analytics")

Batch = tuple[Any, ...]
#: Outbox batches an exporter that takes bytes gets in one call: fewer transactions.
FORWARD_BATCHES = 10


def to_models(batch: Batch) -> Batch:
    """Public ``AnalyticsEvent`` models for exporters that did not ask for records."""
    return tuple(e if isinstance(e, AnalyticsEvent) else e.to_model() for e in batch)


def _json_lines(events: Batch) -> tuple[bytes, list[EventEncodeError]]:
    """The outbox's encoding for exporters without their own: JSON lines."""
    lines, bad = split_encoded(events, encode_line)
    return "".join(f"{line}\n" for line in lines).encode(), bad


def _decode(payload: bytes, records: bool) -> Batch:
    events = tuple(decode_line(line) for line in payload.splitlines())
    return events if records else to_models(events)


def _classify(result: Any, events: Sequence[Any]) -> tuple[Batch, Batch, str | None]:
    """(rejected for good, worth retrying, error) after an export; see ExportResult."""
    if not isinstance(result, ExportResult) or (
        result.success and not result.failed_event_ids and not result.rejected_event_ids
    ):
        return (), (), None
    rejected_ids = set(result.rejected_event_ids)
    failed_ids = set(result.failed_event_ids) - rejected_ids
    if result.success:  # "success" means: do not retry
        rejected_ids |= failed_ids
        failed_ids = set()
    rejected = tuple(e for e in events if event_label(e) in rejected_ids)
    retry = tuple(e for e in events if event_label(e) in failed_ids)
    if not result.success and not rejected and not retry:  # no usable ids: all failed
        return (), tuple(events), result.error or "export failed"
    return rejected, retry, result.error


class Delivery:
    """One exporter's queue (local) or forwarder (remote), its task and counters."""

    def __init__(self, coordinator: Any, exporter: Any, name: str) -> None:
        self.coordinator, self.exporter, self.name = coordinator, exporter, name
        self.remote = coordinator.use_outbox and getattr(exporter, "outbox", False) is True
        self.takes_records = getattr(exporter, "takes_records", False) is True
        # A remote exporter that keeps its own encoding in the outbox gets it back as is.
        self.encoded = self.remote and callable(getattr(exporter, "export_encoded", None))
        self.encode = exporter.encode_batch if self.encoded else _json_lines
        self.take = FORWARD_BATCHES if self.encoded else 1
        destination = getattr(exporter, "destination", None)
        self.key = destination if isinstance(destination, str) and destination else name
        self.stats = ExporterStats(name)
        self.queue: deque[Batch] = deque()
        self.written = 0  # outbox writes for this destination, to tell a stale "empty"
        self.backoff = 0.0
        self.closing = False
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.wake, self.idle, self.stop = asyncio.Event(), asyncio.Event(), asyncio.Event()
        if self.closing:
            self.stop.set()
        run = self._forward if self.remote else self._deliver_queue
        self.task = asyncio.get_running_loop().create_task(run(), name=f"analytics:{self.name}")

    def offer(self, batch: Batch) -> None:
        if self.stats.queued + len(batch) > self.coordinator.max_queue:
            self.coordinator.count_drop(self.stats, len(batch), "its queue is full")
            return
        self.queue.append(batch)
        self.stats.queued += len(batch)
        self.idle.clear()
        self.wake.set()

    def outboxed(self, good: int, bad: list[EventEncodeError]) -> None:
        self.stats.outboxed += good
        self.reject_count(len(bad), str(bad[0]) if bad else None)
        self.written += 1
        self.idle.clear()
        self.wake.set()

    def close(self) -> None:
        self.closing = True
        if self.task is not None:
            self.stop.set()
            self.wake.set()

    def reject_count(self, n: int, error: str | None) -> None:
        if n:
            self.stats.rejected += n
            logger.error("analytics exporter %s rejected %d event(s): %s", self.name, n, error)

    async def _reject(self, texts: Sequence[str], error: str | None) -> None:
        """Count, log and keep (in the outbox's ``rejected`` table) refused events."""
        if not texts:
            return
        self.reject_count(len(texts), error)
        if self.coordinator.use_outbox:
            why = error or "rejected by the exporter"
            with contextlib.suppress(Exception):  # logged and counted already
                await self.coordinator.io(
                    self.coordinator.outbox.reject, self.key, [(t, why) for t in texts]
                )

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
        """Export with retries. Returns what is left because nothing went through (the
        exporter looks down) and the last error. Events an exporter that works keeps
        refusing are rejected after the retries."""
        coordinator = self.coordinator
        progressed, error = False, None
        for attempt in range(coordinator.max_retries + 1):
            if attempt:
                self.stats.retries += 1
                delay = coordinator.retry_backoff * 2 ** (attempt - 1)
                await asyncio.sleep(min(coordinator.max_backoff, delay) * (0.5 + random.random()))
            result, error = await self._call(self.exporter.export, events)
            rejected, retry, error = (
                ((), tuple(events), error) if error else _classify(result, events)
            )
            self.stats.exported += len(events) - len(rejected) - len(retry)
            progressed = progressed or len(retry) < len(events)
            await self._reject([safe_repr_line(e, error or "rejected") for e in rejected], error)
            events = retry
            if not events:
                break
        if events and progressed:
            why = f"refused {attempt + 1}x: {error}"
            await self._reject([safe_repr_line(e, why) for e in events], why)
            events = ()
        if not events:
            self.stats.healthy = True
        return events, error

    async def _send_encoded(self, payload: bytes) -> tuple[bool, str | None]:
        """Hand the outbox's bytes to an exporter that encoded them (it retries on its
        own). Returns whether they are left (the exporter looks down), and the error."""
        result, error = await self._call(self.exporter.export_encoded, payload)
        if error is None and isinstance(result, ExportResult):
            if not result.success and not result.rejected_event_ids:
                error = result.error or "export failed"
            else:
                self.stats.exported += result.exported_count
                lines = payload.decode(errors="replace").splitlines()
                texts = [next((x for x in lines if i in x), i) for i in result.rejected_event_ids]
                await self._reject(texts, result.error)
        if error is None:
            self.stats.healthy = True
        return error is not None, error

    def _down(self, error: str | None) -> None:
        self.stats.failed_batches += 1
        self.stats.healthy, self.stats.last_error = False, error
        logger.warning("analytics exporter %s failed: %s", self.name, error)

    async def _deliver_queue(self) -> None:
        """A local exporter: its bounded in-memory queue, in order."""
        while True:
            while not self.queue:
                self.idle.set()
                if self.closing:
                    return
                await self.wake.wait()
                self.wake.clear()
            batch = self.queue[0]  # left in the queue while in flight: counted as queued
            left, error = await self._send(batch if self.takes_records else to_models(batch))
            self.queue.popleft()
            self.stats.queued -= len(batch)
            if left:
                self._down(error)
                self.coordinator.count_drop(self.stats, len(left), f"it failed: {error}")

    async def _forward(self) -> None:
        """A remote exporter: drain its batches from the outbox, oldest first."""
        coordinator = self.coordinator
        while True:
            written = self.written
            batches = await coordinator.io(coordinator.outbox.oldest, self.key, self.take)
            if not batches:
                if written == self.written:  # no write landed while we looked
                    self.idle.set()
                if self.closing:
                    return
                await self.wake.wait()
                self.wake.clear()
                continue
            payload = b"".join(b.payload for b in batches)
            if self.encoded:
                left, error = await self._send_encoded(payload)
            else:
                events = await coordinator.io(_decode, payload, self.takes_records)
                left, error = await self._send(events)
            if not left:
                await coordinator.io(coordinator.outbox.done, [b.id for b in batches])
                self.backoff = 0.0
                continue
            self._down(error)
            self.idle.set()  # flush() does not wait for a destination that is down
            if self.closing:
                return  # what is left waits in the outbox for the next start
            self.backoff = min(
                coordinator.max_backoff, max(coordinator.retry_backoff, 2 * self.backoff)
            )
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.backoff * (0.5 + random.random())):
                    await self.stop.wait()
