"""Counters of the analytics pipeline, and the names exporters' spools go by."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class ExporterStats:
    """Counters of one exporter's lane (a snapshot, see ``AnalyticsCoordinator.stats``)."""

    name: str
    exported: int = 0
    rejected: int = 0
    failed_batches: int = 0
    retries: int = 0
    spooled: int = 0
    replayed: int = 0
    dropped: int = 0
    buried_segments: int = 0
    pending: int = 0
    healthy: bool = True
    last_error: str | None = None


@dataclass(slots=True)
class AnalyticsStats:
    """A snapshot of what the coordinator did: nothing is lost without being counted."""

    emitted: int = 0
    queued: int = 0
    overflowed: int = 0  # events that found the queue full (spooled, or dropped without spool)
    dropped: int = 0  # events lost, in total (see each exporter's counters)
    exporters: dict[str, ExporterStats] = field(default_factory=dict)


def lane_names(exporters: Sequence[Any], taken: Sequence[str] = ()) -> list[str]:
    """Stable spool names: the exporter's ``name`` or its class, numbered when repeated."""
    names: list[str] = list(taken)
    for exporter in exporters:
        base = getattr(exporter, "name", None)
        if not isinstance(base, str) or not base:
            base = type(exporter).__name__
        base = "".join(c if c.isalnum() or c in "-_" else "_" for c in base)
        name, n = base, 1
        while name in names:
            n += 1
            name = f"{base}-{n}"
        names.append(name)
    return names[len(taken) :]
