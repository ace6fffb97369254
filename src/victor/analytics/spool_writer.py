"""One bounded writer per lane: undeliverable batches go to the spool, in order, off the loop.

``put`` never blocks and needs no running event loop: the batch joins a queue that a job
on the coordinator's spool thread writes out. A burst of ``emit()`` that keeps the loop
busy still reaches the disk, and a disk slower than the traffic cannot grow memory
without bound: past ``max_events`` waiting, ``put`` refuses and the caller counts a drop.
What is still queued when the process ends is handed back by :meth:`take`.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future

from victor.analytics.spool import Spool
from victor.protocols.analytics import AnalyticsEvent

logger = logging.getLogger("victor.analytics")

Batch = tuple[AnalyticsEvent, ...]
Submit = Callable[[Callable[[], None]], "Future[None]"]
_WRITE_EVENTS = 20_000  # events per append (one fsync): big writes, bounded encoding time


class SpoolWriter:
    """Writes one lane's batches to its spool from the spool thread; bounded in events."""

    def __init__(self, spool: Spool, submit: Submit, max_events: int, name: str) -> None:
        self.spool = spool
        self.max_events = max(1, max_events)
        self.name = name
        self._submit = submit
        self._lock = threading.Lock()
        self._queue: deque[Batch] = deque()
        self._queued = 0
        self._job: Future[None] | None = None
        self._writing: list[Batch] = []  # taken by the running job
        self.written = 0  # events durably in the spool
        self.rejected = 0  # events that cannot be encoded (dead-lettered by the spool)
        self.failed = 0  # events lost to a failed write (disk full, permissions)
        self.last_error: str | None = None
        self._last_log = -1e9

    @property
    def queued(self) -> int:
        return self._queued

    def put(self, batch: Sequence[AnalyticsEvent], *, force: bool = False) -> bool:
        """Queue a batch for the spool; False (nothing queued) when the queue is full.
        ``force`` ignores the bound (closing: the memory is already held)."""
        batch = tuple(batch)
        with self._lock:
            full = self._queued + len(batch) > self.max_events
            if full and self._queued and not force:
                return False
            self._queue.append(batch)
            self._queued += len(batch)
            if self._job is None:
                try:
                    self._job = self._submit(self._drain)
                except RuntimeError:  # the spool thread is gone (exiting): take() has them
                    return True
                self._job.add_done_callback(self._job_ended)
        return True

    def _job_ended(self, job: Future[None]) -> None:
        """A job cancelled before it ran must not leave the queue without a writer."""
        if job.cancelled():
            with self._lock:
                if self._job is job:
                    self._job = None

    def _drain(self) -> None:
        """On the spool thread: write what is queued, many batches per ``fsync``, until
        nothing is left."""
        while True:
            with self._lock:
                if not self._queue:
                    self._job = None
                    return
                taken, size = [], 0
                while self._queue and size < _WRITE_EVENTS:
                    batch = self._queue.popleft()
                    taken.append(batch)
                    size += len(batch)
                self._writing = taken
            events = [event for batch in taken for event in batch]
            written, rejected, error = 0, 0, None
            try:
                written, refused = self.spool.append(events)
                rejected = len(refused)
            except Exception as exc:  # disk full, permissions: counted, logged
                error = f"{type(exc).__name__}: {exc}"
            with self._lock:
                self._writing = []
                self._queued -= size
                self.written += written
                self.rejected += rejected
                if error is not None:
                    self.failed += size
                    self.last_error = error
            if error is not None:
                self._log(error)

    def _log(self, error: str) -> None:
        now = time.monotonic()
        if now - self._last_log >= 10.0:
            self._last_log = now
            logger.error(
                "analytics spool %s: cannot write (%d event(s) lost so far): %s",
                self.name,
                self.failed,
                error,
            )

    async def wait(self) -> None:
        """Until everything queued so far is written (or failed)."""
        while True:
            with self._lock:
                job = self._job
            if job is None:
                return
            # Shielded: cancelling a waiter must not cancel the job itself.
            await asyncio.shield(asyncio.wrap_future(job))

    def take(self) -> list[AnalyticsEvent]:
        """What no job has started writing, removed from the queue (at exit, to write
        directly). Batches a running job took stay with the job."""
        with self._lock:
            batches = list(self._queue)
            self._queue.clear()
            self._queued -= sum(len(b) for b in batches)
        return [event for batch in batches for event in batch]
