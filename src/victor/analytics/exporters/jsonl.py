"""JSON lines, one object per event: appended to a file (the simplest durable log, easy to
ship elsewhere), or printed to a console."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import IO, TextIO

from victor.analytics.encoding import encode_line, split_encoded
from victor.analytics.exporters.base import BlockingWriteExporter, partial_result
from victor.protocols.analytics import AnalyticsEvent, ExportResult


class JSONLAnalyticsExporter(BlockingWriteExporter):
    """One JSON object per line, appended to ``path``; ``fsync=True`` makes each batch
    durable before it counts as exported. An event written again after a failure appears
    twice: readers de-duplicate on ``event_id`` (the databases do it themselves)."""

    _file: IO[bytes] | None = None  # opened at the first batch (never, for the console)

    def __init__(
        self, path: str | os.PathLike[str], *, fsync: bool = False, name: str | None = None
    ) -> None:
        self.path = Path(path).expanduser()
        self.destination = f"jsonl:{self.path.resolve()}"
        self.fsync = fsync
        self.name = name or self.name

    def _export(self, events: list[AnalyticsEvent]) -> ExportResult:
        lines, rejected = split_encoded(events, encode_line)
        if lines:
            self._write("\n".join(lines) + "\n")
        return partial_result(len(lines), rejected)

    def _write(self, text: str) -> None:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "ab")  # noqa: SIM115 - kept open across batches
        self._file.write(text.encode("utf-8"))
        self._file.flush()
        if self.fsync:
            os.fsync(self._file.fileno())

    def _close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class ConsoleAnalyticsExporter(JSONLAnalyticsExporter):
    """JSON lines written to ``stream`` (standard output by default) instead of a file."""

    def __init__(self, stream: TextIO | None = None, *, name: str | None = None) -> None:
        self.stream, self.name = stream, name or self.name

    def _write(self, text: str) -> None:
        stream = self.stream or sys.stdout  # looked up late: tests and tools swap stdout
        stream.write(text)
        stream.flush()
