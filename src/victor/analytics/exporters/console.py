"""Prints events as JSON lines: for development and debugging."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from typing import TextIO

from victor.analytics.encoding import encode_line, split_encoded
from victor.analytics.exporters.base import BaseAnalyticsExporter, partial_result
from victor.protocols.analytics import AnalyticsEvent, ExportResult


class ConsoleAnalyticsExporter(BaseAnalyticsExporter):
    """Writes one JSON line per event to ``stream`` (standard output by default).

    A local exporter: a console that missed events does not want them later.
    """

    takes_records = True

    def __init__(self, stream: TextIO | None = None, *, name: str | None = None) -> None:
        self.stream = stream
        if name:
            self.name = name

    async def export(self, events: Sequence[AnalyticsEvent]) -> ExportResult:
        lines, rejected = split_encoded(events, encode_line)
        if lines:
            await asyncio.to_thread(self._write, "\n".join(lines) + "\n")
        return partial_result(len(lines), rejected)

    def _write(self, text: str) -> None:
        stream = self.stream or sys.stdout  # looked up late: tests and tools swap stdout
        stream.write(text)
        stream.flush()
