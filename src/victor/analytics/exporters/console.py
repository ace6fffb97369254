"""Prints events as JSON lines: for development and debugging."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from typing import TextIO

from victor.analytics.events import encode_line, split_encoded
from victor.analytics.exporters.base import BaseAnalyticsExporter, BatchExportResult
from victor.protocols.analytics import AnalyticsEvent


class ConsoleAnalyticsExporter(BaseAnalyticsExporter):
    """Writes one JSON line per event to ``stream`` (standard output by default).

    Nothing is spooled for it: a console that missed events does not want them later.
    """

    spool = False

    def __init__(self, stream: TextIO | None = None, *, name: str | None = None) -> None:
        self.stream = stream
        if name:
            self.name = name

    async def export(self, events: Sequence[AnalyticsEvent]) -> BatchExportResult:
        lines, rejected = split_encoded(events, encode_line)
        if lines:
            await asyncio.to_thread(self._write, "\n".join(lines) + "\n")
        return BatchExportResult.partial(len(lines), rejected)

    def _write(self, text: str) -> None:
        stream = self.stream or sys.stdout  # looked up late: tests and tools swap stdout
        stream.write(text)
        stream.flush()
