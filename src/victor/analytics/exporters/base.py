"""The base class for exporters, and the richer result Victor's own exporters return."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from pydantic import Field

from victor.analytics.events import EventEncodeError, rejection_message
from victor.protocols.analytics import AnalyticsEvent, ExportResult, IAnalyticsExporter


class BatchExportResult(ExportResult):
    """An :class:`ExportResult` that also says which failures are permanent.

    ``rejected_event_ids`` are events that can never be exported (data that is not JSON,
    a missing field): the coordinator dead-letters them instead of retrying. The other ids
    in ``failed_event_ids`` are worth retrying.
    """

    rejected_event_ids: list[str] = Field(default_factory=list)

    @classmethod
    def partial(cls, exported: int, rejected: Sequence[EventEncodeError]) -> BatchExportResult:
        """Everything that could be exported was; ``rejected`` could not."""
        if not rejected:
            return cls(success=True, exported_count=exported)
        ids = [e.event_id for e in rejected]
        return cls(
            success=False,
            exported_count=exported,
            error=rejection_message(rejected),
            failed_event_ids=ids,
            rejected_event_ids=ids,
        )


class BaseAnalyticsExporter(IAnalyticsExporter):
    """Subclass this to send events somewhere.

    Implement :meth:`export`; return a result instead of raising where you can (see
    :class:`ExportResult` for what ``success`` and ``failed_event_ids`` mean). Set
    ``destination`` to where the events go (a URL without its password, a resolved path):
    the coordinator keeps undelivered events in a spool per name and destination, and
    never replays one destination's spool into another. Set ``name`` (stable across
    restarts) to tell two exporters of one class apart in the stats. Set ``spool = False``
    for an exporter whose events are not worth keeping when it fails (a console printer).
    """

    name: str | None = None
    spool: bool = True
    destination: str | None = None

    async def shutdown(self) -> None:
        """Nothing to release by default."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class BlockingWriteExporter(BaseAnalyticsExporter):
    """For exporters whose writes are blocking calls (a file, ``sqlite3``): each batch is
    written by :meth:`_export` on one thread of the exporter's own, so batches stay in
    order and the loop never waits on the disk; :meth:`_close` releases what that thread
    holds, on that thread, at shutdown."""

    thread_name = "victor-exporter"
    _executor: ThreadPoolExecutor | None = None

    async def export(self, events: Sequence[AnalyticsEvent]) -> ExportResult:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix=self.thread_name)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._export, list(events))

    def _export(self, events: list[AnalyticsEvent]) -> ExportResult:
        raise NotImplementedError

    async def shutdown(self) -> None:
        if self._executor is None:
            return
        executor, self._executor = self._executor, None
        await asyncio.get_running_loop().run_in_executor(executor, self._close)
        executor.shutdown(wait=False)

    def _close(self) -> None:
        """Release the file or connection (on the writer thread)."""


class ThreadedExporter(BaseAnalyticsExporter):
    """Runs an exporter on its own event loop in its own thread.

    For exporters that block (a synchronous database driver, ``requests``): on the chat's
    loop they would stall every turn; here they only stall their own thread. The wrapped
    exporter's spool name is kept.
    """

    def __init__(self, exporter: IAnalyticsExporter) -> None:
        self.exporter = exporter
        self.name = getattr(exporter, "name", None) or type(exporter).__name__
        self.spool = getattr(exporter, "spool", True)
        self.destination = getattr(exporter, "destination", None)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            loop = asyncio.new_event_loop()
            self._thread = threading.Thread(
                target=loop.run_forever, name=f"victor-exporter-{self.name}", daemon=True
            )
            self._thread.start()
            self._loop = loop
        return self._loop

    async def export(self, events: Sequence[AnalyticsEvent]) -> ExportResult:
        future = asyncio.run_coroutine_threadsafe(
            self.exporter.export(tuple(events)), self._ensure_loop()
        )
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            future.cancel()
            raise

    async def shutdown(self) -> None:
        loop = self._ensure_loop()
        try:
            await asyncio.wrap_future(
                asyncio.run_coroutine_threadsafe(self.exporter.shutdown(), loop)
            )
        finally:
            loop.call_soon_threadsafe(loop.stop)
            if self._thread is not None:
                await asyncio.to_thread(self._thread.join, 5.0)
            if not loop.is_running():
                loop.close()
            self._loop = self._thread = None
