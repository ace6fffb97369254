"""Counters of the analytics pipeline, and the names exporters' lanes and spools go by."""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class ExporterStats:
    """Counters of one exporter's lane (a snapshot, see ``AnalyticsCoordinator.stats``).

    ``dropped`` is every event lost to this exporter, ``evicted`` included (spooled events
    deleted to keep the spool under ``max_spool_bytes``).
    """

    name: str
    exported: int = 0
    rejected: int = 0
    failed_batches: int = 0
    retries: int = 0
    spooled: int = 0
    replayed: int = 0
    dropped: int = 0
    evicted: int = 0
    overflowed: int = 0  # events that found this exporter's queue full (then spooled)
    buried_segments: int = 0
    pending: int = 0
    spool_queue: int = 0  # events waiting for the spool writer
    healthy: bool = True
    last_error: str | None = None


@dataclass(slots=True)
class AnalyticsStats:
    """A snapshot of what the coordinator did: nothing is lost without being counted."""

    emitted: int = 0
    queued: int = 0
    overflowed: int = 0  # events that found a queue full (spooled, or dropped without spool)
    dropped: int = 0  # events lost, in total (see each exporter's counters)
    exporters: dict[str, ExporterStats] = field(default_factory=dict)


def _base(exporter: Any) -> str:
    base = getattr(exporter, "name", None)
    if not isinstance(base, str) or not base:
        base = type(exporter).__name__
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in base)


def _unique(base: str, names: Collection[str]) -> str:
    name, n = base, 1
    while name in names:
        n += 1
        name = f"{base}-{n}"
    return name


def lane_names(exporters: Sequence[Any], taken: Sequence[str] = ()) -> list[str]:
    """Names in the stats: the exporter's ``name`` or its class, numbered when repeated."""
    names: list[str] = list(taken)
    for exporter in exporters:
        names.append(_unique(_base(exporter), names))
    return names[len(taken) :]


def destination_of(exporter: Any) -> str | None:
    """Where an exporter writes (its ``destination``, no secrets in it), if it says."""
    try:
        value = getattr(exporter, "destination", None)
    except Exception:
        return None
    return value if isinstance(value, str) and value else None


def spool_name(exporter: Any, lane_name: str, taken: Collection[str] = ()) -> str:
    """The spool directory of an exporter: its name (or class) and a short hash of its
    destination, so two services writing to different databases never share a spool."""
    destination = destination_of(exporter)
    if destination is None:
        return lane_name
    digest = hashlib.sha256(destination.encode("utf-8")).hexdigest()[:10]
    return _unique(f"{_base(exporter)}-{digest}", taken)
